//! `experiments/<name>.toml`: one file per reproduced table, with the paper's numbers and the
//! profiles' typed settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

/// An experiment file with profiles of type `P` (each paper crate defines its own).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentFile<P> {
    pub name: String,
    pub title: String,
    /// The paper and what of it the table can be compared with.
    pub reference: String,
    /// The paper's numbers, as the `[paper]` table of the file gives them.
    #[serde(default)]
    pub paper: PaperNumbers,
    pub profiles: BTreeMap<String, P>,
}

/// The paper's numbers: `key = number` or nested tables (`[paper.width] base = 21.6`), looked up
/// by dotted path. Kept in the TOML, not in Rust, so they are read, cited and corrected in one
/// place, and copied into every run.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaperNumbers(pub BTreeMap<String, serde_json::Value>);

impl PaperNumbers {
    /// The number at a dotted path (`sst2`, `width.base`).
    pub fn get(&self, path: &str) -> Option<f64> {
        let mut parts = path.split('.');
        let mut v = self.0.get(parts.next()?)?;
        for p in parts {
            v = v.get(p)?;
        }
        v.as_f64()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
}

/// What `kiln list` shows of any profile, whatever its paper: fields a profile may lack are
/// optional (staged-training trains from scratch on a corpus, with no model or tasks).
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileInfo {
    pub description: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default)]
    pub corpus: Option<String>,
    /// Click-log experiments name datasets rather than tasks.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Experiments with one named data source (clip-vil: `synthetic`, `vqa2-yesno`, `vqa-v2`).
    #[serde(default)]
    pub data: Option<String>,
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
        if !self.datasets.is_empty() {
            v.push(format!("datasets: {}", self.datasets.join(", ")));
        }
        if let Some(d) = &self.data {
            v.push(format!("data: {d}"));
        }
        v.join("; ")
    }
}

/// Any experiment file read for listing.
pub type ExperimentInfo = ExperimentFile<ProfileInfo>;

/// The `experiments/` folder of the checkout.
pub fn experiments_dir() -> PathBuf {
    kiln_core::paths::workspace_root().join("experiments")
}

/// Reads `experiments/<name>.toml` into profile type `P`.
pub fn load<P: serde::de::DeserializeOwned>(name: &str) -> Result<ExperimentFile<P>> {
    let path = experiments_dir().join(format!("{name}.toml"));
    let file: ExperimentFile<P> = load_from(&path)?;
    if file.name != name {
        anyhow::bail!(
            "{}: `name = \"{}\"` does not match the file name; rename one of them",
            path.display(),
            file.name
        );
    }
    Ok(file)
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

/// The names of every `experiments/*.toml`, sorted.
pub fn all_names() -> Result<Vec<String>> {
    let dir = experiments_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot list experiments", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_numbers_by_dotted_path() {
        let f: ExperimentFile<ProfileInfo> = toml::from_str(
            "name = \"x\"\ntitle = \"t\"\nreference = \"r\"\n[paper]\nsst2 = 93.5\n[paper.width]\nbase = 21.6\nnote = \"n\"\n[profiles.smoke]\ndescription = \"d\"\n",
        )
        .unwrap();
        assert_eq!(f.paper.get("sst2"), Some(93.5));
        assert_eq!(f.paper.get("width.base"), Some(21.6));
        assert_eq!(f.paper.get("width.note"), None, "text is not a number");
        assert_eq!(f.paper.get("width.large"), None);
        assert_eq!(f.paper.get("nothing"), None);
    }
}
