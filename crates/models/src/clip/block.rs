//! The pre-LN Transformer block CLIP uses in its ViT and text towers, and the attention both
//! they and the ResNet attention pool share.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::state::StateDict;
use crate::{dense, ModelError};

/// The MLP activation. OpenAI's released CLIPs use QuickGELU (`x·σ(1.702x)`); open_clip's own
/// trainings use exact GELU, so a config must say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    QuickGelu,
    Gelu,
}

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::QuickGelu => x.clone() * sigmoid(x * 1.702),
            Activation::Gelu => gelu(x),
        }
    }
}

/// Multi-head attention with separate q/k/v projections (open_clip's fused `in_proj_weight`
/// is split on load, in q, k, v order as PyTorch's `MultiheadAttention` stores it).
#[derive(Module, Debug)]
pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub out: Linear,
    pub heads: usize,
}

impl Attention {
    /// `d_kv` is the key/value input width; `d_out` the output projection's width (the
    /// ResNet attention pool projects to the embedding size, the blocks back to `d`).
    pub fn new(d: usize, heads: usize, d_out: usize, device: &Device) -> Self {
        Self {
            q: LinearConfig::new(d, d).init(device),
            k: LinearConfig::new(d, d).init(device),
            v: LinearConfig::new(d, d).init(device),
            out: LinearConfig::new(d, d_out).init(device),
            heads,
        }
    }

    fn split(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, d] = x.dims();
        x.reshape([b, l, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    /// `queries: [b, lq, d]` attending over `keys: [b, lk, d]`; `bias` is added to the scores
    /// (a causal mask for the text tower).
    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let [b, lq, d] = queries.dims();
        let hd = d / self.heads;
        // PyTorch scales q before the product; the same rounding order keeps goldens tight.
        let q = self.split(dense(&self.q, queries)) * (1.0 / (hd as f64).sqrt());
        let k = self.split(dense(&self.k, keys.clone()));
        let v = self.split(dense(&self.v, keys));
        let mut scores = q.matmul(k.swap_dims(2, 3));
        if let Some(bias) = bias {
            scores = scores + bias;
        }
        let ctx = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, lq, d]);
        dense(&self.out, ctx)
    }

    /// open_clip / OpenAI layout: `{prefix}.in_proj_weight` `[3d, d]` and `{prefix}.out_proj`.
    pub(crate) fn load_fused(
        &mut self,
        sd: &mut StateDict,
        prefix: &str,
    ) -> Result<(), ModelError> {
        let d = self.q.weight.dims()[0];
        let w = sd.take(&format!("{prefix}.in_proj_weight"), &[3 * d, d])?;
        let b = sd.take(&format!("{prefix}.in_proj_bias"), &[3 * d])?;
        let device = self.q.weight.device();
        for (i, l) in [&mut self.q, &mut self.k, &mut self.v]
            .into_iter()
            .enumerate()
        {
            let part = &w[i * d * d..(i + 1) * d * d];
            l.weight =
                burn::module::Param::from_tensor(super::state::transposed(part, d, d, &device));
            let bias = b[i * d..(i + 1) * d].to_vec();
            l.bias = Some(burn::module::Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(bias, [d]),
                &device,
            )));
        }
        sd.linear(&mut self.out, &format!("{prefix}.out_proj"))
    }

    /// Separate projections named `{prefix}.{q,k,v}{suffix}` and `{prefix}.{out}`.
    pub(crate) fn load_split(
        &mut self,
        sd: &mut StateDict,
        prefix: &str,
        names: [&str; 4],
    ) -> Result<(), ModelError> {
        sd.linear(&mut self.q, &format!("{prefix}.{}", names[0]))?;
        sd.linear(&mut self.k, &format!("{prefix}.{}", names[1]))?;
        sd.linear(&mut self.v, &format!("{prefix}.{}", names[2]))?;
        sd.linear(&mut self.out, &format!("{prefix}.{}", names[3]))
    }
}

/// `x + attn(ln_1 x)`, then `x + c_proj(act(c_fc(ln_2 x)))`.
#[derive(Module, Debug)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: Attention,
    pub ln_2: LayerNorm,
    pub c_fc: Linear,
    pub c_proj: Linear,
    #[module(skip)]
    pub act: Activation,
}

impl Block {
    pub fn new(d: usize, heads: usize, mlp: usize, act: Activation, device: &Device) -> Self {
        Self {
            ln_1: layer_norm(d, device),
            attn: Attention::new(d, heads, d, device),
            ln_2: layer_norm(d, device),
            c_fc: LinearConfig::new(d, mlp).init(device),
            c_proj: LinearConfig::new(mlp, d).init(device),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let h = self.ln_1.forward(x.clone());
        let x = x + self.attn.forward(h.clone(), h, bias);
        let h = self
            .act
            .apply(dense(&self.c_fc, self.ln_2.forward(x.clone())));
        x + dense(&self.c_proj, h)
    }

    /// open_clip: `transformer.resblocks.{i}.{ln_1, attn, ln_2, mlp.c_fc, mlp.c_proj}`.
    pub(crate) fn load_open_clip(&mut self, sd: &mut StateDict, p: &str) -> Result<(), ModelError> {
        sd.layer_norm(&mut self.ln_1, &format!("{p}.ln_1"))?;
        self.attn.load_fused(sd, &format!("{p}.attn"))?;
        sd.layer_norm(&mut self.ln_2, &format!("{p}.ln_2"))?;
        sd.linear(&mut self.c_fc, &format!("{p}.mlp.c_fc"))?;
        sd.linear(&mut self.c_proj, &format!("{p}.mlp.c_proj"))
    }

    /// HF: `encoder.layers.{i}.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}`.
    pub(crate) fn load_hf(&mut self, sd: &mut StateDict, p: &str) -> Result<(), ModelError> {
        sd.layer_norm(&mut self.ln_1, &format!("{p}.layer_norm1"))?;
        self.attn.load_split(
            sd,
            &format!("{p}.self_attn"),
            ["q_proj", "k_proj", "v_proj", "out_proj"],
        )?;
        sd.layer_norm(&mut self.ln_2, &format!("{p}.layer_norm2"))?;
        sd.linear(&mut self.c_fc, &format!("{p}.mlp.fc1"))?;
        sd.linear(&mut self.c_proj, &format!("{p}.mlp.fc2"))
    }
}

/// CLIP's LayerNorms all use eps 1e-5 (PyTorch's default, and HF's `layer_norm_eps`).
pub fn layer_norm(d: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(1e-5).init(device)
}
