use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};

use super::{BertConfig, BertModel, EncoderInput, EncoderMasks};

/// HF `BertForSequenceClassification`: pooled [CLS] -> dropout -> linear. `num_labels == 1`
/// is regression (MSE), as HF's `problem_type = "regression"`.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

/// Which loss the head trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskLoss {
    CrossEntropy,
    Mse,
}

impl BertForSequenceClassification {
    /// Random init (HF `_init_weights`: N(0, 0.02), zero bias).
    pub fn new(c: &BertConfig, device: &Device) -> Self {
        Self {
            bert: BertModel::new(c, true, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            classifier: super::model::hf_linear(c.hidden_size, c.num_labels(), device),
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    pub fn loss_kind(&self) -> TaskLoss {
        if self.num_labels() == 1 {
            TaskLoss::Mse
        } else {
            TaskLoss::CrossEntropy
        }
    }

    /// `[batch, num_labels]` logits (or `[batch, 1]` scores for regression).
    pub fn forward(&self, input: &EncoderInput, masks: Option<&EncoderMasks>) -> Tensor<2> {
        let out = self.bert.forward(input, masks);
        self.head(out.last_hidden_state)
    }

    /// Logits from a last hidden state `[b, l, hidden]` (pooler, dropout, classifier).
    pub fn head(&self, last_hidden_state: Tensor<3>) -> Tensor<2> {
        let pooled = match self.bert.pool(&last_hidden_state) {
            Some(p) => p,
            None => {
                let [b, _, h] = last_hidden_state.dims();
                last_hidden_state.narrow(1, 0, 1).reshape([b, h])
            }
        };
        self.classifier.forward(self.dropout.forward(pooled))
    }

    /// Mean loss over the batch. `targets`: class indices (as f32) or regression scores.
    pub fn loss(&self, logits: Tensor<2>, targets: &[f32]) -> Tensor<1> {
        let device = logits.device();
        let [b, _] = logits.dims();
        match self.loss_kind() {
            TaskLoss::Mse => {
                let t = Tensor::<1>::from_data(
                    burn::tensor::TensorData::new(targets.to_vec(), [b]),
                    &device,
                );
                let d = logits.reshape([b]) - t;
                (d.clone() * d).mean()
            }
            TaskLoss::CrossEntropy => {
                let ids: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
                let t = Tensor::<1, burn::tensor::Int>::from_data(
                    burn::tensor::TensorData::new(ids, [b]),
                    &device,
                );
                burn::nn::loss::CrossEntropyLossConfig::new()
                    .init(&device)
                    .forward(logits, t)
            }
        }
    }
}

impl crate::EncoderTask for BertForSequenceClassification {
    fn encoder(&self) -> &BertModel {
        &self.bert
    }

    fn batch_loss(
        &self,
        batch: &kiln_data::Batch,
        masks: Option<&EncoderMasks>,
        device: &Device,
    ) -> Result<Tensor<1>, crate::ModelError> {
        if let Some(l) = batch.labels.iter().find(|l| !l.is_finite()) {
            return Err(crate::ModelError::Invalid(format!(
                "label {l} in a training batch: every example needs a label (regression needs num_labels 1)"
            )));
        }
        let logits = self.forward(&EncoderInput::from_batch(batch, device), masks);
        Ok(self.loss(logits, &batch.labels))
    }

    fn reads_first_token_only(&self) -> bool {
        true
    }
}
