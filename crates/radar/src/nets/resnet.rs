//! The ResNet-(2+1)D encoder-decoders (spec §5.5): torchvision's R(2+1)D-18 (two BasicBlocks per
//! stage, every 3-D convolution split into a (1,3,3) spatial and a (3,1,1) temporal one) with the
//! torchvision stem ("Resnet18") or the authors' stem b ("Resnet18b/c"), and decoder A
//! (trilinear upsampling) or B (transposed convolutions, "Resnet18c").
//!
//! The encoder's convolutions have no bias (torchvision); the decoders' do. Every convolution
//! starts Kaiming-normal (fan_out); the transposed ones from PyTorch's default. "Resnet18"
//! loaded Kinetics-400 weights for everything but its first convolution; kiln has no such
//! weights (pitfall 8), so with the torchvision stem it also trains from scratch.

use burn::module::Module;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{BatchNorm, PRelu};
use burn::tensor::activation::relu;
use burn::tensor::Tensor;

use super::blocks::{m_2plus1d, upsample_trilinear, Builder, Conv, ConvBr, ConvInit};
use super::{Decoder, NetConfig, Stem};

/// Spatial (1,3,3) conv with stride (1,s,s) to M channels, BN, ReLU, temporal (3,1,1) conv with
/// stride (s,1,1); both without bias.
#[derive(Module, Debug)]
pub struct Conv2Plus1d {
    pub spatial: Conv3d,
    pub bn: BatchNorm,
    pub temporal: Conv3d,
}

impl Conv2Plus1d {
    fn new(cin: usize, cout: usize, mid: usize, s: usize, b: &mut Builder) -> Self {
        Self {
            spatial: b.conv(Conv::new(cin, mid, [1, 3, 3]).stride([1, s, s]).no_bias()),
            bn: b.bn(mid),
            temporal: b.conv(Conv::new(mid, cout, [3, 1, 1]).stride([s, 1, 1]).no_bias()),
        }
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.temporal
            .forward(relu(self.bn.forward(self.spatial.forward(x))))
    }

    pub fn mid(&self) -> usize {
        self.bn.gamma.lazy_shape()[0]
    }
}

/// The 1×1×1 strided convolution and BN of a block whose shape changes.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv3d,
    pub bn: BatchNorm,
}

/// `ReLU(BN(C2(ReLU(BN(C1(x))))) + shortcut(x))`, both convolutions with M from the block's
/// (in, planes).
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2Plus1d,
    pub bn1: BatchNorm,
    pub conv2: Conv2Plus1d,
    pub bn2: BatchNorm,
    pub downsample: Option<Shortcut>,
}

impl BasicBlock {
    fn new(cin: usize, planes: usize, stride: usize, b: &mut Builder) -> Self {
        let mid = m_2plus1d(cin, planes);
        Self {
            conv1: Conv2Plus1d::new(cin, planes, mid, stride, b),
            bn1: b.bn(planes),
            conv2: Conv2Plus1d::new(planes, planes, mid, 1, b),
            bn2: b.bn(planes),
            downsample: (stride != 1 || cin != planes).then(|| Shortcut {
                conv: b.conv(
                    Conv::new(cin, planes, [1, 1, 1])
                        .stride([stride; 3])
                        .no_bias(),
                ),
                bn: b.bn(planes),
            }),
        }
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let residual = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward(x.clone())),
            None => x.clone(),
        };
        let out = relu(self.bn1.forward(self.conv1.forward(x)));
        let out = self.bn2.forward(self.conv2.forward(out));
        relu(out + residual)
    }
}

/// R(2+1)D-18 without its pooling and classifier.
#[derive(Module, Debug)]
pub struct R2Plus1dEncoder {
    pub stem1: ConvBr,
    pub stem2: ConvBr,
    pub layer1: Vec<BasicBlock>,
    pub layer2: Vec<BasicBlock>,
    pub layer3: Vec<BasicBlock>,
    pub layer4: Vec<BasicBlock>,
}

