//! The search manager (`SearchManager`, spec §4.2): warm-up, then weights and architecture
//! segments in alternation over their own data splits, each step a Gumbel-softmax forward at
//! the segment's temperature, the cost-regularised loss, one backward, the global gradient
//! norm of *all* supernet parameters clipped, and a step of only the segment's optimiser.
//!
//! Both optimisers are plain SGD (weight decay 0; the reference's dense embedding gradients
//! rule out sparse optimisers, §8) with `lr0 · base^e` per segment. Architectures are sampled
//! (Gumbel-argmax) after the mask segments the sampling schedule names.
//!
//! Loaders run in order, without shuffling, and skip the final incomplete batch: the split was
//! shuffled once up front ("total" randomisation, pitfall 5).

use std::ops::Range;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use kiln_models::dlrm::{bce, clip_factor, grad_sq_norm, CtrRows, DlrmConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cost::CostLoss;
use crate::gumbel::Theta;
use crate::plan::{lr_at, parse_samples, plan, Segment, Stage};
use crate::space::SuperNet;
use crate::DnasError;

/// The supernet's training settings (paper values in the doc of each field).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Supernet epochs `E` over the weights split (paper 5).
    pub epochs: f64,
    /// Warm-up epochs `W` (paper 1).
    pub warmup: f64,
    /// Alternation period `a` (paper 1).
    pub alternation: f64,
    /// τ0 (paper 1.0) and its decay rate `r` (paper {0.1, 0.2}).
    pub tau0: f64,
    pub tau_decay: f64,
    /// Weights SGD lr (paper {1.0, 1.5, 2.0}) and architecture SGD lr (0.001-0.002).
    pub weights_lr: f64,
    pub arch_lr: f64,
    /// Per-epoch lr factor (paper 0.9).
    pub lr_base: f64,
    /// Batch size of both loaders (paper 1024).
    pub batch_size: usize,
    /// Global gradient-norm clip (paper 100).
    pub clip: f64,
    pub cost: CostLoss,
    /// Sampling schedule, "arch epochs completed:count" (paper "4:4").
    pub samples: String,
    pub seed: u64,
}

/// One sampled architecture (the official sample record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchSample<A = DlrmConfig> {
    pub index: usize,
    pub choice: Vec<usize>,
    pub config: A,
    /// Its cost in the space's unit (FLOPs or parameters).
    pub cost: f64,
    /// `softmax(θ)` when it was drawn.
    pub probs: Vec<Vec<f64>>,
    pub weights_epochs: f64,
    pub mask_epochs: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepLog {
    pub stage: Stage,
    pub step: usize,
    pub tau: f64,
    pub lr: f64,
    pub loss: f64,
    pub task_loss: f64,
    /// Mean expected cost of the batch.
    pub cost: f64,
    pub grad_norm: f64,
}

pub struct SearchOutcome<N, A = DlrmConfig> {
    pub net: N,
    pub theta: Theta,
    pub plan: Vec<Segment>,
    pub samples: Vec<ArchSample<A>>,
    pub log: Vec<StepLog>,
    /// `(architecture epochs done, softmax(θ))` after every architecture step.
    pub probs: Vec<(f64, Vec<Vec<f64>>)>,
    pub seconds: f64,
}

/// The two optimisers (SGD, no momentum, weight decay 0; the lr is passed per step).
pub struct Optimisers {
    pub weights: ModuleOptimizer,
    pub arch: ModuleOptimizer,
}

impl Default for Optimisers {
    fn default() -> Self {
        Self {
            weights: SgdConfig::new().init(),
            arch: SgdConfig::new().init(),
        }
    }
}

/// One step of `stage` on `rows` (spec §4.2, "one step"). Returns the updated supernet and θ:
/// a weights step leaves θ untouched and an architecture step leaves the weights untouched
/// (§9.7). Everything lives on the autodiff device `ad`.
#[allow(clippy::too_many_arguments)]
pub fn step<N: SuperNet>(
    net: N,
    theta: Theta,
    stage: Stage,
    rows: &CtrRows,
    tau: f64,
    lr: f64,
    cfg: &SearchConfig,
    optim: &mut Optimisers,
    rng: &mut ChaCha8Rng,
    ad: &Device,
) -> Result<(N, Theta, StepLog), DnasError> {
    step_with(
        net,
        theta,
        stage,
        rows.len(),
        |n: &N, masks: &[Tensor<2>]| {
            let (p, cost) = n.forward(rows, masks, ad);
            (bce(p, rows.label_tensor(ad)), cost)
        },
        tau,
        lr,
        cfg,
        optim,
        rng,
        ad,
    )
}

