//! `glue-finetune`: fine-tune a BERT-family encoder per GLUE task and report dev scores. Writes
//! the fine-tuned checkpoints to `<cache>/finetuned/<model>/<task>/<profile>-<key>/` (HF
//! directories, keyed by what shaped them; see `checkpoints`) for the pruning experiments, and
//! each task's dev predictions in GLUE's format (`predictions/<task>-dev-s<seed>.csv`), from
//! which every dev score in the table is computed (`kiln verify` recomputes them).
//!
//! BERT-base's published scores (GLUE test server) sit beside a row only when the row runs the
//! paper's setting (a profile marked `paper_setting`, trained on the full training set);
//! otherwise they go into a separate `paper_reference` table that says what differs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use kiln_data::{read_glue_labelled, Example, GlueTask, TextTokenizer};
use kiln_experiment::predictions::{glue_rows, glue_source, is_constant, GLUE_HEADER};
use kiln_experiment::{
    Bench, ExperimentFile, Flags, Paper, Plot, Resolver, RunArgs, RunContext, RunRecord,
};
use kiln_models::bert::{load_classifier, save_classifier};
use kiln_models::finetune::{finetune, predict, CurvePoint, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};
use kiln_report::{slug, Cell, Series, Table};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::checkpoints::{
    check_vocab, encode_all, file_sha256, finetuned_dir, smoke_task, FinetuneSettings, SMOKE_MODEL,
};

pub const NAME: &str = "glue-finetune";

/// The experiment, for the registry.
pub struct GlueFinetune;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskOverride {
    pub train_examples: Option<usize>,
    pub dev_examples: Option<usize>,
    pub epochs: Option<f64>,
    pub learning_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneProfile {
    pub description: String,
    /// A model name the resolver knows, or `tiny` (synthetic smoke model).
    pub model: String,
    pub tasks: Vec<String>,
    pub max_len: usize,
    pub train_examples: Option<usize>,
    pub dev_examples: Option<usize>,
    pub train: FinetuneConfig,
    #[serde(default)]
    pub task: BTreeMap<String, TaskOverride>,
    /// The profile runs the paper's setting (its model on the full training sets): only then
    /// does a row show the paper's number beside kiln's, and only for a task trained on its
    /// whole training set.
    #[serde(default)]
    pub paper_setting: bool,
}

/// One task's outcome.
struct TaskRun {
    task: String,
    metric: String,
    value: f64,
    all: BTreeMap<String, f64>,
    train_examples: usize,
    /// Labelled examples in the task's training file (the subset is drawn from them).
    train_available: usize,
    dev_examples: usize,
    epochs: f64,
    steps: usize,
    seconds: f64,
    /// The seed it was trained with.
    seed: u64,
    curve: Vec<CurvePoint>,
    data_from: String,
    predictions: Vec<Vec<String>>,
    /// Where the checkpoint was saved (keyed by its settings).
    saved_to: std::path::PathBuf,
}

/// A task ready to fine-tune: its model, tokenizer and examples (dev rows with their index in
/// the dev file).
struct Job<'a> {
    name: &'a str,
    task: Option<GlueTask>,
    model: BertForSequenceClassification,
    config: &'a BertConfig,
    tok: &'a TextTokenizer,
    train: Vec<Example>,
    /// Labelled examples in the training file `train` was drawn from.
    train_available: usize,
    dev: Vec<(usize, Example)>,
    data_from: String,
}

impl Paper for GlueFinetune {
    type Profile = FinetuneProfile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn flags(&self, p: &FinetuneProfile) -> Flags {
        Flags {
            tasks: Some(crate::checkpoints::task_choices(&p.model, &p.tasks, &[])),
            epochs: true,
            train_examples: true,
            model: p.model != "tiny",
            ..Flags::default()
        }
    }

