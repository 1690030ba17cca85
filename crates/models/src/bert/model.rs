use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::activation::{gelu, relu, softmax};
use burn::tensor::{Device, Int, Tensor};

use super::{BertConfig, EncoderMasks};
use crate::dense;

/// Additive bias for masked key positions. HF uses `finfo(float32).min`; a large finite value
/// gives the same probabilities (exp underflows to 0) and stays finite on every backend.
const MASKED_SCORE: f32 = -1.0e9;

/// One tokenized batch. Shapes: all `[batch, seq]`.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    pub input_ids: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor<2, Int>,
}

impl EncoderInput {
    /// Builds tensors from row-major ids (`batch * seq` values each).
    pub fn from_rows(
        ids: Vec<i64>,
        types: Vec<i64>,
        mask: Vec<i64>,
        batch: usize,
        seq: usize,
        device: &Device,
    ) -> Self {
        let t = |v: Vec<i64>| {
            Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(v, [batch * seq]), device)
                .reshape([batch, seq])
        };
        Self {
            input_ids: t(ids),
            token_type_ids: t(types),
            attention_mask: t(mask),
        }
    }

    /// Tensors of a padded batch from kiln-data.
    pub fn from_batch(b: &kiln_data::Batch, device: &Device) -> Self {
        Self::from_rows(
            b.ids.clone(),
            b.type_ids.clone(),
            b.mask.clone(),
            b.batch,
            b.seq,
            device,
        )
    }

    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            input_ids: self.input_ids.clone().to_device(device),
            token_type_ids: self.token_type_ids.clone().to_device(device),
            attention_mask: self.attention_mask.clone().to_device(device),
        }
    }
}

/// Encoder outputs, as HF's `BaseModelOutputWithPooling`.
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// `[batch, seq, hidden]`
    pub last_hidden_state: Tensor<3>,
    /// `[batch, hidden]`: tanh(dense(h_[CLS])), when the checkpoint has a pooler.
    pub pooler_output: Option<Tensor<2>>,
}

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// First position id of a real token (RoBERTa: `pad_token_id + 1`; BERT: 0).
    pub position_offset: usize,
    /// Position id of padding (RoBERTa: `pad_token_id`); unused when `position_offset` is 0.
    pub pad_position: usize,
}

impl BertEmbeddings {
    fn new(c: &BertConfig, device: &Device) -> Self {
        Self {
            word_embeddings: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
            position_embeddings: EmbeddingConfig::new(c.max_position_embeddings, c.hidden_size)
                .init(device),
            token_type_embeddings: EmbeddingConfig::new(c.type_vocab_size, c.hidden_size)
                .init(device),
            layer_norm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            position_offset: c.position_offset(),
            pad_position: c.pad_token_id,
        }
    }

