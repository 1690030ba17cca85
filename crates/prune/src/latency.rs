//! Latency on the device kiln runs on: the lookup tables of the latency-constrained search
//! (spec §4.3, official `generate_lut.py`: one MHA block with n heads, one FFN block with n
//! neurons) and the dense-vs-pruned speedups the tables report.
//!
//! Every head count is measured. FFN widths are measured at a stride and interpolated linearly in
//! between (all 3,072 widths of BERT-base, as the reference measures on a GPU, take hours on a
//! CPU); [`LutReport`] measures the midpoints the interpolation skipped and says whether its
//! error is below the measurement noise, so a stride too coarse for the device shows up.
//!
//! Speedups are measured *interleaved* ([`interleaved_speedup`]): dense and pruned runs
//! alternate on the same input in the same process, the order flipping every pair, so a slow
//! phase of a shared 2-core machine hits both sides; the ratio of each pair is kept and the
//! median and quartiles of those ratios are reported.

use burn::tensor::{Device, Tensor};
use kiln_models::bert::{attention_bias, PrunePlan};
use kiln_models::{BertConfig, BertModel};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::search::LatencyLut;
use crate::PruneError;

/// Times `f` `runs` times after `warmup` untimed calls, syncing the device after each; sorted.
fn samples<T>(device: &Device, warmup: usize, runs: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    for _ in 0..warmup {
        std::hint::black_box(f());
        let _ = device.sync();
    }
    let mut v: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            std::hint::black_box(f());
            let _ = device.sync();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// The `q`-quantile of sorted values (linear interpolation).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// One FFN width measured only to check the interpolation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterpolationCheck {
    pub neurons: usize,
    pub interpolated_s: f64,
    pub measured_s: f64,
    /// |difference| of two medians of this width measured apart in time: the repeatability
    /// the interpolation error is compared with (the spread within one burst of runs is far
    /// smaller than the drift between bursts, so it would understate the noise).
    pub noise_s: f64,
}

/// The lookup tables and how far to trust them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LutReport {
    pub lut: LatencyLut,
    pub batch: usize,
    pub seq: usize,
    pub runs: usize,
    pub ffn_stride: usize,
    /// Widths between the measured ones, measured and compared with the interpolation.
    pub checks: Vec<InterpolationCheck>,
}

impl LutReport {
    /// Median |interpolated − measured| over the checks, and the median noise of those widths.
    pub fn interpolation_vs_noise(&self) -> (f64, f64) {
        let mut err: Vec<f64> = self
            .checks
            .iter()
            .map(|c| (c.interpolated_s - c.measured_s).abs())
            .collect();
        let mut noise: Vec<f64> = self.checks.iter().map(|c| c.noise_s).collect();
        err.sort_by(|a, b| a.total_cmp(b));
        noise.sort_by(|a, b| a.total_cmp(b));
        (quantile(&err, 0.5), quantile(&noise, 0.5))
    }
}

/// Measures the tables for `model`'s first layer at `batch x seq`: every head count, FFN widths
/// every `ffn_stride` neurons (linear in between), plus the midpoints of the first strides as
/// interpolation checks.
pub fn measure_lut(
    model: &BertModel,
    config: &BertConfig,
    batch: usize,
    seq: usize,
    ffn_stride: usize,
    runs: usize,
    device: &Device,
) -> Result<LutReport, PruneError> {
    let heads = model.heads_per_layer()[0];
    let neurons = model.neurons_per_layer()[0];
    let layers = model.num_layers();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let hidden = config.hidden_size;
    let x_data: Vec<f32> = (0..batch * seq * hidden)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let x = Tensor::<1>::from_data(
        burn::tensor::TensorData::new(x_data, [batch * seq * hidden]),
        device,
    )
    .reshape([batch, seq, hidden]);
    let mask = Tensor::<2, burn::tensor::Int>::ones([batch, seq], device);
    let bias = attention_bias(&mask);
    let shrink = |nh: usize, nf: usize| -> Result<BertModel, PruneError> {
        let plan = PrunePlan::keep(
            &vec![(0..nh).collect(); layers],
            &vec![(0..nf).collect(); layers],
        );
        Ok(model.shrink(config, &plan)?.0)
    };
    let warmup = 2;
    let mut mha = Vec::with_capacity(heads);
    for n in 1..=heads {
        let m = shrink(n, neurons)?;
        let layer = &m.encoder.layer[0];
        let t = samples(device, warmup, runs, || {
            let ctx = layer.attention.self_attn.context(x.clone(), bias.clone());
            let merged = layer.attention.self_attn.merge(ctx, None);
            layer
                .attention
                .output
                .forward_pub(merged, x.clone())
                .into_data()
        });
        mha.push(quantile(&t, 0.5));
    }
    let ffn_at = |n: usize| -> Result<(f64,), PruneError> {
        let m = shrink(heads, n)?;
        let layer = &m.encoder.layer[0];
        let t = samples(device, warmup, runs, || {
            let h = burn::tensor::activation::gelu(kiln_models::dense(
                &layer.intermediate.dense,
                x.clone(),
            ));
            layer.output.forward_pub(h, x.clone()).into_data()
        });
        Ok((quantile(&t, 0.5),))
    };
    let stride = ffn_stride.max(1);
    let mut points: Vec<usize> = (1..=neurons).step_by(stride).collect();
    if points.last() != Some(&neurons) {
        points.push(neurons);
    }
    let mut measured = Vec::new();
    for &n in &points {
        measured.push((n, ffn_at(n)?.0));
    }
    let interpolate = |n: usize| -> f64 {
        let j = measured
            .iter()
            .position(|&(p, _)| p >= n)
            .unwrap_or(measured.len() - 1);
        if measured[j].0 == n || j == 0 {
            measured[j].1
        } else {
            let (a, b) = (measured[j - 1], measured[j]);
            a.1 + (b.1 - a.1) * (n - a.0) as f64 / (b.0 - a.0) as f64
        }
    };
    let ffn: Vec<f64> = (1..=neurons).map(interpolate).collect();
    // Midpoints of up to 8 strides spread over the range.
    let mut checks = Vec::new();
    if stride > 1 {
        let gaps: Vec<usize> = points
            .windows(2)
            .filter(|w| w[1] - w[0] > 1)
            .map(|w| (w[0] + w[1]) / 2)
            .collect();
        let step = gaps.len().div_ceil(8).max(1);
        let picked: Vec<usize> = gaps.iter().step_by(step).copied().collect();
        let first: Vec<f64> = picked
            .iter()
            .map(|&n| ffn_at(n).map(|m| m.0))
            .collect::<Result<_, _>>()?;
        for (&n, a) in picked.iter().zip(first) {
            let b = ffn_at(n)?.0;
            checks.push(InterpolationCheck {
                neurons: n,
                interpolated_s: interpolate(n),
                measured_s: (a + b) / 2.0,
                noise_s: (a - b).abs(),
            });
        }
    }
    Ok(LutReport {
        lut: LatencyLut { mha, ffn },
        batch,
        seq,
        runs,
        ffn_stride: stride,
        checks,
    })
}

