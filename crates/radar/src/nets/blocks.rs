//! The pieces every §5 network is built from: seeded lazy initialisation, conv + BN + ReLU
//! ("BR"), the two transposed convolutions, the (2+1)D middle widths and trilinear upsampling,
//! which burn 0.22 only has in 1-D and 2-D.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::conv::{Conv3d, Conv3dConfig, ConvTranspose3d, ConvTranspose3dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PRelu, PReluConfig,
    PaddingConfig3d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Shape, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a (non-transposed) convolution starts (see the module doc of [`crate::nets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvInit {
    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, bias 0.
    KaimingFanOut,
    /// PyTorch's default: weight and bias `U(±1/√fan_in)`.
    TorchDefault,
}

/// A distribution to draw a parameter from.
#[derive(Debug, Clone, Copy)]
enum Draw {
    Normal(f64),
    Uniform(f64),
}

impl Draw {
    fn sample(self, seed: u64, n: usize) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match self {
            Draw::Uniform(b) => (0..n)
                .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * b) as f32)
                .collect(),
            // Box-Muller, both outputs used.
            Draw::Normal(std) => {
                let mut v = Vec::with_capacity(n + 1);
                while v.len() < n {
                    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
                    let u2 = rng.random::<f64>();
                    let r = (-2.0 * u1.ln()).sqrt() * std;
                    let th = std::f64::consts::TAU * u2;
                    v.push((r * th.cos()) as f32);
                    v.push((r * th.sin()) as f32);
                }
                v.truncate(n);
                v
            }
        }
    }
}

/// A convolution's shape. `padding` defaults to `kernel / 2` on each axis, which is every
/// padding of §5 (e.g. (9,5,5) → (4,2,2), (1,7,7) → (0,3,3)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conv {
    cin: usize,
    cout: usize,
    kernel: [usize; 3],
    stride: [usize; 3],
    padding: [usize; 3],
    bias: bool,
}

impl Conv {
    pub(crate) fn new(cin: usize, cout: usize, kernel: [usize; 3]) -> Self {
        Self {
            cin,
            cout,
            kernel,
            stride: [1, 1, 1],
            padding: kernel.map(|k| k / 2),
            bias: true,
        }
    }

    /// The RODNet convolution: (9,5,5), padding (4,2,2).
    pub(crate) fn k955(cin: usize, cout: usize) -> Self {
        Self::new(cin, cout, [9, 5, 5])
    }

    pub(crate) fn stride(mut self, stride: [usize; 3]) -> Self {
        self.stride = stride;
        self
    }

    pub(crate) fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

/// Builds parameters in construction order, each from its own ChaCha8 stream whose seed is the
/// next draw of the model's seed stream, so a model depends only on its config.
pub(crate) struct Builder {
    seeds: ChaCha8Rng,
    device: Device,
    pub(crate) init: ConvInit,
}

impl Builder {
    pub(crate) fn new(seed: u64, device: &Device) -> Self {
        Self {
            seeds: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
            init: ConvInit::KaimingFanOut,
        }
    }

    /// A lazily drawn parameter: nothing is allocated until the module first uses it.
    fn random<const D: usize>(&mut self, shape: [usize; D], draw: Draw) -> Param<Tensor<D>> {
        let seed = self.seeds.random::<u64>();
        Param::uninitialized(
            ParamId::new(),
            move |device, require_grad| {
                let n = shape.iter().product();
                let t =
                    Tensor::<D>::from_data(TensorData::new(draw.sample(seed, n), shape), device);
                if require_grad {
                    t.require_grad()
                } else {
                    t
                }
            },
            self.device.clone(),
            true,
            Shape::from(shape),
        )
    }

    pub(crate) fn conv(&mut self, c: Conv) -> Conv3d {
        let mut conv = Conv3dConfig::new([c.cin, c.cout], c.kernel)
            .with_stride(c.stride)
            .with_padding(PaddingConfig3d::Explicit(
                c.padding[0],
                c.padding[1],
                c.padding[2],
            ))
            .with_bias(c.bias)
            .with_initializer(Initializer::Zeros)
            .init(&self.device);
        let k: usize = c.kernel.iter().product();
        let shape = [c.cout, c.cin, c.kernel[0], c.kernel[1], c.kernel[2]];
        match self.init {
            ConvInit::KaimingFanOut => {
                conv.weight = self.random(shape, Draw::Normal((2.0 / (c.cout * k) as f64).sqrt()));
            }
            ConvInit::TorchDefault => {
                let bound = 1.0 / ((c.cin * k) as f64).sqrt();
                conv.weight = self.random(shape, Draw::Uniform(bound));
                if c.bias {
                    conv.bias = Some(self.random([c.cout], Draw::Uniform(bound)));
                }
            }
        }
        conv
    }

    /// A transposed convolution with PyTorch's default initialisation (`fan_in` of a
    /// `[in, out, k…]` weight is `out·k`), which every reference uses.
    fn conv_t(
        &mut self,
        cin: usize,
        cout: usize,
        kernel: [usize; 3],
        stride: [usize; 3],
    ) -> ConvTranspose3d {
        let mut ct = ConvTranspose3dConfig::new([cin, cout], kernel)
            .with_stride(stride)
            .with_padding([1, 2, 2])
            .with_initializer(Initializer::Zeros)
            .init(&self.device);
        let bound = 1.0 / ((cout * kernel.iter().product::<usize>()) as f64).sqrt();
        ct.weight = self.random(
            [cin, cout, kernel[0], kernel[1], kernel[2]],
            Draw::Uniform(bound),
        );
        ct.bias = Some(self.random([cout], Draw::Uniform(bound)));
        ct
    }

    /// Kernel (4,6,6), stride 2, padding (1,2,2): doubles T, R and A.
    pub(crate) fn up_all(&mut self, cin: usize, cout: usize) -> ConvTranspose3d {
        self.conv_t(cin, cout, [4, 6, 6], [2, 2, 2])
    }

    /// Kernel (3,6,6), stride (1,2,2), padding (1,2,2): keeps T, doubles R and A.
    pub(crate) fn up_ra(&mut self, cin: usize, cout: usize) -> ConvTranspose3d {
        self.conv_t(cin, cout, [3, 6, 6], [1, 2, 2])
    }

    pub(crate) fn bn(&self, n: usize) -> BatchNorm {
        BatchNormConfig::new(n).init(&self.device)
    }

    /// The decoder's one shared PReLU (a single slope, 0.25).
    pub(crate) fn prelu(&self) -> PRelu {
        PReluConfig::new().init(&self.device)
    }

    pub(crate) fn br(&mut self, c: Conv) -> ConvBr {
        ConvBr {
            conv: self.conv(c),
            bn: self.bn(c.cout),
        }
    }

    /// `nn.Linear` as the authors' `_initialize_weights` sets it: weight `N(0, 0.01)`, bias 0.
    pub(crate) fn linear(&mut self, d_in: usize, d_out: usize) -> Linear {
        let mut l = LinearConfig::new(d_in, d_out)
            .with_initializer(Initializer::Zeros)
            .init(&self.device);
        l.weight = self.random([d_in, d_out], Draw::Normal(0.01));
        l
    }
}

/// Trainable parameters, as PyTorch's `sum(p.numel() for p in m.parameters())` counts them:
/// burn's `num_params` also counts BatchNorm's running mean and variance, which are buffers.
/// Lazy parameters are counted from their shapes without being drawn.
pub fn param_count<M: Module>(m: &M) -> usize {
    struct Count {
        path: Vec<String>,
        n: usize,
    }
    impl ModuleVisitor for Count {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let buffer = matches!(
                self.path.last().map(String::as_str),
                Some("running_mean" | "running_var")
            );
            if !buffer {
                self.n += param.lazy_shape().num_elements();
            }
        }
    }
    let mut c = Count {
        path: Vec::new(),
        n: 0,
    };
    m.visit(&mut c);
    c.n
}

/// Convolution, BatchNorm3d, ReLU: the "BR" of §5.
#[derive(Module, Debug)]
pub struct ConvBr {
    pub conv: Conv3d,
    pub bn: BatchNorm,
}

impl ConvBr {
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// C21D's middle width (§5.2): `⌊Cin·Cout·9·5·5 / (Cin·5·5 + 3·Cout)⌋`, with the code's `3·Cout`
/// where the parameter-matching formula would have `9·Cout`.
pub fn m_c21d(cin: usize, cout: usize) -> usize {
    (cin * cout * 225) / (cin * 25 + 3 * cout)
}

/// R(2+1)D's middle width (§5.5, torchvision): `⌊in·p·27 / (in·9 + 3p)⌋`.
pub fn m_2plus1d(cin: usize, planes: usize) -> usize {
    (cin * planes * 27) / (cin * 9 + 3 * planes)
}

/// Trilinear ×2 upsampling (`align_corners = false`) of the axes of `[B, C, T, R, A]` marked
/// in `double` (T, R, A), as PyTorch's `nn.Upsample(scale_factor=…, mode="trilinear")` does with
/// factors 1 or 2. Separable: one linear pass per axis.
pub fn upsample_trilinear(mut x: Tensor<5>, double: [bool; 3]) -> Tensor<5> {
    for (i, d) in double.into_iter().enumerate() {
        if d {
            x = upsample_axis(x, i + 2);
        }
    }
    x
}

/// Linear ×2 along `axis`. With `align_corners = false` output `2i` samples the input at
/// `i − 1/4` and `2i + 1` at `i + 1/4`, so the weights are (1/4, 3/4) with the neighbour on that
/// side, the neighbour index clamped at the edges (where the sample is clamped to the edge).
fn upsample_axis(x: Tensor<5>, axis: usize) -> Tensor<5> {
    let dims = x.dims();
    let n = dims[axis];
    let (prev, next) = if n == 1 {
        (x.clone(), x.clone())
    } else {
        let prev = Tensor::cat(
            vec![
                x.clone().narrow(axis, 0, 1),
                x.clone().narrow(axis, 0, n - 1),
            ],
            axis,
        );
        let next = Tensor::cat(
            vec![
                x.clone().narrow(axis, 1, n - 1),
                x.clone().narrow(axis, n - 1, 1),
            ],
            axis,
        );
        (prev, next)
    };
    let centre = x.mul_scalar(0.75);
    let even = prev.mul_scalar(0.25) + centre.clone();
    let odd = next.mul_scalar(0.25) + centre;
    let mut out = dims;
    out[axis] = 2 * n;
    // [.., n, 2, ..] interleaves even and odd when merged.
    Tensor::stack::<6>(vec![even, odd], axis + 1).reshape(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::tests::{dev, values};

    #[test]
    fn middle_widths_are_the_specs() {
        let c21d: Vec<usize> = [
            (2, 64),
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
        ]
        .iter()
        .map(|&(i, o)| m_c21d(i, o))
        .collect();
        assert_eq!(c21d, [119, 514, 929, 1028, 1858, 2057]);
        let r21d: Vec<usize> = [
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
            (256, 512),
            (512, 512),
        ]
        .iter()
        .map(|&(i, o)| m_2plus1d(i, o))
        .collect();
        assert_eq!(r21d, [144, 230, 288, 460, 576, 921, 1152]);
    }

    /// Upsampling x = (1, 5, 2) along T by hand: output 2i is ¼x[i−1] + ¾x[i] and 2i+1 is
    /// ¾x[i] + ¼x[i+1], the neighbour clamped at the ends.
    #[test]
    fn trilinear_matches_a_hand_computation() {
        let x = Tensor::<5>::from_data(
            TensorData::new(vec![1.0f32, 5.0, 2.0], [1, 1, 3, 1, 1]),
            &dev(),
        );
        let y = values(upsample_trilinear(x, [true, false, false]));
        let want = [1.0, 2.0, 4.0, 4.25, 2.75, 2.0];
        assert_eq!(y.len(), 6);
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
        // Along R and A together: separable, a constant stays constant, shapes double.
        let c = Tensor::<5>::ones([2, 3, 2, 3, 5], &dev()).mul_scalar(1.5);
        let u = upsample_trilinear(c, [true, true, true]);
        assert_eq!(u.dims(), [2, 3, 4, 6, 10]);
        assert!(values(u).iter().all(|v| (v - 1.5).abs() < 1e-6));
        // A single element along an axis is repeated.
        let s = Tensor::<5>::from_data(TensorData::new(vec![3.0f32], [1, 1, 1, 1, 1]), &dev());
        assert_eq!(
            values(upsample_trilinear(s, [false, true, false])),
            [3.0, 3.0]
        );
    }

    /// §5's transposed convolutions: (4,6,6)/2/(1,2,2) doubles T, R, A; (3,6,6)/(1,2,2) keeps T.
    #[test]
    fn transposed_convolutions_double_exactly() {
        let mut b = Builder::new(0, &dev());
        let x = Tensor::<5>::zeros([1, 3, 4, 8, 8], &dev());
        assert_eq!(b.up_all(3, 2).forward(x.clone()).dims(), [1, 2, 8, 16, 16]);
        assert_eq!(b.up_ra(3, 2).forward(x).dims(), [1, 2, 4, 16, 16]);
    }

    /// Kaiming-normal fan_out: std √(2/(out·k)); PyTorch-default: |w| ≤ 1/√(in·k); bias 0 for
    /// Kaiming, BN at (1, 0).
    #[test]
    fn initialisation_has_the_specified_scale() {
        let mut b = Builder::new(1, &dev());
        let c = b.conv(Conv::k955(16, 32));
        let w = values(c.weight.val());
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        let want = 2.0 / (32.0 * 225.0);
        assert!((var / want - 1.0).abs() < 0.05, "{var} vs {want}");
        assert!(values(c.bias.unwrap().val()).iter().all(|v| *v == 0.0));
        b.init = ConvInit::TorchDefault;
        let c = b.conv(Conv::k955(16, 32));
        let bound = 1.0 / (16.0f32 * 225.0).sqrt();
        let w = values(c.weight.val());
        assert!(w.iter().all(|v| v.abs() <= bound));
        assert!(w.iter().any(|v| v.abs() > 0.9 * bound));
        let bias = values(c.bias.unwrap().val());
        assert!(bias.iter().all(|v| v.abs() <= bound) && bias.iter().any(|v| *v != 0.0));
        let bn = b.bn(5);
        assert_eq!(values(bn.gamma.val()), [1.0; 5]);
        assert_eq!(values(bn.beta.val()), [0.0; 5]);
    }
}
