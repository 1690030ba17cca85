//! What the benchmarks share: their arguments, the PyTorch peer runner (the same model and
//! step in PyTorch, in the same run, so ratios are comparable), and the table writer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use kiln_core::DeviceChoice;
use kiln_report::Table;

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    DeviceChoice::parse(s).map_err(|e| e.to_string())
}

/// `kiln bench` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Only these benchmarks, comma-separated (default: all; an unknown name lists them).
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Devices to measure, comma-separated (default: flex, plus ndarray when compiled in).
    #[arg(long = "devices", value_delimiter = ',', value_parser = parse_device)]
    pub device_list: Vec<DeviceChoice>,
    /// Model directory (default: the fetched all-MiniLM-L6-v2).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed runs (median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Cache root holding the fine-tuned and pruned checkpoints (default: KILN_CACHE, else
    /// datasets/cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

impl BenchArgs {
    /// The devices to measure: those requested, else flex (and ndarray when compiled in).
    pub fn devices(&self) -> Vec<DeviceChoice> {
        if !self.device_list.is_empty() {
            return self.device_list.clone();
        }
        let mut v = vec![DeviceChoice::Flex];
        if DeviceChoice::NdArray.device().is_ok() {
            v.push(DeviceChoice::NdArray);
        }
        v
    }

    /// The device the single-device benchmarks run on: the first requested, else flex.
    pub fn first_device(&self) -> Result<Device> {
        Ok(self
            .devices()
            .first()
            .cloned()
            .unwrap_or(DeviceChoice::Flex)
            .device()?)
    }

    /// The cache root the benchmarks read checkpoints from.
    pub fn cache_root(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(kiln_core::paths::cache_dir)
    }

    pub fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == name))
    }

    /// `results/bench`.
    pub fn dir(&self) -> PathBuf {
        self.out.join("bench")
    }

    /// The thread count as the environment sets it, for table notes.
    pub fn threads_note() -> String {
        format!(
            "RAYON_NUM_THREADS={}",
            std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset (all cores)".into())
        )
    }
}

/// Writes `<stem>.md` and `<stem>.csv` under `dir`.
pub fn write_table(dir: &Path, stem: &str, table: &Table) -> Result<()> {
    kiln_core::atomic_write(
        &dir.join(format!("{stem}.md")),
        table.to_markdown().as_bytes(),
    )?;
    kiln_core::atomic_write(&dir.join(format!("{stem}.csv")), table.to_csv().as_bytes())?;
    println!("\n{}", table.to_markdown());
    Ok(())
}

/// Runs a PyTorch peer script (`bench/<script>`) under `KILN_PEER_PYTHON` (`None` when unset)
/// with `args` and the thread count kiln uses, and returns its JSON, which must carry
/// `median_s`.
pub fn run_peer(script: &str, args: &[String]) -> Result<Option<(f64, serde_json::Value)>> {
    let Some(py) = std::env::var_os("KILN_PEER_PYTHON") else {
        return Ok(None);
    };
    let script = kiln_core::paths::workspace_root()
        .join("bench")
        .join(script);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "1".into())
    });
    let out = std::process::Command::new(&py)
        .arg(&script)
        .args(args)
        .arg(threads)
        .output()
        .with_context(|| format!("cannot run KILN_PEER_PYTHON={}", py.to_string_lossy()))?;
    if !out.status.success() {
        anyhow::bail!(
            "PyTorch peer {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} did not print JSON", script.display()))?;
    let median = v["median_s"]
        .as_f64()
        .with_context(|| format!("{}'s JSON lacks median_s", script.display()))?;
    Ok(Some((median, v)))
}
