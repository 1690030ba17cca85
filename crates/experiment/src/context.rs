//! The run context: everything a paper's `run` needs besides its settings.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use kiln_report::Table;

use crate::{Resolver, RunArgs};

/// One run of one profile of one experiment.
pub struct RunContext {
    pub args: RunArgs,
    pub experiment: &'static str,
    pub profile: String,
    /// Why this profile ran (requested, or which inputs resolved); recorded in run.json.
    pub profile_choice: String,
    pub device: Device,
    /// `<out>/<experiment>/<profile>`: where [`crate::RunRecord::finish`] writes.
    pub out: PathBuf,
    /// Cache root (downloads, checkpoints written for later experiments, token caches).
    pub cache: PathBuf,
    pub seed: u64,
    pub resolver: Resolver,
    /// The git tree when the run started (its commit and uncommitted files), for run.json.
    pub tree: kiln_core::run::TreeState,
    /// The results folder's lock, held until the context is dropped (after `finish`).
    _lock: crate::outdir::OutLock,
    started_unix: u64,
    clock: Instant,
}

impl RunContext {
    pub fn new(
        experiment: &'static str,
        profile: &str,
        profile_choice: &str,
        args: &RunArgs,
    ) -> anyhow::Result<Self> {
        args.check()?;
        let out = args.out.join(experiment).join(profile);
        // Before any work: a bad --out, or a second run on the same folder, fails now rather
        // than after training.
        let lock = crate::outdir::OutLock::acquire(&out)?;
        Ok(Self {
            device: args.device.device()?,
            out,
            _lock: lock,
            tree: kiln_core::run::tree_state(),
            cache: args.cache_root(),
            seed: args.seed,
            resolver: Resolver::from_args(args),
            args: args.clone(),
            experiment,
            profile: profile.to_string(),
            profile_choice: profile_choice.to_string(),
            started_unix: kiln_core::run::unix_now(),
            clock: Instant::now(),
        })
    }

    /// Seconds since the run started.
    pub fn elapsed(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    pub fn started_unix(&self) -> u64 {
        self.started_unix
    }

    /// The run's main table, titled as every kiln table is: the experiment's title, the
    /// profile, and a SYNTHETIC mark when the inputs were generated.
    pub fn main_table(&self, title: &str, synthetic: bool, columns: &[&str]) -> Table {
        Table::new(
            Table::profile_title(title, &self.profile, synthetic),
            columns,
        )
    }

    /// What the user asked for, as run.json and table notes print it (`flex`, `cuda:0`).
    pub fn device_label(&self) -> String {
        self.args.device.label()
    }
}
