//! A fairseq-style Transformer encoder-decoder for translation: post-LN (or pre-LN) layers,
//! sinusoidal positions counted past the padding index, token embeddings scaled by √d,
//! label-smoothed cross-entropy, the inverse-square-root schedule, cached incremental decoding
//! and fairseq's beam search.
//!
//! The model is generic over where its matrices come from. [`Projection`] yields a layer's
//! effective `[d_in, d_out]` weight (and bias), [`TokenTable`] an embedding table: the dense
//! implementations here ([`DenseProj`], [`DenseTable`]) are ordinary learnt parameters with
//! fairseq's initialisation; a method crate can supply masked, shared or frozen ones (the
//! one-layer lottery builds every layer from one random layer and per-layer learnt masks) and
//! reuse the whole stack, including decoding. Construction goes through a factory called once
//! per matrix with its [`Site`], so sharing is decided by the caller.
//!
//! Shapes follow fairseq: `d_model`, `ffn`, `heads`, layers per side; presets
//! [`Seq2SeqConfig::iwslt_de_en`] (`transformer_iwslt_de_en`: 512/1024/4 heads/6+6) and
//! [`Seq2SeqConfig::base`] (`transformer_wmt_en_de`: 512/2048/8/6+6).

pub mod batch;
pub mod beam;
pub mod layers;
pub mod schedule;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use batch::{batch_by_size, Batch, Pair};
pub use beam::{beam_search, beam_search_observed, BeamConfig, Hypothesis};
pub use layers::{DecoderLayer, EncoderLayer, LayerCache, MultiheadAttention, Norm};
pub use schedule::InverseSqrt;

/// fairseq's dictionary layout: `<s>`, `<pad>`, `</s>`, `<unk>` first.
pub const BOS: usize = 0;
pub const PAD: usize = 1;
pub const EOS: usize = 2;
pub const UNK: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seq2SeqConfig {
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub d_model: usize,
    pub ffn: usize,
    pub heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub dropout: f64,
    pub attention_dropout: f64,
    pub activation_dropout: f64,
    /// fairseq's `normalize_before`: false (post-LN) for every preset here, as the papers ran.
    pub pre_norm: bool,
    /// Decoder output projection = decoder input embedding (fairseq's
    /// `--share-decoder-input-output-embed`).
    pub share_decoder_io: bool,
    /// One table for the encoder's input, the decoder's input and the output projection
    /// (fairseq's `--share-all-embeddings`, the trained WMT14 Transformer's setting). Needs a
    /// joined dictionary (`src_vocab == tgt_vocab`, the same symbols) and implies
    /// `share_decoder_io`. The one-layer lottery's masked models never use it: the official code
    /// keeps separate encoder and decoder tables even on WMT14's joined dictionary.
    #[serde(default)]
    pub share_all_embeddings: bool,
    /// LayerNorm gains and biases (the one-layer lottery turns them off: nothing to learn).
    pub norm_affine: bool,
    /// Biases in every projection (fairseq's default; off in the lottery).
    pub bias: bool,
    /// Longest sequence the sinusoidal table covers (fairseq's `max_source_positions`).
    pub max_positions: usize,
}

impl Seq2SeqConfig {
    /// fairseq `transformer_iwslt_de_en`.
    pub fn iwslt_de_en(src_vocab: usize, tgt_vocab: usize) -> Self {
        Self {
            src_vocab,
            tgt_vocab,
            d_model: 512,
            ffn: 1024,
            heads: 4,
            encoder_layers: 6,
            decoder_layers: 6,
            dropout: 0.3,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            pre_norm: false,
            share_decoder_io: true,
            share_all_embeddings: false,
            norm_affine: true,
            bias: true,
            max_positions: 1024,
        }
    }

