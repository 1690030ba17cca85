//! HF `BertForQuestionAnswering`: a span head (`qa_outputs`, hidden -> 2) over every token, no
//! pooler. Start and end logits per token; the loss is the mean of the start and end
//! cross-entropies (HF), with gold positions from `Batch::spans`.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::Batch;

use super::{BertConfig, BertModel, EncoderInput, EncoderMasks};
use crate::EncoderTask;

#[derive(Module, Debug)]
pub struct BertForQuestionAnswering {
    pub bert: BertModel,
    pub qa_outputs: Linear,
}

impl BertForQuestionAnswering {
    /// Random init (N(0, 0.02), zero bias), encoder without a pooler as HF builds it.
    pub fn new(c: &BertConfig, device: &Device) -> Self {
        Self {
            bert: BertModel::new(c, false, device),
            qa_outputs: super::model::hf_linear(c.hidden_size, 2, device),
        }
    }

    /// Start and end logits, each `[batch, seq]`.
    pub fn forward(
        &self,
        input: &EncoderInput,
        masks: Option<&EncoderMasks>,
    ) -> (Tensor<2>, Tensor<2>) {
        let h = self.bert.forward(input, masks).last_hidden_state;
        let [b, l, _] = h.dims();
        let logits = self.qa_outputs.forward(h); // [b, l, 2]
        let start = logits.clone().narrow(2, 0, 1).reshape([b, l]);
        let end = logits.narrow(2, 1, 1).reshape([b, l]);
        (start, end)
    }

    /// HF's span loss: (CE(start) + CE(end)) / 2 over the batch. Padding positions take part
    /// in the softmax as in HF (their logits are whatever the head gives them).
    pub fn loss(&self, start: Tensor<2>, end: Tensor<2>, spans: &[(usize, usize)]) -> Tensor<1> {
        let device = start.device();
        let col = |f: fn(&(usize, usize)) -> usize| {
            let v: Vec<i64> = spans.iter().map(|s| f(s) as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &device)
        };
        let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
        (ce.forward(start, col(|s| s.0)) + ce.forward(end, col(|s| s.1))) / 2.0
    }
}

impl EncoderTask for BertForQuestionAnswering {
    fn encoder(&self) -> &BertModel {
        &self.bert
    }

    fn batch_loss(
        &self,
        batch: &Batch,
        masks: Option<&EncoderMasks>,
        device: &Device,
    ) -> Result<Tensor<1>, crate::ModelError> {
        if batch.spans.len() != batch.batch {
            return Err(crate::ModelError::Invalid(format!(
                "a span batch needs one (start, end) per example: {} spans for {} examples",
                batch.spans.len(),
                batch.batch
            )));
        }
        if let Some(&(s, e)) = batch
            .spans
            .iter()
            .find(|&&(s, e)| s >= batch.seq || e >= batch.seq)
        {
            return Err(crate::ModelError::Invalid(format!(
                "span ({s}, {e}) lies outside the {}-token batch",
                batch.seq
            )));
        }
        let (s, e) = self.forward(&EncoderInput::from_batch(batch, device), masks);
        Ok(self.loss(s, e, &batch.spans))
    }

    fn reads_first_token_only(&self) -> bool {
        false
    }
}
