//! GLUE task metrics, matching scikit-learn (accuracy_score, f1_score, matthews_corrcoef) and
//! scipy (pearsonr, spearmanr with average ranks for ties).

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
}
