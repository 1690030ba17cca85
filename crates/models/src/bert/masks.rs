use burn::tensor::{Device, Tensor, TensorData};

use super::BertModel;
use crate::ModelError;

/// Multiplicative masks over the structures the pruning papers remove: one value per attention
/// head and per FFN neuron, per layer. Lengths follow the model's *current* shape, so masks of a
/// shrunk model are shorter.
#[derive(Debug, Clone)]
pub struct EncoderMasks {
    /// `head[l]`: `[heads in layer l]`
    pub head: Vec<Tensor<1>>,
    /// `ffn[l]`: `[neurons in layer l]`
    pub ffn: Vec<Tensor<1>>,
}

impl EncoderMasks {
    /// All-ones masks: the forward pass equals the unmasked one.
    pub fn ones(model: &BertModel, device: &Device) -> Self {
        Self {
            head: model
                .heads_per_layer()
                .into_iter()
                .map(|n| Tensor::ones([n], device))
                .collect(),
            ffn: model
                .neurons_per_layer()
                .into_iter()
                .map(|n| Tensor::ones([n], device))
                .collect(),
        }
    }

    /// Builds masks from plain values, checking them against the model's shape.
    pub fn from_values(
        model: &BertModel,
        head: &[Vec<f32>],
        ffn: &[Vec<f32>],
        device: &Device,
    ) -> Result<Self, ModelError> {
        let to =
            |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), device);
        let masks = Self {
            head: head.iter().map(to).collect(),
            ffn: ffn.iter().map(to).collect(),
        };
        masks.check(model)?;
        Ok(masks)
    }

    /// Marks every mask as requiring gradients (on an autodiff device).
    pub fn require_grad(self) -> Self {
        Self {
            head: self.head.into_iter().map(|t| t.require_grad()).collect(),
            ffn: self.ffn.into_iter().map(|t| t.require_grad()).collect(),
        }
    }

    /// Errors unless there is one mask per layer with one value per head/neuron.
    pub fn check(&self, model: &BertModel) -> Result<(), ModelError> {
        let heads = model.heads_per_layer();
        let neurons = model.neurons_per_layer();
        if self.head.len() != heads.len() || self.ffn.len() != neurons.len() {
            return Err(ModelError::Mask(format!(
                "{} head masks and {} FFN masks for a model with {} layers",
                self.head.len(),
                self.ffn.len(),
                heads.len()
            )));
        }
        for l in 0..heads.len() {
            let (h, f) = (self.head[l].dims()[0], self.ffn[l].dims()[0]);
            if h != heads[l] || f != neurons[l] {
                return Err(ModelError::Mask(format!(
                    "layer {l}: masks cover {h} heads and {f} neurons, the model has {} heads and {} neurons",
                    heads[l], neurons[l]
                )));
            }
        }
        Ok(())
    }

    /// Mask values as plain vectors (per layer).
    pub fn to_vecs(&self) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let v = |t: &Tensor<1>| {
            t.clone()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        };
        (
            self.head.iter().map(v).collect(),
            self.ffn.iter().map(v).collect(),
        )
    }
}
