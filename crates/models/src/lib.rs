//! kiln-models: reusable burn modules and HuggingFace-compatible loading/saving.
//!
//! The BERT-family encoder ([`bert`]) mirrors HF `modeling_bert.py` so that checkpoints load
//! by name, and adds what the pruning papers need: multiplicative per-head and per-neuron masks
//! that are differentiable, and physical shrinking to a smaller model.

pub mod bert;
pub mod dense;
pub mod dlrm;
pub mod error;
pub mod finetune;
pub mod gpt2;
pub mod task;

pub use bert::{
    BertConfig, BertForQuestionAnswering, BertForSequenceClassification, BertModel, BertOutput,
    EncoderInput, EncoderMasks,
};
pub use dense::dense;
pub use dlrm::{Dlrm, DlrmConfig, Interaction};
pub use error::ModelError;
pub use task::EncoderTask;
