//! The ImageNet-classification ResNet as torchvision builds it (He et al. 2016, torchvision's
//! v1.5 variant: the stride on the 3×3 convolution), loadable from torchvision/timm state dicts
//! in safetensors (e.g. timm's `resnet50.tv_in1k`, which is torchvision's `IMAGENET1K_V1`).
//!
//! It is here as the baseline grid-feature backbone CLIP-ViL compares CLIP against ("ImageNet
//! RN50" grids: the C5 map, no pooling). What differs from CLIP's ModifiedResNet
//! ([`crate::clip::resnet`]) is exactly what the paper's comparison is about besides the
//! pre-training: a one-convolution 7×7/2 stem with a 3×3/2 max pool, strided convolutions (not
//! average pools) for downsampling, a 1×1 strided convolution shortcut, global average pooling
//! and a linear classifier instead of the attention pool, and ImageNet's input normalisation.
//!
//! Not covered: detectron2's MSRA R-50 (`R-50.pkl`, used by the grid-feats extractors), which
//! puts the stride on the first 1×1 convolution, expects BGR pixels in 0-255 minus the caffe mean,
//! and is stored as a pickled caffe2 dictionary kiln cannot read without Python.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::clip::state::StateDict;
use crate::clip::{CLIP_MEAN, CLIP_STD};
use crate::ModelError;

/// torchvision's ImageNet normalisation of RGB in [0, 1].
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// torchvision's `ResNet(Bottleneck, layers)` with `groups = 1`, `width_per_group = 64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorchResNetConfig {
    /// Bottlenecks per stage: ResNet-50 (3,4,6,3), ResNet-101 (3,4,23,3), ResNet-152 (3,8,36,3).
    pub layers: [usize; 4],
    /// Stem channels and the planes of stage 1 (stages: `width·{1,2,4,8}` planes, four times
    /// that many output channels); torchvision fixes it at 64.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Classes of the linear head (1000 for ImageNet checkpoints).
    #[serde(default = "default_classes")]
    pub num_classes: usize,
}

fn default_width() -> usize {
    64
}
fn default_classes() -> usize {
    1000
}

impl TorchResNetConfig {
    pub fn resnet50() -> Self {
        Self {
            layers: [3, 4, 6, 3],
            width: 64,
            num_classes: 1000,
        }
    }
    pub fn resnet101() -> Self {
        Self {
            layers: [3, 4, 23, 3],
            width: 64,
            num_classes: 1000,
        }
    }
    /// Channels of the C5 grid (2048 for ResNet-50).
    pub fn grid_dim(&self) -> usize {
        self.width * 32
    }
    /// C5 cells along a side of `pixels`: five stride-2 steps, each `⌈n/2⌉` (7×7/2 pad 3, the
    /// 3×3/2 pad 1 max pool and three 3×3/2 pad 1 convolutions), so `⌈pixels/32⌉`. For a 600×1000
    /// input that is 19×32, where CLIP's ModifiedResNet, which floors, gives 18×31.
    pub fn grid_side(pixels: usize) -> usize {
        let mut s = pixels;
        for _ in 0..5 {
            s = s.div_ceil(2);
        }
        s
    }
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.width == 0 || self.layers.contains(&0) || self.num_classes == 0 {
            return Err(ModelError::Invalid(format!(
                "ResNet config {self:?}: width, every stage's block count and num_classes must be positive"
            )));
        }
        Ok(())
    }
}

/// A bias-free k×k convolution with "same" padding, as both ResNets (torchvision's and CLIP's)
/// build every convolution.
pub(crate) fn conv(i: usize, o: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_bias(false)
        .init(device)
}

pub(crate) fn bn(n: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(n).init(device)
}

/// The four bottleneck stages both ResNets share: `width·{1,2,4,8}` planes (four times as many
/// output channels), `layers[i]` blocks each, stride 1 then 2, 2, 2 on each stage's first block.
/// `block(inplanes, planes, stride)` builds one block of the caller's kind.
pub(crate) fn stages<B>(
    width: usize,
    layers: [usize; 4],
    mut block: impl FnMut(usize, usize, usize) -> B,
) -> [Vec<B>; 4] {
    let mut inplanes = width;
    let mut stage = |planes: usize, blocks: usize, stride: usize| {
        let mut v = vec![block(inplanes, planes, stride)];
        inplanes = planes * 4;
        for _ in 1..blocks {
            v.push(block(inplanes, planes, 1));
        }
        v
    };
    [
        stage(width, layers[0], 1),
        stage(width * 2, layers[1], 2),
        stage(width * 4, layers[2], 2),
        stage(width * 8, layers[3], 2),
    ]
}

/// The shortcut when the shape changes: a strided 1×1 convolution and BN.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// 1×1 → 3×3 (stride here, v1.5) → 1×1 (×4 channels), BN after each, ReLU after the first two
/// and after the residual sum.
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Shortcut>,
}

