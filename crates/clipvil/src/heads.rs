//! The VQA heads CLIP-ViL plugs grid features into, unchanged from their papers (spec §3), and
//! the two single-modality baselines that say how much of an answer the image carries.
//!
//! - [`Pythia`] (mmf "pythia"): an LSTM question encoder with two-glimpse self-attention
//!   pooling; top-down attention over the grid cells from the product of weight-normalised
//!   projections; the same product to fuse; mmf's "logit" classifier (two ReLU-WN branches of
//!   widths 300 and `hidden`, each followed by a plain linear layer to the answers, summed).
//! - [`Mcan`] (Yu et al. 2019): question self-attention stack, image self- plus guided-attention
//!   stack reading the *final* question layer, post-LN residuals, attentional reduction of each
//!   modality, `LayerNorm(W_x x̃ + W_y ỹ)` and a linear classifier. mmf's "movie_mcan" adds MoVie
//!   branches and a triple loss; kiln builds plain MCAN with one BCE head (spec §3.2).
//!
//! Deviations, all for want of the assets here: word vectors are learned from scratch (no GloVe
//! download), and padded question positions are masked out of every attention (mmf's Pythia
//! text attention attends over padding too).

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, Linear, LinearConfig, Lstm,
    LstmConfig,
};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Int, Tensor};
use kiln_models::clip::block::{layer_norm, Attention};
use kiln_models::dense;
use serde::{Deserialize, Serialize};

use crate::ClipVilError;

/// A padded batch of questions: ids `[b, l]` (0 = padding) and their 1/0 mask.
#[derive(Debug, Clone)]
pub struct Questions {
    pub ids: Tensor<2, Int>,
    pub mask: Tensor<2>,
}

impl Questions {
    /// `−∞`-like bias on padded positions, broadcastable over `[b, heads, lq, l]`.
    fn key_bias(&self) -> Tensor<4> {
        let [b, l] = self.mask.dims();
        ((self.mask.clone() - 1.0) * 1e9).reshape([b, 1, 1, l])
    }
}

/// `Linear` under weight normalisation with a single scale (`weight_norm(…, dim=None)`, what
/// mmf's `ReLUWithWeightNormFC` and `LinearTransform` use): `W = g · V / ‖V‖_F`.
#[derive(Module, Debug)]
pub struct WnLinear {
    pub v: Param<Tensor<2>>,
    pub g: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl WnLinear {
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        let l = LinearConfig::new(d_in, d_out).init(device);
        let v = l.weight.val();
        // PyTorch's weight_norm starts with g = ‖V‖, so W equals the plain initialisation.
        let g = v.clone().powi_scalar(2).sum().sqrt();
        Self {
            v: Param::from_tensor(v),
            g: Param::from_tensor(g),
            bias: l.bias.expect("LinearConfig has a bias by default"),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let v = self.v.val();
        let [i, o] = v.dims();
        let w = v.clone() * (self.g.val() / v.powi_scalar(2).sum().sqrt()).reshape([1, 1]);
        let dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let y = x.reshape([rows, i]).matmul(w) + self.bias.val().reshape([1, o]);
        let mut out = dims;
        out[D - 1] = o;
        y.reshape(out)
    }
}

fn relu_wn<const D: usize>(l: &WnLinear, x: Tensor<D>) -> Tensor<D> {
    relu(l.forward(x))
}

/// Settings of every head (each reads the fields it uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadConfig {
    pub kind: HeadKind,
    /// Question vocabulary size (padding id 0 included).
    pub vocab: usize,
    pub answers: usize,
    /// Word vector width (GloVe's 300 in both papers).
    #[serde(default = "d_word")]
    pub word_dim: usize,
    /// Pythia: LSTM width (1024) and the attention/fusion width (5000).
    #[serde(default = "d_lstm")]
    pub lstm: usize,
    #[serde(default = "d_hidden")]
    pub hidden: usize,
    /// Pythia's text classifier branch width (300).
    #[serde(default = "d_word")]
    pub text_hidden: usize,
    /// MCAN: model width d, layers L, heads h, fused width d_z.
    #[serde(default = "d_mcan")]
    pub d: usize,
    #[serde(default = "d_layers")]
    pub layers: usize,
    #[serde(default = "d_heads")]
    pub heads: usize,
    #[serde(default = "d_fused")]
    pub fused: usize,
    #[serde(default = "d_dropout")]
    pub dropout: f64,
}

fn d_word() -> usize {
    300
}
fn d_lstm() -> usize {
    1024
}
fn d_hidden() -> usize {
    5000
}
fn d_mcan() -> usize {
    512
}
fn d_layers() -> usize {
    6
}
fn d_heads() -> usize {
    8
}
fn d_fused() -> usize {
    1024
}
fn d_dropout() -> f64 {
    0.1
}

