//! GLUE task metrics, matching scikit-learn (accuracy_score, f1_score, matthews_corrcoef) and
//! scipy (pearsonr, spearmanr with average ranks for ties), and CTR metrics (log loss, ROC AUC,
//! accuracy and calibration of click probabilities) matching scikit-learn and DLRM.
//!
//! A metric over zero examples, over inputs of different lengths, or with a NaN (or infinite)
//! input is an error ([`DataError::Metric`]), never a number: a 0 from an empty dev file or a
//! finite Spearman from a NaN gold score would pass for a result.

use crate::DataError;

fn metric_err(metric: &'static str, msg: String) -> DataError {
    DataError::Metric { metric, msg }
}

/// The common length of `a` and `b`; an error when they differ or are empty.
fn check_len(metric: &'static str, a: usize, b: usize) -> Result<usize, DataError> {
    if a != b {
        return Err(metric_err(
            metric,
            format!("{a} predictions but {b} gold values; score each example once"),
        ));
    }
    if a == 0 {
        return Err(metric_err(
            metric,
            "no examples to score: the evaluation set is empty (check that the dev file has \
             rows and that no subset option cut it to 0)"
                .into(),
        ));
    }
    Ok(a)
}

/// An error naming the first non-finite value of `xs` (`what`: "prediction", "gold value").
fn check_finite(metric: &'static str, what: &str, xs: &[f64]) -> Result<(), DataError> {
    match xs.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(metric_err(
            metric,
            format!(
                "{what} {} of {} is {}: a metric over a non-finite value is undefined; \
                 check the labels (gold) or the model (predictions)",
                i + 1,
                xs.len(),
                xs[i]
            ),
        )),
    }
}

/// Both inputs: same non-zero length, every value finite.
fn check_real(metric: &'static str, pred: &[f64], gold: &[f64]) -> Result<usize, DataError> {
    let n = check_len(metric, pred.len(), gold.len())?;
    check_finite(metric, "prediction", pred)?;
    check_finite(metric, "gold value", gold)?;
    Ok(n)
}

/// Fraction of equal labels.
pub fn accuracy(pred: &[usize], gold: &[usize]) -> Result<f64, DataError> {
    let n = check_len("accuracy", pred.len(), gold.len())?;
    Ok(pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / n as f64)
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

/// Binary F1 of the positive class 1 (sklearn's default `pos_label=1`; 0 when there are no
/// positives among predictions and gold).
pub fn f1(pred: &[usize], gold: &[usize]) -> Result<f64, DataError> {
    check_len("f1", pred.len(), gold.len())?;
    let (tp, _, fp, fneg) = confusion(pred, gold);
    let denom = 2.0 * tp + fp + fneg;
    Ok(if denom == 0.0 { 0.0 } else { 2.0 * tp / denom })
}

/// Matthews correlation for any number of classes (sklearn's multiclass formula); 0 when
/// predictions or gold are constant.
pub fn matthews(pred: &[usize], gold: &[usize]) -> Result<f64, DataError> {
    check_len("mcc", pred.len(), gold.len())?;
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
    Ok(if cov_ypyp * cov_ytyt == 0.0 {
        0.0
    } else {
        cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
    })
}

/// Pearson correlation coefficient; 0 when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64, DataError> {
    check_real("pearson", x, y)?;
    Ok(pearson_unchecked(x, y))
}

fn pearson_unchecked(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
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

/// Spearman rank correlation (Pearson of average ranks). A NaN would get a rank (after every
/// number) and give a finite, wrong correlation, so it is an error here.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64, DataError> {
    check_real("spearman", x, y)?;
    Ok(pearson_unchecked(&rank_average(x), &rank_average(y)))
}

/// Mean binary cross-entropy of probabilities `p` against labels `y` (natural log), as
/// scikit-learn >= 1.5 computes `log_loss(y, p)`: each probability is clipped to
/// `[eps, 1 - eps]` with `eps = f64::EPSILON` (numpy's `finfo(float64).eps`), so a confident
/// wrong prediction costs ~36 nats instead of infinity. Older scikit-learn clipped to 1e-15,
/// which gives ~34.5 nats there instead; the two agree wherever `1e-15 < p < 1 - 1e-15`, which
/// a sigmoid output in f32 always satisfies. (DLRM's training loss clamps at 1e-9 instead: that
/// is a loss choice, not the reported metric.) Labels may be fractional. An error on empty
/// input, different lengths or a NaN.
pub fn log_loss(p: &[f64], y: &[f64]) -> Result<f64, DataError> {
    let eps = f64::EPSILON;
    let n = check_real("log loss", p, y)?;
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
    Ok(sum / n as f64)
}

