//! CLIP's text tower: token + learned position embeddings, pre-LN blocks under a causal mask,
//! `ln_final`, and the projection of the end-of-text token's state (the highest id in each
//! sequence, since `<|endoftext|>` is the last entry of CLIP's vocabulary).

use burn::module::{Module, Param};
use burn::nn::LayerNorm;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::block::{layer_norm, Activation, Block};
use super::state::StateDict;
use crate::ModelError;

/// open_clip's `text_cfg` plus the joint embedding size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub context_length: usize,
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    pub embed_dim: usize,
    #[serde(default)]
    pub activation: Activation,
}

impl TextConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.heads == 0
            || !self.width.is_multiple_of(self.heads)
            || self.layers == 0
            || self.context_length == 0
        {
            return Err(ModelError::Invalid(format!(
                "CLIP text config {self:?}: heads must divide width; layers and context > 0"
            )));
        }
        Ok(())
    }
}

#[derive(Module, Debug)]
pub struct ClipText {
    pub token_embedding: Param<Tensor<2>>,
    pub positional_embedding: Param<Tensor<2>>,
    pub blocks: Vec<Block>,
    pub ln_final: LayerNorm,
    /// `[width, embed_dim]`.
    pub text_projection: Param<Tensor<2>>,
    /// The learned temperature, stored as its log (CLIP initialises it to ln(1/0.07)).
    pub logit_scale: Param<Tensor<1>>,
}

impl ClipText {
    /// CLIP's text initialisation (`CLIP.initialize_parameters`): token std 0.02, positions
    /// 0.01, projection `width^-0.5`.
    pub fn new(c: &TextConfig, device: &Device) -> Result<Self, ModelError> {
        c.validate()?;
        let w = c.width;
        Ok(Self {
            token_embedding: Param::from_tensor(Tensor::random(
                [c.vocab_size, w],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            positional_embedding: Param::from_tensor(Tensor::random(
                [c.context_length, w],
                Distribution::Normal(0.0, 0.01),
                device,
            )),
            blocks: (0..c.layers)
                .map(|_| Block::new(w, c.heads, 4 * w, c.activation, device))
                .collect(),
            ln_final: layer_norm(w, device),
            text_projection: Param::from_tensor(Tensor::random(
                [w, c.embed_dim],
                Distribution::Normal(0.0, (w as f64).powf(-0.5)),
                device,
            )),
            logit_scale: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![(1.0f32 / 0.07).ln()], [1]),
                device,
            )),
        })
    }

    /// `ids: [b, context]` as CLIP's tokenizer pads them (start, tokens, end, zeros) →
    /// `[b, embed_dim]`.
    pub fn embed(&self, ids: Tensor<2, Int>) -> Result<Tensor<2>, ModelError> {
        let [b, l] = ids.dims();
        let [ctx, w] = self.positional_embedding.dims();
        if l != ctx {
            return Err(ModelError::Invalid(format!(
                "CLIP text: token ids have length {l} but the model's context is {ctx}; \
                 tokenize with context_length {ctx}"
            )));
        }
        let x = self
            .token_embedding
            .val()
            .select(0, ids.clone().reshape([b * l]))
            .reshape([b, l, w])
            + self.positional_embedding.val().unsqueeze_dim::<3>(0);
        let device = x.device();
        let mask: Vec<f32> = (0..l * l)
            .map(|k| {
                if k % l > k / l {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask =
            Tensor::<2>::from_data(TensorData::new(mask, [l, l]), &device).reshape([1, 1, l, l]);
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x, Some(mask.clone()));
        }
        let x = self.ln_final.forward(x);
        let eot = ids.argmax(1); // [b, 1]
        let pooled = x
            .gather(1, eot.reshape([b, 1, 1]).expand([b, 1, w]))
            .reshape([b, w]);
        Ok(pooled.matmul(self.text_projection.val()))
    }

    /// open_clip / OpenAI names (`token_embedding.weight`, `positional_embedding`,
    /// `transformer.resblocks.*`, `ln_final`, `text_projection`, `logit_scale`).
    pub fn load_open_clip(&mut self, sd: &mut StateDict) -> Result<(), ModelError> {
        let device = self.ln_final.gamma.device();
        let te = self.token_embedding.dims();
        self.token_embedding =
            Param::from_tensor(sd.tensor("token_embedding.weight", te, &device)?);
        let pe = self.positional_embedding.dims();
        self.positional_embedding =
            Param::from_tensor(sd.tensor("positional_embedding", pe, &device)?);
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.load_open_clip(sd, &format!("transformer.resblocks.{i}"))?;
        }
        sd.layer_norm(&mut self.ln_final, "ln_final")?;
        let tp = self.text_projection.dims();
        self.text_projection = Param::from_tensor(sd.tensor("text_projection", tp, &device)?);
        let ls = sd.take("logit_scale", &[])?;
        self.logit_scale = Param::from_tensor(Tensor::from_data(TensorData::new(ls, [1]), &device));
        Ok(())
    }
}
