//! The multi-stage optimal schedule of spec §8.5 (`compute_optimal_schedule.py`): choose model
//! sizes `N_0 <= ... <= N_{K-1}` and cumulative steps `S_0 <= ... <= S_{K-1}` that reach a target
//! loss with the least compute, assuming Kaplan's `L(N, S)` and that growth preserves the training
//! dynamics (after growing to `N_k` at loss `L_{k-1}`, training continues from the step
//! `S(N_k, L_{k-1})` that size needs to reach that loss).
//!
//! Deliberate difference from the official script: it solves the equality-constrained problem with
//! SciPy's SLSQP from one huge stage (N = 1e12). Here the constraint `L_{K-1} = L_target` is
//! eliminated (the last stage's length is what reaching `L_target` takes), sizes and steps are
//! kept non-decreasing by squaring the increments, and the remaining unconstrained problem in
//! log10 space is minimised with Nelder–Mead from the single-stage optimum. The final loss then
//! holds to rounding, and `K > 1` can never return more compute than `K = 1`.

use crate::schedule::kaplan;

/// One stage: model size, cumulative step at its end, loss reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub n: f64,
    pub s_end: f64,
    pub loss: f64,
}

/// A schedule and its compute (FLOPs, `6 N B ΔS` per stage).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    pub compute: f64,
}

/// The batch in tokens: the critical batch at the target loss, constant across stages.
pub fn batch_tokens(l_target: f64) -> f64 {
    kaplan::b_crit(l_target)
}

/// The closed-form single-stage optimum: minimising `N · S(N, L)` gives
/// `(N_c/N)^αN = L αS / (αS + αN)`.
pub fn single_stage_optimum(l_target: f64) -> Plan {
    use kaplan::*;
    let x = l_target * ALPHA_S / (ALPHA_S + ALPHA_N);
    let n = N_C / x.powf(1.0 / ALPHA_N);
    let s = steps(n, l_target);
    Plan {
        stages: vec![Stage {
            n,
            s_end: s,
            loss: l_target,
        }],
        compute: 6.0 * n * batch_tokens(l_target) * s,
    }
}

/// Evaluates a schedule given in the free variables: `[log10 N_0, u_n1, .., u_n(K-1)]` followed
/// by `[log10 S_0, u_s1, .., u_s(K-2)]` (size and step increments are `u²` in log10). The last
/// stage trains until `L_target`. `None` when the schedule cannot reach the target.
fn evaluate(x: &[f64], k: usize, l_target: f64) -> Option<Plan> {
    let b = batch_tokens(l_target);
    let mut log_n = x[0];
    let mut log_s = if k > 1 { x[k] } else { 0.0 };
    let mut stages = Vec::with_capacity(k);
    let mut compute = 0.0;
    let mut prev_loss = f64::INFINITY;
    let mut prev_end = 0.0;
    for i in 0..k {
        if i > 0 {
            log_n += x[i] * x[i];
        }
        let n = 10f64.powf(log_n);
        let s_eff = if i == 0 {
            0.0
        } else {
            kaplan::steps(n, prev_loss)
        };
        let (s_end, loss) = if i + 1 == k {
            let need = kaplan::steps(n, l_target);
            (prev_end + (need - s_eff), l_target)
        } else {
            if i > 0 {
                log_s += x[k + i] * x[k + i];
            }
            let s_end = 10f64.powf(log_s);
            (s_end, kaplan::loss(n, s_eff + (s_end - prev_end)))
        };
        let ds = s_end - prev_end;
        if !(ds.is_finite() && ds >= 0.0 && loss.is_finite()) || (i + 1 < k && loss <= l_target) {
            return None;
        }
        compute += 6.0 * n * b * ds;
        stages.push(Stage { n, s_end, loss });
        prev_loss = loss;
        prev_end = s_end;
    }
    Some(Plan { stages, compute })
}

/// Nelder–Mead (standard coefficients 1, 2, 0.5, 0.5) minimising `f` from `x0`.
fn nelder_mead(f: impl Fn(&[f64]) -> f64, x0: &[f64], step: f64, iters: usize) -> Vec<f64> {
    let n = x0.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = (0..=n)
        .map(|i| {
            let mut x = x0.to_vec();
            if i > 0 {
                x[i - 1] += step;
            }
            let fx = f(&x);
            (x, fx)
        })
        .collect();
    for _ in 0..iters {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        let spread = simplex
            .iter()
            .flat_map(|(x, _)| x.iter().zip(&simplex[0].0).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if (worst - best).abs() <= 1e-15 * best.abs().max(1.0) && spread < 1e-12 {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let xr = along(1.0);
        let fr = f(&xr);
        if fr < simplex[0].1 {
            let xe = along(2.0);
            let fe = f(&xe);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
        } else {
            let xc = if fr < worst { along(0.5) } else { along(-0.5) };
            let fc = f(&xc);
            if fc < worst.min(fr) {
                simplex[n] = (xc, fc);
            } else {
                let x0 = simplex[0].0.clone();
                for v in simplex.iter_mut().skip(1) {
                    v.0 =
                        v.0.iter()
                            .zip(&x0)
                            .map(|(a, b)| b + 0.5 * (a - b))
                            .collect();
                    v.1 = f(&v.0);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0).0
}

/// The least-compute `k`-stage schedule reaching `l_target` (spec §8.5). `k = 1` is the closed
/// form; larger `k` start from it (every extra stage the same size) and never do worse.
pub fn optimal_schedule(k: usize, l_target: f64) -> Plan {
    let one = single_stage_optimum(l_target);
    if k <= 1 {
        return one;
    }
    let s1 = one.stages[0];
    // Start: stage sizes equal to the single-stage optimum, stage ends spread over its steps.
    let mut x0 = vec![s1.n.log10()];
    x0.extend(std::iter::repeat_n(0.0, k - 1));
    x0.push((s1.s_end / k as f64).log10());
    x0.extend(std::iter::repeat_n(
        ((k - 1) as f64 / k as f64).log10().abs().sqrt(),
        k - 2,
    ));
    let objective = |x: &[f64]| {
        evaluate(x, k, l_target)
            .map(|p| p.compute.log10())
            .unwrap_or(f64::INFINITY)
    };
    let mut best = x0.clone();
    let mut best_f = objective(&best);
    // Restarts from the best point with shrinking simplices: Nelder–Mead can stall on ridges.
    for step in [0.5, 0.2, 0.05, 0.01] {
        let x = nelder_mead(objective, &best, step, 4000);
        let fx = objective(&x);
        if fx < best_f {
            best = x;
            best_f = fx;
        }
    }
    match evaluate(&best, k, l_target) {
        Some(p) if p.compute <= one.compute => p,
        _ => one,
    }
}

/// Relative compute saving of the `k`-stage optimum over the single-stage one.
pub fn multistage_saving(k: usize, l_target: f64) -> f64 {
    1.0 - optimal_schedule(k, l_target).compute / single_stage_optimum(l_target).compute
}
