//! `glue-finetune`: fine-tune a BERT-family encoder per GLUE task and report dev scores beside
//! BERT-base's published scores. Writes the fine-tuned checkpoints to
//! `datasets/cache/finetuned/<model>/<task>/` (HF directories) for the pruning experiments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use kiln_data::synthetic::{self, SyntheticTask};
use kiln_data::{read_glue_file, Encoded, Example, GlueTask, TextTokenizer};
use kiln_models::bert::{load_classifier, save_classifier};
use kiln_models::finetune::{finetune, CurvePoint, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};
use kiln_report::{line_plot, Cell, RunMeta, Series, Table};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::RunArgs;
use crate::resolve;
use crate::settings::{self, Experiment, Profile};

const NAME: &str = "glue-finetune";

/// Where fine-tuned checkpoints are cached for later experiments.
pub fn finetuned_dir(model: &str, task: &str) -> PathBuf {
    kiln_core::paths::cache_dir()
        .join("finetuned")
        .join(model)
        .join(task)
}

/// One task's outcome.
struct TaskRun {
    task: String,
    metric: String,
    value: f64,
    all: BTreeMap<String, f64>,
    train_examples: usize,
    dev_examples: usize,
    epochs: f64,
    steps: usize,
    seconds: f64,
    curve: Vec<CurvePoint>,
    data_from: String,
}

/// Picks the profile: the one asked for, else mini when MiniLM and the four GLUE tasks resolve
/// locally, else smoke.
fn choose_profile(exp: &Experiment, args: &RunArgs) -> Result<(String, String)> {
    if let Some(chosen) = super::requested_profile(NAME, &exp.profiles, args)? {
        return Ok(chosen);
    }
    let mini = &exp.profiles["mini"];
    let mut model = resolve::find_model(&mini.model, args.model.as_deref());
    if model.is_none() && args.download {
        println!("{} not found locally; trying to download it", mini.model);
        model = resolve::resolve_model(&mini.model, None, true).ok();
    }
    let missing: Vec<&String> = mini
        .tasks
        .iter()
        .filter(|t| {
            GlueTask::parse(t)
                .ok()
                .and_then(|t| resolve::find_task(t, args.data_dir.as_deref()))
                .is_none()
        })
        .collect();
    match (model, missing.is_empty()) {
        (Some(m), true) => Ok((
            "mini".into(),
            format!(
                "{} found ({}) and GLUE {} found",
                mini.model,
                m.how,
                mini.tasks.join(", ")
            ),
        )),
        (None, _) => Ok((
            "smoke".into(),
            format!(
                "{} not found and not downloadable (`just fetch-minilm` fetches it)",
                mini.model
            ),
        )),
        (_, false) => Ok((
            "smoke".into(),
            format!("GLUE data for {missing:?} not found (pass --data-dir)"),
        )),
    }
}

fn subset(mut ex: Vec<Example>, n: Option<usize>, seed: u64) -> Vec<Example> {
    if let Some(n) = n {
        if n < ex.len() {
            ex.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            ex.truncate(n);
        }
    }
    ex
}

fn encode(tok: &TextTokenizer, ex: &[Example]) -> Result<(Vec<Encoded>, Vec<Option<f32>>)> {
    let mut enc = Vec::with_capacity(ex.len());
    for e in ex {
        enc.push(tok.encode(&e.text_a, e.text_b.as_deref())?);
    }
    Ok((enc, ex.iter().map(|e| e.label).collect()))
}

fn train_cfg(p: &Profile, task: &str, args: &RunArgs) -> FinetuneConfig {
    let mut c = p.train.clone();
    c.seed = args.seed;
    if let Some(o) = p.task.get(task) {
        if let Some(e) = o.epochs {
            c.epochs = e;
        }
        if let Some(lr) = o.learning_rate {
            c.learning_rate = lr;
        }
    }
    if let Some(e) = args.epochs {
        c.epochs = e;
    }
    c
}

#[allow(clippy::too_many_arguments)]
fn run_task(
    name: &str,
    metric_names: Vec<String>,
    num_labels: usize,
    model: BertForSequenceClassification,
    config: &BertConfig,
    tok: &TextTokenizer,
    train: Vec<Example>,
    dev: Vec<Example>,
    cfg: &FinetuneConfig,
    save_to: &Path,
    data_from: String,
    device: &burn::tensor::Device,
) -> Result<TaskRun> {
    let (tr, trl) = encode(tok, &train)?;
    let (dv, dvl) = encode(tok, &dev)?;
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
        pad_id: tok.pad_id as i64,
    };
    println!(
        "{name}: {} train / {} dev examples, {} epochs",
        tr.len(),
        dv.len(),
        cfg.epochs
    );
    let res = finetune(model, &data, cfg, device)?;
    let metric = if num_labels == 1 {
        "spearman".to_string()
    } else {
        metric_names[0].clone()
    };
    let value = res.dev_metrics.get(&metric).copied().unwrap_or(f64::NAN);
    // Save with the tokenizer beside it, so later experiments load one directory.
    let tmp_tok = std::env::temp_dir().join(format!("kiln-tok-{}-{name}.json", std::process::id()));
    tok.save(&tmp_tok)?;
    save_classifier(&res.model, config, Some(&tmp_tok), save_to)?;
    let _ = std::fs::remove_file(&tmp_tok);
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
        dev_examples: dv.len(),
        epochs: cfg.epochs,
        steps: res.steps,
        seconds: res.train_seconds,
        curve: res.curve,
        data_from,
    })
}

