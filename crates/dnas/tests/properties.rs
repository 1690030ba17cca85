//! The spec's machine-checkable properties (dnas-dlrm.md §9), on tiny shapes.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use kiln_data::ctr::CtrData;
use kiln_dnas::cost::{CostLoss, OpCosts};
use kiln_dnas::gumbel::{one_hot_masks, soft_from_noise, Theta};
use kiln_dnas::plan::{parse_samples, plan, Stage};
use kiln_dnas::search::{search, step, Optimisers, SearchConfig};
use kiln_dnas::space::{EmbCardSpaceConfig, EmbDimSpaceConfig, MlpSpaceConfig, SuperNet};
use kiln_dnas::synthetic::planted_clicks;
use kiln_dnas::{EmbCardSearch, EmbDimSearch, MlpSearch};
use kiln_models::dlrm::{CtrRows, Interaction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn dev() -> Device {
    Device::flex()
}

fn rows(d: &CtrData) -> CtrRows<'_> {
    CtrRows {
        dense: &d.dense,
        cats: &d.cats,
        labels: &d.labels,
        n_dense: d.n_dense,
        n_cat: d.n_cat,
    }
}

fn data() -> CtrData {
    planted_clicks(64, 3)
}

fn mlp_space(layers: usize) -> MlpSearch {
    let d = data();
    let c = MlpSpaceConfig {
        n_dense: d.n_dense,
        d: 8,
        table_rows: d.counts.clone(),
        widths: vec![4, 8, 16],
        layers,
        interaction: Interaction::Dot,
        exact_cost: true,
        official_relu_head: false,
    };
    MlpSearch::new(
        &c,
        OpCosts::flops(),
        &mut ChaCha8Rng::seed_from_u64(1),
        &dev(),
    )
}

fn emb_dim_space() -> EmbDimSearch {
    let d = data();
    let c = EmbDimSpaceConfig {
        bottom: vec![d.n_dense, 16, 8],
        top_hidden: vec![16],
        table_rows: d.counts.clone(),
        dims: vec![2, 4, 8],
        interaction: Interaction::Dot,
    };
    EmbDimSearch::new(&c, &mut ChaCha8Rng::seed_from_u64(2), &dev())
}

fn emb_card_space() -> EmbCardSearch {
    let d = data();
    let c = EmbCardSpaceConfig {
        bottom: vec![d.n_dense, 16, 8],
        top_hidden: vec![16],
        counts: d.counts.clone(),
        fractions: vec![1.0, 0.1, 0.01],
        interaction: Interaction::Dot,
    };
    EmbCardSearch::new(&c, &mut ChaCha8Rng::seed_from_u64(3), &dev())
}

fn random_choice(sizes: &[usize], rng: &mut ChaCha8Rng) -> Vec<usize> {
    sizes.iter().map(|&n| rng.random_range(0..n)).collect()
}

fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// §9.1 and §9.4: under exact one-hot masks the supernet is the standalone DLRM of the derived
/// architecture with the same weights, and its expected cost is that architecture's cost.
fn one_hot_reduction<N: SuperNet>(net: &N, draws: usize, seed: u64) -> Vec<usize> {
    let d = data();
    let r = rows(&d);
    let sizes = net.choice_sizes();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut lens = Vec::new();
    for _ in 0..draws {
        let choice = random_choice(&sizes, &mut rng);
        let masks = one_hot_masks(&sizes, &choice, r.len(), &dev());
        let (p, cost) = net.forward(&r, &masks, &dev());
        let standalone = net.standalone(&choice);
        assert_eq!(standalone.config(), net.derive(&choice), "derived shape");
        let q = standalone.forward(&r, &dev());
        let diff = max_diff(&host(p), &host(q));
        assert!(
            diff < 1e-5,
            "choice {choice:?}: supernet vs standalone differ by {diff}"
        );
        let c = host(cost);
        let want = net.arch_cost(&choice);
        for v in c {
            assert!(
                ((v as f64) - want).abs() <= 1e-5 * want.max(1.0),
                "choice {choice:?}: expected cost {v} vs the architecture's {want}"
            );
        }
        lens.push(net.derive(&choice).bottom.len());
    }
    lens
}

#[test]
fn mlp_supernet_reduces_to_the_derived_dlrm() {
    let net = mlp_space(4);
    let lens = one_hot_reduction(&net, 40, 7);
    // Depths 2..L FC layers are all reached (sizes lists of 3..=5 entries).
    for want in 3..=5 {
        assert!(
            lens.contains(&want),
            "no bottom MLP with {want} sizes in {lens:?}"
        );
    }
}

