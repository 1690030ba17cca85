//! GLUE task metrics, matching scikit-learn (accuracy_score, f1_score, matthews_corrcoef) and
//! scipy (pearsonr, spearmanr with average ranks for ties), and CTR metrics (log loss, ROC AUC,
//! accuracy and calibration of click probabilities) matching scikit-learn and DLRM.

/// Fraction of equal labels.
pub fn accuracy(pred: &[usize], gold: &[usize]) -> f64 {
    if gold.is_empty() {
        return 0.0;
    }
    pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len() as f64
}

fn confusion(pred: &[usize], gold: &[usize]) -> (f64, f64, f64, f64) {
    let (mut tp, mut tn, mut fp, mut fneg) = (0.0, 0.0, 0.0, 0.0);
    for (&p, &g) in pred.iter().zip(gold) {
        match (p == 1, g == 1) {
            (true, true) => tp += 1.0,
            (false, false) => tn += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fneg += 1.0,
        }
    }
    (tp, tn, fp, fneg)
}

/// Binary F1 of the positive class 1 (sklearn's default `pos_label=1`; 0 when undefined).
pub fn f1(pred: &[usize], gold: &[usize]) -> f64 {
    let (tp, _, fp, fneg) = confusion(pred, gold);
    let denom = 2.0 * tp + fp + fneg;
    if denom == 0.0 {
        0.0
    } else {
        2.0 * tp / denom
    }
}

/// Matthews correlation for any number of classes (sklearn's multiclass formula); 0 when
/// undefined.
pub fn matthews(pred: &[usize], gold: &[usize]) -> f64 {
    let k = pred.iter().chain(gold).copied().max().map_or(0, |m| m + 1);
    let mut c = vec![vec![0f64; k]; k];
    for (&p, &g) in pred.iter().zip(gold) {
        c[g][p] += 1.0;
    }
    let t: Vec<f64> = (0..k).map(|i| c[i].iter().sum()).collect(); // true counts
    let p: Vec<f64> = (0..k).map(|j| (0..k).map(|i| c[i][j]).sum()).collect(); // predicted
    let n: f64 = t.iter().sum();
    let correct: f64 = (0..k).map(|i| c[i][i]).sum();
    let cov_ytyp = correct * n - t.iter().zip(&p).map(|(a, b)| a * b).sum::<f64>();
    let cov_ypyp = n * n - p.iter().map(|x| x * x).sum::<f64>();
    let cov_ytyt = n * n - t.iter().map(|x| x * x).sum::<f64>();
    if cov_ypyp * cov_ytyt == 0.0 {
        0.0
    } else {
        cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
    }
}

/// Pearson correlation coefficient.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Ranks starting at 1, ties get their average rank (scipy `rankdata(method="average")`).
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation (Pearson of average ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&rank_average(x), &rank_average(y))
}

/// Mean binary cross-entropy of probabilities `p` against labels `y` (natural log), as
/// scikit-learn >= 1.5 computes `log_loss(y, p)`: each probability is clipped to
/// `[eps, 1 - eps]` with `eps = f64::EPSILON` (numpy's `finfo(float64).eps`), so a confident
/// wrong prediction costs ~36 nats instead of infinity. Older scikit-learn clipped to 1e-15,
/// which gives ~34.5 nats there instead; the two agree wherever `1e-15 < p < 1 - 1e-15`, which
/// a sigmoid output in f32 always satisfies. (DLRM's training loss clamps at 1e-9 instead: that
/// is a loss choice, not the reported metric.) Labels may be fractional; NaN on empty input.
pub fn log_loss(p: &[f64], y: &[f64]) -> f64 {
    let eps = f64::EPSILON;
    let n = p.len().min(y.len());
    if n == 0 {
        return f64::NAN;
    }
    let mut sum = 0.0;
    for (&pi, &yi) in p.iter().zip(y) {
        // sklearn builds the two columns [1 - p, p] first and clips each.
        let q1 = pi.clamp(eps, 1.0 - eps);
        let q0 = (1.0 - pi).clamp(eps, 1.0 - eps);
        let mut l = 0.0;
        if yi != 0.0 {
            l += yi * q1.ln();
        }
        if yi != 1.0 {
            l += (1.0 - yi) * q0.ln();
        }
        sum -= l;
    }
    sum / n as f64
}

