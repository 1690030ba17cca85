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
    /// Files outside `results/` with uncommitted changes (untracked ones included) when the run
    /// started: empty when the run's code is exactly `commit`. Absent in records written before
    /// kiln recorded it, where only `commit`'s `-dirty` mark says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncommitted: Option<Vec<String>>,
}

/// The working tree a run came from: its commit and the files that differ from it.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeState {
    /// Short commit hash, with `-dirty` when `uncommitted` is not empty; `unknown` outside git.
    pub commit: String,
    /// Paths (relative to the repository root) outside `results/` with uncommitted changes.
    pub uncommitted: Vec<String>,
}

/// The state of the git tree in the current directory. Changes under `results/` do not count:
/// committing one experiment's results must not make the next run look dirty.
pub fn tree_state() -> TreeState {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
    };
    let Some(c) = run(&["rev-parse", "--short=12", "HEAD"])
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
    else {
        return TreeState {
            commit: "unknown".into(),
            uncommitted: Vec::new(),
        };
    };
    // Porcelain v1 with -z: `XY path\0`, renames followed by their source path.
    let status = run(&["status", "--porcelain", "-z", "--untracked-files=all"]).unwrap_or_default();
    let mut uncommitted = Vec::new();
    let mut fields = status.split('\0').filter(|f| !f.is_empty());
    while let Some(f) = fields.next() {
        if f.len() < 4 {
            continue;
        }
        let (code, path) = (&f[..2], &f[3..]);
        if code.starts_with('R') || code.starts_with('C') {
            fields.next();
        }
        if !path.starts_with("results/") {
            uncommitted.push(path.to_string());
        }
    }
    uncommitted.sort();
    uncommitted.dedup();
    TreeState {
        commit: if uncommitted.is_empty() {
            c
        } else {
            format!("{c}-dirty")
        },
        uncommitted,
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
