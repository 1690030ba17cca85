//! GPT-2-style decoder (Radford et al. 2019), transcribed from HuggingFace
//! `transformers/models/gpt2/modeling_gpt2.py`: token + learned position embeddings, pre-LN
//! blocks (`x + Attn(LN1 x)`, `x + MLP(LN2 x)`), causal attention with fused QKV, `gelu_new`
//! FFN of width 4d, final LayerNorm, LM head tied to the token embedding.
//!
//! Weights keep HF's Conv1D layout (`[in, out]`, `y = x W + b`), which is also burn's `Linear`
//! layout, so checkpoints load without transposition; the growth operators of staged training
//! are written against exactly these tensors.

mod hf;

use std::path::Path;

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
};
use burn::tensor::activation::{gelu, gelu_approximate, relu, softmax};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

pub use hf::load_gpt2;

use crate::ModelError;

fn d_act() -> String {
    "gelu_new".into()
}
fn d_drop() -> f64 {
    0.1
}
fn d_eps() -> f64 {
    1e-5
}
fn d_type() -> String {
    "gpt2".into()
}

/// HF `GPT2Config` (its key names); unknown keys are kept in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Gpt2Config {
    #[serde(default = "d_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "d_act")]
    pub activation_function: String,
    #[serde(default = "d_drop")]
    pub resid_pdrop: f64,
    #[serde(default = "d_drop")]
    pub embd_pdrop: f64,
    #[serde(default = "d_drop")]
    pub attn_pdrop: f64,
    #[serde(default = "d_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Gpt2Config {
    /// A decoder of `n_layer` blocks of width `n_embd` (FFN 4d, dropout 0.1, eps 1e-5).
    pub fn new(
        vocab_size: usize,
        n_positions: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
    ) -> Self {
        Self {
            model_type: d_type(),
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            activation_function: d_act(),
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            extra: Default::default(),
        }
    }

    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.model_type != "gpt2" {
            return Err(format!(
                "model_type is `{}`, but this loader reads GPT-2 checkpoints (model_type `gpt2`)",
                self.model_type
            ));
        }
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "n_embd {} is not a multiple of n_head {}",
                self.n_embd, self.n_head
            ));
        }
        if !matches!(
            self.activation_function.as_str(),
            "gelu_new" | "gelu" | "relu" | "gelu_pytorch_tanh"
        ) {
            return Err(format!(
                "unsupported activation_function `{}`",
                self.activation_function
            ));
        }
        // burn's Dropout panics outside [0, 1); say which key instead.
        for (key, p) in [
            ("resid_pdrop", self.resid_pdrop),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{key} {p} is not a probability in [0, 1)"));
            }
        }
        Ok(())
    }

    /// Reads `config.json`, naming the file in every error.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let c: Self = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        c.validate().map_err(|msg| ModelError::Config {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(c)
    }
}

#[derive(Module, Debug)]
pub struct Gpt2Attention {
    /// Fused `[W_q | W_k | W_v]`, `[d, 3d]`.
    pub c_attn: Linear,
    pub c_proj: Linear,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    pub n_head: usize,
}

#[derive(Module, Debug)]
pub struct Gpt2Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
    pub dropout: Dropout,
    /// 0 = gelu_new (tanh), 1 = gelu (erf), 2 = relu.
    pub act: usize,
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub attn: Gpt2Attention,
    pub ln_2: LayerNorm,
    pub mlp: Gpt2Mlp,
}

#[derive(Module, Debug)]
pub struct Gpt2Model {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

/// Additive causal mask `[1, 1, t, t]`: 0 on and below the diagonal, -1e9 above.
fn causal_bias(t: usize, device: &Device) -> Tensor<4> {
    let ones = Tensor::<2>::ones([t, t], device);
    (ones.clone() - ones.tril(0)).reshape([1, 1, t, t]) * -1.0e9
}

impl Gpt2Attention {
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let dh = d / self.n_head;
        let qkv = crate::dense(&self.c_attn, x); // [b, t, 3d]
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * d, d)
                .reshape([b, t, self.n_head, dh])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt() + bias;
        let probs = self.attn_dropout.forward(softmax(scores, 3));
        let ctx = probs.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        self.resid_dropout.forward(crate::dense(&self.c_proj, ctx))
    }
}

impl Gpt2Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = crate::dense(&self.c_fc, x);
        let h = match self.act {
            1 => gelu(h),
            2 => relu(h),
            _ => gelu_approximate(h),
        };
        self.dropout.forward(crate::dense(&self.c_proj, h))
    }
}

