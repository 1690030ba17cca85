//! BERT-family encoder (Devlin et al. 2019), transcribed from HuggingFace
//! `transformers/models/bert/modeling_bert.py` (BertEmbeddings, BertSelfAttention, BertLayer,
//! BertPooler, BertForSequenceClassification), with kiln's mask and shrink extensions.

mod config;
mod heads;
mod hf;
mod masks;
mod model;
mod qa;
mod shrink;

pub use config::BertConfig;
pub use heads::{BertForSequenceClassification, TaskLoss};
pub use hf::{
    load_bert, load_classifier, load_qa, save_classifier, save_qa, validate_checkpoint,
    HfCheckpoint,
};
pub(crate) use hf::{read_header as read_header_pub, store_err as store_err_pub};
pub use masks::EncoderMasks;
pub(crate) use model::zero_bias as zero_bias_pub;
pub use model::{
    attention_bias, mean_pool, BertLayer, BertModel, BertOutput, EncoderInput, LayerTrace,
};
pub use qa::BertForQuestionAnswering;
pub use shrink::PrunePlan;
