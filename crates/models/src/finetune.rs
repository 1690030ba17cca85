//! Fine-tuning and evaluating an encoder with a task head (sequence classification, or SQuAD
//! span prediction) on an encoded task: the loop
//! HF's `Trainer` runs for GLUE (AdamW, linear warmup then linear decay, gradient clipping),
//! written over burn so it runs on any device.
//!
//! Deliberate differences from HF `Trainer`: burn's norm clipping clips each parameter tensor
//! to norm 1.0 rather than the global norm; weight decay applies to every parameter (HF skips
//! biases and LayerNorm). Neither changes GLUE dev scores beyond seed noise in our runs.

use std::collections::BTreeMap;

use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use kiln_data::{make_batches_grouped, metrics, Encoded};
use serde::{Deserialize, Serialize};

use kiln_data::squad::{squad_batches, squad_predictions, SquadDecode, SquadExample, SquadFeature};

use crate::{
    BertForQuestionAnswering, BertForSequenceClassification, EncoderInput, EncoderTask, ModelError,
};

/// Training hyper-parameters (HF Trainer names where they exist).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneConfig {
    pub epochs: f64,
    pub batch_size: usize,
    pub learning_rate: f64,
    #[serde(default = "d_warmup")]
    pub warmup_ratio: f64,
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    #[serde(default = "d_clip")]
    pub max_grad_norm: f64,
    #[serde(default)]
    pub seed: u64,
    /// Evaluate on dev this many times over the run (for the training curve).
    #[serde(default = "d_evals")]
    pub evals: usize,
    /// Batch examples of similar length together (HF `group_by_length`).
    #[serde(default = "d_group")]
    pub group_by_length: bool,
}
fn d_group() -> bool {
    true
}
fn d_warmup() -> f64 {
    0.1
}
fn d_wd() -> f64 {
    0.01
}
fn d_clip() -> f64 {
    1.0
}
fn d_evals() -> usize {
    5
}

/// A task ready for training: encoded examples, labels and how to score it.
pub struct TaskData<'a> {
    pub name: String,
    pub num_labels: usize,
    pub metric_names: Vec<String>,
    pub train: &'a [Encoded],
    pub train_labels: &'a [Option<f32>],
    pub dev: &'a [Encoded],
    pub dev_labels: &'a [Option<f32>],
    pub pad_id: i64,
}

/// One point of the training curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub epoch: f64,
    /// Mean training loss since the previous point.
    pub train_loss: f64,
    /// Main dev metric (x100) when evaluated at this point.
    pub dev_metric: Option<f64>,
}

/// Outcome of a fine-tuning run.
pub struct FinetuneResult<M = BertForSequenceClassification> {
    pub model: M,
    pub curve: Vec<CurvePoint>,
    pub dev_metrics: BTreeMap<String, f64>,
    pub steps: usize,
    pub train_seconds: f64,
}

/// GLUE metrics (x100) from predictions. Classification: argmax; regression: the score.
/// No examples, a missing (NaN) or non-class gold label, or a NaN model output is an error,
/// never a number: a NaN label cast to a class would silently count as class 0.
pub fn score(
    metric_names: &[String],
    outputs: &[Vec<f32>],
    gold: &[f32],
) -> Result<BTreeMap<String, f64>, ModelError> {
    if outputs.len() != gold.len() {
        return Err(ModelError::Invalid(format!(
            "scoring {} model outputs against {} gold labels; score each dev example once",
            outputs.len(),
            gold.len()
        )));
    }
    let mut m = BTreeMap::new();
    if outputs.first().is_some_and(|o| o.len() == 1) {
        let p: Vec<f64> = outputs.iter().map(|o| o[0] as f64).collect();
        let g: Vec<f64> = gold.iter().map(|&x| x as f64).collect();
        m.insert("pearson".into(), 100.0 * metrics::pearson(&p, &g)?);
        m.insert("spearman".into(), 100.0 * metrics::spearman(&p, &g)?);
    } else {
        let mut p = Vec::with_capacity(outputs.len());
        for (i, o) in outputs.iter().enumerate() {
            if o.is_empty() || o.iter().any(|v| v.is_nan()) {
                return Err(ModelError::Invalid(format!(
                    "model output {o:?} for dev example {} of {} has no class score or a NaN: \
                     no argmax to score (did training diverge?)",
                    i + 1,
                    outputs.len()
                )));
            }
            p.push(
                o.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |x| x.0),
            );
        }
        let mut g = Vec::with_capacity(gold.len());
        for (i, &x) in gold.iter().enumerate() {
            if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
                return Err(ModelError::Invalid(format!(
                    "dev example {} of {} has gold label {x}, not a class index: every dev \
                     example needs a label (is the dev file a test split?)",
                    i + 1,
                    gold.len()
                )));
            }
            g.push(x as usize);
        }
        for name in metric_names {
            let v = match name.as_str() {
                "accuracy" => metrics::accuracy(&p, &g)?,
                "f1" => metrics::f1(&p, &g)?,
                "mcc" => metrics::matthews(&p, &g)?,
                _ => continue,
            };
            m.insert(name.clone(), 100.0 * v);
        }
    }
    Ok(m)
}