    /// fairseq `transformer_wmt_en_de` (the base Transformer).
    pub fn base(src_vocab: usize, tgt_vocab: usize) -> Self {
        Self {
            ffn: 2048,
            heads: 8,
            dropout: 0.1,
            ..Self::iwslt_de_en(src_vocab, tgt_vocab)
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(format!(
                "d_model {} must be a positive multiple of heads {}",
                self.d_model, self.heads
            ));
        }
        if self.src_vocab <= UNK || self.tgt_vocab <= UNK {
            return Err("vocabularies must hold at least the four special symbols".into());
        }
        if self.share_all_embeddings && (self.src_vocab != self.tgt_vocab || !self.share_decoder_io)
        {
            return Err(format!(
                "share_all_embeddings needs one joined dictionary (src_vocab {} and tgt_vocab {} must be equal; build the dictionaries with `joined`) and a tied output projection (share_decoder_io, here {})",
                self.src_vocab, self.tgt_vocab, self.share_decoder_io
            ));
        }
        if self.encoder_layers == 0 || self.decoder_layers == 0 || self.ffn == 0 {
            return Err("layers and ffn width must be positive".into());
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
            ("activation_dropout", self.activation_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} {p} must lie in [0, 1)"));
            }
        }
        Ok(())
    }
}

/// Which matrix a factory call is for. `layer` counts from 0 within its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Site {
    pub side: Side,
    pub layer: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Encoder,
    Decoder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    SelfQ,
    SelfK,
    SelfV,
    SelfOut,
    CrossQ,
    CrossK,
    CrossV,
    CrossOut,
    Fc1,
    Fc2,
    /// The untied decoder output projection (only when `share_decoder_io` is off).
    Output,
}

impl Kind {
    pub fn is_attention(self) -> bool {
        !matches!(self, Kind::Fc1 | Kind::Fc2 | Kind::Output)
    }
    /// fairseq's parameter name inside a layer, for reports and checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SelfQ => "self_attn.q_proj",
            Kind::SelfK => "self_attn.k_proj",
            Kind::SelfV => "self_attn.v_proj",
            Kind::SelfOut => "self_attn.out_proj",
            Kind::CrossQ => "encoder_attn.q_proj",
            Kind::CrossK => "encoder_attn.k_proj",
            Kind::CrossV => "encoder_attn.v_proj",
            Kind::CrossOut => "encoder_attn.out_proj",
            Kind::Fc1 => "fc1",
            Kind::Fc2 => "fc2",
            Kind::Output => "output_projection",
        }
    }
}

/// A linear map whose effective weight may be computed (masked, shared) rather than stored.
pub trait Projection: Module + burn::module::ModuleDisplay + Clone + core::fmt::Debug {
    /// The weight actually applied, `[d_in, d_out]` (burn's `Linear` layout).
    fn weight(&self) -> Tensor<2>;
    fn bias(&self) -> Option<Tensor<1>>;
}

/// A token embedding table `[vocab, d]`, also the tied output projection.
pub trait TokenTable: Module + burn::module::ModuleDisplay + Clone + core::fmt::Debug {
    fn table(&self) -> Tensor<2>;
}

/// `x·W (+ b)` with every leading dimension folded into one GEMM.
pub fn project<P: Projection, const D: usize>(p: &P, x: Tensor<D>) -> Tensor<D> {
    linear(x, p.weight(), p.bias())
}

pub(crate) fn linear<const D: usize>(
    x: Tensor<D>,
    w: Tensor<2>,
    b: Option<Tensor<1>>,
) -> Tensor<D> {
    let dims = x.dims();
    let [d_in, d_out] = w.dims();
    let rows: usize = dims[..D - 1].iter().product();
    let mut y = x.reshape([rows, d_in]).matmul(w);
    if let Some(b) = b {
        y = y + b.unsqueeze::<2>();
    }
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}

