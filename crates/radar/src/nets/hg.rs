//! RODNet-HG (spec §5.3): a full-resolution stem, then S hourglasses, each a CDC-like encoder
//! with a parallel skip path at every stage and a transposed-convolution decoder that adds the
//! skips back, and a (9,5,5) head per stack.
//!
//! As in the official RODNet (and the spec), the decoder's last transposed convolution has no
//! activation (the authors' fork adds a PReLU there), and the next stack's input is
//! `y + conv(activated map)` (the fork convolves the raw map). The reference builds that
//! n_out→64 convolution in every stack, the last one unused; kiln builds it only where it is
//! used, so S stacks have `n_out·64·225 + 64` parameters fewer than the reference's count.
//! Convolutions start from PyTorch's default (the reference has no `_initialize_weights`).

use burn::module::Module;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::PRelu;
use burn::tensor::Tensor;

use super::blocks::{Builder, Conv, ConvBr, ConvInit};
use super::{Head, NetConfig};

/// Main and skip paths of §5.3's table: two (9,5,5) conv-BR layers per stage on each.
#[derive(Module, Debug)]
pub struct HgEncoder {
    pub conv1a: ConvBr,
    pub conv1b: ConvBr,
    pub conv2a: ConvBr,
    pub conv2b: ConvBr,
    pub conv3a: ConvBr,
    pub conv3b: ConvBr,
    pub skipconv1a: ConvBr,
    pub skipconv1b: ConvBr,
    pub skipconv2a: ConvBr,
    pub skipconv2b: ConvBr,
    pub skipconv3a: ConvBr,
    pub skipconv3b: ConvBr,
}

impl HgEncoder {
    fn new(c: [usize; 3], b: &mut Builder) -> Self {
        let [c64, c128, c256] = c;
        let (two, ra) = ([2, 2, 2], [1, 2, 2]);
        let mut stage = |i, o, s| (b.br(Conv::k955(i, o)), b.br(Conv::k955(o, o).stride(s)));
        let (conv1a, conv1b) = stage(c64, c64, two);
        let (conv2a, conv2b) = stage(c64, c128, two);
        let (conv3a, conv3b) = stage(c128, c256, ra);
        let (skipconv1a, skipconv1b) = stage(c64, c64, two);
        let (skipconv2a, skipconv2b) = stage(c64, c128, two);
        let (skipconv3a, skipconv3b) = stage(c128, c256, ra);
        Self {
            conv1a,
            conv1b,
            conv2a,
            conv2b,
            conv3a,
            conv3b,
            skipconv1a,
            skipconv1b,
            skipconv2a,
            skipconv2b,
            skipconv3a,
            skipconv3b,
        }
    }

    /// `x0 [B, 64, T, R, A]` → (x `[B, 256, T/4, R/8, A/8]`, x1 `[B, 64, T/2, R/2, A/2]`,
    /// x2 `[B, 128, T/4, R/4, A/4]`, x3 like x); each skip starts from its stage's input.
    pub fn forward(&self, x: Tensor<5>) -> [Tensor<5>; 4] {
        let x1 = self.skipconv1b.forward(self.skipconv1a.forward(x.clone()));
        let x = self.conv1b.forward(self.conv1a.forward(x));
        let x2 = self.skipconv2b.forward(self.skipconv2a.forward(x.clone()));
        let x = self.conv2b.forward(self.conv2a.forward(x));
        let x3 = self.skipconv3b.forward(self.skipconv3a.forward(x.clone()));
        let x = self.conv3b.forward(self.conv3a.forward(x));
        [x, x1, x2, x3]
    }
}

#[derive(Module, Debug)]
pub struct HgDecoder {
    pub convt1: ConvTranspose3d,
    pub convt2: ConvTranspose3d,
    pub convt3: ConvTranspose3d,
    pub prelu: PRelu,
}

impl HgDecoder {
    fn new(c: [usize; 3], b: &mut Builder) -> Self {
        let [c64, c128, c256] = c;
        Self {
            convt1: b.up_ra(c256, c128),
            convt2: b.up_all(c128, c64),
            convt3: b.up_all(c64, c64),
            prelu: b.prelu(),
        }
    }

    /// → `[B, 64, T, R, A]`.
    pub fn forward(&self, [x, x1, x2, x3]: [Tensor<5>; 4]) -> Tensor<5> {
        let y = self.prelu.forward(self.convt1.forward(x + x3)); // [B, 128, T/4, R/4, A/4]
        let y = self.prelu.forward(self.convt2.forward(y + x2)); // [B, 64, T/2, R/2, A/2]
        self.convt3.forward(y + x1)
    }
}

/// One hourglass, its head and (except in the last stack) the map-to-features convolution.
#[derive(Module, Debug)]
pub struct HgStack {
    pub encoder: HgEncoder,
    pub decoder: HgDecoder,
    pub head: Conv3d,
    pub remap: Option<Conv3d>,
}

