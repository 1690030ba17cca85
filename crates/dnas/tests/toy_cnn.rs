//! The framework's extension example (spec §7) end to end: the toy CNN supernet reduces to the
//! sampled CNN under one-hot masks (§9.1), its cost is the example's, and it searches through
//! the generic `search_with` on the example's synthetic data (sizes reduced to run in seconds).

use burn::tensor::{Device, Tensor};
use kiln_dnas::cost::CostLoss;
use kiln_dnas::gumbel::one_hot_masks;
use kiln_dnas::search::{search_with, SearchConfig, Split};
use kiln_dnas::toy_cnn::{batch, cross_entropy, synthetic, ToyCnnConfig, ToyCnnSuper};

fn small() -> ToyCnnConfig {
    ToyCnnConfig {
        side: 10,
        channels: [4, 8],
        pool2: 5,
        classes: 5,
    }
}

#[test]
fn toy_cnn_supernet_reduces_to_the_sampled_cnn() {
    let device = Device::flex();
    device.seed(1);
    let net = ToyCnnSuper::new(&small(), &device);
    let (x, y) = synthetic(8, 0, 10);
    let (xs, _) = batch(&x, &y, 0..8, 10, &device);
    // Non-constant inputs, so that the kernel sizes give different outputs.
    let xs =
        xs.clone() + Tensor::random([8, 3, 10, 10], burn::tensor::Distribution::Default, &device);
    for c1 in 0..3 {
        for c2 in 0..3 {
            let masks = one_hot_masks(&net.choice_sizes(), &[c1, c2], 8, &device);
            let (a, cost) = net.forward(xs.clone(), &masks);
            let b = net.standalone(&[c1, c2]).forward(xs.clone());
            let d = (a - b).abs().max().into_scalar::<f32>();
            assert!(d < 1e-5, "choice ({c1}, {c2}): {d}");
            let want = ToyCnnSuper::arch_cost(&[c1, c2]);
            let got = cost.into_data().try_into_vec::<f32>().unwrap();
            assert!(
                got.iter().all(|&v| (v as f64 - want).abs() < 1e-6),
                "{got:?} vs {want}"
            );
        }
    }
    assert_eq!(ToyCnnSuper::arch_cost(&[2, 2]), 9.0);
}

#[test]
fn toy_cnn_searches_through_the_generic_manager() {
    let device = Device::flex();
    device.seed(2);
    let c = small();
    let net = ToyCnnSuper::new(&c, &device);
    let (xw, yw) = synthetic(160, 0, c.side);
    let (xa, ya) = synthetic(40, 160, c.side);
    let cfg = SearchConfig {
        epochs: 3.0,
        warmup: 1.0,
        alternation: 1.0,
        tau0: 1.0,
        tau_decay: 0.1,
        weights_lr: 0.05,
        arch_lr: 0.05,
        lr_base: 0.9,
        batch_size: 20,
        clip: 100.0,
        // The example's linear cost term has no /100 (pitfall 7).
        cost: CostLoss::Linear {
            lambda: 0.001,
            multiplier: 1.0,
            divisor: 1.0,
        },
        samples: "2:4".into(),
        seed: 1,
    };
    let sizes = net.choice_sizes();
    let out = search_with(
        net,
        &sizes,
        160,
        40,
        &cfg,
        &device,
        |n: &ToyCnnSuper, split, r, masks: &[Tensor<2>], ad: &Device| {
            let (x, y) = match split {
                Split::Weights => batch(&xw, &yw, r, c.side, ad),
                Split::Arch => batch(&xa, &ya, r, c.side, ad),
            };
            let (logits, cost) = n.forward(x, masks);
            (cross_entropy(logits, y), cost)
        },
        |_, choice: &[usize]| (choice.to_vec(), ToyCnnSuper::arch_cost(choice)),
        |_, _, _| {},
    )
    .unwrap();
    // 1 warm-up + 2 rounds of (weights, mask) segments, 8 batches each.
    assert_eq!(out.log.len(), 8 + 2 * (8 + 2));
    assert_eq!(
        out.samples.len(),
        4,
        "four architectures after 2 arch epochs"
    );
    for s in &out.samples {
        assert_eq!(s.config.len(), 2);
        assert_eq!(s.cost, ToyCnnSuper::arch_cost(&s.config));
    }
    assert!(out.log.iter().all(|s| s.loss.is_finite()));
    // θ moved only through the architecture steps and both choices were learnt.
    let theta = out.theta.values();
    assert!(
        theta.iter().all(|v| v.iter().any(|x| x.abs() > 1e-6)),
        "{theta:?}"
    );
}
