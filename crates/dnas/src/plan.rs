//! The search's epoch plan (`calc_epoch_training_params`, spec §4.2): warm-up segments over the
//! weights split, then alternating weights and architecture segments of `a` epochs each, the
//! temperature decaying with the architecture epochs done, and architecture samples drawn after
//! the mask segments the sampling schedule names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a segment trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Weights over the weights split at τ0, before any architecture step.
    Warmup,
    /// Weights over the weights split.
    Weights,
    /// θ over the architecture split.
    Mask,
}

/// One segment: epochs `[start, end)` of its loader (weights epochs for warm-up and weights
/// segments, architecture epochs for mask segments), at temperature `tau`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub stage: Stage,
    pub start: f64,
    pub end: f64,
    pub tau: f64,
    /// Architectures to sample once this segment ends.
    pub sample: usize,
}

impl Segment {
    /// Batches to skip and to train for a loader of `n_batches` batches per epoch: fractional
    /// epochs resume `frac(start)·n` batches in and train `(end − start)·n` batches.
    pub fn batches(&self, n_batches: usize) -> (usize, usize) {
        let n = n_batches as f64;
        let skip = (self.start.fract() * n).round() as usize;
        let train = ((self.end - self.start) * n).round() as usize;
        (skip, train)
    }
}

/// The plan for `total` supernet epochs with `warmup` warm-up epochs and alternation period
/// `alternation`; τ = τ0·exp(−decay·e_m) with e_m the architecture epochs done; `samples` maps
/// "architecture epochs completed" to the number of architectures to draw then.
pub fn plan(
    total: f64,
    warmup: f64,
    alternation: f64,
    tau0: f64,
    decay: f64,
    samples: &BTreeMap<String, usize>,
) -> Vec<Segment> {
    let mut out = Vec::new();
    if alternation <= 0.0 {
        return out;
    }
    let key = |e: f64| -> Option<usize> {
        samples
            .iter()
            .find(|(k, _)| k.parse::<f64>().is_ok_and(|x| (x - e).abs() < 1e-9))
            .map(|(_, &v)| v)
    };
    let mut c = 0.0;
    while c < total - 1e-9 {
        let end = c + alternation;
        if c < warmup - 1e-9 {
            out.push(Segment {
                stage: Stage::Warmup,
                start: c,
                end,
                tau: tau0,
                sample: 0,
            });
        } else {
            let em = c - warmup;
            let tau = tau0 * (-decay * em).exp();
            out.push(Segment {
                stage: Stage::Weights,
                start: c,
                end,
                tau,
                sample: 0,
            });
            out.push(Segment {
                stage: Stage::Mask,
                start: em,
                end: em + alternation,
                tau,
                sample: key(em + alternation).unwrap_or(0),
            });
        }
        c = end;
    }
    out
}

/// `lr0 · base^e`, with `e` the epochs of this optimiser's loader started so far.
pub fn lr_at(lr0: f64, base: f64, epochs_started: f64) -> f64 {
    lr0 * base.powf(epochs_started)
}

/// Parses the sampling schedule `"4:4"` / `"2:1,4:4"` (arch epochs completed : archs to draw).
pub fn parse_samples(s: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (e, n) = part.split_once(':').ok_or_else(|| {
            format!("sampling schedule entry `{part}`: expected epochs:count, e.g. 4:4")
        })?;
        e.trim()
            .parse::<f64>()
            .map_err(|_| format!("sampling schedule entry `{part}`: `{e}` is not a number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("sampling schedule entry `{part}`: `{n}` is not a count"))?;
        out.insert(e.trim().to_string(), n);
    }
    Ok(out)
}
