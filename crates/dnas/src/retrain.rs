//! Standalone training of a DLRM (the baseline and every sampled architecture, spec §4.3): a
//! fresh model (supernet weights are not inherited), SGD with weight decay 0, PyTorch's BCE,
//! global gradient-norm clipping at 100, `lr0 · 0.9^epoch`, the final incomplete batch
//! skipped, validation after every epoch and the test split at the end.
//!
//! Evaluation draws no random numbers (the model has no dropout), so evaluating more or less
//! often cannot change training (the reference saves and restores its RNG for the same end).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::Device;
use kiln_data::metrics;
use kiln_models::dlrm::{clip_factor, grad_sq_norm, CtrRows, Dlrm, DlrmConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::DnasError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// SGD lr (paper retraining grid {0.25, 0.5, 1.0, 2.0}; DLRM's Kaggle script 0.1).
    pub lr: f64,
    #[serde(default = "base")]
    pub lr_base: f64,
    pub epochs: usize,
    pub batch_size: usize,
    #[serde(default = "eval_batch")]
    pub eval_batch: usize,
    #[serde(default = "clip")]
    pub clip: f64,
    pub seed: u64,
}
fn base() -> f64 {
    0.9
}
fn eval_batch() -> usize {
    4096
}
fn clip() -> f64 {
    100.0
}

/// Metrics of predictions on one split.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Scores {
    pub log_loss: f64,
    pub auc: f64,
    pub accuracy: f64,
    /// Σp / Σy.
    pub calibration: f64,
    pub n: usize,
}

/// The split's metrics; an error (not NaN) for an empty split or a NaN prediction.
pub fn score(p: &[f32], y: &[f32]) -> Result<Scores, DnasError> {
    let p: Vec<f64> = p.iter().map(|&x| x as f64).collect();
    let y: Vec<f64> = y.iter().map(|&x| x as f64).collect();
    Ok(Scores {
        log_loss: metrics::log_loss(&p, &y)?,
        auc: metrics::roc_auc(&p, &y)?,
        accuracy: metrics::accuracy_round(&p, &y)?,
        calibration: metrics::calibration(&p, &y)?,
        n: y.len(),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochPoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub val: Scores,
}

pub struct Trained {
    pub model: Dlrm,
    pub curve: Vec<EpochPoint>,
    pub val: Scores,
    pub test: Scores,
    pub test_p: Vec<f32>,
    pub seconds: f64,
}

/// `p(click)` for every row, in batches of `batch`.
pub fn predict(model: &Dlrm, rows: &CtrRows, batch: usize, device: &Device) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        let j = (i + batch.max(1)).min(rows.len());
        let p = model.forward(&rows.slice(i, j), device);
        out.extend(p.into_data().try_into_vec::<f32>().unwrap_or_default());
        i = j;
    }
    out
}

/// One SGD step on `batch` (on the autodiff device `ad`): BCE, backward, the global gradient
/// norm clipped to `clip`, the update. Returns the model and the loss; a non-finite loss stops
/// before the update. `kiln bench --only dlrm` times exactly this.
pub fn train_step(
    model: Dlrm,
    optim: &mut burn::optim::ModuleOptimizer,
    batch: &CtrRows,
    lr: f64,
    clip: f64,
    ad: &Device,
) -> Result<(Dlrm, f64), DnasError> {
    let loss = model.loss(batch, ad);
    let mut grads = loss.backward();
    let n2 = grad_sq_norm(&model, &grads).expect("a DLRM has parameters");
    let v = burn::tensor::Tensor::cat(vec![loss.inner(), n2.reshape([1])], 0)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    let (l, norm) = (v[0] as f64, (v[1] as f64).sqrt());
    if !l.is_finite() {
        return Err(DnasError::NonFinite {
            stage: "training".into(),
            step: 0,
            loss: l,
        });
    }
    let g = GradientsParams::from_module(&mut grads, &model);
    Ok((optim.step(lr * clip_factor(norm, clip), model, g), l))
}

/// Trains `cfg` from a fresh initialisation (seed `tc.seed`).
pub fn train_dlrm(
    cfg: &DlrmConfig,
    train: &CtrRows,
    val: &CtrRows,
    test: &CtrRows,
    tc: &TrainConfig,
    device: &Device,
    mut on_step: impl FnMut(usize, usize, f64),
) -> Result<Trained, DnasError> {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(tc.seed);
    let model = Dlrm::new(cfg, &mut rng, device)?;
    model.check(train)?;
    let b = tc.batch_size;
    let per_epoch = train.len().checked_div(b).unwrap_or(0);
    if per_epoch == 0 {
        return Err(DnasError::Invalid(format!(
            "batch size {b} leaves no full batch in {} training rows",
            train.len()
        )));
    }
    let ad = device.clone().autodiff();
    let mut model = model.to_device(&ad).train();
    let mut optim = SgdConfig::new().init();
    let total = per_epoch * tc.epochs;
    let mut curve = Vec::new();
    let mut done = 0;
    for epoch in 0..tc.epochs {
        let lr = tc.lr * tc.lr_base.powi(epoch as i32);
        let mut sum = 0.0;
        for i in 0..per_epoch {
            let batch = train.slice(i * b, (i + 1) * b);
            let (m, l) =
                train_step(model, &mut optim, &batch, lr, tc.clip, &ad).map_err(|e| match e {
                    DnasError::NonFinite { loss, .. } => DnasError::NonFinite {
                        stage: format!("retraining epoch {epoch}"),
                        step: done,
                        loss,
                    },
                    other => other,
                })?;
            model = m;
            sum += l;
            done += 1;
            on_step(done, total, l);
        }
        let eval = model.clone().valid();
        let pv = predict(&eval, val, tc.eval_batch, device);
        curve.push(EpochPoint {
            epoch: epoch + 1,
            train_loss: sum / per_epoch as f64,
            val: score(&pv, val.labels)?,
        });
    }
    let model = model.valid();
    let pv = predict(&model, val, tc.eval_batch, device);
    let test_p = predict(&model, test, tc.eval_batch, device);
    Ok(Trained {
        val: score(&pv, val.labels)?,
        test: score(&test_p, test.labels)?,
        model,
        curve,
        test_p,
        seconds: started.elapsed().as_secs_f64(),
    })
}