/// Area under the ROC curve, as scikit-learn's `roc_auc_score`: the trapezoid over the curve's
/// points at each distinct score, so tied scores count half (the Mann-Whitney statistic with
/// average ranks). A label counts as positive when it is >= 0.5. Constant scores give 0.5. With
/// only one class present the AUC is undefined and this returns NaN, where scikit-learn raises:
/// a NaN in a results table is visible, a 0.5 would pass as "chance". No rows, different
/// lengths or a NaN input are errors.
pub fn roc_auc(scores: &[f64], labels: &[f64]) -> Result<f64, DataError> {
    let n = check_real("AUC", scores, labels)?;
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
        return Ok(f64::NAN);
    }
    let mut area = 0.0;
    for w in points.windows(2) {
        let (x0, y0) = (w[0].0 / fps, w[0].1 / tps);
        let (x1, y1) = (w[1].0 / fps, w[1].1 / tps);
        area += (x1 - x0) * (y0 + y1) / 2.0;
    }
    Ok(area)
}

/// Fraction of rows where `round(p)` equals the label, as DLRM reports accuracy
/// (`np.round(p) == y`). numpy rounds half to even, so p = 0.5 predicts 0 (and 1.5 would give
/// 2); this uses the same rule. An error on empty input, different lengths or a NaN.
pub fn accuracy_round(p: &[f64], y: &[f64]) -> Result<f64, DataError> {
    let n = check_real("accuracy", p, y)?;
    let hits = p
        .iter()
        .zip(y)
        .filter(|(&pi, &yi)| pi.round_ties_even() == yi)
        .count();
    Ok(hits as f64 / n as f64)
}

