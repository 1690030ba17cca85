//! Differentiable NAS for ads CTR prediction (Krishna et al. 2021, arXiv 2110.14812): a small
//! framework for FBNet-style search and its application to DLRM
//! (spec: shared/papers/dnas-dlrm.md).
//!
//! The paper's method, in the order it runs:
//! * [`gumbel`]: the architecture distribution, one logit vector θ_k per choice, relaxed per
//!   example by Gumbel-softmax at temperature τ and sampled hard by Gumbel-argmax;
//! * [`space`]: the [`space::SuperNet`] contract (a deterministic function of its masks that
//!   returns the prediction and the expected cost per example) and DLRM's three search spaces:
//!   [`mlp`] (the FC-of-FC supernet over MLP widths and depths, cost in FLOPs) and [`emb`]
//!   (embedding dimension by FBNetV2 masking and embedding cardinality by separate hashed
//!   tables, cost in parameters), all over `kiln_models::dlrm`;
//! * [`cost`]: the op cost table and the linear / exponential cost terms of the loss;
//! * [`plan`]: the epoch plan (warm-up, alternating weights and architecture segments, the
//!   temperature decay, when to sample);
//! * [`search`]: the alternating optimisation with its own data split, global gradient
//!   clipping, architecture sampling, and the equal-cost random-search control;
//! * [`toy_cnn`]: the paper's extension example (a toy CNN supernet with its own data, loss and
//!   cost), searched through the generic [`search::search_with`], which is what a user calls
//!   for a search space of their own;
//! * [`retrain`]: standalone training of the baseline and of each sampled architecture from
//!   scratch, with log loss, AUC, accuracy and calibration.
//!
//! Where kiln deliberately departs from the official code (spec §5.1, §5.2, pitfalls):
//! * the MLP supernet's top MLP ends in a sigmoid (the official one ends in ReLU + clamp,
//!   whose gradient dies outside (0, 1); `official_relu_head = true` restores it as an
//!   ablation, under which the one-hot reduction to the standalone DLRM no longer holds);
//! * architecture derivation follows the intended semantics (the chosen path from the output,
//!   emitted input-to-output); the official defects are not reproduced;
//! * the expected MLP cost propagates the probability mass of skips (exact); the official
//!   approximation that drops it is the `exact_cost = false` option;
//! * hashing moduli are per feature (never the first table's for all, pitfall 3);
//! * a sampled emb-dim model pads lookups to the bottom MLP's width (§5.2 caveat);
//! * the BCE is PyTorch's (log clamped at −100) on probabilities rather than a 1e-9 clamp of
//!   p, which in float32 cannot keep `1 − p` away from 0.
//!
//! Not implemented: a bit-exact mode of the official derivation defects, an interaction-type search space (the released code has only a fixed
//! dot / cat choice, which [`kiln_models::dlrm::Interaction`] offers), the "frequency"
//! category dropping (declared but not implemented in the reference), and the multi-GPU tuner
//! (the experiment runs one configuration of the grid in one process).

pub mod cost;
pub mod emb;
pub mod error;
pub mod gumbel;
pub mod mlp;
pub mod plan;
pub mod retrain;
pub mod search;
pub mod space;
pub mod synthetic;
pub mod toy_cnn;

/// `kiln bench --only dlrm` (feature `experiment`).
#[cfg(feature = "experiment")]
pub mod bench;
/// The `dnas-dlrm` table (feature `experiment`, on by default).
#[cfg(feature = "experiment")]
pub mod experiment;

pub use error::DnasError;
pub use gumbel::Theta;
pub use space::{EmbCardSearch, EmbDimSearch, MlpSearch, Space, SuperNet};

/// The `dnas-dlrm` experiment, for the registry.
#[cfg(feature = "experiment")]
pub const DNAS_DLRM: experiment::DnasDlrm = experiment::DnasDlrm;
