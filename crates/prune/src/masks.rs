use burn::tensor::Device;
use kiln_models::{BertModel, EncoderMasks};
use serde::{Deserialize, Serialize};

use crate::PruneError;

/// Head and neuron masks as plain values (0 = removed; other values scale the unit's output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Masks {
    pub head: Vec<Vec<f32>>,
    pub neuron: Vec<Vec<f32>>,
}

impl Masks {
    pub fn ones(heads: &[usize], neurons: &[usize]) -> Self {
        Self {
            head: heads.iter().map(|&n| vec![1.0; n]).collect(),
            neuron: neurons.iter().map(|&n| vec![1.0; n]).collect(),
        }
    }

    pub fn ones_for(model: &BertModel) -> Self {
        Self::ones(&model.heads_per_layer(), &model.neurons_per_layer())
    }

    pub fn layers(&self) -> usize {
        self.head.len()
    }

    /// Units kept (non-zero) per layer.
    pub fn kept_heads(&self) -> Vec<usize> {
        self.head
            .iter()
            .map(|l| l.iter().filter(|&&m| m != 0.0).count())
            .collect()
    }

    pub fn kept_neurons(&self) -> Vec<usize> {
        self.neuron
            .iter()
            .map(|l| l.iter().filter(|&&m| m != 0.0).count())
            .collect()
    }

    /// Binary version (1 where kept).
    pub fn binary(&self) -> Self {
        let b = |v: &Vec<Vec<f32>>| {
            v.iter()
                .map(|l| {
                    l.iter()
                        .map(|&m| if m != 0.0 { 1.0 } else { 0.0 })
                        .collect()
                })
                .collect()
        };
        Self {
            head: b(&self.head),
            neuron: b(&self.neuron),
        }
    }

    /// Checks the masks against a model's shape.
    pub fn check(&self, model: &BertModel) -> Result<(), PruneError> {
        let (h, n) = (model.heads_per_layer(), model.neurons_per_layer());
        let hs: Vec<usize> = self.head.iter().map(|l| l.len()).collect();
        let ns: Vec<usize> = self.neuron.iter().map(|l| l.len()).collect();
        if hs != h || ns != n {
            return Err(PruneError::Shape(format!(
                "masks have {hs:?} heads and {ns:?} neurons per layer, the model {h:?} and {n:?}"
            )));
        }
        Ok(())
    }

    /// As tensors for [`BertModel::forward`].
    pub fn to_encoder(
        &self,
        model: &BertModel,
        device: &Device,
    ) -> Result<EncoderMasks, PruneError> {
        self.check(model)?;
        Ok(EncoderMasks::from_values(
            model,
            &self.head,
            &self.neuron,
            device,
        )?)
    }
}