#[test]
fn two_layer_mlp_supernet_reduces_too() {
    one_hot_reduction(&mlp_space(2), 8, 8);
}

#[test]
fn emb_dim_supernet_reduces_to_truncated_padded_tables() {
    one_hot_reduction(&emb_dim_space(), 10, 9);
}

#[test]
fn emb_card_supernet_reduces_to_modulo_tables() {
    one_hot_reduction(&emb_card_space(), 10, 10);
}

#[test]
fn gumbel_masks_are_distributions_and_independent_per_example() {
    let theta = Theta::from_values(&[vec![0.5, -1.0, 2.0, 0.0]], &dev());
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let m = theta.soft_sample(1.0, 32, &mut rng, &dev()).remove(0);
    let v = m.clone().into_data().try_into_vec::<f32>().unwrap();
    for row in v.chunks(4) {
        assert!(row.iter().all(|&x| x >= 0.0));
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-6, "row sums to {s}");
    }
    assert!(
        v.chunks(4).any(|r| max_diff(r, &v[0..4]) > 1e-3),
        "rows must differ"
    );
    // τ → 0: rows approach one-hot.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let cold = theta.soft_sample(1e-3, 32, &mut rng, &dev()).remove(0);
    let c = cold.into_data().try_into_vec::<f32>().unwrap();
    for row in c.chunks(4) {
        let mx = row.iter().cloned().fold(0.0, f32::max);
        assert!(mx > 0.999, "cold row {row:?}");
    }
}