/// An ordinary learnt linear layer.
#[derive(Module, Debug)]
pub struct DenseProj {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Projection for DenseProj {
    fn weight(&self) -> Tensor<2> {
        self.weight.val()
    }
    fn bias(&self) -> Option<Tensor<1>> {
        self.bias.as_ref().map(|b| b.val())
    }
}

/// An ordinary learnt embedding table.
#[derive(Module, Debug)]
pub struct DenseTable {
    pub weight: Param<Tensor<2>>,
}

impl TokenTable for DenseTable {
    fn table(&self) -> Tensor<2> {
        self.weight.val()
    }
}

/// Host-side uniform `U(-bound, bound)` draws, so a seed gives the same weights on every backend.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<f32> {
    (0..n)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect()
}

/// Host-side normal draws (Box-Muller), same reason.
pub fn normal(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random::<f64>();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * std) as f32
        })
        .collect()
}

pub fn tensor2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// fairseq's `MultiheadAttention.reset_parameters`: Xavier-uniform with gain 1/√2 for the q, k
/// and v projections and gain 1 for the output projection, whatever the model's `--init` says
/// (the one-layer lottery keeps this too, spec §4). `None` for every other matrix.
pub fn attention_weight(
    kind: Kind,
    d_in: usize,
    d_out: usize,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<f32>> {
    let gain = match kind {
        Kind::SelfQ | Kind::SelfK | Kind::SelfV | Kind::CrossQ | Kind::CrossK | Kind::CrossV => {
            1.0 / 2f64.sqrt()
        }
        Kind::SelfOut | Kind::CrossOut => 1.0,
        _ => return None,
    };
    Some(uniform(rng, d_in * d_out, xavier_bound(d_in, d_out, gain)))
}

/// fairseq's Xavier-uniform bound for a `[d_in, d_out]` matrix with `gain`.
pub fn xavier_bound(d_in: usize, d_out: usize, gain: f64) -> f64 {
    gain * (6.0 / (d_in + d_out) as f64).sqrt()
}

impl DenseProj {
    /// fairseq's initialisation: Xavier-uniform (gain 1/√2 for q, k and v, as its
    /// `MultiheadAttention` does when the three share a width; gain 1 elsewhere), zero biases;
    /// an untied output projection is N(0, d^-1/2) like the embeddings.
    pub fn fairseq(
        site: Site,
        d_in: usize,
        d_out: usize,
        bias: bool,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Self {
        let w = match attention_weight(site.kind, d_in, d_out, rng) {
            Some(w) => w,
            None if site.kind == Kind::Output => {
                normal(rng, d_in * d_out, (d_in as f64).powf(-0.5))
            }
            None => uniform(rng, d_in * d_out, xavier_bound(d_in, d_out, 1.0)),
        };
        Self {
            weight: Param::from_tensor(tensor2(w, [d_in, d_out], device)),
            bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_out], device))),
        }
    }
}

impl DenseTable {
    /// N(0, d^-1/2) with the padding row zero, as fairseq's `Embedding`.
    pub fn fairseq(vocab: usize, d: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let mut w = normal(rng, vocab * d, (d as f64).powf(-0.5));
        w[PAD * d..(PAD + 1) * d].fill(0.0);
        Self {
            weight: Param::from_tensor(tensor2(w, [vocab, d], device)),
        }
    }
}

/// fairseq's sinusoidal table `[max_positions + PAD + 1, d]`: sines in the first half, cosines
/// in the second (not interleaved), the padding row zero. Position `p` of a sequence's first
/// real token is `PAD + 1`.
pub fn sinusoidal_table(rows: usize, d: usize) -> Vec<f32> {
    let half = d / 2;
    let step = (10000f64).ln() / (half as f64 - 1.0).max(1.0);
    let mut t = vec![0f32; rows * d];
    for p in 0..rows {
        if p == PAD {
            continue;
        }
        for i in 0..half {
            // fairseq computes the frequencies and products in float32.
            let f = ((i as f32) * -(step as f32)).exp();
            let a = p as f32 * f;
            t[p * d + i] = a.sin();
            t[p * d + half + i] = a.cos();
        }
    }
    t
}

