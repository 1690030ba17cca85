//! RODNet-HGwI (spec §5.4): the hourglass with temporal-inception layers, one stack. T is never
//! downsampled; every stage halves R and A with three parallel branches of temporal extent
//! 5, 9 and 13 concatenated to 32 + 64 + 64 = 160 channels, then BN + ReLU.
//!
//! At 160 channels and full resolution this is by far the heaviest model (pitfall 9): train
//! it with a batch of 2-4 on a GPU, or at a reduced `width` on the CPU. The trunk width at a
//! reduced width is the sum of the scaled branches, so the concatenation always fits.
//! Convolutions start from PyTorch's default (the reference has no `_initialize_weights`).

use burn::module::Module;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{BatchNorm, PRelu};
use burn::tensor::activation::relu;
use burn::tensor::Tensor;

use super::blocks::{Builder, Conv, ConvBr, ConvInit};
use super::NetConfig;

/// Three branches, no activation inside, concatenated along channels.
#[derive(Module, Debug)]
pub struct Inception {
    /// (5,5,5), stride s → 32.
    pub branch1: Conv3d,
    /// (5,5,5) → 64, then (9,5,5), stride s.
    pub branch2a: Conv3d,
    pub branch2b: Conv3d,
    /// (5,5,5) → 64, then (13,5,5), stride s.
    pub branch3a: Conv3d,
    pub branch3b: Conv3d,
}

impl Inception {
    fn new(cin: usize, c32: usize, c64: usize, b: &mut Builder) -> Self {
        let s = [1, 2, 2];
        Self {
            branch1: b.conv(Conv::new(cin, c32, [5, 5, 5]).stride(s)),
            branch2a: b.conv(Conv::new(cin, c64, [5, 5, 5])),
            branch2b: b.conv(Conv::new(c64, c64, [9, 5, 5]).stride(s)),
            branch3a: b.conv(Conv::new(cin, c64, [5, 5, 5])),
            branch3b: b.conv(Conv::new(c64, c64, [13, 5, 5]).stride(s)),
        }
    }

    /// `[B, 160, T, R, A]` → `[B, 160, T, R/2, A/2]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let b1 = self.branch1.forward(x.clone());
        let b2 = self.branch2b.forward(self.branch2a.forward(x.clone()));
        let b3 = self.branch3b.forward(self.branch3a.forward(x));
        Tensor::cat(vec![b1, b2, b3], 1)
    }
}

/// An inception layer followed by BN + ReLU.
#[derive(Module, Debug)]
pub struct InceptionBr {
    pub inception: Inception,
    pub bn: BatchNorm,
}