/// [`step`] for any supernet: `batch_loss` gives the task loss (a scalar) and the expected cost
/// per example `[b]` of this step's batch under the masks (the extension point of the
/// framework: only the supernet, its data and its loss change, spec §7).
#[allow(clippy::too_many_arguments)]
pub fn step_with<N: Module>(
    net: N,
    theta: Theta,
    stage: Stage,
    b: usize,
    batch_loss: impl FnOnce(&N, &[Tensor<2>]) -> (Tensor<1>, Tensor<1>),
    tau: f64,
    lr: f64,
    cfg: &SearchConfig,
    optim: &mut Optimisers,
    rng: &mut ChaCha8Rng,
    ad: &Device,
) -> Result<(N, Theta, StepLog), DnasError> {
    let masks = theta.soft_sample(tau, b, rng, ad);
    let (task, cost) = batch_loss(&net, &masks);
    let loss = cfg.cost.apply(task.clone(), cost.clone());
    let mut grads = loss.backward();
    let n2 = match (grad_sq_norm(&net, &grads), grad_sq_norm(&theta, &grads)) {
        (Some(a), Some(t)) => a + t,
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => Tensor::zeros([1], ad).inner(),
    };
    let vals = Tensor::cat(
        vec![
            loss.inner(),
            task.inner(),
            cost.inner().mean(),
            n2.reshape([1]),
        ],
        0,
    )
    .into_data()
    .try_into_vec::<f32>()
    .unwrap_or_default();
    let (l, t, c, norm) = (
        vals[0] as f64,
        vals[1] as f64,
        vals[2] as f64,
        (vals[3] as f64).sqrt(),
    );
    if !l.is_finite() {
        return Err(DnasError::NonFinite {
            stage: format!("{stage:?}"),
            step: 0,
            loss: l,
        });
    }
    let s = clip_factor(norm, cfg.clip);
    let (net, theta) = match stage {
        Stage::Warmup | Stage::Weights => {
            let g = GradientsParams::from_module(&mut grads, &net);
            (optim.weights.step(lr * s, net, g), theta)
        }
        Stage::Mask => {
            let g = GradientsParams::from_module(&mut grads, &theta);
            (net, optim.arch.step(lr * s, theta, g))
        }
    };
    Ok((
        net,
        theta,
        StepLog {
            stage,
            step: 0,
            tau,
            lr,
            loss: l,
            task_loss: t,
            cost: c,
            grad_norm: norm,
        },
    ))
}

/// Full batches per epoch and the nominal count the planner's fractions apply to
/// (`int(1 + len/B)`, as the reference computes it).
fn batch_counts(len: usize, b: usize) -> (usize, usize) {
    (len / b, 1 + len / b)
}

/// Runs the whole plan: the supernet on `weights_rows`, θ on `arch_rows`. `on_step` sees
/// every step (progress bars).
pub fn search<N: SuperNet>(
    net: N,
    weights_rows: &CtrRows,
    arch_rows: &CtrRows,
    cfg: &SearchConfig,
    device: &Device,
    on_step: impl FnMut(&StepLog, usize, usize),
) -> Result<SearchOutcome<N>, DnasError> {
    let sizes = net.choice_sizes();
    search_with(
        net,
        &sizes,
        weights_rows.len(),
        arch_rows.len(),
        cfg,
        device,
        |n: &N, split, r: Range<usize>, masks: &[Tensor<2>], ad: &Device| {
            let rows = match split {
                Split::Weights => weights_rows.slice(r.start, r.end),
                Split::Arch => arch_rows.slice(r.start, r.end),
            };
            let (p, cost) = n.forward(&rows, masks, ad);
            (bce(p, rows.label_tensor(ad)), cost)
        },
        |n: &N, choice: &[usize]| (n.derive(choice), n.arch_cost(choice)),
        on_step,
    )
}

/// Which split a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The weights split (warm-up and weights segments).
    Weights,
    /// The architecture split (mask segments).
    Arch,
}