impl R2Plus1dEncoder {
    pub(crate) fn new(cin: usize, width: f64, stem: Stem, b: &mut Builder) -> Self {
        let ch = |n| super::scale(n, width);
        let (c45, c64) = (ch(45), ch(64));
        b.init = ConvInit::KaimingFanOut;
        let (stem1, stem2) = match stem {
            Stem::Torchvision => (
                Conv::new(cin, c45, [1, 7, 7]).stride([1, 2, 2]),
                Conv::new(c45, c64, [3, 1, 1]),
            ),
            Stem::B => (
                Conv::new(cin, c45, [9, 1, 1]),
                Conv::new(c45, c64, [1, 5, 5]).stride([1, 2, 2]),
            ),
        };
        let stem1 = b.br(stem1.no_bias());
        let stem2 = b.br(stem2.no_bias());
        let mut inplanes = c64;
        let mut layer = |planes: usize, stride: usize| {
            let first = BasicBlock::new(inplanes, planes, stride, b);
            inplanes = planes;
            vec![first, BasicBlock::new(planes, planes, 1, b)]
        };
        Self {
            stem1,
            stem2,
            layer1: layer(c64, 1),
            layer2: layer(ch(128), 2),
            layer3: layer(ch(256), 2),
            layer4: layer(ch(512), 2),
        }
    }

    /// `[B, C_in, T, R, A]` → x1 `[B, 64, T, R/2, A/2]`, x2 `[B, 128, T/2, R/4, A/4]`,
    /// x3 `[B, 256, T/4, R/8, A/8]`, x4 `[B, 512, T/8, R/16, A/16]`.
    pub fn forward(&self, x: Tensor<5>) -> [Tensor<5>; 4] {
        let run = |layer: &[BasicBlock], x| layer.iter().fold(x, |x, b| b.forward(x));
        let x = self.stem2.forward(self.stem1.forward(x));
        let x1 = run(&self.layer1, x);
        let x2 = run(&self.layer2, x1.clone());
        let x3 = run(&self.layer3, x2.clone());
        let x4 = run(&self.layer4, x3.clone());
        [x1, x2, x3, x4]
    }

    pub fn blocks(&self) -> impl Iterator<Item = &BasicBlock> {
        self.layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
    }
}

/// Decoder A: `y = CBR(up(y) + CBR(skip))` three times, then `CBR(up_{1,2,2}(y))` to n_out, where
/// CBR is a (3,7,7) conv with bias, BN, ReLU and `up` trilinear ×2.
#[derive(Module, Debug)]
pub struct DecoderA {
    pub conv4: ConvBr,
    pub conv3: ConvBr,
    pub conv2: ConvBr,
    pub conv1: ConvBr,
    pub conv_x3: ConvBr,
    pub conv_x2: ConvBr,
    pub conv_x1: ConvBr,
}

impl DecoderA {
    /// → `[B, n_out, T, R, A]`, ≥ 0 (it ends in BN + ReLU).
    pub fn forward(&self, [x1, x2, x3, x4]: [Tensor<5>; 4]) -> Tensor<5> {
        let all = [true; 3];
        let y = self
            .conv4
            .forward(upsample_trilinear(x4, all) + self.conv_x3.forward(x3)); // [B,256,T/4,R/8,A/8]
        let y = self
            .conv3
            .forward(upsample_trilinear(y, all) + self.conv_x2.forward(x2)); // [B,128,T/2,R/4,A/4]
        let y = self
            .conv2
            .forward(upsample_trilinear(y, all) + self.conv_x1.forward(x1)); // [B,64,T,R/2,A/2]
        self.conv1
            .forward(upsample_trilinear(y, [false, true, true]))
    }
}

/// Decoder B: stride-2 CBR skips added before three PReLU'd (4,6,6) transposed convolutions, then
/// a (3,6,6) one to n_out, no activation.
#[derive(Module, Debug)]
pub struct DecoderB {
    pub conv_x3: ConvBr,
    pub conv_x2: ConvBr,
    pub conv_x1: ConvBr,
    pub convt4: ConvTranspose3d,
    pub convt3: ConvTranspose3d,
    pub convt2: ConvTranspose3d,
    pub convt1: ConvTranspose3d,
    pub prelu: PRelu,
}