/// A synthetic smoke task with its tokenizer and a fresh tiny BERT (shared with the pruning
/// experiments' smoke profiles).
pub struct SmokeTask {
    pub name: String,
    pub tok: TextTokenizer,
    pub config: BertConfig,
    pub model: BertForSequenceClassification,
    pub train: Vec<Example>,
    pub dev: Vec<Example>,
}

pub fn smoke_task(
    name: &str,
    n_train: usize,
    n_dev: usize,
    max_len: usize,
    seed: u64,
    device: &burn::tensor::Device,
) -> Result<SmokeTask> {
    let task = match name {
        "syn-sentiment" => SyntheticTask::Sentiment,
        "syn-paraphrase" => SyntheticTask::Paraphrase,
        other => {
            bail!("unknown synthetic task `{other}` (expected syn-sentiment or syn-paraphrase)")
        }
    };
    let tok = TextTokenizer::word_level(&synthetic::vocabulary(), max_len)?;
    let all = synthetic::generate(task, n_train + n_dev, seed);
    let (train, dev) = all.split_at(n_train);
    device.seed(seed);
    let mut config = BertConfig::tiny(tok.vocab_size(), 2);
    config.max_position_embeddings = max_len.max(64);
    let model = BertForSequenceClassification::new(&config, device);
    Ok(SmokeTask {
        name: name.to_string(),
        tok,
        config,
        model,
        train: train.to_vec(),
        dev: dev.to_vec(),
    })
}

/// The glue-finetune smoke profile's training settings (for experiments that fine-tune a smoke
/// model in-process).
pub fn smoke_train_config(seed: u64) -> Result<(FinetuneConfig, usize, usize, usize)> {
    let exp = settings::load(NAME)?;
    let p = &exp.profiles["smoke"];
    let mut c = p.train.clone();
    c.seed = seed;
    Ok((
        c,
        p.train_examples.unwrap_or(1500),
        p.dev_examples.unwrap_or(400),
        p.max_len,
    ))
}

fn run_smoke(p: &Profile, args: &RunArgs, device: &burn::tensor::Device) -> Result<Vec<TaskRun>> {
    let mut runs = Vec::new();
    for t in &p.tasks {
        let n_train = args.train_examples.or(p.train_examples).unwrap_or(1500);
        let n_dev = p.dev_examples.unwrap_or(400);
        let st = smoke_task(t, n_train, n_dev, p.max_len, args.seed, device)?;
        let cfg = train_cfg(p, t, args);
        runs.push(run_task(
            t,
            vec!["accuracy".into()],
            2,
            st.model,
            &st.config,
            &st.tok,
            st.train,
            st.dev,
            &cfg,
            &finetuned_dir("smoke-tiny", t),
            format!("synthetic (seed {})", args.seed),
            device,
        )?);
    }
    Ok(runs)
}

fn run_real(
    p: &Profile,
    args: &RunArgs,
    device: &burn::tensor::Device,
) -> Result<(Vec<TaskRun>, String)> {
    let model_dir = resolve::resolve_model(&p.model, args.model.as_deref(), args.download)?;
    println!("model: {} ({})", model_dir.path.display(), model_dir.how);
    let ck = kiln_models::bert::validate_checkpoint(&model_dir.path)?;
    let tok_path = ck.tokenizer().with_context(|| {
        format!(
            "{}: no tokenizer.json next to the weights; kiln needs the HF fast-tokenizer file",
            model_dir.path.display()
        )
    })?;
    let tok = TextTokenizer::from_file(&tok_path, p.max_len)?;
    super::tasks::check_vocab(&tok, &ck.config, &model_dir.path)?;
    let tasks: Vec<String> = args.tasks.clone().unwrap_or_else(|| p.tasks.clone());
    let mut runs = Vec::new();
    for t in &tasks {
        let task = GlueTask::parse(t)?;
        let files = resolve::resolve_task(task, args.data_dir.as_deref(), args.download)?;
        println!(
            "{}: {} ({})",
            task.name(),
            files.train.parent().unwrap_or(Path::new(".")).display(),
            files.how
        );
        let over = p.task.get(task.name());
        let train = subset(
            read_glue_file(&files.train, task)?,
            args.train_examples
                .or(over.and_then(|o| o.train_examples))
                .or(p.train_examples),
            args.seed,
        );
        let dev = subset(
            read_glue_file(&files.dev, task)?,
            over.and_then(|o| o.dev_examples).or(p.dev_examples),
            args.seed,
        );
        device.seed(args.seed);
        let (model, ck) = load_classifier(&model_dir.path, task.num_labels(), device)?;
        let cfg = train_cfg(p, task.name(), args);
        let model_name = model_dir
            .path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.model.clone());
        runs.push(run_task(
            task.name(),
            task.metric_names().iter().map(|s| s.to_string()).collect(),
            task.num_labels(),
            model,
            &ck.config,
            &tok,
            train,
            dev,
            &cfg,
            &finetuned_dir(&model_name, task.name()),
            format!("{} ({})", files.train.display(), files.how),
            device,
        )?);
    }
    Ok((runs, model_dir.path.display().to_string()))
}

