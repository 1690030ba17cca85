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
    /// Timed runs per round (median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Rounds of (every kiln device, then the PyTorch peer), alternating, for the benchmarks
    /// compared with PyTorch: the ratio is the median of the per-round ratios, with their range,
    /// so that drift on a shared machine hits both sides alike.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
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

/// Per-round medians of each kiln device and of the PyTorch peer, measured alternately.
#[derive(Debug, Clone, Default)]
pub struct Interleaved {
    /// (device label, median seconds of each round).
    pub kiln: Vec<(String, Vec<f64>)>,
    /// ("pytorch <version>", median seconds of each round), with `KILN_PEER_PYTHON`.
    pub peer: Option<(String, Vec<f64>)>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

impl Interleaved {
    /// Median over rounds of a row's per-round medians.
    pub fn seconds(times: &[f64]) -> f64 {
        median(times)
    }

    /// Throughput ratio vs PyTorch (`peer_s / kiln_s` per round): (median, min, max).
    pub fn ratio(&self, times: &[f64]) -> Option<(f64, f64, f64)> {
        let (_, peer) = self.peer.as_ref()?;
        let r: Vec<f64> = times.iter().zip(peer).map(|(k, p)| p / k).collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((median(&r), lo, hi))
    }

    /// "0.99 [0.95-1.02]" (median ratio and its range over rounds), or "—" without a peer.
    pub fn ratio_text(&self, times: &[f64]) -> String {
        match self.ratio(times) {
            Some((m, lo, hi)) if times.len() > 1 => format!("{m:.2} [{lo:.2}-{hi:.2}]"),
            Some((m, _, _)) => format!("{m:.2}"),
            None => "—".into(),
        }
    }
}

/// Runs `a.rounds` rounds of: `kiln(device)` for every device (returning that round's median
/// seconds), then the peer script with its arguments (its JSON carries `median_s`), if any. Progress and each round's
/// numbers are printed as they come.
pub fn interleaved(
    a: &BenchArgs,
    mut kiln: impl FnMut(&DeviceChoice) -> Result<f64>,
    peer: Option<(&str, &[String])>,
) -> Result<Interleaved> {
    let devices = a.devices();
    let mut out = Interleaved {
        kiln: devices.iter().map(|d| (d.label(), Vec::new())).collect(),
        peer: None,
    };
    let rounds = a.rounds.max(1);
    for r in 0..rounds {
        for (i, d) in devices.iter().enumerate() {
            let t = kiln(d)?;
            println!("  round {}/{rounds} {}: {t:.4} s", r + 1, d.label());
            out.kiln[i].1.push(t);
        }
        let Some((script, args)) = peer else { continue };
        if let Some((t, v)) = run_peer(script, args)? {
            let name = format!("pytorch {}", v["torch"].as_str().unwrap_or(""));
            println!("  round {}/{rounds} {name}: {t:.4} s", r + 1);
            out.peer.get_or_insert_with(|| (name, Vec::new())).1.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_per_round_and_report_their_range() {
        let i = Interleaved {
            kiln: vec![("tch".into(), vec![1.0, 2.0, 1.0])],
            peer: Some(("pytorch".into(), vec![1.0, 1.0, 0.5])),
        };
        let (m, lo, hi) = i.ratio(&i.kiln[0].1).unwrap();
        assert_eq!((m, lo, hi), (0.5, 0.5, 1.0));
        assert_eq!(i.ratio_text(&i.kiln[0].1), "0.50 [0.50-1.00]");
        assert_eq!(Interleaved::seconds(&[3.0, 1.0, 2.0]), 2.0);
        let none = Interleaved::default();
        assert_eq!(none.ratio_text(&[1.0]), "—");
    }
}
