//! CLIP (Radford et al. 2021) image and text encoders, as grid-feature backbones for
//! vision-and-language models (Shen et al. 2021, "How Much Can CLIP Benefit Vision-and-Language
//! Tasks?").
//!
//! Both image towers are here: the ModifiedResNet ([`resnet`]: RN50, RN101, RN50x4) and the
//! vision Transformer ([`vit`]: ViT-B/32, ViT-B/16), each with
//! - `embed`: CLIP's `encode_image` (attention pool / projected class token);
//! - `grid`: CLIP-ViL's grid features at any input size (`[b, h, w, c]`): the ResNet's C5 map
//!   without the attention pool, or the ViT's patch tokens after L−1 blocks with the position
//!   table resized to the grid.
//!
//! Checkpoints load from both published layouts without PyTorch: OpenAI/open_clip state dicts
//! (`visual.*`, e.g. timm's `open_clip_model.safetensors`) and HF `CLIPVisionModel(WithProjection)`
//! / `CLIPModel` directories. Every tensor's shape is checked and every tensor of the tower must
//! be consumed, so a checkpoint of another size fails naming the tensor and the file. The text
//! tower ([`text`]) with CLIP's BPE tokenizer (`kiln_data::clip_bpe`) gives image-text
//! similarities.
//!
//! Checked against open_clip 3.3.0 and transformers 4.57.1 on tiny random models of exactly
//! these layouts (`../shared/data/reference/clip`, `tests/clip_golden.rs`).

pub mod block;
pub mod resnet;
pub mod state;
pub mod text;
pub mod vit;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use block::Activation;
pub use resnet::{ModifiedResNet, ResNetConfig};
pub use state::StateDict;
pub use text::{ClipText, TextConfig};
pub use vit::{ClipVit, GridPositions, VitConfig};

use crate::resnet::{TorchResNet, TorchResNetConfig};
use crate::ModelError;

/// CLIP's input normalisation, applied to RGB in [0, 1] (digits as CLIP publishes them).
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// `(x − mean) / std` per channel on an `[b, 3, h, w]` batch in [0, 1].
pub fn normalize(images: Tensor<4>) -> Tensor<4> {
    let device = images.device();
    let mean = Tensor::<1>::from_data(TensorData::new(CLIP_MEAN.to_vec(), [3]), &device);
    let std = Tensor::<1>::from_data(TensorData::new(CLIP_STD.to_vec(), [3]), &device);
    (images - mean.reshape([1, 3, 1, 1])) / std.reshape([1, 3, 1, 1])
}

/// Which image tower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum VisualConfig {
    #[serde(rename = "resnet")]
    ResNet(ResNetConfig),
    #[serde(rename = "vit")]
    Vit(VitConfig),
    /// Not CLIP: torchvision's ImageNet ResNet ([`crate::resnet`]), the baseline backbone of
    /// CLIP-ViL's encoder swap, here so one experiment can swap it for the CLIP towers.
    #[serde(rename = "torchvision-resnet")]
    TorchResNet(TorchResNetConfig),
}

impl VisualConfig {
    /// A released architecture by its open_clip name (RN50, RN101, RN50x4, ViT-B-32, ViT-B-16).
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "RN50" => Self::ResNet(ResNetConfig::rn50()),
            "RN101" => Self::ResNet(ResNetConfig::rn101()),
            "RN50x4" => Self::ResNet(ResNetConfig::rn50x4()),
            "ViT-B-32" | "ViT-B/32" => Self::Vit(VitConfig::vit_b32()),
            "ViT-B-16" | "ViT-B/16" => Self::Vit(VitConfig::vit_b16()),
            _ => return None,
        })
    }
    /// Channels of the grid features.
    pub fn grid_dim(&self) -> usize {
        match self {
            Self::ResNet(c) => c.grid_dim(),
            Self::Vit(c) => c.width,
            Self::TorchResNet(c) => c.grid_dim(),
        }
    }
    /// Grid cells along a side of `pixels`: every ModifiedResNet stride floors (stem conv, stem
    /// pool and three stage pools: /32 overall, floor at each halving); the ViT patchifies; the
    /// torchvision ResNet's padded strided convolutions round up.
    pub fn grid_side(&self, pixels: usize) -> usize {
        match self {
            Self::ResNet(_) => {
                let mut s = pixels.div_ceil(2); // 3×3 conv, stride 2, padding 1
                for _ in 0..4 {
                    s /= 2;
                }
                s
            }
            Self::Vit(c) => pixels / c.patch_size,
            Self::TorchResNet(_) => TorchResNetConfig::grid_side(pixels),
        }
    }
    pub fn output_dim(&self) -> usize {
        match self {
            Self::ResNet(c) => c.output_dim,
            Self::Vit(c) => c.output_dim,
            Self::TorchResNet(c) => c.grid_dim(),
        }
    }
}

