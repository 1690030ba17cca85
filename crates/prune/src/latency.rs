//! Latency lookup tables measured on the device kiln runs on (spec §4.3, official
//! `generate_lut.py`): the latency of one MHA block with n heads and one FFN block with n neurons.
//! FFN widths are measured at a stride and interpolated linearly in between (measuring all 3,072
//! widths of BERT-base, as the reference does on a GPU, takes hours on a CPU).

use burn::tensor::{Device, Tensor};
use kiln_models::bert::{attention_bias, PrunePlan};
use kiln_models::{BertConfig, BertModel};
use rand::{Rng, SeedableRng};

use crate::search::LatencyLut;
use crate::PruneError;

/// Measures the tables for `model`'s first layer at `batch x seq`.
pub fn measure_lut(
    model: &BertModel,
    config: &BertConfig,
    batch: usize,
    seq: usize,
    ffn_stride: usize,
    runs: usize,
    device: &Device,
) -> Result<LatencyLut, PruneError> {
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
    let mut mha = Vec::with_capacity(heads);
    for n in 1..=heads {
        let m = shrink(n, neurons)?;
        let layer = &m.encoder.layer[0];
        let t = kiln_core::timing::time_it(device, 2, runs, || {
            let ctx = layer.attention.self_attn.context(x.clone(), bias.clone());
            let merged = layer.attention.self_attn.merge(ctx, None);
            layer
                .attention
                .output
                .forward_pub(merged, x.clone())
                .into_data()
        });
        mha.push(t.median_s);
    }
    let stride = ffn_stride.max(1);
    let mut points: Vec<usize> = (1..=neurons).step_by(stride).collect();
    if points.last() != Some(&neurons) {
        points.push(neurons);
    }
    let mut measured = Vec::new();
    for &n in &points {
        let m = shrink(heads, n)?;
        let layer = &m.encoder.layer[0];
        let t = kiln_core::timing::time_it(device, 2, runs, || {
            let h = burn::tensor::activation::gelu(layer.intermediate.dense.forward(x.clone()));
            layer.output.forward_pub(h, x.clone()).into_data()
        });
        measured.push((n, t.median_s));
    }
    let mut ffn = Vec::with_capacity(neurons);
    for n in 1..=neurons {
        let j = measured
            .iter()
            .position(|&(p, _)| p >= n)
            .unwrap_or(measured.len() - 1);
        let v = if measured[j].0 == n || j == 0 {
            measured[j].1
        } else {
            let (a, b) = (measured[j - 1], measured[j]);
            a.1 + (b.1 - a.1) * (n - a.0) as f64 / (b.0 - a.0) as f64
        };
        ffn.push(v);
    }
    Ok(LatencyLut { mha, ffn })
}

/// Wall time of the whole encoder on a fixed random batch (median of `runs`).
pub fn encoder_latency(
    model: &BertModel,
    batch: usize,
    seq: usize,
    runs: usize,
    device: &Device,
) -> f64 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n = batch * seq;
    let vocab = model.embeddings.word_embeddings.weight.dims()[0] as i64;
    let ids: Vec<i64> = (0..n)
        .map(|_| rng.random_range(4.min(vocab - 1)..vocab))
        .collect();
    let input =
        kiln_models::EncoderInput::from_rows(ids, vec![0; n], vec![1; n], batch, seq, device);
    kiln_core::timing::time_it(device, 2, runs, || {
        model.forward(&input, None).last_hidden_state.into_data()
    })
    .median_s
}
