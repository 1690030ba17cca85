//! Real token removal at inference: after each layer's attention, the kept tokens of every
//! sequence are gathered into a compact batch (re-padded to the longest survivor count), so the
//! FFN and all later layers run on fewer tokens. Position 0 ([CLS]) is always kept. Logits equal
//! the masked simulation's ([`crate::Mode::Hard`]) whenever position 0 is not below threshold.

use burn::tensor::{Int, Tensor, TensorData};
use kiln_models::EncoderInput;

use crate::flops::LiveCounts;
use crate::score::token_scores;
use crate::LtpModel;

const MASKED: f64 = -1.0e9;
const FLOOR: f64 = 1e-5;

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// Threshold pruning with physical removal; returns logits and live counts.
pub fn forward_removed(model: &LtpModel, input: &EncoderInput) -> (Tensor<2>, LiveCounts) {
    let bert = &model.classifier.bert;
    let x0 = bert.embed(input);
    let [b, n0, d] = x0.dims();
    let device = x0.device();
    let mask0 = host(input.attention_mask.clone().float());
    // Real positions of each sequence (padding may sit anywhere; position 0 first).
    let mut keep: Vec<Vec<usize>> = (0..b)
        .map(|r| (0..n0).filter(|&j| mask0[r * n0 + j] > 0.5).collect())
        .collect();
    let lengths: Vec<usize> = keep.iter().map(|k| k.len()).collect();
    let mut x = gather_rows(x0, &keep, &device, d);
    let mut lens = lengths.clone();
    let theta = model.thresholds.values();
    let mut counts = LiveCounts {
        lengths,
        ..LiveCounts::default()
    };
    for (l, layer) in bert.encoder.layer.iter().enumerate() {
        let n = x.dims()[1];
        counts.attn.push(lens.clone());
        let valid: Vec<f32> = (0..b)
            .flat_map(|_| 0..n)
            .enumerate()
            .map(|(i, j)| (j < lens[i / n]) as u8 as f32)
            .collect();
        let valid =
            Tensor::<1>::from_data(TensorData::new(valid, [b * n]), &device).reshape([b, n]);
        let bias = (valid.clone().neg() + 1.0).reshape([b, 1, 1, n]) * MASKED;
        let (probs, v) = layer.attention.self_attn.probs_and_values(x.clone(), bias);
        let probs = probs * valid.clone().reshape([b, 1, n, 1]);
        let attn = layer.attend(x.clone(), Some(probs.clone().matmul(v)), None);
        if theta[l] != 0.0 {
            let s = host(token_scores(probs, valid, model.norm_len));
            let thr = theta[l].max(FLOOR) as f32;
            keep = (0..b)
                .map(|r| {
                    (0..lens[r])
                        .filter(|&j| j == 0 || s[r * n + j] >= thr)
                        .collect()
                })
                .collect();
            let new_lens: Vec<usize> = keep.iter().map(|k| k.len()).collect();
            let x_attn = if new_lens == lens && lens.iter().all(|&k| k == n) {
                attn
            } else {
                gather_rows(attn, &keep, &device, d)
            };
            lens = new_lens;
            let act = layer.ffn_activation(x_attn.clone());
            x = layer.ffn_output(act, None, x_attn);
        } else {
            let act = layer.ffn_activation(attn.clone());
            x = layer.ffn_output(act, None, attn);
        }
        counts.ffn.push(lens.clone());
    }
    (model.classifier.head(x), counts)
}

/// `x[r, keep[r][i], :]` into `[b, max_r |keep[r]|, d]` (short rows padded with row 0, which the
/// next layer masks out by length).
fn gather_rows(
    x: Tensor<3>,
    keep: &[Vec<usize>],
    device: &burn::tensor::Device,
    d: usize,
) -> Tensor<3> {
    let b = keep.len();
    let n = keep.iter().map(|k| k.len()).max().unwrap_or(1).max(1);
    let idx: Vec<i64> = keep
        .iter()
        .flat_map(|k| (0..n).map(move |i| k.get(i).copied().unwrap_or(0) as i64))
        .collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b * n]), device)
        .reshape([b, n, 1])
        .repeat_dim(2, d);
    x.gather(1, idx)
}

/// Examples per second of the dense classifier and of real token removal over the same
/// length-grouped batches of `examples` (median of `runs` passes after a warm-up), for
/// throughput tables measured in one process.
pub fn measure_throughput(
    m: &LtpModel,
    dev: &[kiln_data::Encoded],
    pad_id: i64,
    batch: usize,
    runs: usize,
    device: &burn::tensor::Device,
) -> (f64, f64) {
    let labels = vec![None; dev.len()];
    let batches = kiln_data::make_batches_grouped(dev, &labels, batch, pad_id, None, true);
    let inputs: Vec<kiln_models::EncoderInput> = batches
        .iter()
        .map(|b| kiln_models::EncoderInput::from_batch(b, device))
        .collect();
    let sync = |t: burn::tensor::Tensor<2>| {
        let _ = t.into_data();
    };
    let time = |f: &dyn Fn(&kiln_models::EncoderInput)| {
        let mut v: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let t0 = std::time::Instant::now();
                for i in &inputs {
                    f(i);
                }
                t0.elapsed().as_secs_f64()
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Warm-up both paths once.
    for i in inputs.iter().take(2) {
        sync(m.classifier.forward(i, None));
        sync(forward_removed(m, i).0);
    }
    let dense = time(&|i| sync(m.classifier.forward(i, None)));
    let removed = time(&|i| sync(forward_removed(m, i).0));
    (dev.len() as f64 / dense, dev.len() as f64 / removed)
}
