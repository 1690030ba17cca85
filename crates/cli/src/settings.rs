//! Experiment settings from `experiments/<name>.toml`, loaded into typed configs and saved
//! into each run's `run.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use kiln_models::finetune::FinetuneConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskOverride {
    pub train_examples: Option<usize>,
    pub dev_examples: Option<usize>,
    pub epochs: Option<f64>,
    pub learning_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub description: String,
    pub model: String,
    pub tasks: Vec<String>,
    pub max_len: usize,
    pub train_examples: Option<usize>,
    pub dev_examples: Option<usize>,
    pub train: FinetuneConfig,
    #[serde(default)]
    pub task: BTreeMap<String, TaskOverride>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Experiment {
    pub name: String,
    pub title: String,
    pub reference: String,
    #[serde(default)]
    pub paper: BTreeMap<String, f64>,
    pub profiles: BTreeMap<String, Profile>,
}

/// The `experiments/` folder of the checkout.
pub fn experiments_dir() -> PathBuf {
    kiln_core::paths::workspace_root().join("experiments")
}

pub fn load(name: &str) -> Result<Experiment> {
    load_typed(name)
}

/// Loads `experiments/<name>.toml` into an experiment's own settings type.
pub fn load_typed<T: serde::de::DeserializeOwned>(name: &str) -> Result<T> {
    load_from(&experiments_dir().join(format!("{name}.toml")))
}

pub fn load_from<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{}: cannot read experiment settings (run `kiln list` for the known experiments)",
            path.display()
        )
    })?;
    toml::from_str(&text)
        .map_err(|e| anyhow!("{}: invalid experiment settings: {e}", path.display()))
}

/// What `kiln list` shows of any experiment (fields every experiment's profiles may lack are
/// optional: staged-training trains from scratch on a corpus, with no model or GLUE tasks).
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileInfo {
    pub description: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default)]
    pub corpus: Option<String>,
}

impl ProfileInfo {
    /// `model: ...; tasks: ...` / `corpus: ...`, whichever apply.
    pub fn inputs(&self) -> String {
        let mut v = Vec::new();
        if let Some(m) = &self.model {
            v.push(format!("model: {m}"));
        }
        if !self.tasks.is_empty() {
            v.push(format!("tasks: {}", self.tasks.join(", ")));
        }
        if let Some(c) = &self.corpus {
            v.push(format!("corpus: {c}"));
        }
        v.join("; ")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExperimentInfo {
    pub name: String,
    pub title: String,
    pub profiles: BTreeMap<String, ProfileInfo>,
}

/// Every experiment TOML in `experiments/`.
pub fn all() -> Result<Vec<ExperimentInfo>> {
    let mut v = Vec::new();
    let dir = experiments_dir();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot list experiments", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for p in entries {
        v.push(load_from(&p)?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_experiment_file_lists() {
        let all = super::all().unwrap();
        assert!(all.len() >= 4);
        for e in &all {
            assert!(
                e.profiles.contains_key("smoke"),
                "{} has no smoke profile",
                e.name
            );
            for p in e.profiles.values() {
                assert!(
                    !p.inputs().is_empty(),
                    "{}: a profile names no inputs",
                    e.name
                );
            }
        }
    }
}
