//! The fused cross-entropy (`kiln_models::cross_entropy`) equals the composite of burn's tensor
//! ops, in value and in its gradient wrt the logits, on every backend with a kernel of its own:
//! flex (rayon rows), LibTorch (`tch`), and the CubeCL composite (wgpu, with
//! `--features kiln-models/wgpu`).

use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_models::cross_entropy::{
    composite, cross_entropy_rows, label_smoothed_rows, smoothed_composite,
};
use rand::{Rng, SeedableRng};

fn data(n: usize, v: usize, scale: f32, seed: u64) -> (Vec<f32>, Vec<i64>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let z = (0..n * v)
        .map(|_| scale * (rng.random::<f32>() * 2.0 - 1.0))
        .collect();
    let t = (0..n).map(|_| rng.random_range(0..v as i64)).collect();
    // unequal row weights, so a gradient that ignored `g` would show
    let w = (0..n).map(|_| rng.random::<f32>() + 0.1).collect();
    (z, t, w)
}

/// (loss rows, d(Σ wᵢ·lossᵢ)/dz) through `f` on `device` (autodiff).
fn run(
    f: fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>,
    (z, t, w): &(Vec<f32>, Vec<i64>, Vec<f32>),
    n: usize,
    v: usize,
    transposed: bool,
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let ad = device.clone().autodiff();
    let (shape, zz) = if transposed {
        // stored [v, n], used as its transpose: a non-contiguous [n, v] view
        let mut tz = vec![0.0; n * v];
        for i in 0..n {
            for j in 0..v {
                tz[j * n + i] = z[i * v + j];
            }
        }
        ([v, n], tz)
    } else {
        ([n, v], z.clone())
    };
    let param = Tensor::<2>::from_data(TensorData::new(zz, shape), &ad).require_grad();
    let logits = if transposed {
        param.clone().transpose()
    } else {
        param.clone()
    };
    let targets = Tensor::<1, Int>::from_data(TensorData::new(t.clone(), [n]), &ad);
    let weights = Tensor::<1>::from_data(TensorData::new(w.clone(), [n]), &ad);
    let rows = f(logits, targets);
    let loss = (rows.clone() * weights).sum();
    let grads = loss.backward();
    let g = param.grad(&grads).expect("logits get a gradient");
    let g = if transposed { g.transpose() } else { g };
    (
        rows.into_data().iter::<f32>().collect::<Vec<_>>(),
        g.into_data().iter::<f32>().collect::<Vec<_>>(),
    )
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
        .fold(0.0, f32::max)
}

type Rows = fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>;

fn check(device: &Device, label: &str) {
    check_pair(device, label, cross_entropy_rows, composite);
    let label = format!("{label}, smoothed");
    check_pair(
        device,
        &label,
        |z, t| label_smoothed_rows(z, t, 0.1).0,
        |z, t| smoothed_composite(z, t, 0.1).0,
    );
    check_smoothed_values(device, &label);
}

/// The smoothed loss and NLL rows against fairseq's formula in f64, on the device and on its
/// autodiff twin (where the NLL must come back as a constant), with logits offset by 300 as
/// a language model's can be.
fn check_smoothed_values(device: &Device, label: &str) {
    let (n, v, eps) = (6, 257, 0.1);
    let (mut z, t, _) = data(n, v, 4.0, 11);
    for x in z.iter_mut() {
        *x += 300.0;
    }
    for tracked in [false, true] {
        let label = format!("{label}{}", if tracked { ", autodiff" } else { "" });
        let dev = if tracked {
            device.clone().autodiff()
        } else {
            device.clone()
        };
        let mut zt = Tensor::<2>::from_data(TensorData::new(z.clone(), [n, v]), &dev);
        if tracked {
            zt = zt.require_grad();
        }
        let tt = Tensor::<1, Int>::from_data(TensorData::new(t.clone(), [n]), &dev);
        let (loss, nll) = label_smoothed_rows(zt.clone(), tt, eps);
        if tracked {
            // the NLL is a constant: the gradient of Σ(loss + nll) is the loss's alone
            let grads = (loss.clone() + nll.clone()).sum().backward();
            let g = zt.grad(&grads).expect("logits get a gradient");
            let g = g.into_data().iter::<f32>().collect::<Vec<_>>();
            for (i, row) in g.chunks(v).enumerate() {
                let zr = &z[i * v..(i + 1) * v];
                let m = zr.iter().map(|&x| x as f64).fold(f64::MIN, f64::max);
                let s: f64 = zr.iter().map(|&x| (x as f64 - m).exp()).sum();
                for (j, &gj) in row.iter().enumerate() {
                    let p = (zr[j] as f64 - m).exp() / s;
                    let hit = if j as i64 == t[i] { 1.0 - eps } else { 0.0 };
                    let want = p - hit - eps / v as f64;
                    assert!(
                        (gj as f64 - want).abs() <= 1e-5,
                        "{label}: gradient [{i}, {j}] {gj} vs {want}"
                    );
                }
            }
        }
        let loss = loss.into_data().iter::<f32>().collect::<Vec<_>>();
        let nll = nll.into_data().iter::<f32>().collect::<Vec<_>>();
        compare_with_fairseq(&z, &t, v, eps, &loss, &nll, &label);
    }
}