impl InceptionBr {
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        relu(self.bn.forward(self.inception.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct HgwiEncoder {
    pub inception1: InceptionBr,
    pub inception2: InceptionBr,
    pub inception3: InceptionBr,
    pub skip_inception1: InceptionBr,
    pub skip_inception2: InceptionBr,
    pub skip_inception3: InceptionBr,
}

impl HgwiEncoder {
    /// `x0 [B, 160, T, R, A]` → (x, x1, x2, x3) at R/8, R/2, R/4, R/8 (T kept).
    pub fn forward(&self, x: Tensor<5>) -> [Tensor<5>; 4] {
        let x1 = self.skip_inception1.forward(x.clone());
        let x = self.inception1.forward(x);
        let x2 = self.skip_inception2.forward(x.clone());
        let x = self.inception2.forward(x);
        let x3 = self.skip_inception3.forward(x.clone());
        let x = self.inception3.forward(x);
        [x, x1, x2, x3]
    }
}

/// Three times: PReLU(ConvT(· + skip)), then PReLU((9,5,5) conv), all 160→160.
#[derive(Module, Debug)]
pub struct HgwiDecoder {
    pub convt1: ConvTranspose3d,
    pub convt2: ConvTranspose3d,
    pub convt3: ConvTranspose3d,
    pub conv1: Conv3d,
    pub conv2: Conv3d,
    pub conv3: Conv3d,
    pub prelu: PRelu,
}

impl HgwiDecoder {
    /// → `[B, 160, T, R, A]`.
    pub fn forward(&self, [x, x1, x2, x3]: [Tensor<5>; 4]) -> Tensor<5> {
        let p = |t| self.prelu.forward(t);
        let y = p(self.conv1.forward(p(self.convt1.forward(x + x3))));
        let y = p(self.conv2.forward(p(self.convt2.forward(y + x2))));
        p(self.conv3.forward(p(self.convt3.forward(y + x1))))
    }
}

#[derive(Module, Debug)]
pub struct Hgwi {
    pub conv1a: ConvBr,
    pub conv1b: ConvBr,
    pub conv1c: ConvBr,
    pub encoder: HgwiEncoder,
    pub decoder: HgwiDecoder,
    pub head: Conv3d,
}

impl Hgwi {
    pub(crate) fn new(cfg: &NetConfig, b: &mut Builder) -> Self {
        let (c32, c64) = (cfg.ch(32), cfg.ch(64));
        let c160 = c32 + 2 * c64;
        b.init = ConvInit::TorchDefault;
        let conv1a = b.br(Conv::k955(cfg.in_channels, c32));
        let conv1b = b.br(Conv::k955(c32, c64));
        let conv1c = b.br(Conv::k955(c64, c160));
        let mut inc = || InceptionBr {
            inception: Inception::new(c160, c32, c64, b),
            bn: b.bn(c160),
        };
        let encoder = HgwiEncoder {
            inception1: inc(),
            inception2: inc(),
            inception3: inc(),
            skip_inception1: inc(),
            skip_inception2: inc(),
            skip_inception3: inc(),
        };
        let decoder = HgwiDecoder {
            convt1: b.up_ra(c160, c160),
            convt2: b.up_ra(c160, c160),
            convt3: b.up_ra(c160, c160),
            conv1: b.conv(Conv::k955(c160, c160)),
            conv2: b.conv(Conv::k955(c160, c160)),
            conv3: b.conv(Conv::k955(c160, c160)),
            prelu: b.prelu(),
        };
        Self {
            conv1a,
            conv1b,
            conv1c,
            encoder,
            decoder,
            head: b.conv(Conv::k955(c160, cfg.n_out)),
        }
    }

    /// `[B, C_in, T, R, A]` → x0 `[B, 160, T, R, A]`.
    pub fn stem(&self, x: Tensor<5>) -> Tensor<5> {
        self.conv1c
            .forward(self.conv1b.forward(self.conv1a.forward(x)))
    }

    /// Raw maps `[B, n_out, T, R, A]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let y = self.decoder.forward(self.encoder.forward(self.stem(x)));
        self.head.forward(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::cdc::tests::{br, conv};
    use crate::nets::tests::{dev, rand_input};
    use crate::nets::{Arch, Body};

    fn hgwi_params(n_out: usize) -> usize {
        let inception = conv(160, 32, 125)
            + conv(160, 64, 125)
            + conv(64, 64, 225)
            + conv(160, 64, 125)
            + conv(64, 64, 325)
            + 2 * 160;
        let decoder = 3 * conv(160, 160, 108) + 3 * conv(160, 160, 225) + 1;
        br(2, 32, 225)
            + br(32, 64, 225)
            + br(64, 160, 225)
            + 6 * inception
            + decoder
            + conv(160, n_out, 225)
    }

    #[test]
    fn paper_width_parameter_count() {
        let net = NetConfig::new(Arch::Hgwi, 4).init(&dev()).unwrap();
        assert_eq!(crate::nets::param_count(&net), hgwi_params(4));
    }

    /// §5.4 at 1/32 of the width (160 → 1 + 2 + 2 = 5): x0 (5,16,128,128), x1 (5,16,64,64),
    /// x2 (5,16,32,32), x = x3 = (5,16,16,16); the decoder climbs back to (5,16,128,128).
    #[test]
    fn intermediate_shapes_follow_the_spec() {
        let net = NetConfig::new(Arch::Hgwi, 3)
            .with_width(1.0 / 32.0)
            .init(&dev())
            .unwrap();
        let Body::Hgwi(m) = &net.body else {
            unreachable!()
        };
        let x0 = m.stem(rand_input([1, 2, 16, 128, 128], 6));
        assert_eq!(x0.dims(), [1, 5, 16, 128, 128]);
        let [x, x1, x2, x3] = m.encoder.forward(x0);
        assert_eq!(x1.dims(), [1, 5, 16, 64, 64]);
        assert_eq!(x2.dims(), [1, 5, 16, 32, 32]);
        assert_eq!(x3.dims(), [1, 5, 16, 16, 16]);
        assert_eq!(x.dims(), [1, 5, 16, 16, 16]);
        let d = &m.decoder;
        let y = d.convt1.forward(x + x3);
        assert_eq!(y.dims(), [1, 5, 16, 32, 32]);
        let y = d.convt2.forward(y + x2);
        assert_eq!(y.dims(), [1, 5, 16, 64, 64]);
        assert_eq!(d.convt3.forward(y + x1).dims(), [1, 5, 16, 128, 128]);
    }
}
