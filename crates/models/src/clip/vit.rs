//! CLIP's vision Transformer: a patchifying convolution without bias, a class token, a learned
//! position table, LayerNorm before (`ln_pre`) and after (`ln_post`) a stack of pre-LN blocks,
//! and a projection of the class token.
//!
//! Grid features for CLIP-ViL are the patch tokens after the first L−1 blocks (no `ln_post`,
//! class token dropped), at any input size: the position table is bilinearly resized to the
//! patch grid (PyTorch `interpolate(mode="bilinear", align_corners=False)`, the class position
//! kept as is). The released extraction scripts lose the resized table (CLIP-ViL issue #13), so
//! [`GridPositions::Omitted`] reproduces running without positions, for fidelity experiments.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::LayerNorm;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::block::{layer_norm, Activation, Block};
use super::state::{transposed, StateDict};
use crate::ModelError;

/// open_clip's `VisionTransformer(image_size, patch_size, width, layers, heads, mlp_ratio,
/// output_dim)`; HF's `CLIPVisionConfig` maps onto it (hidden_size = width, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// FFN width (open_clip: `width · mlp_ratio`; HF: `intermediate_size`).
    pub mlp_width: usize,
    pub output_dim: usize,
    #[serde(default)]
    pub activation: Activation,
}

impl VitConfig {
    pub fn vit_b32() -> Self {
        Self {
            image_size: 224,
            patch_size: 32,
            width: 768,
            layers: 12,
            heads: 12,
            mlp_width: 3072,
            output_dim: 512,
            activation: Activation::QuickGelu,
        }
    }
    pub fn vit_b16() -> Self {
        Self {
            patch_size: 16,
            ..Self::vit_b32()
        }
    }
    /// Side of the square patch grid the position table was trained on.
    pub fn side(&self) -> usize {
        self.image_size / self.patch_size
    }
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.patch_size == 0 || self.image_size < self.patch_size {
            return Err(ModelError::Invalid(format!(
                "ViT: image_size {} must be at least one patch of {}",
                self.image_size, self.patch_size
            )));
        }
        if self.heads == 0 || !self.width.is_multiple_of(self.heads) || self.layers == 0 {
            return Err(ModelError::Invalid(format!(
                "ViT: {} heads must divide width {} and layers ({}) must be positive",
                self.heads, self.width, self.layers
            )));
        }
        Ok(())
    }
    /// Reads an HF `CLIPVisionConfig` / `CLIPVisionModel(WithProjection)` config.json.
    pub fn from_hf_json(path: &std::path::Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ModelError::Missing {
                    path: path.to_path_buf(),
                    what: "config.json",
                }
            } else {
                ModelError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        // A full CLIPModel config nests the tower under `vision_config`.
        let v = v.get("vision_config").cloned().unwrap_or(v);
        let get = |k: &str, default: Option<usize>| -> Result<usize, ModelError> {
            match v.get(k).and_then(|x| x.as_u64()) {
                Some(x) => Ok(x as usize),
                None => default.ok_or_else(|| ModelError::Config {
                    path: path.to_path_buf(),
                    msg: format!("missing integer `{k}`"),
                }),
            }
        };
        let activation = match v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("quick_gelu")
        {
            "quick_gelu" => Activation::QuickGelu,
            "gelu" => Activation::Gelu,
            other => {
                return Err(ModelError::Config {
                    path: path.to_path_buf(),
                    msg: format!("hidden_act `{other}` is not CLIP's (quick_gelu or gelu)"),
                })
            }
        };
        let c = Self {
            image_size: get("image_size", Some(224))?,
            patch_size: get("patch_size", Some(32))?,
            width: get("hidden_size", Some(768))?,
            layers: get("num_hidden_layers", Some(12))?,
            heads: get("num_attention_heads", Some(12))?,
            mlp_width: get("intermediate_size", Some(3072))?,
            output_dim: get("projection_dim", Some(512))?,
            activation,
        };
        // Name the file: the sizes came from it.
        c.validate().map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        Ok(c)
    }
}

/// Which position embedding the grid path adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GridPositions {
    /// The table bilinearly resized to the patch grid (what the method intends).
    #[default]
    Interpolated,
    /// No position embedding at all: the released extraction scripts' behaviour (issue #13).
    Omitted,
}