    /// `[batch, seq]` ids -> `[batch, seq, hidden]`. RoBERTa positions assume right padding (as
    /// kiln's batches are): real token j gets `offset + j`, padding gets `pad_token_id`, which is
    /// what HF's cumulative-sum rule gives for right-padded rows. A model with one token type
    /// ignores the pair segment ids a BERT-style tokenizer may produce.
    fn forward(&self, input: &EncoderInput) -> Tensor<3> {
        let [b, seq] = input.input_ids.dims();
        let device = input.input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let positions = if self.position_offset == 0 {
            positions.repeat_dim(0, b)
        } else {
            let m = input.attention_mask.clone();
            (positions.repeat_dim(0, b) + self.position_offset as i64) * m.clone()
                + (m.neg() + 1) * self.pad_position as i64
        };
        let types = if self.token_type_embeddings.weight.dims()[0] == 1 {
            input.token_type_ids.zeros_like()
        } else {
            input.token_type_ids.clone()
        };
        let x = self.word_embeddings.forward(input.input_ids.clone())
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// HF `BertSelfAttention` (eager). `num_heads` is the number of heads physically present.
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    pub num_heads: usize,
    pub head_dim: usize,
}

impl BertSelfAttention {
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, _] = x.dims();
        x.reshape([b, l, self.num_heads, self.head_dim])
            .swap_dims(1, 2) // [b, heads, l, head_dim]
    }

    /// Per-head context before any head mask: `x: [b, l, hidden]`, `bias: [b, 1, 1, l]` ->
    /// `[b, heads, l, head_dim]`.
    pub fn context(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<4> {
        let (probs, v) = self.probs_and_values(x, bias);
        probs.matmul(v)
    }

    /// Attention probabilities after dropout `[b, heads, l, l]` and per-head values
    /// `[b, heads, l, head_dim]`, for methods that read the attention (token pruning scores
    /// tokens by the attention they receive).
    pub fn probs_and_values(&self, x: Tensor<3>, bias: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let q = self.split_heads(dense(&self.query, x.clone()));
        let k = self.split_heads(dense(&self.key, x.clone()));
        let v = self.split_heads(dense(&self.value, x));
        let scores = q.matmul(k.swap_dims(2, 3)) / (self.head_dim as f64).sqrt() + bias;
        (self.dropout.forward(softmax(scores, 3)), v)
    }

    /// Applies a head mask (HF semantics: it scales each head's probabilities, hence its
    /// context) and merges heads: `[b, heads, l, head_dim]` -> `[b, l, heads*head_dim]`.
    pub fn merge(&self, ctx: Tensor<4>, head_mask: Option<Tensor<1>>) -> Tensor<3> {
        let [b, _, l, _] = ctx.dims();
        let ctx = match head_mask {
            Some(m) => ctx * m.reshape([1, self.num_heads, 1, 1]),
            None => ctx,
        };
        ctx.swap_dims(1, 2)
            .reshape([b, l, self.num_heads * self.head_dim])
    }
}

/// HF `BertSelfOutput` / `BertOutput`: dense -> dropout -> LayerNorm(residual + .).
#[derive(Module, Debug)]
pub struct BertResidualOutput {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl BertResidualOutput {
    fn new(d_in: usize, c: &BertConfig, device: &Device) -> Self {
        Self {
            dense: LinearConfig::new(d_in, c.hidden_size).init(device),
            layer_norm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
        }
    }

    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.layer_norm
            .forward(self.dropout.forward(dense(&self.dense, x)) + residual)
    }

    /// dense -> dropout -> LayerNorm(residual + .), for block-level timing and reconstruction.
    pub fn forward_pub(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.forward(x, residual)
    }
}

#[derive(Module, Debug)]
pub struct BertAttention {
    /// `self` in HF's names; renamed on load/save since `self` is a Rust keyword.
    pub self_attn: BertSelfAttention,
    pub output: BertResidualOutput,
}

#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
    /// 0 = gelu (erf), 1 = relu, 2 = tanh-approximate gelu.
    pub act: usize,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertResidualOutput,
}

impl BertLayer {
    fn new(c: &BertConfig, l: usize, device: &Device) -> Self {
        let heads = c.kept_heads(l).len();
        let width = heads * c.head_dim();
        let inter = c.intermediate_size_of(l);
        let act = match c.hidden_act.as_str() {
            "relu" => 1,
            "gelu_new" | "gelu_pytorch_tanh" => 2,
            _ => 0,
        };
        Self {
            attention: BertAttention {
                self_attn: BertSelfAttention {
                    query: LinearConfig::new(c.hidden_size, width).init(device),
                    key: LinearConfig::new(c.hidden_size, width).init(device),
                    value: LinearConfig::new(c.hidden_size, width).init(device),
                    dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
                    num_heads: heads,
                    head_dim: c.head_dim(),
                },
                output: BertResidualOutput::new(width, c, device),
            },
            intermediate: BertIntermediate {
                dense: LinearConfig::new(c.hidden_size, inter).init(device),
                act,
            },
            output: BertResidualOutput::new(inter, c, device),
        }
    }

    /// The layer's forward pass.
    pub fn forward(
        &self,
        x: Tensor<3>,
        bias: Tensor<4>,
        head_mask: Option<Tensor<1>>,
        ffn_mask: Option<Tensor<1>>,
    ) -> Tensor<3> {
        self.forward_traced(x, bias, head_mask, ffn_mask).out
    }

