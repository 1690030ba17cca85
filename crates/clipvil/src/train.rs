//! Training a [`VqaNet`] on soft answer targets and scoring it with the official VQA accuracy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::vqa_eval::vqa_accuracy;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::heads::Questions;
use crate::model::{logit_bce, VqaNet};
use crate::ClipVilError;

/// Where a split's images come from: decoded once into memory (the mini profile's 8,127 small
/// images), or decoded per batch from files (VQA v2's 123k COCO images at 600×1000 would need
/// ~900 GB as floats). Either way they are CLIP-normalised `[3, h, w]`.
#[derive(Debug, Clone)]
pub enum Images {
    Memory {
        data: Arc<Vec<f32>>,
        h: usize,
        w: usize,
    },
    Files {
        paths: Arc<Vec<PathBuf>>,
        h: usize,
        w: usize,
    },
}

impl Images {
    pub fn len(&self) -> usize {
        match self {
            Images::Memory { data, h, w } => data.len() / (3 * h * w),
            Images::Files { paths, .. } => paths.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn hw(&self) -> (usize, usize) {
        match self {
            Images::Memory { h, w, .. } | Images::Files { h, w, .. } => (*h, *w),
        }
    }

    /// Images `rows`, stacked `[rows, 3, h, w]`. Files are decoded on every core (a 512-image
    /// batch at 600×1000 is seconds of JPEG decoding and resizing on one).
    fn gather(&self, rows: &[usize]) -> Result<Vec<f32>, ClipVilError> {
        match self {
            Images::Memory { data, h, w } => {
                let per = 3 * h * w;
                let mut out = Vec::with_capacity(rows.len() * per);
                for &i in rows {
                    out.extend_from_slice(&data[i * per..(i + 1) * per]);
                }
                Ok(out)
            }
            Images::Files { paths, h, w } => {
                let (h, w) = (*h, *w);
                let per = 3 * h * w;
                let mut out = vec![0f32; rows.len() * per];
                let workers = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(rows.len().max(1));
                let chunk = rows.len().div_ceil(workers).max(1);
                std::thread::scope(|scope| {
                    let jobs: Vec<_> = out
                        .chunks_mut(chunk * per)
                        .zip(rows.chunks(chunk))
                        .map(|(dst, idx)| {
                            scope.spawn(move || -> Result<(), ClipVilError> {
                                for (k, &i) in idx.iter().enumerate() {
                                    // Exact resize, ignoring the aspect ratio, as CLIP-ViL's
                                    // VQA mapper does.
                                    let mut img =
                                        kiln_data::vqa::load_rgb(&paths[i], Some((h, w)))?;
                                    kiln_data::vqa::clip_normalize(&mut img.data, (3, h, w));
                                    dst[k * per..(k + 1) * per].copy_from_slice(&img.data);
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    jobs.into_iter()
                        .map(|j| {
                            j.join().unwrap_or_else(|_| {
                                Err(ClipVilError::Invalid(
                                    "an image decoding thread panicked".into(),
                                ))
                            })
                        })
                        .collect::<Result<Vec<()>, _>>()
                })?;
                Ok(out)
            }
        }
    }
}

/// One split's questions, ready for batching.
#[derive(Debug, Clone)]
pub struct Split {
    pub name: String,
    pub images: Images,
    /// Image row of each question.
    pub image_of: Vec<usize>,
    /// Question ids `[n, max_len]`, 0-padded.
    pub ids: Vec<i64>,
    pub max_len: usize,
    /// Soft scores per question as (answer label, score): the official accuracy of each
    /// in-vocabulary candidate (sparse: VQA v2 has 3,129 answers and ~440k questions).
    pub targets: Vec<Vec<(u32, f32)>>,
    pub answers: usize,
    /// The human answers of each question, as the official accuracy reads them.
    pub gt: Vec<Vec<String>>,
    pub question_ids: Vec<u64>,
    /// Question texts (written beside the predictions so a metric can be recomputed).
    pub questions: Vec<String>,
    pub answer_types: Vec<String>,
    /// Whether each question is new to training (the yes/no subset repeats ~41% of its dev and
    /// test questions as paraphrases on the same image; those are `false`).
    pub novel: Vec<bool>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.image_of.len()
    }
    pub fn is_empty(&self) -> bool {
        self.image_of.is_empty()
    }

    /// Images, questions and dense targets of `rows` on `device`.
    pub fn batch(
        &self,
        rows: &[usize],
        with_images: bool,
        device: &Device,
    ) -> Result<(Option<Tensor<4>>, Questions, Tensor<2>), ClipVilError> {
        let b = rows.len();
        let l = self.max_len;
        let images = if with_images {
            let (h, w) = self.images.hw();
            let idx: Vec<usize> = rows.iter().map(|&r| self.image_of[r]).collect();
            let v = self.images.gather(&idx)?;
            Some(Tensor::from_data(TensorData::new(v, [b, 3, h, w]), device))
        } else {
            None
        };
        let mut ids = Vec::with_capacity(b * l);
        let mut t = vec![0f32; b * self.answers];
        for (k, &r) in rows.iter().enumerate() {
            ids.extend_from_slice(&self.ids[r * l..(r + 1) * l]);
            for &(a, s) in &self.targets[r] {
                t[k * self.answers + a as usize] = s;
            }
        }
        let mask: Vec<f32> = ids
            .iter()
            .map(|&x| if x != 0 { 1.0 } else { 0.0 })
            .collect();
        let q = Questions {
            ids: Tensor::<2, Int>::from_data(TensorData::new(ids, [b, l]), device),
            mask: Tensor::from_data(TensorData::new(mask, [b, l]), device),
        };
        Ok((
            images,
            q,
            Tensor::from_data(TensorData::new(t, [b, self.answers]), device),
        ))
    }
}

/// Pythia's schedule shape (linear warm-up from `warmup_factor`, then ×`decay` at each of
/// `decay_at`, given as fractions of the run) with Adam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Warm-up length as a fraction of all steps (Pythia: 1,000 of 22,000).
    pub warmup: f64,
    pub warmup_factor: f64,
    pub decay_at: Vec<f64>,
    pub decay: f64,
    /// Per-tensor gradient norm clip (Pythia clips the global norm at 0.25).
    pub clip: f64,
    pub eval_batch: usize,
}

impl TrainConfig {
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        let f = step as f64 / total.max(1) as f64;
        let warm = if self.warmup > 0.0 && f < self.warmup {
            self.warmup_factor + (1.0 - self.warmup_factor) * f / self.warmup
        } else {
            1.0
        };
        let decays = self.decay_at.iter().filter(|&&d| f >= d).count() as i32;
        self.lr * warm * self.decay.powi(decays)
    }

    pub fn validate(&self) -> Result<(), ClipVilError> {
        if self.epochs == 0 || self.batch_size == 0 || self.eval_batch == 0 {
            return Err(ClipVilError::Invalid(
                "train: epochs, batch_size and eval_batch must be positive".into(),
            ));
        }
        if self.lr.is_nan()
            || self.lr <= 0.0
            || !(0.0..1.0).contains(&self.warmup)
            || self.clip <= 0.0
        {
            return Err(ClipVilError::Invalid(format!(
                "train: lr {} must be positive, warmup {} in [0, 1), clip {} positive",
                self.lr, self.warmup, self.clip
            )));
        }
        Ok(())
    }
}

/// Accuracy of one split, and its predictions.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// Official VQA accuracy × 100.
    pub accuracy: f64,
    /// Accuracy on the questions marked novel (equal to `accuracy` when all are).
    pub novel_accuracy: f64,
    pub per_type: Vec<(String, f64)>,
    /// Predicted answer index per question.
    pub predicted: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochPoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev_accuracy: f64,
}

pub struct Trained {
    pub model: VqaNet,
    pub curve: Vec<EpochPoint>,
    pub seconds: f64,
    pub params: usize,
}

/// Scores `model` on `split`: argmax answer, then the official accuracy against the human
/// answers (`answer_names[label]` is the answer string).
pub fn evaluate(
    model: &VqaNet,
    split: &Split,
    answer_names: &[String],
    batch: usize,
    device: &Device,
) -> Result<Scores, ClipVilError> {
    let mut predicted = Vec::with_capacity(split.len());
    let rows: Vec<usize> = (0..split.len()).collect();
    let images = model.head_uses_image();
    for chunk in rows.chunks(batch.max(1)) {
        let (x, q, _) = split.batch(chunk, images, device)?;
        let logits = model.forward(x, &q)?;
        let am: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap_or_default();
        predicted.extend(am.into_iter().map(|x| x as usize));
    }
    let mut sum = 0.0;
    let mut by_type: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    for (i, &p) in predicted.iter().enumerate() {
        let acc = vqa_accuracy(&answer_names[p], &split.gt[i]);
        sum += acc;
        let e = by_type.entry(split.answer_types[i].clone()).or_default();
        e.0 += acc;
        e.1 += 1;
    }
    let n = split.len().max(1) as f64;
    let (mut ns, mut nn) = (0.0, 0usize);
    for (i, &p) in predicted.iter().enumerate() {
        if split.novel.get(i).copied().unwrap_or(true) {
            ns += vqa_accuracy(&answer_names[p], &split.gt[i]);
            nn += 1;
        }
    }
    Ok(Scores {
        accuracy: 100.0 * sum / n,
        novel_accuracy: 100.0 * ns / nn.max(1) as f64,
        per_type: by_type
            .into_iter()
            .map(|(k, (s, c))| (k, 100.0 * s / c as f64))
            .collect(),
        predicted,
    })
}

/// Trains `model` (fresh, or with a loaded tower) on `train`, scoring `dev` after every epoch.
/// With `freeze_encoder` the tower is fixed (no gradients, BatchNorm on its running
/// statistics), as in CLIP-ViL's direct fine-tuning on extracted grids. `seed` orders the
/// batches; `on_step(done, total, loss)` reports progress.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: VqaNet,
    freeze_encoder: bool,
    train: &Split,
    dev: &Split,
    answer_names: &[String],
    tc: &TrainConfig,
    seed: u64,
    device: &Device,
    mut on_step: impl FnMut(usize, usize, f64),
) -> Result<Trained, ClipVilError> {
    tc.validate()?;
    let started = Instant::now();
    let params = model.num_params();
    let ad = device.clone().autodiff();
    let mut model = model.to_device(&ad).train();
    if freeze_encoder {
        model.encoder = model.encoder.map(|e| e.freeze());
    }
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(tc.clip as f32)))
        .init();
    let per_epoch = train.len() / tc.batch_size;
    if per_epoch == 0 {
        return Err(ClipVilError::Invalid(format!(
            "batch size {} leaves no full batch in {} training questions",
            tc.batch_size,
            train.len()
        )));
    }
    let total = per_epoch * tc.epochs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let images = model.head_uses_image();
    let mut curve = Vec::new();
    let mut done = 0;
    for epoch in 0..tc.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for s in 0..per_epoch {
            let rows = &order[s * tc.batch_size..(s + 1) * tc.batch_size];
            let (x, q, t) = train.batch(rows, images, &ad)?;
            let loss = logit_bce(model.forward(x, &q)?, t);
            let l: f64 = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                return Err(ClipVilError::NonFinite {
                    epoch,
                    step: s,
                    loss: l,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(tc.lr_at(done, total), model, grads);
            sum += l;
            done += 1;
            on_step(done, total, l);
        }
        let dev_scores = evaluate(&model.valid(), dev, answer_names, tc.eval_batch, device)?;
        curve.push(EpochPoint {
            epoch: epoch + 1,
            train_loss: sum / per_epoch as f64,
            dev_accuracy: dev_scores.accuracy,
        });
    }
    Ok(Trained {
        model: model.valid(),
        curve,
        seconds: started.elapsed().as_secs_f64(),
        params,
    })
}