/// Area under the ROC curve, as scikit-learn's `roc_auc_score`: the trapezoid over the curve's
/// points at each distinct score, so tied scores count half (the Mann-Whitney statistic with
/// average ranks). A label counts as positive when it is >= 0.5. Constant scores give 0.5. With
/// only one class present (or no rows) the AUC is undefined and this returns NaN, where
/// scikit-learn raises: a NaN in a results table is visible, a 0.5 would pass as "chance".
pub fn roc_auc(scores: &[f64], labels: &[f64]) -> f64 {
    let n = scores.len().min(labels.len());
    let mut idx: Vec<usize> = (0..n).collect();
    // Descending score, as sklearn's roc_curve walks thresholds from the top.
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tps, mut fps) = (0.0f64, 0.0f64);
    let mut points: Vec<(f64, f64)> = vec![(0.0, 0.0)];
    for (k, &i) in idx.iter().enumerate() {
        if labels[i] >= 0.5 {
            tps += 1.0;
        } else {
            fps += 1.0;
        }
        let last_of_tie = k + 1 == n || scores[idx[k + 1]] != scores[i];
        if last_of_tie {
            points.push((fps, tps));
        }
    }
    if tps == 0.0 || fps == 0.0 {
        return f64::NAN;
    }
    let mut area = 0.0;
    for w in points.windows(2) {
        let (x0, y0) = (w[0].0 / fps, w[0].1 / tps);
        let (x1, y1) = (w[1].0 / fps, w[1].1 / tps);
        area += (x1 - x0) * (y0 + y1) / 2.0;
    }
    area
}

/// Fraction of rows where `round(p)` equals the label, as DLRM reports accuracy
/// (`np.round(p) == y`). numpy rounds half to even, so p = 0.5 predicts 0 (and 1.5 would give
/// 2); this uses the same rule. NaN on empty input.
pub fn accuracy_round(p: &[f64], y: &[f64]) -> f64 {
    let n = p.len().min(y.len());
    if n == 0 {
        return f64::NAN;
    }
    let hits = p
        .iter()
        .zip(y)
        .filter(|(&pi, &yi)| pi.round_ties_even() == yi)
        .count();
    hits as f64 / n as f64
}