/// Open_clip's `model_configs/<name>.json`: `embed_dim`, `vision_cfg`, `text_cfg`. The released
/// OpenAI weights use QuickGELU, which those files do not record, so the caller says.
pub fn read_open_clip_config(
    path: &Path,
    activation: Activation,
) -> Result<(VisualConfig, TextConfig), ModelError> {
    let bad = |msg: String| ModelError::Config {
        path: path.to_path_buf(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::Missing {
                path: path.to_path_buf(),
                what: "open_clip model config",
            }
        } else {
            ModelError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let int = |o: &serde_json::Value, k: &str| -> Result<usize, ModelError> {
        o.get(k)
            .and_then(|x| x.as_u64())
            .map(|x| x as usize)
            .ok_or_else(|| bad(format!("missing integer `{k}`")))
    };
    let embed = int(&v, "embed_dim")?;
    let vc = v
        .get("vision_cfg")
        .ok_or_else(|| bad("missing `vision_cfg`".into()))?;
    let tc = v
        .get("text_cfg")
        .ok_or_else(|| bad("missing `text_cfg`".into()))?;
    let image_size = int(vc, "image_size")?;
    let width = int(vc, "width")?;
    let head_width = vc.get("head_width").and_then(|x| x.as_u64()).unwrap_or(64) as usize;
    let visual = match vc.get("layers") {
        Some(serde_json::Value::Array(l)) => {
            let l: Vec<usize> = l
                .iter()
                .filter_map(|x| x.as_u64().map(|x| x as usize))
                .collect();
            let layers: [usize; 4] = l
                .try_into()
                .map_err(|_| bad("ResNet `layers` must list 4 stages".into()))?;
            VisualConfig::ResNet(ResNetConfig {
                layers,
                width,
                heads: width * 32 / head_width,
                output_dim: embed,
                image_size,
            })
        }
        _ => {
            let mlp_ratio = vc.get("mlp_ratio").and_then(|x| x.as_f64()).unwrap_or(4.0);
            VisualConfig::Vit(VitConfig {
                image_size,
                patch_size: int(vc, "patch_size")?,
                width,
                layers: int(vc, "layers")?,
                heads: width / head_width,
                mlp_width: (width as f64 * mlp_ratio) as usize,
                output_dim: embed,
                activation,
            })
        }
    };
    let text = TextConfig {
        context_length: int(tc, "context_length")?,
        vocab_size: int(tc, "vocab_size")?,
        width: int(tc, "width")?,
        heads: int(tc, "heads")?,
        layers: int(tc, "layers")?,
        embed_dim: embed,
        activation,
    };
    Ok((visual, text))
}

/// A CLIP image tower of either kind. (A tower is built once per run; its size is no concern.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ClipVisual {
    ResNet(ModifiedResNet),
    Vit(ClipVit),
    TorchResNet(TorchResNet),
}

impl ClipVisual {
    pub fn new(c: &VisualConfig, device: &Device) -> Result<Self, ModelError> {
        Ok(match c {
            VisualConfig::ResNet(c) => Self::ResNet(ModifiedResNet::new(c, device)?),
            VisualConfig::Vit(c) => Self::Vit(ClipVit::new(c, device)?),
            VisualConfig::TorchResNet(c) => Self::TorchResNet(TorchResNet::new(c, device)?),
        })
    }

    /// Grid features `[b, h, w, c]` of CLIP-normalised images (for the ViT, positions resized
    /// as `positions` says; the ResNets have none to resize). The ImageNet ResNet converts them
    /// to its own normalisation first, so every tower reads the same image tensors.
    pub fn grid(&self, images: Tensor<4>, positions: GridPositions) -> Tensor<4> {
        match self {
            Self::ResNet(m) => m.grid(images),
            Self::Vit(m) => m.grid(images, positions),
            Self::TorchResNet(m) => m.grid(crate::resnet::clip_to_imagenet(images)),
        }
    }

    /// `encode_image` (the ImageNet ResNet: its average-pooled C5 features).
    pub fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>, ModelError> {
        match self {
            Self::ResNet(m) => m.embed(images),
            Self::Vit(m) => Ok(m.embed(images)),
            Self::TorchResNet(m) => Ok(m.pooled(crate::resnet::clip_to_imagenet(images))),
        }
    }

    /// Loads released weights in the tower's own published layout: open_clip/OpenAI for the
    /// CLIP towers ([`Self::load_open_clip`]), torchvision/timm names for the ImageNet ResNet.
    pub fn load_state_dict(&mut self, sd: &mut StateDict) -> Result<(), ModelError> {
        match self {
            Self::TorchResNet(m) => {
                let prefix = crate::resnet::torchvision_prefix(sd)?;
                m.load(sd, prefix)
            }
            _ => self.load_open_clip(sd),
        }
    }

    /// Loads an open_clip/OpenAI state dict: a full CLIP file (`visual.*` next to the text
    /// tower) or a bare image tower (no prefix).
    pub fn load_open_clip(&mut self, sd: &mut StateDict) -> Result<(), ModelError> {
        let prefix = if sd.names().any(|n| n.starts_with("visual.")) {
            "visual."
        } else {
            ""
        };
        match self {
            Self::ResNet(m) => m.load(sd, prefix),
            Self::Vit(m) => m.load_open_clip(sd, prefix),
            Self::TorchResNet(_) => Err(ModelError::Invalid(format!(
                "{}: the ImageNet ResNet has no open_clip layout; load it with `load_state_dict` (torchvision names)",
                sd.path().display()
            ))),
        }
    }
}

/// An open_clip/OpenAI image tower from a safetensors file.
pub fn load_open_clip_visual(
    path: &Path,
    config: &VisualConfig,
    device: &Device,
) -> Result<ClipVisual, ModelError> {
    let mut sd = StateDict::read(path)?;
    let mut m = ClipVisual::new(config, device)?;
    m.load_open_clip(&mut sd)?;
    Ok(m)
}

/// An HF `CLIPVisionModel(WithProjection)` or `CLIPModel` directory (config.json +
/// model.safetensors). Returns the tower and whether the checkpoint had a projection.
pub fn load_hf_vision(
    dir: &Path,
    device: &Device,
) -> Result<(ClipVit, VitConfig, bool), ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::Missing {
            path: dir.to_path_buf(),
            what: "HF CLIP model directory",
        });
    }
    let config = VitConfig::from_hf_json(&dir.join("config.json"))?;
    let mut sd = StateDict::read(&dir.join("model.safetensors"))?;
    let mut m = ClipVit::new(&config, device)?;
    let projected = m.load_hf(&mut sd)?;
    Ok((m, config, projected))
}

