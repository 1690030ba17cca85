//! Fine-tuned GLUE classifiers with their encoded data: what glue-finetune writes and the
//! pruning papers (glue-pruning, ltp-glue) start from, real or synthetic.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use kiln_data::synthetic::{self, SyntheticTask};
use kiln_data::{read_glue_file, Encoded, Example, GlueTask, TextTokenizer};
use kiln_experiment::{Resolver, RunArgs};
use kiln_models::bert::load_classifier;
use kiln_models::finetune::{finetune, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};

use crate::experiment::FinetuneProfile;

/// The name synthetic smoke checkpoints are cached under (`finetuned/smoke-tiny/<task>`).
pub const SMOKE_MODEL: &str = "smoke-tiny";

/// Where glue-finetune caches the fine-tuned checkpoint of `model` on `task`.
pub fn finetuned_dir(cache: &Path, model: &str, task: &str) -> PathBuf {
    cache.join("finetuned").join(model).join(task)
}

/// A fine-tuned classifier and its task, encoded.
pub struct GlueModel {
    pub name: String,
    /// The GLUE task (`None` for kiln's synthetic tasks).
    pub task: Option<GlueTask>,
    pub model: BertForSequenceClassification,
    pub config: BertConfig,
    pub tok: TextTokenizer,
    pub train: Vec<Encoded>,
    pub train_labels: Vec<Option<f32>>,
    pub dev: Vec<Encoded>,
    pub dev_labels: Vec<Option<f32>>,
    pub metric_names: Vec<String>,
    pub main_metric: String,
    pub source: String,
}

impl GlueModel {
    /// Dev labels as numbers (every dev row is labelled: checked at load).
    pub fn dev_gold(&self) -> Vec<f32> {
        self.dev_labels
            .iter()
            .map(|l| l.unwrap_or(f32::NAN))
            .collect()
    }

    /// Per-example dev predictions in GLUE's format (`idx,prediction,label`; the dev file's
    /// row order).
    pub fn prediction_rows(&self, outputs: &[Vec<f32>]) -> Vec<Vec<String>> {
        let idx: Vec<usize> = (0..self.dev.len()).collect();
        kiln_experiment::predictions::glue_rows(self.task, &idx, outputs, &self.dev_gold())
    }
}

pub fn encode_all(tok: &TextTokenizer, ex: &[Example]) -> Result<(Vec<Encoded>, Vec<Option<f32>>)> {
    let mut enc = Vec::with_capacity(ex.len());
    for e in ex {
        enc.push(tok.encode(&e.text_a, e.text_b.as_deref())?);
    }
    Ok((enc, ex.iter().map(|e| e.label).collect()))
}

pub fn avg_len(enc: &[Encoded]) -> f64 {
    enc.iter().map(|e| e.ids.len()).sum::<usize>() as f64 / enc.len().max(1) as f64
}

/// A synthetic smoke task with its tokenizer and a fresh tiny BERT.
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
    device: &Device,
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

/// glue-finetune's smoke training settings, for experiments that fine-tune a smoke model
/// in-process: (config, train examples, dev examples, max length).
pub fn smoke_train_config(seed: u64) -> Result<(FinetuneConfig, usize, usize, usize)> {
    let file = kiln_experiment::file::load::<FinetuneProfile>(crate::experiment::NAME)?;
    let p = file
        .profiles
        .get("smoke")
        .context("experiments/glue-finetune.toml has no smoke profile")?;
    let mut c = p.train.clone();
    c.seed = seed;
    Ok((
        c,
        p.train_examples.unwrap_or(1500),
        p.dev_examples.unwrap_or(400),
        p.max_len,
    ))
}

