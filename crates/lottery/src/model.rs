//! The one-layer randomly weighted Transformer (spec §3-§5): fairseq's post-LN
//! encoder-decoder with no biases and affine-free LayerNorms, every matrix a [`MaskedProj`],
//! and with [`Share::LayerWeights`] every encoder layer built on encoder layer 0's random
//! matrices and every decoder layer on decoder layer 0's (the same parameters, not copies),
//! each layer with its own scores.

use std::cell::RefCell;
use std::collections::HashMap;

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use kiln_models::seq2seq::{
    attention_weight, normal, uniform, DenseProj, DenseTable, Kind, Seq2Seq, Seq2SeqConfig, Side,
    Site, PAD,
};

use crate::mask::{frozen, trainable, MaskedProj, MaskedTable};
use crate::LotteryError;

/// `--init` (spec §4). Attention matrices ignore it (always Xavier-uniform); it sets the FFN
/// matrices and the embedding tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    KaimingUniform,
    KaimingNormal,
    SignedConstant,
    UnsignedConstant,
    XavierNormal,
    XavierConstant,
    Standard,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::KaimingUniform => "kaiming_uniform",
            Init::KaimingNormal => "kaiming_normal",
            Init::SignedConstant => "signed_constant",
            Init::UnsignedConstant => "unsigned_constant",
            Init::XavierNormal => "xavier_normal",
            Init::XavierConstant => "xavier_constant",
            Init::Standard => "standard",
        }
    }

    /// Draws a `[fan_in, fan_out]` matrix. `scale_fan` multiplies the fan by `1 − keep` where
    /// the reference does (not for Kaiming-uniform, which ignores it, nor the Xavier schemes).
    pub fn draw(
        self,
        rng: &mut ChaCha8Rng,
        fan_in: usize,
        fan_out: usize,
        scale_fan: Option<f64>,
    ) -> Vec<f32> {
        let n = fan_in * fan_out;
        let fan = fan_in as f64 * scale_fan.map(|k| 1.0 - k).unwrap_or(1.0);
        let gain = 2f64.sqrt();
        let sign = |rng: &mut ChaCha8Rng| if rng.random::<bool>() { 1.0 } else { -1.0 };
        match self {
            Init::KaimingUniform => uniform(rng, n, gain * (3.0 / fan_in as f64).sqrt()),
            Init::KaimingNormal => normal(rng, n, gain / fan.sqrt()),
            Init::SignedConstant => (0..n)
                .map(|_| (sign(rng) * gain / fan.sqrt()) as f32)
                .collect(),
            Init::UnsignedConstant => vec![(gain / fan.sqrt()) as f32; n],
            Init::XavierNormal => normal(rng, n, (2.0 / (fan_in + fan_out) as f64).sqrt()),
            Init::XavierConstant => (0..n)
                .map(|_| (sign(rng) * (2.0 / (fan_in + fan_out) as f64).sqrt()) as f32)
                .collect(),
            Init::Standard => uniform(rng, n, 1.0 / (fan_in as f64).sqrt()),
        }
    }
}

/// `--share-mask` (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// The paper's one-layer model: one random layer per side, a mask per layer.
    LayerWeights,
    /// Independent random weights per layer (the ordinary random-weight Transformer).
    None,
}