/// Which head. `question-only` never sees the image (the language prior); `image-only` never
/// sees the question (mean-pooled grid into a classifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    Pythia,
    Mcan,
    QuestionOnly,
    ImageOnly,
}

impl HeadKind {
    pub fn uses_image(self) -> bool {
        self != HeadKind::QuestionOnly
    }
    pub fn label(self) -> &'static str {
        match self {
            HeadKind::Pythia => "Pythia",
            HeadKind::Mcan => "MCAN",
            HeadKind::QuestionOnly => "question-only",
            HeadKind::ImageOnly => "image-only",
        }
    }
}

impl HeadConfig {
    pub fn validate(&self) -> Result<(), ClipVilError> {
        let bad = |m: String| Err(ClipVilError::Invalid(m));
        if self.vocab < 2 || self.answers == 0 {
            return bad(format!(
                "head: vocab {} and answers {} must be positive (vocab includes padding)",
                self.vocab, self.answers
            ));
        }
        if self.kind == HeadKind::Mcan
            && (self.heads == 0 || !self.d.is_multiple_of(self.heads) || self.layers == 0)
        {
            return bad(format!(
                "MCAN: {} heads must divide d = {} and layers must be positive",
                self.heads, self.d
            ));
        }
        if [
            self.word_dim,
            self.lstm,
            self.hidden,
            self.text_hidden,
            self.d,
            self.fused,
        ]
        .contains(&0)
        {
            return bad("head widths must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} must lie in [0, 1)", self.dropout));
        }
        Ok(())
    }
}

/// Pythia's question encoder: word vectors → LSTM → two-glimpse self-attention pooling
/// (1×1 conv to 512, ReLU, 1×1 conv to 2, softmax over tokens), glimpses concatenated.
#[derive(Module, Debug)]
pub struct QuestionEncoder {
    pub embedding: Embedding,
    pub lstm: Lstm,
    pub att_hidden: Linear,
    pub att_out: Linear,
}

impl QuestionEncoder {
    const GLIMPSES: usize = 2;

    fn new(c: &HeadConfig, device: &Device) -> Self {
        Self {
            embedding: EmbeddingConfig::new(c.vocab, c.word_dim).init(device),
            lstm: LstmConfig::new(c.word_dim, c.lstm, true).init(device),
            att_hidden: LinearConfig::new(c.lstm, 512).init(device),
            att_out: LinearConfig::new(512, Self::GLIMPSES).init(device),
        }
    }

    fn width(&self) -> usize {
        self.att_hidden.weight.dims()[0] * Self::GLIMPSES
    }

    pub fn forward(&self, q: &Questions) -> Tensor<2> {
        let [b, l] = q.mask.dims();
        let (h, _) = self
            .lstm
            .forward(self.embedding.forward(q.ids.clone()), None); // [b, l, H]
        let scores = dense(&self.att_out, relu(dense(&self.att_hidden, h.clone()))); // [b, l, G]
        let scores = scores + ((q.mask.clone() - 1.0) * 1e9).reshape([b, l, 1]);
        let a = softmax(scores, 1).swap_dims(1, 2); // [b, G, l]
        let width = h.dims()[2];
        a.matmul(h).reshape([b, Self::GLIMPSES * width])
    }
}

/// Pythia (Jiang et al. 2018) as mmf configures it for CLIP-ViL (spec §3.1).
#[derive(Module, Debug)]
pub struct Pythia {
    pub question: QuestionEncoder,
    pub att_image: WnLinear,
    pub att_question: WnLinear,
    pub att_score: WnLinear,
    pub fuse_image: WnLinear,
    pub fuse_question: WnLinear,
    pub text_hidden: WnLinear,
    pub text_out: Linear,
    pub image_hidden: WnLinear,
    pub image_out: Linear,
    pub dropout: Dropout,
}

impl Pythia {
    pub fn new(c: &HeadConfig, grid_dim: usize, device: &Device) -> Self {
        let question = QuestionEncoder::new(c, device);
        let q = question.width();
        Self {
            att_image: WnLinear::new(grid_dim, c.hidden, device),
            att_question: WnLinear::new(q, c.hidden, device),
            att_score: WnLinear::new(c.hidden, 1, device),
            fuse_image: WnLinear::new(grid_dim, c.hidden, device),
            fuse_question: WnLinear::new(q, c.hidden, device),
            text_hidden: WnLinear::new(c.hidden, c.text_hidden, device),
            text_out: LinearConfig::new(c.text_hidden, c.answers).init(device),
            image_hidden: WnLinear::new(c.hidden, c.hidden, device),
            image_out: LinearConfig::new(c.hidden, c.answers).init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
            question,
        }
    }

