//! `ltp-glue`: learned token pruning (Kim et al. 2022) on glue-finetune's checkpoints. Per task:
//! the unpruned dev metric, then LTP (soft stage + hard stage) for each regulariser strength λ,
//! the top-k cascade for each final keep rate, and manual (linearly rising, untrained)
//! thresholds, each with its dev metric, relative FLOPs and dev predictions (GLUE's
//! `idx,prediction,label`); the measured throughput of real token removal against the dense
//! model; kept tokens per layer; and the length-robustness study. Every metric in the tables
//! (unpruned rows and the length study included) is computed from a prediction file the run
//! writes, one per row and seed (`predictions/<task>-<method>-<setting>-dev-s<seed>.csv`,
//! `predictions/<task>-length-<direction>-<method>-<setting>-s<seed>.csv`), which `kiln verify`
//! recomputes; a row whose model predicts one label for every example is flagged.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::Device;
use kiln_data::Encoded;
use kiln_experiment::predictions::{glue_rows, glue_source, is_constant, GLUE_HEADER};
use kiln_experiment::{Bench, ExperimentFile, Flags, Paper, Plot, RunArgs, RunContext, RunRecord};
use kiln_glue::checkpoints::{finetuned_inputs, real_glue, smoke_glue, Chosen, GlueModel, Wanted};
use kiln_report::{slug, Cell, Series, Table};
use serde::{Deserialize, Serialize};

use crate::physical::measure_throughput;
use crate::train::{evaluate, train_stage, StageConfig, TaskSplit};
use crate::{LtpModel, Mode};

pub const NAME: &str = "ltp-glue";

