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

/// Reads `experiments/<name>.toml` into profile type `P`, strictly: a key no setting reads (a
/// misspelt `train_exampels`) is an error naming it, not a silent default.
pub fn load<P: serde::de::DeserializeOwned>(name: &str) -> Result<ExperimentFile<P>> {
    let path = experiments_dir().join(format!("{name}.toml"));
    let file: ExperimentFile<P> = load_strict(&path)?;
    if file.name != name {
        anyhow::bail!(
            "{}: `name = \"{}\"` does not match the file name; rename one of them",
            path.display(),
            file.name
        );
    }
    Ok(file)
}

/// Reads `experiments/<name>.toml` for `kiln list`: only the fields every profile shares, the
/// rest ignored (the typed [`load`] checks them).
pub fn load_info(name: &str) -> Result<ExperimentInfo> {
    load_from(&experiments_dir().join(format!("{name}.toml")))
}

fn read_settings(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "{}: cannot read experiment settings (run `kiln list` for the known experiments)",
            path.display()
        )
    })
}

/// Parses a TOML file into `T`, ignoring keys `T` does not have.
pub fn load_from<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_settings(path)?;
    toml::from_str(&text)
        .map_err(|e| anyhow!("{}: invalid experiment settings: {e}", path.display()))
}

/// Parses a TOML file into `T`; a key that `T` does not read is an error listing every such key.
pub fn load_strict<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    parse_strict(&read_settings(path)?, path)
}

