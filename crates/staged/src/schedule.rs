//! Learning-rate schedules and the scaling-law arithmetic of spec §2, §6 and §8.

/// Linear warm-up then linear decay (HF `get_linear_schedule_with_warmup`), optionally with the
/// post-growth restart: from step `R` a linear ramp over `w` steps up to the base schedule's
/// value at `R + w` (`get_restart_linear_schedule_with_warmup`).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub base_lr: f64,
    pub warmup: usize,
    pub total: usize,
    /// (restart step R, re-warm-up length w).
    pub restart: Option<(usize, usize)>,
}

impl Schedule {
    pub fn new(base_lr: f64, warmup: usize, total: usize) -> Self {
        Self {
            base_lr,
            warmup,
            total,
            restart: None,
        }
    }

    /// The base multiplier f(t).
    pub fn base_factor(&self, t: usize) -> f64 {
        let (t, w, tt) = (t as f64, self.warmup as f64, self.total as f64);
        if t < w {
            t / w
        } else {
            ((tt - t) / (tt - w).max(1.0)).max(0.0)
        }
    }

    /// The multiplier at step t, restart included (spec §6; the branch follows t vs W).
    pub fn factor(&self, t: usize) -> f64 {
        if let Some((r, w)) = self.restart {
            if t >= r && t < r + w {
                let ramp = (t - r) as f64 / w as f64;
                let (ww, tt) = (self.warmup as f64, self.total as f64);
                return if t < self.warmup {
                    ramp * ((r + w) as f64 / ww)
                } else {
                    ramp * ((tt - r as f64 - w as f64) / (tt - ww))
                };
            }
        }
        self.base_factor(t)
    }

    pub fn lr(&self, t: usize) -> f64 {
        self.base_lr * self.factor(t)
    }

    /// The schedule after growth: the target size's base LR, restart at `r` with a `w`-step
    /// re-warm-up (the caller sets the state's step to `r`).
    pub fn restart(&self, base_lr: f64, r: usize, w: usize) -> Self {
        Self {
            base_lr,
            restart: Some((r, w)),
            ..self.clone()
        }
    }
}

/// Non-embedding parameters `N = 12 L d²`.
pub fn non_embedding_params(layers: usize, d: usize) -> f64 {
    12.0 * layers as f64 * (d * d) as f64
}

/// The official LR heuristic, with a base-10 log (spec §2: it reproduces the code's table).
pub fn lr_heuristic(n: f64) -> f64 {
    0.003239 - 0.0001395 * n.log10()
}

/// Kaplan et al. constants used by the code (spec §8.1).
pub mod kaplan {
    pub const N_C: f64 = 8.8e13;
    pub const ALPHA_N: f64 = 0.076;
    pub const S_C: f64 = 2.1e3;
    pub const ALPHA_S: f64 = 0.76;
    pub const B_STAR: f64 = 2.1e8;
    pub const ALPHA_B: f64 = 0.21;

    /// L(N, S) at B = B_crit: `(N_c/N)^αN + (2 S_c / S)^αS`.
    pub fn loss(n: f64, s: f64) -> f64 {
        (N_C / n).powf(ALPHA_N) + (2.0 * S_C / s).powf(ALPHA_S)
    }

    /// Steps a model of size N needs to reach loss L (infinite when L is below its limit).
    pub fn steps(n: f64, l: f64) -> f64 {
        let gap = l - (N_C / n).powf(ALPHA_N);
        if gap <= 0.0 {
            f64::INFINITY
        } else {
            2.0 * S_C / gap.powf(1.0 / ALPHA_S)
        }
    }

    /// Critical batch in tokens at loss L.
    pub fn b_crit(l: f64) -> f64 {
        B_STAR / l.powf(1.0 / ALPHA_B)
    }
}

/// Tokens per optimizer step of the paper runs (512 sequences x 1024 tokens).
pub const TOKENS_PER_STEP: f64 = 524_288.0;

/// Compute saving of a growth schedule (spec §8.4): `(C_tgt(S*) - C_small(S_g)) / C_tgt(S_opt)`
/// with `C(s) = 6 N · tokens · s`.
pub fn saving(n_small: f64, n_target: f64, s_grow: f64, s_star: f64, s_opt: f64) -> f64 {
    let c = |n: f64, s: f64| 6.0 * n * TOKENS_PER_STEP * s;
    (c(n_target, s_star) - c(n_small, s_grow)) / c(n_target, s_opt)
}

/// S*: the step of the from-scratch target curve `(step, loss)` whose loss is closest to
/// `loss` (the notebook's nearest-value match).
pub fn matching_step(curve: &[(usize, f64)], loss: f64) -> Option<usize> {
    curve
        .iter()
        .min_by(|a, b| (a.1 - loss).abs().total_cmp(&(b.1 - loss).abs()))
        .map(|p| p.0)
}