/// Calibration Σp / Σy: 1 when the predicted click count matches the observed one, above 1 when
/// the model over-predicts. Infinite (or NaN for Σp = 0) when there are no positives.
pub fn calibration(p: &[f64], y: &[f64]) -> f64 {
    let n = p.len().min(y.len());
    p[..n].iter().sum::<f64>() / y[..n].iter().sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values printed by scikit-learn 1.9.1 / scipy 1.17.1 on these exact inputs:
    //   y_true = [1,0,1,1,0,1,0,0,1,1]; y_pred = [1,0,0,1,0,1,1,0,1,0]
    //   accuracy_score -> 0.7, f1_score -> 0.7272727272727273,
    //   matthews_corrcoef -> 0.408248290463863
    const YT: [usize; 10] = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1];
    const YP: [usize; 10] = [1, 0, 0, 1, 0, 1, 1, 0, 1, 0];

    #[test]
    fn classification_metrics_match_sklearn() {
        assert!((accuracy(&YP, &YT) - 0.7).abs() < 1e-12);
        assert!((f1(&YP, &YT) - 0.7272727272727273).abs() < 1e-12);
        assert!((matthews(&YP, &YT) - 0.408248290463863).abs() < 1e-12);
    }

    #[test]
    fn multiclass_mcc_matches_sklearn() {
        // sklearn.metrics.matthews_corrcoef([0,1,2,0,1,2,2],[0,2,2,0,1,1,2]) = 0.5625
        let g = [0, 1, 2, 0, 1, 2, 2];
        let p = [0, 2, 2, 0, 1, 1, 2];
        assert!((matthews(&p, &g) - 0.5625).abs() < 1e-12);
    }

    #[test]
    fn correlations_match_scipy() {
        let x = [0.5, 2.0, 2.0, 3.5, 4.0, 1.0];
        let y = [1.0, 1.5, 3.0, 3.0, 5.0, 0.0];
        // scipy.stats.pearsonr(x, y).statistic = 0.8831474289875583
        assert!(
            (pearson(&x, &y) - 0.8831474289875583).abs() < 1e-12,
            "{}",
            pearson(&x, &y)
        );
        // scipy.stats.spearmanr(x, y).statistic = 0.8970588235294118
        assert!(
            (spearman(&x, &y) - 0.8970588235294118).abs() < 1e-12,
            "{}",
            spearman(&x, &y)
        );
        assert_eq!(
            rank_average(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }

    #[test]
    fn degenerate_inputs_give_zero_not_nan() {
        assert_eq!(matthews(&[1, 1, 1], &[1, 1, 1]), 0.0);
        assert_eq!(pearson(&[1.0, 1.0], &[2.0, 3.0]), 0.0);
        assert_eq!(f1(&[0, 0], &[0, 0]), 0.0);
    }

    // CTR metric references printed by scikit-learn 1.9.1 (numpy 2.4.6) on these exact inputs
    // with `log_loss(y, p)` and `roc_auc_score(y, p)`.
    const P50: [f64; 50] = [
        0.6552, 0.3048, 0.675, 0.1068, 0.5166, 0.4897, 0.6025, 0.37, 0.2567, 0.3742, 0.8256,
        0.1727, 0.2978, 0.6435, 0.7897, 0.9878, 0.8006, 0.4643, 0.539, 0.6255, 0.25, 0.7039,
        0.7163, 0.9795, 0.329, 0.4455, 0.7084, 0.7399, 0.1728, 0.0157, 0.7826, 0.0412, 0.5974,
        0.2457, 0.5565, 0.5152, 0.3975, 0.1826, 0.646, 0.7165, 0.3049, 0.9715, 0.8345, 0.3901,
        0.7049, 0.1255, 0.6078, 0.5491, 0.6999, 0.904,
    ];
    const Y50: [f64; 50] = [
        1., 0., 1., 1., 1., 1., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1., 1., 1., 1., 1., 1., 1., 0.,
        0., 1., 0., 1., 0., 1., 0., 0., 0., 0., 1., 0., 1., 0., 1., 1., 0., 0., 1., 1., 0., 1., 0.,
        1., 0., 1., 1.,
    ];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn log_loss_and_auc_match_sklearn() {
        let cases: [(&[f64], &[f64], f64, f64); 3] = [
            (
                &[0.9, 0.1, 0.8, 0.35, 0.6, 0.2],
                &[1., 0., 1., 1., 0., 0.],
                0.4371868317194842,
                0.888888888888889,
            ),
            // ties across classes
            (
                &[0.5, 0.5, 0.2, 0.8, 0.8, 0.2, 0.5, 0.9],
                &[1., 0., 0., 1., 0., 1., 1., 0.],
                1.0058986952713127,
                0.375,
            ),
            // p = 0 and 1 exactly: the clip decides the loss
            (
                &[0.0, 1.0, 1.0, 0.0, 0.3],
                &[0., 1., 0., 1., 1.],
                14.65825591651205,
                0.49999999999999994,
            ),
        ];
        for (p, y, ll, auc) in cases {
            close(log_loss(p, y), ll);
            close(roc_auc(p, y), auc);
        }
        close(log_loss(&P50, &Y50), 0.7850244797163761);
        close(roc_auc(&P50, &Y50), 0.5642361111111112);
        // The same scores rounded to one decimal by Python's round(p, 1): many ties.
        let p50t = [
            0.7, 0.3, 0.7, 0.1, 0.5, 0.5, 0.6, 0.4, 0.3, 0.4, 0.8, 0.2, 0.3, 0.6, 0.8, 1.0, 0.8,
            0.5, 0.5, 0.6, 0.2, 0.7, 0.7, 1.0, 0.3, 0.4, 0.7, 0.7, 0.2, 0.0, 0.8, 0.0, 0.6, 0.2,
            0.6, 0.5, 0.4, 0.2, 0.6, 0.7, 0.3, 1.0, 0.8, 0.4, 0.7, 0.1, 0.6, 0.5, 0.7, 0.9,
        ];
        close(log_loss(&p50t, &Y50), 1.4218809714347598);
        close(roc_auc(&p50t, &Y50), 0.5815972222222222);
    }

    #[test]
    fn ctr_metric_properties() {
        let y = [0., 1., 1., 0., 1.];
        // log loss of p = 0.5 everywhere is ln 2 (sklearn: 0.6931471805599453)
        close(log_loss(&[0.5; 5], &y), std::f64::consts::LN_2);
        let s = [0.1, 0.7, 0.9, 0.3, 0.8];
        assert_eq!(roc_auc(&s, &y), 1.0);
        let rev: Vec<f64> = s.iter().map(|x| -x).collect();
        assert_eq!(roc_auc(&rev, &y), 0.0);
        assert_eq!(roc_auc(&[0.3; 5], &y), 0.5);
        assert!(roc_auc(&s, &[1.0; 5]).is_nan());
        assert!(roc_auc(&[], &[]).is_nan());
        // 0.5 rounds to 0 (half to even), 0.51 to 1
        assert_eq!(
            accuracy_round(&[0.5, 0.51, 0.49, 0.9], &[0., 1., 0., 0.]),
            0.75
        );
        assert_eq!(accuracy_round(&[0.5], &[1.0]), 0.0);
        close(calibration(&[0.2, 0.4, 0.9], &[0., 1., 1.]), 0.75);
        assert!(calibration(&[0.2], &[0.0]).is_infinite());
    }
}
