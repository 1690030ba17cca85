//! Loading a fine-tuned GLUE classifier with its encoded data, shared by the experiments that
//! start from glue-finetune's checkpoints (glue-pruning, ltp-glue).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use kiln_data::{read_glue_file, Encoded, GlueTask, TextTokenizer};
use kiln_models::bert::load_classifier;
use kiln_models::finetune::{finetune, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};

use super::glue_finetune::{finetuned_dir, smoke_task, smoke_train_config};
use super::RunArgs;
use crate::resolve;

/// A fine-tuned classifier and its task, encoded.
pub struct GlueModel {
    pub name: String,
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

pub fn encode_all(
    tok: &TextTokenizer,
    ex: &[kiln_data::Example],
) -> Result<(Vec<Encoded>, Vec<Option<f32>>)> {
    let mut enc = Vec::with_capacity(ex.len());
    for e in ex {
        enc.push(tok.encode(&e.text_a, e.text_b.as_deref())?);
    }
    Ok((enc, ex.iter().map(|e| e.label).collect()))
}

pub fn avg_len(enc: &[Encoded]) -> f64 {
    enc.iter().map(|e| e.ids.len()).sum::<usize>() as f64 / enc.len().max(1) as f64
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
    args: &RunArgs,
    device: &Device,
) -> Result<GlueModel> {
    let task = GlueTask::parse(task_name)?;
    let dir = finetuned_checkpoint(model_name, task.name(), args.model.as_deref())?;
    let (model, ck) = load_classifier(&dir, task.num_labels(), device)?;
    let tok_path = ck
        .tokenizer()
        .with_context(|| format!("{}: no tokenizer.json", dir.display()))?;
    let tok = TextTokenizer::from_file(&tok_path, max_len)?;
    check_vocab(&tok, &ck.config, &dir)?;
    let files = resolve::resolve_task(task, args.data_dir.as_deref(), args.download)?;
    let (train, train_labels) = encode_all(&tok, &read_glue_file(&files.train, task)?)?;
    let (dev, dev_labels) = encode_all(&tok, &read_glue_file(&files.dev, task)?)?;
    if dev_labels.iter().any(|l| l.is_none()) {
        bail!("{}: unlabelled dev rows", files.dev.display());
    }
    Ok(GlueModel {
        name: task.name().to_string(),
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
        source: format!("{} (data: {})", dir.display(), files.how),
    })
}

/// The fine-tuned checkpoint of a task: `--model` (a directory holding `<task>/`, or the task's
/// directory itself) -> `KILN_MODELS/finetuned/<model>/<task>` -> the glue-finetune cache.
pub fn finetuned_checkpoint(model: &str, task: &str, flag: Option<&Path>) -> Result<PathBuf> {
    let ok = |p: &Path| p.join("config.json").exists() && p.join("model.safetensors").exists();
    if let Some(f) = flag {
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
    let c = finetuned_dir(model, task);
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

/// The profile to run when none is requested: `mini` when every mini task has its glue-finetune
/// checkpoint and GLUE data, else `smoke`; with the reason, for the log.
pub fn mini_or_smoke(model: &str, tasks: &[String], args: &RunArgs) -> (String, String) {
    let missing: Vec<&String> = tasks
        .iter()
        .filter(|t| {
            finetuned_checkpoint(model, t, args.model.as_deref()).is_err()
                || GlueTask::parse(t)
                    .ok()
                    .and_then(|g| resolve::find_task(g, args.data_dir.as_deref()))
                    .is_none()
        })
        .collect();
    if missing.is_empty() {
        (
            "mini".into(),
            format!(
                "fine-tuned {model} checkpoints and GLUE data found for {}",
                tasks.join(", ")
            ),
        )
    } else {
        (
            "smoke".into(),
            format!("no fine-tuned {model} checkpoint or data for {missing:?} (run `just reproduce glue-finetune --profile mini` first)"),
        )
    }
}
