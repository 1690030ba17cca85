//! Mask search under a FLOPs (§4.2) or latency (§4.3) constraint, maximising the total
//! importance of the kept units (the diagonal approximation of the Fisher objective).

use crate::importance::Importance;
use crate::{MacModel, Masks, PruneError};

pub fn check_constraint(c: f64) -> Result<(), PruneError> {
    if !(c > 0.0 && c < 1.0) {
        return Err(PruneError::Constraint(c));
    }
    Ok(())
}

/// Units sorted by importance, descending; ties by (layer, index) so the result is deterministic.
fn ranked(imp: &[Vec<f64>]) -> Vec<(usize, usize, f64)> {
    let mut v: Vec<(usize, usize, f64)> = imp
        .iter()
        .enumerate()
        .flat_map(|(l, row)| row.iter().enumerate().map(move |(i, &x)| (l, i, x)))
        .collect();
    v.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    v
}

fn prefix(v: &[(usize, usize, f64)]) -> Vec<f64> {
    let mut p = vec![0.0];
    for x in v {
        p.push(p.last().unwrap() + x.2);
    }
    p
}

/// The split chosen by the FLOPs search.
#[derive(Debug, Clone, PartialEq)]
pub struct MacSearch {
    pub masks: Masks,
    pub heads: usize,
    pub neurons: usize,
    pub score: f64,
}

/// Keeps the `n_h` most important heads and `n_f` most important neurons globally, for the
/// split `(n_h, n_f)` with the highest kept importance whose cost fits `constraint * full`.
pub fn search_mac(
    imp: &Importance,
    cost: &MacModel,
    constraint: f64,
) -> Result<MacSearch, PruneError> {
    check_constraint(constraint)?;
    let heads = ranked(&imp.head);
    let neurons = ranked(&imp.neuron);
    let (ph, pn) = (prefix(&heads), prefix(&neurons));
    let budget = constraint * cost.full();
    let (ch, cn) = (cost.head_cost(), cost.neuron_cost());
    let fit_neurons = |nh: usize| -> Option<usize> {
        let rem = budget - nh as f64 * ch;
        if rem < 0.0 {
            return None;
        }
        let mut nf = ((rem / cn).floor() as usize).min(neurons.len());
        while nf > 0 && nh as f64 * ch + nf as f64 * cn > budget {
            nf -= 1;
        }
        Some(nf)
    };
    let mut best: Option<(f64, usize, usize)> = None;
    for nh in 1..=heads.len() {
        let Some(nf) = fit_neurons(nh) else { break };
        let score = ph[nh] + pn[nf];
        if best.is_none_or(|b| score > b.0) {
            best = Some((score, nh, nf));
        }
    }
    // Fallbacks where the reference crashes: no head fits, or every score is 0.
    let (score, nh, nf) = match best {
        Some(b) if b.0 > 0.0 => b,
        _ => {
            let mut choice = None;
            for nh in 0..=heads.len() {
                let Some(nf) = fit_neurons(nh) else { break };
                let used = nh as f64 * ch + nf as f64 * cn;
                if choice.is_none_or(|(u, _, _)| used >= u) {
                    choice = Some((used, nh, nf));
                }
            }
            let (_, nh, nf) =
                choice.ok_or_else(|| PruneError::Infeasible(format!("budget {budget:.0} MACs")))?;
            (ph[nh] + pn[nf], nh, nf)
        }
    };
    let mut masks = Masks {
        head: imp.head.iter().map(|l| vec![0.0; l.len()]).collect(),
        neuron: imp.neuron.iter().map(|l| vec![0.0; l.len()]).collect(),
    };
    for &(l, i, _) in &heads[..nh] {
        masks.head[l][i] = 1.0;
    }
    for &(l, i, _) in &neurons[..nf] {
        masks.neuron[l][i] = 1.0;
    }
    Ok(MacSearch {
        masks,
        heads: nh,
        neurons: nf,
        score,
    })
}

/// Piecewise-linear latency model of one block type (spec §4.3): flat `c` for 1..=t units, then
/// `c + slope (n - t)`; 0 units cost 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PiecewiseLatency {
    pub t: usize,
    pub c: f64,
    pub slope: f64,
}

impl PiecewiseLatency {
    pub fn at(&self, n: usize) -> f64 {
        if n == 0 {
            0.0
        } else if n <= self.t {
            self.c
        } else {
            self.c + self.slope * (n - self.t) as f64
        }
    }