    /// `grid: [b, n, c]` cells, row-major → answer logits `[b, answers]`; also returns the
    /// attention over cells `[b, n]`.
    pub fn forward(&self, grid: Tensor<3>, q: &Questions) -> (Tensor<2>, Tensor<2>) {
        let [b, n, c] = grid.dims();
        let qv = self.question.forward(q);
        let joint = relu_wn(&self.att_image, grid.clone())
            * relu_wn(&self.att_question, qv.clone()).unsqueeze_dim::<3>(1);
        let a = softmax(self.att_score.forward(self.dropout.forward(joint)), 1); // [b, n, 1]
        let pooled = a.clone().swap_dims(1, 2).matmul(grid).reshape([b, c]);
        let h = relu_wn(&self.fuse_image, pooled) * relu_wn(&self.fuse_question, qv);
        let h = self.dropout.forward(h);
        let logits = dense(&self.text_out, relu_wn(&self.text_hidden, h.clone()))
            + dense(&self.image_out, relu_wn(&self.image_hidden, h));
        (logits, a.reshape([b, n]))
    }
}

/// MCAN's position-wise feed-forward: Linear(d, 4d) → ReLU → Dropout → Linear(4d, d).
#[derive(Module, Debug)]
pub struct Ffn {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Ffn {
    fn new(d: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(d, 4 * d).init(device),
            fc2: LinearConfig::new(4 * d, d).init(device),
        }
    }
    fn forward(&self, x: Tensor<3>, drop: &Dropout) -> Tensor<3> {
        dense(&self.fc2, drop.forward(relu(dense(&self.fc1, x))))
    }
}

/// MCAN's SA unit (question side): `LN(x + SA(x))`, `LN(x + FFN(x))`.
#[derive(Module, Debug)]
pub struct SelfAttentionLayer {
    pub attn: Attention,
    pub ln1: LayerNorm,
    pub ffn: Ffn,
    pub ln2: LayerNorm,
}

/// MCAN's SGA unit (image side): self-attention, then guided attention to the question.
#[derive(Module, Debug)]
pub struct GuidedAttentionLayer {
    pub self_attn: Attention,
    pub ln1: LayerNorm,
    pub guided: Attention,
    pub ln2: LayerNorm,
    pub ffn: Ffn,
    pub ln3: LayerNorm,
}

/// MCAN's attentional reduction: α = softmax(MLP(x)) over positions, `Σ α x`, then a linear
/// map to the fused width.
#[derive(Module, Debug)]
pub struct AttFlat {
    pub fc: Linear,
    pub score: Linear,
    pub merge: Linear,
}

impl AttFlat {
    fn new(d: usize, fused: usize, device: &Device) -> Self {
        Self {
            fc: LinearConfig::new(d, d).init(device),
            score: LinearConfig::new(d, 1).init(device),
            merge: LinearConfig::new(d, fused).init(device),
        }
    }
    fn forward(&self, x: Tensor<3>, bias: Option<Tensor<3>>, drop: &Dropout) -> Tensor<2> {
        let [b, _, d] = x.dims();
        let mut s = dense(&self.score, drop.forward(relu(dense(&self.fc, x.clone())))); // [b, l, 1]
        if let Some(bias) = bias {
            s = s + bias;
        }
        let a = softmax(s, 1).swap_dims(1, 2); // [b, 1, l]
        dense(&self.merge, a.matmul(x).reshape([b, d]))
    }
}

/// MCAN encoder-decoder (Yu et al. 2019) on grid cells.
#[derive(Module, Debug)]
pub struct Mcan {
    pub embedding: Embedding,
    pub lstm: Lstm,
    pub image_proj: Linear,
    pub encoder: Vec<SelfAttentionLayer>,
    pub decoder: Vec<GuidedAttentionLayer>,
    pub flat_question: AttFlat,
    pub flat_image: AttFlat,
    pub norm: LayerNorm,
    pub out: Linear,
    pub dropout: Dropout,
}