/// The experiment, for the registry.
pub struct LtpGlue;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stage {
    epochs: f64,
    batch_size: usize,
    learning_rate: f64,
    #[serde(default)]
    threshold_learning_rate: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TaskOverride {
    max_len: Option<usize>,
    train_examples: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    description: String,
    model: String,
    tasks: Vec<String>,
    max_len: usize,
    /// Training subset per task (first N after a seeded shuffle); all when absent.
    train_examples: Option<usize>,
    /// N of the score normalisation (the reference's max_seq_length).
    norm_len: usize,
    final_threshold: f64,
    temperature: f64,
    lambdas: Vec<f64>,
    topk_rates: Vec<f64>,
    manual_thresholds: Vec<f64>,
    soft: Stage,
    hard: Stage,
    bench_batch: usize,
    bench_runs: usize,
    /// Task for the length-robustness study (train short / test long and the reverse).
    length_task: Option<String>,
    /// glue-finetune profiles whose checkpoints this profile starts from, in order of
    /// preference. A cached checkpoint is used only when it was made as one of them makes it here
    /// (same base weights and data files by sha256, same settings); any other is refused unless
    /// given with `--model`.
    #[serde(default)]
    finetuned_by: Vec<String>,
    #[serde(default)]
    task: BTreeMap<String, TaskOverride>,
}

/// One trained setting's outcome.
#[derive(Debug, Clone, Serialize)]
struct Point {
    task: String,
    method: String,
    setting: String,
    metric: f64,
    relative_flops: f64,
    gflops: f64,
    kept_per_layer: Vec<f64>,
    thresholds: Vec<f64>,
    train_seconds: f64,
    /// Dev predictions in GLUE's format (files, not run.json).
    #[serde(skip)]
    predictions: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
struct Throughput {
    task: String,
    setting: String,
    relative_flops: f64,
    dense_per_s: f64,
    removal_per_s: f64,
    speedup: f64,
}

#[derive(Debug, Clone, Serialize)]
struct LengthRow {
    task: String,
    direction: String,
    method: String,
    setting: String,
    metric_unpruned: f64,
    metric: f64,
    relative_flops: f64,
    /// Predictions on the evaluation half, unpruned and pruned, in GLUE's format with `idx` the
    /// dev file's row (files, not run.json).
    #[serde(skip)]
    unpruned_predictions: Vec<Vec<String>>,
    #[serde(skip)]
    predictions: Vec<Vec<String>>,
}

/// A task's unpruned model on dev.
struct Baseline {
    metric: f64,
    gflops: f64,
    predictions: Vec<Vec<String>>,
}

fn subset(g: &GlueModel, n: Option<usize>, seed: u64) -> (Vec<Encoded>, Vec<Option<f32>>) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut idx: Vec<usize> = (0..g.train.len())
        .filter(|&i| g.train_labels[i].is_some())
        .collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    if let Some(n) = n {
        idx.truncate(n);
    }
    (
        idx.iter().map(|&i| g.train[i].clone()).collect(),
        idx.iter().map(|&i| g.train_labels[i]).collect(),
    )
}

fn stage_cfg(s: &Stage, lambda: f64, seed: u64, keep_best: bool) -> StageConfig {
    StageConfig {
        epochs: s.epochs,
        batch_size: s.batch_size,
        learning_rate: s.learning_rate,
        threshold_learning_rate: s.threshold_learning_rate,
        lambda,
        seed,
        keep_best,
    }
}

/// Trains every method on `task` (train split) and scores it on `eval` (usually dev);
/// `eval_idx[i]` is the dev file's row of `eval_on`'s example `i` (for the prediction files).
#[allow(clippy::too_many_arguments)]
fn sweep(
    g: &GlueModel,
    train: &TaskSplit,
    eval_on: &TaskSplit,
    eval_idx: &[usize],
    p: &Profile,
    seed: u64,
    methods: &[&str],
    device: &Device,
) -> Result<Vec<(Point, LtpModel)>> {
    let mut out = Vec::new();
    let point = |method: &str, setting: String, m: &LtpModel, mode: Mode, secs: f64| {
        let e = evaluate(m, eval_on, mode, device)?;
        Ok::<_, kiln_models::ModelError>(Point {
            predictions: prediction_rows(g, eval_on, eval_idx, &e.outputs),
            task: g.name.clone(),
            method: method.into(),
            setting,
            metric: e.main(eval_on.main_metric),
            relative_flops: e.flops.relative(),
            gflops: e.flops.gflops(),
            kept_per_layer: e.flops.kept_per_layer(),
            thresholds: m.thresholds.values(),
            train_seconds: secs,
        })
    };
    // Hard-mode training with best-epoch selection (stage 2 of LTP, and both baselines).
    let hard = |m: LtpModel, mode: Mode| -> Result<LtpModel> {
        Ok(train_stage(
            m,
            train,
            mode,
            mode,
            &stage_cfg(&p.hard, 0.0, seed, true),
            device,
        )?
        .0)
    };
    let mut record = |method: &str, setting: String, m: LtpModel, mode: Mode, t0: Instant| {
        let pt = point(method, setting, &m, mode, t0.elapsed().as_secs_f64())?;
        println!(
            "  {} {method} {}: {} {:.2} at {:.3} relative FLOPs",
            g.name, pt.setting, eval_on.main_metric, pt.metric, pt.relative_flops
        );
        out.push((pt, m));
        Ok::<_, kiln_models::ModelError>(())
    };
    if methods.contains(&"ltp") {
        for &lambda in &p.lambdas {
            let t0 = Instant::now();
            let m = LtpModel::new(g.model.clone(), p.final_threshold, p.norm_len)?;
            let soft = Mode::Soft {
                temperature: p.temperature,
            };
            let (m, _) = train_stage(
                m,
                train,
                soft,
                Mode::Hard,
                &stage_cfg(&p.soft, lambda, seed, false),
                device,
            )?;
            record(
                "LTP",
                format!("λ={lambda}"),
                hard(m, Mode::Hard)?,
                Mode::Hard,
                t0,
            )?;
        }
    }
    if methods.contains(&"topk") {
        for &rate in &p.topk_rates {
            let t0 = Instant::now();
            let mode = Mode::TopK { rate };
            let m = LtpModel::new(g.model.clone(), p.final_threshold, p.norm_len)?;
            record("top-k", format!("r={rate}"), hard(m, mode)?, mode, t0)?;
        }
    }
    if methods.contains(&"manual") {
        for &theta in &p.manual_thresholds {
            let t0 = Instant::now();
            let m = LtpModel::new(g.model.clone(), theta, p.norm_len)?;
            record(
                "manual",
                format!("θ={theta}"),
                hard(m, Mode::Hard)?,
                Mode::Hard,
                t0,
            )?;
        }
    }
    Ok(out)
}

impl Paper for LtpGlue {
    type Profile = Profile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn flags(&self, p: &Profile) -> Flags {
        Flags {
            tasks: Some(kiln_glue::checkpoints::task_choices(
                &p.model,
                &p.tasks,
                &[],
            )),
            train_examples: true,
            model: p.model != "tiny",
            ..Flags::default()
        }
    }

