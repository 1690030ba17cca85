//! Fine-tuned GLUE classifiers with their encoded data: what glue-finetune writes and the
//! pruning papers (glue-pruning, ltp-glue) start from, real or synthetic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use kiln_data::synthetic::{self, SyntheticTask};
use kiln_data::{read_glue_labelled, Encoded, Example, GlueTask, TextTokenizer};
use kiln_experiment::{Resolver, RunArgs};
use kiln_models::bert::load_classifier;
use kiln_models::finetune::{finetune, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};
use serde::{Deserialize, Serialize};

use crate::experiment::FinetuneProfile;

/// The name synthetic smoke checkpoints are cached under (`finetuned/smoke-tiny/<task>/...`).
pub const SMOKE_MODEL: &str = "smoke-tiny";

/// Where glue-finetune caches the checkpoint of `model` fine-tuned on `task` by its `profile`
/// with `settings`: `<cache>/finetuned/<model>/<task>/<profile>-<key>`, the key being the first
/// 16 hex digits of [`FinetuneSettings::key`]. A run with other settings (another profile,
/// `--train-examples`, `--epochs`, `--seed`, other data or base weights) writes beside it, never
/// over it.
pub fn finetuned_dir(
    cache: &Path,
    model: &str,
    task: &str,
    profile: &str,
    settings: &FinetuneSettings,
) -> PathBuf {
    cache
        .join("finetuned")
        .join(model)
        .join(task)
        .join(format!("{profile}-{}", &settings.key()[..16]))
}

/// The checkpoints cached for `model` on `task` (every profile and setting), sorted.
pub fn cached_checkpoints(cache: &Path, model: &str, task: &str) -> Vec<PathBuf> {
    candidates_in(&cache.join("finetuned").join(model).join(task))
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
    /// The checkpoint it was loaded from, how it was chosen and what made it (`None`:
    /// fine-tuned in-process).
    pub checkpoint: Option<Chosen>,
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
        checkpoint: None,
    })
}

/// A real GLUE task with the fine-tuned checkpoint `wanted` starts from ([`finetuned_for`]:
/// `--model` as given, else a cached checkpoint checked against what `wanted` expects).
pub fn real_glue(
    task_name: &str,
    model_name: &str,
    max_len: usize,
    resolver: &Resolver,
    device: &Device,
    wanted: &Wanted,
) -> Result<GlueModel> {
    let task = GlueTask::parse(task_name)?;
    // The data first: a download lands where the expected settings' hashes are read from.
    let files = resolver.task(task)?;
    let chosen = finetuned_for(resolver, model_name, task.name(), wanted, true)?;
    let dir = chosen.dir.clone();
    let (model, ck) = load_classifier(&dir, task.num_labels(), device)?;
    let tok_path = ck
        .tokenizer()
        .with_context(|| format!("{}: no tokenizer.json", dir.display()))?;
    let tok = TextTokenizer::from_file(&tok_path, max_len)?;
    check_vocab(&tok, &ck.config, &dir)?;
    let (train, train_labels) = encode_all(&tok, &read_glue_labelled(&files.train, task)?)?;
    let (dev, dev_labels) = encode_all(&tok, &read_glue_labelled(&files.dev, task)?)?;
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
        source: format!("{} (data: {})", chosen.line(), files.how),
        checkpoint: Some(chosen),
    })
}

fn is_checkpoint(p: &Path) -> bool {
    p.join("config.json").exists() && p.join("model.safetensors").exists()
}

/// `dir` itself when it holds a checkpoint (the layout before checkpoints were keyed, or one
/// placed by hand), and each sub-directory that does, sorted.
fn candidates_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir() && is_checkpoint(p))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    if is_checkpoint(dir) {
        v.insert(0, dir.to_path_buf());
    }
    v
}