/// [`search`] for any supernet with `sizes` choice vectors over a weights split of
/// `weights_len` rows and an architecture split of `arch_len`: `batch_loss` gives a batch's task
/// loss and per-example cost (the rows `range` of `split`), `derive` the architecture and its
/// cost for hard choices. The toy CNN of the extension example runs through it.
#[allow(clippy::too_many_arguments)]
pub fn search_with<N: Module, A>(
    net: N,
    sizes: &[usize],
    weights_len: usize,
    arch_len: usize,
    cfg: &SearchConfig,
    device: &Device,
    mut batch_loss: impl FnMut(&N, Split, Range<usize>, &[Tensor<2>], &Device) -> (Tensor<1>, Tensor<1>),
    derive: impl Fn(&N, &[usize]) -> (A, f64),
    mut on_step: impl FnMut(&StepLog, usize, usize),
) -> Result<SearchOutcome<N, A>, DnasError> {
    let started = Instant::now();
    let samples = parse_samples(&cfg.samples).map_err(DnasError::Invalid)?;
    let segments = plan(
        cfg.epochs,
        cfg.warmup,
        cfg.alternation,
        cfg.tau0,
        cfg.tau_decay,
        &samples,
    );
    let b = cfg.batch_size;
    if b == 0 || weights_len < b || arch_len < b {
        return Err(DnasError::Invalid(format!(
            "batch size {b} needs at least one full batch in both splits (weights {} rows, architecture {} rows)",
            weights_len,
            arch_len
        )));
    }
    let ad = device.clone().autodiff();
    let mut net = net.to_device(&ad).train();
    let mut theta = Theta::zeros(sizes, &ad);
    let mut optim = Optimisers::default();
    let mut noise = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut sampler = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5A5A_5A5A);
    let total_steps: usize = segments
        .iter()
        .map(|s| {
            let len = if s.stage == Stage::Mask {
                arch_len
            } else {
                weights_len
            };
            let (full, nominal) = batch_counts(len, b);
            let (skip, train) = s.batches(nominal);
            train.min(full.saturating_sub(skip))
        })
        .sum();
    let mut log = Vec::new();
    let mut probs = Vec::new();
    let mut out_samples = Vec::new();
    let mut done = 0usize;
    let mut weights_done = 0.0;
    for seg in &segments {
        let (split, len, lr) = match seg.stage {
            Stage::Mask => (
                Split::Arch,
                arch_len,
                lr_at(cfg.arch_lr, cfg.lr_base, seg.start),
            ),
            _ => (
                Split::Weights,
                weights_len,
                lr_at(cfg.weights_lr, cfg.lr_base, seg.start),
            ),
        };
        let (full, nominal) = batch_counts(len, b);
        let (skip, train) = seg.batches(nominal);
        let end = (skip + train).min(full);
        for (k, i) in (skip..end).enumerate() {
            let (n, t, mut entry) = step_with(
                net,
                theta,
                seg.stage,
                b,
                |n: &N, m: &[Tensor<2>]| batch_loss(n, split, i * b..(i + 1) * b, m, &ad),
                seg.tau,
                lr,
                cfg,
                &mut optim,
                &mut noise,
                &ad,
            )
            .map_err(|e| match e {
                DnasError::NonFinite { stage, loss, .. } => DnasError::NonFinite {
                    stage,
                    step: done,
                    loss,
                },
                other => other,
            })?;
            net = n;
            theta = t;
            entry.step = done;
            done += 1;
            on_step(&entry, done, total_steps);
            if seg.stage == Stage::Mask {
                let at = seg.start + (k + 1) as f64 / nominal as f64;
                probs.push((at, theta.probs()));
            }
            log.push(entry);
        }
        if seg.stage != Stage::Mask {
            weights_done = seg.end;
        }
        for _ in 0..seg.sample {
            let choice = theta.hard_sample(&mut sampler);
            let (config, cost) = derive(&net, &choice);
            out_samples.push(ArchSample {
                index: out_samples.len(),
                config,
                cost,
                choice,
                probs: theta.probs(),
                weights_epochs: weights_done,
                mask_epochs: seg.end,
            });
        }
    }
    Ok(SearchOutcome {
        net: net.valid(),
        theta: theta.valid(),
        plan: segments,
        samples: out_samples,
        log,
        probs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The random-search control: among `draws` uniform architectures (θ = 0), the one whose cost
/// is closest to `target` (log scale), so the control is compared at equal cost.
pub fn random_at_cost<N: SuperNet>(
    net: &N,
    target: f64,
    draws: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, f64) {
    let sizes = net.choice_sizes();
    let zeros: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
    let mut best: Option<(Vec<usize>, f64, f64)> = None;
    for _ in 0..draws.max(1) {
        let choice: Vec<usize> = zeros
            .iter()
            .map(|v| crate::gumbel::hard_from_values(v, rng))
            .collect();
        let c = net.arch_cost(&choice);
        let gap = (c.max(1.0).ln() - target.max(1.0).ln()).abs();
        if best.as_ref().is_none_or(|b| gap < b.2) {
            best = Some((choice, c, gap));
        }
    }
    let (c, cost, _) = best.expect("at least one draw");
    (c, cost)
}