#[test]
fn hard_samples_follow_softmax_theta() {
    let logits = vec![1.0f32, 0.0, -1.0, 0.5];
    let theta = Theta::from_values(std::slice::from_ref(&logits), &dev());
    let p = theta.probs().remove(0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 10_000;
    let mut counts = [0usize; 4];
    for _ in 0..n {
        let c = theta.hard_sample(&mut rng);
        assert_eq!(c.len(), 1);
        counts[c[0]] += 1;
    }
    for i in 0..4 {
        let f = counts[i] as f64 / n as f64;
        let sigma = (p[i] * (1.0 - p[i]) / n as f64).sqrt();
        assert!(
            (f - p[i]).abs() <= 3.0 * sigma,
            "option {i}: {f} vs {}",
            p[i]
        );
    }
    // θ = 0 is uniform.
    let uniform = Theta::zeros(&[5], &dev()).probs().remove(0);
    assert!(uniform.iter().all(|&x| (x - 0.2).abs() < 1e-12));
}

#[test]
fn mlp_cost_is_linear_in_each_mask_and_counts_skips_exactly() {
    let net = mlp_space(4);
    let sizes = net.choice_sizes();
    let b = 1;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let theta = Theta::zeros(&sizes, &dev());
    let base = theta.soft_sample(1.0, b, &mut rng, &dev());
    let cost = |masks: &[Tensor<2>]| -> f64 {
        let d = data();
        let r = rows(&d);
        let r = r.slice(0, b);
        host(net.forward(&r, masks, &dev()).1)[0] as f64
    };
    // Linearity in one middle node's vector, the others fixed.
    let k = 4; // a middle node of the bottom MLP (after 3 layer-0 nodes)
    let n = sizes[k];
    let e = |i: usize| -> Tensor<2> {
        let mut v = vec![0f32; n];
        v[i] = 1.0;
        Tensor::from_data(TensorData::new(v, [1, n]), &dev())
    };
    let with = |m: Tensor<2>| -> Vec<Tensor<2>> {
        let mut ms = base.clone();
        ms[k] = m;
        ms
    };
    let (c0, c1) = (cost(&with(e(0))), cost(&with(e(n - 1))));
    let mix = e(0).mul_scalar(0.3) + e(n - 1).mul_scalar(0.7);
    let cm = cost(&with(mix));
    assert!(
        (cm - (0.3 * c0 + 0.7 * c1)).abs() < 1e-3 * cm.abs(),
        "{cm} vs {}",
        0.3 * c0 + 0.7 * c1
    );
    // An all-skip middle path costs only the first and last layers.
    let skip = n - 1;
    let mut choice = vec![0; sizes.len()];
    // bottom: last node picks width index 2; middle nodes all skip.
    let bsizes = net.bottom.choice_sizes();
    for (i, s) in bsizes.iter().enumerate() {
        choice[i] = if *s == n {
            skip
        } else if i == bsizes.len() - 1 {
            2
        } else {
            0
        };
    }
    let derived = net.derive(&choice);
    assert_eq!(derived.bottom, vec![4, 16, 8], "all-skip bottom path");
    let costs = OpCosts::flops();
    let masks = one_hot_masks(&sizes, &choice, 1, &dev());
    let d = data();
    let r = rows(&d);
    let got = host(net.forward(&r.slice(0, 1), &masks, &dev()).1)[0] as f64;
    let top = derived.top_sizes();
    let want = costs.fc(4, 16)
        + costs.fc(16, 8)
        + top.windows(2).map(|w| costs.fc(w[0], w[1])).sum::<f64>();
    assert!((got - want).abs() < 1e-3 * want, "{got} vs {want}");
}

#[test]
fn official_cost_approximation_drops_skip_mass() {
    let mut net = mlp_space(4);
    let sizes = net.choice_sizes();
    let n = 4;
    let mut choice = vec![0; sizes.len()];
    for (i, s) in sizes.iter().enumerate() {
        if *s == n {
            choice[i] = n - 1; // every middle node skips
        }
    }
    let d = data();
    let r = rows(&d);
    let masks = one_hot_masks(&sizes, &choice, 1, &dev());
    let exact = host(net.forward(&r.slice(0, 1), &masks, &dev()).1)[0];
    net.exact_cost = false;
    let approx = host(net.forward(&r.slice(0, 1), &masks, &dev()).1)[0];
    assert!(
        approx < exact,
        "dropping skip mass must under-count: {approx} vs {exact}"
    );
}

#[test]
fn flops_lut_is_two_i_o() {
    let c = OpCosts::flops();
    assert_eq!(c.fc(13, 512), 2.0 * 13.0 * 512.0);
    assert_eq!(c.fc(1, 1), 2.0);
}

#[test]
fn hand_built_choice_derives_input_to_output_widths() {
    // widths S = [256, 1024], L = 4: 13 → 256 → skip → 1024 → 32.
    let c = MlpSpaceConfig {
        n_dense: 13,
        d: 32,
        table_rows: vec![3, 3],
        widths: vec![256, 1024],
        layers: 4,
        interaction: Interaction::Dot,
        exact_cost: true,
        official_relu_head: false,
    };
    let net = MlpSearch::new(
        &c,
        OpCosts::flops(),
        &mut ChaCha8Rng::seed_from_u64(1),
        &dev(),
    );
    let bs = net.bottom.choice_sizes();
    assert_eq!(
        bs,
        vec![1, 1, 3, 3, 3, 3, 2],
        "θ layout n(L−1)+1 = 7 vectors"
    );
    let mut choice = vec![0; net.choice_sizes().len()];
    // bottom θ order: layer0 (w256, w1024), layer1 (w256, w1024), layer2 (w256, w1024), last.
    choice[6] = 1; // the last layer reads the 1024-wide node of layer 2
    choice[5] = 0; // layer 2's 1024 node: FC from 256
    choice[2] = 2; // layer 1's 256 node: skip
    assert_eq!(net.bottom.derive(&choice[..7]), vec![13, 256, 1024, 32]);
    // Random choices: starts at D_in, ends at D_out, 2..L FC layers.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..200 {
        let ch = random_choice(&bs, &mut rng);
        let s = net.bottom.derive(&ch);
        assert_eq!((s[0], *s.last().unwrap()), (13, 32));
        assert!((3..=5).contains(&s.len()), "{s:?}");
    }
}

#[test]
fn epoch_plan_matches_the_paper_configs() {
    let samples = parse_samples("4:4").unwrap();
    let p = plan(5.0, 1.0, 1.0, 1.0, 0.1, &samples);
    let stages: Vec<Stage> = p.iter().map(|s| s.stage).collect();
    use Stage::*;
    assert_eq!(
        stages,
        vec![Warmup, Weights, Mask, Weights, Mask, Weights, Mask, Weights, Mask]
    );
    let taus: Vec<f64> = p
        .iter()
        .filter(|s| s.stage == Mask)
        .map(|s| s.tau)
        .collect();
    let want = [1.0, (-0.1f64).exp(), (-0.2f64).exp(), (-0.3f64).exp()];
    for (t, w) in taus.iter().zip(want) {
        assert!((t - w).abs() < 1e-12);
    }
    assert!((want[1] - 0.905).abs() < 1e-3 && (want[3] - 0.741).abs() < 1e-3);
    let sampled: Vec<usize> = p.iter().map(|s| s.sample).collect();
    assert_eq!(
        sampled,
        vec![0, 0, 0, 0, 0, 0, 0, 0, 4],
        "sampling only after the last mask segment"
    );
    let mask_epochs: Vec<(f64, f64)> = p
        .iter()
        .filter(|s| s.stage == Mask)
        .map(|s| (s.start, s.end))
        .collect();
    assert_eq!(
        mask_epochs,
        vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]
    );
    // Fractional alternation: halves that tile each epoch.
    let h = plan(2.0, 1.0, 0.5, 1.0, 0.2, &BTreeMap::new());
    let warm: Vec<(usize, usize)> = h
        .iter()
        .filter(|s| s.stage == Warmup)
        .map(|s| s.batches(10))
        .collect();
    assert_eq!(warm, vec![(0, 5), (5, 5)]);
    let masks: Vec<(usize, usize)> = h
        .iter()
        .filter(|s| s.stage == Mask)
        .map(|s| s.batches(10))
        .collect();
    assert_eq!(masks, vec![(0, 5), (5, 5)]);
}