/// The checkpoint for `task` in a directory given with `--model`: the directory itself, its
/// `<task>/`, or the one checkpoint under `<task>/` (glue-finetune's cache layout; several are
/// an error naming them).
fn given_dir(f: &Path, task: &str) -> Result<PathBuf> {
    for c in [f.join(task), f.to_path_buf()] {
        if is_checkpoint(&c) {
            // One task's checkpoint given for a run over several tasks: using it for another
            // task would score it on data it was not trained for, without a word.
            if let Some(p) = read_provenance(&c) {
                if p.task != task {
                    bail!(
                        "{}: --model names a checkpoint fine-tuned on {}, not {task}; pass `--model {} --tasks {}`, or a folder with one sub-folder per task",
                        c.display(),
                        p.task,
                        c.display(),
                        p.task
                    );
                }
            }
            return Ok(c);
        }
    }
    let under = candidates_in(&f.join(task));
    match under.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{}: no fine-tuned {task} checkpoint there (expected {}/{task}/config.json or a model directory)",
            f.display(),
            f.display()
        ),
        many => bail!(
            "{}: {} fine-tuned {task} checkpoints under {task}/ ({}); pass the one to use with --model",
            f.display(),
            many.len(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A fine-tuned checkpoint kiln does not make itself (SQuAD span models), used as given:
/// `--model` (a directory holding `<task>/`, or the task's directory itself) ->
/// `KILN_MODELS/finetuned/<model>/<task>` -> `<cache>/finetuned/<model>/<task>` placed by hand.
/// GLUE checkpoints, which glue-finetune makes, go through [`finetuned_for`], which checks them.
pub fn finetuned_checkpoint(resolver: &Resolver, model: &str, task: &str) -> Result<PathBuf> {
    if let Some(f) = &resolver.model {
        return given_dir(f, task);
    }
    if let Some(env) = std::env::var_os("KILN_MODELS") {
        let c = PathBuf::from(env).join("finetuned").join(model).join(task);
        if is_checkpoint(&c) {
            return Ok(c);
        }
    }
    let c = resolver.cache.join("finetuned").join(model).join(task);
    if is_checkpoint(&c) {
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
/// experiment starting from it can say which fine-tuning its baseline comes from, and check
/// that it is the one it expects ([`finetuned_for`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Everything that shaped it (absent in checkpoints written before kiln recorded it, which
    /// therefore cannot be checked).
    #[serde(default)]
    pub settings: Option<FinetuneSettings>,
    /// sha256 of the `model.safetensors` beside it, as written.
    #[serde(default)]
    pub weights_sha256: Option<String>,
    /// The device it was trained on (recorded, not compared: backends round differently).
    #[serde(default)]
    pub device: Option<String>,
}

impl Provenance {
    /// What made the checkpoint, in a line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} `{}` profile: {} train examples, {} epochs, {} steps, seed {}; dev {} {:.2}",
            self.experiment,
            self.profile,
            self.train_examples,
            self.epochs,
            self.steps,
            self.seed,
            self.metric,
            self.value
        );
        if let Some(st) = &self.settings {
            s.push_str(&format!(
                "; lr {:e}, batch {}, max_len {}, base {} (sha256 {}), train data {}, dev data {}",
                st.train.learning_rate,
                st.train.batch_size,
                st.max_len,
                st.base_model,
                short(&st.base_model_sha256),
                short(&st.train_data),
                short(&st.dev_data)
            ));
        }
        if let Some(d) = &self.device {
            s.push_str(&format!("; trained on {d}"));
        }
        s
    }
}

const PROVENANCE: &str = "kiln-finetune.json";

/// Writes `dir/kiln-finetune.json` (through a temporary file, so a reader never sees half of it).
pub fn write_provenance(dir: &Path, p: &Provenance) -> Result<()> {
    kiln_core::atomic_write(
        &dir.join(PROVENANCE),
        serde_json::to_string_pretty(p)?.as_bytes(),
    )?;
    Ok(())
}

/// Removes `dir/kiln-finetune.json` before a checkpoint is written there, so a save that is
/// interrupted leaves a directory no consumer accepts (it has no record of what made it).
pub fn clear_provenance(dir: &Path) -> Result<()> {
    match std::fs::remove_file(dir.join(PROVENANCE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("{}: cannot remove", dir.join(PROVENANCE).display()))
        }
        _ => Ok(()),
    }
}