    /// The forward pass, keeping the intermediate values layer-wise reconstruction needs.
    pub fn forward_traced(
        &self,
        x: Tensor<3>,
        bias: Tensor<4>,
        head_mask: Option<Tensor<1>>,
        ffn_mask: Option<Tensor<1>>,
    ) -> LayerTrace {
        let context = (self.attention.self_attn.num_heads > 0)
            .then(|| self.attention.self_attn.context(x.clone(), bias));
        let attn = self.attend(x, context.clone(), head_mask);
        let act = self.ffn_activation(attn.clone());
        let out = self.ffn_output(act.clone(), ffn_mask, attn.clone());
        LayerTrace {
            context,
            attn_out: attn,
            ffn_act: act,
            out,
        }
    }

    /// The attention sub-block's output (after its LayerNorm) from a precomputed per-head
    /// context (`None` when the layer has no heads), so reconstruction can rescale heads without
    /// recomputing attention.
    pub fn attend(
        &self,
        x: Tensor<3>,
        context: Option<Tensor<4>>,
        head_mask: Option<Tensor<1>>,
    ) -> Tensor<3> {
        match context {
            // Every head pruned: the sub-layer reduces to its output bias (HF's behaviour with an
            // empty Linear), so only the residual path and LayerNorm remain.
            None => {
                let bias = self
                    .attention
                    .output
                    .dense
                    .bias
                    .as_ref()
                    .map(|b| b.val().unsqueeze::<3>())
                    .unwrap_or_else(|| x.zeros_like());
                self.attention.output.layer_norm.forward(x + bias)
            }
            Some(ctx) => {
                let merged = self.attention.self_attn.merge(ctx, head_mask);
                self.attention.output.forward(merged, x)
            }
        }
    }

    /// FFN activations after the nonlinearity, before any neuron mask.
    pub fn ffn_activation(&self, attn: Tensor<3>) -> Tensor<3> {
        let h = dense(&self.intermediate.dense, attn);
        match self.intermediate.act {
            1 => relu(h),
            2 => burn::tensor::activation::gelu_approximate(h),
            _ => gelu(h),
        }
    }

    /// The layer output from FFN activations: mask, output projection, LayerNorm(attn + .).
    pub fn ffn_output(
        &self,
        act: Tensor<3>,
        ffn_mask: Option<Tensor<1>>,
        attn: Tensor<3>,
    ) -> Tensor<3> {
        let masked = match ffn_mask {
            Some(m) => {
                let n = m.dims()[0];
                act * m.reshape([1, 1, n])
            }
            None => act,
        };
        self.output.forward(masked, attn)
    }
}

/// Intermediate values of one layer (see [`BertLayer::forward_traced`]).
#[derive(Debug, Clone)]
pub struct LayerTrace {
    /// Per-head context before the head mask, `[b, heads, l, head_dim]`; `None` with no heads.
    pub context: Option<Tensor<4>>,
    /// Attention sub-block output after its LayerNorm, `[b, l, hidden]`.
    pub attn_out: Tensor<3>,
    /// FFN activations after GELU and before the neuron mask, `[b, l, neurons]`.
    pub ffn_act: Tensor<3>,
    /// Layer output, `[b, l, hidden]`.
    pub out: Tensor<3>,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

#[derive(Module, Debug)]
pub struct BertPooler {
    pub dense: Linear,
}

/// HF `BertModel`: embeddings, encoder, optional pooler.
#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
    pub pooler: Option<BertPooler>,
}