    /// Brute-force fit over the breakpoint: `lut[n-1]` is the latency with `n` units.
    pub fn fit(lut: &[f64]) -> Self {
        let n = lut.len();
        let mut best = (
            f64::MAX,
            Self {
                t: n,
                c: 0.0,
                slope: 0.0,
            },
        );
        for t in 1..=n {
            let c = lut[..t].iter().sum::<f64>() / t as f64;
            let (mut sxy, mut sxx) = (0.0, 0.0);
            for (j, y) in lut[t..].iter().enumerate() {
                let x = (j + 1) as f64;
                sxy += x * (y - c);
                sxx += x * x;
            }
            let slope = if t == n || sxx == 0.0 {
                0.0
            } else {
                (sxy / sxx).max(0.0)
            };
            let m = Self { t, c, slope };
            let err: f64 = lut
                .iter()
                .enumerate()
                .map(|(i, y)| (m.at(i + 1) - y).powi(2))
                .sum();
            if err < best.0 {
                best = (err, m);
            }
        }
        best.1
    }
}

/// Latency lookup tables of one model on one device (`mha[n-1]`, `ffn[n-1]`, seconds).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencyLut {
    pub mha: Vec<f64>,
    pub ffn: Vec<f64>,
}

/// Estimated latency of a mask: sum over layers of both fitted block models.
pub fn estimate_latency(m: &Masks, mha: &PiecewiseLatency, ffn: &PiecewiseLatency) -> f64 {
    m.kept_heads().iter().map(|&n| mha.at(n)).sum::<f64>()
        + m.kept_neurons().iter().map(|&n| ffn.at(n)).sum::<f64>()
}

