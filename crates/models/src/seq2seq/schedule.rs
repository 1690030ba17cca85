//! fairseq's `inverse_sqrt` learning-rate schedule.

use serde::{Deserialize, Serialize};

/// Linear warm-up from `init` to `peak` over `warmup` updates, then `peak·√(warmup/t)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InverseSqrt {
    pub peak: f64,
    pub warmup: usize,
    pub init: f64,
}

impl InverseSqrt {
    /// The learning rate for update `t` (1-based, as fairseq's `step_update(num_updates)`).
    pub fn at(&self, t: usize) -> f64 {
        if self.warmup > 0 && t < self.warmup {
            self.init + t as f64 * (self.peak - self.init) / self.warmup as f64
        } else {
            self.peak * (self.warmup.max(1) as f64 / t.max(1) as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula_at_the_spec_points() {
        // Spec M13: IWSLT's 5e-4 with 4000 warm-up updates from 0.
        let s = InverseSqrt {
            peak: 5e-4,
            warmup: 4000,
            init: 0.0,
        };
        assert!((s.at(1) - 5e-4 / 4000.0).abs() < 1e-15);
        assert!((s.at(4000) - 5e-4).abs() < 1e-15);
        assert!((s.at(16000) - 2.5e-4).abs() < 1e-15);
        let w = InverseSqrt {
            peak: 1e-3,
            warmup: 4000,
            init: 1e-7,
        };
        assert!((w.at(2000) - (1e-7 + 2000.0 * (1e-3 - 1e-7) / 4000.0)).abs() < 1e-15);
    }
}