#[derive(Module, Debug)]
pub struct ClipVit {
    pub conv1: Conv2d,
    pub class_embedding: Param<Tensor<1>>,
    pub positional_embedding: Param<Tensor<2>>,
    pub ln_pre: LayerNorm,
    pub blocks: Vec<Block>,
    pub ln_post: LayerNorm,
    /// `[width, output_dim]` (open_clip's `proj`; HF's `visual_projection.weight` transposed).
    pub proj: Param<Tensor<2>>,
    pub patch: usize,
}

impl ClipVit {
    pub fn new(c: &VitConfig, device: &Device) -> Result<Self, ModelError> {
        c.validate()?;
        let w = c.width;
        let scale = (w as f64).powf(-0.5);
        let n = c.side() * c.side() + 1;
        Ok(Self {
            conv1: Conv2dConfig::new([3, w], [c.patch_size, c.patch_size])
                .with_stride([c.patch_size, c.patch_size])
                .with_bias(false)
                .init(device),
            class_embedding: Param::from_tensor(Tensor::random(
                [w],
                Distribution::Normal(0.0, scale),
                device,
            )),
            positional_embedding: Param::from_tensor(Tensor::random(
                [n, w],
                Distribution::Normal(0.0, scale),
                device,
            )),
            ln_pre: layer_norm(w, device),
            blocks: (0..c.layers)
                .map(|_| Block::new(w, c.heads, c.mlp_width, c.activation, device))
                .collect(),
            ln_post: layer_norm(w, device),
            proj: Param::from_tensor(Tensor::random(
                [w, c.output_dim],
                Distribution::Normal(0.0, scale),
                device,
            )),
            patch: c.patch_size,
        })
    }

    fn width(&self) -> usize {
        self.class_embedding.dims()[0]
    }

    /// Side of the square grid the position table covers.
    pub fn table_side(&self) -> usize {
        let n = self.positional_embedding.dims()[0] - 1;
        (n as f64).sqrt().round() as usize
    }

    /// The position table for a `gh × gw` patch grid, class position first: the table itself
    /// when the grid matches it, else its bilinear resize.
    pub fn positions(&self, gh: usize, gw: usize) -> Tensor<2> {
        let table = self.positional_embedding.val();
        let s = self.table_side();
        if (gh, gw) == (s, s) {
            return table;
        }
        let w = self.width();
        let device = table.device();
        let cls = table.clone().narrow(0, 0, 1);
        let grid = table.narrow(0, 1, s * s); // [s·s, w], row-major (row, col)
                                              // Bilinear resize is separable: rows then columns, each a small interpolation matrix.
        let ah = Tensor::<2>::from_data(TensorData::new(bilinear_matrix(gh, s), [gh, s]), &device);
        let aw = Tensor::<2>::from_data(TensorData::new(bilinear_matrix(gw, s), [gw, s]), &device);
        let rows = ah.matmul(grid.reshape([s, s * w])); // [gh, s·w]
        let cols = rows
            .reshape([gh, s, w])
            .swap_dims(0, 1)
            .reshape([s, gh * w]);
        let out = aw
            .matmul(cols)
            .reshape([gw, gh, w])
            .swap_dims(0, 1)
            .reshape([gh * gw, w]);
        Tensor::cat(vec![cls, out], 0)
    }

