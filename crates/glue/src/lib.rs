//! kiln-glue: the fine-tuned GLUE baselines that the pruning papers start from.
//!
//! Kwon et al. 2022 (glue-pruning) and Kim et al. 2022 (ltp-glue) both prune a BERT-family
//! encoder *already fine-tuned* on each GLUE task. This crate produces those checkpoints (the
//! `glue-finetune` experiment: HF Trainer's recipe over burn, dev scores beside BERT-base's
//! published test scores) and loads them back with their encoded data ([`checkpoints`]), real or
//! synthetic, so both pruning crates start from exactly the same models without importing each
//! other. It reproduces no paper's method: it is the shared starting point, below the method
//! crates and above models/data.
//!
//! - [`checkpoints`]: where fine-tuned checkpoints live, loading one with its task encoded, the
//!   synthetic smoke tasks fine-tuned in-process, and whether a profile's inputs resolve.
//! - [`experiment`]: the `glue-finetune` table (smoke, mini, paper profiles) and its per-task
//!   dev predictions in GLUE's `idx,prediction,label` format.
//! - [`bench`]: MiniLM encoder forward throughput against PyTorch (`kiln bench --only encoder`).

pub mod bench;
pub mod checkpoints;
pub mod experiment;

pub use checkpoints::{finetuned_checkpoint, finetuned_dir, real_glue, smoke_glue, GlueModel};
pub use experiment::GlueFinetune;

/// The `glue-finetune` experiment, for the registry.
pub const GLUE_FINETUNE: GlueFinetune = GlueFinetune;