/// How the embedding tables are made (spec §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Embeddings {
    /// Random (by `--init`), frozen and masked: the headline setting.
    RandomMasked,
    /// Given tables (e.g. from a trained model), frozen; masked after the reference's √2
    /// scaling, or used as they are with `masked: false` (`--embed-no-mask`).
    Fixed {
        encoder: Vec<f32>,
        decoder: Vec<f32>,
        masked: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LotteryConfig {
    /// Fraction of entries kept (`--prune-ratio`, which names the kept fraction in code).
    pub keep: f64,
    pub init: Init,
    pub scale_fan: bool,
    pub share: Share,
}

impl Default for LotteryConfig {
    /// The README's IWSLT command.
    fn default() -> Self {
        Self {
            keep: 0.5,
            init: Init::KaimingUniform,
            scale_fan: true,
            share: Share::LayerWeights,
        }
    }
}

/// The paper's model shape: a fairseq config with no biases and affine-free norms, tied
/// decoder input/output embedding.
pub fn masked_shape(mut cfg: Seq2SeqConfig) -> Seq2SeqConfig {
    cfg.bias = false;
    cfg.norm_affine = false;
    cfg.share_decoder_io = true;
    cfg.share_all_embeddings = false;
    cfg.pre_norm = false;
    cfg
}

pub type MaskedTransformer = Seq2Seq<MaskedProj, MaskedTable>;
pub type DenseTransformer = Seq2Seq<DenseProj, DenseTable>;

/// Builds the masked model. Every random tensor comes from `seed` on the host, so the model
/// is stored exactly by the seed plus one bit per score entry (the masks).
pub fn build(
    cfg: &Seq2SeqConfig,
    lc: &LotteryConfig,
    embeddings: &Embeddings,
    seed: u64,
    device: &Device,
) -> Result<MaskedTransformer, LotteryError> {
    if !(lc.keep > 0.0 && lc.keep <= 1.0) {
        return Err(LotteryError::Invalid(format!(
            "keep fraction {} must lie in (0, 1]",
            lc.keep
        )));
    }
    if cfg.bias || cfg.norm_affine || !cfg.share_decoder_io || cfg.share_all_embeddings {
        return Err(LotteryError::Invalid(
            "the one-layer model has no biases, affine-free LayerNorms, a tied output embedding and separate encoder and decoder tables (as the official code, also on WMT14); pass the config through masked_shape".into(),
        ));
    }
    let d = cfg.d_model;
    if let Embeddings::Fixed {
        encoder, decoder, ..
    } = embeddings
    {
        for (name, t, v) in [
            ("encoder", encoder, cfg.src_vocab),
            ("decoder", decoder, cfg.tgt_vocab),
        ] {
            if t.len() != v * d {
                return Err(LotteryError::Invalid(format!(
                    "{name} embedding has {} values, the model needs {v}×{d}",
                    t.len()
                )));
            }
        }
    }
    // Separate streams for weights and scores, so changing the score init leaves the random
    // network unchanged.
    let wrng = RefCell::new(ChaCha8Rng::seed_from_u64(seed));
    let srng = RefCell::new(ChaCha8Rng::seed_from_u64(seed ^ 0x5c0e_5c0e));
    let shared: RefCell<HashMap<(Side, Kind), Param<Tensor<2>>>> = RefCell::new(HashMap::new());
    let scale = lc.scale_fan.then_some(lc.keep);
    let keep = lc.keep;
    // Kaiming-uniform with a = √5 (`--mask-init standard`): U(±1/√fan_in). At k = 1 the
    // reference sets the scores to 1 and freezes them.
    let scores = |fan_in: usize, shape: [usize; 2]| -> Param<Tensor<2>> {
        let n = shape[0] * shape[1];
        if keep >= 1.0 {
            return frozen(vec![1.0; n], shape, device);
        }
        trainable(
            uniform(&mut srng.borrow_mut(), n, 1.0 / (fan_in as f64).sqrt()),
            shape,
            device,
        )
    };
    let weight = |site: Site, d_in: usize, d_out: usize| -> Vec<f32> {
        let rng = &mut wrng.borrow_mut();
        attention_weight(site.kind, d_in, d_out, rng)
            .unwrap_or_else(|| lc.init.draw(rng, d_in, d_out, scale))
    };
    let model = Seq2Seq::build(
        cfg,
        |site, d_in, d_out| {
            let w = match lc.share {
                Share::LayerWeights => {
                    let key = (site.side, site.kind);
                    let existing = shared.borrow().get(&key).cloned();
                    match existing {
                        Some(p) => p,
                        None => {
                            let p = frozen(weight(site, d_in, d_out), [d_in, d_out], device);
                            shared.borrow_mut().insert(key, p.clone());
                            p
                        }
                    }
                }
                Share::None => frozen(weight(site, d_in, d_out), [d_in, d_out], device),
            };
            MaskedProj {
                weight: w,
                scores: scores(d_in, [d_in, d_out]),
                keep,
            }
        },
        |side, vocab, d| {
            let (w, masked) = match embeddings {
                Embeddings::RandomMasked => {
                    // fan_in of an embedding table is d (spec §4); the padding row is zero.
                    let mut w = lc.init.draw(&mut wrng.borrow_mut(), d, vocab, scale);
                    w[PAD * d..(PAD + 1) * d].fill(0.0);
                    (w, true)
                }
                Embeddings::Fixed {
                    encoder,
                    decoder,
                    masked,
                } => {
                    let t = if side == Side::Encoder {
                        encoder
                    } else {
                        decoder
                    };
                    let s = if *masked && lc.scale_fan {
                        (1.0 / (1.0 - keep)).sqrt() as f32
                    } else {
                        1.0
                    };
                    (t.iter().map(|x| x * s).collect(), *masked)
                }
            };
            MaskedTable {
                weight: frozen(w, [vocab, d], device),
                scores: masked.then(|| scores(d, [vocab, d])),
                keep,
            }
        },
        device,
    )?;
    Ok(model)
}

/// The masked model as a dense one holding `W ⊙ M` (for decoding and for export).
pub fn materialize(model: &MaskedTransformer) -> DenseTransformer {
    model.convert(
        |_, p| DenseProj {
            weight: Param::from_tensor(kiln_models::seq2seq::Projection::weight(p).detach()),
            bias: None,
        },
        |_, t| DenseTable {
            weight: Param::from_tensor(kiln_models::seq2seq::TokenTable::table(t).detach()),
        },
    )
}

/// What a masked model needs stored: its random weights are a seed, its masks one bit per
/// score entry. `(random weight entries, score entries)` — the spec's §3 counts.
pub fn counts(model: &MaskedTransformer) -> (usize, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut weights = 0;
    let mut scores = 0;
    for (_, p) in model.projections() {
        if seen.insert(p.weight.id) {
            weights += p.weight.val().dims().iter().product::<usize>();
        }
        scores += p.scores.val().dims().iter().product::<usize>();
    }
    for t in [&model.encoder.embed, model.target_table()] {
        if let Some(s) = &t.scores {
            scores += s.val().dims().iter().product::<usize>();
        }
    }
    (weights, scores)
}
