//! The efficiency criterion of spec §8.2: on the log-log curve (x = log10 compute,
//! y = log10 loss, smoothed with a running mean of width 5), find the steepest slope and then the
//! first later point whose slope is flatter than a threshold.

/// Drops loss spikes: a point more than 1% above the last kept loss (spec §8.2 step 1).
pub fn remove_spikes(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &p in points {
        if out.last().is_none_or(|l| p.1 <= l.1 * 1.01) {
            out.push(p);
        }
    }
    out
}

/// Running mean of width `w` with SciPy's default `reflect` boundary (`uniform_filter1d`).
pub fn running_mean(y: &[f64], w: usize) -> Vec<f64> {
    let n = y.len() as isize;
    if n == 0 {
        return Vec::new();
    }
    let half = (w / 2) as isize;
    let at = |i: isize| -> f64 {
        // reflect: (d c b a | a b c d | d c b a)
        let mut j = i;
        while j < 0 || j >= n {
            j = if j < 0 { -j - 1 } else { 2 * n - j - 1 };
        }
        y[j as usize]
    };
    (0..n)
        .map(|i| (i - half..i - half + w as isize).map(at).sum::<f64>() / w as f64)
        .collect()
}

/// Slopes of the smoothed log-log curve between consecutive points `(compute, loss)`.
pub fn slopes(points: &[(f64, f64)]) -> Vec<f64> {
    let x: Vec<f64> = points.iter().map(|p| p.0.log10()).collect();
    let y = running_mean(&points.iter().map(|p| p.1.log10()).collect::<Vec<_>>(), 5);
    (0..points.len().saturating_sub(1))
        .map(|i| (y[i + 1] - y[i]) / (x[i + 1] - x[i]))
        .collect()
}

/// The first index after the steepest slope whose slope exceeds `threshold`.
fn flat_after_steepest(s: &[f64], threshold: f64) -> Option<usize> {
    let steepest = s
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)?;
    (steepest + 1..s.len()).find(|&i| s[i] > threshold)
}

/// Index (into `points`) of the decision point for `threshold`: the first point after the
/// steepest slope whose slope exceeds the threshold; `None` if the curve never flattens that far.
pub fn decision_point(points: &[(f64, f64)], threshold: f64) -> Option<usize> {
    flat_after_steepest(&slopes(points), threshold)
}

/// [`decision_point`] for a curve still being recorded (the online use of §8.4): the smoothing
/// window is centred, and with SciPy's reflect boundary the last two smoothed points mirror the
/// curve's own end, which flattens the final slopes and fires any threshold early. Only slopes
/// whose windows lie inside the data count, so a decision lags the data by two evaluations.
pub fn settled_decision_point(points: &[(f64, f64)], threshold: f64) -> Option<usize> {
    let settled = points.len().saturating_sub(2);
    if settled < 2 {
        return None;
    }
    flat_after_steepest(&slopes(points)[..settled - 1], threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::kaplan;

    #[test]
    fn online_decisions_ignore_the_reflected_end() {
        // A power law that keeps its steep slope: the reflected end flattens the last slopes and
        // fires a threshold offline; the settled version does not.
        let pts: Vec<(f64, f64)> = (1..=30)
            .map(|i| (i as f64, 10.0 * (i as f64).powf(-0.5)))
            .collect();
        let s = slopes(&pts);
        assert!(
            s[s.len() - 1] > -0.3,
            "reflect flattens the end: {}",
            s[s.len() - 1]
        );
        assert!(decision_point(&pts, -0.3).is_some());
        assert_eq!(settled_decision_point(&pts, -0.3), None);
        // On a curve that really flattens, both agree on where.
        let flat: Vec<(f64, f64)> = (1..=40)
            .map(|i| {
                (
                    i as f64,
                    if i < 20 {
                        10.0 * (i as f64).powf(-0.5)
                    } else {
                        10.0 * 20f64.powf(-0.5) * (i as f64 / 20.0).powf(-0.01)
                    },
                )
            })
            .collect();
        assert_eq!(
            settled_decision_point(&flat, -0.3),
            decision_point(&flat, -0.3)
        );
    }

    #[test]
    fn reflect_running_mean_matches_scipy() {
        // scipy.ndimage.uniform_filter1d([1, 2, 3, 4, 10], 5) = [1.8, 2.2, 4, 5.8, 6.2] (SciPy 1.17.1)
        let m = running_mean(&[1.0, 2.0, 3.0, 4.0, 10.0], 5);
        for (a, b) in m.iter().zip([1.8, 2.2, 4.0, 5.8, 6.2]) {
            assert!((a - b).abs() < 1e-12, "{m:?}");
        }
        assert_eq!(
            remove_spikes(&[(1.0, 3.0), (2.0, 3.2), (3.0, 2.9)]),
            vec![(1.0, 3.0), (3.0, 2.9)]
        );
    }

    #[test]
    fn simulated_scaling_laws_give_size_independent_step_ratios() {
        // S5: simulated Kaplan curves, C = 6 N B_crit(L) S, S in [4000, 90000] step 10.
        let curve = |n: f64| -> Vec<(f64, f64)> {
            (4000..=90000)
                .step_by(10)
                .map(|s| {
                    let l = kaplan::loss(n, s as f64);
                    (6.0 * n * kaplan::b_crit(l) * s as f64, l)
                })
                .collect()
        };
        let mut ratios = Vec::new();
        for n in [1e7, 1e8, 1e9] {
            let small = curve(n);
            // Width growth: 4x parameters, threshold -0.0475.
            let g = decision_point(&small, -0.0475).expect("small curve flattens");
            let target_steps = kaplan::steps(4.0 * n, small[g].1);
            let s_g = 4000.0 + 10.0 * g as f64;
            ratios.push(s_g / target_steps);
        }
        for r in &ratios {
            assert!((r - ratios[0]).abs() / ratios[0] < 0.05, "{ratios:?}");
        }
        assert!(
            (ratios[0] - 2.717).abs() < 0.3,
            "width S_g/S* = {ratios:?}, spec 2.717"
        );
    }
}
