//! What the methods need from "an encoder with a task head", so pruning and fine-tuning run on
//! sequence classification and span prediction alike.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use kiln_data::Batch;

use crate::{BertModel, EncoderMasks, ModelError};

pub trait EncoderTask: Module {
    /// The encoder whose heads and neurons the masks address.
    fn encoder(&self) -> &BertModel;

    /// The head's mean training loss on `batch` (labels from `Batch::labels`, spans from
    /// `Batch::spans`), with `masks` applied to the encoder.
    fn batch_loss(
        &self,
        batch: &Batch,
        masks: Option<&EncoderMasks>,
        device: &Device,
    ) -> Result<Tensor<1>, ModelError>;

    /// True when the head reads only the first token ([CLS]); layer-wise reconstruction then
    /// fits the last layer's FFN on that token alone (pruning spec §6).
    fn reads_first_token_only(&self) -> bool;
}
