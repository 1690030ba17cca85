//! CLIP's ModifiedResNet (Radford et al. 2021, as open_clip's `modified_resnet.py` builds it):
//! a three-convolution stem, bottlenecks whose strides are all done by average pooling
//! ("anti-aliased" downsampling, never a strided 1×1 convolution), and an attention pool as the
//! head. CLIP-ViL drops the head and uses the layer4 (C5) map as grid features.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::BatchNorm;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::block::Attention;
use super::state::StateDict;
use crate::resnet::{bn, conv, stages};
use crate::ModelError;

/// open_clip's `ModifiedResNet(layers, output_dim, heads, image_size, width)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// Bottlenecks per stage: RN50 (3,4,6,3), RN101 (3,4,23,3), RN50x4 (4,6,10,6).
    pub layers: [usize; 4],
    /// Stem width; the stages have `width·{1,2,4,8}` planes and C5 has `32·width` channels.
    pub width: usize,
    pub heads: usize,
    pub output_dim: usize,
    /// The attention pool's position table covers an `image_size/32` square.
    pub image_size: usize,
}

impl ResNetConfig {
    pub fn rn50() -> Self {
        Self {
            layers: [3, 4, 6, 3],
            width: 64,
            heads: 32,
            output_dim: 1024,
            image_size: 224,
        }
    }
    pub fn rn101() -> Self {
        Self {
            layers: [3, 4, 23, 3],
            width: 64,
            heads: 32,
            output_dim: 512,
            image_size: 224,
        }
    }
    pub fn rn50x4() -> Self {
        Self {
            layers: [4, 6, 10, 6],
            width: 80,
            heads: 40,
            output_dim: 640,
            image_size: 288,
        }
    }
    /// Channels of the C5 grid.
    pub fn grid_dim(&self) -> usize {
        self.width * 32
    }
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.width == 0 || !self.width.is_multiple_of(2) {
            return Err(ModelError::Invalid(format!(
                "ResNet width {} must be even and positive (the stem halves it)",
                self.width
            )));
        }
        if self.heads == 0 || !self.grid_dim().is_multiple_of(self.heads) {
            return Err(ModelError::Invalid(format!(
                "ResNet attention pool: {} heads do not divide its width {}",
                self.heads,
                self.grid_dim()
            )));
        }
        if self.layers.contains(&0) || self.image_size < 32 || self.output_dim == 0 {
            return Err(ModelError::Invalid(format!(
                "ResNet config {self:?}: every stage needs a block, image_size >= 32, output_dim > 0"
            )));
        }
        Ok(())
    }
}

fn pool(s: usize) -> AvgPool2d {
    AvgPool2dConfig::new([s, s]).with_strides([s, s]).init()
}