/// What the encoder hands the decoder.
#[derive(Debug, Clone)]
pub struct EncoderOut {
    /// `[b, s, d]`
    pub x: Tensor<3>,
    /// `[b, 1, 1, s]` additive bias: 0 for tokens, -1e9 for padding.
    pub key_bias: Tensor<4>,
    /// Decoder rows per encoder row in incremental decoding: beam search sets it to the beam
    /// (decoder row `i·beams + j` reads source `i`), so the cross-attention keys and values are
    /// computed, cached and reordered once per sentence rather than once per beam. 1 otherwise.
    pub beams: usize,
}

#[derive(Module, Debug)]
pub struct Encoder<P: Projection + Module, T: TokenTable + Module> {
    pub embed: T,
    pub layers: Vec<EncoderLayer<P>>,
    /// Only with `pre_norm` (fairseq's final encoder LayerNorm).
    pub final_norm: Option<Norm>,
    pub dropout: Dropout,
    pub positions: Param<Tensor<2>>,
    pub d_model: usize,
}

#[derive(Module, Debug)]
pub struct Decoder<P: Projection + Module, T: TokenTable + Module> {
    /// `None` when the encoder's table is shared (`share_all_embeddings`); read it through
    /// [`Seq2Seq::target_table`].
    pub embed: Option<T>,
    pub layers: Vec<DecoderLayer<P>>,
    pub final_norm: Option<Norm>,
    /// `None` when tied to `embed`.
    pub output: Option<P>,
    pub dropout: Dropout,
    pub positions: Param<Tensor<2>>,
    pub d_model: usize,
}

#[derive(Module, Debug)]
pub struct Seq2Seq<P: Projection + Module, T: TokenTable + Module> {
    pub encoder: Encoder<P, T>,
    pub decoder: Decoder<P, T>,
}

/// Token embedding scaled by √d plus the sinusoidal positions, then dropout.
fn embed_tokens(
    table: Tensor<2>,
    positions: &Param<Tensor<2>>,
    tokens: Tensor<2, Int>,
    pos: Tensor<2, Int>,
    dropout: &Dropout,
) -> Tensor<3> {
    let [b, t] = tokens.dims();
    let d = table.dims()[1];
    let x = table.select(0, tokens.reshape([b * t])).reshape([b, t, d]) * (d as f64).sqrt();
    let p = positions
        .val()
        .select(0, pos.reshape([b * t]))
        .reshape([b, t, d]);
    dropout.forward(x + p)
}

