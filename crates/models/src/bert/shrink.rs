//! Physical shrinking: remove heads and FFN neurons so the smaller model computes exactly what
//! the masked model computed. Mask values other than 0/1 (e.g. after the pruning paper's mask
//! tuning) are folded into the rows of the following output projection, which is exact because
//! a head's context and a neuron's activation enter the model only through that projection.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Int, Tensor, TensorData};

use super::{BertConfig, BertModel, EncoderMasks};
use crate::ModelError;

/// Per layer, the (current index, scale) of every head and neuron to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunePlan {
    pub heads: Vec<Vec<(usize, f32)>>,
    pub neurons: Vec<Vec<(usize, f32)>>,
}

impl PrunePlan {
    /// Keeps every entry whose mask value is non-zero, scaled by that value.
    pub fn from_masks(masks: &EncoderMasks) -> Self {
        let (h, f) = masks.to_vecs();
        let keep = |v: Vec<Vec<f32>>| {
            v.into_iter()
                .map(|l| {
                    l.into_iter()
                        .enumerate()
                        .filter(|(_, m)| *m != 0.0)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        Self {
            heads: keep(h),
            neurons: keep(f),
        }
    }

    /// Keeps the listed indices with scale 1.
    pub fn keep(heads: &[Vec<usize>], neurons: &[Vec<usize>]) -> Self {
        let one = |v: &[Vec<usize>]| {
            v.iter()
                .map(|l| l.iter().map(|&i| (i, 1.0)).collect())
                .collect()
        };
        Self {
            heads: one(heads),
            neurons: one(neurons),
        }
    }
}

fn idx(v: &[i64], device: &burn::tensor::Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

fn scales(v: &[f32], device: &burn::tensor::Device) -> Tensor<2> {
    Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device).reshape([v.len(), 1])
}

/// Keeps output columns `cols` of a `[in, out]` Linear.
fn keep_out(lin: &Linear, cols: &Tensor<1, Int>) -> Linear {
    Linear {
        weight: Param::from_tensor(lin.weight.val().select(1, cols.clone())),
        bias: lin
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().select(0, cols.clone()))),
    }
}

/// Keeps input rows `rows` of a `[in, out]` Linear, scaling each kept row.
fn keep_in(lin: &Linear, rows: &Tensor<1, Int>, scale: Tensor<2>) -> Linear {
    Linear {
        weight: Param::from_tensor(lin.weight.val().select(0, rows.clone()) * scale),
        bias: lin.bias.as_ref().map(|b| Param::from_tensor(b.val())),
    }
}

impl BertModel {
    /// Builds the smaller model and its config (HF `pruned_heads` in original numbering, and
    /// per-layer FFN widths).
    pub fn shrink(
        &self,
        config: &BertConfig,
        plan: &PrunePlan,
    ) -> Result<(BertModel, BertConfig), ModelError> {
        let heads = self.heads_per_layer();
        let neurons = self.neurons_per_layer();
        if plan.heads.len() != heads.len() || plan.neurons.len() != neurons.len() {
            return Err(ModelError::Mask(format!(
                "prune plan has {} head and {} neuron layers for a {}-layer model",
                plan.heads.len(),
                plan.neurons.len(),
                heads.len()
            )));
        }
        let device = self.embeddings.word_embeddings.weight.device();
        let mut out = self.clone();
        let mut cfg = config.clone();
        let mut sizes = Vec::new();
        for (l, layer) in out.encoder.layer.iter_mut().enumerate() {
            let hp = &plan.heads[l];
            let np = &plan.neurons[l];
            if hp.iter().any(|(h, _)| *h >= heads[l]) || np.iter().any(|(n, _)| *n >= neurons[l]) {
                return Err(ModelError::Mask(format!(
                    "layer {l}: plan names a head >= {} or a neuron >= {}",
                    heads[l], neurons[l]
                )));
            }
            let dh = layer.attention.self_attn.head_dim;
            let cols: Vec<i64> = hp
                .iter()
                .flat_map(|(h, _)| (h * dh..(h + 1) * dh).map(|c| c as i64))
                .collect();
            let col_scale: Vec<f32> = hp
                .iter()
                .flat_map(|(_, s)| std::iter::repeat_n(*s, dh))
                .collect();
            let cols_t = idx(&cols, &device);
            let sa = &mut layer.attention.self_attn;
            sa.query = keep_out(&sa.query, &cols_t);
            sa.key = keep_out(&sa.key, &cols_t);
            sa.value = keep_out(&sa.value, &cols_t);
            sa.num_heads = hp.len();
            layer.attention.output.dense = keep_in(
                &layer.attention.output.dense,
                &cols_t,
                scales(&col_scale, &device),
            );

            let rows: Vec<i64> = np.iter().map(|(n, _)| *n as i64).collect();
            let row_scale: Vec<f32> = np.iter().map(|(_, s)| *s).collect();
            let rows_t = idx(&rows, &device);
            layer.intermediate.dense = keep_out(&layer.intermediate.dense, &rows_t);
            layer.output.dense = keep_in(&layer.output.dense, &rows_t, scales(&row_scale, &device));
            sizes.push(np.len());

            // Map current head indices back to the original numbering for HF's pruned_heads.
            let original = config.kept_heads(l);
            let kept: Vec<usize> = hp.iter().map(|(h, _)| original[*h]).collect();
            let removed: Vec<usize> = (0..config.num_attention_heads)
                .filter(|h| !kept.contains(h))
                .collect();
            if removed.is_empty() {
                cfg.pruned_heads.remove(&l.to_string());
            } else {
                cfg.pruned_heads.insert(l.to_string(), removed);
            }
        }
        cfg.kiln_intermediate_sizes = if sizes.iter().all(|&s| s == config.intermediate_size) {
            None
        } else {
            Some(sizes)
        };
        Ok((out, cfg))
    }
}