/// What kiln recorded about the checkpoint in `dir`, when kiln wrote it.
pub fn read_provenance(dir: &Path) -> Option<Provenance> {
    let text = std::fs::read_to_string(dir.join(PROVENANCE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// One line on how the checkpoint in `dir` was fine-tuned, when kiln wrote it.
pub fn provenance(dir: &Path) -> Option<String> {
    read_provenance(dir).map(|p| p.line())
}

/// What shapes a fine-tuned checkpoint: its inputs by content (the base model's weights, the
/// training and dev files) and every setting of the run. Equal settings make the same
/// checkpoint (up to the backend's float rounding), so they are the cache's key
/// ([`finetuned_dir`]) and what a consumer compares ([`finetuned_for`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneSettings {
    pub task: String,
    /// The base model's name and the sha256 of its `model.safetensors` (empty in what a consumer
    /// expects when the base model is not found where it looks: then not compared).
    pub base_model: String,
    pub base_model_sha256: String,
    /// `sha256:<hex>` of the training and dev files (synthetic tasks: the generator's settings).
    pub train_data: String,
    pub dev_data: String,
    /// Subsets asked for (the first N after a seeded shuffle; `None`: all).
    pub train_examples: Option<usize>,
    pub dev_examples: Option<usize>,
    pub max_len: usize,
    /// Hyper-parameters, the seed included.
    pub train: FinetuneConfig,
}

impl FinetuneSettings {
    /// Hex sha256 of the settings (their JSON, fields in declaration order).
    pub fn key(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        kiln_data::corpus::sha256_hex(json.as_bytes())
    }

    /// Each setting that differs from `want`, as `name have (expected want)`. The base model's
    /// hash is skipped where `want` does not know it.
    pub fn differences(&self, want: &FinetuneSettings) -> Vec<String> {
        let flat = |s: &FinetuneSettings| {
            let mut m = BTreeMap::new();
            flatten("", &serde_json::to_value(s).unwrap_or_default(), &mut m);
            m
        };
        let (have, wanted) = (flat(self), flat(want));
        let keys: BTreeSet<&String> = have.keys().chain(wanted.keys()).collect();
        keys.into_iter()
            .filter(|k| !(k.as_str() == "base_model_sha256" && want.base_model_sha256.is_empty()))
            .filter_map(|k| {
                let (h, w) = (have.get(k), wanted.get(k));
                (h != w).then(|| format!("{k} {} (expected {})", show(h), show(w)))
            })
            .collect()
    }

    /// The settings in a line.
    pub fn summary(&self) -> String {
        let n = |x: Option<usize>| x.map_or("all".to_string(), |n| format!("at most {n}"));
        format!(
            "{} train examples, {} dev examples, {} epochs, batch {}, lr {:e}, warmup {}, weight decay {}, seed {}, max_len {}; base {} (sha256 {}); train data {}, dev data {}",
            n(self.train_examples),
            n(self.dev_examples),
            self.train.epochs,
            self.train.batch_size,
            self.train.learning_rate,
            self.train.warmup_ratio,
            self.train.weight_decay,
            self.train.seed,
            self.max_len,
            self.base_model,
            if self.base_model_sha256.is_empty() {
                "not checked: base model not found here".to_string()
            } else {
                short(&self.base_model_sha256)
            },
            short(&self.train_data),
            short(&self.dev_data)
        )
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_string(), "all".into());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn show(v: Option<&String>) -> String {
    v.map_or("-".to_string(), |s| short(s))
}

/// A hash (or `sha256:<hash>`) shortened to 12 hex digits for messages.
fn short(s: &str) -> String {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        format!(
            "{}{}",
            if hex.len() < s.len() { "sha256:" } else { "" },
            &hex[..12]
        )
    } else {
        s.to_string()
    }
}

/// Hex sha256 of a file, remembered per process by (path, size, modification time): a run
/// asks for the same base model and data files several times.
pub fn file_sha256(path: &Path) -> Result<String> {
    /// (path, size, modification time) → sha256.
    type Memo = HashMap<(PathBuf, u64, std::time::SystemTime), String>;
    static MEMO: Mutex<Option<Memo>> = Mutex::new(None);
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let id = (
        path.to_path_buf(),
        meta.len(),
        meta.modified().unwrap_or(std::time::UNIX_EPOCH),
    );
    if let Some(h) = MEMO
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&id)
    {
        return Ok(h.clone());
    }
    let h = kiln_core::sha256_file(path)?;
    MEMO.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(id, h.clone());
    Ok(h)
}

/// Which fine-tuning a consumer starts from: glue-finetune profiles in order of preference
/// (as run without overrides), and who asks, for messages.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// e.g. "glue-pruning `mini`".
    pub by: String,
    pub profiles: Vec<String>,
}