/// Calibration Σp / Σy: 1 when the predicted click count matches the observed one, above 1 when
/// the model over-predicts. Infinite (or NaN for Σp = 0) when there are no positives; an error
/// on empty input, different lengths or a NaN.
pub fn calibration(p: &[f64], y: &[f64]) -> Result<f64, DataError> {
    check_real("calibration", p, y)?;
    Ok(p.iter().sum::<f64>() / y.iter().sum::<f64>())
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
        assert!((accuracy(&YP, &YT).unwrap() - 0.7).abs() < 1e-12);
        assert!((f1(&YP, &YT).unwrap() - 0.7272727272727273).abs() < 1e-12);
        assert!((matthews(&YP, &YT).unwrap() - 0.408248290463863).abs() < 1e-12);
    }

    #[test]
    fn multiclass_mcc_matches_sklearn() {
        // sklearn.metrics.matthews_corrcoef([0,1,2,0,1,2,2],[0,2,2,0,1,1,2]) = 0.5625
        let g = [0, 1, 2, 0, 1, 2, 2];
        let p = [0, 2, 2, 0, 1, 1, 2];
        assert!((matthews(&p, &g).unwrap() - 0.5625).abs() < 1e-12);
    }

    #[test]
    fn correlations_match_scipy() {
        let x = [0.5, 2.0, 2.0, 3.5, 4.0, 1.0];
        let y = [1.0, 1.5, 3.0, 3.0, 5.0, 0.0];
        // scipy.stats.pearsonr(x, y).statistic = 0.8831474289875583
        assert!(
            (pearson(&x, &y).unwrap() - 0.8831474289875583).abs() < 1e-12,
            "{}",
            pearson(&x, &y).unwrap()
        );
        // scipy.stats.spearmanr(x, y).statistic = 0.8970588235294118
        assert!(
            (spearman(&x, &y).unwrap() - 0.8970588235294118).abs() < 1e-12,
            "{}",
            spearman(&x, &y).unwrap()
        );
        assert_eq!(
            rank_average(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }

    #[test]
    fn degenerate_inputs_give_zero_not_nan() {
        assert_eq!(matthews(&[1, 1, 1], &[1, 1, 1]).unwrap(), 0.0);
        assert_eq!(pearson(&[1.0, 1.0], &[2.0, 3.0]).unwrap(), 0.0);
        assert_eq!(f1(&[0, 0], &[0, 0]).unwrap(), 0.0);
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
            close(log_loss(p, y).unwrap(), ll);
            close(roc_auc(p, y).unwrap(), auc);
        }
        close(log_loss(&P50, &Y50).unwrap(), 0.7850244797163761);
        close(roc_auc(&P50, &Y50).unwrap(), 0.5642361111111112);
        // The same scores rounded to one decimal by Python's round(p, 1): many ties.
        let p50t = [
            0.7, 0.3, 0.7, 0.1, 0.5, 0.5, 0.6, 0.4, 0.3, 0.4, 0.8, 0.2, 0.3, 0.6, 0.8, 1.0, 0.8,
            0.5, 0.5, 0.6, 0.2, 0.7, 0.7, 1.0, 0.3, 0.4, 0.7, 0.7, 0.2, 0.0, 0.8, 0.0, 0.6, 0.2,
            0.6, 0.5, 0.4, 0.2, 0.6, 0.7, 0.3, 1.0, 0.8, 0.4, 0.7, 0.1, 0.6, 0.5, 0.7, 0.9,
        ];
        close(log_loss(&p50t, &Y50).unwrap(), 1.4218809714347598);
        close(roc_auc(&p50t, &Y50).unwrap(), 0.5815972222222222);
    }

    #[test]
    fn ctr_metric_properties() {
        let y = [0., 1., 1., 0., 1.];
        // log loss of p = 0.5 everywhere is ln 2 (sklearn: 0.6931471805599453)
        close(log_loss(&[0.5; 5], &y).unwrap(), std::f64::consts::LN_2);
        let s = [0.1, 0.7, 0.9, 0.3, 0.8];
        assert_eq!(roc_auc(&s, &y).unwrap(), 1.0);
        let rev: Vec<f64> = s.iter().map(|x| -x).collect();
        assert_eq!(roc_auc(&rev, &y).unwrap(), 0.0);
        assert_eq!(roc_auc(&[0.3; 5], &y).unwrap(), 0.5);
        assert!(roc_auc(&s, &[1.0; 5]).unwrap().is_nan());
        assert!(roc_auc(&[], &[]).is_err());
        // 0.5 rounds to 0 (half to even), 0.51 to 1
        assert_eq!(
            accuracy_round(&[0.5, 0.51, 0.49, 0.9], &[0., 1., 0., 0.]).unwrap(),
            0.75
        );
        assert_eq!(accuracy_round(&[0.5], &[1.0]).unwrap(), 0.0);
        close(calibration(&[0.2, 0.4, 0.9], &[0., 1., 1.]).unwrap(), 0.75);
        assert!(calibration(&[0.2], &[0.0]).unwrap().is_infinite());
    }

    /// Issue 35: a `nan` STS-B gold score gave a finite, wrong Spearman (the NaN was ranked
    /// after every number), and an empty dev set gave accuracy 0. Both are errors now.
    #[test]
    fn nan_or_empty_inputs_are_errors_not_numbers() {
        let pred = [0.5, 2.0, 2.0, 3.5, 4.0, 1.0];
        let gold = [1.0, 1.5, f64::NAN, 3.0, 5.0, 0.0];
        for (name, r) in [
            ("spearman", spearman(&pred, &gold)),
            ("pearson", pearson(&pred, &gold)),
            ("spearman", spearman(&gold, &pred)),
        ] {
            let e = r
                .expect_err("a NaN input must not give a number")
                .to_string();
            assert!(
                e.starts_with(name) && e.contains("3 of 6") && e.contains("NaN"),
                "{e}"
            );
        }
        let e = accuracy(&[], &[]).unwrap_err().to_string();
        assert!(e.contains("no examples"), "{e}");
        assert!(f1(&[], &[]).is_err());
        assert!(matthews(&[], &[]).is_err());
        assert!(pearson(&[], &[]).is_err());
        assert!(spearman(&[], &[]).is_err());
        assert!(accuracy(&[1, 0], &[1]).is_err());
        assert!(log_loss(&[], &[]).is_err());
        assert!(accuracy_round(&[], &[]).is_err());
        assert!(calibration(&[], &[]).is_err());
        assert!(log_loss(&[f64::NAN, 0.5], &[1.0, 0.0]).is_err());
        assert!(roc_auc(&[0.1, 0.9], &[0.0, f64::NAN]).is_err());
        assert!(accuracy_round(&[0.1, f64::INFINITY], &[0.0, 1.0]).is_err());
        assert!(calibration(&[0.1, 0.9], &[f64::NAN, 1.0]).is_err());
    }
}
