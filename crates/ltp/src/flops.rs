//! The official MAC model (`Trainer.compute_macs`, spec §9): per layer and example,
//! `2·d·n_a² + 4·d²·n_a + 8·d²·n_f` with `n_a` live tokens entering the layer and `n_f` after its
//! pruning decision (FFN width assumed 4d). Embeddings, classifier, softmax, LayerNorm and biases
//! are not counted.

/// MACs of one layer.
pub fn layer_macs(d: usize, n_attn: usize, n_ffn: usize) -> f64 {
    let (d, na, nf) = (d as f64, n_attn as f64, n_ffn as f64);
    2.0 * d * na * na + 4.0 * d * d * na + 8.0 * d * d * nf
}

/// Live-token counts of a batch: `attn[l][b]`, `ffn[l][b]`, and the unpadded lengths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveCounts {
    pub attn: Vec<Vec<usize>>,
    pub ffn: Vec<Vec<usize>>,
    pub lengths: Vec<usize>,
}

impl LiveCounts {
    /// (MACs with pruning, MACs unpruned) summed over the examples.
    pub fn macs(&self, d: usize) -> (f64, f64) {
        let layers = self.attn.len();
        let mut pruned = 0.0;
        for l in 0..layers {
            for b in 0..self.lengths.len() {
                pruned += layer_macs(d, self.attn[l][b], self.ffn[l][b]);
            }
        }
        let base: f64 = self
            .lengths
            .iter()
            .map(|&n| layers as f64 * layer_macs(d, n, n))
            .sum();
        (pruned, base)
    }

    /// Mean live tokens per layer (after each layer's decision), over the examples.
    pub fn mean_kept(&self) -> Vec<f64> {
        self.ffn
            .iter()
            .map(|l| l.iter().sum::<usize>() as f64 / l.len().max(1) as f64)
            .collect()
    }
}

/// Accumulates MACs over a dataset: relative FLOPs is a ratio of totals, not a mean of ratios.
#[derive(Debug, Clone, Default)]
pub struct FlopsMeter {
    pub pruned: f64,
    pub base: f64,
    pub examples: usize,
    kept_sum: Vec<f64>,
}

impl FlopsMeter {
    pub fn add(&mut self, c: &LiveCounts, d: usize) {
        let (p, b) = c.macs(d);
        self.pruned += p;
        self.base += b;
        let n = c.lengths.len();
        if self.kept_sum.is_empty() {
            self.kept_sum = vec![0.0; c.ffn.len()];
        }
        for (s, m) in self.kept_sum.iter_mut().zip(c.mean_kept()) {
            *s += m * n as f64;
        }
        self.examples += n;
    }

    /// Σ pruned MACs / Σ unpruned MACs (1 when nothing was measured).
    pub fn relative(&self) -> f64 {
        if self.base > 0.0 {
            self.pruned / self.base
        } else {
            1.0
        }
    }

    /// GFLOPs per example (2 FLOPs per MAC), as the reference reports.
    pub fn gflops(&self) -> f64 {
        2.0 * self.pruned / self.examples.max(1) as f64 / 1e9
    }

    /// Mean kept tokens per layer over every example seen.
    pub fn kept_per_layer(&self) -> Vec<f64> {
        self.kept_sum
            .iter()
            .map(|s| s / self.examples.max(1) as f64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vectors() {
        assert_eq!(layer_macs(768, 3, 1), 11_810_304.0);
        assert_eq!(layer_macs(768, 3, 3), 21_247_488.0);
        // 12 layers at n = 128 equals the Kwon et al. cost model.
        assert_eq!(12.0 * layer_macs(768, 128, 128), 11_173_625_856.0);
        // Baseline GFLOPs at the spec's average lengths.
        for (n, g) in [
            (25, 4.27),
            (31, 5.30),
            (40, 6.85),
            (50, 8.59),
            (53, 9.11),
            (66, 11.37),
        ] {
            let got = 2.0 * 12.0 * layer_macs(768, n, n) / 1e9;
            assert!((got - g).abs() < 0.006, "n={n}: {got}");
        }
    }

    #[test]
    fn relative_flops_is_one_unpruned_and_at_most_one() {
        let c = LiveCounts {
            attn: vec![vec![5, 9], vec![5, 9]],
            ffn: vec![vec![5, 9], vec![5, 9]],
            lengths: vec![5, 9],
        };
        let mut m = FlopsMeter::default();
        m.add(&c, 64);
        assert!((m.relative() - 1.0).abs() < 1e-12);
        let c2 = LiveCounts {
            attn: vec![vec![5, 9], vec![3, 4]],
            ffn: vec![vec![3, 4], vec![1, 2]],
            lengths: vec![5, 9],
        };
        let mut m2 = FlopsMeter::default();
        m2.add(&c2, 64);
        assert!(m2.relative() < 1.0);
        assert_eq!(m2.kept_per_layer(), vec![3.5, 1.5]);
    }
}
