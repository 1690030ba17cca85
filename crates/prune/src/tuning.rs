//! Mask tuning by layer-wise least-squares reconstruction (spec §6, official
//! `prune/rescale.py`). Layer by layer, MHA before FFN, the kept units' mask values become the
//! scales that best reconstruct the teacher's pre-LayerNorm sub-block outputs from the student's
//! own inputs (so tuning also corrects error accumulated in earlier layers).

use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::Batch;
use kiln_models::bert::attention_bias;
use kiln_models::{BertModel, EncoderInput};
use serde::{Deserialize, Serialize};

use crate::linalg::{damped_centred_solve, exact_damped_centred_solve, objective, Mat, Precision};
use crate::{Masks, PruneError};

/// What the student reconstructs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Teacher {
    /// The search result at constraint √C (the official code's default, "KD with TA").
    SqrtConstraint,
    /// The unpruned model.
    Original,
}

/// How each block's damped least-squares system is solved (spec §6.1 allows either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// The reference's: LSMR on float32 inputs (damp 1, atol = btol = 1e-6, conlim 1e8,
    /// maxiter = 5·n as under CuPy), failure = istop ≥ 3 or a non-finite result. The default,
    /// because it is what the paper's numbers come from: LSMR's early stop leaves poorly
    /// determined directions near s = 1, which changes which layers get tuned.
    #[default]
    Lsmr,
    /// The exact minimiser `(G² + I)⁻¹ G c` (Cholesky, f64); failure = not positive definite or
    /// not finite. An ablation: it never stops on an iteration limit, so it tunes layers the
    /// reference gives up on (and then sometimes hits the ±10 scale bound instead).
    Exact,
}

impl Solver {
    pub fn label(self) -> &'static str {
        match self {
            Solver::Lsmr => "LSMR (reference)",
            Solver::Exact => "exact (Cholesky)",
        }
    }
}

/// Outcome of one tuned block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockReport {
    pub layer: usize,
    pub kind: String,
    pub units: usize,
    /// Reconstruction objective (up to a constant) at the old and new scales.
    pub before: f64,
    pub after: f64,
    pub accepted: bool,
    /// Seconds spent in the solver (the rest of tuning is layer passes).
    pub solve_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TuneReport {
    pub blocks: Vec<BlockReport>,
    /// Why tuning stopped early, if it did: later layers keep their binary masks.
    pub aborted: Option<String>,
}

fn f64s(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(|x| x as f64)
        .collect()
}

fn idx(v: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [v.len()]),
        device,
    )
}

