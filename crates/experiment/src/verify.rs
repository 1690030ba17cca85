//! `kiln verify`: every number a table attributes to prediction files is recomputed from those
//! files, with the field's metric definitions, and compared with the table as written.
//!
//! A run states where its numbers come from by building them as [`Cell::sourced`]: the values,
//! and per value the prediction file it was computed from and the metric. [`crate::RunRecord`]
//! collects those cells into `checks.json` (table, row, column, metric, files) and, before the run
//! folder is swapped in, verifies it: a run whose tables disagree with its own prediction files
//! fails instead of being written. `kiln verify <folder>` repeats the check later, for any folder
//! of runs (the committed `results/` in CI), and reports where each run came from: its commit,
//! whether the tree had uncommitted changes, and whether the experiment's code changed since.
//!
//! Metrics (`Source::metric`; `<file>` arguments are relative to the run folder):
//! - `glue/<task>/<accuracy|f1|mcc|pearson|spearman>`: GLUE CSV (`prediction`, `label`
//!   columns, labels as GLUE writes them); `<task>` may be a synthetic task (numeric labels).
//! - `ctr/<log_loss|auc|accuracy|calibration>`: CSV with `p_click` and `label` (0/1) columns
//!   (calibration: Σp_click / Σlabel).
//! - `bleu:<reference file>`: sacreBLEU (13a, exp smoothing) of the hypothesis file's lines
//!   against the reference file's lines; `tokbleu:<reference file>`: tokenized BLEU as
//!   fairseq's `--scoring bleu` computes it.
//! - `vqa:<annotations file>`: the official VQA accuracy of a results file
//!   (`[{question_id, answer}]`) against annotations in the official shape;
//!   `vqa/subset:<annotations file>`: the same over only the annotated questions, the results
//!   file answering more (the official evaluation's `quesIds`, e.g. a split's novel questions).
//! - `squad/<exact|f1>:<gold file>`: the official SQuAD evaluation (percent) of predictions
//!   (`{id: answer}`) against a gold file in the official dataset layout.
//! - `rod/<stat>:<ground-truth folder>`: the ROD2021 radar detection metric
//!   ([`kiln_data::rod::evaluate_folders`], a fraction) of a submission **folder** (one
//!   `<SEQ>.txt` per sequence, the devkit's layout) against a ground-truth folder (`<SEQ>.txt`
//!   annotations and `frames.json`, see [`kiln_data::rod`]), all sequences pooled; `<stat>` is
//!   `ap`, `ap50`, `ap60`, `ap70`, `ap80`, `ap90`, `ar`, `ar50`, …, `ar90` (the devkit's 12
//!   statistics). A sequence without a submission file is an error, as in the devkit.
//! - `rod-subset/<stat>:<ground-truth folder>`: the same on the sequences the ground-truth
//!   folder lists only (a per-scene breakdown), other submission files ignored.
//! - `mean:<column>`: the mean of a numeric CSV column (e.g. a per-example loss).
//! - `weighted_mean:<column>:<weight column>`: Σ weight·value / Σ weight over a CSV's rows (e.g.
//!   a language model's eval loss from per-block mean losses weighted by predicted tokens).
//!
//! The tolerance is the table's rounding: half a unit in the last decimal the Markdown shows.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use kiln_data::GlueTask;
use kiln_report::{Cell, Source, Table};
use serde::{Deserialize, Serialize};

/// The file beside `run.json` that lists the checks.
pub const CHECKS_FILE: &str = "checks.json";

/// Where one table cell comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Table stem (`table` → `table.csv`).
    pub table: String,
    /// Data row, 0-based.
    pub row: usize,
    pub column: String,
    /// The row's text cells, for people reading a report.
    pub row_label: String,
    /// Decimals the Markdown table shows: the tolerance is half a unit in the last of them.
    pub decimals: usize,
    #[serde(flatten)]
    pub source: Source,
}

/// A cell by position, for people reading a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRef {
    pub table: String,
    pub row: usize,
    pub column: String,
    pub row_label: String,
}

/// Contents of `checks.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    pub checks: Vec<Check>,
    /// Seed statistics (`mean ± sd` cells) with no prediction files behind them.
    pub unsourced: Vec<CellRef>,
}

