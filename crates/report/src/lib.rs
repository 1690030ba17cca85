//! kiln-report: paper-style tables (Markdown + CSV, paper vs kiln with deltas), plots (SVG +
//! PNG, fonts embedded so no system font library is needed) and `run.json`, all written
//! atomically so an interrupted run never leaves half a result.

pub mod figure;
pub mod plot;
pub mod table;

use std::path::Path;

pub use figure::{
    write_chart, Axis, Bars, Better, Chart, ColorMap, ColorScale, Figure, MapMarker, MapPanel,
    Maps, Point, Reference, Style,
};
pub use plot::{heatmap, line_plot, Series};
pub use table::{Cell, Source, Table};

pub use kiln_core::RunMeta;

/// Mean and sample standard deviation (n − 1; 0 for a single value) of per-seed results.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// A row label as a metric key or file stem: lowercase ASCII alphanumerics, every other run of
/// characters one `-` (`"ViT + Pythia, no positions"` → `vit-pythia-no-positions`).
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Core(#[from] kiln_core::CoreError),
    #[error("plot {path}: {msg}")]
    Plot { path: String, msg: String },
    #[error("serialize: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `table.md`, `table.csv` and `run.json` into `dir`.
pub fn write_results(dir: &Path, table: &Table, meta: &RunMeta) -> Result<(), ReportError> {
    kiln_core::atomic_write(&dir.join("table.md"), table.to_markdown().as_bytes())?;
    kiln_core::atomic_write(&dir.join("table.csv"), table.to_csv().as_bytes())?;
    kiln_core::atomic_write(
        &dir.join("run.json"),
        serde_json::to_string_pretty(meta)?.as_bytes(),
    )?;
    Ok(())
}
