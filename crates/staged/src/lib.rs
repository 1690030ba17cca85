//! Staged training for Transformer language models (Shen et al., ICML 2022, arXiv 2203.06211):
//! grow the *whole training state* of a small GPT-2-style model (parameters, Adam moments, step,
//! LR-schedule position) to a larger one without changing its loss, then keep training
//! (spec: shared/papers/staged-training.md).
//!
//! * [`state::TrainState`]: parameters and Adam moments as HF-named tensors, the step and the
//!   schedule, with [`state::TrainState::adam_step`], the optimiser exactly as spec §3 (AdamW
//!   without bias correction, betas (0.9, 0.98), eps 1e-6, no weight decay), written here because
//!   the operators need to read and write the moments;
//! * [`width::grow_width`]: d -> 2d, heads h -> 2h (§4): every activation becomes `[x; x]`,
//!   `ln_f` halved, moments `T(m)/2`, `T(v)/4` (ln_f unscaled), zeros off the diagonal blocks;
//! * [`depth::grow_depth`]: L -> 2L with exact identity blocks (§5.1, `alternate` or `append`).
//!   The released script duplicates layers instead (§5.2), which is not loss-preserving; kiln
//!   implements the intended operator;
//!   [`depth::DepthInit`] also offers the copy-with-zeroed-outputs variant and a labelled
//!   `official-released-compat` mode that reproduces the released script for comparison;
//! * [`schedule`]: the LR heuristic, warm-up/linear-decay schedule and its restart after growth
//!   (§6), Kaplan's relations and the savings formula (§8);
//! * [`slope`]: the efficiency criterion (spike removal, smoothed log-log slope, thresholds, §8.2);
//! * [`procedure`]: grow-and-restart (target LR, schedule position S*), the one training loop
//!   ([`procedure::train_curve`]: compute accounting, online slope watches) and the oracle-free
//!   procedure end to end over any [`procedure::Trainer`] (§8.4);
//! * [`multistage`]: the multi-stage compute-optimal schedule under Kaplan's laws (§8.5).
//!
//! Choices where the spec leaves room or the official code differs:
//! * depth growth defaults to the loss-preserving identity blocks (§5.1), not the released
//!   script's duplication (§5.2), which stays available as `DepthInit::OfficialReleasedCompat`;
//! * after growth the first step runs at position S* + 1, as the official resume sets it;
//! * the slope criterion used *online* ([`slope::settled_decision_point`]) ignores the last two
//!   smoothed points, whose reflect-padded windows flatten any curve's end and would fire early;
//!   the notebooks apply it offline to finished curves ([`slope::decision_point`]);
//! * the multi-stage optimiser eliminates the final-loss constraint and uses Nelder–Mead
//!   instead of SLSQP (see [`multistage`]);
//! * width-growth symmetry is broken by dropout only, as in the official runs (no noise option).

pub mod depth;
pub mod error;
pub mod multistage;
pub mod procedure;
pub mod schedule;
pub mod slope;

/// `kiln bench --only gpt2` (feature `experiment`).
#[cfg(feature = "experiment")]
pub mod bench;
/// The `staged-training` table (feature `experiment`, on by default).
#[cfg(feature = "experiment")]
pub mod experiment;
pub mod state;
pub mod width;

pub use error::StagedError;
pub use state::{AdamConfig, Named, TrainState};

/// The `staged-training` experiment, for the registry.
#[cfg(feature = "experiment")]
pub const STAGED_TRAINING: experiment::StagedTraining = experiment::StagedTraining;