    /// Patch tokens with the class token, positions added and `ln_pre` applied:
    /// `[b, 1 + gh·gw, width]`, plus the grid size.
    fn tokens(&self, images: Tensor<4>, positions: GridPositions) -> (Tensor<3>, usize, usize) {
        let x = self.conv1.forward(images); // [b, w, gh, gw]
        let [b, w, gh, gw] = x.dims();
        let x = x.reshape([b, w, gh * gw]).swap_dims(1, 2);
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, w])
            .expand([b, 1, w]);
        let mut x = Tensor::cat(vec![cls, x], 1);
        if positions == GridPositions::Interpolated {
            x = x + self.positions(gh, gw).unsqueeze_dim::<3>(0);
        }
        (self.ln_pre.forward(x), gh, gw)
    }

    /// HF's `last_hidden_state`: every block, no `ln_post`, `[b, 1 + n, width]`.
    pub fn hidden(&self, images: Tensor<4>) -> Tensor<3> {
        let (mut x, _, _) = self.tokens(images, GridPositions::Interpolated);
        for b in &self.blocks {
            x = b.forward(x, None);
        }
        x
    }

    /// `encode_image` / HF `image_embeds`: `ln_post` of the class token, projected.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let h = self.hidden(images);
        let [b, _, w] = h.dims();
        let cls = self.ln_post.forward(h.narrow(1, 0, 1).reshape([b, w]));
        cls.matmul(self.proj.val())
    }

    /// CLIP-ViL's ViT grid: patch tokens after the first L−1 blocks (no `ln_post`, class token
    /// dropped) as `[b, ⌊H/p⌋, ⌊W/p⌋, width]`, for any input size.
    pub fn grid(&self, images: Tensor<4>, positions: GridPositions) -> Tensor<4> {
        let (mut x, gh, gw) = self.tokens(images, positions);
        let keep = self.blocks.len().saturating_sub(1);
        for b in &self.blocks[..keep] {
            x = b.forward(x, None);
        }
        let [b, n, w] = x.dims();
        x.narrow(1, 1, n - 1).reshape([b, gh, gw, w])
    }

    /// open_clip / OpenAI names under `prefix` (`"visual."` in a full CLIP file).
    pub fn load_open_clip(&mut self, sd: &mut StateDict, prefix: &str) -> Result<(), ModelError> {
        let device = self.class_embedding.device();
        sd.conv2d(&mut self.conv1, &format!("{prefix}conv1"))?;
        let w = self.width();
        self.class_embedding =
            Param::from_tensor(sd.tensor(&format!("{prefix}class_embedding"), [w], &device)?);
        let pe = self.positional_embedding.dims();
        self.positional_embedding =
            Param::from_tensor(sd.tensor(&format!("{prefix}positional_embedding"), pe, &device)?);
        sd.layer_norm(&mut self.ln_pre, &format!("{prefix}ln_pre"))?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.load_open_clip(sd, &format!("{prefix}transformer.resblocks.{i}"))?;
        }
        sd.layer_norm(&mut self.ln_post, &format!("{prefix}ln_post"))?;
        let pd = self.proj.dims();
        self.proj = Param::from_tensor(sd.tensor(&format!("{prefix}proj"), pd, &device)?);
        sd.finish(prefix)
    }

    /// HF `CLIPVisionModelWithProjection` / `CLIPModel` names (`vision_model.*`,
    /// `visual_projection.weight`). A bare `CLIPVisionModel` has no projection: then `proj`
    /// keeps its random values and `embed` is meaningless, which `has_projection` reports.
    pub fn load_hf(&mut self, sd: &mut StateDict) -> Result<bool, ModelError> {
        let device = self.class_embedding.device();
        let p = "vision_model.";
        sd.conv2d(&mut self.conv1, &format!("{p}embeddings.patch_embedding"))?;
        let w = self.width();
        self.class_embedding = Param::from_tensor(sd.tensor(
            &format!("{p}embeddings.class_embedding"),
            [w],
            &device,
        )?);
        let pe = self.positional_embedding.dims();
        self.positional_embedding = Param::from_tensor(sd.tensor(
            &format!("{p}embeddings.position_embedding.weight"),
            pe,
            &device,
        )?);
        sd.layer_norm(&mut self.ln_pre, &format!("{p}pre_layrnorm"))?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.load_hf(sd, &format!("{p}encoder.layers.{i}"))?;
        }
        sd.layer_norm(&mut self.ln_post, &format!("{p}post_layernorm"))?;
        sd.finish(p)?;
        let [wi, o] = self.proj.dims();
        if sd.contains("visual_projection.weight") {
            let v = sd.take("visual_projection.weight", &[o, wi])?;
            self.proj = Param::from_tensor(transposed(&v, o, wi, &device));
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// PyTorch's bilinear weights (`align_corners=False`, no antialias) resizing `inp` samples to
/// `out`: row `i` holds the weights of output `i` over the inputs.
pub fn bilinear_matrix(out: usize, inp: usize) -> Vec<f32> {
    let mut m = vec![0f32; out * inp];
    let scale = inp as f32 / out as f32;
    for i in 0..out {
        let src = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let l1 = src - i0 as f32;
        m[i * inp + i0] += 1.0 - l1;
        m[i * inp + i1] += l1;
    }
    m
}
