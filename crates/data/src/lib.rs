//! kiln-data: dataset readers (GLUE, SQuAD, token corpora, CTR click logs), tokenization,
//! batching, task metrics and synthetic generators.
//!
//! Nothing here depends on burn: batches are plain row-major id vectors that the model crates
//! turn into tensors on whatever device the user chose.

pub mod batch;
pub mod bleu;
pub mod bpe;
pub mod clip_bpe;
pub mod corpus;
pub mod ctr;
pub mod detok;
pub mod error;
pub mod glue;
pub mod metrics;
pub mod parquet_reader;
pub mod rod;
pub mod squad;
pub mod synthetic;
pub mod textfile;
pub mod tokenize;
pub mod translation;
pub mod vqa;
pub mod vqa_eval;
pub mod vqa_v2;

pub use batch::{make_batches, make_batches_grouped, Batch, Encoded};
pub use error::DataError;
pub use glue::{read_glue_file, read_glue_labelled, Example, GlueTask, Split};
pub use tokenize::TextTokenizer;