/// Runs the model over `examples` in batches (no gradients) and returns per-example outputs.
pub fn predict(
    model: &BertForSequenceClassification,
    examples: &[Encoded],
    pad_id: i64,
    batch_size: usize,
    masks: Option<&crate::EncoderMasks>,
    device: &Device,
) -> Vec<Vec<f32>> {
    let labels = vec![None; examples.len()];
    let mut out = vec![Vec::new(); examples.len()];
    let batches = make_batches_grouped(examples, &labels, batch_size, pad_id, None, true);
    let pb = kiln_core::progress::bar(batches.len() as u64, "evaluating");
    for b in batches {
        pb.inc(1);
        let logits = model.forward(&EncoderInput::from_batch(&b, device), masks);
        let [n, k] = logits.dims();
        let v: Vec<f32> = logits
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .unwrap_or_default();
        for r in 0..n {
            out[b.index[r]] = v[r * k..(r + 1) * k].to_vec();
        }
    }
    pb.finish_and_clear();
    out
}

/// Dev metrics of `model` (x100).
pub fn evaluate(
    model: &BertForSequenceClassification,
    task: &TaskData,
    batch_size: usize,
    device: &Device,
) -> Result<BTreeMap<String, f64>, ModelError> {
    let outputs = predict(model, task.dev, task.pad_id, batch_size, None, device);
    let gold: Vec<f32> = task
        .dev_labels
        .iter()
        .map(|l| l.unwrap_or(f32::NAN))
        .collect();
    score(&task.metric_names, &outputs, &gold)
}

/// Fine-tunes `model` (on a plain device; training runs on its autodiff twin).
pub fn finetune(
    model: BertForSequenceClassification,
    task: &TaskData,
    cfg: &FinetuneConfig,
    device: &Device,
) -> Result<FinetuneResult, ModelError> {
    let main = task
        .metric_names
        .first()
        .cloned()
        .unwrap_or_else(|| "accuracy".into());
    let main = if task.num_labels == 1 {
        "pearson".to_string()
    } else {
        main
    };
    let per_epoch = task.train.len().div_ceil(cfg.batch_size.max(1));
    train(
        model,
        RunLabels {
            name: &task.name,
            main_metric: &main,
        },
        per_epoch,
        |epoch| {
            make_batches_grouped(
                task.train,
                task.train_labels,
                cfg.batch_size,
                task.pad_id,
                Some(cfg.seed + epoch),
                cfg.group_by_length,
            )
        },
        cfg,
        |m| evaluate(m, task, 64, device),
        device,
    )
}

/// What a training run is called in the log and which dev metric its curve follows.
#[derive(Debug, Clone, Copy)]
pub struct RunLabels<'a> {
    pub name: &'a str,
    pub main_metric: &'a str,
}

/// The optimiser every head trains with: AdamW (eps 1e-8, the config's weight decay) with
/// per-tensor norm clipping at `max_grad_norm`.
pub fn optimizer(cfg: &FinetuneConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(cfg.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.max_grad_norm as f32)))
        .init()
}