/// The fine-tuned checkpoint a consumer starts from, how it was chosen and what made it.
#[derive(Debug, Clone, Serialize)]
pub struct Chosen {
    pub dir: PathBuf,
    /// `--model` or `KILN_MODELS` (used as given), or `cache` (checked).
    pub how: String,
    /// The glue-finetune profile whose settings it was checked to match (`None`: given).
    pub matches: Option<String>,
    pub provenance: Option<Provenance>,
}

impl Chosen {
    /// Which checkpoint, what made it and why it was used, in a line.
    pub fn line(&self) -> String {
        let made = self.provenance.as_ref().map_or_else(
            || "trained outside kiln or before kiln recorded how".to_string(),
            |p| p.line(),
        );
        match &self.matches {
            Some(p) => format!(
                "{} ({made}; checked: made as glue-finetune `{p}` makes it here, which this profile starts from)",
                self.dir.display()
            ),
            None => format!(
                "{} ({made}; given with {}: used as given, not checked against this profile)",
                self.dir.display(),
                self.how
            ),
        }
    }
}

/// A cached checkpoint that was not used, and why.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub dir: PathBuf,
    pub made_with: String,
    pub why: String,
}

/// Why no fine-tuned checkpoint could be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("no fine-tuned {model} checkpoint for {task} in {}: run {} first, or pass --model with a fine-tuned checkpoint (a directory with config.json and model.safetensors, or a folder with one per task)", .looked.display(), run_hint(.task, .profiles))]
    Missing {
        model: String,
        task: String,
        looked: PathBuf,
        profiles: Vec<String>,
    },
    #[error("{}", mismatch_text(.model, .task, .by, .expected, .rejected))]
    Mismatch {
        model: String,
        task: String,
        by: String,
        /// (glue-finetune profile, the settings it would train with here).
        expected: Vec<(String, FinetuneSettings)>,
        rejected: Vec<Rejected>,
    },
    #[error("{}", no_profile_text(.by, .task, .found))]
    NoProfile {
        by: String,
        task: String,
        found: Vec<PathBuf>,
    },
}