impl<P: Projection, T: TokenTable> Seq2Seq<P, T> {
    /// Builds the model, asking `proj` for every matrix (with its site and `[d_in, d_out]`) and
    /// `table` for the source and target embeddings (the target's only without
    /// `share_all_embeddings`). Sharing is whatever the factories return.
    pub fn build(
        cfg: &Seq2SeqConfig,
        mut proj: impl FnMut(Site, usize, usize) -> P,
        mut table: impl FnMut(Side, usize, usize) -> T,
        device: &Device,
    ) -> Result<Self, crate::ModelError> {
        cfg.validate().map_err(crate::ModelError::Invalid)?;
        let (d, f) = (cfg.d_model, cfg.ffn);
        let rows = cfg.max_positions + PAD + 1;
        let pos = || {
            Param::from_tensor(tensor2(sinusoidal_table(rows, d), [rows, d], device))
                .set_require_grad(false)
        };
        let norm = || Norm::new(d, cfg.norm_affine, device);
        let dropout = DropoutConfig::new(cfg.dropout).init();
        let site = |side, layer, kind| Site { side, layer, kind };
        let enc_layers = (0..cfg.encoder_layers)
            .map(|l| {
                let s = |k| site(Side::Encoder, l, k);
                EncoderLayer {
                    attn: MultiheadAttention::new(
                        proj(s(Kind::SelfQ), d, d),
                        proj(s(Kind::SelfK), d, d),
                        proj(s(Kind::SelfV), d, d),
                        proj(s(Kind::SelfOut), d, d),
                        cfg.heads,
                        cfg.attention_dropout,
                    ),
                    attn_norm: norm(),
                    fc1: proj(s(Kind::Fc1), d, f),
                    fc2: proj(s(Kind::Fc2), f, d),
                    ffn_norm: norm(),
                    dropout: dropout.clone(),
                    activation_dropout: DropoutConfig::new(cfg.activation_dropout).init(),
                    pre_norm: cfg.pre_norm,
                }
            })
            .collect();
        let dec_layers = (0..cfg.decoder_layers)
            .map(|l| {
                let s = |k| site(Side::Decoder, l, k);
                DecoderLayer {
                    self_attn: MultiheadAttention::new(
                        proj(s(Kind::SelfQ), d, d),
                        proj(s(Kind::SelfK), d, d),
                        proj(s(Kind::SelfV), d, d),
                        proj(s(Kind::SelfOut), d, d),
                        cfg.heads,
                        cfg.attention_dropout,
                    ),
                    self_norm: norm(),
                    cross_attn: MultiheadAttention::new(
                        proj(s(Kind::CrossQ), d, d),
                        proj(s(Kind::CrossK), d, d),
                        proj(s(Kind::CrossV), d, d),
                        proj(s(Kind::CrossOut), d, d),
                        cfg.heads,
                        cfg.attention_dropout,
                    ),
                    cross_norm: norm(),
                    fc1: proj(s(Kind::Fc1), d, f),
                    fc2: proj(s(Kind::Fc2), f, d),
                    ffn_norm: norm(),
                    dropout: dropout.clone(),
                    activation_dropout: DropoutConfig::new(cfg.activation_dropout).init(),
                    pre_norm: cfg.pre_norm,
                }
            })
            .collect();
        let output = (!cfg.share_decoder_io)
            .then(|| proj(site(Side::Decoder, 0, Kind::Output), d, cfg.tgt_vocab));
        let enc_embed = table(Side::Encoder, cfg.src_vocab, d);
        let dec_embed = (!cfg.share_all_embeddings).then(|| table(Side::Decoder, cfg.tgt_vocab, d));
        Ok(Self {
            encoder: Encoder {
                embed: enc_embed,
                layers: enc_layers,
                final_norm: cfg.pre_norm.then(norm),
                dropout: dropout.clone(),
                positions: pos(),
                d_model: d,
            },
            decoder: Decoder {
                embed: dec_embed,
                layers: dec_layers,
                final_norm: cfg.pre_norm.then(norm),
                output,
                dropout,
                positions: pos(),
                d_model: d,
            },
        })
    }

    /// The decoder's input table (also its output projection when tied): its own, or the
    /// encoder's under `share_all_embeddings`.
    pub fn target_table(&self) -> &T {
        self.decoder.embed.as_ref().unwrap_or(&self.encoder.embed)
    }

    pub fn encode(
        &self,
        src: Tensor<2, Int>,
        src_pos: Tensor<2, Int>,
        src_pad: Tensor<2, Bool>,
    ) -> EncoderOut {
        let e = &self.encoder;
        let [b, s] = src.dims();
        let key_bias = src_pad.float().reshape([b, 1, 1, s]) * -1.0e9;
        let mut x = embed_tokens(e.embed.table(), &e.positions, src, src_pos, &e.dropout);
        for layer in &e.layers {
            x = layer.forward(x, key_bias.clone());
        }
        if let Some(n) = &e.final_norm {
            x = n.forward(x);
        }
        EncoderOut {
            x,
            key_bias,
            beams: 1,
        }
    }