/// One training step at learning rate `lr`: the batch's mean loss, backward, clipping and the
/// AdamW update, on `model` living on the autodiff device `ad`. Returns the updated model and
/// the loss (read back to the host: the loop stops on a non-finite loss before updating).
/// `train` runs exactly this per batch; `kiln bench --only finetune` times it.
pub fn train_step<M: EncoderTask>(
    model: M,
    optim: &mut ModuleOptimizer,
    batch: &kiln_data::Batch,
    lr: f64,
    ad: &Device,
) -> Result<(M, f64), ModelError> {
    let loss = model.batch_loss(batch, None, ad)?;
    let lv = loss.clone().into_scalar::<f32>() as f64;
    if !lv.is_finite() {
        return Err(ModelError::NonFiniteLoss { loss: lv });
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((optim.step(lr, model, grads), lv))
}

/// The loop every head trains with: AdamW, linear warmup then linear decay, clipping, a
/// NaN-loss stop, and `cfg.evals` dev evaluations (`evaluate` gets the model in eval mode; its
/// error ends the run).
/// `batches(epoch)` yields one epoch's batches (`per_epoch` of them).
pub fn train<M: EncoderTask>(
    model: M,
    labels: RunLabels,
    per_epoch: usize,
    mut batches: impl FnMut(u64) -> Vec<kiln_data::Batch>,
    cfg: &FinetuneConfig,
    mut evaluate: impl FnMut(&M) -> Result<BTreeMap<String, f64>, ModelError>,
    device: &Device,
) -> Result<FinetuneResult<M>, ModelError> {
    let RunLabels {
        name,
        main_metric: main,
    } = labels;
    if per_epoch == 0 {
        return Err(ModelError::Invalid(format!("{name}: empty training set")));
    }
    let ad = device.clone().autodiff();
    device.seed(cfg.seed);
    let mut model = model.to_device(&ad).train();
    let mut optim = optimizer(cfg);
    let total = ((per_epoch as f64) * cfg.epochs).ceil().max(1.0) as usize;
    let warmup = (cfg.warmup_ratio * total as f64).round() as usize;
    let eval_at: Vec<usize> = (1..=cfg.evals.max(1))
        .map(|i| i * total / cfg.evals.max(1))
        .collect();

    let pb = kiln_core::progress::bar(total as u64, name);
    let start = std::time::Instant::now();
    let mut curve = Vec::new();
    let (mut loss_sum, mut loss_n) = (0.0, 0usize);
    let mut step = 0usize;
    let mut epoch = 0u64;
    let mut dev_metrics = BTreeMap::new();
    let mut eval_s = 0.0;
    'outer: loop {
        let epoch_batches = batches(epoch);
        epoch += 1;
        if epoch_batches.is_empty() {
            break;
        }
        for b in epoch_batches {
            if step >= total {
                break 'outer;
            }
            let lr = if step < warmup {
                cfg.learning_rate * (step + 1) as f64 / warmup.max(1) as f64
            } else {
                cfg.learning_rate * (total - step) as f64 / (total - warmup).max(1) as f64
            };
            let lv;
            (model, lv) = match train_step(model, &mut optim, &b, lr, &ad) {
                Ok(r) => r,
                Err(ModelError::NonFiniteLoss { loss }) => {
                    pb.abandon();
                    return Err(ModelError::Invalid(format!(
                        "{name}: training loss became {loss} at step {step} (lr {lr:.2e}); lower the learning rate or check the labels"
                    )));
                }
                Err(e) => return Err(e),
            };
            step += 1;
            loss_sum += lv;
            loss_n += 1;
            pb.set_message(format!("loss {:.4}", loss_sum / loss_n as f64));
            pb.inc(1);
            if eval_at.contains(&step) {
                let train_s = start.elapsed().as_secs_f64() - eval_s;
                let t_eval = std::time::Instant::now();
                dev_metrics = match evaluate(&model.valid()) {
                    Ok(m) => m,
                    Err(e) => {
                        pb.abandon();
                        return Err(e);
                    }
                };
                eval_s += t_eval.elapsed().as_secs_f64();
                let dm = dev_metrics.get(main).copied();
                curve.push(CurvePoint {
                    step,
                    epoch: step as f64 / per_epoch as f64,
                    train_loss: loss_sum / loss_n.max(1) as f64,
                    dev_metric: dm,
                });
                let line = format!(
                    "  {name} step {step}/{total}: train loss {:.4}, dev {main} {:.2} ({:.2} s/train step, {:.1} s/eval)",
                    loss_sum / loss_n.max(1) as f64,
                    dm.unwrap_or(f64::NAN),
                    train_s / step as f64,
                    t_eval.elapsed().as_secs_f64()
                );
                if pb.is_hidden() {
                    println!("{line}");
                } else {
                    pb.println(line);
                }
                loss_sum = 0.0;
                loss_n = 0;
            }
        }
    }
    pb.finish_and_clear();
    Ok(FinetuneResult {
        model: model.valid(),
        curve,
        dev_metrics,
        steps: step,
        train_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Start and end logits of every feature (trimmed to its length), in input order.
pub fn predict_spans(
    model: &BertForQuestionAnswering,
    features: &[SquadFeature],
    pad_id: i64,
    batch_size: usize,
    masks: Option<&crate::EncoderMasks>,
    device: &Device,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let order: Vec<usize> = (0..features.len()).collect();
    let mut starts = vec![Vec::new(); features.len()];
    let mut ends = vec![Vec::new(); features.len()];
    let batches = squad_batches(features, &order, batch_size, pad_id);
    let pb = kiln_core::progress::bar(batches.len() as u64, "evaluating");
    for b in batches {
        pb.inc(1);
        let (s, e) = model.forward(&EncoderInput::from_batch(&b, device), masks);
        let vec = |t: burn::tensor::Tensor<2>| -> Vec<f32> {
            t.into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap_or_default()
        };
        let (s, e) = (vec(s), vec(e));
        for (r, &i) in b.index.iter().enumerate() {
            let n = features[i].encoded.ids.len();
            starts[i] = s[r * b.seq..r * b.seq + n].to_vec();
            ends[i] = e[r * b.seq..r * b.seq + n].to_vec();
        }
    }
    pb.finish_and_clear();
    (starts, ends)
}

/// Official SQuAD EM and F1 (x100) of `model` on `examples` (windowed as `features`).
pub fn evaluate_squad(
    model: &BertForQuestionAnswering,
    examples: &[SquadExample],
    features: &[SquadFeature],
    decode: SquadDecode,
    pad_id: i64,
    masks: Option<&crate::EncoderMasks>,
    device: &Device,
) -> Result<BTreeMap<String, f64>, ModelError> {
    let (s, e) = predict_spans(model, features, pad_id, 32, masks, device);
    let pred = squad_predictions(examples, features, &s, &e, decode);
    let (em, f1) = kiln_data::squad::evaluate(examples, &pred)?;
    Ok(BTreeMap::from([
        ("exact_match".to_string(), em),
        ("f1".to_string(), f1),
    ]))
}

/// Fine-tunes a span head on SQuAD features (shuffled each epoch with `cfg.seed + epoch`).
pub fn finetune_qa(
    model: BertForQuestionAnswering,
    name: &str,
    train_features: &[SquadFeature],
    pad_id: i64,
    cfg: &FinetuneConfig,
    evaluate: impl FnMut(&BertForQuestionAnswering) -> Result<BTreeMap<String, f64>, ModelError>,
    device: &Device,
) -> Result<FinetuneResult<BertForQuestionAnswering>, ModelError> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let per_epoch = train_features.len().div_ceil(cfg.batch_size.max(1));
    train(
        model,
        RunLabels {
            name,
            main_metric: "f1",
        },
        per_epoch,
        |epoch| {
            let mut order: Vec<usize> = (0..train_features.len()).collect();
            order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
                cfg.seed + epoch,
            ));
            squad_batches(train_features, &order, cfg.batch_size, pad_id)
        },
        cfg,
        evaluate,
        device,
    )
}