/// The checks of a run's tables: every [`Cell::Stat`] with a source is one check; those without
/// are listed as unsourced.
pub fn collect(tables: &[(String, Table)]) -> Checks {
    let mut out = Checks::default();
    for (stem, t) in tables {
        for (row, cells) in t.rows.iter().enumerate() {
            let row_label = cells
                .iter()
                .filter_map(|c| match c {
                    Cell::Text(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" · ");
            for (c, cell) in cells.iter().enumerate() {
                let Cell::Stat {
                    decimals, source, ..
                } = cell
                else {
                    continue;
                };
                let column = t.columns.get(c).cloned().unwrap_or_default();
                match source {
                    Some(s) => out.checks.push(Check {
                        table: stem.clone(),
                        row,
                        column,
                        row_label: row_label.clone(),
                        decimals: *decimals,
                        source: s.clone(),
                    }),
                    None => out.unsourced.push(CellRef {
                        table: stem.clone(),
                        row,
                        column,
                        row_label: row_label.clone(),
                    }),
                }
            }
        }
    }
    out
}

/// The outcome of checking one run folder's numbers.
#[derive(Debug, Default)]
pub struct RunCheck {
    /// Checks that agreed.
    pub agreed: usize,
    /// One line per check that disagreed or could not be recomputed.
    pub failures: Vec<String>,
    /// Seed statistics with no prediction files behind them.
    pub unsourced: usize,
    /// False for a folder written before kiln wrote `checks.json`.
    pub has_checks: bool,
}

/// Recomputes every check of the run folder `dir` from its prediction files.
pub fn check_run(dir: &Path) -> Result<RunCheck> {
    let path = dir.join(CHECKS_FILE);
    if !path.exists() {
        return Ok(RunCheck::default());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let checks: Checks = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a kiln checks file", path.display()))?;
    let mut out = RunCheck {
        has_checks: true,
        unsourced: checks.unsourced.len(),
        ..RunCheck::default()
    };
    let mut tables: HashMap<String, Csv> = HashMap::new();
    for c in &checks.checks {
        let what = format!(
            "{}.csv row {} ({}) column `{}` [{}]",
            c.table, c.row, c.row_label, c.column, c.source.metric
        );
        match check_one(dir, c, &mut tables) {
            Ok(None) => out.agreed += 1,
            Ok(Some(msg)) => out.failures.push(format!("{what}: {msg}")),
            Err(e) => out.failures.push(format!("{what}: {e:#}")),
        }
    }
    Ok(out)
}

/// `Ok(None)` when the cell agrees with its files, `Ok(Some(why))` when it does not.
fn check_one(dir: &Path, c: &Check, tables: &mut HashMap<String, Csv>) -> Result<Option<String>> {
    if !tables.contains_key(&c.table) {
        let t = Csv::read(&inside(dir, &format!("{}.csv", c.table))?)?;
        tables.insert(c.table.clone(), t);
    }
    let t = &tables[&c.table];
    let col = t.column(&c.column)?;
    let cell = t
        .rows
        .get(c.row)
        .and_then(|r| r.get(col))
        .ok_or_else(|| anyhow!("the table has no row {}", c.row))?;
    let (mean, sd) = parse_stat(cell)?;
    if c.source.files.is_empty() {
        bail!("no prediction files listed");
    }
    let values = c
        .source
        .files
        .iter()
        .map(|f| Ok(c.source.scale * metric(dir, &c.source.metric, f)?))
        .collect::<Result<Vec<f64>>>()?;
    let (m, s) = kiln_report::mean_sd(&values);
    let tol = 0.5 * 10f64.powi(-(c.decimals as i32)) + 1e-9 * m.abs().max(1.0);
    let sd_differs = match sd {
        Some(sd) => values.len() < 2 || (sd - s).abs() > tol,
        None => values.len() > 1,
    };
    if (mean - m).abs() > tol || sd_differs {
        let d = c.decimals;
        return Ok(Some(format!(
            "the table says `{cell}`, the files give {m:.d$}{} (per file: {})",
            if values.len() > 1 {
                format!(" ± {s:.d$}")
            } else {
                String::new()
            },
            values
                .iter()
                .map(|v| format!("{v:.d$}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(None)
}

/// `m` or `m ± s`.
fn parse_stat(cell: &str) -> Result<(f64, Option<f64>)> {
    let num = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| anyhow!("the cell `{cell}` is not a number or `mean ± sd`"))
    };
    match cell.split_once('±') {
        Some((m, s)) => Ok((num(m)?, Some(num(s)?))),
        None => Ok((num(cell)?, None)),
    }
}

/// A path inside the run folder: relative, without `..`.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("`{rel}` is not a path inside the run folder");
    }
    Ok(dir.join(p))
}

/// One metric of one prediction file.
pub fn metric(dir: &Path, metric: &str, file: &str) -> Result<f64> {
    let path = inside(dir, file)?;
    let (name, arg) = match metric.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (metric, None),
    };
    let need_arg = || arg.ok_or_else(|| anyhow!("metric `{metric}` needs `:<argument>`"));
    let v = if let Some(rest) = name.strip_prefix("glue/") {
        let (task, m) = rest
            .split_once('/')
            .ok_or_else(|| anyhow!("`{metric}`: expected glue/<task>/<metric>"))?;
        glue_metric(&path, task, m)?
    } else if let Some(m) = name.strip_prefix("ctr/") {
        ctr_metric(&path, m)?
    } else if let Some(stat) = name.strip_prefix("rod/") {
        rod_metric(&path, &inside(dir, need_arg()?)?, stat, false)?
    } else if let Some(stat) = name.strip_prefix("rod-subset/") {
        rod_metric(&path, &inside(dir, need_arg()?)?, stat, true)?
    } else {
        match name {
            "bleu" | "tokbleu" => {
                let refs = read_lines(&inside(dir, need_arg()?)?)?;
                let hyps = read_lines(&path)?;
                if hyps.len() != refs.len() {
                    bail!(
                        "{}: {} hypotheses for {} references",
                        path.display(),
                        hyps.len(),
                        refs.len()
                    );
                }
                if name == "bleu" {
                    kiln_data::bleu::corpus_bleu(&hyps, &[&refs])?.score
                } else {
                    kiln_data::bleu::tokenized_bleu(&hyps, &refs)?.score
                }
            }
            "vqa" => vqa_accuracy(&path, &inside(dir, need_arg()?)?, false)?,
            "vqa/subset" => vqa_accuracy(&path, &inside(dir, need_arg()?)?, true)?,
            "squad/exact" | "squad/f1" => {
                let gold = kiln_data::squad::read_squad(&inside(dir, need_arg()?)?)?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let preds: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
                    .with_context(|| {
                        format!("{}: not SQuAD predictions ({{id: answer}})", path.display())
                    })?;
                let (em, f1) = kiln_data::squad::evaluate(&gold, &preds)?;
                if name == "squad/exact" {
                    em
                } else {
                    f1
                }
            }
            "mean" => {
                let t = Csv::read(&path)?;
                let xs = t.numbers(need_arg()?, &path)?;
                if xs.is_empty() {
                    bail!("{}: no rows", path.display());
                }
                xs.iter().sum::<f64>() / xs.len() as f64
            }
            "weighted_mean" => {
                let (col, wcol) = need_arg()?.split_once(':').ok_or_else(|| {
                    anyhow!("`{metric}`: expected weighted_mean:<column>:<weight column>")
                })?;
                let t = Csv::read(&path)?;
                let (xs, ws) = (t.numbers(col, &path)?, t.numbers(wcol, &path)?);
                if ws.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
                    bail!(
                        "{}: `{wcol}` holds a negative or non-finite weight",
                        path.display()
                    );
                }
                let total: f64 = ws.iter().sum();
                if total <= 0.0 {
                    bail!("{}: no rows, or all weights zero", path.display());
                }
                xs.iter().zip(&ws).map(|(x, w)| x * w).sum::<f64>() / total
            }
            _ => bail!("unknown metric `{metric}`"),
        }
    };
    if !v.is_finite() {
        bail!("{}: `{metric}` is {v}", path.display());
    }
    Ok(v)
}

fn glue_metric(path: &Path, task: &str, m: &str) -> Result<f64> {
    use kiln_data::metrics;
    let t = Csv::read(path)?;
    let known = GlueTask::parse(task).ok();
    let label = |cell: &str, line: usize| -> Result<f64> {
        let v = match known {
            Some(k) => k.parse_label(cell).map(f64::from),
            None => cell.trim().parse::<f64>().ok(),
        };
        v.filter(|v| v.is_finite())
            .ok_or_else(|| anyhow!("{}:{line}: cannot read label `{cell}`", path.display()))
    };
    let (p, g) = (t.column("prediction")?, t.column("label")?);
    let mut pred = Vec::with_capacity(t.rows.len());
    let mut gold = Vec::with_capacity(t.rows.len());
    for (i, r) in t.rows.iter().enumerate() {
        pred.push(label(&r[p], i + 2)?);
        gold.push(label(&r[g], i + 2)?);
    }
    let class = |xs: &[f64]| -> Result<Vec<usize>> {
        xs.iter()
            .map(|&x| {
                if x >= 0.0 && x.fract() == 0.0 {
                    Ok(x as usize)
                } else {
                    Err(anyhow!("{}: `{x}` is not a class label", path.display()))
                }
            })
            .collect()
    };
    let v = match m {
        "accuracy" => metrics::accuracy(&class(&pred)?, &class(&gold)?)?,
        "f1" => metrics::f1(&class(&pred)?, &class(&gold)?)?,
        "mcc" => metrics::matthews(&class(&pred)?, &class(&gold)?)?,
        "pearson" => metrics::pearson(&pred, &gold)?,
        "spearman" => metrics::spearman(&pred, &gold)?,
        _ => bail!("unknown GLUE metric `{m}`"),
    };
    Ok(v)
}

fn ctr_metric(path: &Path, m: &str) -> Result<f64> {
    use kiln_data::metrics;
    let t = Csv::read(path)?;
    let p = t.numbers("p_click", path)?;
    let y = t.numbers("label", path)?;
    Ok(match m {
        "log_loss" => metrics::log_loss(&p, &y)?,
        "auc" => metrics::roc_auc(&p, &y)?,
        "accuracy" => metrics::accuracy_round(&p, &y)?,
        "calibration" => metrics::calibration(&p, &y)?,
        _ => bail!("unknown CTR metric `{m}`"),
    })
}

/// One of the devkit's 12 ROD2021 statistics of the submission folder `sub` against the
/// ground-truth folder `gt`.
fn rod_metric(sub: &Path, gt: &Path, stat: &str, subset: bool) -> Result<f64> {
    const STATS: [&str; 12] = [
        "ap", "ap50", "ap60", "ap70", "ap80", "ap90", "ar", "ar50", "ar60", "ar70", "ar80", "ar90",
    ];
    let i = STATS.iter().position(|s| *s == stat).ok_or_else(|| {
        anyhow!(
            "unknown ROD2021 statistic `{stat}` (expected one of {})",
            STATS.join(", ")
        )
    })?;
    let region = kiln_data::rod::Region::rod2021();
    let stats = if subset {
        kiln_data::rod::evaluate_folder_subset(gt, sub, &region)?
    } else {
        kiln_data::rod::evaluate_folders(gt, sub, &region)?
    };
    Ok(stats.stats[i])
}

/// The official VQA accuracy (percent, as the official evaluation prints it) of a results file
/// against annotations: every annotated question must have exactly one answer, and with
/// `subset` false every answer an annotated question.
fn vqa_accuracy(results: &Path, annotations: &Path, subset: bool) -> Result<f64> {
    #[derive(Deserialize)]
    struct Answer {
        question_id: u64,
        answer: String,
    }
    #[derive(Deserialize)]
    struct Human {
        answer: String,
    }
    #[derive(Deserialize)]
    struct Annotation {
        question_id: u64,
        answers: Vec<Human>,
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))
    };
    let res: Vec<Answer> = serde_json::from_str(&read(results)?)
        .with_context(|| format!("{}: not a VQA results file", results.display()))?;
    let ann: Vec<Annotation> = serde_json::from_str(&read(annotations)?)
        .with_context(|| format!("{}: not VQA annotations", annotations.display()))?;
    let mut answers: HashMap<u64, String> = HashMap::new();
    for r in res {
        if answers.insert(r.question_id, r.answer).is_some() {
            bail!(
                "{}: question {} answered twice",
                results.display(),
                r.question_id
            );
        }
    }
    if ann.is_empty() || (!subset && answers.len() != ann.len()) {
        bail!(
            "{}: {} answers for {} annotated questions",
            results.display(),
            answers.len(),
            ann.len()
        );
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(a) = ann.iter().find(|a| !seen.insert(a.question_id)) {
        bail!(
            "{}: question {} annotated twice (the official evaluation keys annotations by question id)",
            annotations.display(),
            a.question_id
        );
    }
    let mut sum = 0.0;
    for a in &ann {
        let pred = answers.get(&a.question_id).ok_or_else(|| {
            anyhow!(
                "{}: no answer to question {}",
                results.display(),
                a.question_id
            )
        })?;
        let gt: Vec<String> = a.answers.iter().map(|h| h.answer.clone()).collect();
        sum += kiln_data::vqa_eval::vqa_accuracy(pred, &gt);
    }
    Ok(100.0 * sum / ann.len() as f64)
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}

/// A CSV file (RFC 4180: quoted fields may hold commas, quotes and line breaks).
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    path: PathBuf,
}

impl Csv {
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let mut records = parse_csv(&text)
            .map_err(|line| anyhow!("{}:{line}: unterminated quoted field", path.display()))?
            .into_iter();
        let header = records
            .next()
            .ok_or_else(|| anyhow!("{}: empty file", path.display()))?;
        let rows: Vec<Vec<String>> = records.collect();
        if let Some(i) = rows.iter().position(|r| r.len() != header.len()) {
            bail!(
                "{}: record {} has {} fields, the header {}",
                path.display(),
                i + 2,
                rows[i].len(),
                header.len()
            );
        }
        Ok(Self {
            header,
            rows,
            path: path.to_path_buf(),
        })
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            anyhow!(
                "{}: no column `{name}` (columns: {})",
                self.path.display(),
                self.header.join(", ")
            )
        })
    }

    fn numbers(&self, name: &str, path: &Path) -> Result<Vec<f64>> {
        let c = self.column(name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r[c].trim().parse::<f64>().map_err(|_| {
                    anyhow!(
                        "{}:{}: `{name}` is `{}`, not a number",
                        path.display(),
                        i + 2,
                        r[c]
                    )
                })
            })
            .collect()
    }
}