fn compare_with_fairseq(
    z: &[f32],
    t: &[i64],
    v: usize,
    eps: f64,
    loss: &[f32],
    nll: &[f32],
    label: &str,
) {
    for i in 0..t.len() {
        let row: Vec<f64> = z[i * v..(i + 1) * v].iter().map(|&x| x as f64).collect();
        let m = row.iter().copied().fold(f64::MIN, f64::max);
        let lse = row.iter().map(|x| (x - m).exp()).sum::<f64>().ln() + m;
        let lp: Vec<f64> = row.iter().map(|x| x - lse).collect();
        let want_nll = -lp[t[i] as usize];
        let want = (1.0 - eps) * want_nll + eps / v as f64 * -lp.iter().sum::<f64>();
        assert!(
            (loss[i] as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{label}: row {i} loss {} vs fairseq's {want}",
            loss[i]
        );
        assert!(
            (nll[i] as f64 - want_nll).abs() <= 1e-5 * want_nll.abs().max(1.0),
            "{label}: row {i} nll {} vs {want_nll}",
            nll[i]
        );
    }
}

fn check_pair(device: &Device, label: &str, fused: Rows, reference: Rows) {
    for (n, v, scale, transposed) in [
        (7, 1000, 5.0, false),
        (5, 50257, 30.0, false),
        (3, 17, 80.0, true),
    ] {
        let d = data(n, v, scale, n as u64);
        let (fl, fg) = run(fused, &d, n, v, transposed, device);
        let (cl, cg) = run(reference, &d, n, v, transposed, device);
        let (dl, dg) = (max_rel(&fl, &cl), max_rel(&fg, &cg));
        eprintln!("{label} n {n} V {v}: loss rel {dl:e}, grad rel {dg:e}");
        assert!(dl <= 1e-5, "{label}: loss differs by {dl} (n {n}, V {v})");
        assert!(
            dg <= 1e-4,
            "{label}: gradient differs by {dg} (n {n}, V {v})"
        );
        // the gradient's rows sum to zero (softmax minus the smoothed one-hot, times g)
        for (i, row) in fg.chunks(v).enumerate() {
            let s: f64 = row.iter().map(|&x| x as f64).sum();
            assert!(
                s.abs() <= 1e-4,
                "{label}: row {i} of the gradient sums to {s}"
            );
        }
    }
    // without autodiff the fused forward runs alone
    let d = data(4, 300, 3.0, 9);
    let z = Tensor::<2>::from_data(TensorData::new(d.0.clone(), [4, 300]), device);
    let t = Tensor::<1, Int>::from_data(TensorData::new(d.1.clone(), [4]), device);
    let a = fused(z.clone(), t.clone())
        .into_data()
        .iter::<f32>()
        .collect::<Vec<_>>();
    let b = reference(z, t)
        .into_data()
        .iter::<f32>()
        .collect::<Vec<_>>();
    assert!(
        max_rel(&a, &b) <= 1e-5,
        "{label}: untracked forward {a:?} vs {b:?}"
    );
}

#[test]
fn fused_cross_entropy_matches_composite_on_flex() {
    check(&Device::flex(), "flex");
}

#[test]
fn fused_cross_entropy_matches_composite_on_tch() {
    let Some(device) = kiln_core::device::tch_parity_device() else {
        return;
    };
    check(&device, "tch");
}

#[cfg(feature = "wgpu")]
#[test]
fn fused_cross_entropy_matches_composite_on_wgpu() {
    if std::env::var_os("KILN_SKIP_WGPU").is_some() {
        kiln_core::paths::skip_optional(
            "wgpu fused cross-entropy (KILN_SKIP_WGPU: no Vulkan driver on this machine)",
        );
        return;
    }
    check(&kiln_core::parse_device("wgpu").unwrap(), "wgpu");
}

/// Smoothing 0 is the plain loss bit for bit, and its two outputs, which hold one value, stay
/// independent: using up the NLL (as a training loop's logging does) never writes into the
/// loss (LibTorch once shared their storage under two handles that each thought it owned it).
fn check_unsmoothed(device: &Device, label: &str) {
    let (n, v) = (5, 300);
    let (z, t, _) = data(n, v, 3.0, 4);
    let zt = Tensor::<2>::from_data(TensorData::new(z, [n, v]), device);
    let tt = Tensor::<1, Int>::from_data(TensorData::new(t, [n]), device);
    let plain = cross_entropy_rows(zt.clone(), tt.clone()).into_data();
    let (loss, nll) = label_smoothed_rows(zt, tt, 0.0);
    assert_eq!(nll.clone().into_data(), plain, "{label}: nll at ε 0");
    let scaled = (nll * 3.0).into_data();
    assert_eq!(
        loss.into_data(),
        plain,
        "{label}: loss at ε 0 (after using the nll)"
    );
    let want: Vec<f32> = plain.iter::<f32>().map(|x| x * 3.0).collect();
    assert_eq!(scaled.iter::<f32>().collect::<Vec<_>>(), want, "{label}");
}

#[test]
fn unsmoothed_rows_equal_the_plain_loss_on_flex() {
    check_unsmoothed(&Device::flex(), "flex");
}

#[test]
fn unsmoothed_rows_equal_the_plain_loss_on_tch() {
    let Some(device) = kiln_core::device::tch_parity_device() else {
        return;
    };
    check_unsmoothed(&device, "tch");
}

#[test]
fn an_out_of_range_target_gives_nan_rows_with_smoothing_too() {
    let device = Device::flex();
    let z = Tensor::<2>::from_data(TensorData::new(vec![0.0f32; 6], [2, 3]), &device);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3], [2]), &device);
    let (loss, nll) = label_smoothed_rows(z, t, 0.1);
    let loss = loss.into_data().iter::<f32>().collect::<Vec<_>>();
    let nll = nll.into_data().iter::<f32>().collect::<Vec<_>>();
    assert!((loss[0] - 3f32.ln()).abs() < 1e-6, "{loss:?}");
    assert!((nll[0] - 3f32.ln()).abs() < 1e-6, "{nll:?}");
    assert!(loss[1].is_nan() && nll[1].is_nan(), "{loss:?} {nll:?}");
}