impl Gpt2Block {
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), bias);
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

impl Gpt2Model {
    /// Random init as HF's `_init_weights`: N(0, 0.02) weights and embeddings, zero biases,
    /// unit LayerNorms.
    pub fn new(c: &Gpt2Config, device: &Device) -> Self {
        Self::with_init(
            c,
            burn::nn::Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            },
            device,
        )
    }

    /// A model of this shape with zero weights, for code that sets every parameter itself
    /// (loading, rebuilding from stored tensors): unlike [`Gpt2Model::new`] it draws nothing
    /// from the device RNG, which dropout shares, so building a model to evaluate or step it
    /// cannot change the random stream a training run sees.
    pub fn zeroed(c: &Gpt2Config, device: &Device) -> Self {
        Self::with_init(c, burn::nn::Initializer::Zeros, device)
    }

    fn with_init(c: &Gpt2Config, init: burn::nn::Initializer, device: &Device) -> Self {
        let d = c.n_embd;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(c.layer_norm_epsilon)
                .init(device)
        };
        let lin = |i: usize, o: usize| {
            crate::bert::zero_bias_pub(
                burn::nn::LinearConfig::new(i, o)
                    .with_initializer(init.clone())
                    .init(device),
            )
        };
        let act = match c.activation_function.as_str() {
            "gelu" => 1,
            "relu" => 2,
            _ => 0,
        };
        Self {
            wte: EmbeddingConfig::new(c.vocab_size, d)
                .with_initializer(init.clone())
                .init(device),
            wpe: EmbeddingConfig::new(c.n_positions, d)
                .with_initializer(init.clone())
                .init(device),
            drop: DropoutConfig::new(c.embd_pdrop).init(),
            h: (0..c.n_layer)
                .map(|_| Gpt2Block {
                    ln_1: ln(),
                    attn: Gpt2Attention {
                        c_attn: lin(d, 3 * d),
                        c_proj: lin(d, d),
                        attn_dropout: DropoutConfig::new(c.attn_pdrop).init(),
                        resid_dropout: DropoutConfig::new(c.resid_pdrop).init(),
                        n_head: c.n_head,
                    },
                    ln_2: ln(),
                    mlp: Gpt2Mlp {
                        c_fc: lin(d, c.inner()),
                        c_proj: lin(c.inner(), d),
                        dropout: DropoutConfig::new(c.resid_pdrop).init(),
                        act,
                    },
                })
                .collect(),
            ln_f: ln(),
        }
    }

    /// Final hidden states `[b, t, d]` (after `ln_f`) for token ids `[b, t]`.
    pub fn hidden(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, t] = ids.dims();
        let device = ids.device();
        let pos = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let mut x = self
            .drop
            .forward(self.wte.forward(ids) + self.wpe.forward(pos));
        let bias = causal_bias(t, &device);
        for block in &self.h {
            x = block.forward(x, bias.clone());
        }
        self.ln_f.forward(x)
    }

    /// Next-token logits `[b, t, vocab]` through the tied head (`h · wteᵀ`).
    pub fn logits(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let h = self.hidden(ids);
        let [b, t, d] = h.dims();
        let w = self.wte.weight.val(); // [V, d]
        let v = w.dims()[0];
        h.reshape([b * t, d])
            .matmul(w.transpose())
            .reshape([b, t, v])
    }

    /// Mean next-token cross-entropy over every position but the last (HF `labels = input_ids`).
    ///
    /// Written for the 50,257-way head, where the logits dwarf everything else: the hidden
    /// states are cut to the predicting positions before the head (no copy of the logits), and
    /// the loss is [`crate::cross_entropy::cross_entropy_rows`], one fused pass each way over
    /// `[b·(t−1), V]` instead of a chain of tracked tensor ops.
    pub fn loss(&self, ids: Tensor<2, Int>) -> Tensor<1> {
        let [b, t] = ids.dims();
        let h = self.hidden(ids.clone()).narrow(1, 0, t - 1);
        let d = h.dims()[2];
        let n = b * (t - 1);
        let w = self.wte.weight.val(); // [V, d]
        let z = h.reshape([n, d]).matmul(w.transpose()); // [n, V]
        let targets = ids.narrow(1, 1, t - 1).reshape([n]);
        crate::cross_entropy::cross_entropy_rows(z, targets).mean()
    }
}
