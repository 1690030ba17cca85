//! Learned Token Pruning (Kim et al., KDD 2022, arXiv 2107.00910) for BERT-family encoders, as
//! plain library functions over burn tensors on any device (spec: shared/papers/ltp.md).
//!
//! * [`score::token_scores`]: the attention a token receives, averaged over heads and query
//!   positions and normalised by the fixed `norm_len` (128), never by the real or padded length,
//!   so scores and decisions do not depend on batch padding (§3).
//! * [`LtpModel`]: a classifier plus one learned threshold offset per layer (§4), run in one of
//!   the [`Mode`]s: soft masks with the L1-style regulariser (stage 1), hard threshold pruning
//!   (stage 2, and always at evaluation), the top-k cascade and manual thresholds (§8).
//! * [`physical::forward_removed`]: real token removal: after each layer's attention the kept
//!   tokens are gathered, so the FFN and every later layer run on shorter sequences. The official
//!   code only masks, so it never gets faster (its issue #13).
//! * [`flops`]: the official MAC model (§9) and relative FLOPs as a ratio of totals.
//! * [`train`]: the two-stage schedule (§6) with separate AdamW optimisers for weights and
//!   thresholds, and the hard-mode training of the baselines.
//! * `experiment` (feature `experiment`, on by default): the `ltp-glue` table on glue-finetune's
//!   checkpoints (loaded through `kiln-glue`), with per-setting dev predictions, the throughput
//!   of real removal, and the length-robustness study; `bench`: `kiln bench --only ltp`.
//!
//! Works on any `BertForSequenceClassification` kiln loads, BERT or RoBERTa (kiln-models reads
//! HF RoBERTa directories: positions offset past the padding index, one token type, the
//! dense/out_proj head mapped onto pooler + classifier).
//!
//! Deliberate choices:
//! * Masked positions get the encoder's additive score of -1e9 instead of -10000; both give
//!   probability exactly 0 in f32.
//! * Real removal always keeps position 0 ([CLS]), which the classifier reads; the masked
//!   simulation follows the reference and may prune it (then the two differ, which the spec
//!   allows: property 11 holds whenever position 0 is kept).
//! * Learned thresholds train with their own AdamW and learning rate (the reference's default is
//!   the model's rate; kiln's mini profile trains one short epoch, where that rate barely moves
//!   them, so it sets a larger one and says so in its table).
//! * Top-k keeps at most the tokens alive before the layer (the reference rebuilds the mask from
//!   the layer's top-k; with a non-increasing schedule that is the same set except on ties with
//!   already-pruned zero scores, which the reference could revive).

pub mod error;
pub mod flops;
pub mod model;
pub mod physical;
pub mod score;
pub mod topk;
pub mod train;

/// `kiln bench --only ltp` (feature `experiment`).
#[cfg(feature = "experiment")]
pub mod bench;
/// The `ltp-glue` table (feature `experiment`, on by default).
#[cfg(feature = "experiment")]
pub mod experiment;

pub use error::LtpError;
pub use model::{LtpModel, LtpOutput, Mode, Thresholds};

/// The `ltp-glue` experiment, for the registry.
#[cfg(feature = "experiment")]
pub const LTP_GLUE: experiment::LtpGlue = experiment::LtpGlue;
