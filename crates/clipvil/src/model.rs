//! A VQA network: an optional CLIP image tower producing grid features, and a head.
//!
//! With a tower, images go in and the tower trains with the head (the mini profile trains
//! CLIP-architecture towers from scratch, since no released weights are reachable here). Without
//! one, grid features extracted beforehand go in ([`VqaNet::forward_grid`]), as in CLIP-ViL's
//! direct fine-tuning, where the released CLIP is run once and frozen.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use kiln_models::clip::{ClipVisual, GridPositions, VisualConfig};

use crate::heads::{Head, HeadConfig, Questions};
use crate::ClipVilError;

#[derive(Module, Debug)]
pub struct VqaNet {
    pub encoder: Option<ClipVisual>,
    pub head: Head,
    #[module(skip)]
    pub positions: GridPositions,
}

impl VqaNet {
    /// `visual: None` builds a head over precomputed grids of width `grid_dim`.
    pub fn new(
        visual: Option<&VisualConfig>,
        grid_dim: usize,
        head: &HeadConfig,
        positions: GridPositions,
        device: &Device,
    ) -> Result<Self, ClipVilError> {
        let encoder = match visual {
            Some(v) if head.kind.uses_image() => Some(ClipVisual::new(v, device)?),
            _ => None,
        };
        let grid_dim = visual.map_or(grid_dim, VisualConfig::grid_dim);
        Ok(Self {
            encoder,
            head: Head::new(head, grid_dim, device)?,
            positions,
        })
    }

    /// Grid cells `[b, h·w, c]` of CLIP-normalised images `[b, 3, H, W]` (row-major cells).
    pub fn grid(&self, images: Tensor<4>) -> Result<Tensor<3>, ClipVilError> {
        let enc = self.encoder.as_ref().ok_or_else(|| {
            ClipVilError::Invalid("this network has no image tower; pass grid features".into())
        })?;
        let g = enc.grid(images, self.positions);
        let [b, h, w, c] = g.dims();
        Ok(g.reshape([b, h * w, c]))
    }

    /// Answer logits from images (ignored, and may be `None`, for the question-only head).
    pub fn forward(
        &self,
        images: Option<Tensor<4>>,
        q: &Questions,
    ) -> Result<Tensor<2>, ClipVilError> {
        let grid = match (images, self.head_uses_image()) {
            (Some(x), true) => Some(self.grid(x)?),
            (None, true) => return Err(ClipVilError::Invalid("this head needs images".into())),
            _ => None,
        };
        self.head.forward(grid, q)
    }

    /// Answer logits from precomputed grid cells `[b, n, c]`.
    pub fn forward_grid(&self, grid: Tensor<3>, q: &Questions) -> Result<Tensor<2>, ClipVilError> {
        self.head.forward(Some(grid), q)
    }

    pub fn head_uses_image(&self) -> bool {
        !matches!(self.head, Head::QuestionOnly(_))
    }
}

/// mmf's `logit_bce`: sigmoid cross-entropy against soft scores, averaged over every
/// (question, answer) entry and multiplied by the number of answers, i.e. summed over answers
/// and averaged over questions.
pub fn logit_bce(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let answers = logits.dims()[1] as f64;
    // max(x, 0) − x·y + log(1 + e^{−|x|}): stable for any logit.
    let l = logits.clone().clamp_min(0.0) - logits.clone() * targets
        + (logits.abs().neg().exp() + 1.0).log();
    l.mean() * answers
}