/// Records of a CSV text; `Err(line)` for a quote left open.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, usize> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut line, mut started) = (false, 1usize, false);
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if quoted {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c)
                }
            }
            continue;
        }
        started = true;
        match ch {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
                started = false;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(line);
    }
    if started {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Where a run came from, as `kiln verify` reports it.
#[derive(Debug)]
pub struct Provenance {
    pub commit: String,
    /// Uncommitted files outside results/ when the run started; `None` for records written
    /// before kiln recorded them (then only a `-dirty` commit says anything).
    pub uncommitted: Option<Vec<String>>,
    /// Files of the experiment's code (its crate, the workspace crates it depends on, its
    /// experiment file, Cargo.lock) that differ between the run's commit and the working tree;
    /// `Err` when that cannot be told (no git, a commit not in this clone's history).
    pub code_changed: std::result::Result<Vec<String>, String>,
}

impl Provenance {
    /// The run is from committed code that has not changed since.
    pub fn is_current(&self) -> bool {
        let clean = match &self.uncommitted {
            Some(u) => u.is_empty(),
            None => !self.commit.ends_with("-dirty"),
        };
        clean && matches!(&self.code_changed, Ok(c) if c.is_empty())
    }
}

/// The provenance of the run recorded in `meta`, with `package` the cargo package implementing
/// its experiment and `root` the workspace root.
pub fn provenance(meta: &kiln_core::RunMeta, package: &str, root: &Path) -> Provenance {
    let commit = meta.commit.trim_end_matches("-dirty").to_string();
    let code_changed = (|| {
        if commit == "unknown" {
            return Err("the run recorded no commit".to_string());
        }
        let mut paths = package_dirs(package, root)?;
        paths.push(format!("experiments/{}.toml", meta.experiment));
        paths.push("Cargo.lock".into());
        let out = std::process::Command::new("git")
            .current_dir(root)
            .args(["diff", "--name-only", &commit, "--"])
            .args(&paths)
            .output()
            .map_err(|e| format!("git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git diff {commit}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut changed: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        // A lock file edit matters only where it moves a package this experiment builds: adding
        // another paper's crate, or its dependencies, leaves these results current.
        if changed.iter().any(|c| c == "Cargo.lock") {
            let then = std::process::Command::new("git")
                .current_dir(root)
                .args(["show", &format!("{commit}:Cargo.lock")])
                .output()
                .map_err(|e| format!("git: {e}"))?;
            let now = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
            let same = then.status.success()
                && lock_closure(&String::from_utf8_lossy(&then.stdout), package)
                    .zip(lock_closure(&now, package))
                    .is_some_and(|(a, b)| a == b);
            if same {
                changed.retain(|c| c != "Cargo.lock");
            }
        }
        Ok(changed)
    })();
    Provenance {
        commit: meta.commit.clone(),
        uncommitted: meta.uncommitted.clone(),
        code_changed,
    }
}

/// The source folders (relative to `root`) of `package` and of every workspace package it
/// depends on, directly or not, from `cargo metadata`.
fn package_dirs(package: &str, root: &Path) -> std::result::Result<Vec<String>, String> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let ws_root = v["workspace_root"].as_str().unwrap_or_default().to_string();
    let mut dirs: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for p in v["packages"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let manifest = Path::new(p["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest.parent().unwrap_or(Path::new(""));
        let rel = dir
            .strip_prefix(&ws_root)
            .unwrap_or(dir)
            .to_string_lossy()
            .to_string();
        let deps = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["path"].is_string() && d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect();
        dirs.insert(name, (rel, deps));
    }
    if !dirs.contains_key(package) {
        return Err(format!("no workspace package `{package}`"));
    }
    let (mut todo, mut seen) = (vec![package.to_string()], Vec::<String>::new());
    while let Some(p) = todo.pop() {
        if seen.contains(&p) {
            continue;
        }
        if let Some((_, deps)) = dirs.get(&p) {
            todo.extend(deps.iter().cloned());
        }
        seen.push(p);
    }
    let mut out: Vec<String> = seen
        .iter()
        .filter_map(|p| dirs.get(p).map(|(d, _)| d.clone()))
        .collect();
    out.sort();
    Ok(out)
}

/// The locked packages (`name version source checksum`, sorted) that `package` depends on,
/// directly or not, itself included, as `lock` (a Cargo.lock) resolves them; `None` when the lock
/// cannot be read or does not hold `package`. Every dependency is followed, optional ones too,
/// so the set is a superset of what any feature selection builds.
fn lock_closure(lock: &str, package: &str) -> Option<Vec<String>> {
    let v: toml::Value = toml::from_str(lock).ok()?;
    let pkgs = v.get("package")?.as_array()?;
    let key = |p: &toml::Value| {
        let f = |k: &str| p.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        (f("name"), f("version"))
    };
    let entry = |p: &toml::Value| {
        let f = |k: &str| p.get(k).and_then(|x| x.as_str()).unwrap_or("");
        format!(
            "{} {} {} {}",
            f("name"),
            f("version"),
            f("source"),
            f("checksum")
        )
    };
    // A dependency is written `name`, `name version` or `name version (source)`.
    let find = |dep: &str| -> Option<&toml::Value> {
        let mut it = dep.split_whitespace();
        let (name, version) = (it.next()?, it.next());
        let mut hits = pkgs.iter().filter(|p| {
            let (n, v) = key(p);
            n == name && version.is_none_or(|w| v == w)
        });
        let first = hits.next()?;
        hits.next().is_none().then_some(first)
    };
    let root = find(package)?;
    let (mut todo, mut seen) = (vec![root], std::collections::BTreeSet::new());
    while let Some(p) = todo.pop() {
        if !seen.insert(entry(p)) {
            continue;
        }
        for d in p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            todo.push(find(d.as_str()?)?);
        }
    }
    Some(seen.into_iter().collect())
}

/// The run record of a run folder.
pub fn read_meta(dir: &Path) -> Result<kiln_core::RunMeta> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a kiln run record", path.display()))
}

/// Every run folder (one holding `run.json`) under `dir`, `dir` included, sorted.
pub fn run_folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if d.join("run.json").is_file() {
            out.push(d.clone());
        }
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("{}: cannot read", d.display()))?;
        for e in entries {
            let e = e?;
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if e.file_type()?.is_dir() && !hidden {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_with_quotes_commas_and_line_breaks() {
        let r = parse_csv("a,b\n\"x,1\",\"say \"\"hi\"\"\nthere\"\n3,\r\n").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], ["x,1", "say \"hi\"\nthere"]);
        assert_eq!(r[2], ["3", ""]);
        assert_eq!(parse_csv("a\n\"open\n"), Err(3));
        assert_eq!(parse_csv("a,b").unwrap(), [["a", "b"]]);
    }

    #[test]
    fn a_lock_edit_outside_the_experiments_packages_leaves_it_current() {
        let lock = |extra: &str, serde: &str| {
            format!(
                "version = 4\n\n[[package]]\nname = \"kiln-a\"\nversion = \"0.1.0\"\n\
                 dependencies = [\n \"serde\",\n \"rand 0.9.0\",\n]\n\n\
                 [[package]]\nname = \"serde\"\nversion = \"{serde}\"\nsource = \"registry\"\n\n\
                 [[package]]\nname = \"rand\"\nversion = \"0.9.0\"\n\n\
                 [[package]]\nname = \"rand\"\nversion = \"0.8.5\"\n{extra}"
            )
        };
        let base = lock_closure(&lock("", "1.0.1"), "kiln-a").unwrap();
        assert_eq!(base.len(), 3, "{base:?}");
        let other = "\n[[package]]\nname = \"kiln-b\"\nversion = \"0.1.0\"\ndependencies = [\"rand 0.8.5\"]\n";
        assert_eq!(lock_closure(&lock(other, "1.0.1"), "kiln-a").unwrap(), base);
        assert_ne!(lock_closure(&lock("", "1.0.2"), "kiln-a").unwrap(), base);
        assert!(lock_closure(&lock("", "1.0.1"), "kiln-c").is_none());
    }

    #[test]
    fn stat_cells_parse() {
        assert_eq!(parse_stat("81.5").unwrap(), (81.5, None));
        assert_eq!(parse_stat("81.5 ± 0.25").unwrap(), (81.5, Some(0.25)));
        assert!(parse_stat("2.4x").is_err());
    }

    #[test]
    fn paths_stay_inside_the_run_folder() {
        let d = Path::new("run");
        assert!(inside(d, "predictions/a.csv").is_ok());
        assert!(inside(d, "../a.csv").is_err());
        assert!(inside(d, "/etc/passwd").is_err());
    }

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    /// A folder whose table cell is the mean ± sd of two seeds' accuracies (0.75 and 0.5, as
    /// percentages); `cell` is what the table says.
    fn folder(cell: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "predictions/s0.csv",
            "idx,prediction,label\n0,1,1\n1,0,0\n2,1,0\n3,0,0\n",
        );
        write(
            d.path(),
            "predictions/s1.csv",
            "idx,prediction,label\n0,1,1\n1,1,0\n2,1,0\n3,0,0\n",
        );
        write(d.path(), "table.csv", &format!("task,acc\nsst2,{cell}\n"));
        let checks = Checks {
            checks: vec![Check {
                table: "table".into(),
                row: 0,
                column: "acc".into(),
                row_label: "sst2".into(),
                decimals: 1,
                source: Source::new(
                    "glue/sst2/accuracy",
                    vec!["predictions/s0.csv".into(), "predictions/s1.csv".into()],
                    100.0,
                ),
            }],
            unsourced: vec![],
        };
        write(
            d.path(),
            CHECKS_FILE,
            &serde_json::to_string(&checks).unwrap(),
        );
        d
    }

    #[test]
    fn a_cell_agrees_with_its_files_within_rounding_and_only_then() {
        // mean 62.5, sd 17.677...
        let ok = check_run(folder("62.5 ± 17.68").path()).unwrap();
        assert_eq!((ok.agreed, ok.failures.len()), (1, 0), "{:?}", ok.failures);
        for bad in ["62.7 ± 17.68", "62.5 ± 17.5", "62.5", "x"] {
            let r = check_run(folder(bad).path()).unwrap();
            assert_eq!(r.failures.len(), 1, "`{bad}` passed");
        }
        // A prediction file that changed after the run: the check fails.
        let d = folder("62.5 ± 17.68");
        write(
            d.path(),
            "predictions/s1.csv",
            "idx,prediction,label\n0,1,1\n1,0,0\n2,0,0\n3,0,0\n",
        );
        let r = check_run(d.path()).unwrap();
        assert!(
            r.failures[0].contains("files give 87.5"),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn glue_ctr_and_mean_metrics() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "rte.csv",
            "idx,prediction,label\n0,entailment,entailment\n1,not_entailment,entailment\n",
        );
        assert_eq!(
            metric(d.path(), "glue/rte/accuracy", "rte.csv").unwrap(),
            0.5
        );
        write(
            d.path(),
            "stsb.csv",
            "idx,prediction,label\n0,1.5,1.0\n1,2.5,2.0\n2,4.5,5.0\n",
        );
        let p = metric(d.path(), "glue/stsb/pearson", "stsb.csv").unwrap();
        assert!((p - 0.9958705948858223).abs() < 1e-12, "{p}"); // statistics.correlation
        write(d.path(), "ctr.csv", "row,p_click,label\n0,0.9,1\n1,0.2,0\n");
        let ll = metric(d.path(), "ctr/log_loss", "ctr.csv").unwrap();
        assert!((ll - (-(0.9f64.ln() + 0.8f64.ln()) / 2.0)).abs() < 1e-12);
        assert_eq!(metric(d.path(), "mean:p_click", "ctr.csv").unwrap(), 0.55);
        assert!(metric(d.path(), "nope", "ctr.csv").is_err());
        assert!(metric(d.path(), "mean:missing", "ctr.csv").is_err());
    }

    #[test]
    fn ctr_calibration_is_predicted_over_observed_clicks() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "ctr.csv",
            "row,p_click,label\n0,0.9,1\n1,0.2,0\n2,0.4,1\n",
        );
        let c = metric(d.path(), "ctr/calibration", "ctr.csv").unwrap();
        assert!((c - 1.5 / 2.0).abs() < 1e-12, "{c}");
    }

    #[test]
    fn vqa_accuracy_over_all_questions_or_an_annotated_subset() {
        let d = tempfile::tempdir().unwrap();
        let ann = |ids: &[(u64, &str)]| {
            let v: Vec<serde_json::Value> = ids
                .iter()
                .map(|(q, a)| serde_json::json!({"question_id": q, "answers": vec![serde_json::json!({"answer": a}); 10]}))
                .collect();
            serde_json::to_string(&v).unwrap()
        };
        write(
            d.path(),
            "all.json",
            &ann(&[(1, "yes"), (2, "no"), (3, "no")]),
        );
        write(d.path(), "sub.json", &ann(&[(2, "no"), (3, "no")]));
        write(
            d.path(),
            "res.json",
            r#"[{"question_id": 1, "answer": "no"}, {"question_id": 2, "answer": "no"}, {"question_id": 3, "answer": "yes"}]"#,
        );
        let all = metric(d.path(), "vqa:all.json", "res.json").unwrap();
        assert!((all - 100.0 / 3.0).abs() < 1e-9, "{all}");
        assert_eq!(
            metric(d.path(), "vqa/subset:sub.json", "res.json").unwrap(),
            50.0
        );
        // Plain `vqa` wants one answer per annotated question and no more.
        assert!(metric(d.path(), "vqa:sub.json", "res.json").is_err());
        // A subset question without an answer fails either way.
        write(d.path(), "more.json", &ann(&[(2, "no"), (4, "no")]));
        assert!(metric(d.path(), "vqa/subset:more.json", "res.json").is_err());
    }

    #[test]
    fn weighted_mean_weighs_rows_by_a_column() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "blocks.csv",
            "run,block,tokens,loss\n\"a, b\",0,3,2.0\n\"a, b\",1,1,6.0\n",
        );
        let m = metric(d.path(), "weighted_mean:loss:tokens", "blocks.csv").unwrap();
        assert!((m - 3.0).abs() < 1e-12, "{m}"); // (3·2 + 1·6) / 4; the plain mean is 4
        assert_eq!(metric(d.path(), "mean:loss", "blocks.csv").unwrap(), 4.0);
        assert!(metric(d.path(), "weighted_mean:loss", "blocks.csv").is_err());
        assert!(metric(d.path(), "weighted_mean:loss:nope", "blocks.csv").is_err());
        write(d.path(), "zero.csv", "tokens,loss\n0,1.0\n");
        assert!(metric(d.path(), "weighted_mean:loss:tokens", "zero.csv").is_err());
        write(d.path(), "neg.csv", "tokens,loss\n2,1.0\n-1,5.0\n");
        assert!(metric(d.path(), "weighted_mean:loss:tokens", "neg.csv").is_err());
    }

    #[test]
    fn rod_metrics_recompute_from_submission_folders() {
        use kiln_data::rod::{self, Detection, Object, ObjectClass::*, Region, SequenceInput};
        let d = tempfile::tempdir().unwrap();
        let obj = |frame, range, angle, class| Object {
            frame,
            range,
            angle,
            class,
        };
        let det = |o: Object, score| Detection {
            frame: o.frame,
            range: o.range,
            angle: o.angle,
            class: o.class,
            score,
        };
        let a = [obj(0, 10.0, 0.1, Car), obj(1, 6.0, -0.4, Pedestrian)];
        let b = [obj(0, 8.0, 0.3, Cyclist), obj(2, 15.0, 0.0, Car)];
        rod::write_ground_truth_folder(&d.path().join("gt"), &[("a", 2, &a), ("b", 3, &b)])
            .unwrap();
        let da = [det(a[0], 0.9), det(obj(1, 20.0, 0.8, Pedestrian), 0.95)];
        let db = [det(b[0], 0.6), det(obj(2, 17.2, 0.0, Car), 0.7)];
        rod::write_submission(&d.path().join("sub/s0/a.txt"), &da).unwrap();
        rod::write_submission(&d.path().join("sub/s0/b.txt"), &db).unwrap();
        let seq = |name, n_frames, gt, dets| SequenceInput {
            name,
            n_frames,
            gt,
            dets,
        };
        let want = rod::evaluate(
            &[seq("a", 2, &a, &da), seq("b", 3, &b, &db)],
            &Region::rod2021(),
        )
        .unwrap();
        assert!(want.ap() > 0.1 && want.ap() < 0.9, "{}", want.ap());
        let got = metric(d.path(), "rod/ap:gt", "sub/s0").unwrap();
        assert_eq!(got, want.ap());
        assert_eq!(
            metric(d.path(), "rod/ar70:gt", "sub/s0").unwrap(),
            want.stats[9]
        );
        // The subset metric ignores the submission of a sequence the ground truth does not list.
        rod::write_ground_truth_folder(&d.path().join("gt-a"), &[("a", 2, &a)]).unwrap();
        let only_a = rod::evaluate(
            &[SequenceInput {
                name: "a",
                n_frames: 2,
                gt: &a,
                dets: &da,
            }],
            &Region::rod2021(),
        )
        .unwrap();
        assert_eq!(
            metric(d.path(), "rod-subset/ap:gt-a", "sub/s0").unwrap(),
            only_a.ap()
        );
        assert!(metric(d.path(), "rod/ap:gt-a", "sub/s0").is_err());
        assert!(metric(d.path(), "rod/ap55:gt", "sub/s0").is_err());
        assert!(metric(d.path(), "rod/ap", "sub/s0").is_err());
        assert!(metric(d.path(), "rod/ap:../gt", "sub/s0").is_err());
        // Through checks.json, as `kiln verify` runs it: the true value agrees, a tampered one
        // does not.
        let run = |cell: String| {
            write(d.path(), "table.csv", &format!("model,ap\nrodnet,{cell}\n"));
            let checks = Checks {
                checks: vec![Check {
                    table: "table".into(),
                    row: 0,
                    column: "ap".into(),
                    row_label: "rodnet".into(),
                    decimals: 2,
                    source: Source::new("rod/ap:gt", vec!["sub/s0".into()], 100.0),
                }],
                unsourced: vec![],
            };
            write(
                d.path(),
                CHECKS_FILE,
                &serde_json::to_string(&checks).unwrap(),
            );
            check_run(d.path()).unwrap()
        };
        let ok = run(format!("{:.2}", 100.0 * want.ap()));
        assert_eq!((ok.agreed, ok.failures.len()), (1, 0), "{:?}", ok.failures);
        let bad = run(format!("{:.2}", 100.0 * want.ap() + 0.02));
        assert_eq!(bad.failures.len(), 1);
        // A sequence without its submission file fails the check, as in the devkit.
        std::fs::remove_file(d.path().join("sub/s0/b.txt")).unwrap();
        let r = run(format!("{:.2}", 100.0 * want.ap()));
        assert!(r.failures[0].contains("b.txt"), "{:?}", r.failures);
    }
}
