//! What the user asked for on the command line (`kiln reproduce <experiment> ...`).

use std::path::{Path, PathBuf};

use kiln_core::DeviceChoice;

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    DeviceChoice::parse(s).map_err(|e| e.to_string())
}

/// `--epochs`: a finite number above zero (fractions allowed where the experiment trains by
/// steps: 0.5 is half an epoch). `inf` would never end, `0`, `-1` and `NaN` would train one step
/// and print NaN.
fn parse_epochs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    check_epochs(v)?;
    Ok(v)
}

fn check_epochs(v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && v <= 1e6 {
        Ok(())
    } else {
        Err(format!(
            "{v} epochs: expected a finite number above 0 (and at most 1e6)"
        ))
    }
}

fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0: expected at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// The arguments every experiment accepts. Experiments read the ones that apply to them (a
/// corpus experiment has no `--tasks`); giving one an experiment does not read is an error
/// (`Paper::flags`), and run.json records the overrides applied (`settings.overrides`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// smoke | mini | paper. Default: the best profile whose inputs resolve (it says which and
    /// why); `paper` runs only when asked for (it is sized for a GPU).
    #[arg(long)]
    pub profile: Option<String>,
    /// Backend device: flex (CPU, default), tch (LibTorch on CPU), tch-cuda, tch-cuda:N
    /// (LibTorch on CUDA), ndarray, wgpu, vulkan, cuda, cuda:N. Non-flex backends need the
    /// matching cargo feature (`just backend=tch ...`, `just backend=wgpu ...`).
    #[arg(long, default_value = "flex", env = "KILN_DEVICE", value_parser = parse_device)]
    pub device: DeviceChoice,
    /// Data folder (GLUE: a glue_data/-style folder or the hub's parquet files; corpora: the
    /// corpus folder). Else KILN_DATA, datasets/cache, ../shared/data, then a download.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HuggingFace model directory (config.json, model.safetensors, tokenizer.json), or a folder
    /// of fine-tuned checkpoints with one sub-directory per task. Else KILN_MODELS/<name>,
    /// datasets/cache/<name>, then a download.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Results root: tables, plots and run.json go to <out>/<experiment>/<profile>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Cache root for downloads, fine-tuned and pruned checkpoints, token caches. Default:
    /// KILN_CACHE, else datasets/cache in the checkout.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Comma-separated subset of the profile's tasks (e.g. sst2,mrpc) or datasets (criteo-10k).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Seed of every generator the run draws from (data order, initialisation, sampling).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Never try to download missing inputs.
    #[arg(long)]
    pub no_download: bool,
    /// Override the training-subset size of every task (quick trials; recorded in run.json).
    #[arg(long, value_parser = parse_count)]
    pub train_examples: Option<usize>,
    /// Override the number of epochs of every task (a finite number above 0).
    #[arg(long, value_parser = parse_epochs)]
    pub epochs: Option<f64>,
    /// Count and skip malformed rows of row-oriented data (click logs) instead of stopping at
    /// the first; the run prints how many were skipped and the first line numbers.
    #[arg(long)]
    pub lenient: bool,
}

impl RunArgs {
    /// Arguments as the command line's defaults would give them, for `profile`, writing results
    /// under `out` and caching under `cache` (tests pass temporary folders for both, so that no
    /// test writes into the checkout).
    pub fn new(profile: &str, out: &Path, cache: &Path) -> Self {
        Self {
            profile: Some(profile.to_string()),
            device: DeviceChoice::Flex,
            data_dir: None,
            model: None,
            out: out.to_path_buf(),
            cache: Some(cache.to_path_buf()),
            tasks: None,
            seed: 42,
            no_download: true,
            train_examples: None,
            epochs: None,
            lenient: false,
        }
    }

    pub fn download(&self) -> bool {
        !self.no_download
    }

    /// The cache root this run reads and writes.
    pub fn cache_root(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(kiln_core::paths::cache_dir)
    }

    /// Checks what clap cannot: values set from code (tests, library users) and paths that must
    /// exist. An explicit `--data-dir` or `--model` that does not exist is an error, never a
    /// silent fall-back to another source.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(e) = self.epochs {
            check_epochs(e).map_err(|m| anyhow::anyhow!("--epochs {m}"))?;
        }
        if self.train_examples == Some(0) {
            anyhow::bail!("--train-examples 0: expected at least 1");
        }
        if let Some(t) = &self.tasks {
            if t.is_empty() || t.iter().any(|t| t.trim().is_empty()) {
                anyhow::bail!(
                    "--tasks {:?}: an empty task name; pass e.g. --tasks sst2,mrpc",
                    t.join(",")
                );
            }
            if let Some((_, d)) = t.iter().enumerate().find(|(i, x)| t[..*i].contains(x)) {
                anyhow::bail!(
                    "--tasks {}: `{d}` is listed twice; list each task once",
                    t.join(",")
                );
            }
        }
        for (flag, p) in [("--data-dir", &self.data_dir), ("--model", &self.model)] {
            if let Some(p) = p {
                if !p.exists() {
                    anyhow::bail!(
                        "{flag} {}: no such file or folder (given explicitly, so kiln does not fall back to another source); check the path",
                        p.display()
                    );
                }
            }
        }
        if let Some(c) = &self.cache {
            if c.exists() && !c.is_dir() {
                anyhow::bail!("--cache {}: is a file, not a folder", c.display());
            }
        }
        Ok(())
    }

    /// The command-line overrides this run was given, for run.json (`settings.overrides`): the
    /// profile recorded beside them is the file's, these replace its values.
    pub fn overrides(&self) -> serde_json::Value {
        serde_json::json!({
            "tasks": self.tasks,
            "epochs": self.epochs,
            "train_examples": self.train_examples,
            "data_dir": self.data_dir,
            "model": self.model,
            "lenient": self.lenient,
            "seed": self.seed,
        })
    }

    /// The profile's task list, or the `--tasks` subset.
    pub fn tasks_or(&self, profile_tasks: &[String]) -> Vec<String> {
        self.tasks.clone().unwrap_or_else(|| profile_tasks.to_vec())
    }
}