impl BertModel {
    /// Randomly initialised model with the given shape (weights N(0, 0.02) as HF's
    /// `_init_weights`, LayerNorm 1/0, biases 0).
    pub fn new(c: &BertConfig, with_pooler: bool, device: &Device) -> Self {
        let init = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let lin = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(init.clone())
                .init(device)
        };
        let mut m = Self {
            embeddings: BertEmbeddings::new(c, device),
            encoder: BertEncoder {
                layer: (0..c.num_hidden_layers)
                    .map(|l| BertLayer::new(c, l, device))
                    .collect(),
            },
            pooler: with_pooler.then(|| BertPooler {
                dense: lin(c.hidden_size, c.hidden_size),
            }),
        };
        let emb = |n: usize| {
            EmbeddingConfig::new(n, c.hidden_size)
                .with_initializer(init.clone())
                .init(device)
        };
        m.embeddings.word_embeddings = emb(c.vocab_size);
        m.embeddings.position_embeddings = emb(c.max_position_embeddings);
        m.embeddings.token_type_embeddings = emb(c.type_vocab_size);
        for (l, layer) in m.encoder.layer.iter_mut().enumerate() {
            let heads = c.kept_heads(l).len() * c.head_dim();
            let inter = c.intermediate_size_of(l);
            layer.attention.self_attn.query = zero_bias(lin(c.hidden_size, heads));
            layer.attention.self_attn.key = zero_bias(lin(c.hidden_size, heads));
            layer.attention.self_attn.value = zero_bias(lin(c.hidden_size, heads));
            layer.attention.output.dense = zero_bias(lin(heads, c.hidden_size));
            layer.intermediate.dense = zero_bias(lin(c.hidden_size, inter));
            layer.output.dense = zero_bias(lin(inter, c.hidden_size));
        }
        if let Some(p) = m.pooler.as_mut() {
            p.dense = zero_bias(lin(c.hidden_size, c.hidden_size));
        }
        m
    }

    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    /// Heads present per layer.
    pub fn heads_per_layer(&self) -> Vec<usize> {
        self.encoder
            .layer
            .iter()
            .map(|l| l.attention.self_attn.num_heads)
            .collect()
    }

    /// FFN neurons present per layer.
    pub fn neurons_per_layer(&self) -> Vec<usize> {
        self.encoder
            .layer
            .iter()
            .map(|l| l.intermediate.dense.weight.dims()[1])
            .collect()
    }

    /// Runs the encoder. `masks` multiply each head's context and each FFN neuron's activation
    /// (HF's `head_mask` semantics), so gradients w.r.t. them are the pruning importance signals.
    pub fn forward(&self, input: &EncoderInput, masks: Option<&EncoderMasks>) -> BertOutput {
        let bias = attention_bias(&input.attention_mask);
        let mut x = self.embed(input);
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let hm = masks.map(|m| m.head[i].clone());
            let fm = masks.map(|m| m.ffn[i].clone());
            x = layer.forward(x, bias.clone(), hm, fm);
        }
        let pooler_output = self.pool(&x);
        BertOutput {
            last_hidden_state: x,
            pooler_output,
        }
    }

    /// Embedding output (the input of layer 0), `[b, l, hidden]`.
    pub fn embed(&self, input: &EncoderInput) -> Tensor<3> {
        self.embeddings.forward(input)
    }

    /// Pooler output for a last hidden state.
    pub fn pool(&self, x: &Tensor<3>) -> Option<Tensor<2>> {
        self.pooler.as_ref().map(|p| {
            let [b, _, h] = x.dims();
            p.dense
                .forward(x.clone().narrow(1, 0, 1).reshape([b, h]))
                .tanh()
        })
    }
}

/// Additive attention bias `[b, 1, 1, l]`: 0 for real tokens, a large negative for padding.
pub fn attention_bias(attention_mask: &Tensor<2, Int>) -> Tensor<4> {
    let [b, l] = attention_mask.dims();
    (attention_mask.clone().float().neg() + 1.0).reshape([b, 1, 1, l]) * MASKED_SCORE
}

/// A Linear initialised as HF's `_init_weights`: N(0, 0.02) weights, zero bias.
pub(crate) fn hf_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    zero_bias(
        LinearConfig::new(d_in, d_out)
            .with_initializer(burn::nn::Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            })
            .init(device),
    )
}

pub(crate) fn zero_bias(mut lin: Linear) -> Linear {
    if let Some(b) = lin.bias.take() {
        lin.bias = Some(burn::module::Param::from_tensor(b.val().zeros_like()));
    }
    lin
}

/// Mean of the unmasked token vectors, as sentence-transformers' mean pooling. `[b, h]`
pub fn mean_pool(hidden: Tensor<3>, attention_mask: Tensor<2, Int>) -> Tensor<2> {
    let [b, l, _] = hidden.dims();
    let m = attention_mask.float().reshape([b, l, 1]);
    let summed = (hidden * m.clone()).sum_dim(1).squeeze_dim::<2>(1);
    let counts = m.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
    summed / counts
}
