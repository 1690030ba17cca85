//! Mask gradients on the sample set and the importance criteria built from them (spec §3).

use burn::tensor::{Device, Tensor};
use kiln_data::Batch;
use kiln_models::{BertModel, EncoderMasks, EncoderTask};
use serde::{Deserialize, Serialize};

use crate::PruneError;

/// How a unit's importance is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Criterion {
    /// Diagonal empirical Fisher: `sum_b g_b,i²` (the paper's criterion).
    Fisher,
    /// First-order Taylor: `|sum_b g_b,i|` (the loss change `-gᵀ(1 - m)` to first order).
    FirstOrder,
    /// Weight magnitude: squared L2 norm of every weight belonging to the unit (a head's Q/K/V
    /// columns and output-projection rows; a neuron's W_1 column and W_2 row). Needs no gradients.
    /// Squared, not plain, norms: they add up over parameters, so a head (4·d·d_h weights) and a
    /// neuron (2·d weights) are scored in proportion to their size, as their costs are; plain norms
    /// undervalue heads ~11x against their cost and the search then drops whole attention layers.
    Magnitude,
}

impl Criterion {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fisher => "fisher",
            Self::FirstOrder => "first-order",
            Self::Magnitude => "magnitude",
        }
    }
}

/// Per-mini-batch gradients of the batch-mean loss w.r.t. the masks at m = 1.
/// `head[b][l][h]`, `neuron[b][l][i]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MaskGrads {
    pub head: Vec<Vec<Vec<f32>>>,
    pub neuron: Vec<Vec<Vec<f32>>>,
}

impl MaskGrads {
    pub fn batches(&self) -> usize {
        self.head.len()
    }
}

/// Importance per layer and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    pub head: Vec<Vec<f64>>,
    pub neuron: Vec<Vec<f64>>,
}

fn to_vec(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// Runs every batch with all-ones masks that require gradients, weights frozen and dropout off
/// (eval mode), and records the mask gradients of each batch's mean loss.
pub fn collect_mask_grads<M: EncoderTask>(
    model: &M,
    samples: &[Batch],
    device: &Device,
) -> Result<MaskGrads, PruneError> {
    if samples.is_empty() {
        return Err(PruneError::EmptySamples);
    }
    let ad = device.clone().autodiff();
    // `valid()` turns dropout off and leaves the weights untracked on the autodiff device, so
    // backward only reaches the masks.
    let model = model.valid().to_device(&ad);
    let pb = kiln_core::progress::bar(samples.len() as u64, "mask grads");
    let mut out = MaskGrads::default();
    for b in samples {
        let masks = EncoderMasks::ones(model.encoder(), &ad).require_grad();
        let loss = model.batch_loss(b, Some(&masks), &ad)?;
        let lv: f32 = loss.clone().into_scalar();
        if !lv.is_finite() {
            return Err(PruneError::Invalid(format!(
                "loss is {lv} on a sample batch: check the labels (regression needs num_labels 1)"
            )));
        }
        let grads = loss.backward();
        let g = |t: &Tensor<1>| {
            t.grad(&grads)
                .map(to_vec)
                .unwrap_or_else(|| vec![0.0; t.dims()[0]])
        };
        out.head.push(masks.head.iter().map(g).collect());
        out.neuron.push(masks.ffn.iter().map(g).collect());
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// Importance from gradients (Fisher, first-order).
pub fn from_grads(g: &MaskGrads, criterion: Criterion) -> Importance {
    let reduce = |per_batch: &Vec<Vec<Vec<f32>>>| -> Vec<Vec<f64>> {
        let layers = per_batch[0].len();
        (0..layers)
            .map(|l| {
                let n = per_batch[0][l].len();
                (0..n)
                    .map(|i| match criterion {
                        Criterion::Fisher => {
                            per_batch.iter().map(|b| (b[l][i] as f64).powi(2)).sum()
                        }
                        _ => per_batch.iter().map(|b| b[l][i] as f64).sum::<f64>().abs(),
                    })
                    .collect()
            })
            .collect()
    };
    Importance {
        head: reduce(&g.head),
        neuron: reduce(&g.neuron),
    }
}

/// Weight-magnitude importance (no data needed).
pub fn magnitude(bert: &BertModel) -> Importance {
    let mut head = Vec::new();
    let mut neuron = Vec::new();
    for layer in &bert.encoder.layer {
        let sa = &layer.attention.self_attn;
        let dh = sa.head_dim;
        // Squared column norms of [in, out] weights, and squared row norms.
        let col_sq = |w: Tensor<2>| to_vec(w.powf_scalar(2.0).sum_dim(0).squeeze_dim::<1>(0));
        let row_sq = |w: Tensor<2>| to_vec(w.powf_scalar(2.0).sum_dim(1).squeeze_dim::<1>(1));
        let q = col_sq(sa.query.weight.val());
        let k = col_sq(sa.key.weight.val());
        let v = col_sq(sa.value.weight.val());
        let o = row_sq(layer.attention.output.dense.weight.val());
        head.push(
            (0..sa.num_heads)
                .map(|h| {
                    (h * dh..(h + 1) * dh)
                        .map(|c| (q[c] + k[c] + v[c] + o[c]) as f64)
                        .sum::<f64>()
                })
                .collect(),
        );
        let w1 = col_sq(layer.intermediate.dense.weight.val());
        let w2 = row_sq(layer.output.dense.weight.val());
        neuron.push(w1.iter().zip(&w2).map(|(a, b)| (a + b) as f64).collect());
    }
    Importance { head, neuron }
}

/// Importance by `criterion` (gradients are ignored for magnitude).
pub fn importance(bert: &BertModel, grads: &MaskGrads, criterion: Criterion) -> Importance {
    match criterion {
        Criterion::Magnitude => magnitude(bert),
        c => from_grads(grads, c),
    }
}
