//! Training and translation for any [`Seq2Seq`]: the masked one-layer model (only scores
//! receive gradients) and the fully trained baseline go through the same loop, as in the
//! reference (fairseq's trainer with Adam (0.9, 0.98), decoupled weight decay, the
//! inverse-square-root schedule, label-smoothed cross-entropy normalised by target tokens,
//! global-norm clipping, token-bucketed batches reshuffled every epoch).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use kiln_models::seq2seq::batch::tensors;
use kiln_models::seq2seq::{
    batch_by_size, beam_search, clip_grad_norm, label_smoothed_loss, BeamConfig, InverseSqrt, Pair,
    Projection, Seq2Seq, TokenTable,
};

use crate::LotteryError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub lr: InverseSqrt,
    pub beta2: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip; 0 = none.
    pub clip_norm: f64,
    pub label_smoothing: f64,
    pub max_tokens: usize,
    /// Training stops after this many updates (or `max_epochs`, whichever comes first).
    pub max_updates: usize,
    pub max_epochs: usize,
    /// Which parameters training returns; `last` when the profile says nothing.
    #[serde(default)]
    pub checkpoint: Checkpoint,
}

/// Which parameters a training run returns (spec §6-7). The candidates are the epoch-end
/// checkpoints plus the state where training stopped, which fairseq also saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkpoint {
    /// The parameters after the last update (the mini profiles: no validation decoding fits
    /// their budget).
    #[default]
    Last,
    /// The checkpoint with the highest validation score (IWSLT14: `--best-checkpoint-metric
    /// bleu`, sacreBLEU on the detokenised valid set); the first one wins ties, as fairseq
    /// keeps a best checkpoint until a strictly better one arrives.
    BestValid,
    /// The mean of the last N checkpoints' parameters, every tensor included (WMT14:
    /// `average_checkpoints.py --num-epoch-checkpoints 10`; masks come from averaged scores).
    AverageLast(usize),
}

impl TrainConfig {
    /// The README's IWSLT14 command for the masked model (spec §6).
    pub fn iwslt_masked() -> Self {
        Self {
            lr: InverseSqrt {
                peak: 5e-4,
                warmup: 4000,
                init: 0.0,
            },
            beta2: 0.98,
            weight_decay: 1e-4,
            clip_norm: 0.5,
            label_smoothing: 0.1,
            max_tokens: 4096,
            max_updates: usize::MAX,
            max_epochs: 55,
            checkpoint: Checkpoint::BestValid,
        }
    }

