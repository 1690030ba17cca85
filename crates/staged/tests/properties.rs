//! Section 12 properties of the staged-training spec (W1-W8, D1-D4, S1-S6) on tiny models.

use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
use kiln_staged::depth::{grow_depth, grow_depth_with, DepthInit, Placement};
use kiln_staged::multistage::{optimal_schedule, single_stage_optimum};
use kiln_staged::procedure::{grow_and_restart, Operator};
use kiln_staged::schedule::kaplan;
use kiln_staged::schedule::{lr_heuristic, non_embedding_params, saving, Schedule};
use kiln_staged::width::grow_width;
use kiln_staged::TrainState;
use rand::{Rng, SeedableRng};

const V: usize = 40;
const D: usize = 16;
const T: usize = 12;

fn config(dropout: f64) -> Gpt2Config {
    let mut c = Gpt2Config::new(V, 32, D, 2, 2);
    c.resid_pdrop = dropout;
    c.embd_pdrop = dropout;
    c.attn_pdrop = dropout;
    c
}

fn batch(seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<i64> = (0..4 * T).map(|_| rng.random_range(0..V as i64)).collect();
    Tensor::<1, Int>::from_data(TensorData::new(v, [4 * T]), device).reshape([4, T])
}

/// A small state after `steps` training steps (non-zero moments), dropout off.
fn trained(steps: usize) -> TrainState {
    let device = Device::flex();
    device.seed(1);
    let c = config(0.0);
    let m = Gpt2Model::new(&c, &device);
    let mut s = TrainState::new(c, &m, Schedule::new(1e-3, 2, 1000));
    for i in 0..steps {
        s.train_step(batch(i as u64, &device), &device).unwrap();
    }
    s
}