/// Latency-constrained search (the intended algorithm of §4.3; see the crate docs for the
/// reference-code deviations we do not copy).
pub fn search_latency(
    imp: &Importance,
    lut: &LatencyLut,
    constraint: f64,
) -> Result<Masks, PruneError> {
    check_constraint(constraint)?;
    let (mha, ffn) = (
        PiecewiseLatency::fit(&lut.mha),
        PiecewiseLatency::fit(&lut.ffn),
    );
    let layers = imp.head.len();
    let full = Masks::ones(
        &imp.head.iter().map(|l| l.len()).collect::<Vec<_>>(),
        &imp.neuron.iter().map(|l| l.len()).collect::<Vec<_>>(),
    );
    let budget = constraint * estimate_latency(&full, &mha, &ffn);
    // Per layer: units sorted by importance; base = top-t.
    let sorted = |v: &Vec<f64>| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
        idx
    };
    let h_sorted: Vec<Vec<usize>> = imp.head.iter().map(sorted).collect();
    let n_sorted: Vec<Vec<usize>> = imp.neuron.iter().map(sorted).collect();
    let base_imp = |imp: &Vec<Vec<f64>>, s: &Vec<Vec<usize>>, t: usize| -> Vec<f64> {
        (0..layers)
            .map(|l| s[l].iter().take(t).map(|&i| imp[l][i]).sum())
            .collect()
    };
    let h_base = base_imp(&imp.head, &h_sorted, mha.t);
    let n_base = base_imp(&imp.neuron, &n_sorted, ffn.t);
    let drop_order = |base: &Vec<f64>| {
        let mut o: Vec<usize> = (0..layers).collect();
        o.sort_by(|&a, &b| base[a].total_cmp(&base[b]).then(a.cmp(&b)));
        o
    };
    let (h_drop, n_drop) = (drop_order(&h_base), drop_order(&n_base));
    let mut best: Option<(f64, Masks)> = None;
    for k_mha in 0..layers {
        for k_ffn in 0..layers {
            let kept_h: Vec<usize> = h_drop[k_mha..].to_vec();
            let kept_n: Vec<usize> = n_drop[k_ffn..].to_vec();
            let mut rem = budget - kept_h.len() as f64 * mha.c - kept_n.len() as f64 * ffn.c;
            if rem < 0.0 {
                continue;
            }
            let mut m = Masks {
                head: imp.head.iter().map(|l| vec![0.0; l.len()]).collect(),
                neuron: imp.neuron.iter().map(|l| vec![0.0; l.len()]).collect(),
            };
            let mut score = 0.0;
            let mut extra_h = Vec::new();
            let mut extra_n = Vec::new();
            for &l in &kept_h {
                for (r, &i) in h_sorted[l].iter().enumerate() {
                    if r < mha.t {
                        m.head[l][i] = 1.0;
                        score += imp.head[l][i];
                    } else {
                        extra_h.push((imp.head[l][i], l, i));
                    }
                }
            }
            for &l in &kept_n {
                for (r, &i) in n_sorted[l].iter().enumerate() {
                    if r < ffn.t {
                        m.neuron[l][i] = 1.0;
                        score += imp.neuron[l][i];
                    } else {
                        extra_n.push((imp.neuron[l][i], l, i));
                    }
                }
            }
            let cmp = |a: &(f64, usize, usize), b: &(f64, usize, usize)| {
                b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
            };
            extra_h.sort_by(cmp);
            extra_n.sort_by(cmp);
            // Extra units: as §4.2 with unit costs slope_mha / slope_ffn (free when slope is 0).
            let (ph, pn) = (
                prefix(&extra_h.iter().map(|x| (0, 0, x.0)).collect::<Vec<_>>()),
                prefix(&extra_n.iter().map(|x| (0, 0, x.0)).collect::<Vec<_>>()),
            );
            let mut best_split = (0usize, 0usize, f64::MIN);
            for eh in 0..=extra_h.len() {
                let used = eh as f64 * mha.slope;
                if used > rem + 1e-15 {
                    break;
                }
                let en = if ffn.slope > 0.0 {
                    (((rem - used) / ffn.slope).floor().max(0.0) as usize).min(extra_n.len())
                } else {
                    extra_n.len()
                };
                let s = ph[eh] + pn[en];
                if s > best_split.2 {
                    best_split = (eh, en, s);
                }
            }
            let (eh, en, s) = best_split;
            for &(_, l, i) in &extra_h[..eh] {
                m.head[l][i] = 1.0;
            }
            for &(_, l, i) in &extra_n[..en] {
                m.neuron[l][i] = 1.0;
            }
            rem -= eh as f64 * mha.slope + en as f64 * ffn.slope;
            debug_assert!(rem >= -1e-9);
            score += s;
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, m));
            }
        }
    }
    best.map(|b| b.1).ok_or_else(|| {
        PruneError::Infeasible(format!(
            "latency budget {budget:.3e} s is below one block of each kind"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_layer() -> (Importance, MacModel) {
        // Spec §11.7 toy: head cost 10, neuron cost 1 (hidden 1, head_dim 1, s chosen to match).
        let imp = Importance {
            head: vec![vec![5.0, 1.0]],
            neuron: vec![vec![3.0, 2.0, 1.5, 0.5]],
        };
        // head_cost = 4 s d dh + 2 s² dh; neuron_cost = 2 s d. With d = 1, dh = 1, s = 0.5:
        // neuron = 1, head = 2 + 0.5 = 2.5; scale via layers: use a custom model below instead.
        (
            imp,
            MacModel {
                layers: 1,
                heads: 2,
                neurons: 4,
                hidden: 1,
                head_dim: 1,
                seq_len: 0.5,
            },
        )
    }

    #[test]
    fn toy_vector_from_the_spec() {
        // Rebuild the toy with exact costs 10 / 1 by picking d and s: neuron = 2 s d = 1 -> s d = 0.5;
        // head = 4 s d dh + 2 s² dh = 2 dh + 2 s² dh = 10 with s = 0.5 -> dh (2 + 0.5) = 10 -> dh = 4.
        let (imp, mut cost) = one_layer();
        cost.head_dim = 4;
        assert!(
            (cost.head_cost() - 10.0).abs() < 1e-12 && (cost.neuron_cost() - 1.0).abs() < 1e-12
        );
        assert_eq!(cost.full(), 24.0);
        let r = search_mac(&imp, &cost, 0.5).unwrap();
        assert_eq!(r.masks.head, vec![vec![1.0, 0.0]]);
        assert_eq!(r.masks.neuron, vec![vec![1.0, 1.0, 0.0, 0.0]]);
        assert_eq!(r.score, 10.0);
        assert_eq!(cost.cost(&r.masks), 12.0);
    }

    #[test]
    fn bad_constraints_are_errors() {
        let (imp, cost) = one_layer();
        for c in [0.0, -0.1, 1.0, 1.5, f64::NAN] {
            let e = search_mac(&imp, &cost, c).unwrap_err().to_string();
            assert!(e.contains("outside (0, 1)"), "{e}");
        }
    }

    #[test]
    fn piecewise_fit_recovers_a_known_model() {
        let truth = PiecewiseLatency {
            t: 5,
            c: 2.0,
            slope: 0.25,
        };
        let lut: Vec<f64> = (1..=20).map(|n| truth.at(n)).collect();
        let fit = PiecewiseLatency::fit(&lut);
        assert_eq!(fit.t, 5);
        assert!(
            (fit.c - 2.0).abs() < 1e-12 && (fit.slope - 0.25).abs() < 1e-12,
            "{fit:?}"
        );
    }
}