    fn inputs(&self, name: &str, p: &Profile, args: &RunArgs) -> Result<String, String> {
        finetuned_inputs(&p.model, &p.tasks, args, &wanted(p, name))
    }

    fn validate(&self, p: &Profile) -> Result<()> {
        for (what, v) in [
            ("temperature", p.temperature),
            ("final_threshold", p.final_threshold),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                bail!("experiments/{NAME}.toml: {what} = {v} must lie in (0, 1)");
            }
        }
        Ok(())
    }

    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<Profile>,
        p: &Profile,
    ) -> Result<RunRecord> {
        let device = &ctx.device;
        let synthetic = p.model == "tiny";
        let tasks = ctx.args.tasks_or(&p.tasks);
        let mut points = Vec::new();
        let mut baselines = BTreeMap::new();
        let mut metrics = BTreeMap::new();
        let mut tput = Vec::new();
        let mut lengths = Vec::new();
        let mut sources = BTreeMap::new();
        let mut checkpoints = BTreeMap::new();
        for task in &tasks {
            let max_len = p
                .task
                .get(task)
                .and_then(|o| o.max_len)
                .unwrap_or(p.max_len);
            let g = if synthetic {
                smoke_glue(task, max_len, ctx.seed, device)?
            } else {
                real_glue(
                    task,
                    &p.model,
                    max_len,
                    &ctx.resolver,
                    device,
                    &wanted(p, &ctx.profile),
                )?
            };
            sources.insert(g.name.clone(), g.source.clone());
            checkpoints.insert(g.name.clone(), g.checkpoint.clone());
            let n_train = ctx
                .args
                .train_examples
                .or(p.task.get(task).and_then(|o| o.train_examples))
                .or(p.train_examples);
            let (train, train_labels) = subset(&g, n_train, ctx.seed);
            let split = TaskSplit {
                train: &train,
                train_labels: &train_labels,
                dev: &g.dev,
                dev_labels: &g.dev_labels,
                metric_names: &g.metric_names,
                main_metric: &g.main_metric,
                pad_id: g.tok.pad_id as i64,
            };
            let dev_idx: Vec<usize> = (0..g.dev.len()).collect();
            let base = LtpModel::new(g.model.clone(), p.final_threshold, p.norm_len)?;
            let e = evaluate(&base, &split, Mode::Off, device)?;
            let unpruned = e.main(&g.main_metric);
            println!(
                "{}: unpruned dev {} = {unpruned:.2} ({:.3} GFLOPs/example); training on {} examples",
                g.name,
                g.main_metric,
                e.flops.gflops(),
                train.len()
            );
            baselines.insert(
                g.name.clone(),
                Baseline {
                    metric: unpruned,
                    gflops: e.flops.gflops(),
                    predictions: prediction_rows(&g, &split, &dev_idx, &e.outputs),
                },
            );
            metrics.insert(g.name.clone(), g.main_metric.clone());
            let res = sweep(
                &g,
                &split,
                &split,
                &dev_idx,
                p,
                ctx.seed,
                &["ltp", "topk", "manual"],
                device,
            )?;
            // Throughput of real removal for the LTP model nearest 0.5 relative FLOPs.
            if let Some((pt, m)) = res
                .iter()
                .filter(|(pt, _)| pt.method == "LTP")
                .min_by(|a, b| {
                    (a.0.relative_flops - 0.5)
                        .abs()
                        .total_cmp(&(b.0.relative_flops - 0.5).abs())
                })
            {
                let (dense, removed) = measure_throughput(
                    m,
                    &g.dev,
                    g.tok.pad_id as i64,
                    p.bench_batch,
                    p.bench_runs,
                    device,
                );
                println!(
                    "  {} real removal ({}): {removed:.1} vs dense {dense:.1} examples/s = {:.2}x",
                    g.name,
                    pt.setting,
                    removed / dense
                );
                tput.push(Throughput {
                    task: g.name.clone(),
                    setting: pt.setting.clone(),
                    relative_flops: pt.relative_flops,
                    dense_per_s: dense,
                    removal_per_s: removed,
                    speedup: removed / dense,
                });
            }
            points.extend(res.into_iter().map(|(pt, _)| pt));
            if p.length_task.as_deref() == Some(task.as_str()) {
                lengths.extend(length_study(
                    &g,
                    &train,
                    &train_labels,
                    p,
                    ctx.seed,
                    device,
                )?);
            }
        }
        let r = Results {
            points,
            baselines,
            metrics,
            tput,
            lengths,
            sources,
            checkpoints,
        };
        record(file, p, ctx, &r, ctx.elapsed())
    }

    fn benches(&self) -> &'static [Bench] {
        &[("ltp", crate::bench::removal_vs_dense)]
    }
}