#[test]
fn an_out_of_range_target_gives_a_nan_row_on_flex() {
    let device = Device::flex();
    let z = Tensor::<2>::from_data(TensorData::new(vec![0.0f32; 6], [2, 3]), &device);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3], [2]), &device);
    let rows = cross_entropy_rows(z, t)
        .into_data()
        .iter::<f32>()
        .collect::<Vec<_>>();
    assert!((rows[0] - 3f32.ln()).abs() < 1e-6, "{rows:?}");
    assert!(rows[1].is_nan(), "{rows:?}");
}

/// In GPT-2's own loss (the tied head; dropout off), every parameter's
/// gradient through the fused op equals the composite's: the op changes rounding, not the
/// update.
#[test]
fn gpt2_parameter_gradients_match_the_composite_loss() {
    use burn::module::Module;
    use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
    let device = Device::flex();
    device.seed(5);
    let mut c = Gpt2Config::new(2000, 32, 32, 2, 4);
    // dropout off: the two passes below must see the same network
    (c.resid_pdrop, c.embd_pdrop, c.attn_pdrop) = (0.0, 0.0, 0.0);
    let ad = device.clone().autodiff();
    let model = Gpt2Model::new(&c, &ad);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let (b, t) = (3usize, 32usize);
    let ids: Vec<i64> = (0..b * t).map(|_| rng.random_range(0..2000)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &ad);
    let fused = model.loss(ids.clone());
    // the same loss with the composite in place of the fused op
    let h = model.hidden(ids.clone()).narrow(1, 0, t - 1);
    let n = b * (t - 1);
    let z = h
        .reshape([n, 32])
        .matmul(model.wte.weight.val().transpose());
    let composite_loss = composite(z, ids.narrow(1, 1, t - 1).reshape([n])).mean();
    let (lf, lc) = (
        fused.clone().into_scalar::<f32>(),
        composite_loss.clone().into_scalar::<f32>(),
    );
    assert!((lf - lc).abs() <= 1e-5 * lc.abs(), "loss {lf} vs {lc}");
    let gf = fused.backward();
    let gc = composite_loss.backward();
    let mut worst = 0f32;
    let mut checked = 0;
    model.visit(&mut GradDiff {
        a: &gf,
        b: &gc,
        worst: &mut worst,
        checked: &mut checked,
    });
    eprintln!("{checked} parameters, worst relative gradient difference {worst:e}");
    assert!(checked > 10, "{checked}");
    assert!(worst <= 1e-3, "{worst}");
}

struct GradDiff<'a> {
    a: &'a burn::tensor::Gradients,
    b: &'a burn::tensor::Gradients,
    worst: &'a mut f32,
    checked: &'a mut usize,
}
impl burn::module::ModuleVisitor for GradDiff<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let t = param.val();
        let (Some(a), Some(b)) = (t.grad(self.a), t.grad(self.b)) else {
            return;
        };
        let a: Vec<f32> = a.into_data().iter::<f32>().collect();
        let b: Vec<f32> = b.into_data().iter::<f32>().collect();
        let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1e-6);
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        *self.worst = self.worst.max(d / scale);
        *self.checked += 1;
    }
}