/// Dense vs pruned latency, measured interleaved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Speedup {
    pub dense_median_s: f64,
    pub pruned_median_s: f64,
    /// Median of the per-pair ratios dense / pruned.
    pub median: f64,
    /// Quartiles of the per-pair ratios.
    pub q25: f64,
    pub q75: f64,
    pub pairs: usize,
    pub batch: usize,
    pub seq: usize,
}

/// Random token ids (never the special ids below 4), all attended.
fn bench_input(
    model: &BertModel,
    batch: usize,
    seq: usize,
    device: &Device,
) -> kiln_models::EncoderInput {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n = batch * seq;
    let vocab = model.embeddings.word_embeddings.weight.dims()[0] as i64;
    let ids: Vec<i64> = (0..n)
        .map(|_| rng.random_range(4.min(vocab - 1)..vocab))
        .collect();
    kiln_models::EncoderInput::from_rows(ids, vec![0; n], vec![1; n], batch, seq, device)
}

/// Encoder forward of `dense` and `pruned` on the same input, alternating (the order flips every
/// pair), after `warmup` untimed runs of each.
pub fn interleaved_speedup(
    dense: &BertModel,
    pruned: &BertModel,
    batch: usize,
    seq: usize,
    warmup: usize,
    pairs: usize,
    device: &Device,
) -> Speedup {
    let input = bench_input(dense, batch, seq, device);
    let time = |m: &BertModel| {
        let t = std::time::Instant::now();
        std::hint::black_box(m.forward(&input, None).last_hidden_state.into_data());
        let _ = device.sync();
        t.elapsed().as_secs_f64()
    };
    for _ in 0..warmup {
        time(dense);
        time(pruned);
    }
    let pairs = pairs.max(1);
    let (mut d, mut p, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (td, tp) = if i % 2 == 0 {
            let a = time(dense);
            (a, time(pruned))
        } else {
            let b = time(pruned);
            (time(dense), b)
        };
        d.push(td);
        p.push(tp);
        r.push(td / tp);
    }
    for v in [&mut d, &mut p, &mut r] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    Speedup {
        dense_median_s: quantile(&d, 0.5),
        pruned_median_s: quantile(&p, 0.5),
        median: quantile(&r, 0.5),
        q25: quantile(&r, 0.25),
        q75: quantile(&r, 0.75),
        pairs,
        batch,
        seq,
    }
}

/// Wall time of the whole encoder on a fixed random batch (median of `runs`).
pub fn encoder_latency(
    model: &BertModel,
    batch: usize,
    seq: usize,
    runs: usize,
    device: &Device,
) -> f64 {
    let input = bench_input(model, batch, seq, device);
    kiln_core::timing::time_it(device, 2, runs, || {
        model.forward(&input, None).last_hidden_state.into_data()
    })
    .median_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_sorted_values() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 8.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.25) - 1.75).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn interpolation_check_compares_median_error_with_median_noise() {
        let check = |n, interpolated_s, measured_s, noise_s| InterpolationCheck {
            neurons: n,
            interpolated_s,
            measured_s,
            noise_s,
        };
        let report = LutReport {
            lut: LatencyLut {
                mha: vec![1.0],
                ffn: vec![1.0],
            },
            batch: 1,
            seq: 1,
            runs: 1,
            ffn_stride: 2,
            checks: vec![
                check(1, 1.0, 1.1, 0.3),
                check(2, 2.0, 1.7, 0.2),
                check(3, 3.0, 3.0, 0.1),
            ],
        };
        let (err, noise) = report.interpolation_vs_noise();
        assert!(
            (err - 0.1).abs() < 1e-12 && (noise - 0.2).abs() < 1e-12,
            "{err} {noise}"
        );
    }
}