    /// Teacher-forced decoder logits `[b, t, V]` for `prev` (`</s>` + target without its last
    /// token, right-padded).
    pub fn decode(&self, enc: &EncoderOut, prev: Tensor<2, Int>) -> Tensor<3> {
        assert_eq!(
            enc.beams, 1,
            "teacher-forced decoding reads one decoder row per encoder row (EncoderOut::beams = 1)"
        );
        let dec = &self.decoder;
        let [b, t] = prev.dims();
        let device = prev.device();
        let pos = Tensor::<1, Int>::arange(PAD as i64 + 1..(PAD + 1 + t) as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        let table = self.target_table().table();
        let mut x = embed_tokens(table.clone(), &dec.positions, prev, pos, &dec.dropout);
        let causal = causal_bias(t, &device);
        for layer in &dec.layers {
            x = layer.forward(x, causal.clone(), enc);
        }
        self.output_logits(x, table)
    }

    /// `table` is the decoder's effective embedding, computed once per pass (a masked table's
    /// mask is a selection over every entry) and reused by the tied output projection.
    fn output_logits(&self, mut x: Tensor<3>, table: Tensor<2>) -> Tensor<3> {
        let dec = &self.decoder;
        if let Some(n) = &dec.final_norm {
            x = n.forward(x);
        }
        match &dec.output {
            Some(p) => project(p, x),
            None => linear(x, table.transpose(), None),
        }
    }

    pub fn forward(&self, batch: &batch::TensorBatch) -> Tensor<3> {
        let enc = self.encode(
            batch.src.clone(),
            batch.src_pos.clone(),
            batch.src_pad.clone(),
        );
        self.decode(&enc, batch.prev.clone())
    }

    /// One incremental decoder step: `tokens [b, 1]` at 0-based step `step`, updating `caches`
    /// (one per layer, created by [`Seq2Seq::new_caches`]). Returns log-probabilities `[b, V]`.
    pub fn step(
        &self,
        enc: &EncoderOut,
        tokens: Tensor<2, Int>,
        step: usize,
        caches: &mut [LayerCache],
    ) -> Tensor<2> {
        let dec = &self.decoder;
        let [b, _] = tokens.dims();
        let device = tokens.device();
        let pos = Tensor::<2, Int>::full([b, 1], (PAD + 1 + step) as i64, &device);
        let table = self.target_table().table();
        let mut x = embed_tokens(table.clone(), &dec.positions, tokens, pos, &dec.dropout);
        for (layer, cache) in dec.layers.iter().zip(caches.iter_mut()) {
            x = layer.step(x, enc, cache);
        }
        let logits = self.output_logits(x, table);
        let v = logits.dims()[2];
        log_softmax(logits.reshape([b, v]), 1)
    }

    pub fn new_caches(&self) -> Vec<LayerCache> {
        self.decoder
            .layers
            .iter()
            .map(|_| LayerCache::default())
            .collect()
    }
}

impl Seq2Seq<DenseProj, DenseTable> {
    /// A fairseq-initialised trainable Transformer; `seed` fixes every weight on any backend.
    pub fn dense(
        cfg: &Seq2SeqConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self, crate::ModelError> {
        let rng = std::cell::RefCell::new(ChaCha8Rng::seed_from_u64(seed));
        Self::build(
            cfg,
            |site, i, o| DenseProj::fairseq(site, i, o, cfg.bias, &mut rng.borrow_mut(), device),
            |_, v, d| DenseTable::fairseq(v, d, &mut rng.borrow_mut(), device),
            device,
        )
    }
}

/// Additive causal mask `[1, 1, t, t]`: 0 on and below the diagonal, -1e9 above.
pub fn causal_bias(t: usize, device: &Device) -> Tensor<4> {
    let ones = Tensor::<2>::ones([t, t], device);
    (ones.clone() - ones.tril(0)).reshape([1, 1, t, t]) * -1.0e9
}

/// Summed label-smoothed loss, summed NLL and the non-pad token count, as fairseq's
/// `label_smoothed_cross_entropy` of this era: `(1-ε)·NLL + (ε/V)·Σ_v −log p_v` per target
/// token, pads ignored. Divide by the token count for the gradient fairseq takes; the NLL sum
/// is detached (it is for logs). The rows go
/// through [`crate::cross_entropy::label_smoothed_rows`], one fused pass each way over the
/// `[tokens, V]` logits on backends with a kernel.
pub fn label_smoothed_loss(
    logits: Tensor<3>,
    target: Tensor<2, Int>,
    eps: f64,
) -> (Tensor<1>, Tensor<1>, usize) {
    let [b, t, v] = logits.dims();
    let target = target.reshape([b * t]);
    let keep = target.clone().not_equal_elem(PAD as i64).float();
    let ntokens: f64 = keep.clone().sum().into_scalar::<f32>() as f64;
    let (loss, nll) =
        crate::cross_entropy::label_smoothed_rows(logits.reshape([b * t, v]), target, eps);
    let nll_sum = (nll * keep.clone()).sum();
    let loss = (loss * keep).sum();
    (loss, nll_sum, ntokens.round() as usize)
}

impl<P: Projection, T: TokenTable> Seq2Seq<P, T> {
    /// The same model with every projection and table converted: a masked model becomes a
    /// dense one holding its effective weights (so decoding computes no masks), or a method
    /// wraps a trained model's matrices. Norms, positions and dropout are carried over.
    pub fn convert<Q: Projection, U: TokenTable>(
        &self,
        f: impl Fn(Site, &P) -> Q,
        g: impl Fn(Side, &T) -> U,
    ) -> Seq2Seq<Q, U> {
        let mha = |side, layer, a: &MultiheadAttention<P>, cross: bool| {
            let k = |s: Kind, c: Kind| Site {
                side,
                layer,
                kind: if cross { c } else { s },
            };
            MultiheadAttention {
                q: f(k(Kind::SelfQ, Kind::CrossQ), &a.q),
                k: f(k(Kind::SelfK, Kind::CrossK), &a.k),
                v: f(k(Kind::SelfV, Kind::CrossV), &a.v),
                out: f(k(Kind::SelfOut, Kind::CrossOut), &a.out),
                dropout: a.dropout.clone(),
                heads: a.heads,
            }
        };
        let site = |side, layer, kind| Site { side, layer, kind };
        let e = &self.encoder;
        let d = &self.decoder;
        Seq2Seq {
            encoder: Encoder {
                embed: g(Side::Encoder, &e.embed),
                layers: e
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(l, x)| EncoderLayer {
                        attn: mha(Side::Encoder, l, &x.attn, false),
                        attn_norm: x.attn_norm.clone(),
                        fc1: f(site(Side::Encoder, l, Kind::Fc1), &x.fc1),
                        fc2: f(site(Side::Encoder, l, Kind::Fc2), &x.fc2),
                        ffn_norm: x.ffn_norm.clone(),
                        dropout: x.dropout.clone(),
                        activation_dropout: x.activation_dropout.clone(),
                        pre_norm: x.pre_norm,
                    })
                    .collect(),
                final_norm: e.final_norm.clone(),
                dropout: e.dropout.clone(),
                positions: e.positions.clone(),
                d_model: e.d_model,
            },
            decoder: Decoder {
                embed: d.embed.as_ref().map(|t| g(Side::Decoder, t)),
                layers: d
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(l, x)| DecoderLayer {
                        self_attn: mha(Side::Decoder, l, &x.self_attn, false),
                        self_norm: x.self_norm.clone(),
                        cross_attn: mha(Side::Decoder, l, &x.cross_attn, true),
                        cross_norm: x.cross_norm.clone(),
                        fc1: f(site(Side::Decoder, l, Kind::Fc1), &x.fc1),
                        fc2: f(site(Side::Decoder, l, Kind::Fc2), &x.fc2),
                        ffn_norm: x.ffn_norm.clone(),
                        dropout: x.dropout.clone(),
                        activation_dropout: x.activation_dropout.clone(),
                        pre_norm: x.pre_norm,
                    })
                    .collect(),
                final_norm: d.final_norm.clone(),
                output: d
                    .output
                    .as_ref()
                    .map(|o| f(site(Side::Decoder, 0, Kind::Output), o)),
                dropout: d.dropout.clone(),
                positions: d.positions.clone(),
                d_model: d.d_model,
            },
        }
    }

