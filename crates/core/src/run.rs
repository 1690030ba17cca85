//! Run metadata: what produced a result, so every number in results/ can be traced to a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Contents of `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub experiment: String,
    pub profile: String,
    pub backend: String,
    pub device: String,
    pub commit: String,
    pub seed: u64,
    pub wall_time_s: f64,
    /// True when the inputs were generated (smoke profile): tables say so too.
    pub synthetic: bool,
    pub started_at_unix: u64,
    pub kiln_version: String,
    /// Flat `name -> value` metrics, e.g. `sst2.accuracy`.
    pub metrics: BTreeMap<String, f64>,
    /// Free-form settings actually used (subset sizes, epochs, model path, ...).
    pub settings: serde_json::Value,
}

impl RunMeta {
    /// Metadata of a run that started at `started_at_unix` and took `wall_time_s`, filling in the
    /// backend, commit and kiln version; `device_label` is what the user asked for (`cuda:0`, ...).
    #[allow(clippy::too_many_arguments)]
    pub fn for_run(
        experiment: &str,
        profile: &str,
        device: &burn::tensor::Device,
        device_label: String,
        seed: u64,
        started_at_unix: u64,
        wall_time_s: f64,
        synthetic: bool,
        metrics: BTreeMap<String, f64>,
        settings: serde_json::Value,
    ) -> Self {
        Self {
            experiment: experiment.into(),
            profile: profile.into(),
            backend: crate::backend_name(device),
            device: device_label,
            commit: git_commit(),
            seed,
            wall_time_s,
            synthetic,
            started_at_unix,
            kiln_version: env!("CARGO_PKG_VERSION").into(),
            metrics,
            settings,
        }
    }
}

/// The git commit of the working tree, with `-dirty` when it has uncommitted changes.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty())
                .unwrap_or(false);
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".into(),
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
