//! kiln-experiment: what every reproduced table shares, so that a paper crate's `experiment.rs`
//! holds only what is particular to its paper.
//!
//! An experiment is a type implementing [`Paper`]: its typed profile settings, how to tell whether
//! a profile's inputs resolve, and a `run` that turns a [`RunContext`] into a [`RunRecord`]. The
//! blanket [`Experiment`] impl does the rest the same way for every paper: it reads
//! `experiments/<name>.toml` ([`ExperimentFile`]), picks the profile ([`choose_profile`]: the one
//! asked for, else the best one whose inputs resolve, with the reason printed), builds the
//! context (device, output and cache folders, seed, clock), and writes everything the run
//! produced with one atomic [`RunRecord::finish`]. The CLI holds only a list of `&dyn Experiment`.
//!
//! Inputs resolve through one [`Resolver`] (flag → environment → `datasets/cache` →
//! `../shared/data` → download → an error that says what to put where), with the sources and
//! sha256 of downloads read from `datasets/registry.toml` ([`registry`]).
//!
//! This crate uses `anyhow`: it is the edge between the method libraries (typed errors) and the
//! command line, and its errors are read by people.

pub mod args;
pub mod bench;
pub mod context;
pub mod file;
pub mod hub;
pub mod outdir;
pub mod pages;
pub mod predictions;
pub mod record;
pub mod registry;
pub mod resolve;
pub mod verify;

pub use args::RunArgs;
pub use bench::BenchArgs;
pub use context::RunContext;
pub use file::{ExperimentFile, ExperimentInfo, PaperNumbers, ProfileInfo};
pub use record::{Plot, RunRecord};
pub use registry::{
    check_flags, choose_profile, crate_dir, Bench, Choice, Experiment, Flags, Paper, AUTO_ORDER,
};
pub use resolve::{Resolved, Resolver, TaskFiles};