#[derive(Module, Debug)]
pub struct Hg {
    pub conv1a: ConvBr,
    pub conv1b: ConvBr,
    pub stacks: Vec<HgStack>,
    /// Which map feeds the next stack (the activated one).
    #[module(skip)]
    pub head: Head,
}

impl Hg {
    pub(crate) fn new(cfg: &NetConfig, stacks: usize, b: &mut Builder) -> Self {
        let c = [64, 128, 256].map(|n| cfg.ch(n));
        b.init = ConvInit::TorchDefault;
        let conv1a = b.br(Conv::k955(cfg.in_channels, cfg.ch(32)));
        let conv1b = b.br(Conv::k955(cfg.ch(32), c[0]));
        let stacks = (0..stacks)
            .map(|s| HgStack {
                encoder: HgEncoder::new(c, b),
                decoder: HgDecoder::new(c, b),
                head: b.conv(Conv::k955(c[0], cfg.n_out)),
                remap: (s + 1 < stacks).then(|| b.conv(Conv::k955(cfg.n_out, c[0]))),
            })
            .collect();
        Self {
            conv1a,
            conv1b,
            stacks,
            head: cfg.head,
        }
    }

    /// The stem: `[B, C_in, T, R, A]` → x0 `[B, 64, T, R, A]`.
    pub fn stem(&self, x: Tensor<5>) -> Tensor<5> {
        self.conv1b.forward(self.conv1a.forward(x))
    }

    /// Raw maps `[B, n_out, T, R, A]`, one per stack.
    pub fn forward(&self, x: Tensor<5>) -> Vec<Tensor<5>> {
        let mut x = self.stem(x);
        let mut out = Vec::with_capacity(self.stacks.len());
        for s in &self.stacks {
            let y = s.decoder.forward(s.encoder.forward(x));
            let map = s.head.forward(y.clone());
            match &s.remap {
                Some(remap) => {
                    x = y + remap.forward(self.head.activate(map.clone()));
                    out.push(map);
                }
                None => {
                    out.push(map);
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::cdc::tests::{br, conv};
    use crate::nets::tests::{dev, rand_input};
    use crate::nets::{Arch, Body};

    fn hg_params(stacks: usize, n_out: usize) -> usize {
        let stage = [
            (64, 64),
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
        ];
        let encoder: usize = 2 * stage.iter().map(|&(i, o)| br(i, o, 225)).sum::<usize>();
        let decoder = conv(256, 128, 108) + conv(128, 64, 144) + conv(64, 64, 144) + 1;
        let head = conv(64, n_out, 225);
        let remap = conv(n_out, 64, 225);
        br(2, 32, 225)
            + br(32, 64, 225)
            + stacks * (encoder + decoder + head)
            + (stacks - 1) * remap
    }

    #[test]
    fn paper_width_parameter_counts() {
        for stacks in [1, 2] {
            let net = NetConfig::new(Arch::Hg { stacks }, 3).init(&dev()).unwrap();
            assert_eq!(
                crate::nets::param_count(&net),
                hg_params(stacks, 3),
                "{stacks} stacks"
            );
        }
        assert_eq!(hg_params(1, 3), 64_815_140);
    }

    /// §5.3 at 1/32 of the width: x0 (2,16,128,128); x1 (2,8,64,64), x2 (4,4,32,32),
    /// x = x3 = (8,4,16,16); decoder (4,4,32,32), (2,8,64,64), (2,16,128,128).
    #[test]
    fn intermediate_shapes_follow_the_table() {
        let net = NetConfig::new(Arch::Hg { stacks: 1 }, 3)
            .with_width(1.0 / 32.0)
            .init(&dev())
            .unwrap();
        let Body::Hg(m) = &net.body else {
            unreachable!()
        };
        let x0 = m.stem(rand_input([1, 2, 16, 128, 128], 5));
        assert_eq!(x0.dims(), [1, 2, 16, 128, 128]);
        let s = &m.stacks[0];
        assert!(s.remap.is_none());
        let [x, x1, x2, x3] = s.encoder.forward(x0);
        assert_eq!(x.dims(), [1, 8, 4, 16, 16]);
        assert_eq!(x1.dims(), [1, 2, 8, 64, 64]);
        assert_eq!(x2.dims(), [1, 4, 4, 32, 32]);
        assert_eq!(x3.dims(), [1, 8, 4, 16, 16]);
        let d = &s.decoder;
        let y = d.prelu.forward(d.convt1.forward(x + x3));
        assert_eq!(y.dims(), [1, 4, 4, 32, 32]);
        let y = d.prelu.forward(d.convt2.forward(y + x2));
        assert_eq!(y.dims(), [1, 2, 8, 64, 64]);
        assert_eq!(d.convt3.forward(y + x1).dims(), [1, 2, 16, 128, 128]);
    }
}
