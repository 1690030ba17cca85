//! A `Linear` layer applied to a `[.., d_in]` input as one 2-D matrix product.

use burn::nn::Linear;
use burn::tensor::Tensor;

/// `layer(x)`, on LibTorch with every leading dimension folded into the rows: one `[rows, d_in]
/// × [d_in, d_out]` GEMM. burn 0.22's `linear` keeps a broadcast batched matmul when each
/// sequence's rows already fill a tile (its `BetterTiling` policy), which LibTorch runs as
/// `bmm` over an expanded weight, one small GEMM per sequence. Measured on MiniLM's FFN shapes
/// (batch 32 × 128 tokens, 2 threads), folding took tch from 0.62-0.68 s to 0.53 s per 10 passes
/// but flex from 0.97 to 1.04 s, so other backends keep burn's own choice. Either way it is the
/// same product: outputs agree to rounding.
pub fn dense<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let dims = x.dims();
    let d_out = layer.weight.dims()[1];
    // burn's `reshape` reads a 0 as "keep this dimension", so an empty layer (every neuron
    // pruned) or an empty batch keeps burn's own path.
    if D <= 2 || d_out == 0 || dims.contains(&0) || !folds(&x.device()) {
        return layer.forward(x);
    }
    let d_in = dims[D - 1];
    let rows: usize = dims[..D - 1].iter().product();
    let y = layer.forward(x.reshape([rows, d_in]));
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}

fn folds(device: &burn::tensor::Device) -> bool {
    kiln_core::backend_name(device).starts_with("tch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn equals_burns_linear_including_empty_layers() {
        // The folded path runs on LibTorch; without it this checks the pass-through.
        let d = kiln_core::DeviceChoice::Tch
            .device()
            .unwrap_or_else(|_| Device::flex());
        d.seed(0);
        let x = Tensor::<3>::random([3, 5, 4], Distribution::Default, &d);
        for width in [6, 0] {
            let l = LinearConfig::new(4, width).init(&d);
            let (a, b) = (l.forward(x.clone()), dense(&l, x.clone()));
            assert_eq!(a.dims(), b.dims());
            if width > 0 {
                let diff: f32 = (a - b).abs().max().into_scalar();
                assert!(diff <= 1e-6, "{diff}");
            }
        }
    }
}