fn cfg(lambda: f64, seed: u64) -> SearchConfig {
    SearchConfig {
        epochs: 3.0,
        warmup: 1.0,
        alternation: 1.0,
        tau0: 1.0,
        tau_decay: 0.2,
        weights_lr: 0.5,
        arch_lr: 0.05,
        lr_base: 0.9,
        batch_size: 32,
        clip: 100.0,
        cost: CostLoss::linear(lambda),
        samples: "2:3".into(),
        seed,
    }
}

fn params_of<M: Module>(m: &M) -> Vec<f32> {
    struct V(Vec<f32>);
    impl burn::module::ModuleVisitor for V {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            self.0
                .extend(p.val().into_data().try_into_vec::<f32>().unwrap());
        }
    }
    let mut v = V(Vec::new());
    m.visit(&mut v);
    v.0
}

#[test]
fn a_step_updates_only_its_own_parameter_group() {
    let d = data();
    let r = rows(&d);
    let batch = r.slice(0, 32);
    let ad = dev().autodiff();
    let net = emb_card_space().to_device(&ad).train();
    let theta = Theta::from_values(&vec![vec![0.3, -0.2, 0.1]; 8], &ad);
    let c = cfg(1.0, 1);
    let mut optim = Optimisers::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (w0, t0) = (params_of(&net), params_of(&theta));
    let (net, theta, _) = step(
        net,
        theta,
        Stage::Weights,
        &batch,
        1.0,
        0.5,
        &c,
        &mut optim,
        &mut rng,
        &ad,
    )
    .unwrap();
    assert!(params_of(&theta) == t0, "θ moved in a weights step");
    assert!(
        params_of(&net) != w0,
        "weights did not move in a weights step"
    );
    let w1 = params_of(&net);
    let (net, theta, _) = step(
        net,
        theta,
        Stage::Mask,
        &batch,
        1.0,
        0.5,
        &c,
        &mut optim,
        &mut rng,
        &ad,
    )
    .unwrap();
    assert!(
        params_of(&net) == w1,
        "weights moved in an architecture step"
    );
    assert!(
        params_of(&theta) != t0,
        "θ did not move in an architecture step"
    );
}

#[test]
fn theta_gradient_matches_finite_differences() {
    let d = data();
    let r = rows(&d);
    let batch = r.slice(0, 16);
    let net = emb_dim_space();
    let sizes = net.choice_sizes();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let noise: Vec<Vec<f32>> = sizes
        .iter()
        .map(|&n| {
            (0..16 * n)
                .map(|_| kiln_dnas::gumbel::gumbel(&mut rng) as f32)
                .collect()
        })
        .collect();
    let cost = CostLoss::linear(5.0);
    let loss_at = |vals: &[Vec<f32>], device: &Device| -> (Tensor<1>, Theta) {
        let theta = Theta::from_values(vals, device);
        let masks: Vec<Tensor<2>> = theta
            .logits
            .iter()
            .zip(&noise)
            .map(|(t, g)| {
                let n = t.dims()[0];
                let g = Tensor::from_data(TensorData::new(g.clone(), [16, n]), device);
                soft_from_noise(t.val(), g, 0.7)
            })
            .collect();
        let (p, c) = net.forward(&batch, &masks, device);
        let task = kiln_models::dlrm::bce(p, batch.label_tensor(device));
        (cost.apply(task, c), theta)
    };
    let base: Vec<Vec<f32>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| 0.2 * i as f32 - 0.1).collect())
        .collect();
    let ad = dev().autodiff();
    let net_ad = net.clone().to_device(&ad);
    let _ = &net_ad;
    let (loss, theta) = loss_at(&base, &ad);
    let grads = loss.backward();
    let g0 = theta.logits[0].val().grad(&grads).unwrap();
    let g0 = g0.into_data().try_into_vec::<f32>().unwrap();
    assert!(g0.iter().any(|&x| x.abs() > 1e-4), "dθ is zero: {g0:?}");
    let h = 1e-2f32;
    for i in 0..sizes[0] {
        let mut plus = base.clone();
        plus[0][i] += h;
        let mut minus = base.clone();
        minus[0][i] -= h;
        let lp = host(loss_at(&plus, &dev()).0)[0] as f64;
        let lm = host(loss_at(&minus, &dev()).0)[0] as f64;
        let fd = (lp - lm) / (2.0 * h as f64);
        let an = g0[i] as f64;
        assert!(
            (fd - an).abs() <= 1e-3 * an.abs().max(1e-2),
            "θ[0][{i}]: finite difference {fd} vs autodiff {an}"
        );
    }
}

