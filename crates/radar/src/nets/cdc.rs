//! RODNet-CDC and CDC-deep (spec §5.1): six (9,5,5) conv-BN-ReLU layers that halve T twice and
//! R, A three times, then three transposed convolutions back to the window's size.
//!
//! The decoder is shared with C21D ([`crate::nets::c21d`]). CDC-deep adds two 64→64 stride-1
//! layers after conv1a; its reference file has no `_initialize_weights`, so its convolutions
//! start from PyTorch's default (see [`crate::nets`]).

use burn::module::Module;
use burn::nn::conv::ConvTranspose3d;
use burn::nn::PRelu;
use burn::tensor::Tensor;

use super::blocks::{Builder, Conv, ConvBr, ConvInit};
use super::NetConfig;

/// ConvT 256→128 (4,6,6)/2, PReLU, ConvT 128→64 (4,6,6)/2, PReLU, ConvT 64→n_out (3,6,6)/(1,2,2).
#[derive(Module, Debug)]
pub struct CdcDecoder {
    pub convt1: ConvTranspose3d,
    pub convt2: ConvTranspose3d,
    pub convt3: ConvTranspose3d,
    pub prelu: PRelu,
}

impl CdcDecoder {
    /// `c` = the scaled (64, 128, 256).
    pub(crate) fn new(c: [usize; 3], n_out: usize, b: &mut Builder) -> Self {
        Self {
            convt1: b.up_all(c[2], c[1]),
            convt2: b.up_all(c[1], c[0]),
            convt3: b.up_ra(c[0], n_out),
            prelu: b.prelu(),
        }
    }

    /// `[B, 256, T/4, R/8, A/8]` → raw maps `[B, n_out, T, R, A]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let x = self.prelu.forward(self.convt1.forward(x)); // [B, 128, T/2, R/4, A/4]
        let x = self.prelu.forward(self.convt2.forward(x)); // [B, 64, T, R/2, A/2]
        self.convt3.forward(x)
    }
}

#[derive(Module, Debug)]
pub struct Cdc {
    pub conv1a: ConvBr,
    /// CDC-deep's conv1a_1 and conv1a_2; empty for the CDC.
    pub deep: Vec<ConvBr>,
    pub conv1b: ConvBr,
    pub conv2a: ConvBr,
    pub conv2b: ConvBr,
    pub conv3a: ConvBr,
    pub conv3b: ConvBr,
    pub decoder: CdcDecoder,
}

impl Cdc {
    /// `deep` extra 64→64 layers after conv1a: 0 for the CDC, 2 for CDC-deep.
    pub(crate) fn new(cfg: &NetConfig, deep: usize, b: &mut Builder) -> Self {
        let [c64, c128, c256] = [64, 128, 256].map(|n| cfg.ch(n));
        b.init = if deep > 0 {
            ConvInit::TorchDefault
        } else {
            ConvInit::KaimingFanOut
        };
        Self {
            conv1a: b.br(Conv::k955(cfg.in_channels, c64)),
            deep: (0..deep).map(|_| b.br(Conv::k955(c64, c64))).collect(),
            conv1b: b.br(Conv::k955(c64, c64).stride([2, 2, 2])),
            conv2a: b.br(Conv::k955(c64, c128)),
            conv2b: b.br(Conv::k955(c128, c128).stride([2, 2, 2])),
            conv3a: b.br(Conv::k955(c128, c256)),
            conv3b: b.br(Conv::k955(c256, c256).stride([1, 2, 2])),
            decoder: CdcDecoder::new([c64, c128, c256], cfg.n_out, b),
        }
    }