    /// fairseq's IWSLT14 transformer recipe for the trained baseline (no clipping).
    pub fn iwslt_dense() -> Self {
        Self {
            clip_norm: 0.0,
            ..Self::iwslt_masked()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub update: usize,
    pub epoch: usize,
    pub loss: f64,
    pub nll: f64,
    pub lr: f64,
}

pub struct Trained<P: Projection, T: TokenTable> {
    pub model: Seq2Seq<P, T>,
    pub curve: Vec<CurvePoint>,
    pub updates: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
    /// Validation score per candidate checkpoint (`(update, score)`), for `BestValid`.
    pub valid_scores: Vec<(usize, f64)>,
    /// The update count of the returned checkpoint (for averages, of the last one in it).
    pub chosen_update: usize,
}

/// Scores a checkpoint (higher is better), e.g. BLEU of its translations of a validation set.
pub type Validate<'a, P, T> = &'a mut dyn FnMut(&Seq2Seq<P, T>) -> f64;

/// Trains `model` on `pairs`; `seed` orders the batches and drives dropout.
/// `on_step(update, total, loss)` reports progress (`total` = planned updates). `validate` is
/// required by `Checkpoint::BestValid` and called once per candidate checkpoint.
pub fn train<P: Projection, T: TokenTable>(
    model: Seq2Seq<P, T>,
    pairs: &[Pair],
    tc: &TrainConfig,
    seed: u64,
    device: &Device,
    mut validate: Option<Validate<'_, P, T>>,
    mut on_step: impl FnMut(usize, usize, f64),
) -> Result<Trained<P, T>, LotteryError> {
    if pairs.is_empty() {
        return Err(LotteryError::Invalid("no training pairs".into()));
    }
    if tc.checkpoint == Checkpoint::BestValid && validate.is_none() {
        return Err(LotteryError::Invalid(
            "checkpoint = best_valid needs a validation set (the corpus has none: give it a valid split or use checkpoint = last)".into(),
        ));
    }
    if tc.checkpoint == Checkpoint::AverageLast(0) {
        return Err(LotteryError::Invalid(
            "checkpoint = { average_last = 0 }: average at least one checkpoint".into(),
        ));
    }
    let started = Instant::now();
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let mut model = model.to_device(&ad).train();
    let mut optim = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(tc.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(tc.weight_decay as f32)
        .init();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xba7c);
    let per_epoch = batch_by_size(pairs, tc.max_tokens, usize::MAX, None)
        .map_err(LotteryError::Invalid)?
        .len();
    let total = tc.max_updates.min(per_epoch * tc.max_epochs);
    let mut curve = Vec::new();
    let mut update = 0;
    let mut tokens = 0usize;
    let mut candidates = Candidates::default();
    for epoch in 1..=tc.max_epochs {
        let batches = batch_by_size(pairs, tc.max_tokens, usize::MAX, Some(&mut rng))
            .map_err(LotteryError::Invalid)?;
        let (mut sum_loss, mut sum_nll, mut sum_tok) = (0.0, 0.0, 0usize);
        let mut stop = false;
        for b in &batches {
            if update >= total {
                stop = true;
                break;
            }
            let batch = tensors(pairs, b, &ad);
            let logits = model.forward(&batch);
            let (loss, nll, ntok) =
                label_smoothed_loss(logits, batch.target.clone(), tc.label_smoothing);
            let l = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                return Err(LotteryError::NonFinite { update, loss: l });
            }
            let mut grads = GradientsParams::from_grads((loss / ntok as f64).backward(), &model);
            if tc.clip_norm > 0.0 {
                clip_grad_norm(&model, &mut grads, tc.clip_norm);
            }
            update += 1;
            let lr = tc.lr.at(update);
            model = optim.step(lr, model, grads);
            sum_loss += l;
            sum_nll += nll.into_scalar::<f32>() as f64;
            sum_tok += ntok;
            tokens += batch.ntokens;
            on_step(update, total, l / ntok as f64);
        }
        if sum_tok == 0 {
            break;
        }
        let ln2 = std::f64::consts::LN_2;
        // A partial last epoch (training stopped at max_updates) gets its point too.
        curve.push(CurvePoint {
            update,
            epoch,
            // fairseq logs base-2 losses per token.
            loss: sum_loss / sum_tok.max(1) as f64 / ln2,
            nll: sum_nll / sum_tok.max(1) as f64 / ln2,
            lr: tc.lr.at(update.max(1)),
        });
        candidates.offer(&model.valid(), update, tc.checkpoint, &mut validate);
        if stop {
            break;
        }
    }
    // Training that stopped inside an epoch (max_updates) still ends in a checkpoint.
    if candidates.last_update != Some(update) {
        candidates.offer(&model.valid(), update, tc.checkpoint, &mut validate);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (model, chosen_update) = match tc.checkpoint {
        Checkpoint::Last => (model.valid(), update),
        Checkpoint::BestValid => candidates.best.map(|(_, u, m)| (m, u)).ok_or_else(|| {
            LotteryError::Invalid(format!(
                "every validation score was NaN ({:?}); check the validation set",
                candidates.scores
            ))
        })?,
        Checkpoint::AverageLast(_) => {
            let models: Vec<Seq2Seq<P, T>> = candidates.recent.into_iter().collect();
            (
                kiln_models::average_params(&models)
                    .map_err(|e| LotteryError::Invalid(e.to_string()))?,
                update,
            )
        }
    };
    Ok(Trained {
        model,
        curve,
        updates: update,
        seconds,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
        valid_scores: candidates.scores,
        chosen_update,
    })
}

/// The checkpoints a run keeps in memory: the best validated one, or the last N for averaging.
struct Candidates<P: Projection, T: TokenTable> {
    best: Option<(f64, usize, Seq2Seq<P, T>)>,
    recent: std::collections::VecDeque<Seq2Seq<P, T>>,
    scores: Vec<(usize, f64)>,
    last_update: Option<usize>,
}

impl<P: Projection, T: TokenTable> Default for Candidates<P, T> {
    fn default() -> Self {
        Self {
            best: None,
            recent: Default::default(),
            scores: Vec::new(),
            last_update: None,
        }
    }
}

impl<P: Projection, T: TokenTable> Candidates<P, T> {
    fn offer(
        &mut self,
        model: &Seq2Seq<P, T>,
        update: usize,
        how: Checkpoint,
        validate: &mut Option<Validate<'_, P, T>>,
    ) {
        self.last_update = Some(update);
        match how {
            Checkpoint::Last => {}
            Checkpoint::BestValid => {
                let Some(v) = validate.as_mut() else { return };
                let score = v(model);
                self.scores.push((update, score));
                // NaN never wins; a later checkpoint must be strictly better.
                if !score.is_nan() && self.best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                    self.best = Some((score, update, model.clone()));
                }
            }
            Checkpoint::AverageLast(n) => {
                self.recent.push_back(model.clone());
                while self.recent.len() > n {
                    self.recent.pop_front();
                }
            }
        }
    }
}

/// Beam-search translations of `srcs` (ids without `</s>`), in input order. Sentences are
/// decoded in length-sorted groups of `batch` (fairseq-generate's `--batch-size`).
pub fn translate<P: Projection, T: TokenTable>(
    model: &Seq2Seq<P, T>,
    srcs: &[Vec<u32>],
    beam: &BeamConfig,
    batch: usize,
    device: &Device,
    mut on_batch: impl FnMut(usize, usize),
) -> Vec<Vec<u32>> {
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    order.sort_by_key(|&i| srcs[i].len());
    let mut out = vec![Vec::new(); srcs.len()];
    let mut done = 0;
    for chunk in order.chunks(batch.max(1)) {
        let group: Vec<&[u32]> = chunk.iter().map(|&i| srcs[i].as_slice()).collect();
        for (&i, h) in chunk.iter().zip(beam_search(model, &group, beam, device)) {
            out[i] = h.tokens;
        }
        done += chunk.len();
        on_batch(done, srcs.len());
    }
    out
}