/// [`load_strict`] on text already read; `path` is for the messages.
pub fn parse_strict<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| anyhow!("{}: invalid experiment settings: {e}", path.display()))?;
    let mut unknown = Vec::new();
    let parsed: std::result::Result<T, _> =
        serde_ignored::deserialize(de, |p| unknown.push(p.to_string()));
    let value = parsed.map_err(|e| {
        // A misspelt required key shows up as a missing field; name the misspelling too.
        let also = if unknown.is_empty() {
            String::new()
        } else {
            format!(
                " (unknown setting(s) {}: misspelt?)",
                unknown
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        anyhow!("{}: invalid experiment settings{also}: {e}", path.display())
    })?;
    if !unknown.is_empty() {
        anyhow::bail!(
            "{}: unknown setting(s) {}: no setting has that name (a misspelling?); fix or remove them",
            path.display(),
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(value)
}

/// Keys whose numbers count things that cannot be zero (sizes, lengths, epochs, steps, seeds as
/// a count): `batch_size = 0` must not run as batch 1.
const POSITIVE: &[&str] = &[
    "batch_size",
    "batch",
    "eval_batch",
    "bench_batch",
    "micro_batch",
    "epochs",
    "max_epochs",
    "max_len",
    "max_updates",
    "max_tokens",
    "seeds",
    "layers",
    "heads",
    "n_layer",
    "n_head",
    "n_embd",
    "d_model",
    "width",
    "hidden",
    "ffn",
    "image_size",
    "patch_size",
    "beam",
    "train_examples",
    "dev_examples",
    "dev_questions",
    "seq_len",
    "total_steps",
    "target_steps",
    "small_steps",
    "eval_every",
    "eval_blocks",
    "runs",
    "samples",
    "num_samples",
    "bench_runs",
    "bench_pairs",
    "output_dim",
    "word_dim",
    "text_hidden",
    "mlp_width",
    "norm_len",
    "evals",
    "random_draws",
    "lr",
    "learning_rate",
    "weights_lr",
    "arch_lr",
    "lr_base",
    "threshold_learning_rate",
    "temperature",
    "tau0",
];

/// Keys of [`POSITIVE`] that, as an array, list values rather than sizes.
const LISTS_OF_VALUES: &[&str] = &["seeds"];

/// Keys that hold a probability or fraction in [0, 1).
const FRACTION: &[&str] = &[
    "dropout",
    "attention_dropout",
    "label_smoothing",
    "warmup_ratio",
    "weights_fraction",
];

/// Keys that cannot be negative.
const NON_NEGATIVE: &[&str] = &["weight_decay", "warmup", "clip_norm", "clip"];

/// Checks every number of profile `profile` of `experiments/<experiment>.toml` as the file
/// writes it: finite (TOML admits `nan` and `inf`, which serde would pass on), and in range for
/// the keys above, wherever they sit in the profile's tables and arrays. The message names the
/// file, the profile, the dotted key and the range.
pub fn check_numbers(experiment: &str, profile: &str) -> Result<()> {
    let path = experiments_dir().join(format!("{experiment}.toml"));
    check_numbers_in(&read_settings(&path)?, &path, profile)
}

/// [`check_numbers`] on text already read.
pub fn check_numbers_in(text: &str, path: &Path, profile: &str) -> Result<()> {
    let v: toml::Value = toml::from_str(text)
        .map_err(|e| anyhow!("{}: invalid experiment settings: {e}", path.display()))?;
    let Some(p) = v.get("profiles").and_then(|p| p.get(profile)) else {
        anyhow::bail!("{}: no profile `{profile}`", path.display());
    };
    let mut bad = Vec::new();
    walk(p, "", None, &mut bad);
    if bad.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{}, profile `{profile}`: {}",
        path.display(),
        bad.join("; ")
    )
}

fn walk(v: &toml::Value, path: &str, key: Option<&str>, bad: &mut Vec<String>) {
    use toml::Value;
    let x = match v {
        Value::Table(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(x, &p, Some(k), bad);
            }
            return;
        }
        Value::Array(a) => {
            // `seeds = [0, 1]` lists seed values (0 is one); `seeds = 3` counts them.
            let key = key.filter(|k| !LISTS_OF_VALUES.contains(k));
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}[{i}]"), key, bad);
            }
            return;
        }
        Value::Float(x) => *x,
        Value::Integer(i) => *i as f64,
        _ => return,
    };
    let k = key.unwrap_or("");
    if !x.is_finite() {
        bad.push(format!("`{path}` = {x} is not a finite number"));
    } else if POSITIVE.contains(&k) && x <= 0.0 {
        bad.push(format!("`{path}` = {x} must be above 0"));
    } else if FRACTION.contains(&k) && !(0.0..1.0).contains(&x) {
        bad.push(format!("`{path}` = {x} must lie in [0, 1)"));
    } else if NON_NEGATIVE.contains(&k) && x < 0.0 {
        bad.push(format!("`{path}` = {x} cannot be negative"));
    }
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

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Train {
        epochs: f64,
        batch_size: usize,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Prof {
        description: String,
        train_examples: Option<usize>,
        train: Train,
    }

    const GOOD: &str = "name = \"x\"\ntitle = \"t\"\nreference = \"r\"\n[profiles.mini]\ndescription = \"d\"\ntrain_examples = 10\n[profiles.mini.train]\nepochs = 3.0\nbatch_size = 8\n";

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let p = Path::new("experiments/x.toml");
        parse_strict::<ExperimentFile<Prof>>(GOOD, p).unwrap();
        let typo = GOOD.replace("train_examples", "train_exampels");
        let e = parse_strict::<ExperimentFile<Prof>>(&typo, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profiles.mini.train_exampels") && e.contains("x.toml"),
            "{e}"
        );
        let nested = GOOD.replace("batch_size", "batchsize");
        let e = parse_strict::<ExperimentFile<Prof>>(&nested, p).unwrap_err();
        assert!(e.to_string().contains("batchsize"), "{e}");
    }

    #[test]
    fn numbers_out_of_range_or_not_finite_are_errors() {
        let p = Path::new("experiments/x.toml");
        check_numbers_in(GOOD, p, "mini").unwrap();
        // A list of seed values may hold seed 0; a count of seeds may not be 0 (below).
        check_numbers_in(
            &GOOD.replace("train_examples = 10", "train_examples = 10\nseeds = [0, 1]"),
            p,
            "mini",
        )
        .unwrap();
        for (from, to, want) in [
            (
                "batch_size = 8",
                "batch_size = 0",
                "train.batch_size` = 0 must be above 0",
            ),
            ("epochs = 3.0", "epochs = nan", "not a finite number"),
            ("epochs = 3.0", "epochs = inf", "not a finite number"),
            ("epochs = 3.0", "epochs = -1.0", "must be above 0"),
            (
                "train_examples = 10",
                "train_examples = 10\nseeds = 0",
                "seeds` = 0 must be above 0",
            ),
        ] {
            let e = check_numbers_in(&GOOD.replace(from, to), p, "mini")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.contains("profile `mini`"),
                "{to}: {e}"
            );
        }
    }
}