    /// Every projection with its site, in a fixed order (encoder layers, decoder layers, output).
    pub fn projections(&self) -> Vec<(Site, &P)> {
        let mut out = Vec::new();
        let site = |side, layer, kind| Site { side, layer, kind };
        for (l, x) in self.encoder.layers.iter().enumerate() {
            let s = Side::Encoder;
            out.extend([
                (site(s, l, Kind::SelfQ), &x.attn.q),
                (site(s, l, Kind::SelfK), &x.attn.k),
                (site(s, l, Kind::SelfV), &x.attn.v),
                (site(s, l, Kind::SelfOut), &x.attn.out),
                (site(s, l, Kind::Fc1), &x.fc1),
                (site(s, l, Kind::Fc2), &x.fc2),
            ]);
        }
        for (l, x) in self.decoder.layers.iter().enumerate() {
            let s = Side::Decoder;
            out.extend([
                (site(s, l, Kind::SelfQ), &x.self_attn.q),
                (site(s, l, Kind::SelfK), &x.self_attn.k),
                (site(s, l, Kind::SelfV), &x.self_attn.v),
                (site(s, l, Kind::SelfOut), &x.self_attn.out),
                (site(s, l, Kind::CrossQ), &x.cross_attn.q),
                (site(s, l, Kind::CrossK), &x.cross_attn.k),
                (site(s, l, Kind::CrossV), &x.cross_attn.v),
                (site(s, l, Kind::CrossOut), &x.cross_attn.out),
                (site(s, l, Kind::Fc1), &x.fc1),
                (site(s, l, Kind::Fc2), &x.fc2),
            ]);
        }
        if let Some(o) = &self.decoder.output {
            out.push((site(Side::Decoder, 0, Kind::Output), o));
        }
        out
    }
}

