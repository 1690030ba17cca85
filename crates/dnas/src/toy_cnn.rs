//! The extension example (spec §7, the official `sample_extension/`): a toy CNN supernet for
//! 5-class classification, showing that only the supernet, its data and its loss change. Two
//! choices, each a "same"-padded convolution with kernel 3, 5 or 7 (then 2×2 and `pool2`×`pool2`
//! max-pooling), a linear head, cross-entropy, and the cost `m1·[1,2,3] + m2·[2,4,6]` (any
//! differentiable cost works). It runs through the generic [`crate::search::search_with`];
//! the official sizes are 3×50×50 inputs, 32 and 64 channels, `pool2` 5.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::mlp::weights_row;

pub const KERNELS: [usize; 3] = [3, 5, 7];
pub const COSTS: [[f64; 3]; 2] = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]];

#[derive(Debug, Clone, Copy)]
pub struct ToyCnnConfig {
    pub side: usize,
    pub channels: [usize; 2],
    pub pool2: usize,
    pub classes: usize,
}

impl ToyCnnConfig {
    /// The official example's sizes.
    pub fn official() -> Self {
        Self {
            side: 50,
            channels: [32, 64],
            pool2: 5,
            classes: 5,
        }
    }
    fn flat(&self) -> usize {
        let s = self.side / 2 / self.pool2;
        self.channels[1] * s * s
    }
}

fn conv(i: usize, o: usize, k: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [k, k])
        .with_padding(PaddingConfig2d::Same)
        .init(device)
}

/// The supernet: every candidate convolution of both choices.
#[derive(Module, Debug)]
pub struct ToyCnnSuper {
    pub conv1: Vec<Conv2d>,
    pub conv2: Vec<Conv2d>,
    pub head: Linear,
    pub pool2: usize,
}

/// A sampled architecture: one convolution per choice.
#[derive(Module, Debug)]
pub struct ToyCnn {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub head: Linear,
    pub pool2: usize,
}

fn pools(x: Tensor<4>, k: usize) -> Tensor<4> {
    MaxPool2dConfig::new([k, k]).init().forward(x)
}

fn flatten(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c * h * w])
}

/// `m[:, k]` as `[B, 1, 1, 1]`.
fn weight(m: &Tensor<2>, k: usize) -> Tensor<4> {
    let b = m.dims()[0];
    m.clone().narrow(1, k, 1).reshape([b, 1, 1, 1])
}

impl ToyCnnSuper {
    pub fn new(c: &ToyCnnConfig, device: &Device) -> Self {
        Self {
            conv1: KERNELS
                .iter()
                .map(|&k| conv(3, c.channels[0], k, device))
                .collect(),
            conv2: KERNELS
                .iter()
                .map(|&k| conv(c.channels[0], c.channels[1], k, device))
                .collect(),
            head: LinearConfig::new(c.flat(), c.classes).init(device),
            pool2: c.pool2,
        }
    }

    pub fn choice_sizes(&self) -> Vec<usize> {
        vec![self.conv1.len(), self.conv2.len()]
    }

    /// Logits `[B, classes]` and the cost `[B]` under per-example masks.
    pub fn forward(&self, x: Tensor<4>, masks: &[Tensor<2>]) -> (Tensor<2>, Tensor<1>) {
        let mix = |convs: &[Conv2d], x: Tensor<4>, m: &Tensor<2>| {
            convs
                .iter()
                .enumerate()
                .map(|(k, c)| c.forward(x.clone()) * weight(m, k))
                .reduce(|a, b| a + b)
                .expect("at least one candidate")
        };
        let h = pools(mix(&self.conv1, x, &masks[0]), 2);
        let h = pools(mix(&self.conv2, h, &masks[1]), self.pool2);
        let b = masks[0].dims()[0];
        let device = masks[0].device();
        let cost = masks
            .iter()
            .zip(COSTS)
            .map(|(m, c)| m.clone().mul(weights_row(&c, &device)).sum_dim(1))
            .reduce(|a, b| a + b)
            .expect("two choices")
            .reshape([b]);
        (self.head.forward(flatten(h)), cost)
    }

    pub fn arch_cost(choice: &[usize]) -> f64 {
        COSTS[0][choice[0]] + COSTS[1][choice[1]]
    }

    /// The sampled network with this supernet's weights.
    pub fn standalone(&self, choice: &[usize]) -> ToyCnn {
        ToyCnn {
            conv1: self.conv1[choice[0]].clone(),
            conv2: self.conv2[choice[1]].clone(),
            head: self.head.clone(),
            pool2: self.pool2,
        }
    }
}

impl ToyCnn {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let h = pools(self.conv1.forward(x), 2);
        let h = pools(self.conv2.forward(h), self.pool2);
        self.head.forward(flatten(h))
    }
}

/// The example's synthetic data: item `i` is a constant image of value `0.01·(i mod 100)` with
/// label `i mod 5`. Returns images `[n, 3, side, side]` (host, row-major) and labels.
pub fn synthetic(n: usize, offset: usize, side: usize) -> (Vec<f32>, Vec<i64>) {
    let per = 3 * side * side;
    let mut x = Vec::with_capacity(n * per);
    let mut y = Vec::with_capacity(n);
    for j in 0..n {
        let i = offset + j;
        x.extend(std::iter::repeat_n(0.01 * (i % 100) as f32, per));
        y.push((i % 5) as i64);
    }
    (x, y)
}

/// Rows `range` of host images as tensors.
pub fn batch(
    x: &[f32],
    y: &[i64],
    range: std::ops::Range<usize>,
    side: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let per = 3 * side * side;
    let n = range.len();
    let xs = Tensor::from_data(
        TensorData::new(
            x[range.start * per..range.end * per].to_vec(),
            [n, 3, side, side],
        ),
        device,
    );
    let ys = Tensor::from_data(TensorData::new(y[range].to_vec(), [n]), device);
    (xs, ys)
}

/// Mean cross-entropy of logits against class ids.
pub fn cross_entropy(logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, y)
}
