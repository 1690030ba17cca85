//! fairseq's Transformer layers over [`Projection`]s: multi-head attention (queries scaled
//! before the product), the post-LN (or pre-LN) residual blocks, and the per-layer key/value
//! cache incremental decoding appends to.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use super::{project, EncoderOut, Projection};

/// LayerNorm over the last dimension (eps 1e-5, as fairseq), with or without gain and bias.
#[derive(Module, Debug)]
pub struct Norm {
    pub gamma: Option<Param<Tensor<1>>>,
    pub beta: Option<Param<Tensor<1>>>,
}

impl Norm {
    pub fn new(d: usize, affine: bool, device: &Device) -> Self {
        Self {
            gamma: affine.then(|| Param::from_tensor(Tensor::ones([d], device))),
            beta: affine.then(|| Param::from_tensor(Tensor::zeros([d], device))),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (var, mean) = x.clone().var_mean_bias(2);
        let mut y = (x - mean) / (var + 1e-5).sqrt();
        if let Some(g) = &self.gamma {
            y = y * g.val().unsqueeze::<3>();
        }
        if let Some(b) = &self.beta {
            y = y + b.val().unsqueeze::<3>();
        }
        y
    }
}

#[derive(Module, Debug)]
pub struct MultiheadAttention<P: Projection + Module> {
    pub q: P,
    pub k: P,
    pub v: P,
    pub out: P,
    pub dropout: Dropout,
    pub heads: usize,
}

/// Cached keys and values of one decoder layer: self-attention's `[b, h, t, hd]` grows by one
/// position per step; the encoder's, `[b / beams, h, s, hd]` (one per encoder row, see
/// [`EncoderOut::beams`](super::EncoderOut)), are computed once.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    pub self_kv: Option<(Tensor<4>, Tensor<4>)>,
    pub cross_kv: Option<(Tensor<4>, Tensor<4>)>,
}

impl LayerCache {
    /// Reorders the self-attention cache (decoder rows): beams moving within their sentence
    /// leave the encoder's keys and values where they are.
    pub fn select_self(&mut self, index: &Tensor<1, burn::tensor::Int>) {
        if let Some(kv) = &mut self.self_kv {
            kv.0 = kv.0.clone().select(0, index.clone());
            kv.1 = kv.1.clone().select(0, index.clone());
        }
    }

    /// Keeps encoder rows `index` of the cross-attention cache (finished sentences leave).
    pub fn select_cross(&mut self, index: &Tensor<1, burn::tensor::Int>) {
        if let Some(kv) = &mut self.cross_kv {
            kv.0 = kv.0.clone().select(0, index.clone());
            kv.1 = kv.1.clone().select(0, index.clone());
        }
    }
}

impl<P: Projection> MultiheadAttention<P> {
    pub fn new(q: P, k: P, v: P, out: P, heads: usize, dropout: f64) -> Self {
        Self {
            q,
            k,
            v,
            out,
            dropout: DropoutConfig::new(dropout).init(),
            heads,
        }
    }

