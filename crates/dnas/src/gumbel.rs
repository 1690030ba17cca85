//! The architecture distribution: one logit vector θ_k per categorical choice (spec §4.1),
//! relaxed per example by Gumbel-softmax, sampled hard by Gumbel-argmax.
//!
//! The noise is drawn on the host from a seeded ChaCha stream and uploaded, so the same seed
//! gives the same draws on every backend (§9.14) and a test can replay them; sampling stays
//! outside the supernet, which is a deterministic function of its masks.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The learnable logits: `θ_k ∈ R^{n_k}`, initialised to 0 (the uniform distribution).
#[derive(Module, Debug)]
pub struct Theta {
    pub logits: Vec<Param<Tensor<1>>>,
}

/// A standard Gumbel draw `−ln(−ln U)`, with `U` kept off 0 and 1.
pub fn gumbel(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().clamp(1e-12, 1.0 - 1e-12);
    -(-u.ln()).ln()
}

impl Theta {
    /// Zero logits for choices of sizes `sizes`.
    pub fn zeros(sizes: &[usize], device: &Device) -> Self {
        Self {
            logits: sizes
                .iter()
                .map(|&n| Param::from_tensor(Tensor::zeros([n], device)))
                .collect(),
        }
    }

    /// Given logit values (one vector per choice).
    pub fn from_values(values: &[Vec<f32>], device: &Device) -> Self {
        Self {
            logits: values
                .iter()
                .map(|v| {
                    Param::from_tensor(Tensor::from_data(
                        TensorData::new(v.clone(), [v.len()]),
                        device,
                    ))
                })
                .collect(),
        }
    }

    pub fn sizes(&self) -> Vec<usize> {
        self.logits.iter().map(|t| t.dims()[0]).collect()
    }

    /// θ read back to the host.
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.logits
            .iter()
            .map(|t| {
                t.val()
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap_or_default()
            })
            .collect()
    }

    /// `softmax(θ_k)` per choice: the distribution `hard_sample` draws from.
    pub fn probs(&self) -> Vec<Vec<f64>> {
        self.values().iter().map(|v| softmax_host(v)).collect()
    }

    /// Per-example relaxed one-hot masks, `[B, n_k]` per choice: row `b` is
    /// `softmax((θ_k + g_b) / τ)` with its own Gumbel noise `g_b` (spec pitfall 1: one
    /// architecture sample per example, not per batch). Differentiable in θ.
    pub fn soft_sample(
        &self,
        tau: f64,
        batch: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Vec<Tensor<2>> {
        self.logits
            .iter()
            .map(|t| {
                let n = t.dims()[0];
                let g: Vec<f32> = (0..batch * n).map(|_| gumbel(rng) as f32).collect();
                let g = Tensor::<2>::from_data(TensorData::new(g, [batch, n]), device);
                soft_from_noise(t.val(), g, tau)
            })
            .collect()
    }

    /// One architecture: per choice `argmax_i(θ_k[i] + g_i)`, a draw from
    /// `Categorical(softmax(θ_k))` (τ does not move the argmax).
    pub fn hard_sample(&self, rng: &mut ChaCha8Rng) -> Vec<usize> {
        self.values()
            .iter()
            .map(|v| hard_from_values(v, rng))
            .collect()
    }
}

/// `softmax((θ + g) / τ)` over the last dimension, `θ` `[n]` broadcast over `g` `[B, n]`.
pub fn soft_from_noise(theta: Tensor<1>, g: Tensor<2>, tau: f64) -> Tensor<2> {
    let n = theta.dims()[0];
    softmax((theta.reshape([1, n]) + g).div_scalar(tau), 1)
}

/// Gumbel-argmax of host logits.
pub fn hard_from_values(v: &[f32], rng: &mut ChaCha8Rng) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &x) in v.iter().enumerate() {
        let s = x as f64 + gumbel(rng);
        if s > best.1 {
            best = (i, s);
        }
    }
    best.0
}

pub fn softmax_host(v: &[f32]) -> Vec<f64> {
    let m = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let e: Vec<f64> = v.iter().map(|&x| (x as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Exact one-hot masks `[B, n_k]` for the choices `choice` (what the one-hot reduction
/// property feeds the supernet).
pub fn one_hot_masks(
    sizes: &[usize],
    choice: &[usize],
    batch: usize,
    device: &Device,
) -> Vec<Tensor<2>> {
    sizes
        .iter()
        .zip(choice)
        .map(|(&n, &c)| {
            let mut v = vec![0f32; batch * n];
            for b in 0..batch {
                v[b * n + c] = 1.0;
            }
            Tensor::from_data(TensorData::new(v, [batch, n]), device)
        })
        .collect()
}
