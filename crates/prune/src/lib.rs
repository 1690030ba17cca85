//! Retraining-free structured pruning of BERT-family encoders (Kwon et al., "A Fast
//! Post-Training Pruning Framework for Transformers", NeurIPS 2022), as plain library functions
//! over burn tensors on any device.
//!
//! Pipeline, in the paper's order (spec: shared/papers/pruning.md):
//! 1. [`importance::collect_mask_grads`]: per-mini-batch gradients of the loss w.r.t. every head
//!    and FFN-neuron mask on a sample set, and the importance criteria built from them
//!    ([`importance::Criterion`]: diagonal Fisher, first-order, weight magnitude);
//! 2. [`search::search_mac`] (FLOPs constraint, §4.2) or [`search::search_latency`] (latency
//!    constraint with per-backend lookup tables, §4.3);
//! 3. [`rearrange::rearrange`]: block-diagonal Fisher greedy per layer (§5);
//! 4. [`tuning::tune_masks`]: layer-wise least-squares reconstruction of the mask values (§6).
//!
//! The masks then fold into a physically smaller model ([`kiln_models::BertModel::shrink`]).
//!
//! `experiment` (feature `experiment`, on by default) reproduces the `glue-pruning` tables on
//! glue-finetune's checkpoints (loaded through `kiln-glue`, fine-tuned as the run's first stage
//! when missing): each stage's dev metric as mean ± sd over several sample-set seeds, the exact
//! solver as an ablation, interleaved dense-vs-pruned speedups with their quartiles (flagged when
//! above the counted-MAC bound), the latency-constrained search with lookup tables measured on
//! the run's device, and the dev predictions behind every metric in its tables (every seed and
//! stage, the unpruned model, the magnitude baseline, the latency rows; SQuAD beside a gold file
//! in the official layout), which `kiln verify` recomputes; `bench` is `kiln bench --only pruning`.
//!
//! Deliberate choices where the spec leaves room or the official code has a bug:
//! * Fisher is built from mini-batch-mean gradients (batch 32), as the official code does.
//! * The FLOPs search never keeps 0 heads when one head fits (as the reference); when not even one
//!   head fits the budget it keeps 0 heads and fills neurons, and when every score is 0 it picks
//!   the feasible split that spends the most budget (the reference crashes in both cases).
//! * The latency search implements the *intended* algorithm of §4.3: the budget is recomputed for
//!   every (k_mha, k_ffn) pair, the score counts base and extra units, dropped layers' units leave
//!   the candidate pool, and zero extra heads is allowed. The official code's cumulative-budget and
//!   score bugs are not copied.
//! * Mask tuning solves the damped normal equations with a port of SciPy's LSMR
//!   ([`Solver::Lsmr`], the default and the headline of the tables): float32 inputs, damp 1,
//!   centred at s = 1, atol = btol = 1e-6, conlim 1e8 and maxiter = 5·n (the CuPy default the
//!   reference runs under; the spec's "maxiter = system size" is SciPy's and is not what the
//!   reference ran), checked against SciPy on `shared/data/reference/lsmr-golden.json`.
//!   "Solver failure" is istop ≥ 3 or a non-finite result, as in the reference, and ends tuning.
//!   LSMR's early stop leaves poorly determined directions near s = 1; the exact solve of
//!   `(G² + I) x = G c` ([`Solver::Exact`], Cholesky in f64) does not, and is reported as a
//!   labelled ablation row (on the MiniLM mini runs it produced scales beyond ±10 in the last
//!   FFN layers). The abort rule of the reference is kept: any scale outside [-10, 10] stops
//!   tuning for this and every later layer. The MHA ones-column coefficient is not checked
//!   against the bound.
//! * The reconstruction target defaults to the reference's teacher (the search result at
//!   constraint √C, with the hook-order quirk that the current layer's FFN target uses all
//!   neurons); [`tuning::Teacher::Original`] reconstructs the unpruned model instead.

pub mod cost;
pub mod error;
pub mod importance;
pub mod latency;
pub mod linalg;
pub mod masks;
pub mod pipeline;
pub mod rearrange;
pub mod search;
pub mod tuning;

/// `kiln bench --only pruning` (feature `experiment`).
#[cfg(feature = "experiment")]
pub mod bench;
/// The `glue-pruning` table (feature `experiment`, on by default): per task and FLOPs
/// constraint, each stage's dev metric, the magnitude baseline, MACs, pruning time, measured
/// speedup, kept units, and the dev predictions behind every metric.
#[cfg(feature = "experiment")]
pub mod experiment;

pub use cost::MacModel;
pub use error::PruneError;
pub use importance::{Criterion, MaskGrads};
pub use masks::Masks;
pub use pipeline::{
    batches_at, prune, sample_batches, sample_indices, PruneOptions, PruneOutcome, StageTimes,
};
pub use tuning::{Solver, Teacher};

/// The `glue-pruning` experiment, for the registry.
#[cfg(feature = "experiment")]
pub const GLUE_PRUNING: experiment::GluePruning = experiment::GluePruning;
