//! Every experiment `kiln` can run. Adding a paper: its crate exposes a value implementing
//! `kiln_experiment::Paper` (usually in `src/experiment.rs`), `experiments/<name>.toml` holds its
//! settings, and one line below registers it.

use anyhow::{bail, Result};
use kiln_experiment::{Bench, Experiment};

pub static EXPERIMENTS: &[&dyn Experiment] = &[
    &kiln_glue::GLUE_FINETUNE,
    &kiln_prune::GLUE_PRUNING,
    &kiln_ltp::LTP_GLUE,
    &kiln_staged::STAGED_TRAINING,
    &kiln_dnas::DNAS_DLRM,
    &kiln_clipvil::CLIP_VIL,
    &kiln_lottery::ONE_LAYER_LOTTERY,
    &kiln_radar::RADAR,
];

/// The registered experiment `name`, or an error listing them.
pub fn find(name: &str) -> Result<&'static dyn Experiment> {
    match EXPERIMENTS.iter().find(|e| e.name() == name) {
        Some(e) => Ok(*e),
        None => bail!(
            "experiment `{name}` is not implemented; implemented: {} (`kiln list` shows their profiles)",
            names().join(", ")
        ),
    }
}

pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|e| e.name()).collect()
}

/// Every benchmark name, with the experiment that offers it.
pub fn benches() -> Vec<Bench> {
    EXPERIMENTS
        .iter()
        .flat_map(|e| e.benches().iter().copied())
        .collect()
}