fn vec1(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

/// A Linear's bias, or zeros when it has none.
fn bias_or_zeros(lin: &burn::nn::Linear, d: usize, device: &Device) -> Tensor<1> {
    lin.bias
        .as_ref()
        .map(|b| b.val())
        .unwrap_or_else(|| Tensor::zeros([d], device))
}

struct Prepared {
    input: EncoderInput,
    bias: Tensor<4>,
    /// 1 for real tokens `[b, l]`.
    tokens: Tensor<2>,
    /// 1 for the first token of each sequence `[b, l]`.
    cls: Tensor<2>,
}

/// Solves one block's damped system; records it; returns the scales of the first `k` unknowns
/// when accepted, or sets `report.aborted` (solver failure or a scale outside [-10, 10]).
fn solve_block(
    g: &Mat,
    r: &[f64],
    solver: Solver,
    k: usize,
    layer: usize,
    kind: &str,
    report: &mut TuneReport,
) -> Option<Vec<f64>> {
    let t0 = std::time::Instant::now();
    let before = objective(g, r, &vec![1.0; g.n]);
    let sol = match solver {
        Solver::Lsmr => damped_centred_solve(g, r, Precision::F32),
        Solver::Exact => exact_damped_centred_solve(g, r)
            .ok_or_else(|| "solver failure (system not positive definite or not finite)".into()),
    };
    let bad = match &sol {
        Err(why) => Some(why.clone()),
        Ok(v) => v[..k]
            .iter()
            .find(|x| x.abs() > 10.0)
            .map(|x| format!("scale {x:.2} outside [-10, 10]")),
    };
    let after = match (&sol, &bad) {
        (Ok(v), None) => objective(g, r, v),
        _ => before,
    };
    report.blocks.push(BlockReport {
        layer,
        kind: kind.into(),
        units: k,
        before,
        after,
        accepted: bad.is_none(),
        solve_s: t0.elapsed().as_secs_f64(),
    });
    match bad {
        Some(why) => {
            report.aborted = Some(format!("layer {layer} {}: {why}", kind.to_uppercase()));
            None
        }
        None => sol.ok(),
    }
}

/// Per-batch values one layer's reconstruction reuses between its MHA and FFN solves.
struct LayerCache {
    /// Student per-head context (`None` when the layer has no heads).
    ctx_s: Option<Tensor<4>>,
    /// Teacher FFN target before LayerNorm: `W2·act + b2 + attn_out` (unmasked activations, the
    /// reference's quirk).
    t_ffn: Tensor<3>,
}

/// Tunes `student` (binary for the layers not yet tuned) against `teacher`; `classification`
/// restricts the last layer's FFN rows to [CLS], the only token a sequence-classification head
/// reads (a span head reads every token, so SQuAD passes `false`).
///
/// Each layer costs one teacher layer pass and about one student layer pass: the student's
/// attention context is computed once and reused after its heads are rescaled, and the next
/// layer's inputs come from the values the solves already needed.
pub fn tune_masks(
    bert: &BertModel,
    samples: &[Batch],
    student: &Masks,
    teacher: &Masks,
    classification: bool,
    solver: Solver,
    device: &Device,
) -> Result<(Masks, TuneReport), PruneError> {
    if samples.is_empty() {
        return Err(PruneError::EmptySamples);
    }
    student.check(bert)?;
    teacher.check(bert)?;
    let mut s = student.clone();
    let mut report = TuneReport::default();
    let prepared: Vec<Prepared> = samples
        .iter()
        .map(|b| {
            let input = EncoderInput::from_batch(b, device);
            let tokens = input.attention_mask.clone().float();
            let cls_row: Vec<f32> = (0..b.batch * b.seq)
                .map(|i| if i % b.seq == 0 { 1.0 } else { 0.0 })
                .collect();
            let cls = Tensor::<1>::from_data(TensorData::new(cls_row, [b.batch * b.seq]), device)
                .reshape([b.batch, b.seq]);
            Prepared {
                bias: attention_bias(&input.attention_mask),
                input,
                tokens,
                cls,
            }
        })
        .collect();
    let mut xt: Vec<Tensor<3>> = prepared.iter().map(|p| bert.embed(&p.input)).collect();
    let mut xs: Vec<Tensor<3>> = xt.clone();
    let layers = bert.num_layers();
    let pb = kiln_core::progress::bar(layers as u64, "mask tuning");
    for l in 0..layers {
        if report.aborted.is_some() {
            // Later layers keep their binary masks: nothing left to compute.
            break;
        }
        let layer = &bert.encoder.layer[l];
        let hm_t = vec1(&teacher.head[l], device);
        let fm_t = vec1(&teacher.neuron[l], device);
        let kept_h: Vec<usize> = (0..s.head[l].len())
            .filter(|&h| s.head[l][h] != 0.0)
            .collect();
        let kept_n: Vec<usize> = (0..s.neuron[l].len())
            .filter(|&i| s.neuron[l][i] != 0.0)
            .collect();
        let sa = &layer.attention.self_attn;
        let tune_mha = report.aborted.is_none() && l > 0 && !kept_h.is_empty() && sa.num_heads > 0;

        // --- Pass 1: teacher layer, student attention context, MHA statistics ---
        let (nh, dh) = (sa.num_heads, sa.head_dim);
        let k_h = kept_h.len();
        let n_h = k_h + 1;
        let mut g = Mat::zeros(n_h);
        let mut r = vec![0.0; n_h];
        let wo = layer.attention.output.dense.weight.val(); // [H*dh, d]
        let d = wo.dims()[1];
        let bo = bias_or_zeros(&layer.attention.output.dense, d, device);
        let wk_h = (nh > 0).then(|| wo.reshape([nh, dh, d]).select(0, idx(&kept_h, device)));
        let mut caches = Vec::with_capacity(prepared.len());
        for (i, p) in prepared.iter().enumerate() {
            let [b, len, _] = xt[i].dims();
            let tr_t = layer.forward_traced(
                xt[i].clone(),
                p.bias.clone(),
                Some(hm_t.clone()),
                Some(fm_t.clone()),
            );
            let ctx_s = (sa.num_heads > 0).then(|| sa.context(xs[i].clone(), p.bias.clone()));
            if tune_mha {
                let ctx_t = tr_t.context.clone().expect("layer has heads");
                let t = layer
                    .attention
                    .output
                    .dense
                    .forward(sa.merge(ctx_t, Some(hm_t.clone())))
                    + xt[i].clone();
                let rows = p.tokens.clone().reshape([b, len, 1]);
                let target = (t - bo.clone().reshape([1, 1, d]) - xs[i].clone()) * rows.clone();
                let ctx_k = ctx_s
                    .clone()
                    .expect("layer has heads")
                    .select(1, idx(&kept_h, device)); // [b,k,l,dh]
                let wk = wk_h.clone().expect("layer has heads");
                let u = ctx_k.matmul(wk.unsqueeze::<4>().repeat_dim(0, b)); // [b,k,l,d]
                let u = u * rows.reshape([b, 1, len, 1]);
                let u2 = u.swap_dims(0, 1).reshape([k_h, b * len * d]);
                let bf = target.reshape([1, b * len * d]);
                let gg = f64s(u2.clone().matmul(u2.clone().transpose()));
                let sums = f64s(u2.clone().sum_dim(1).reshape([1, k_h]));
                let rr = f64s(u2.matmul(bf.clone().transpose()).reshape([1, k_h]));
                let rb = f64s(bf.sum_dim(1).reshape([1, 1]));
                let ntok: f64 = f64s(p.tokens.clone().sum_dim(1).sum_dim(0).reshape([1, 1]))[0];
                for a in 0..k_h {
                    for c in 0..k_h {
                        g.a[a * n_h + c] += gg[a * k_h + c];
                    }
                    g.a[a * n_h + k_h] += sums[a];
                    g.a[k_h * n_h + a] += sums[a];
                    r[a] += rr[a];
                }
                g.a[k_h * n_h + k_h] += ntok * d as f64;
                r[k_h] += rb[0];
            }
            let t_ffn = kiln_models::dense(&layer.output.dense, tr_t.ffn_act) + tr_t.attn_out;
            xt[i] = tr_t.out;
            caches.push(LayerCache { ctx_s, t_ffn });
        }
        if tune_mha {
            if let Some(sol) = solve_block(&g, &r, solver, k_h, l, "mha", &mut report) {
                for (j, &h) in kept_h.iter().enumerate() {
                    s.head[l][h] *= sol[j] as f32;
                }
            }
        }

        // --- Pass 2: student attention output with its final head scales, FFN statistics ---
        let hm_s = vec1(&s.head[l], device);
        let attn_s: Vec<Tensor<3>> = caches
            .iter_mut()
            .enumerate()
            .map(|(i, c)| layer.attend(xs[i].clone(), c.ctx_s.take(), Some(hm_s.clone())))
            .collect();
        // The student's FFN only ever uses its kept neurons: computing their activations alone
        // (once, for both the statistics and the advance) costs k/F of the full width.
        let k = kept_n.len();
        let acts: Vec<Tensor<3>> = if k > 0 {
            let kidx = idx(&kept_n, device);
            let w1k = layer
                .intermediate
                .dense
                .weight
                .val()
                .select(1, kidx.clone()); // [d, k]
            let b1k = layer
                .intermediate
                .dense
                .bias
                .as_ref()
                .map(|b| b.val().select(0, kidx));
            attn_s
                .iter()
                .map(|a| {
                    let [b, len, _] = a.dims();
                    let mut h = a.clone().reshape([b * len, d]).matmul(w1k.clone());
                    if let Some(b1) = &b1k {
                        h = h + b1.clone().reshape([1, k]);
                    }
                    let h = h.reshape([b, len, k]);
                    match layer.intermediate.act {
                        1 => burn::tensor::activation::relu(h),
                        2 => burn::tensor::activation::gelu_approximate(h),
                        _ => burn::tensor::activation::gelu(h),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let w2 = layer.output.dense.weight.val(); // [F, d]
        let b2 = bias_or_zeros(&layer.output.dense, d, device);
        let wk = (k > 0).then(|| w2.select(0, idx(&kept_n, device))); // [k, d]
        if report.aborted.is_none() && k > 0 {
            let wk = wk.clone().expect("k > 0");
            let ww = f64s(wk.clone().matmul(wk.clone().transpose()));
            let last = l + 1 == layers;
            let mut aa = vec![0.0; k * k];
            let mut r = vec![0.0; k];
            for (i, p) in prepared.iter().enumerate() {
                let [b, len, _] = xs[i].dims();
                let rows = if last && classification {
                    p.cls.clone()
                } else {
                    p.tokens.clone()
                };
                let rows = rows.reshape([b, len, 1]);
                let target =
                    ((caches[i].t_ffn.clone() - b2.clone().reshape([1, 1, d]) - attn_s[i].clone())
                        * rows.clone())
                    .reshape([b * len, d]);
                let ak = (acts[i].clone() * rows).reshape([b * len, k]).transpose(); // [k, T]
                let a2 = f64s(ak.clone().matmul(ak.clone().transpose()));
                let wb = wk.clone().matmul(target.transpose()); // [k, T]
                let rr = f64s((ak * wb).sum_dim(1).reshape([1, k]));
                for j in 0..k * k {
                    aa[j] += a2[j];
                }
                for j in 0..k {
                    r[j] += rr[j];
                }
            }
            let g = Mat {
                n: k,
                a: ww.iter().zip(&aa).map(|(w, a)| w * a).collect(),
            };
            if let Some(sol) = solve_block(&g, &r, solver, k, l, "ffn", &mut report) {
                for (j, &i) in kept_n.iter().enumerate() {
                    s.neuron[l][i] *= sol[j] as f32;
                }
            }
        }

        // Advance the student to the next layer's inputs with this layer's final scales:
        // LayerNorm(attn + W2_kept · (act_kept ⊙ s_kept) + b2), as the masked full layer computes.
        let sk: Vec<f32> = kept_n.iter().map(|&i| s.neuron[l][i]).collect();
        let sk = (k > 0).then(|| vec1(&sk, device).reshape([1, k]));
        for (i, a) in attn_s.into_iter().enumerate() {
            let [b, len, _] = a.dims();
            let ffn = match (&wk, &sk) {
                (Some(wk), Some(sk)) => {
                    (acts[i].clone().reshape([b * len, k]) * sk.clone()).matmul(wk.clone())
                        + b2.clone().reshape([1, d])
                }
                _ => b2.clone().reshape([1, d]).repeat_dim(0, b * len),
            };
            xs[i] = layer
                .output
                .layer_norm
                .forward(ffn.reshape([b, len, d]) + a);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((s, report))
}
