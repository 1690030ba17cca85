//! Properties of the CLIP-ViL heads, loss and schedule.

use burn::module::Param;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use kiln_clipvil::heads::{Head, HeadConfig, HeadKind, Questions, WnLinear};
use kiln_clipvil::{logit_bce, TrainConfig};

fn config(kind: HeadKind) -> HeadConfig {
    HeadConfig {
        kind,
        vocab: 20,
        answers: 5,
        word_dim: 8,
        lstm: 8,
        hidden: 12,
        text_hidden: 6,
        d: 8,
        layers: 2,
        heads: 2,
        fused: 10,
        dropout: 0.0,
    }
}

fn questions(ids: Vec<i64>, b: usize, l: usize, device: &Device) -> Questions {
    let mask: Vec<f32> = ids
        .iter()
        .map(|&x| if x != 0 { 1.0 } else { 0.0 })
        .collect();
    Questions {
        ids: Tensor::<2, Int>::from_data(TensorData::new(ids, [b, l]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, l]), device),
    }
}

fn max_abs(t: Tensor<2>) -> f32 {
    t.abs().max().into_scalar::<f32>()
}

#[test]
fn logit_bce_is_mmfs_mean_times_answers_and_stable() {
    let device = Device::flex();
    let x = [2.0f32, -1.0, 0.5, 30.0, -40.0, 0.0];
    let y = [1.0f32, 0.3, 0.0, 1.0, 0.0, 0.9];
    let logits = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [2, 3]), &device);
    let targets = Tensor::<2>::from_data(TensorData::new(y.to_vec(), [2, 3]), &device);
    let got = logit_bce(logits, targets).into_scalar::<f32>() as f64;
    let want: f64 = x
        .iter()
        .zip(y)
        .map(|(&x, y)| {
            let p = 1.0 / (1.0 + (-(x as f64)).exp());
            -(y as f64 * p.max(1e-300).ln() + (1.0 - y as f64) * (1.0 - p).max(1e-300).ln())
        })
        .sum::<f64>()
        / 6.0
        * 3.0;
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

#[test]
fn weight_norm_starts_at_the_plain_weight_and_ignores_the_scale_of_v() {
    let device = Device::flex();
    device.seed(1);
    let mut l = WnLinear::new(4, 3, &device);
    let x = Tensor::<2>::random([5, 4], Distribution::Default, &device);
    let plain = x.clone().matmul(l.v.val()) + l.bias.val().reshape([1, 3]);
    let wn = l.forward(x.clone());
    assert!(max_abs(plain - wn.clone()) < 1e-5);
    // W = g·V/‖V‖_F: rescaling V changes nothing; g scales the product.
    l.v = Param::from_tensor(l.v.val() * 7.0);
    assert!(max_abs(l.forward(x.clone()) - wn.clone()) < 1e-5);
    l.g = Param::from_tensor(l.g.val() * 2.0);
    let bias = l.bias.val().reshape([1, 3]);
    let doubled = (wn - bias.clone()) * 2.0 + bias;
    assert!(max_abs(l.forward(x) - doubled) < 1e-4);
}

#[test]
fn heads_ignore_what_padding_holds_and_give_one_logit_per_answer() {
    let device = Device::flex();
    for kind in [
        HeadKind::Pythia,
        HeadKind::Mcan,
        HeadKind::QuestionOnly,
        HeadKind::ImageOnly,
    ] {
        device.seed(2);
        let head = Head::new(&config(kind), 6, &device).unwrap();
        let grid = Tensor::<3>::random([2, 9, 6], Distribution::Default, &device);
        // Same questions; the padded positions carry different ids (the mask says padding).
        let a = questions(vec![3, 4, 5, 0, 0, 7, 8, 0, 0, 0], 2, 5, &device);
        let mut b = a.clone();
        b.ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![3i64, 4, 5, 9, 9, 7, 8, 11, 12, 13], [2, 5]),
            &device,
        );
        let la = head.forward(Some(grid.clone()), &a).unwrap();
        assert_eq!(la.dims(), [2, 5], "{kind:?}");
        let lb = head.forward(Some(grid.clone()), &b).unwrap();
        // LSTM states after the real tokens change, but nothing reads them: the attentions mask
        // padding out. (Pythia's and MCAN's pooling read per-position states only.)
        if kind != HeadKind::ImageOnly {
            let diff = max_abs(la.clone() - lb);
            assert!(
                diff < 1e-4,
                "{kind:?}: padding leaked into the output ({diff})"
            );
        }
        // The image matters to every head but the question-only one.
        let other = Tensor::<3>::random([2, 9, 6], Distribution::Default, &device);
        let lo = head.forward(Some(other), &a).unwrap();
        let moved = max_abs(la - lo);
        if kind == HeadKind::QuestionOnly {
            assert_eq!(moved, 0.0);
        } else {
            assert!(moved > 1e-5, "{kind:?} ignores the image");
        }
    }
    // A head that needs the grid refuses to run without one.
    let head = Head::new(&config(HeadKind::Pythia), 6, &device).unwrap();
    let q = questions(vec![3, 0], 1, 2, &device);
    assert!(head.forward(None, &q).is_err());
}

#[test]
fn the_schedule_warms_up_from_its_factor_and_decays_at_its_fractions() {
    let tc = TrainConfig {
        epochs: 1,
        batch_size: 1,
        lr: 0.01,
        warmup: 0.1,
        warmup_factor: 0.2,
        decay_at: vec![0.5, 0.75],
        decay: 0.1,
        clip: 0.25,
        eval_batch: 1,
    };
    let at = |s| tc.lr_at(s, 100);
    assert!((at(0) - 0.002).abs() < 1e-12);
    assert!((at(5) - 0.006).abs() < 1e-12);
    assert!((at(10) - 0.01).abs() < 1e-12);
    assert!((at(49) - 0.01).abs() < 1e-12);
    assert!((at(50) - 0.001).abs() < 1e-12);
    assert!((at(80) - 0.0001).abs() < 1e-12);
    let bad = TrainConfig {
        warmup: 1.5,
        ..tc.clone()
    };
    assert!(bad.validate().is_err());
}