    /// `[B, C_in, T, R, A]` → `[B, 256, T/4, R/8, A/8]`.
    pub fn encode(&self, x: Tensor<5>) -> Tensor<5> {
        let mut x = self.conv1a.forward(x); // [B, 64, T, R, A]
        for l in &self.deep {
            x = l.forward(x);
        }
        let x = self.conv1b.forward(x); // [B, 64, T/2, R/2, A/2]
        let x = self.conv2a.forward(x);
        let x = self.conv2b.forward(x); // [B, 128, T/4, R/4, A/4]
        let x = self.conv3a.forward(x);
        self.conv3b.forward(x) // [B, 256, T/4, R/8, A/8]
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.decoder.forward(self.encode(x))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::nets::tests::{dev, rand_input};
    use crate::nets::{Arch, Body};

    /// Parameters of a biased convolution, its BN, and a biased transposed convolution.
    pub(crate) fn conv(i: usize, o: usize, k: usize) -> usize {
        i * o * k + o
    }
    pub(crate) fn br(i: usize, o: usize, k: usize) -> usize {
        conv(i, o, k) + 2 * o
    }

    /// The decoder of §5.1: 256→128, 128→64 with kernel 4·6·6, 64→n_out with 3·6·6, one PReLU.
    pub(crate) fn cdc_decoder(n_out: usize) -> usize {
        conv(256, 128, 144) + conv(128, 64, 144) + conv(64, n_out, 108) + 1
    }

    fn cdc_params(n_out: usize, deep: bool) -> usize {
        let mut layers = vec![
            (2, 64),
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
        ];
        if deep {
            layers.extend([(64, 64), (64, 64)]);
        }
        layers.iter().map(|&(i, o)| br(i, o, 225)).sum::<usize>() + cdc_decoder(n_out)
    }

    #[test]
    fn paper_width_parameter_counts() {
        for (arch, deep) in [(Arch::Cdc, false), (Arch::CdcDeep, true)] {
            for n_out in [3, 4] {
                let net = crate::nets::NetConfig::new(arch, n_out)
                    .init(&dev())
                    .unwrap();
                assert_eq!(
                    crate::nets::param_count(&net),
                    cdc_params(n_out, deep),
                    "{arch:?} {n_out}"
                );
            }
        }
        // The number to quote: 28 601 088 in the encoder, 5 919 172 in the decoder.
        assert_eq!(cdc_params(3, false), 34_520_260);
    }

    /// §5.1's table at 1/32 of the width: (2,16,128,128) → 64:(8,8,64,64) → (8,4,32,32) →
    /// (8,4,16,16) → decoder (4,8,32,32), (2,16,64,64), (n_out,16,128,128).
    #[test]
    fn intermediate_shapes_follow_the_table() {
        let cfg = crate::nets::NetConfig::new(Arch::CdcDeep, 4).with_width(1.0 / 32.0);
        let net = cfg.init(&dev()).unwrap();
        let Body::Cdc(m) = &net.body else {
            unreachable!()
        };
        assert_eq!(m.deep.len(), 2);
        let x = rand_input([1, 2, 16, 128, 128], 2);
        let x = m.conv1a.forward(x);
        assert_eq!(x.dims(), [1, 2, 16, 128, 128]);
        let x = m.deep.iter().fold(x, |x, l| l.forward(x));
        let x = m.conv1b.forward(x);
        assert_eq!(x.dims(), [1, 2, 8, 64, 64]);
        let x = m.conv2b.forward(m.conv2a.forward(x));
        assert_eq!(x.dims(), [1, 4, 4, 32, 32]);
        let x = m.conv3b.forward(m.conv3a.forward(x));
        assert_eq!(x.dims(), [1, 8, 4, 16, 16]);
        let d = &m.decoder;
        let y = d.prelu.forward(d.convt1.forward(x));
        assert_eq!(y.dims(), [1, 4, 8, 32, 32]);
        let y = d.prelu.forward(d.convt2.forward(y));
        assert_eq!(y.dims(), [1, 2, 16, 64, 64]);
        assert_eq!(d.convt3.forward(y).dims(), [1, 4, 16, 128, 128]);
    }
}