impl Mcan {
    pub fn new(c: &HeadConfig, grid_dim: usize, device: &Device) -> Self {
        let d = c.d;
        let attn = || Attention::new(d, c.heads, d, device);
        Self {
            embedding: EmbeddingConfig::new(c.vocab, c.word_dim).init(device),
            lstm: LstmConfig::new(c.word_dim, d, true).init(device),
            image_proj: LinearConfig::new(grid_dim, d).init(device),
            encoder: (0..c.layers)
                .map(|_| SelfAttentionLayer {
                    attn: attn(),
                    ln1: layer_norm(d, device),
                    ffn: Ffn::new(d, device),
                    ln2: layer_norm(d, device),
                })
                .collect(),
            decoder: (0..c.layers)
                .map(|_| GuidedAttentionLayer {
                    self_attn: attn(),
                    ln1: layer_norm(d, device),
                    guided: attn(),
                    ln2: layer_norm(d, device),
                    ffn: Ffn::new(d, device),
                    ln3: layer_norm(d, device),
                })
                .collect(),
            flat_question: AttFlat::new(d, c.fused, device),
            flat_image: AttFlat::new(d, c.fused, device),
            norm: layer_norm(c.fused, device),
            out: LinearConfig::new(c.fused, c.answers).init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
        }
    }

    pub fn forward(&self, grid: Tensor<3>, q: &Questions) -> Tensor<2> {
        let drop = &self.dropout;
        let (mut y, _) = self
            .lstm
            .forward(self.embedding.forward(q.ids.clone()), None);
        let qbias = q.key_bias();
        for l in &self.encoder {
            let a = l.attn.forward(y.clone(), y.clone(), Some(qbias.clone()));
            y = l.ln1.forward(y + drop.forward(a));
            y = l
                .ln2
                .forward(y.clone() + drop.forward(l.ffn.forward(y, drop)));
        }
        let mut x = dense(&self.image_proj, grid);
        for l in &self.decoder {
            let a = l.self_attn.forward(x.clone(), x.clone(), None);
            x = l.ln1.forward(x + drop.forward(a));
            let g = l.guided.forward(x.clone(), y.clone(), Some(qbias.clone()));
            x = l.ln2.forward(x + drop.forward(g));
            x = l
                .ln3
                .forward(x.clone() + drop.forward(l.ffn.forward(x, drop)));
        }
        let [b, lq] = q.mask.dims();
        let qflat_bias = ((q.mask.clone() - 1.0) * 1e9).reshape([b, lq, 1]);
        let z = self.flat_question.forward(y, Some(qflat_bias), drop)
            + self.flat_image.forward(x, None, drop);
        dense(&self.out, self.norm.forward(z))
    }
}

/// The language prior: the question encoder alone, into a ReLU-WN layer and a classifier.
#[derive(Module, Debug)]
pub struct QuestionOnly {
    pub question: QuestionEncoder,
    pub hidden: WnLinear,
    pub out: Linear,
}

/// The visual prior: the mean grid cell alone, into a ReLU-WN layer and a classifier.
#[derive(Module, Debug)]
pub struct ImageOnly {
    pub hidden: WnLinear,
    pub out: Linear,
}

/// Any of the heads.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Head {
    Pythia(Pythia),
    Mcan(Mcan),
    QuestionOnly(QuestionOnly),
    ImageOnly(ImageOnly),
}

impl Head {
    pub fn new(c: &HeadConfig, grid_dim: usize, device: &Device) -> Result<Self, ClipVilError> {
        c.validate()?;
        Ok(match c.kind {
            HeadKind::Pythia => Head::Pythia(Pythia::new(c, grid_dim, device)),
            HeadKind::Mcan => Head::Mcan(Mcan::new(c, grid_dim, device)),
            HeadKind::QuestionOnly => {
                let question = QuestionEncoder::new(c, device);
                let w = question.width();
                Head::QuestionOnly(QuestionOnly {
                    question,
                    hidden: WnLinear::new(w, c.hidden, device),
                    out: LinearConfig::new(c.hidden, c.answers).init(device),
                })
            }
            HeadKind::ImageOnly => Head::ImageOnly(ImageOnly {
                hidden: WnLinear::new(grid_dim, c.hidden, device),
                out: LinearConfig::new(c.hidden, c.answers).init(device),
            }),
        })
    }

    /// Answer logits from grid cells `[b, n, c]` (ignored by the question-only head, which
    /// may be given `None`) and questions.
    pub fn forward(
        &self,
        grid: Option<Tensor<3>>,
        q: &Questions,
    ) -> Result<Tensor<2>, ClipVilError> {
        let need =
            || ClipVilError::Invalid("this head reads grid features but none were given".into());
        Ok(match self {
            Head::Pythia(h) => h.forward(grid.ok_or_else(need)?, q).0,
            Head::Mcan(h) => h.forward(grid.ok_or_else(need)?, q),
            Head::QuestionOnly(h) => dense(&h.out, relu_wn(&h.hidden, h.question.forward(q))),
            Head::ImageOnly(h) => {
                let g = grid.ok_or_else(need)?;
                let [b, _, c] = g.dims();
                dense(&h.out, relu_wn(&h.hidden, g.mean_dim(1).reshape([b, c])))
            }
        })
    }
}