    fn split(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, d] = x.dims();
        x.reshape([b, l, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    fn keys_values(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        (
            self.split(project(&self.k, x.clone())),
            self.split(project(&self.v, x)),
        )
    }

    fn attend(
        &self,
        queries: Tensor<3>,
        k: Tensor<4>,
        v: Tensor<4>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let [b, lq, d] = queries.dims();
        let hd = d / self.heads;
        let q = self.split(project(&self.q, queries) * (hd as f64).powf(-0.5));
        let mut scores = q.matmul(k.swap_dims(2, 3));
        if let Some(bias) = bias {
            scores = scores + bias;
        }
        let probs = self.dropout.forward(softmax(scores, 3));
        let ctx = probs.matmul(v).swap_dims(1, 2).reshape([b, lq, d]);
        project(&self.out, ctx)
    }

    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let (k, v) = self.keys_values(keys);
        self.attend(queries, k, v, bias)
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer<P: Projection + Module> {
    pub attn: MultiheadAttention<P>,
    pub attn_norm: Norm,
    pub fc1: P,
    pub fc2: P,
    pub ffn_norm: Norm,
    pub dropout: Dropout,
    pub activation_dropout: Dropout,
    pub pre_norm: bool,
}

/// `LN(x + Dropout(f(x)))` (post-LN) or `x + Dropout(f(LN(x)))` (pre-LN).
fn residual(
    x: Tensor<3>,
    norm: &Norm,
    pre: bool,
    dropout: &Dropout,
    f: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> Tensor<3> {
    if pre {
        x.clone() + dropout.forward(f(norm.forward(x)))
    } else {
        norm.forward(x.clone() + dropout.forward(f(x)))
    }
}

fn ffn<P: Projection>(fc1: &P, fc2: &P, act_dropout: &Dropout, x: Tensor<3>) -> Tensor<3> {
    project(fc2, act_dropout.forward(relu(project(fc1, x))))
}

impl<P: Projection> EncoderLayer<P> {
    pub fn forward(&self, x: Tensor<3>, key_bias: Tensor<4>) -> Tensor<3> {
        let x = residual(x, &self.attn_norm, self.pre_norm, &self.dropout, |h| {
            self.attn.forward(h.clone(), h, Some(key_bias))
        });
        residual(x, &self.ffn_norm, self.pre_norm, &self.dropout, |h| {
            ffn(&self.fc1, &self.fc2, &self.activation_dropout, h)
        })
    }
}

#[derive(Module, Debug)]
pub struct DecoderLayer<P: Projection + Module> {
    pub self_attn: MultiheadAttention<P>,
    pub self_norm: Norm,
    pub cross_attn: MultiheadAttention<P>,
    pub cross_norm: Norm,
    pub fc1: P,
    pub fc2: P,
    pub ffn_norm: Norm,
    pub dropout: Dropout,
    pub activation_dropout: Dropout,
    pub pre_norm: bool,
}

impl<P: Projection> DecoderLayer<P> {
    pub fn forward(&self, x: Tensor<3>, causal: Tensor<4>, enc: &EncoderOut) -> Tensor<3> {
        let x = residual(x, &self.self_norm, self.pre_norm, &self.dropout, |h| {
            self.self_attn.forward(h.clone(), h, Some(causal))
        });
        let x = residual(x, &self.cross_norm, self.pre_norm, &self.dropout, |h| {
            self.cross_attn
                .forward(h, enc.x.clone(), Some(enc.key_bias.clone()))
        });
        residual(x, &self.ffn_norm, self.pre_norm, &self.dropout, |h| {
            ffn(&self.fc1, &self.fc2, &self.activation_dropout, h)
        })
    }

    /// One position `x [b, 1, d]`: its key/value joins the cache, so the query sees every
    /// earlier position and itself (what the causal mask allows in [`DecoderLayer::forward`]).
    /// With `enc.beams = g`, `b = g·(encoder rows)`: the `g` queries of a source sentence attend
    /// to its keys as one `[g, s]` product.
    pub fn step(&self, x: Tensor<3>, enc: &EncoderOut, cache: &mut LayerCache) -> Tensor<3> {
        let x = residual(x, &self.self_norm, self.pre_norm, &self.dropout, |h| {
            let (k, v) = self.self_attn.keys_values(h.clone());
            let (k, v) = match cache.self_kv.take() {
                Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                None => (k, v),
            };
            cache.self_kv = Some((k.clone(), v.clone()));
            self.self_attn.attend(h, k, v, None)
        });
        let x = residual(x, &self.cross_norm, self.pre_norm, &self.dropout, |h| {
            let (k, v) = cache
                .cross_kv
                .get_or_insert_with(|| self.cross_attn.keys_values(enc.x.clone()))
                .clone();
            let [b, _, d] = h.dims();
            let g = enc.beams.max(1);
            assert!(
                b.is_multiple_of(g),
                "{b} decoder rows cannot be grouped {g} per encoder row"
            );
            let grouped = h.reshape([b / g, g, d]);
            self.cross_attn
                .attend(grouped, k, v, Some(enc.key_bias.clone()))
                .reshape([b, 1, d])
        });
        residual(x, &self.ffn_norm, self.pre_norm, &self.dropout, |h| {
            ffn(&self.fc1, &self.fc2, &self.activation_dropout, h)
        })
    }
}