/// Everything the sweep measured.
struct Results {
    points: Vec<Point>,
    baselines: BTreeMap<String, Baseline>,
    /// Each task's main metric (`accuracy`, `spearman`): what "dev metric" means in its rows.
    metrics: BTreeMap<String, String>,
    tput: Vec<Throughput>,
    lengths: Vec<LengthRow>,
    sources: BTreeMap<String, String>,
    /// The fine-tuned checkpoint of each task and how it was chosen (`None`: in-process).
    checkpoints: BTreeMap<String, Option<Chosen>>,
}

/// The fine-tuning a profile starts from: its `finetuned_by` glue-finetune profiles.
fn wanted(p: &Profile, profile: &str) -> Wanted {
    Wanted {
        by: format!("{NAME} `{profile}`"),
        profiles: p.finetuned_by.clone(),
    }
}

/// Train on the shorter half (by token count) and evaluate on the longer half of dev, and the
/// reverse, for LTP and top-k (first λ and first rate).
fn length_study(
    g: &GlueModel,
    train: &[Encoded],
    train_labels: &[Option<f32>],
    p: &Profile,
    seed: u64,
    device: &Device,
) -> Result<Vec<LengthRow>> {
    let median = |enc: &[Encoded]| {
        let mut l: Vec<usize> = enc.iter().map(|e| e.ids.len()).collect();
        l.sort();
        l[l.len() / 2]
    };
    let split = |enc: &[Encoded], labels: &[Option<f32>], short: bool, cut: usize| {
        let idx: Vec<usize> = (0..enc.len())
            .filter(|&i| (enc[i].ids.len() <= cut) == short)
            .collect();
        (
            idx.iter().map(|&i| enc[i].clone()).collect::<Vec<_>>(),
            idx.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
            idx,
        )
    };
    let (tc, dc) = (median(train), median(&g.dev));
    let mut p1 = p.clone();
    p1.lambdas.truncate(1);
    p1.topk_rates.truncate(1);
    let mut rows = Vec::new();
    for (dir, short_train) in [
        ("train short → test long", true),
        ("train long → test short", false),
    ] {
        let (tr, trl, _) = split(train, train_labels, short_train, tc);
        let (dv, dvl, dv_idx) = split(&g.dev, &g.dev_labels, !short_train, dc);
        let tsplit = TaskSplit {
            train: &tr,
            train_labels: &trl,
            dev: &dv,
            dev_labels: &dvl,
            metric_names: &g.metric_names,
            main_metric: &g.main_metric,
            pad_id: g.tok.pad_id as i64,
        };
        let base = LtpModel::new(g.model.clone(), p.final_threshold, p.norm_len)?;
        let e = evaluate(&base, &tsplit, Mode::Off, device)?;
        let unpruned = e.main(&g.main_metric);
        let unpruned_predictions = prediction_rows(g, &tsplit, &dv_idx, &e.outputs);
        println!(
            "{} length study, {dir}: {} train / {} eval examples",
            g.name,
            tr.len(),
            dv.len()
        );
        let runs = sweep(
            g,
            &tsplit,
            &tsplit,
            &dv_idx,
            &p1,
            seed,
            &["ltp", "topk"],
            device,
        )?;
        for (pt, _) in runs {
            rows.push(LengthRow {
                task: g.name.clone(),
                direction: dir.into(),
                method: pt.method,
                setting: pt.setting,
                metric_unpruned: unpruned,
                metric: pt.metric,
                relative_flops: pt.relative_flops,
                unpruned_predictions: unpruned_predictions.clone(),
                predictions: pt.predictions,
            });
        }
    }
    Ok(rows)
}