fn no_profile_text(by: &str, task: &str, found: &[PathBuf]) -> String {
    let cached = if found.is_empty() {
        String::new()
    } else {
        format!(
            " (cached: {})",
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "{by} names no glue-finetune profile its {task} checkpoint comes from (`finetuned_by` in its experiment file), so no cached checkpoint can be checked{cached}: pass --model with the fine-tuned checkpoint to start from"
    )
}

fn run_hint(task: &str, profiles: &[String]) -> String {
    profiles
        .iter()
        .map(|p| format!("`kiln reproduce glue-finetune --profile {p} --tasks {task}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn mismatch_text(
    model: &str,
    task: &str,
    by: &str,
    expected: &[(String, FinetuneSettings)],
    rejected: &[Rejected],
) -> String {
    let mut s = format!(
        "no cached fine-tuned {model} checkpoint for {task} is one {by} starts from, so none is used.\n"
    );
    for (p, want) in expected {
        s.push_str(&format!(
            "  {by} expects what glue-finetune `{p}` makes here: {}\n",
            want.summary()
        ));
    }
    for r in rejected {
        s.push_str(&format!(
            "  not used: {}\n    made with: {}\n    {}\n",
            r.dir.display(),
            r.made_with,
            r.why
        ));
    }
    let profiles: Vec<String> = expected.iter().map(|(p, _)| p.clone()).collect();
    s.push_str(&format!(
        "To proceed: run {} (same --data-dir and --cache) to make the checkpoint this profile expects, or pass `--model {} --tasks {task}` to start from that checkpoint anyway (the run then records it as given).",
        run_hint(task, &profiles),
        rejected
            .first()
            .map_or("<dir>".to_string(), |r| r.dir.display().to_string())
    ));
    s
}

/// The fine-tuned checkpoint of `model` on `task` that `wanted` starts from:
/// - `--model` (a checkpoint directory, a folder with `<task>/`, or glue-finetune's cache
///   layout with one checkpoint under `<task>/`): used as given, and recorded so;
/// - `KILN_MODELS/finetuned/<model>/<task>` holding a checkpoint: used as given;
/// - else the checkpoints cached under `<cache>/finetuned/<model>/<task>/` (and keyed ones
///   under `KILN_MODELS`): the first, in `wanted`'s order of profiles, whose recorded settings
///   equal what that glue-finetune profile would train with here ([`FinetuneSettings`]: the
///   same base weights and data files by sha256, subsets, epochs, learning rate, seed, ...) and,
///   with `verify_weights`, whose `model.safetensors` is the file glue-finetune wrote.
///
/// A cached checkpoint made otherwise (a quick trial with `--train-examples 16`, another
/// profile, other data, a checkpoint from before kiln recorded this) is never used: the error
/// ([`CheckpointError::Mismatch`]) names it, what made it, what the profile expects and how to
/// proceed.
pub fn finetuned_for(
    resolver: &Resolver,
    model: &str,
    task: &str,
    wanted: &Wanted,
    verify_weights: bool,
) -> Result<Chosen> {
    if let Some(f) = &resolver.model {
        let dir = given_dir(f, task)?;
        return Ok(Chosen {
            provenance: read_provenance(&dir),
            dir,
            how: "--model".into(),
            matches: None,
        });
    }
    let mut roots = Vec::new();
    if let Some(env) = std::env::var_os("KILN_MODELS") {
        let d = PathBuf::from(env).join("finetuned").join(model).join(task);
        if is_checkpoint(&d) {
            return Ok(Chosen {
                provenance: read_provenance(&d),
                dir: d,
                how: "KILN_MODELS".into(),
                matches: None,
            });
        }
        roots.push(d);
    }
    let cache_root = resolver.cache.join("finetuned").join(model).join(task);
    roots.push(cache_root.clone());
    let candidates: Vec<(PathBuf, Option<Provenance>)> = roots
        .iter()
        .flat_map(|r| candidates_in(r))
        .map(|d| (d.clone(), read_provenance(&d)))
        .collect();
    if wanted.profiles.is_empty() {
        return Err(CheckpointError::NoProfile {
            by: wanted.by.clone(),
            task: task.to_string(),
            found: candidates.into_iter().map(|(d, _)| d).collect(),
        }
        .into());
    }
    if candidates.is_empty() {
        return Err(CheckpointError::Missing {
            model: model.to_string(),
            task: task.to_string(),
            looked: cache_root,
            profiles: wanted.profiles.clone(),
        }
        .into());
    }
    let mut expected = Vec::new();
    for p in &wanted.profiles {
        expected.push((
            p.clone(),
            crate::experiment::expected_settings(p, task, resolver)?,
        ));
    }
    let weights_ok = |dir: &Path, prov: &Provenance| -> Result<bool> {
        Ok(!verify_weights
            || prov.weights_sha256.as_deref()
                == Some(file_sha256(&dir.join("model.safetensors"))?.as_str()))
    };
    for (p, want) in &expected {
        for (dir, prov) in &candidates {
            let Some(prov) = prov else { continue };
            let Some(have) = &prov.settings else { continue };
            if have.differences(want).is_empty() && weights_ok(dir, prov)? {
                return Ok(Chosen {
                    dir: dir.clone(),
                    how: "cache".into(),
                    matches: Some(p.clone()),
                    provenance: Some(prov.clone()),
                });
            }
        }
    }
    let mut rejected = Vec::new();
    for (dir, prov) in candidates {
        let (made_with, why) = match &prov {
            None => (
                "no kiln-finetune.json beside it".to_string(),
                "what made it is unknown (trained outside kiln, or its save was interrupted)"
                    .to_string(),
            ),
            Some(pr) => match &pr.settings {
                None => (
                    pr.line(),
                    "written before kiln recorded the inputs and settings that shape a checkpoint, so it cannot be checked".to_string(),
                ),
                Some(have) => {
                    let diffs: Vec<String> = expected
                        .iter()
                        .map(|(p, want)| {
                            let d = have.differences(want);
                            if d.is_empty() {
                                format!("as glue-finetune `{p}`, but its model.safetensors is not the file glue-finetune wrote (sha256 differs from kiln-finetune.json's)")
                            } else {
                                format!("differs from glue-finetune `{p}` in: {}", d.join(", "))
                            }
                        })
                        .collect();
                    (pr.line(), diffs.join("; "))
                }
            },
        };
        rejected.push(Rejected {
            dir,
            made_with,
            why,
        });
    }
    Err(CheckpointError::Mismatch {
        model: model.to_string(),
        task: task.to_string(),
        by: wanted.by.clone(),
        expected,
        rejected,
    }
    .into())
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

/// Whether a profile that starts from glue-finetune's checkpoints can run: every task has GLUE
/// data and the fine-tuned checkpoint `wanted` starts from ([`finetuned_for`], weights not
/// hashed here) (`Ok(what was found)`), or what is missing.
pub fn finetuned_inputs(
    model: &str,
    tasks: &[String],
    args: &RunArgs,
    wanted: &Wanted,
) -> std::result::Result<String, String> {
    if model == "tiny" {
        return Ok("synthetic tasks, tiny BERT fine-tuned in-process".into());
    }
    let r = Resolver::from_args(args);
    let tasks = args.tasks_or(tasks);
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for t in &tasks {
        if GlueTask::parse(t)
            .ok()
            .and_then(|g| r.find_task(g))
            .is_none()
        {
            missing.push(format!("{t}: no GLUE data (pass --data-dir)"));
            continue;
        }
        match finetuned_for(&r, model, t, wanted, false) {
            Ok(c) => found.push(match &c.matches {
                Some(p) => format!("{t} (glue-finetune `{p}`)"),
                None => format!("{t} (given with {})", c.how),
            }),
            Err(e) => missing.push(format!("{t}: {e:#}")),
        }
    }
    if missing.is_empty() {
        Ok(format!(
            "fine-tuned {model} checkpoints and GLUE data found for {}",
            found.join(", ")
        ))
    } else {
        Err(missing.join("\n"))
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

/// The names `--tasks` may choose for a profile on `model`: any GLUE task (plus `extra`, e.g.
/// SQuAD for pruning) on a real model, since a profile's settings apply to tasks it does not
/// list; only the profile's own synthetic tasks on the smoke model.
pub fn task_choices(model: &str, profile_tasks: &[String], extra: &[&str]) -> Vec<String> {
    let mut v = profile_tasks.to_vec();
    if model != "tiny" {
        v.extend(GlueTask::ALL.iter().map(|t| t.name().to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
    }
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod given_tests {
    use super::*;

    /// `--model <sst2 checkpoint>` on a run over sst2 and mrpc: the sst2 checkpoint was used for
    /// mrpc too, scored on data it was not trained for.
    #[test]
    fn one_tasks_checkpoint_is_not_used_for_another_task() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("ck");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("config.json"), "{}").unwrap();
        std::fs::write(c.join("model.safetensors"), "x").unwrap();
        std::fs::write(
            c.join(PROVENANCE),
            r#"{"experiment":"glue-finetune","profile":"mini","task":"sst2","metric":"accuracy","value":90.0,"train_examples":10,"epochs":1.0,"steps":1,"seed":42}"#,
        )
        .unwrap();
        assert_eq!(given_dir(&c, "sst2").unwrap(), c);
        let e = given_dir(&c, "mrpc").unwrap_err().to_string();
        assert!(
            e.contains("fine-tuned on sst2, not mrpc") && e.contains("--tasks sst2"),
            "{e}"
        );
    }
}