pub fn run(args: &RunArgs) -> Result<PathBuf> {
    let exp = settings::load(NAME)?;
    let (profile, why) = choose_profile(&exp, args)?;
    println!("glue-finetune: profile `{profile}` ({why})");
    let p = exp.profiles[&profile].clone();
    let device = args.device.device()?;
    let started = kiln_core::run::unix_now();
    let t0 = Instant::now();
    let synthetic = p.model == "tiny";
    let (runs, model_desc) = if synthetic {
        (
            run_smoke(&p, args, &device)?,
            "tiny BERT (2 layers, hidden 64) trained from scratch".to_string(),
        )
    } else {
        run_real(&p, args, &device)?
    };
    let wall = t0.elapsed().as_secs_f64();

    let mut table = Table::new(
        Table::profile_title(&exp.title, &profile, synthetic),
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
    let mut metrics = BTreeMap::new();
    for r in &runs {
        let paper = if synthetic {
            None
        } else {
            exp.paper.get(&r.task).copied()
        };
        let [pc, kc, dc] = Cell::paper_vs_kiln(paper, Some(r.value), 1);
        table.push(vec![
            Cell::text(&r.task),
            Cell::text(&r.metric),
            pc,
            kc,
            dc,
            Cell::num(r.train_examples as f64, 0),
            Cell::num(r.dev_examples as f64, 0),
            Cell::num(r.epochs, 1),
            Cell::num(r.steps as f64, 0),
            Cell::num(r.seconds, 0),
        ]);
        for (k, v) in &r.all {
            metrics.insert(format!("{}.{k}", r.task), *v);
        }
        metrics.insert(format!("{}.train_seconds", r.task), r.seconds);
    }
    table.note(format!(
        "profile `{profile}`: {}; model: {model_desc}",
        p.description
    ));
    if synthetic {
        table.note(
            "SYNTHETIC: seeded generated tasks (kiln-data synthetic); no paper number applies.",
        );
    } else {
        table.note(format!("paper column: {} ", exp.reference));
        let subs: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{}: {} train examples, {} epochs",
                    r.task, r.train_examples, r.epochs
                )
            })
            .collect();
        table.note(format!(
            "training subsets (seeded shuffle, seed {}): {}",
            args.seed,
            subs.join("; ")
        ));
    }
    table.note(format!(
        "device {}; wall time {:.0} s; hyper-parameters: batch {}, peak lr {:e}, warmup {}, weight decay {}",
        args.device.label(),
        wall,
        p.train.batch_size,
        p.train.learning_rate,
        p.train.warmup_ratio,
        p.train.weight_decay
    ));

    let out = args.out.join(NAME).join(&profile);
    let meta = RunMeta::for_run(
        NAME,
        &profile,
        &device,
        args.device.label(),
        args.seed,
        started,
        wall,
        synthetic,
        metrics,
        serde_json::json!({
            "profile": p,
            "model": model_desc,
            "profile_choice": why,
            "data": runs.iter().map(|r| (r.task.clone(), r.data_from.clone())).collect::<BTreeMap<_, _>>(),
            "curves": runs.iter().map(|r| (r.task.clone(), r.curve.clone())).collect::<BTreeMap<_, _>>(),
        }),
    );
    kiln_report::write_results(&out, &table, &meta)?;
    let loss: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            name: r.task.clone(),
            points: r.curve.iter().map(|c| (c.epoch, c.train_loss)).collect(),
        })
        .collect();
    line_plot(
        &out.join("training_curve"),
        "Training loss",
        "epoch",
        "mean train loss",
        &loss,
    )?;
    let dev: Vec<Series> = runs
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
    line_plot(
        &out.join("dev_curve"),
        "Dev metric during training",
        "epoch",
        "dev metric (x100)",
        &dev,
    )?;
    println!("\n{}", table.to_markdown());
    println!("results written to {}", out.display());
    Ok(out)
}
