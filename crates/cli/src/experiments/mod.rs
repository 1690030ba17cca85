//! The reproducible tables. Each experiment reads `experiments/<name>.toml`, resolves its
//! inputs, runs, and writes `results/<name>/<profile>/`.

pub mod glue_finetune;
pub mod glue_pruning;
pub mod ltp_glue;
pub mod staged_training;
pub mod tasks;

use std::path::PathBuf;

use kiln_core::DeviceChoice;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// `None`: the best profile whose inputs resolve.
    pub profile: Option<String>,
    pub device: DeviceChoice,
    pub data_dir: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub out: PathBuf,
    pub tasks: Option<Vec<String>>,
    pub seed: u64,
    pub download: bool,
    /// Overrides every task's training-subset size (quick trials).
    pub train_examples: Option<usize>,
    /// Overrides every task's epochs.
    pub epochs: Option<f64>,
}

/// Experiments that `kiln reproduce` can run.
pub const IMPLEMENTED: &[&str] = &[
    "glue-finetune",
    "glue-pruning",
    "ltp-glue",
    "staged-training",
];

/// The profile the user asked for, if any, checked against the experiment's profiles.
pub fn requested_profile<V>(
    name: &str,
    profiles: &std::collections::BTreeMap<String, V>,
    args: &RunArgs,
) -> anyhow::Result<Option<(String, String)>> {
    match &args.profile {
        None => Ok(None),
        Some(p) if profiles.contains_key(p) => {
            Ok(Some((p.clone(), "requested with --profile".into())))
        }
        Some(p) => anyhow::bail!(
            "profile `{p}` not in experiments/{name}.toml; choose one of {:?}",
            profiles.keys().collect::<Vec<_>>()
        ),
    }
}

pub fn run(name: &str, args: &RunArgs) -> anyhow::Result<PathBuf> {
    match name {
        "glue-finetune" => glue_finetune::run(args),
        "glue-pruning" => glue_pruning::run(args),
        "ltp-glue" => ltp_glue::run(args),
        "staged-training" => staged_training::run(args),
        other => anyhow::bail!(
            "experiment `{other}` is not implemented yet; implemented: {}",
            IMPLEMENTED.join(", ")
        ),
    }
}