/// A synthetic task with the tiny BERT fine-tuned on it in-process (glue-finetune's smoke
/// settings).
pub fn smoke_glue(task: &str, max_len: usize, seed: u64, device: &Device) -> Result<GlueModel> {
    let (cfg, n_train, n_dev, ft_len) = smoke_train_config(seed)?;
    let st = smoke_task(task, n_train, n_dev, ft_len.min(max_len), seed, device)?;
    let (train, train_labels) = encode_all(&st.tok, &st.train)?;
    let (dev, dev_labels) = encode_all(&st.tok, &st.dev)?;
    let metric_names = vec!["accuracy".to_string()];
    let data = TaskData {
        name: task.to_string(),
        num_labels: 2,
        metric_names: metric_names.clone(),
        train: &train,
        train_labels: &train_labels,
        dev: &dev,
        dev_labels: &dev_labels,
        pad_id: 0,
    };
    println!("{task}: fine-tuning the tiny smoke model in-process");
    let model = finetune(st.model, &data, &cfg, device)?.model;
    Ok(GlueModel {
        name: task.to_string(),
        task: None,
        model,
        config: st.config,
        tok: st.tok,
        train,
        train_labels,
        dev,
        dev_labels,
        metric_names,
        main_metric: "accuracy".into(),
        source: format!("synthetic (seed {seed}), tiny BERT fine-tuned in-process"),
    })
}

/// A real GLUE task with its glue-finetune checkpoint (see [`finetuned_checkpoint`]).
pub fn real_glue(
    task_name: &str,
    model_name: &str,
    max_len: usize,
    resolver: &Resolver,
    device: &Device,
) -> Result<GlueModel> {
    let task = GlueTask::parse(task_name)?;
    let dir = finetuned_checkpoint(resolver, model_name, task.name())?;
    let (model, ck) = load_classifier(&dir, task.num_labels(), device)?;
    let tok_path = ck
        .tokenizer()
        .with_context(|| format!("{}: no tokenizer.json", dir.display()))?;
    let tok = TextTokenizer::from_file(&tok_path, max_len)?;
    check_vocab(&tok, &ck.config, &dir)?;
    let files = resolver.task(task)?;
    let (train, train_labels) = encode_all(&tok, &read_glue_file(&files.train, task)?)?;
    let (dev, dev_labels) = encode_all(&tok, &read_glue_file(&files.dev, task)?)?;
    if dev_labels.iter().any(|l| l.is_none()) {
        bail!("{}: unlabelled dev rows", files.dev.display());
    }
    Ok(GlueModel {
        name: task.name().to_string(),
        task: Some(task),
        model,
        config: ck.config,
        tok,
        train,
        train_labels,
        dev,
        dev_labels,
        metric_names: task.metric_names().iter().map(|s| s.to_string()).collect(),
        main_metric: if task.is_regression() {
            "spearman".into()
        } else {
            "accuracy".into()
        },
        source: format!(
            "{} ({}; data: {})",
            dir.display(),
            provenance(&dir)
                .unwrap_or_else(|| "trained outside kiln or before kiln recorded how".into()),
            files.how
        ),
    })
}

/// The fine-tuned checkpoint of a task: `--model` (a directory holding `<task>/`, or the task's
/// directory itself) -> `KILN_MODELS/finetuned/<model>/<task>` -> the glue-finetune cache.
pub fn finetuned_checkpoint(resolver: &Resolver, model: &str, task: &str) -> Result<PathBuf> {
    let ok = |p: &Path| p.join("config.json").exists() && p.join("model.safetensors").exists();
    if let Some(f) = &resolver.model {
        for c in [f.join(task), f.to_path_buf()] {
            if ok(&c) {
                return Ok(c);
            }
        }
        bail!("{}: no fine-tuned {task} checkpoint there (expected {}/{task}/config.json or a model directory)", f.display(), f.display());
    }
    if let Some(env) = std::env::var_os("KILN_MODELS") {
        let c = PathBuf::from(env).join("finetuned").join(model).join(task);
        if ok(&c) {
            return Ok(c);
        }
    }
    let c = finetuned_dir(&resolver.cache, model, task);
    if ok(&c) {
        return Ok(c);
    }
    bail!(
        "no fine-tuned {model} checkpoint for {task} at {}: run `just reproduce glue-finetune --profile {}` first, \
         or pass --model with a directory of fine-tuned HF checkpoints (one sub-directory per task)",
        c.display(),
        if model == "all-MiniLM-L6-v2" { "mini" } else { "paper" }
    )
}

