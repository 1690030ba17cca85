//! The two-stage schedule of spec §6 and the hard-mode training of the baselines (§8), with the
//! official optimiser layout: one AdamW for the weights and one for the thresholds (their own
//! learning rate), linear decay without warm-up, weight decay 0, clipping at norm 1.
//!
//! Deliberate difference: burn clips each parameter tensor to norm 1 rather than the global norm
//! over all parameters (as kiln's fine-tuning does; documented there).

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use kiln_data::{make_batches_grouped, Encoded};
use kiln_models::finetune::score;
use kiln_models::EncoderInput;
use serde::{Deserialize, Serialize};

use crate::error::check_range;
use crate::flops::FlopsMeter;
use crate::{LtpError, LtpModel, Mode};

/// One training stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageConfig {
    pub epochs: f64,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Threshold learning rate (the reference: the model's unless given).
    pub threshold_learning_rate: Option<f64>,
    /// λ of the soft-mask regulariser (soft mode only).
    pub lambda: f64,
    pub seed: u64,
    /// Evaluate on dev after every epoch and keep the best (stage 2); else keep the last.
    pub keep_best: bool,
}

/// A task's data.
pub struct TaskSplit<'a> {
    pub train: &'a [Encoded],
    pub train_labels: &'a [Option<f32>],
    pub dev: &'a [Encoded],
    pub dev_labels: &'a [Option<f32>],
    pub metric_names: &'a [String],
    pub main_metric: &'a str,
    pub pad_id: i64,
}

/// Dev metrics (x100) and FLOPs of `model` under `mode` (use [`Mode::Hard`] for LTP: evaluation
/// always prunes hard).
pub struct Evaluation {
    pub metrics: BTreeMap<String, f64>,
    pub flops: FlopsMeter,
    /// The model's output per dev example, in dev order (for per-example predictions).
    pub outputs: Vec<Vec<f32>>,
}

impl Evaluation {
    pub fn main(&self, name: &str) -> f64 {
        self.metrics.get(name).copied().unwrap_or(f64::NAN)
    }
}

/// Errors when the dev set cannot be scored (no examples, a missing label, a NaN output).
pub fn evaluate(
    model: &LtpModel,
    task: &TaskSplit,
    mode: Mode,
    device: &Device,
) -> Result<Evaluation, kiln_models::ModelError> {
    let model = model.valid();
    let d = model
        .classifier
        .bert
        .embeddings
        .word_embeddings
        .weight
        .dims()[1];
    let batches = make_batches_grouped(task.dev, task.dev_labels, 64, task.pad_id, None, true);
    let mut outputs = vec![Vec::new(); task.dev.len()];
    let mut flops = FlopsMeter::default();
    for b in batches {
        let out = model.forward(&EncoderInput::from_batch(&b, device), mode);
        flops.add(&out.counts, d);
        let [rows, k] = out.logits.dims();
        let v: Vec<f32> = out
            .logits
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        for r in 0..rows {
            outputs[b.index[r]] = v[r * k..(r + 1) * k].to_vec();
        }
    }
    let gold: Vec<f32> = task
        .dev_labels
        .iter()
        .map(|l| l.unwrap_or(f32::NAN))
        .collect();
    Ok(Evaluation {
        metrics: score(task.metric_names, &outputs, &gold)?,
        flops,
        outputs,
    })
}

/// What a stage did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageLog {
    pub steps: usize,
    pub seconds: f64,
    /// (epoch, dev main metric, relative FLOPs) after each epoch when evaluated.
    pub evals: Vec<(usize, f64, f64)>,
    pub final_thresholds: Vec<f64>,
    pub mean_regulariser: Option<f64>,
}

