//! The run record: everything a run produced, written at once by [`RunRecord::finish`].
//!
//! A run builds its tables, plots, per-example predictions, metrics and settings in memory;
//! `finish` renders them into a staging folder beside the target and swaps it in (one
//! `RENAME_EXCHANGE` on Linux, see [`crate::outdir`]), so `results/<experiment>/<profile>/`
//! always holds one whole run: the previous one if this one failed or was killed while writing,
//! never a mix, never a half-written file. The run holds the folder's lock from its start
//! ([`crate::RunContext::new`]) to its end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kiln_report::{Series, Table};
use serde::Serialize;

use crate::{PaperNumbers, RunContext};

/// A plot, rendered as `<stem>.svg`, `<stem>.png` and `<stem>.pdf`.
pub enum Plot {
    /// A figure of [`kiln_report::figure`]: scatter with Pareto front, curves, grouped bars,
    /// seed spreads, log axes, paper numbers as reference marks.
    Chart(kiln_report::Chart),
    Line {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
    },
    Heatmap {
        title: String,
        rows: Vec<(String, Vec<f64>)>,
        col_labels: Vec<String>,
    },
}

impl Plot {
    pub fn line(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Self {
        Self::Line {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        }
    }

    fn render(&self, stem: &Path) -> Result<()> {
        match self {
            Self::Chart(c) => kiln_report::write_chart(stem, c)?,
            Self::Line {
                title,
                x_label,
                y_label,
                series,
            } => kiln_report::line_plot(stem, title, x_label, y_label, series)?,
            Self::Heatmap {
                title,
                rows,
                col_labels,
            } => kiln_report::heatmap(stem, title, rows, col_labels)?,
        }
        Ok(())
    }
}

/// What a run produced. The main table is named `table` (`table.md`, `table.csv`).
#[derive(Default)]
pub struct RunRecord {
    synthetic: bool,
    tables: Vec<(String, Table)>,
    plots: Vec<(String, Plot)>,
    files: Vec<(String, Vec<u8>)>,
    metrics: BTreeMap<String, f64>,
    settings: serde_json::Map<String, serde_json::Value>,
    paper: PaperNumbers,
}

impl RunRecord {
    /// `synthetic`: the inputs were generated (smoke); run.json says so, as the tables must.
    pub fn new(synthetic: bool) -> Self {
        Self {
            synthetic,
            ..Self::default()
        }
    }

    pub fn table(&mut self, stem: &str, t: Table) -> &mut Self {
        self.tables.push((stem.to_string(), t));
        self
    }

    pub fn plot(&mut self, stem: &str, p: Plot) -> &mut Self {
        self.plots.push((stem.to_string(), p));
        self
    }

    /// Per-example predictions as CSV under `predictions/<name>.csv`.
    pub fn predictions_csv(&mut self, name: &str, header: &[&str], rows: &[Vec<String>]) {
        let field = kiln_report::table::csv_field;
        let mut s = header
            .iter()
            .map(|h| field(h))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| field(c)).collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        self.file(&format!("predictions/{name}.csv"), s.into_bytes());
    }