impl DecoderB {
    pub fn forward(&self, [x1, x2, x3, x4]: [Tensor<5>; 4]) -> Tensor<5> {
        let p = |t| self.prelu.forward(t);
        let y = p(self.convt4.forward(x4 + self.conv_x3.forward(x3))); // [B,256,T/4,R/8,A/8]
        let y = p(self.convt3.forward(y + self.conv_x2.forward(x2))); // [B,128,T/2,R/4,A/4]
        let y = p(self.convt2.forward(y + self.conv_x1.forward(x1))); // [B,64,T,R/2,A/2]
        self.convt1.forward(y)
    }
}

/// Unboxed like [`crate::nets::Body`].
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResNetDecoder {
    A(DecoderA),
    B(DecoderB),
}

#[derive(Module, Debug)]
pub struct ResNetAe {
    pub encoder: R2Plus1dEncoder,
    pub decoder: ResNetDecoder,
}

impl ResNetAe {
    pub(crate) fn new(cfg: &NetConfig, stem: Stem, decoder: Decoder, b: &mut Builder) -> Self {
        let encoder = R2Plus1dEncoder::new(cfg.in_channels, cfg.width, stem, b);
        let [c64, c128, c256, c512] = [64, 128, 256, 512].map(|n| cfg.ch(n));
        b.init = ConvInit::KaimingFanOut;
        let mut cbr = |i, o, s| b.br(Conv::new(i, o, [3, 7, 7]).stride([s; 3]));
        let decoder = match decoder {
            Decoder::A => ResNetDecoder::A(DecoderA {
                conv4: cbr(c512, c256, 1),
                conv3: cbr(c256, c128, 1),
                conv2: cbr(c128, c64, 1),
                conv1: cbr(c64, cfg.n_out, 1),
                conv_x3: cbr(c256, c512, 1),
                conv_x2: cbr(c128, c256, 1),
                conv_x1: cbr(c64, c128, 1),
            }),
            Decoder::B => {
                let (conv_x3, conv_x2, conv_x1) =
                    (cbr(c256, c512, 2), cbr(c128, c256, 2), cbr(c64, c128, 2));
                ResNetDecoder::B(DecoderB {
                    conv_x3,
                    conv_x2,
                    conv_x1,
                    convt4: b.up_all(c512, c256),
                    convt3: b.up_all(c256, c128),
                    convt2: b.up_all(c128, c64),
                    convt1: b.up_ra(c64, cfg.n_out),
                    prelu: b.prelu(),
                })
            }
        };
        Self { encoder, decoder }
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let skips = self.encoder.forward(x);
        match &self.decoder {
            ResNetDecoder::A(d) => d.forward(skips),
            ResNetDecoder::B(d) => d.forward(skips),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nets::cdc::tests::{br, conv};
    use crate::nets::tests::{dev, rand_input};
    use crate::nets::{Arch, Body};

    fn block(cin: usize, p: usize) -> usize {
        let m = m_2plus1d(cin, p);
        let c2p1 = |i: usize| i * m * 9 + 2 * m + m * p * 3;
        let shortcut = if cin != p { cin * p + 2 * p } else { 0 };
        c2p1(cin) + 2 * p + c2p1(p) + 2 * p + shortcut
    }

    /// R(2+1)D-18 from §5.5's layer list: the stem (no bias) and eight blocks.
    pub(crate) fn encoder_params(cin: usize, stem: Stem) -> usize {
        let stem = match stem {
            Stem::Torchvision => cin * 45 * 49 + 90 + 45 * 64 * 3 + 128,
            Stem::B => cin * 45 * 9 + 90 + 45 * 64 * 25 + 128,
        };
        stem + [
            (64, 64),
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
            (256, 512),
            (512, 512),
        ]
        .iter()
        .map(|&(i, p)| block(i, p))
        .sum::<usize>()
    }

    fn decoder_params(decoder: Decoder, n_out: usize) -> usize {
        let skips = br(256, 512, 147) + br(128, 256, 147) + br(64, 128, 147);
        skips
            + match decoder {
                Decoder::A => {
                    br(512, 256, 147) + br(256, 128, 147) + br(128, 64, 147) + br(64, n_out, 147)
                }
                Decoder::B => {
                    conv(512, 256, 144)
                        + conv(256, 128, 144)
                        + conv(128, 64, 144)
                        + conv(64, n_out, 108)
                        + 1
                }
            }
    }

    #[test]
    fn paper_width_parameter_counts_and_middle_widths() {
        // torchvision's r2plus1d_18 (3 channels, 400 classes) has 31 505 325 parameters.
        assert_eq!(
            encoder_params(3, Stem::Torchvision) + 512 * 400 + 400,
            31_505_325
        );
        for stem in [Stem::Torchvision, Stem::B] {
            for decoder in [Decoder::A, Decoder::B] {
                let net = NetConfig::new(Arch::ResNet { stem, decoder }, 4)
                    .init(&dev())
                    .unwrap();
                let want = encoder_params(2, stem) + decoder_params(decoder, 4);
                assert_eq!(crate::nets::param_count(&net), want, "{stem:?} {decoder:?}");
                let Body::ResNet(m) = &net.body else {
                    unreachable!()
                };
                let mids: Vec<usize> = m.encoder.blocks().map(|b| b.conv1.mid()).collect();
                assert_eq!(mids, [144, 144, 230, 288, 460, 576, 921, 1152]);
                assert!(m.encoder.blocks().all(|b| b.conv1.mid() == b.conv2.mid()));
            }
        }
    }

    /// §5.5's table at 1/32 of the width: x1 (2,16,64,64), x2 (4,8,32,32), x3 (8,4,16,16),
    /// x4 (16,2,8,8), for both stems; decoder A's and B's stages climb back.
    #[test]
    fn intermediate_shapes_follow_the_table() {
        let x = rand_input([1, 2, 16, 128, 128], 7);
        for (stem, decoder) in [(Stem::Torchvision, Decoder::A), (Stem::B, Decoder::B)] {
            let net = NetConfig::new(Arch::ResNet { stem, decoder }, 4)
                .with_width(1.0 / 32.0)
                .init(&dev())
                .unwrap();
            let Body::ResNet(m) = &net.body else {
                unreachable!()
            };
            let [x1, x2, x3, x4] = m.encoder.forward(x.clone());
            assert_eq!(x1.dims(), [1, 2, 16, 64, 64]);
            assert_eq!(x2.dims(), [1, 4, 8, 32, 32]);
            assert_eq!(x3.dims(), [1, 8, 4, 16, 16]);
            assert_eq!(x4.dims(), [1, 16, 2, 8, 8]);
            match &m.decoder {
                ResNetDecoder::A(d) => {
                    let y = d
                        .conv4
                        .forward(upsample_trilinear(x4, [true; 3]) + d.conv_x3.forward(x3));
                    assert_eq!(y.dims(), [1, 8, 4, 16, 16]);
                    let out = d.forward(m.encoder.forward(x.clone()));
                    assert!(crate::nets::tests::values(out).iter().all(|v| *v >= 0.0));
                }
                ResNetDecoder::B(d) => {
                    let a3 = d.conv_x3.forward(x3);
                    assert_eq!(a3.dims(), [1, 16, 2, 8, 8]);
                    assert_eq!(d.conv_x2.forward(x2).dims(), [1, 8, 4, 16, 16]);
                    assert_eq!(d.conv_x1.forward(x1).dims(), [1, 4, 8, 32, 32]);
                    let y = d.prelu.forward(d.convt4.forward(x4 + a3));
                    assert_eq!(y.dims(), [1, 8, 4, 16, 16]);
                }
            }
        }
    }
}