/// Trains `model` in `mode` (soft: thresholds learn, regulariser on; hard / top-k: thresholds
/// frozen, bitwise). Evaluation for `keep_best` uses `eval_mode`.
pub fn train_stage(
    model: LtpModel,
    task: &TaskSplit,
    mode: Mode,
    eval_mode: Mode,
    cfg: &StageConfig,
    device: &Device,
) -> Result<(LtpModel, StageLog), LtpError> {
    mode.check()?;
    check_range(
        "lambda",
        cfg.lambda,
        0.0,
        f64::INFINITY,
        true,
        "the regulariser weight is non-negative (reference 0.01 .. 0.2)",
    )?;
    check_range(
        "learning_rate",
        cfg.learning_rate,
        0.0,
        1.0,
        true,
        "e.g. 2e-5",
    )?;
    if task.train.is_empty() {
        return Err(LtpError::Invalid("empty training set".into()));
    }
    let soft = matches!(mode, Mode::Soft { .. });
    let ad = device.clone().autodiff();
    device.seed(cfg.seed);
    let LtpModel {
        classifier,
        thresholds,
        norm_len,
    } = model;
    let mut classifier = classifier.to_device(&ad).train();
    let mut thresholds = thresholds.to_device(&ad).train();
    let opt_cfg = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)));
    let mut opt_m = opt_cfg.init();
    let mut opt_t = opt_cfg.init();
    let per_epoch = task.train.len().div_ceil(cfg.batch_size.max(1));
    let total = ((per_epoch as f64) * cfg.epochs).ceil().max(1.0) as usize;
    let lr_t0 = cfg.threshold_learning_rate.unwrap_or(cfg.learning_rate);
    let pb = kiln_core::progress::bar(total as u64, if soft { "LTP soft" } else { "hard" });
    let start = std::time::Instant::now();
    let mut log = StageLog::default();
    let mut best: Option<(f64, LtpModel)> = None;
    let (mut reg_sum, mut reg_n) = (0.0, 0usize);
    let mut step = 0usize;
    let mut epoch = 0usize;
    'outer: loop {
        let batches = make_batches_grouped(
            task.train,
            task.train_labels,
            cfg.batch_size,
            task.pad_id,
            Some(cfg.seed + epoch as u64),
            true,
        );
        epoch += 1;
        for b in batches {
            if step >= total {
                break 'outer;
            }
            let decay = (total - step) as f64 / total as f64;
            let m = LtpModel {
                classifier,
                thresholds,
                norm_len,
            };
            let out = m.forward(&EncoderInput::from_batch(&b, &ad), mode);
            let mut loss = m.classifier.loss(out.logits, &b.labels);
            if let Some(r) = out.regulariser {
                reg_sum += r.clone().into_scalar::<f32>() as f64;
                reg_n += 1;
                loss = loss + r * cfg.lambda;
            }
            let lv = loss.clone().into_scalar::<f32>() as f64;
            if !lv.is_finite() {
                pb.abandon();
                return Err(LtpError::Invalid(format!(
                    "training loss became {lv} at step {step}; lower the learning rate or check the labels"
                )));
            }
            let mut grads = loss.backward();
            let g_t = GradientsParams::from_module(&mut grads, &m.thresholds);
            let g_m = GradientsParams::from_module(&mut grads, &m.classifier);
            classifier = opt_m.step(cfg.learning_rate * decay, m.classifier, g_m);
            thresholds = if soft {
                opt_t.step(lr_t0 * decay, m.thresholds, g_t)
            } else {
                m.thresholds
            };
            step += 1;
            pb.set_message(format!("loss {lv:.4}"));
            pb.inc(1);
        }
        if cfg.keep_best {
            let m = LtpModel {
                classifier: classifier.valid(),
                thresholds: thresholds.valid(),
                norm_len,
            };
            let e = evaluate(&m, task, eval_mode, device)?;
            let v = e.main(task.main_metric);
            log.evals.push((epoch, v, e.flops.relative()));
            if best.as_ref().is_none_or(|(bv, _)| v > *bv) {
                best = Some((v, m));
            }
        }
    }
    pb.finish_and_clear();
    log.steps = step;
    log.seconds = start.elapsed().as_secs_f64();
    log.mean_regulariser = (reg_n > 0).then(|| reg_sum / reg_n as f64);
    let last = LtpModel {
        classifier: classifier.valid(),
        thresholds: thresholds.valid(),
        norm_len,
    };
    let model = match best {
        Some((_, m)) if cfg.keep_best => m,
        _ => last,
    };
    log.final_thresholds = model.thresholds.values();
    Ok((model, log))
}