    fn inputs(&self, _: &str, p: &FinetuneProfile, args: &RunArgs) -> Result<String, String> {
        if p.model == "tiny" {
            return Ok("synthetic tasks, tiny BERT trained from scratch".into());
        }
        let r = Resolver::from_args(args);
        let mut model = r.find_model(&p.model);
        if model.is_none() && r.download {
            println!("{} not found locally; trying to download it", p.model);
            model = r.model(&p.model).ok();
        }
        let Some(m) = model else {
            return Err(format!(
                "{} not found and not downloadable (`just fetch {}` fetches it)",
                p.model, p.model
            ));
        };
        let tasks = args.tasks_or(&p.tasks);
        let missing: Vec<&String> = tasks
            .iter()
            .filter(|t| {
                GlueTask::parse(t)
                    .ok()
                    .and_then(|t| r.find_task(t))
                    .is_none()
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "GLUE data for {missing:?} not found (pass --data-dir)"
            ));
        }
        Ok(format!(
            "{} found ({}) and GLUE {} found",
            p.model,
            m.how,
            tasks.join(", ")
        ))
    }

    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<FinetuneProfile>,
        p: &FinetuneProfile,
    ) -> Result<RunRecord> {
        let synthetic = p.model == "tiny";
        let (runs, model_desc) = if synthetic {
            (
                run_smoke(p, ctx)?,
                "tiny BERT (2 layers, hidden 64) trained from scratch".to_string(),
            )
        } else {
            run_real(p, ctx)?
        };
        let wall = ctx.elapsed();
        let mut rec = RunRecord::new(synthetic);
        let mut names = std::collections::BTreeSet::new();
        for r in &runs {
            if !names.insert(prediction_name(r)) {
                bail!("{}: listed twice; each task runs once", r.task);
            }
        }
        let (main, reference) = table(file, p, ctx, &runs, &model_desc, wall);
        rec.table("table", main);
        if let Some(t) = reference {
            rec.table("paper_reference", t);
        }
        for r in &runs {
            for (k, v) in &r.all {
                rec.metric(format!("{}.{k}", r.task), *v);
            }
            rec.metric(format!("{}.train_seconds", r.task), r.seconds);
            rec.predictions_csv(&prediction_name(r), &GLUE_HEADER, &r.predictions);
        }
        rec.setting("model", &model_desc)
            .setting(
                "data",
                runs.iter()
                    .map(|r| (r.task.clone(), r.data_from.clone()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .setting(
                "curves",
                runs.iter()
                    .map(|r| (r.task.clone(), r.curve.clone()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .setting(
                "checkpoints",
                runs.iter()
                    .map(|r| (r.task.clone(), r.saved_to.display().to_string()))
                    .collect::<BTreeMap<_, _>>(),
            );
        let loss = runs
            .iter()
            .map(|r| Series {
                name: r.task.clone(),
                points: r.curve.iter().map(|c| (c.epoch, c.train_loss)).collect(),
            })
            .collect();
        rec.plot(
            "training_curve",
            Plot::line("Training loss", "epoch", "mean train loss", loss),
        );
        let dev = runs
            .iter()
            .map(|r| Series {
                name: r.task.clone(),
                points: r
                    .curve
                    .iter()
                    .filter_map(|c| c.dev_metric.map(|m| (c.epoch, m)))
                    .collect(),
            })
            .collect();
        rec.plot(
            "dev_curve",
            Plot::line(
                "Dev metric during training",
                "epoch",
                "dev metric (x100)",
                dev,
            ),
        );
        Ok(rec)
    }

    fn benches(&self) -> &'static [Bench] {
        &[
            ("encoder", crate::bench::encoder),
            ("finetune", crate::bench::finetune_step),
        ]
    }
}

/// A task's dev predictions under `predictions/` (without `.csv`): `<task>-dev-s<seed>`.
fn prediction_name(r: &TaskRun) -> String {
    format!("{}-dev-s{}", slug(&r.task), r.seed)
}

/// True when every dev prediction is the same (the seed collapsed to a constant predictor).
fn collapsed(predictions: &[Vec<String>]) -> bool {
    is_constant(
        &predictions
            .iter()
            .map(|r| r[1].as_str())
            .collect::<Vec<_>>(),
    )
}

/// The main table, and the paper's numbers for the rows that do not run the paper's setting
/// (a separate table saying what differs; `None` when there are none).
fn table(
    file: &ExperimentFile<FinetuneProfile>,
    p: &FinetuneProfile,
    ctx: &RunContext,
    runs: &[TaskRun],
    model_desc: &str,
    wall: f64,
) -> (Table, Option<Table>) {
    let synthetic = p.model == "tiny";
    let mut table = ctx.main_table(
        &file.title,
        synthetic,
        &[
            "task",
            "metric",
            "BERT-base (paper, test)",
            "kiln (dev)",
            "Δ",
            "train ex.",
            "dev ex.",
            "epochs",
            "steps",
            "train s",
        ],
    );
    let mut reference = Table::new(
        format!(
            "Paper reference — BERT-base on the GLUE test server, not comparable with profile `{}`",
            ctx.profile
        ),
        &[
            "task",
            "metric",
            "BERT-base (paper, test)",
            "what differs here",
        ],
    );
    let mut collapsed_seeds = Vec::new();
    for r in runs {
        let paper = if synthetic {
            None
        } else {
            file.paper.get(&r.task)
        };
        // The paper's setting: the profile's model on the whole training set.
        let full_train = r.train_examples >= r.train_available;
        // An --epochs override leaves the paper's schedule, so it leaves the paper's setting.
        let own_epochs = ctx.args.epochs.is_none();
        let beside = paper.filter(|_| p.paper_setting && full_train && own_epochs);
        if let (Some(v), None) = (paper, beside) {
            let mut differs = Vec::new();
            if !p.paper_setting {
                differs.push(format!("model {} (profile `{}`)", p.model, ctx.profile));
            }
            if !full_train {
                differs.push(format!(
                    "{} of {} training examples",
                    r.train_examples, r.train_available
                ));
            }
            if !own_epochs {
                differs.push(format!("--epochs {} given on the command line", r.epochs));
            }
            differs.push("dev set, not the test server".into());
            reference.push(vec![
                Cell::text(&r.task),
                Cell::text(&r.metric),
                Cell::num(v, 1),
                Cell::text(differs.join("; ")),
            ]);
        }
        let constant = collapsed(&r.predictions);
        if constant {
            collapsed_seeds.push(format!("{} (seed {})", r.task, r.seed));
        }
        let files = vec![format!("predictions/{}.csv", prediction_name(r))];
        table.push(vec![
            Cell::text(if constant {
                format!("{} †", r.task)
            } else {
                r.task.clone()
            }),
            Cell::text(&r.metric),
            Cell::opt(beside, 1),
            Cell::sourced(&[r.value], 1, glue_source(&r.task, &r.metric, files)),
            Cell::Num(beside.map(|b| r.value - b), 1),
            Cell::num(r.train_examples as f64, 0),
            Cell::num(r.dev_examples as f64, 0),
            Cell::num(r.epochs, 1),
            Cell::num(r.steps as f64, 0),
            Cell::num(r.seconds, 0),
        ]);
    }
    table.note(format!(
        "profile `{}`: {}; model: {model_desc}",
        ctx.profile, p.description
    ));
    table.note(format!(
        "kiln (dev): the last checkpoint's dev score, computed from `predictions/<task>-dev-s<seed>.csv` (one seed: {})",
        runs.iter()
            .map(|r| r.seed.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !collapsed_seeds.is_empty() {
        table.note(format!(
            "† collapsed to a constant predictor (every dev prediction the same label): {}",
            collapsed_seeds.join(", ")
        ));
    }
    if synthetic {
        table.note(
            "SYNTHETIC: seeded generated tasks (kiln-data synthetic); no paper number applies.",
        );
    } else {
        table.note(format!("paper: {}", file.reference));
        if !reference.rows.is_empty() {
            table.note(
                "the paper column is filled only for rows that run the paper's setting (BERT-base, full training set); the paper's numbers for the other rows are in `paper_reference`, with what differs",
            );
        }
        let subs: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{}: {} of {} train examples, {} epochs",
                    r.task, r.train_examples, r.train_available, r.epochs
                )
            })
            .collect();
        table.note(format!(
            "training subsets (seeded shuffle, seed {}): {}",
            ctx.seed,
            subs.join("; ")
        ));
    }
    table.note(format!(
        "device {}; wall time {:.0} s; hyper-parameters: batch {}, peak lr {:e}, warmup {}, weight decay {}",
        ctx.device_label(),
        wall,
        p.train.batch_size,
        p.train.learning_rate,
        p.train.warmup_ratio,
        p.train.weight_decay
    ));
    if reference.rows.is_empty() {
        return (table, None);
    }
    reference.note(format!("paper: {}", file.reference));
    reference.note(
        "the paper fine-tunes BERT-base (110M parameters) on each full training set and reports the GLUE test server; kiln's numbers for these tasks are in `table`, from a different setting, so no difference is shown",
    );
    (table, Some(reference))
}

/// The first `n` examples after a seeded shuffle, each with its row in the file.
fn subset(ex: Vec<Example>, n: Option<usize>, seed: u64) -> Vec<(usize, Example)> {
    let mut ex: Vec<(usize, Example)> = ex.into_iter().enumerate().collect();
    if let Some(n) = n {
        if n < ex.len() {
            ex.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            ex.truncate(n);
        }
    }
    ex
}

/// What a glue-finetune run changes from its profile: `--train-examples`, `--epochs`, `--seed`.
#[derive(Debug, Clone)]
struct Overrides {
    train_examples: Option<usize>,
    epochs: Option<f64>,
    seed: u64,
}

impl Overrides {
    fn of(args: &RunArgs) -> Self {
        Self {
            train_examples: args.train_examples,
            epochs: args.epochs,
            seed: args.seed,
        }
    }

    /// The profile as written, at the seed glue-finetune runs with when none is given: what an
    /// experiment starting from a profile's checkpoints expects, and what its fine-tuning stage
    /// trains (whatever that experiment's own `--seed`).
    fn none() -> Self {
        Self {
            train_examples: None,
            epochs: None,
            seed: RunArgs::new("", Path::new(""), Path::new("")).seed,
        }
    }
}

fn train_cfg(p: &FinetuneProfile, task: &str, o: &Overrides) -> FinetuneConfig {
    let mut c = p.train.clone();
    c.seed = o.seed;
    if let Some(t) = p.task.get(task) {
        if let Some(e) = t.epochs {
            c.epochs = e;
        }
        if let Some(lr) = t.learning_rate {
            c.learning_rate = lr;
        }
    }
    if let Some(e) = o.epochs {
        c.epochs = e;
    }
    c
}

/// The settings glue-finetune's profile `p` trains a real GLUE `task` with, from `files` and a
/// base model whose weights hash to `base_sha256`.
fn task_settings(
    p: &FinetuneProfile,
    task: GlueTask,
    files: &kiln_experiment::TaskFiles,
    base_sha256: &str,
    o: &Overrides,
) -> Result<FinetuneSettings> {
    let over = p.task.get(task.name());
    Ok(FinetuneSettings {
        task: task.name().to_string(),
        base_model: p.model.clone(),
        base_model_sha256: base_sha256.to_string(),
        train_data: format!("sha256:{}", file_sha256(&files.train)?),
        dev_data: format!("sha256:{}", file_sha256(&files.dev)?),
        train_examples: o
            .train_examples
            .or(over.and_then(|t| t.train_examples))
            .or(p.train_examples),
        dev_examples: over.and_then(|t| t.dev_examples).or(p.dev_examples),
        max_len: p.max_len,
        train: train_cfg(p, task.name(), o),
    })
}

/// What glue-finetune's `profile` would train `task` with here, run without overrides (no
/// `--train-examples` or `--epochs`, the default seed), on the data and base model `resolver`
/// finds: the settings of the checkpoint an experiment starting from that profile expects
/// ([`crate::checkpoints::finetuned_for`]). The base model's hash is left empty (not compared)
/// when the base model is not found locally.
pub fn expected_settings(
    profile: &str,
    task: &str,
    resolver: &Resolver,
) -> Result<FinetuneSettings> {
    let p = profile_named(profile)?;
    if p.model == "tiny" {
        bail!("glue-finetune `{profile}` trains synthetic tasks, not {task}");
    }
    let t = GlueTask::parse(task)?;
    let files = resolver
        .find_task(t)
        .with_context(|| format!("GLUE data for {task} not found (pass --data-dir)"))?;
    // The base model by name: `--model`, for a consumer, names the fine-tuned checkpoint.
    let base = Resolver {
        model: None,
        ..resolver.clone()
    }
    .find_model(&p.model);
    let base_sha256 = match base {
        Some(b) => file_sha256(&b.path.join("model.safetensors"))?,
        None => String::new(),
    };
    task_settings(&p, t, &files, &base_sha256, &Overrides::none())
}

fn run_task(
    job: Job,
    cfg: &FinetuneConfig,
    profile: &str,
    settings: &FinetuneSettings,
    save_to: &Path,
    device: &Device,
    device_label: &str,
) -> Result<TaskRun> {
    let name = job.name;
    let (num_labels, metric_names): (usize, Vec<String>) = match job.task {
        Some(t) => (
            t.num_labels(),
            t.metric_names().iter().map(|s| s.to_string()).collect(),
        ),
        None => (2, vec!["accuracy".into()]),
    };
    let (dev_idx, dev): (Vec<usize>, Vec<Example>) = job.dev.into_iter().unzip();
    let (tr, trl) = encode_all(job.tok, &job.train)?;
    let (dv, dvl) = encode_all(job.tok, &dev)?;
    if dvl.iter().any(|l| l.is_none()) {
        bail!("{name}: the dev file has unlabelled rows; point --data-dir at a labelled dev split");
    }
    let data = TaskData {
        name: name.to_string(),
        num_labels,
        metric_names: metric_names.clone(),
        train: &tr,
        train_labels: &trl,
        dev: &dv,
        dev_labels: &dvl,
        pad_id: job.tok.pad_id as i64,
    };
    println!(
        "{name}: {} train / {} dev examples, {} epochs",
        tr.len(),
        dv.len(),
        cfg.epochs
    );
    let res = finetune(job.model, &data, cfg, device)?;
    let metric = if num_labels == 1 {
        "spearman".to_string()
    } else {
        metric_names[0].clone()
    };
    let value = res.dev_metrics.get(&metric).copied().unwrap_or(f64::NAN);
    let outputs = predict(&res.model, &dv, job.tok.pad_id as i64, 64, None, device);
    let gold: Vec<f32> = dvl.iter().map(|l| l.unwrap_or(f32::NAN)).collect();
    let predictions = glue_rows(job.task, &dev_idx, &outputs, &gold);
    // The record goes first and comes back last: a save cut short leaves a directory without
    // one, which no consumer accepts.
    crate::checkpoints::clear_provenance(save_to)?;
    crate::checkpoints::save_with_tokenizer(
        |tok| Ok(save_classifier(&res.model, job.config, Some(tok), save_to)?),
        job.tok,
    )?;
    crate::checkpoints::write_provenance(
        save_to,
        &crate::checkpoints::Provenance {
            experiment: NAME.into(),
            profile: profile.into(),
            task: name.into(),
            metric: metric.clone(),
            value,
            train_examples: tr.len(),
            epochs: cfg.epochs,
            steps: res.steps,
            seed: cfg.seed,
            settings: Some(settings.clone()),
            weights_sha256: Some(file_sha256(&save_to.join("model.safetensors"))?),
            device: Some(device_label.to_string()),
        },
    )?;
    println!(
        "{name}: dev {metric} = {value:.2} ({} steps, {:.0} s); saved to {}",
        res.steps,
        res.train_seconds,
        save_to.display()
    );
    Ok(TaskRun {
        task: name.to_string(),
        metric,
        value,
        all: res.dev_metrics,
        train_examples: tr.len(),
        train_available: job.train_available,
        dev_examples: dv.len(),
        epochs: cfg.epochs,
        steps: res.steps,
        seconds: res.train_seconds,
        seed: cfg.seed,
        curve: res.curve,
        data_from: job.data_from,
        predictions,
        saved_to: save_to.to_path_buf(),
    })
}

fn run_smoke(p: &FinetuneProfile, ctx: &RunContext) -> Result<Vec<TaskRun>> {
    let profile = ctx.profile.as_str();
    let mut runs = Vec::new();
    for t in &ctx.args.tasks_or(&p.tasks) {
        let n_train = ctx.args.train_examples.or(p.train_examples).unwrap_or(1500);
        let n_dev = p.dev_examples.unwrap_or(400);
        let st = smoke_task(t, n_train, n_dev, p.max_len, ctx.seed, &ctx.device)?;
        let cfg = train_cfg(p, t, &Overrides::of(&ctx.args));
        let settings = FinetuneSettings {
            task: t.clone(),
            base_model: "tiny (random initialisation)".into(),
            base_model_sha256: String::new(),
            train_data: format!("synthetic {t}, seed {}", ctx.seed),
            dev_data: format!("synthetic {t}, seed {}", ctx.seed),
            train_examples: Some(n_train),
            dev_examples: Some(n_dev),
            max_len: p.max_len,
            train: cfg.clone(),
        };
        let job = Job {
            name: t,
            task: None,
            model: st.model,
            config: &st.config,
            tok: &st.tok,
            train_available: st.train.len(),
            train: st.train,
            dev: st.dev.into_iter().enumerate().collect(),
            data_from: format!("synthetic (seed {})", ctx.seed),
        };
        let save_to = finetuned_dir(&ctx.cache, SMOKE_MODEL, t, profile, &settings);
        runs.push(run_task(
            job,
            &cfg,
            profile,
            &settings,
            &save_to,
            &ctx.device,
            &ctx.device_label(),
        )?);
    }
    Ok(runs)
}

fn run_real(p: &FinetuneProfile, ctx: &RunContext) -> Result<(Vec<TaskRun>, String)> {
    run_real_tasks(
        p,
        &ctx.profile,
        &ctx.args.tasks_or(&p.tasks),
        &Overrides::of(&ctx.args),
        ctx,
    )
}

/// What a fine-tuning stage run by another experiment produced.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneSummary {
    pub task: String,
    /// The glue-finetune profile it was trained with.
    pub profile: String,
    pub metric: String,
    pub value: f64,
    pub train_examples: usize,
    pub epochs: f64,
    pub steps: usize,
    pub seconds: f64,
    /// Where the checkpoint was saved.
    pub checkpoint: std::path::PathBuf,
}

impl FinetuneSummary {
    pub fn line(&self) -> String {
        format!(
            "{} (glue-finetune `{}`: {} train examples, {} epochs, {} steps, {:.0} s; dev {} {:.2})",
            self.task,
            self.profile,
            self.train_examples,
            self.epochs,
            self.steps,
            self.seconds,
            self.metric,
            self.value
        )
    }
}

fn profile_named(name: &str) -> Result<FinetuneProfile> {
    let file = kiln_experiment::file::load::<FinetuneProfile>(NAME)?;
    file.profiles
        .get(name)
        .cloned()
        .with_context(|| format!("experiments/{NAME}.toml has no profile `{name}`"))
}

/// Whether [`finetune_missing`] can run `tasks` with glue-finetune's `profile` (the base model
/// found or downloadable, the GLUE data found).
pub fn finetune_inputs(profile: &str, tasks: &[String], args: &RunArgs) -> Result<String, String> {
    let mut p = profile_named(profile).map_err(|e| format!("{e:#}"))?;
    p.tasks = args.tasks_or(tasks);
    let mut args = args.clone();
    args.tasks = None;
    GlueFinetune.inputs(profile, &p, &args).map(|found| {
        format!("the run fine-tunes them first with glue-finetune's `{profile}` profile ({found})")
    })
}

/// Fine-tunes `tasks` with glue-finetune's `profile` into the cache the pruning experiments read
/// ([`crate::checkpoints::finetuned_dir`]), as the first stage of an experiment that starts from
/// fine-tuned checkpoints: the profile as written, at glue-finetune's default seed, whatever the
/// calling run's `--seed` (so the checkpoint is the one [`expected_settings`] describes).
pub fn finetune_missing(
    profile: &str,
    tasks: &[String],
    ctx: &RunContext,
) -> Result<Vec<FinetuneSummary>> {
    let p = profile_named(profile)?;
    let (runs, _) = run_real_tasks(&p, profile, tasks, &Overrides::none(), ctx)?;
    Ok(runs
        .into_iter()
        .map(|r| FinetuneSummary {
            task: r.task,
            profile: profile.to_string(),
            metric: r.metric,
            value: r.value,
            train_examples: r.train_examples,
            epochs: r.epochs,
            steps: r.steps,
            seconds: r.seconds,
            checkpoint: r.saved_to,
        })
        .collect())
}

fn run_real_tasks(
    p: &FinetuneProfile,
    profile: &str,
    tasks: &[String],
    o: &Overrides,
    ctx: &RunContext,
) -> Result<(Vec<TaskRun>, String)> {
    let model_dir = ctx.resolver.model(&p.model)?;
    println!("model: {} ({})", model_dir.path.display(), model_dir.how);
    let ck = kiln_models::bert::validate_checkpoint(&model_dir.path)?;
    let tok_path = ck.tokenizer().with_context(|| {
        format!(
            "{}: no tokenizer.json next to the weights; kiln needs the HF fast-tokenizer file",
            model_dir.path.display()
        )
    })?;
    let tok = TextTokenizer::from_file(&tok_path, p.max_len)?;
    check_vocab(&tok, &ck.config, &model_dir.path)?;
    let model_name = model_dir
        .path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.model.clone());
    let base_sha256 = file_sha256(&model_dir.path.join("model.safetensors"))?;
    let mut runs = Vec::new();
    for t in tasks {
        let task = GlueTask::parse(t)?;
        let files = ctx.resolver.task(task)?;
        println!(
            "{}: {} ({})",
            task.name(),
            files.train.parent().unwrap_or(Path::new(".")).display(),
            files.how
        );
        let settings = task_settings(p, task, &files, &base_sha256, o)?;
        let train = read_glue_labelled(&files.train, task)?;
        let train_available = train.len();
        let train = subset(train, settings.train_examples, o.seed);
        let dev = subset(
            read_glue_labelled(&files.dev, task)?,
            settings.dev_examples,
            o.seed,
        );
        ctx.device.seed(o.seed);
        let (model, ck) = load_classifier(&model_dir.path, task.num_labels(), &ctx.device)?;
        let job = Job {
            name: task.name(),
            task: Some(task),
            model,
            config: &ck.config,
            tok: &tok,
            train: train.into_iter().map(|(_, e)| e).collect(),
            train_available,
            dev,
            data_from: format!("{} ({})", files.train.display(), files.how),
        };
        let save_to = finetuned_dir(&ctx.cache, &model_name, task.name(), profile, &settings);
        runs.push(run_task(
            job,
            &settings.train.clone(),
            profile,
            &settings,
            &save_to,
            &ctx.device,
            &ctx.device_label(),
        )?);
    }
    Ok((runs, model_dir.path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: &str, metric: &str, train: usize, of: usize, preds: &[&str]) -> TaskRun {
        TaskRun {
            task: task.into(),
            metric: metric.into(),
            value: 50.0,
            all: BTreeMap::new(),
            train_examples: train,
            train_available: of,
            dev_examples: preds.len(),
            epochs: 3.0,
            steps: 10,
            seconds: 1.0,
            seed: 7,
            curve: Vec::new(),
            data_from: String::new(),
            predictions: preds
                .iter()
                .enumerate()
                .map(|(i, p)| vec![i.to_string(), p.to_string(), "positive".into()])
                .collect(),
            saved_to: Default::default(),
        }
    }

    /// The paper's number sits beside a row only in the paper's setting (the `paper` profile,
    /// full training set); otherwise it is listed apart with what differs. A constant predictor
    /// is flagged; every dev score cites its seed's prediction file.
    #[test]
    fn paper_numbers_only_beside_the_papers_setting_and_collapse_flagged() {
        let file = kiln_experiment::file::load::<FinetuneProfile>(NAME).unwrap();
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let args = RunArgs::new("mini", out.path(), cache.path());
        let ctx = RunContext::new(NAME, "mini", "test", &args).unwrap();
        let runs = [
            run("sst2", "accuracy", 100, 100, &["positive", "negative"]),
            run("rte", "accuracy", 50, 100, &["entailment", "entailment"]),
        ];
        let mini = &file.profiles["mini"];
        let (t, reference) = table(&file, mini, &ctx, &runs, "m", 1.0);
        let md = t.to_markdown();
        assert!(!md.contains("93.5") && !md.contains("66.4"), "{md}");
        assert!(
            md.contains("| rte † |") && md.contains("rte (seed 7)"),
            "{md}"
        );
        assert_eq!(
            t.rows[0][3].source().unwrap().files,
            ["predictions/sst2-dev-s7.csv"]
        );
        let reference = reference
            .expect("mini lists the paper's numbers apart")
            .to_markdown();
        assert!(reference.contains("93.5") && reference.contains("model all-MiniLM-L6-v2"));
        assert!(
            reference.contains("50 of 100 training examples"),
            "{reference}"
        );

        let paper = &file.profiles["paper"];
        assert!(paper.paper_setting);
        let (t, reference) = table(&file, paper, &ctx, &runs, "m", 1.0);
        let md = t.to_markdown();
        assert!(
            md.contains("| sst2 | accuracy | 93.5 | 50.0 | -43.5 |"),
            "{md}"
        );
        assert!(!md.contains("66.4"), "rte trained on a subset: {md}");
        let reference = reference.unwrap().to_markdown();
        assert!(reference.contains("66.4") && !reference.contains("93.5"));
    }
}