fn search_expected_cost(lambda: f64) -> f64 {
    let d = planted_clicks(512, 5);
    let r = rows(&d);
    let net = emb_card_space();
    let c = SearchConfig {
        epochs: 4.0,
        arch_lr: 0.5,
        ..cfg(lambda, 2)
    };
    let out = search(
        net,
        &r.slice(0, 384),
        &r.slice(384, 512),
        &c,
        &dev(),
        |_, _, _| {},
    )
    .unwrap();
    // Expected parameters under softmax(θ).
    let probs = out.theta.probs();
    out.net
        .emb
        .options
        .iter()
        .zip(&probs)
        .map(|(opts, p)| {
            opts.iter()
                .zip(p)
                .map(|(t, q)| q * (t.dims()[0] * t.dims()[1]) as f64)
                .sum::<f64>()
        })
        .sum()
}

#[test]
fn a_larger_cost_weight_learns_a_cheaper_distribution() {
    let cheap = search_expected_cost(200.0);
    let free = search_expected_cost(0.0);
    assert!(
        cheap < free,
        "λ=200 expected cost {cheap} not below λ=0's {free}"
    );
}

#[test]
fn the_same_seed_gives_the_same_search() {
    let run = || {
        let d = planted_clicks(256, 6);
        let r = rows(&d);
        let out = search(
            mlp_space(3),
            &r.slice(0, 192),
            &r.slice(192, 256),
            &cfg(1.0, 9),
            &dev(),
            |_, _, _| {},
        )
        .unwrap();
        let losses: Vec<f64> = out.log.iter().map(|s| s.loss).collect();
        let samples: Vec<Vec<usize>> = out.samples.iter().map(|s| s.choice.clone()).collect();
        (out.plan, losses, samples)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert_eq!(a.2.len(), 3, "3 archs sampled after 2 arch epochs");
}

#[test]
fn official_relu_head_is_relu_then_clamp_and_the_default_is_a_sigmoid() {
    let d = data();
    let r = rows(&d);
    let make = |official: bool| {
        let c = MlpSpaceConfig {
            n_dense: d.n_dense,
            d: 8,
            table_rows: d.counts.clone(),
            widths: vec![4, 8],
            layers: 3,
            interaction: Interaction::Dot,
            exact_cost: true,
            official_relu_head: official,
        };
        MlpSearch::new(
            &c,
            OpCosts::flops(),
            &mut ChaCha8Rng::seed_from_u64(1),
            &dev(),
        )
    };
    let (off, ours) = (make(true), make(false));
    let sizes = off.choice_sizes();
    let choice = vec![0; sizes.len()];
    let masks = one_hot_masks(&sizes, &choice, r.len(), &dev());
    // Same weights (same seed), different heads: the official one is the standalone MLP's ReLU
    // output clamped to [1e-9, 1]; kiln's is its sigmoid.
    let p_off = host(off.forward(&r, &masks, &dev()).0);
    let p_ours = host(ours.forward(&r, &masks, &dev()).0);
    let relu = host(off.standalone(&choice).forward(&r, &dev()));
    for ((a, b), z) in p_off.iter().zip(&p_ours).zip(&relu) {
        assert!((a - z.clamp(1e-9, 1.0)).abs() < 1e-6, "{a} vs clamp({z})");
        assert!(*b > 0.0 && *b < 1.0);
    }
    assert!(
        max_diff(&p_off, &p_ours) > 1e-3,
        "the two heads must differ"
    );
    // With the corrected head the one-hot reduction holds (checked above for every space).
}
