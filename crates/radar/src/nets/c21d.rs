//! C21D (spec §5.2): the CDC with every (9,5,5) convolution factorised into a temporal (9,1,1)
//! and a spatial (1,5,5) one, each followed by BN + ReLU, and the CDC's decoder.
//!
//! The middle width is [`m_c21d`] of the scaled (in, out) pair, the code's formula with `3·Cout`
//! (so the factorised layer has more parameters than the (9,5,5) one it replaces; at width 1 the
//! widths are 119, 514, 929, 1028, 1858, 2057). The reference encoder ignores `n_channel` and
//! always takes 2 input channels; kiln uses [`NetConfig::in_channels`], which is 2 in every
//! final model.

use burn::module::Module;
use burn::tensor::Tensor;

use super::blocks::{m_c21d, Builder, Conv, ConvBr, ConvInit};
use super::cdc::CdcDecoder;
use super::NetConfig;

/// (9,1,1) conv to M channels + BR, stride along T; then (1,5,5) conv + BR, stride along R, A.
#[derive(Module, Debug)]
pub struct C21dConv {
    pub temporal: ConvBr,
    pub spatial: ConvBr,
}

impl C21dConv {
    fn new(cin: usize, cout: usize, stride: [usize; 3], b: &mut Builder) -> Self {
        let m = m_c21d(cin, cout);
        Self {
            temporal: b.br(Conv::new(cin, m, [9, 1, 1]).stride([stride[0], 1, 1])),
            spatial: b.br(Conv::new(m, cout, [1, 5, 5]).stride([1, stride[1], stride[2]])),
        }
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.spatial.forward(self.temporal.forward(x))
    }

    /// The middle width M.
    pub fn mid(&self) -> usize {
        self.temporal.conv.weight.lazy_shape()[0]
    }
}

#[derive(Module, Debug)]
pub struct C21d {
    pub conv1a: C21dConv,
    pub conv1b: C21dConv,
    pub conv2a: C21dConv,
    pub conv2b: C21dConv,
    pub conv3a: C21dConv,
    pub conv3b: C21dConv,
    pub decoder: CdcDecoder,
}

impl C21d {
    pub(crate) fn new(cfg: &NetConfig, b: &mut Builder) -> Self {
        let [c64, c128, c256] = [64, 128, 256].map(|n| cfg.ch(n));
        b.init = ConvInit::KaimingFanOut;
        let mut conv = |i, o, s| C21dConv::new(i, o, s, b);
        let (one, two, ra) = ([1, 1, 1], [2, 2, 2], [1, 2, 2]);
        Self {
            conv1a: conv(cfg.in_channels, c64, one),
            conv1b: conv(c64, c64, two),
            conv2a: conv(c64, c128, one),
            conv2b: conv(c128, c128, two),
            conv3a: conv(c128, c256, one),
            conv3b: conv(c256, c256, ra),
            decoder: CdcDecoder::new([c64, c128, c256], cfg.n_out, b),
        }
    }

    pub fn layers(&self) -> [&C21dConv; 6] {
        [
            &self.conv1a,
            &self.conv1b,
            &self.conv2a,
            &self.conv2b,
            &self.conv3a,
            &self.conv3b,
        ]
    }

    /// `[B, C_in, T, R, A]` → `[B, 256, T/4, R/8, A/8]`.
    pub fn encode(&self, x: Tensor<5>) -> Tensor<5> {
        self.layers().iter().fold(x, |x, l| l.forward(x))
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.decoder.forward(self.encode(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::cdc::tests::{br, cdc_decoder};
    use crate::nets::tests::{dev, rand_input};
    use crate::nets::{Arch, Body};

    fn c21d(net: &crate::nets::RadarNet) -> &C21d {
        match &net.body {
            Body::C21d(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn paper_width_middle_widths_and_parameter_count() {
        let net = NetConfig::new(Arch::C21d, 4).init(&dev()).unwrap();
        let m = c21d(&net);
        let mids = m.layers().map(|l| l.mid());
        assert_eq!(mids, [119, 514, 929, 1028, 1858, 2057]);
        let pairs = [
            (2, 64),
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
        ];
        let want: usize = pairs
            .iter()
            .zip(mids)
            .map(|(&(i, o), m)| br(i, m, 9) + br(m, o, 25))
            .sum::<usize>()
            + cdc_decoder(4);
        assert_eq!(crate::nets::param_count(&net), want);
    }

    /// Same strides as the CDC: (8,4,32,32) after conv2b, (8,4,16,16) at the bottleneck at 1/32.
    #[test]
    fn intermediate_shapes_follow_the_cdc() {
        let net = NetConfig::new(Arch::C21d, 3)
            .with_width(1.0 / 32.0)
            .init(&dev())
            .unwrap();
        let m = c21d(&net);
        let x = rand_input([1, 2, 16, 128, 128], 4);
        let x = m.conv1a.forward(x);
        assert_eq!(x.dims(), [1, 2, 16, 128, 128]);
        let x = m.conv1b.forward(x);
        assert_eq!(x.dims(), [1, 2, 8, 64, 64]);
        let x = m.conv2b.forward(m.conv2a.forward(x));
        assert_eq!(x.dims(), [1, 4, 4, 32, 32]);
        let x = m.conv3b.forward(m.conv3a.forward(x));
        assert_eq!(x.dims(), [1, 8, 4, 16, 16]);
    }
}