    /// Per-example predictions as JSON under `predictions/<name>.json` (e.g. SQuAD's official
    /// `{question id: answer text}`).
    pub fn predictions_json(&mut self, name: &str, value: &impl Serialize) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value)?;
        self.file(&format!("predictions/{name}.json"), bytes);
        Ok(())
    }

    /// Any other file of the run, at a path relative to the run folder.
    pub fn file(&mut self, rel: &str, bytes: Vec<u8>) -> &mut Self {
        self.files.push((rel.to_string(), bytes));
        self
    }

    pub fn metric(&mut self, key: impl Into<String>, v: f64) -> &mut Self {
        self.metrics.insert(key.into(), v);
        self
    }

    /// A setting or result detail for run.json (`settings.<key>`).
    pub fn setting(&mut self, key: &str, v: impl Serialize) -> &mut Self {
        self.settings.insert(
            key.to_string(),
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        );
        self
    }

    pub fn paper(&mut self, p: &PaperNumbers) -> &mut Self {
        self.paper = p.clone();
        self
    }

    /// Writes tables (Markdown + CSV), plots (SVG + PNG), predictions and `run.json` into
    /// `ctx.out`, all or nothing, and prints the tables.
    pub fn finish(self, ctx: &RunContext) -> Result<PathBuf> {
        if !self.tables.iter().any(|(n, _)| n == "table") {
            bail!(
                "{}: the run produced no main table (a bug in the experiment)",
                ctx.experiment
            );
        }
        let out = ctx.out.clone();
        let (parent, leaf) = crate::outdir::split(&out);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
        let staging = parent.join(format!(".{leaf}.staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        if let Err(e) = self.write_into(&staging, ctx) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        crate::outdir::swap_in(&staging, &out)?;
        for (_, t) in &self.tables {
            println!("\n{}", t.to_markdown());
        }
        println!("results written to {}", out.display());
        Ok(out)
    }

    fn write_into(&self, dir: &Path, ctx: &RunContext) -> Result<()> {
        // Two files at one path: the later would silently replace the earlier (a repeated seed
        // or setting), and the table would cite one file for two values.
        let mut paths = std::collections::HashSet::new();
        for rel in self.files.iter().map(|(r, _)| r.clone()).chain(
            self.tables
                .iter()
                .flat_map(|(t, _)| [format!("{t}.md"), format!("{t}.csv")]),
        ) {
            if !paths.insert(rel.clone()) {
                bail!(
                    "{}: the run wrote `{rel}` twice (a repeated seed, task or setting in the profile?); each file must have one writer",
                    ctx.experiment
                );
            }
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let mut written = Vec::new();
        for (stem, t) in &self.tables {
            for (ext, body) in [("md", t.to_markdown()), ("csv", t.to_csv())] {
                let name = format!("{stem}.{ext}");
                kiln_core::atomic_write(&dir.join(&name), body.as_bytes())?;
                written.push(name);
            }
        }
        for (stem, p) in &self.plots {
            p.render(&dir.join(stem))?;
            for ext in ["svg", "png", "pdf"] {
                written.push(format!("{stem}.{ext}"));
            }
        }
        for (rel, bytes) in &self.files {
            kiln_core::atomic_write(&dir.join(rel), bytes)?;
            written.push(rel.clone());
        }
        // Where the tables' seed statistics come from; checked below, before the folder is
        // swapped in, so a table that its own prediction files contradict is never written.
        let checks = crate::verify::collect(&self.tables);
        for c in &checks.checks {
            // A cited folder (e.g. a ROD2021 submission folder) counts if the run wrote into it.
            let wrote = |f: &String| {
                written.contains(f) || written.iter().any(|w| w.starts_with(&format!("{f}/")))
            };
            if let Some(f) = c.source.files.iter().find(|f| !wrote(f)) {
                bail!(
                    "{}: table `{}` row {} column `{}` cites {f}, which the run did not write (a bug in the experiment)",
                    ctx.experiment,
                    c.table,
                    c.row,
                    c.column
                );
            }
        }
        kiln_core::atomic_write(
            &dir.join(crate::verify::CHECKS_FILE),
            serde_json::to_string_pretty(&checks)?.as_bytes(),
        )?;
        written.push(crate::verify::CHECKS_FILE.to_string());
        let verified = crate::verify::check_run(dir)?;
        if !verified.failures.is_empty() {
            bail!(
                "{}: {} table number(s) disagree with the prediction files they cite (a bug in the experiment):\n  {}",
                ctx.experiment,
                verified.failures.len(),
                verified.failures.join("\n  ")
            );
        }
        let meta = kiln_core::RunMeta {
            experiment: ctx.experiment.to_string(),
            profile: ctx.profile.clone(),
            backend: kiln_core::backend_name(&ctx.device),
            device: ctx.device_label(),
            commit: ctx.tree.commit.clone(),
            seed: ctx.seed,
            wall_time_s: ctx.elapsed(),
            synthetic: self.synthetic,
            started_at_unix: ctx.started_unix(),
            kiln_version: env!("CARGO_PKG_VERSION").into(),
            metrics: self.metrics.clone(),
            settings: serde_json::Value::Object(self.settings.clone()),
            profile_choice: ctx.profile_choice.clone(),
            paper: self.paper.to_json(),
            files: written,
            uncommitted: Some(ctx.tree.uncommitted.clone()),
        };
        kiln_core::atomic_write(
            &dir.join("run.json"),
            serde_json::to_string_pretty(&meta)?.as_bytes(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunArgs;

    fn ctx(out: &Path, cache: &Path) -> RunContext {
        let args = RunArgs::new("smoke", out, cache);
        RunContext::new("exp", "smoke", "requested with --profile", &args).unwrap()
    }

    fn record(value: f64) -> RunRecord {
        let mut r = RunRecord::new(true);
        let mut t = Table::new("t", &["a"]);
        t.push(vec![kiln_report::Cell::num(value, 1)]);
        r.table("table", t);
        r.metric("m", value);
        r.predictions_csv(
            "dev",
            &["idx", "prediction"],
            &[vec!["0".into(), "a,b".into()]],
        );
        r
    }

    #[test]
    fn finish_writes_everything_and_lists_it() {
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dir = record(1.0).finish(&ctx(out.path(), cache.path())).unwrap();
        assert_eq!(dir, out.path().join("exp/smoke"));
        let csv = std::fs::read_to_string(dir.join("predictions/dev.csv")).unwrap();
        assert_eq!(csv, "idx,prediction\n0,\"a,b\"\n", "RFC 4180 quoting");
        let meta: kiln_core::RunMeta =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        assert!(meta.synthetic);
        assert_eq!(meta.metrics["m"], 1.0);
        assert_eq!(meta.profile_choice, "requested with --profile");
        for f in ["table.md", "table.csv", "predictions/dev.csv"] {
            assert!(meta.files.iter().any(|x| x == f), "{f} not listed");
        }
    }

    #[test]
    fn a_failed_finish_keeps_the_previous_run_whole() {
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let c = ctx(out.path(), cache.path());
        let dir = record(1.0).finish(&c).unwrap();
        // A file under `table.md/`, which is a file by then: writing fails half-way.
        let mut bad = record(2.0);
        bad.file("table.md/x.csv", b"x".to_vec());
        assert!(bad.finish(&c).is_err());
        let md = std::fs::read_to_string(dir.join("table.md")).unwrap();
        assert!(md.contains("1.0") && !md.contains("2.0"), "{md}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        // Only the lock of the run still holding the folder (`c`).
        assert_eq!(leftovers, [".smoke.lock"], "{leftovers:?}");
        // A record without its main table is refused before anything is written.
        let mut none = RunRecord::new(true);
        none.metric("m", 3.0);
        assert!(none.finish(&c).is_err());
        assert!(std::fs::read_to_string(dir.join("table.md"))
            .unwrap()
            .contains("1.0"));
    }

    /// A record whose table cites a prediction file for an accuracy of `value` (the file
    /// gives 50%).
    fn sourced(value: f64, file: &str) -> RunRecord {
        let mut r = RunRecord::new(true);
        let mut t = Table::new("t", &["task", "acc"]);
        t.push(vec![
            kiln_report::Cell::text("sst2"),
            kiln_report::Cell::sourced(
                &[value],
                1,
                kiln_report::Source::new("glue/sst2/accuracy", vec![file.into()], 100.0),
            ),
        ]);
        r.table("table", t);
        r.predictions_csv(
            "dev",
            &["idx", "prediction", "label"],
            &[
                vec!["0".into(), "1".into(), "1".into()],
                vec!["1".into(), "1".into(), "0".into()],
            ],
        );
        r
    }

    #[test]
    fn tables_are_checked_against_their_prediction_files_before_they_are_written() {
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let c = ctx(out.path(), cache.path());
        let dir = sourced(50.0, "predictions/dev.csv").finish(&c).unwrap();
        let checks: crate::verify::Checks =
            serde_json::from_str(&std::fs::read_to_string(dir.join("checks.json")).unwrap())
                .unwrap();
        assert_eq!(checks.checks.len(), 1);
        assert_eq!(checks.checks[0].row_label, "sst2");
        let e = sourced(75.0, "predictions/dev.csv").finish(&c).unwrap_err();
        assert!(format!("{e:#}").contains("the files give 50.0"), "{e:#}");
        let e = sourced(50.0, "predictions/other.csv")
            .finish(&c)
            .unwrap_err();
        assert!(format!("{e:#}").contains("did not write"), "{e:#}");
        let mut twice = sourced(50.0, "predictions/dev.csv");
        twice.file("predictions/dev.csv", b"idx,prediction,label\n".to_vec());
        let e = twice.finish(&c).unwrap_err();
        assert!(format!("{e:#}").contains("twice"), "{e:#}");
        // The first run is still there, whole.
        assert!(std::fs::read_to_string(dir.join("table.md"))
            .unwrap()
            .contains("| sst2 | 50.0 |"));
    }
}
