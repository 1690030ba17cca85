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
    /// Why this profile ran: requested with --profile, or which inputs resolved.
    #[serde(default)]
    pub profile_choice: String,
    /// The paper's numbers from the experiment file, beside ours.
    #[serde(default)]
    pub paper: serde_json::Value,
    /// Every file the run wrote, relative to its folder.
    #[serde(default)]
    pub files: Vec<String>,
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