/// The shortcut when the shape changes: AvgPool(stride) → 1×1 conv → BN.
#[derive(Module, Debug)]
pub struct Downsample {
    pub pool: Option<AvgPool2d>,
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub pool: Option<AvgPool2d>,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    fn new(inplanes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let out = planes * 4;
        let mut bn3 = bn(out, device);
        // open_clip zero-initialises each residual branch's last BN so a fresh network starts
        // as (nearly) the identity through every block.
        bn3.gamma = Param::from_tensor(Tensor::zeros([out], device));
        Self {
            conv1: conv(inplanes, planes, 1, 1, device),
            bn1: bn(planes, device),
            conv2: conv(planes, planes, 3, 1, device),
            bn2: bn(planes, device),
            pool: (stride > 1).then(|| pool(stride)),
            conv3: conv(planes, out, 1, 1, device),
            bn3,
            downsample: (stride > 1 || inplanes != out).then(|| Downsample {
                pool: (stride > 1).then(|| pool(stride)),
                conv: conv(inplanes, out, 1, 1, device),
                bn: bn(out, device),
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            None => x.clone(),
            Some(d) => {
                let s = match &d.pool {
                    Some(p) => p.forward(x.clone()),
                    None => x.clone(),
                };
                d.bn.forward(d.conv.forward(s))
            }
        };
        let h = relu(self.bn1.forward(self.conv1.forward(x)));
        let mut h = relu(self.bn2.forward(self.conv2.forward(h)));
        if let Some(p) = &self.pool {
            h = p.forward(h);
        }
        relu(self.bn3.forward(self.conv3.forward(h)) + identity)
    }

    fn load(&mut self, sd: &mut StateDict, p: &str) -> Result<(), ModelError> {
        sd.conv2d(&mut self.conv1, &format!("{p}.conv1"))?;
        sd.batch_norm(&mut self.bn1, &format!("{p}.bn1"))?;
        sd.conv2d(&mut self.conv2, &format!("{p}.conv2"))?;
        sd.batch_norm(&mut self.bn2, &format!("{p}.bn2"))?;
        sd.conv2d(&mut self.conv3, &format!("{p}.conv3"))?;
        sd.batch_norm(&mut self.bn3, &format!("{p}.bn3"))?;
        if let Some(d) = &mut self.downsample {
            sd.conv2d(&mut d.conv, &format!("{p}.downsample.0"))?;
            sd.batch_norm(&mut d.bn, &format!("{p}.downsample.1"))?;
        }
        Ok(())
    }
}

/// QKV attention over the C5 cells whose single query is their mean, with a learned position
/// table over `(image_size/32)² + 1` positions. It needs inputs of the training resolution.
#[derive(Module, Debug)]
pub struct AttentionPool {
    pub positional_embedding: Param<Tensor<2>>,
    pub attn: Attention,
}

impl AttentionPool {
    fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>, ModelError> {
        let [b, c, h, w] = x.dims();
        let [n, _] = self.positional_embedding.dims();
        if h * w + 1 != n {
            return Err(ModelError::Invalid(format!(
                "attention pool: a {h}×{w} C5 map needs {} positions but the table has {n}; \
                 feed images at the model's training resolution (or use `grid` features, which \
                 take any size)",
                h * w + 1
            )));
        }
        let cells = x.reshape([b, c, h * w]).swap_dims(1, 2); // [b, hw, c]
        let mean = cells.clone().mean_dim(1); // [b, 1, c]
        let seq = Tensor::cat(vec![mean, cells], 1)
            + self.positional_embedding.val().unsqueeze_dim::<3>(0);
        let query = seq.clone().narrow(1, 0, 1);
        let out = self.attn.forward(query, seq, None);
        let d = out.dims()[2];
        Ok(out.reshape([b, d]))
    }
}

#[derive(Module, Debug)]
pub struct ModifiedResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub stem_pool: AvgPool2d,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
    pub attnpool: AttentionPool,
}

impl ModifiedResNet {
    /// A randomly initialised network (open_clip's initialisation of the attention pool and
    /// the zeroed last BN of each residual branch; PyTorch-default convolutions).
    pub fn new(c: &ResNetConfig, device: &Device) -> Result<Self, ModelError> {
        c.validate()?;
        let w = c.width;
        let [layer1, layer2, layer3, layer4] =
            stages(w, c.layers, |i, p, s| Bottleneck::new(i, p, s, device));
        let d = c.grid_dim();
        let side = c.image_size / 32;
        let std = (d as f64).powf(-0.5);
        let mut attn = Attention::new(d, c.heads, c.output_dim, device);
        for l in [&mut attn.q, &mut attn.k, &mut attn.v, &mut attn.out] {
            let dims = l.weight.dims();
            l.weight =
                Param::from_tensor(Tensor::random(dims, Distribution::Normal(0.0, std), device));
        }
        Ok(Self {
            conv1: conv(3, w / 2, 3, 2, device),
            bn1: bn(w / 2, device),
            conv2: conv(w / 2, w / 2, 3, 1, device),
            bn2: bn(w / 2, device),
            conv3: conv(w / 2, w, 3, 1, device),
            bn3: bn(w, device),
            stem_pool: pool(2),
            layer1,
            layer2,
            layer3,
            layer4,
            attnpool: AttentionPool {
                positional_embedding: Param::from_tensor(Tensor::random(
                    [side * side + 1, d],
                    Distribution::Normal(0.0, std),
                    device,
                )),
                attn,
            },
        })
    }

    /// The C5 map `[b, 32·width, ⌊H/32⌋, ⌊W/32⌋]` (every stride floors), for any input size.
    pub fn grid_nchw(&self, images: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn1.forward(self.conv1.forward(images)));
        let x = relu(self.bn2.forward(self.conv2.forward(x)));
        let x = relu(self.bn3.forward(self.conv3.forward(x)));
        let mut x = self.stem_pool.forward(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x
    }

    /// CLIP-ViL's grid features: the C5 map as `[b, h, w, c]` (how the released extractors store
    /// it).
    pub fn grid(&self, images: Tensor<4>) -> Tensor<4> {
        self.grid_nchw(images).permute([0, 2, 3, 1])
    }

    /// `encode_image`: C5 then the attention pool, `[b, output_dim]`.
    pub fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>, ModelError> {
        self.attnpool.forward(self.grid_nchw(images))
    }

    /// Loads the open_clip/OpenAI names (`conv1`, `layer1.0.conv1`, `attnpool.q_proj`, …) from
    /// `sd`, each under `prefix` (`"visual."` for a full CLIP file, `""` for a bare tower).
    pub fn load(&mut self, sd: &mut StateDict, prefix: &str) -> Result<(), ModelError> {
        for (i, (c, b)) in [
            (&mut self.conv1, &mut self.bn1),
            (&mut self.conv2, &mut self.bn2),
            (&mut self.conv3, &mut self.bn3),
        ]
        .into_iter()
        .enumerate()
        {
            sd.conv2d(c, &format!("{prefix}conv{}", i + 1))?;
            sd.batch_norm(b, &format!("{prefix}bn{}", i + 1))?;
        }
        for (l, blocks) in [
            &mut self.layer1,
            &mut self.layer2,
            &mut self.layer3,
            &mut self.layer4,
        ]
        .into_iter()
        .enumerate()
        {
            for (j, block) in blocks.iter_mut().enumerate() {
                block.load(sd, &format!("{prefix}layer{}.{j}", l + 1))?;
            }
        }
        let pe = self.attnpool.positional_embedding.dims();
        let ap = format!("{prefix}attnpool");
        self.attnpool.positional_embedding = Param::from_tensor(sd.tensor(
            &format!("{ap}.positional_embedding"),
            pe,
            &self.conv1.weight.device(),
        )?);
        self.attnpool
            .attn
            .load_split(sd, &ap, ["q_proj", "k_proj", "v_proj", "c_proj"])?;
        sd.finish(prefix)
    }
}