/// Clips the gradients in `grads` to a global L2 norm of `max_norm` (PyTorch's
/// `clip_grad_norm_`, which fairseq uses; burn's own clipping is per tensor). Returns the norm
/// before clipping. `max_norm <= 0` only measures.
pub fn clip_grad_norm<M: Module>(
    module: &M,
    grads: &mut burn::optim::GradientsParams,
    max_norm: f64,
) -> f64 {
    use burn::module::{ModuleVisitor, ParamId};
    struct Ids(Vec<(ParamId, usize)>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push((param.id, D));
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<(ParamId, usize)> = ids
        .0
        .into_iter()
        .filter(|(id, _)| seen.insert(*id))
        .collect();
    // One device sum and one host read for the whole norm, not one per tensor.
    fn sq<const D: usize>(g: &burn::optim::GradientsParams, id: ParamId) -> Option<Tensor<1>> {
        g.get::<D>(id).map(|t| t.powi_scalar(2).sum())
    }
    fn scale<const D: usize>(g: &mut burn::optim::GradientsParams, id: ParamId, s: f64) {
        if let Some(t) = g.remove::<D>(id) {
            g.register::<D>(id, t * s);
        }
    }
    let parts: Vec<Tensor<1>> = ids
        .iter()
        .filter_map(|&(id, d)| match d {
            1 => sq::<1>(grads, id),
            2 => sq::<2>(grads, id),
            3 => sq::<3>(grads, id),
            4 => sq::<4>(grads, id),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return 0.0;
    }
    let total = Tensor::cat(parts, 0).sum().into_scalar::<f32>() as f64;
    let norm = total.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        for &(id, d) in &ids {
            match d {
                1 => scale::<1>(grads, id, s),
                2 => scale::<2>(grads, id, s),
                3 => scale::<3>(grads, id, s),
                4 => scale::<4>(grads, id, s),
                _ => {}
            }
        }
    }
    norm
}