/// How a cached checkpoint was trained (`kiln-finetune.json` beside its weights), so that an
/// experiment starting from it can say which fine-tuning its baseline comes from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    pub experiment: String,
    pub profile: String,
    pub task: String,
    pub metric: String,
    pub value: f64,
    pub train_examples: usize,
    pub epochs: f64,
    pub steps: usize,
    pub seed: u64,
}

const PROVENANCE: &str = "kiln-finetune.json";

/// Writes `dir/kiln-finetune.json` (through a temporary file, so a reader never sees half of it).
pub fn write_provenance(dir: &Path, p: &Provenance) -> Result<()> {
    let path = dir.join(PROVENANCE);
    let tmp = dir.join(format!("{PROVENANCE}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(p)?)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

/// One line on how the checkpoint in `dir` was fine-tuned, when kiln wrote it.
pub fn provenance(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(PROVENANCE)).ok()?;
    let p: Provenance = serde_json::from_str(&text).ok()?;
    Some(format!(
        "{} `{}` profile: {} train examples, {} epochs, {} steps, seed {}; dev {} {:.2}",
        p.experiment, p.profile, p.train_examples, p.epochs, p.steps, p.seed, p.metric, p.value
    ))
}

/// Token ids beyond the embedding table would index out of bounds deep in a backend.
pub fn check_vocab(tok: &TextTokenizer, config: &BertConfig, dir: &Path) -> Result<()> {
    if tok.vocab_size() > config.vocab_size {
        bail!(
            "{}: tokenizer.json has {} tokens but config.json's vocab_size is {}; the tokenizer belongs to another model",
            dir.display(),
            tok.vocab_size(),
            config.vocab_size
        );
    }
    Ok(())
}

/// Whether a profile that starts from glue-finetune's checkpoints can run: every task has its
/// fine-tuned checkpoint and GLUE data (`Ok(what was found)`), or what is missing.
pub fn finetuned_inputs(
    model: &str,
    tasks: &[String],
    args: &RunArgs,
) -> std::result::Result<String, String> {
    if model == "tiny" {
        return Ok("synthetic tasks, tiny BERT fine-tuned in-process".into());
    }
    let r = Resolver::from_args(args);
    let tasks = args.tasks_or(tasks);
    let missing: Vec<&String> = tasks
        .iter()
        .filter(|t| {
            finetuned_checkpoint(&r, model, t).is_err()
                || GlueTask::parse(t)
                    .ok()
                    .and_then(|g| r.find_task(g))
                    .is_none()
        })
        .collect();
    if missing.is_empty() {
        Ok(format!(
            "fine-tuned {model} checkpoints and GLUE data found for {}",
            tasks.join(", ")
        ))
    } else {
        Err(format!("no fine-tuned {model} checkpoint or data for {missing:?} (run `just reproduce glue-finetune --profile mini` first)"))
    }
}

/// Saves a classifier with the tokenizer beside it (one directory later experiments load),
/// going through a temporary file of its own so parallel runs never share one.
pub fn save_with_tokenizer(
    save: impl FnOnce(&Path) -> Result<()>,
    tok: &TextTokenizer,
) -> Result<()> {
    let tmp = tempfile_in_temp()?;
    let tok_path = tmp.join("tokenizer.json");
    tok.save(&tok_path)?;
    let res = save(&tok_path);
    let _ = std::fs::remove_dir_all(&tmp);
    res
}

/// A fresh private folder under the system temp dir (process id + a counter + time).
fn tempfile_in_temp() -> Result<PathBuf> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "kiln-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    Ok(dir)
}