/// CLIP's image-text logits: `exp(logit_scale) · cos(image_i, text_j)`, `[images, texts]`
/// (softmax over a row ranks the texts for an image, as zero-shot classification does).
pub fn similarity(
    image_embeds: Tensor<2>,
    text_embeds: Tensor<2>,
    logit_scale: Tensor<1>,
) -> Tensor<2> {
    let unit = |x: Tensor<2>| {
        let n = x.clone().powi_scalar(2).sum_dim(1).sqrt();
        x / n
    };
    unit(image_embeds).matmul(unit(text_embeds).transpose()) * logit_scale.exp().reshape([1, 1])
}

/// A full OpenAI/open_clip CLIP file (image tower under `visual.*`, text tower at the top
/// level): both towers, every tensor of the file used.
pub fn load_open_clip_model(
    path: &Path,
    visual: &VisualConfig,
    text: &TextConfig,
    device: &Device,
) -> Result<(ClipVisual, ClipText), ModelError> {
    let mut sd = StateDict::read(path)?;
    let mut v = ClipVisual::new(visual, device)?;
    v.load_open_clip(&mut sd)?;
    let mut t = ClipText::new(text, device)?;
    t.load_open_clip(&mut sd)?;
    sd.finish("")?;
    Ok((v, t))
}