/// Predictions on `split`'s evaluation examples in GLUE's format; `idx[i]` is the dev file's
/// row of example `i`.
fn prediction_rows(
    g: &GlueModel,
    split: &TaskSplit,
    idx: &[usize],
    outputs: &[Vec<f32>],
) -> Vec<Vec<String>> {
    let gold: Vec<f32> = split
        .dev_labels
        .iter()
        .map(|l| l.unwrap_or(f32::NAN))
        .collect();
    glue_rows(g.task, idx, outputs, &gold)
}

/// True when every prediction is the same (the model collapsed to a constant predictor).
fn collapsed(predictions: &[Vec<String>]) -> bool {
    is_constant(
        &predictions
            .iter()
            .map(|r| r[1].as_str())
            .collect::<Vec<_>>(),
    )
}

/// Prediction files of a run: each written once, under a name no other row has
/// (`predictions/<name>-s<seed>.csv`).
struct Files {
    seed: u64,
    written: std::collections::BTreeSet<String>,
}

impl Files {
    /// Writes `rows` and returns the path a table cell cites.
    fn write(&mut self, rec: &mut RunRecord, name: String, rows: &[Vec<String>]) -> Result<String> {
        let name = format!("{name}-s{}", self.seed);
        if !self.written.insert(name.clone()) {
            bail!("two rows would write predictions/{name}.csv (a bug in the experiment)");
        }
        rec.predictions_csv(&name, &GLUE_HEADER, rows);
        Ok(format!("predictions/{name}.csv"))
    }

    /// The path of `name`'s file if it was written.
    fn cited(&self, name: &str) -> Option<String> {
        let name = format!("{name}-s{}", self.seed);
        self.written
            .contains(&name)
            .then(|| format!("predictions/{name}.csv"))
    }
}

/// `text`, marked † when `rows` collapsed to a constant predictor (noted in `collapsed` as `what`).
fn flag(
    collapsed_rows: &mut Vec<String>,
    seed: u64,
    what: String,
    rows: &[Vec<String>],
    text: &str,
) -> String {
    if collapsed(rows) {
        let what = format!("{what} (seed {seed})");
        if !collapsed_rows.contains(&what) {
            collapsed_rows.push(what);
        }
        format!("{text} †")
    } else {
        text.to_string()
    }
}

