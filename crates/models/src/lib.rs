//! kiln-models: reusable burn modules and HuggingFace-compatible loading/saving.
//!
//! The BERT-family encoder ([`bert`]) mirrors HF `modeling_bert.py` so that checkpoints load
//! by name, and adds what the pruning papers need: multiplicative per-head and per-neuron masks
//! that are differentiable, and physical shrinking to a smaller model. [`clip`] holds CLIP's image
//! and text towers with loaders for the OpenAI/open_clip and HF layouts and CLIP-ViL's grid
//! features; [`dlrm`] the DLRM click model; [`gpt2`] a GPT-2 decoder; [`seq2seq`] a fairseq-style
//! Transformer encoder-decoder with beam search, generic over where its weights come from.

pub mod average;
pub mod bert;
pub mod clip;
pub mod cross_entropy;
pub mod dense;
pub mod dlrm;
pub mod error;
pub mod finetune;
pub mod gpt2;
pub mod resnet;
pub mod seq2seq;
pub mod task;

pub use average::average_params;
pub use bert::{
    BertConfig, BertForQuestionAnswering, BertForSequenceClassification, BertModel, BertOutput,
    EncoderInput, EncoderMasks,
};
pub use dense::dense;
pub use dlrm::{Dlrm, DlrmConfig, Interaction};
pub use error::ModelError;
pub use task::EncoderTask;