fn vals(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn logits(s: &TrainState, ids: Tensor<2, Int>) -> Vec<f32> {
    let m = burn::module::Module::valid(&s.model(&Device::flex()).unwrap());
    m.logits(ids)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn block(t: &Tensor<2>, r0: usize, r: usize, c0: usize, c: usize) -> Vec<f32> {
    vals(t.clone().narrow(0, r0, r).narrow(1, c0, c))
}

#[test]
fn width_growth_preserves_the_function_shapes_and_counts() {
    let device = Device::flex();
    for steps in [0, 3] {
        let s = trained(steps);
        let g = grow_width(&s).unwrap();
        // W1: shapes and counts.
        assert_eq!(
            (g.config.n_embd, g.config.n_head, g.config.n_layer),
            (2 * D, 4, 2)
        );
        assert_eq!(g.config.inner(), 8 * D);
        assert_eq!(g.non_embedding_params(), 4 * s.non_embedding_params());
        assert_eq!(g.params["wte.weight"].dims(), [V, 2 * D]);
        assert_eq!(g.params["h.0.attn.c_attn.weight"].dims(), [2 * D, 6 * D]);
        assert_eq!(g.step, s.step);
        // W2: logits and loss preserved.
        let ids = batch(99, &device);
        let d = max_diff(&logits(&s, ids.clone()), &logits(&g, ids.clone()));
        assert!(d <= 1e-5, "after {steps} steps: logits differ by {d}");
        let (ls, lg) = (
            s.eval_loss(ids.clone(), &device).unwrap(),
            g.eval_loss(ids.clone(), &device).unwrap(),
        );
        assert!((ls - lg).abs() <= 1e-5);
        // W3: the final hidden state is [z/2; z/2] of the small one.
        let hs = s.model(&device).unwrap();
        let hg = g.model(&device).unwrap();
        let zs = burn::module::Module::valid(&hs).hidden(ids.clone());
        let zg = burn::module::Module::valid(&hg).hidden(ids);
        let half = vals(zs.reshape([4 * T, D]) / 2.0);
        let zg = zg.reshape([4 * T, 2 * D]);
        assert!(max_diff(&half, &vals(zg.clone().narrow(1, 0, D))) <= 1e-5);
        assert!(max_diff(&half, &vals(zg.narrow(1, D, D))) <= 1e-5);
    }
}

#[test]
fn width_growth_maps_moments_and_the_next_adam_step() {
    let device = Device::flex();
    let s = trained(4);
    let g = grow_width(&s).unwrap();
    // W5: m' = T(m)/2, v' = T(v)/4, zeros off the diagonal blocks; ln_f unscaled.
    let m = &s.m["h.1.mlp.c_fc.weight"];
    let mg = &g.m["h.1.mlp.c_fc.weight"];
    let half: Vec<f32> = vals(m.clone() / 2.0);
    assert_eq!(block(mg, 0, D, 0, 4 * D), half);
    assert_eq!(block(mg, D, D, 4 * D, 4 * D), half);
    assert!(block(mg, 0, D, 4 * D, 4 * D).iter().all(|&x| x == 0.0));
    let v = &s.v["wte.weight"];
    assert_eq!(block(&g.v["wte.weight"], 0, V, D, D), vals(v.clone() / 4.0));
    assert_eq!(
        block(&g.m["ln_f.weight"], 0, 1, D, D),
        vals(s.m["ln_f.weight"].clone())
    );
    assert_eq!(
        block(&g.params["ln_f.weight"], 0, 1, 0, D),
        vals(s.params["ln_f.weight"].clone() / 2.0)
    );

    // W6: one step on the same batch with the same lr.
    let ids = batch(7, &device);
    let (mut s1, mut g1) = (s.clone(), g.clone());
    s1.train_step_at(ids.clone(), 1e-3, &device).unwrap();
    g1.train_step_at(ids, 1e-3, &device).unwrap();
    // Copy entries differ only through eps (m/2 over sqrt(v)/2 + eps): within 1% of lr.
    let rel = |a: &[f32], b: &[f32]| max_diff(a, b) / 1e-3;
    // Copy entries move exactly as the small model's entries.
    for name in [
        "wte.weight",
        "h.0.attn.c_proj.weight",
        "h.1.mlp.c_fc.weight",
    ] {
        let (r, c) = {
            let d = s1.params[name].dims();
            (d[0], d[1])
        };
        let a = block(&g1.params[name], 0, r, 0, c);
        let b = vals(s1.params[name].clone());
        assert!(rel(&a, &b) < 1e-2, "{name}: {}", rel(&a, &b));
        if name != "wte.weight" {
            let a2 = block(&g1.params[name], r, r, c, c);
            assert!(rel(&a2, &b) < 1e-2, "{name} second copy");
            // Off-diagonal entries start at 0 with zero moments and take a first step of
            // lr (1-b1)/sqrt(1-b2) = 0.707 lr in magnitude (no bias correction).
            let off = block(&g1.params[name], 0, r, c, c);
            let step = 1e-3 * 0.1 / (0.02f32).sqrt();
            assert!(
                off.iter().all(|x| x.abs() < step * 1.01),
                "{name} off-diagonal"
            );
            assert!(
                off.iter().any(|x| x.abs() > step * 0.9),
                "{name} off-diagonal moved"
            );
        }
    }
    // ln_f: dup(γ)/2 + Δ_small.
    let dg = vals(s1.params["ln_f.weight"].clone() - s.params["ln_f.weight"].clone());
    let want: Vec<f32> = vals(s.params["ln_f.weight"].clone() / 2.0)
        .iter()
        .zip(&dg)
        .map(|(a, b)| a + b)
        .collect();
    assert!(rel(&block(&g1.params["ln_f.weight"], 0, 1, 0, D), &want) < 1e-2);
}

#[test]
fn width_growth_stays_symmetric_without_dropout_and_breaks_with_it() {
    let device = Device::flex();
    let s = trained(2);
    let mut g = grow_width(&s).unwrap();
    for i in 0..3 {
        g.train_step_at(batch(20 + i, &device), 1e-3, &device)
            .unwrap();
    }
    let w = &g.params["h.0.mlp.c_fc.weight"];
    let sym = max_diff(&block(w, 0, D, 0, 4 * D), &block(w, D, D, 4 * D, 4 * D));
    assert!(
        sym <= 1e-6,
        "halves stay swapped copies (up to summation order): {sym}"
    );
    // With dropout on, independent masks on the two halves break the symmetry.
    let mut gd = grow_width(&s).unwrap();
    gd.config.resid_pdrop = 0.1;
    gd.config.attn_pdrop = 0.1;
    gd.config.embd_pdrop = 0.1;
    for i in 0..3 {
        gd.train_step_at(batch(20 + i, &device), 1e-3, &device)
            .unwrap();
    }
    let w = &gd.params["h.0.mlp.c_fc.weight"];
    let asym = max_diff(&block(w, 0, D, 0, 4 * D), &block(w, D, D, 4 * D, 4 * D));
    assert!(asym > 1e-4, "dropout breaks the symmetry: {asym}");
}

#[test]
fn depth_growth_inserts_identity_blocks_and_keeps_old_dynamics() {
    let device = Device::flex();
    let s = trained(3);
    for placement in [Placement::Alternate, Placement::Append] {
        let g = grow_depth(&s, placement).unwrap();
        assert_eq!(g.config.n_layer, 4);
        // D1: logits preserved.
        let ids = batch(5, &device);
        let d = max_diff(&logits(&s, ids.clone()), &logits(&g, ids.clone()));
        assert!(d <= 1e-6, "{placement:?}: {d}");
        // D2: old layer i at its new index with its moments; new layers identity, zero moments.
        let (old1, new0) = match placement {
            Placement::Alternate => (2, 1),
            Placement::Append => (1, 2),
        };
        for key in ["attn.c_attn.weight", "mlp.c_proj.bias", "ln_2.weight"] {
            let k_old = format!("h.1.{key}");
            let k_new = format!("h.{old1}.{key}");
            assert_eq!(
                vals(g.params[&k_new].clone()),
                vals(s.params[&k_old].clone())
            );
            assert_eq!(vals(g.m[&k_new].clone()), vals(s.m[&k_old].clone()));
            assert!(vals(g.m[&format!("h.{new0}.{key}")].clone())
                .iter()
                .all(|&x| x == 0.0));
        }
        assert!(vals(g.params[&format!("h.{new0}.ln_1.weight")].clone())
            .iter()
            .all(|&x| x == 0.0));
        // D3/D4: one step on the same batch: old parameters move exactly as the small model's;
        // new weight matrices get zero gradient (stay put), new LayerNorm gains move.
        let (mut s1, mut g1) = (s.clone(), g.clone());
        s1.train_step_at(ids.clone(), 1e-3, &device).unwrap();
        g1.train_step_at(ids, 1e-3, &device).unwrap();
        for key in ["attn.c_attn.weight", "mlp.c_fc.weight", "ln_1.bias"] {
            let a = vals(g1.params[&format!("h.{old1}.{key}")].clone());
            let b = vals(s1.params[&format!("h.1.{key}")].clone());
            assert!(max_diff(&a, &b) <= 1e-6, "{placement:?} {key}");
        }
        for key in [
            "attn.c_attn.weight",
            "attn.c_proj.weight",
            "mlp.c_fc.weight",
            "mlp.c_proj.weight",
        ] {
            let k = format!("h.{new0}.{key}");
            assert_eq!(
                vals(g1.params[&k].clone()),
                vals(g.params[&k].clone()),
                "{k} moved"
            );
        }
        let k = format!("h.{new0}.ln_2.weight");
        assert!(
            vals(g1.params[&k].clone()).iter().any(|&x| x != 0.0),
            "{k} got no gradient"
        );
    }
}

#[test]
fn incompatible_states_are_clear_errors() {
    let s = trained(0);
    let mut bad = s.clone();
    bad.m.remove("h.0.mlp.c_fc.weight");
    let e = grow_width(&bad).unwrap_err().to_string();
    assert!(
        e.contains("h.0.mlp.c_fc.weight") && e.contains("optimizer state"),
        "{e}"
    );
    let e = grow_depth(&bad, Placement::Alternate);
    assert!(e.is_ok() || e.unwrap_err().to_string().contains("h.0"));
    let mut odd = s.clone();
    odd.config.n_head = 3;
    let e = grow_width(&odd).unwrap_err().to_string();
    assert!(e.contains("n_head"), "{e}");
    let mut missing = s;
    missing.v.remove("h.1.attn.c_attn.weight");
    let e = grow_depth(&missing, Placement::Append)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 1"), "{e}");
}

#[test]
fn schedules_and_scaling_arithmetic_match_the_spec() {
    // S1/S2: the LR table of section 2 from N = 12 L d² and the base-10 heuristic.
    for (l, d, n, lr) in [
        (12, 768, 84_934_656.0, 0.002132892651963921),
        (6, 768, 42_467_328.0, 0.0021748863363590465),
        (12, 384, 21_233_664.0, 0.002216880020754172),
        (24, 1536, 679_477_248.0, 0.002006911598778545),
        (12, 1536, 339_738_624.0, 0.0020489052831736704),
        (24, 768, 169_869_312.0, 0.002090898967568796),
    ] {
        assert_eq!(non_embedding_params(l, d), n);
        assert!((lr_heuristic(n) - lr).abs() < 1e-12, "{l}x{d}");
    }
    // S3: restart ramp.
    let base = Schedule::new(2e-3, 3000, 250_000);
    let r = base.restart(2.0069e-3, 3319, 150);
    assert_eq!(r.factor(3319), 0.0);
    assert!((r.factor(3469) - r.base_factor(3469)).abs() < 1e-12);
    assert!(
        (r.factor(3394) - 0.5 * r.base_factor(3469)).abs() < 1e-9,
        "linear in between"
    );
    assert_eq!(r.factor(3318), r.base_factor(3318));
    assert_eq!(r.factor(5000), r.base_factor(5000));
    assert_eq!(base.factor(1500), 0.5);
    // S4: the four savings of section 11.
    for (ns, nt, sg, ss, so, want) in [
        (42_467_328.0, 84_934_656.0, 2949.0, 2149.0, 5099.0, 0.132),
        (339_738_624.0, 679_477_248.0, 6799.0, 4549.0, 7749.0, 0.148),
        (21_233_664.0, 84_934_656.0, 3799.0, 2049.0, 5099.0, 0.216),
        (169_869_312.0, 679_477_248.0, 6299.0, 3549.0, 7749.0, 0.255),
    ] {
        let got = saving(ns, nt, sg, ss, so);
        assert!((got - want).abs() < 0.0015, "{got} vs {want}");
    }
}

#[test]
fn width_growth_halves_every_gradient_but_ln_f() {
    // W4: right after growth, copy positions get T(grad)/2, ln_f gets dup(grad), and the
    // off-diagonal blocks get grad/2 as well (not zero: the official test's claim cannot hold).
    let device = Device::flex();
    let s = trained(3);
    let g = grow_width(&s).unwrap();
    let ids = batch(11, &device);
    let (ls, gs) = s.gradients(ids.clone(), &device).unwrap();
    let (lg, gg) = g.gradients(ids, &device).unwrap();
    assert!((ls - lg).abs() <= 1e-5);
    let close = |a: &[f32], b: &[f32], what: &str| {
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
        let d = max_diff(a, b) / scale;
        assert!(d <= 1e-3, "{what}: relative difference {d}");
    };
    for name in [
        "h.0.attn.c_proj.weight",
        "h.1.mlp.c_fc.weight",
        "h.1.mlp.c_proj.weight",
    ] {
        let [r, c] = gs[name].dims();
        let half = vals(gs[name].clone() / 2.0);
        close(&block(&gg[name], 0, r, 0, c), &half, name);
        close(&block(&gg[name], r, r, c, c), &half, name);
        close(
            &block(&gg[name], 0, r, c, c),
            &half,
            &format!("{name} off-diagonal"),
        );
        close(
            &block(&gg[name], r, r, 0, c),
            &half,
            &format!("{name} off-diagonal"),
        );
    }
    // Fused QKV: each of q, k, v is its own block diagonal.
    let qkv = &gs["h.0.attn.c_attn.weight"];
    for part in 0..3 {
        let half = vals(qkv.clone().narrow(1, part * D, D) / 2.0);
        let gq = &gg["h.0.attn.c_attn.weight"];
        close(&block(gq, 0, D, 2 * part * D, D), &half, "c_attn copy");
        close(
            &block(gq, D, D, (2 * part + 1) * D, D),
            &half,
            "c_attn copy",
        );
    }
    for name in [
        "wte.weight",
        "wpe.weight",
        "h.0.ln_1.weight",
        "h.1.mlp.c_fc.bias",
    ] {
        let [r, c] = gs[name].dims();
        let half = vals(gs[name].clone() / 2.0);
        close(&block(&gg[name], 0, r, 0, c), &half, name);
        close(&block(&gg[name], 0, r, c, c), &half, name);
    }
    for name in ["ln_f.weight", "ln_f.bias"] {
        let full = vals(gs[name].clone());
        close(&block(&gg[name], 0, 1, 0, D), &full, name);
        close(&block(&gg[name], 0, 1, D, D), &full, name);
    }
}

#[test]
fn growth_restarts_at_s_star_with_the_target_lr() {
    // W8: after growth the base LR is the target size's heuristic LR and the schedule restarts
    // at S* (the first post-growth step runs at S* + 1, as the official resume does).
    let s = trained(2);
    for (op, n_target) in [
        (Operator::Width, non_embedding_params(2, 2 * D)),
        (Operator::DEPTH, non_embedding_params(4, D)),
    ] {
        let g = grow_and_restart(&s, op, 1, 3).unwrap();
        assert_eq!(g.non_embedding_params() as f64, n_target);
        assert_eq!(g.schedule.base_lr, lr_heuristic(n_target));
        assert_eq!(g.schedule.restart, Some((1, 3)));
        assert_eq!(g.step, 2);
        let lr = g.schedule.lr(g.step);
        assert!(
            lr > 0.0 && lr < g.schedule.lr(4),
            "{op:?}: ramp from 0, {lr}"
        );
    }
}

#[test]
fn other_depth_initialisations_behave_as_documented() {
    let device = Device::flex();
    let s = trained(3);
    let ids = batch(5, &device);
    // Copy of the neighbour with zeroed output projections: also loss preserving.
    let z = grow_depth_with(&s, Placement::Alternate, DepthInit::ZeroOutputCopy).unwrap();
    let d = max_diff(&logits(&s, ids.clone()), &logits(&z, ids.clone()));
    assert!(d <= 1e-6, "zero-output copy: {d}");
    assert_eq!(
        vals(z.params["h.3.ln_1.weight"].clone()),
        vals(s.params["h.1.ln_1.weight"].clone())
    );
    assert!(vals(z.params["h.3.mlp.c_proj.weight"].clone())
        .iter()
        .all(|&x| x == 0.0));
    // The released script (spec §5.2): layers duplicated (NOT loss preserving), identity-like
    // moments in the old slot, the old moments in the new slot.
    let c = grow_depth_with(&s, Placement::Alternate, DepthInit::OfficialReleasedCompat).unwrap();
    for l in [0, 1] {
        for key in ["attn.c_attn.weight", "ln_1.weight", "mlp.c_proj.bias"] {
            let old = vals(s.params[&format!("h.{l}.{key}")].clone());
            assert_eq!(vals(c.params[&format!("h.{}.{key}", 2 * l)].clone()), old);
            assert_eq!(
                vals(c.params[&format!("h.{}.{key}", 2 * l + 1)].clone()),
                old
            );
            assert_eq!(
                vals(c.m[&format!("h.{}.{key}", 2 * l + 1)].clone()),
                vals(s.m[&format!("h.{l}.{key}")].clone())
            );
        }
        let m = &c.m[&format!("h.{}.attn.c_attn.weight", 2 * l)];
        for part in 0..3 {
            let q = vals(m.clone().narrow(1, part * D, D));
            let eye: Vec<f32> = (0..D * D)
                .map(|i| if i / D == i % D { 1.0 } else { 0.0 })
                .collect();
            assert_eq!(q, eye, "identity-like moment in slot {}", 2 * l);
        }
        assert!(vals(c.v[&format!("h.{}.ln_2.bias", 2 * l)].clone())
            .iter()
            .all(|&x| x == 0.0));
    }
    let d = max_diff(&logits(&s, ids.clone()), &logits(&c, ids));
    assert!(d > 1e-3, "the released mapping changes the function: {d}");
}

#[test]
fn schedule_optimiser_never_loses_to_one_stage_and_hits_the_target() {
    // S6.
    for l_target in [3.0, 2.6] {
        let one = single_stage_optimum(l_target);
        let s1 = one.stages[0];
        // The closed form is a minimum of N · S(N, L) along the constraint.
        for f in [0.9, 0.99, 1.01, 1.1] {
            let n = s1.n * f;
            assert!(n * kaplan::steps(n, l_target) > s1.n * s1.s_end, "N x {f}");
        }
        assert!((kaplan::loss(s1.n, s1.s_end) - l_target).abs() < 1e-9);
        assert_eq!(optimal_schedule(1, l_target), one);
        for k in [2, 3] {
            let plan = optimal_schedule(k, l_target);
            assert!(plan.compute <= one.compute, "K = {k}");
            // Replay the dynamics-preserving recursion from the stages alone.
            let b = kiln_staged::multistage::batch_tokens(l_target);
            let (mut loss, mut end, mut compute) = (f64::INFINITY, 0.0, 0.0);
            let mut prev_n = 0.0;
            for st in &plan.stages {
                assert!(st.n >= prev_n && st.s_end >= end, "non-decreasing");
                let s_eff = if end == 0.0 {
                    0.0
                } else {
                    kaplan::steps(st.n, loss)
                };
                loss = kaplan::loss(st.n, s_eff + st.s_end - end);
                compute += 6.0 * st.n * b * (st.s_end - end);
                end = st.s_end;
                prev_n = st.n;
            }
            assert!((loss - l_target).abs() < 1e-6, "K = {k}: final loss {loss}");
            assert!((compute - plan.compute).abs() <= 1e-9 * compute);
        }
        let saving2 = 1.0 - optimal_schedule(2, l_target).compute / one.compute;
        assert!(saving2 > 0.01, "two stages save compute: {saving2}");
    }
}

#[test]
fn accumulated_micro_batches_take_the_same_step_as_the_full_batch() {
    let device = Device::flex();
    let s = trained(2);
    let ids = batch(31, &device);
    let (mut full, mut micro) = (s.clone(), s.clone());
    let lf = full.train_step(ids.clone(), &device).unwrap();
    let lm = micro.train_step_accumulated(ids, 3, &device).unwrap();
    assert!((lf - lm).abs() < 1e-5, "{lf} vs {lm}");
    assert_eq!(full.step, micro.step);
    for name in ["wte.weight", "h.1.mlp.c_fc.weight", "ln_f.bias"] {
        let d = max_diff(
            &vals(full.params[name].clone()),
            &vals(micro.params[name].clone()),
        );
        assert!(d < 1e-6, "{name}: {d}");
    }
}

/// Evaluating a state (which rebuilds its model) draws nothing from the device RNG that dropout
/// uses, so how often a run is evaluated cannot change its training: with dropout on, a step
/// after an evaluation equals the same step without one, bit for bit.
#[test]
fn evaluation_does_not_perturb_training() {
    let device = Device::flex();
    let run = |evaluate: bool| {
        device.seed(5);
        let c = config(0.1);
        let m = Gpt2Model::new(&c, &device);
        let mut s = TrainState::new(c, &m, Schedule::new(1e-3, 2, 1000));
        let mut losses = Vec::new();
        for i in 0..3 {
            if evaluate {
                s.eval_loss(batch(100 + i, &device), &device).unwrap();
            }
            losses.push(s.train_step(batch(i, &device), &device).unwrap());
        }
        losses
    };
    assert_eq!(run(false), run(true));
}
