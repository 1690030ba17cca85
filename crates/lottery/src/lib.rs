//! What's Hidden in a One-layer Randomly Weighted Transformer? (Shen, Yao, Kiela, Keutzer,
//! Mahoney; EMNLP 2021).
//!
//! A Transformer whose weights stay at their random initial values can still translate, if a
//! binary mask picks a subnetwork out of it. The paper pushes this to one layer: every encoder
//! layer uses the same random matrices, every decoder layer the same ones, and each layer has
//! its own learnt mask (edge-popup scores, top-k per tensor, straight-through gradients). Only
//! scores are trained. One random encoder and one random decoder layer of the wide IWSLT14
//! model reach 29.45 BLEU; with fixed pre-trained embeddings 34.14 (98% of a trained
//! Transformer small), and 17.29 / 25.24 on WMT14 En-De.
//!
//! Where things are:
//! - the Transformer, batching, beam search, schedule and loss: `kiln_models::seq2seq`
//!   (fairseq's, generic over where the matrices come from);
//! - [`mask`]: supermasks and the masked projection/table; [`model`]: the one-layer model, its
//!   initialisation schemes and weight sharing; [`train`]: the training loop and translation
//!   shared with the trained baseline; `experiment`: the tables.
//! - BPE, dictionaries and parallel corpora: `kiln_data::{bpe, translation}`; BLEU
//!   (sacreBLEU's and fairseq's tokenized BLEU) and Moses detokenisation:
//!   `kiln_data::{bleu, detok}`.
//!
//! Choices where the spec leaves room or the reference differs, each deliberate:
//! - masks are recomputed every forward pass, exactly `n − ⌊(1−k)n⌋` kept per tensor: by a
//!   linear-time selection on the host on CPU backends (flex's argsort is ~8x slower), by an
//!   on-device argsort elsewhere (a unit test checks the two agree); decoding uses the
//!   materialised `W ⊙ M` (the same numbers, no per-step masking);
//! - "pre-trained embeddings" are the trained baseline's tables from the same run (corpus,
//!   seed, width): the authors' embedding files are on Google Drive only and their provenance
//!   is unverified (spec §5); files in their format can be read with `data::read_embeddings`;
//! - random weights and scores are drawn on the host from the run's seed (ChaCha8), so a
//!   masked model is exactly reproducible from the seed and its mask bits on any backend;
//! - the trained WMT14 baseline ties its three embedding tables over the joined dictionary
//!   (fairseq's `--share-all-embeddings`, the recipe behind the Transformer base the paper's
//!   92% is measured against; `share_all_embeddings` on a trained row); the masked models keep
//!   separate encoder and decoder tables, as the official code does on WMT14 too;
//! - float32 throughout (the reference trains in fp16 with fp32 master scores);
//! - checkpoints as the paper's recipes choose them: IWSLT14 the epoch checkpoint with the best
//!   validation sacreBLEU, WMT14 the average of the last 10 epoch checkpoints (every tensor, so
//!   masks come from averaged scores), kept in memory rather than on disk; the mini profiles
//!   score the last one (no validation decoding fits their budget), said in their table.

pub mod data;
pub mod error;
pub mod mask;
pub mod model;
pub mod train;

#[cfg(feature = "experiment")]
pub mod bench;
#[cfg(feature = "experiment")]
pub mod experiment;

pub use error::LotteryError;
pub use mask::{kept, supermask, MaskedProj, MaskedTable};
pub use model::{build, counts, masked_shape, materialize, Embeddings, Init, LotteryConfig, Share};
pub use train::{train, translate, Checkpoint, TrainConfig, Trained, Validate};

#[cfg(feature = "experiment")]
pub static ONE_LAYER_LOTTERY: experiment::OneLayerLottery = experiment::OneLayerLottery;
