//! The scene classifier (spec §5.7, the authors' `cls_resnet`): R(2+1)D-18 with the
//! torchvision-style stem on the 2-channel window, global average pooling and a linear layer to
//! the four scenes in [`Scene::ALL`](crate::Scene::ALL) order (PL, CR, CS, HW). Trained with
//! cross-entropy on every training window, the label being its sequence's scene.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::blocks::Builder;
use super::resnet::R2Plus1dEncoder;
use super::Stem;
use crate::error::{RadarError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneClassifierConfig {
    /// Multiplies every channel count (1.0 = R(2+1)D-18).
    pub width: f64,
    pub in_channels: usize,
    pub n_classes: usize,
    pub seed: u64,
}

impl Default for SceneClassifierConfig {
    fn default() -> Self {
        Self {
            width: 1.0,
            in_channels: 2,
            n_classes: 4,
            seed: 0,
        }
    }
}

impl SceneClassifierConfig {
    pub fn init(&self, device: &Device) -> Result<SceneClassifier> {
        if !(self.width.is_finite() && self.width > 0.0)
            || self.in_channels == 0
            || self.n_classes < 2
        {
            return Err(RadarError::Invalid(format!(
                "scene classifier {self:?}: width must be positive, with at least one input \
                 channel and two classes"
            )));
        }
        let mut b = Builder::new(self.seed, device);
        let encoder = R2Plus1dEncoder::new(self.in_channels, self.width, Stem::Torchvision, &mut b);
        let fc = b.linear(super::scale(512, self.width), self.n_classes);
        Ok(SceneClassifier {
            encoder,
            fc,
            in_channels: self.in_channels,
        })
    }
}

#[derive(Module, Debug)]
pub struct SceneClassifier {
    pub encoder: R2Plus1dEncoder,
    pub fc: Linear,
    pub in_channels: usize,
}

impl SceneClassifier {
    /// `[B, C_in, T, R, A]` → logits `[B, n_classes]`. T a multiple of 8, R and A of 16.
    pub fn forward(&self, x: Tensor<5>) -> Result<Tensor<2>> {
        let [b, c, t, r, a] = x.dims();
        if b == 0
            || c != self.in_channels
            || t % 8 != 0
            || r % 16 != 0
            || a % 16 != 0
            || t == 0
            || r == 0
            || a == 0
        {
            return Err(RadarError::Invalid(format!(
                "scene classifier input {:?}: expects [B ≥ 1, {}, T, R, A] with T a multiple \
                 of 8 and R, A of 16 (the paper's window is 16×128×128)",
                x.dims(),
                self.in_channels
            )));
        }
        let [_, _, _, x4] = self.encoder.forward(x);
        let channels = x4.dims()[1];
        let pooled = x4.mean_dims(&[2, 3, 4]).reshape([b, channels]); // [B, 512]
        Ok(self.fc.forward(pooled))
    }

    /// Mean cross-entropy of the logits against scene indices (0..n_classes).
    pub fn loss(&self, logits: Tensor<2>, labels: &[usize]) -> Result<Tensor<1>> {
        let [b, k] = logits.dims();
        if labels.len() != b || labels.iter().any(|&l| l >= k) {
            return Err(RadarError::Invalid(format!(
                "scene labels {labels:?} for {b} windows: need one label per window, each \
                 below {k}"
            )));
        }
        let device = logits.device();
        let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &device);
        Ok(CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, targets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::resnet::tests::encoder_params;
    use crate::nets::tests::{dev, rand_input, values};

    #[test]
    fn paper_width_parameter_count() {
        let m = SceneClassifierConfig::default().init(&dev()).unwrap();
        assert_eq!(
            crate::nets::param_count(&m),
            encoder_params(2, Stem::Torchvision) + 512 * 4 + 4
        );
    }

    #[test]
    fn tiny_classifier_gives_four_logits_and_a_cross_entropy() {
        let cfg = SceneClassifierConfig {
            width: 1.0 / 32.0,
            ..Default::default()
        };
        let m = cfg.init(&dev()).unwrap();
        let logits = m.forward(rand_input([2, 2, 16, 128, 128], 8)).unwrap();
        assert_eq!(logits.dims(), [2, 4]);
        // Cross-entropy by hand: −mean(log softmax(z)[label]).
        let z = values(logits.clone());
        let labels = [1usize, 3];
        let mut want = 0.0f64;
        for (row, &l) in z.chunks(4).zip(&labels) {
            let lse = row.iter().map(|v| (*v as f64).exp()).sum::<f64>().ln();
            want += lse - row[l] as f64;
        }
        want /= 2.0;
        let got = values(m.loss(logits.clone(), &labels).unwrap())[0] as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(m.loss(logits, &[0, 4]).is_err());
        assert!(m.forward(rand_input([1, 2, 12, 128, 128], 9)).is_err());
    }
}