/// A file-name-safe form of a setting (`λ=0.2` → `lambda0.2`).
fn ascii_setting(s: &str) -> String {
    s.replace('λ', "lambda")
        .replace('θ', "theta")
        .replace('=', "")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn record(
    file: &ExperimentFile<Profile>,
    p: &Profile,
    ctx: &RunContext,
    r: &Results,
    wall: f64,
) -> Result<RunRecord> {
    let synthetic = p.model == "tiny";
    let seed = ctx.seed;
    let mut rec = RunRecord::new(synthetic);
    let mut files = Files {
        seed,
        written: Default::default(),
    };
    let metric_of = |task: &str| r.metrics.get(task).cloned().unwrap_or_default();
    let mut collapsed_rows = Vec::new();
    let mut table = ctx.main_table(
        &file.title,
        synthetic,
        &[
            "task",
            "method",
            "setting",
            "dev metric",
            "Δ vs unpruned",
            "relative FLOPs",
            "GFLOPs/example",
            "train time (s)",
        ],
    );
    for (task, b) in &r.baselines {
        let m = b.metric;
        let metric = metric_of(task);
        let file = files.write(
            &mut rec,
            format!("{}-unpruned-dev", slug(task)),
            &b.predictions,
        )?;
        table.push(vec![
            Cell::text(task),
            Cell::text(flag(
                &mut collapsed_rows,
                seed,
                format!("{task} unpruned"),
                &b.predictions,
                "unpruned",
            )),
            Cell::text("-"),
            Cell::sourced(&[m], 2, glue_source(task, &metric, vec![file])),
            Cell::num(0.0, 2),
            Cell::num(1.0, 3),
            Cell::num(b.gflops, 3),
            Cell::text("-"),
        ]);
        rec.metric(format!("{task}.unpruned"), m);
        for pt in r.points.iter().filter(|pt| &pt.task == task) {
            let file = files.write(
                &mut rec,
                format!(
                    "{}-{}-{}-dev",
                    slug(task),
                    slug(&pt.method),
                    slug(&ascii_setting(&pt.setting))
                ),
                &pt.predictions,
            )?;
            table.push(vec![
                Cell::text(task),
                Cell::text(flag(
                    &mut collapsed_rows,
                    seed,
                    format!("{task} {} {}", pt.method, pt.setting),
                    &pt.predictions,
                    &pt.method,
                )),
                Cell::text(&pt.setting),
                Cell::sourced(&[pt.metric], 2, glue_source(task, &metric, vec![file])),
                Cell::num(pt.metric - m, 2),
                Cell::num(pt.relative_flops, 3),
                Cell::num(pt.gflops, 3),
                Cell::num(pt.train_seconds, 1),
            ]);
            let key = format!("{task}.{}.{}", pt.method, pt.setting);
            rec.metric(format!("{key}.metric"), pt.metric);
            rec.metric(format!("{key}.relative_flops"), pt.relative_flops);
        }
    }
    table.note(format!("profile `{}`: {}", ctx.profile, p.description));
    if synthetic {
        table.note("SYNTHETIC: seeded generated tasks; no paper number applies.");
    }
    table.note(format!(
        "dev metric (x100): {}; computed from each row's `predictions/<task>-<method>-<setting>-dev-s<seed>.csv` (one seed: {seed})",
        r.metrics
            .iter()
            .map(|(t, m)| format!("{t} {m}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !collapsed_rows.is_empty() {
        table.note(format!(
            "† collapsed to a constant predictor (every dev prediction the same label): {}",
            collapsed_rows.join(", ")
        ));
    }
    table.note(format!("paper: {}", file.reference));
    table.note(format!(
        "method: LTP = soft stage ({} epochs, lr {}, threshold lr {}, T = {}, θ_final = {}) then hard stage ({} epochs, lr {}, best dev epoch, so its dev numbers are selected on the set they are reported on: GLUE's test labels are not public); top-k = hard training with the cascade keep-rate schedule; manual = thresholds fixed at θ_final·l/L, hard training. Scores normalised by N = {}. Relative FLOPs = Σ MACs / Σ unpruned MACs over dev (§9 model); evaluation always prunes hard.",
        p.soft.epochs, p.soft.learning_rate, p.soft.threshold_learning_rate.unwrap_or(p.soft.learning_rate), p.temperature, p.final_threshold, p.hard.epochs, p.hard.learning_rate, p.norm_len
    ));
    if let Some(n) = ctx.args.train_examples.or(p.train_examples) {
        table.note(format!(
            "training subset: {n} examples per task (seeded shuffle)"
        ));
    }
    table.note(format!(
        "starting checkpoints: {}",
        r.sources
            .iter()
            .map(|(t, s)| format!("{t}: {s}"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    table.note(format!("wall time {wall:.0} s"));
    rec.table("table", table);
    rec.setting("sources", &r.sources)
        .setting("checkpoints", &r.checkpoints)
        .setting("points", &r.points)
        .setting("throughput", &r.tput)
        .setting("length_robustness", &r.lengths);

    let mut tt = Table::new(
        "Real token removal vs the dense model (dev set, length-grouped batches)".to_string(),
        &[
            "task",
            "LTP setting",
            "relative FLOPs",
            "dense examples/s",
            "removal examples/s",
            "speedup",
        ],
    );
    for t in &r.tput {
        tt.push(vec![
            Cell::text(&t.task),
            Cell::text(&t.setting),
            Cell::num(t.relative_flops, 3),
            Cell::num(t.dense_per_s, 1),
            Cell::num(t.removal_per_s, 1),
            Cell::num(t.speedup, 2),
        ]);
    }
    tt.note(format!("batch {}, median of {} passes over dev, same process, device {}. The paper reports 1.9x on a Haswell CPU (v1/v3 abstracts); the official code masks tokens and gets no speedup.", p.bench_batch, p.bench_runs, ctx.device_label()));
    rec.table("throughput", tt);

    if !r.lengths.is_empty() {
        let mut lt = Table::new(
            "Robustness to sequence length: thresholds vs top-k trained on one length range, evaluated on the other".to_string(),
            &["task", "direction", "method", "setting", "unpruned", "pruned", "Δ", "relative FLOPs"],
        );
        let mut collapsed_rows = Vec::new();
        for l in &r.lengths {
            let metric = metric_of(&l.task);
            let stem = format!("{}-length-{}", slug(&l.task), slug(&l.direction));
            // The unpruned model once per task and direction, shared by that direction's rows.
            let unpruned = match files.cited(&format!("{stem}-unpruned")) {
                Some(f) => f,
                None => files.write(
                    &mut rec,
                    format!("{stem}-unpruned"),
                    &l.unpruned_predictions,
                )?,
            };
            let direction = flag(
                &mut collapsed_rows,
                seed,
                format!("{} {} unpruned", l.task, l.direction),
                &l.unpruned_predictions,
                &l.direction,
            );
            let file = files.write(
                &mut rec,
                format!(
                    "{stem}-{}-{}",
                    slug(&l.method),
                    slug(&ascii_setting(&l.setting))
                ),
                &l.predictions,
            )?;
            lt.push(vec![
                Cell::text(&l.task),
                Cell::text(direction),
                Cell::text(flag(
                    &mut collapsed_rows,
                    seed,
                    format!("{} {} {} {}", l.task, l.direction, l.method, l.setting),
                    &l.predictions,
                    &l.method,
                )),
                Cell::text(&l.setting),
                Cell::sourced(
                    &[l.metric_unpruned],
                    2,
                    glue_source(&l.task, &metric, vec![unpruned]),
                ),
                Cell::sourced(&[l.metric], 2, glue_source(&l.task, &metric, vec![file])),
                Cell::num(l.metric - l.metric_unpruned, 2),
                Cell::num(l.relative_flops, 3),
            ]);
        }
        lt.note("split at the median token count of train and of dev; same settings as the main sweep (first λ, first top-k rate).");
        lt.note(format!("unpruned and pruned: the dev metric (x100) on the evaluation half, computed from `predictions/<task>-length-<direction>-<unpruned|method-setting>-s<seed>.csv` (idx: the dev file's row; one seed: {seed})"));
        if !collapsed_rows.is_empty() {
            lt.note(format!(
                "† collapsed to a constant predictor (every prediction the same label): {}",
                collapsed_rows.join(", ")
            ));
        }
        rec.table("length_robustness", lt);
    }

    for task in r.baselines.keys() {
        let mut series = Vec::new();
        for method in ["LTP", "top-k", "manual"] {
            let mut pts: Vec<(f64, f64)> = r
                .points
                .iter()
                .filter(|pt| &pt.task == task && pt.method == method)
                .map(|pt| (pt.relative_flops, pt.metric))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !pts.is_empty() {
                series.push(Series {
                    name: method.into(),
                    points: pts,
                });
            }
        }
        series.push(Series {
            name: "unpruned".into(),
            points: vec![(1.0, r.baselines[task].metric)],
        });
        rec.plot(
            &format!("metric_vs_flops_{task}"),
            Plot::line(
                &format!("{task}: dev metric vs relative FLOPs"),
                "relative FLOPs",
                "dev metric",
                series,
            ),
        );
        let kept = r
            .points
            .iter()
            .filter(|pt| &pt.task == task)
            .map(|pt| Series {
                name: format!("{} {}", pt.method, pt.setting),
                points: pt
                    .kept_per_layer
                    .iter()
                    .enumerate()
                    .map(|(l, &k)| (l as f64, k))
                    .collect(),
            })
            .collect();
        rec.plot(
            &format!("kept_tokens_{task}"),
            Plot::line(
                &format!("{task}: mean kept tokens after each layer (dev)"),
                "layer",
                "kept tokens",
                kept,
            ),
        );
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(preds: &[u8], labels: &[u8], idx: &[usize]) -> Vec<Vec<String>> {
        idx.iter()
            .zip(preds.iter().zip(labels))
            .map(|(i, (p, l))| vec![i.to_string(), p.to_string(), l.to_string()])
            .collect()
    }

    /// Every metric of every table (unpruned rows and the length study included) cites its own
    /// prediction file, which the record verifies before writing; a constant predictor is
    /// flagged in its row.
    #[test]
    fn every_metric_cites_its_predictions_and_collapse_is_flagged() {
        let file = kiln_experiment::file::load::<Profile>(NAME).unwrap();
        let p = &file.profiles["smoke"];
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let args = RunArgs::new("smoke", out.path(), cache.path());
        let ctx = RunContext::new(NAME, "smoke", "test", &args).unwrap();
        let labels = [1, 0, 1, 1];
        let all = [0, 1, 2, 3];
        let point = |method: &str, setting: &str, preds: &[u8], metric: f64| Point {
            task: "syn-x".into(),
            method: method.into(),
            setting: setting.into(),
            metric,
            relative_flops: 0.5,
            gflops: 0.1,
            kept_per_layer: vec![4.0, 2.0],
            thresholds: vec![0.0, 0.01],
            train_seconds: 1.0,
            predictions: rows(preds, &labels, &all),
        };
        let length = |direction: &str, idx: &[usize]| LengthRow {
            task: "syn-x".into(),
            direction: direction.into(),
            method: "LTP".into(),
            setting: "λ=0.2".into(),
            metric_unpruned: 100.0,
            metric: 50.0,
            relative_flops: 0.5,
            unpruned_predictions: rows(&[1, 0], &[1, 0], idx),
            predictions: rows(&[1, 1], &[1, 0], idx),
        };
        let r = Results {
            points: vec![
                point("LTP", "λ=0.2", &[1, 0, 1, 0], 75.0),
                point("top-k", "r=-0.5", &[1, 1, 1, 1], 75.0),
            ],
            baselines: BTreeMap::from([(
                "syn-x".to_string(),
                Baseline {
                    metric: 100.0,
                    gflops: 0.2,
                    predictions: rows(&labels, &labels, &all),
                },
            )]),
            metrics: BTreeMap::from([("syn-x".to_string(), "accuracy".to_string())]),
            tput: Vec::new(),
            lengths: vec![
                length("train short → test long", &[0, 2]),
                length("train long → test short", &[1, 3]),
            ],
            sources: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
        };
        let dir = record(&file, p, &ctx, &r, 1.0)
            .unwrap()
            .finish(&ctx)
            .unwrap();
        let checks = kiln_experiment::verify::check_run(&dir).unwrap();
        assert!(checks.failures.is_empty(), "{:?}", checks.failures);
        assert_eq!((checks.agreed, checks.unsourced), (3 + 2 * 2, 0));
        let md = std::fs::read_to_string(dir.join("table.md")).unwrap();
        assert!(
            md.contains("| syn-x | top-k † | r=-0.5 | 75.00 |")
                && md.contains("syn-x top-k r=-0.5 (seed 42)"),
            "{md}"
        );
        for f in [
            "syn-x-unpruned-dev-s42",
            "syn-x-ltp-lambda0-2-dev-s42",
            "syn-x-top-k-r-0-5-dev-s42",
            "syn-x-length-train-short-test-long-unpruned-s42",
            "syn-x-length-train-long-test-short-ltp-lambda0-2-s42",
        ] {
            assert!(dir.join(format!("predictions/{f}.csv")).exists(), "{f}");
        }
        let csv = std::fs::read_to_string(
            dir.join("predictions/syn-x-length-train-long-test-short-unpruned-s42.csv"),
        )
        .unwrap();
        assert_eq!(
            csv, "idx,prediction,label\n1,1,1\n3,0,0\n",
            "the dev file's rows"
        );
    }
}