impl Bottleneck {
    fn new(inplanes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let out = planes * 4;
        Self {
            conv1: conv(inplanes, planes, 1, 1, device),
            bn1: bn(planes, device),
            conv2: conv(planes, planes, 3, stride, device),
            bn2: bn(planes, device),
            conv3: conv(planes, out, 1, 1, device),
            bn3: bn(out, device),
            downsample: (stride > 1 || inplanes != out).then(|| Shortcut {
                conv: conv(inplanes, out, 1, stride, device),
                bn: bn(out, device),
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            None => x.clone(),
            Some(d) => d.bn.forward(d.conv.forward(x.clone())),
        };
        let h = relu(self.bn1.forward(self.conv1.forward(x)));
        let h = relu(self.bn2.forward(self.conv2.forward(h)));
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

#[derive(Module, Debug)]
pub struct TorchResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
    pub fc: Linear,
}

impl TorchResNet {
    /// A randomly initialised network (burn's default initialisers; load a checkpoint for the
    /// ImageNet features).
    pub fn new(c: &TorchResNetConfig, device: &Device) -> Result<Self, ModelError> {
        c.validate()?;
        let w = c.width;
        let [layer1, layer2, layer3, layer4] =
            stages(w, c.layers, |i, p, s| Bottleneck::new(i, p, s, device));
        Ok(Self {
            conv1: conv(3, w, 7, 2, device),
            bn1: bn(w, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(c.grid_dim(), c.num_classes).init(device),
        })
    }

    /// The C5 map `[b, 32·width, ⌈H/32⌉, ⌈W/32⌉]` of ImageNet-normalised images, any size.
    pub fn grid_nchw(&self, images: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn1.forward(self.conv1.forward(images)));
        let mut x = self.maxpool.forward(x);
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

    /// Grid features `[b, h, w, c]`, laid out as CLIP-ViL stores grids.
    pub fn grid(&self, images: Tensor<4>) -> Tensor<4> {
        self.grid_nchw(images).permute([0, 2, 3, 1])
    }

    /// Global average pool of C5, `[b, 32·width]` (the classifier's input).
    pub fn pooled(&self, images: Tensor<4>) -> Tensor<2> {
        let g = self.grid_nchw(images);
        let [b, c, h, w] = g.dims();
        g.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
    }

    /// Class logits `[b, num_classes]`.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.pooled(images))
    }

    /// Loads torchvision's names (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`,
    /// `fc`), each under `prefix`; every float tensor under the prefix must be used.
    pub fn load(&mut self, sd: &mut StateDict, prefix: &str) -> Result<(), ModelError> {
        sd.conv2d(&mut self.conv1, &format!("{prefix}conv1"))?;
        sd.batch_norm(&mut self.bn1, &format!("{prefix}bn1"))?;
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
        sd.linear(&mut self.fc, &format!("{prefix}fc"))?;
        sd.finish(prefix)
    }
}

/// A torchvision/timm ResNet from a safetensors state dict (bare names, or under `model.` /
/// `backbone.` as some wrappers save them).
pub fn load_torchvision_resnet(
    path: &std::path::Path,
    config: &TorchResNetConfig,
    device: &Device,
) -> Result<TorchResNet, ModelError> {
    let mut sd = StateDict::read(path)?;
    let prefix = torchvision_prefix(&sd)?;
    let mut m = TorchResNet::new(config, device)?;
    m.load(&mut sd, prefix)?;
    Ok(m)
}

/// Where a torchvision-layout ResNet's names start: bare, or under `model.` / `backbone.`.
pub fn torchvision_prefix(sd: &StateDict) -> Result<&'static str, ModelError> {
    ["", "model.", "backbone."]
        .into_iter()
        .find(|p| sd.contains(&format!("{p}conv1.weight")))
        .ok_or_else(|| ModelError::Invalid(format!(
            "{}: no `conv1.weight` (nor `model.conv1.weight`, `backbone.conv1.weight`): not a torchvision-layout ResNet state dict",
            sd.path().display()
        )))
}

/// `(x − mean) / std` per channel with ImageNet's statistics, on `[b, 3, h, w]` in [0, 1].
pub fn imagenet_normalize(images: Tensor<4>) -> Tensor<4> {
    affine(
        images,
        |c| 1.0 / IMAGENET_STD[c],
        |c| -IMAGENET_MEAN[c] / IMAGENET_STD[c],
    )
}

/// CLIP-normalised images re-expressed in ImageNet's normalisation: `x = x_clip·s_c + m_c`,
/// then `(x − m_i)/s_i`, one per-channel affine map. Lets a tower trained on ImageNet statistics
/// read the same image tensors as the CLIP towers in one experiment.
pub fn clip_to_imagenet(images: Tensor<4>) -> Tensor<4> {
    affine(
        images,
        |c| CLIP_STD[c] / IMAGENET_STD[c],
        |c| (CLIP_MEAN[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c],
    )
}

fn affine(
    images: Tensor<4>,
    scale: impl Fn(usize) -> f32,
    shift: impl Fn(usize) -> f32,
) -> Tensor<4> {
    let device = images.device();
    let t = |f: &dyn Fn(usize) -> f32| {
        Tensor::<1>::from_data(
            TensorData::new((0..3).map(f).collect::<Vec<_>>(), [3]),
            &device,
        )
        .reshape([1, 3, 1, 1])
    };
    images * t(&scale) + t(&shift)
}
