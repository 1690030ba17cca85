//! Row splits: DLRM's day split of the Kaggle file, a seeded random split for samples, and the
//! DNAS weights/architecture split.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// The Kaggle file's 7 "days" as DLRM cuts them: near-equal contiguous parts, the first
/// `n % 7` one row longer. The real file is chronological, so these approximate calendar days.
pub fn day_sizes(n: usize) -> [usize; 7] {
    let (base, extra) = (n / 7, n % 7);
    std::array::from_fn(|k| base + usize::from(k < extra))
}

/// Row ranges of DLRM's `data_split="train"` layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySplit {
    pub train: Range<usize>,
    pub val: Range<usize>,
    pub test: Range<usize>,
}

/// DLRM's Kaggle split: train = days 0-5; day 6 is halved in order with `np.array_split`, and
/// the FIRST half (the larger one when odd) is test, the second val. Easy to swap by mistake
/// (spec pitfall 6), which would make reported test numbers incomparable with DLRM's.
pub fn dlrm_split(n: usize) -> DaySplit {
    let d = day_sizes(n);
    let train_end: usize = d[..6].iter().sum();
    let test_end = train_end + d[6].div_ceil(2);
    DaySplit {
        train: 0..train_end,
        test: train_end..test_end,
        val: test_end..n,
    }
}

/// Splits `0..n` into parts of the given sizes (e.g. `[8000, 1000, 1000]`) by a seeded partial
/// Fisher-Yates shuffle (ChaCha8, so the same seed gives the same split on every platform).
/// Rows beyond `sizes.iter().sum()` are left out. Each part is returned sorted, so reading it
/// from a cache goes forward through the file and keeps the data's chronological order (as
/// DLRM keeps val/test order); shuffle per epoch in the trainer.
pub fn random_split(n: usize, sizes: &[usize], seed: u64) -> Result<Vec<Vec<usize>>, DataError> {
    let total = sizes
        .iter()
        .try_fold(0usize, |a, &s| a.checked_add(s))
        .unwrap_or(usize::MAX);
    if total > n {
        return Err(DataError::Invalid(format!(
            "random_split: parts {sizes:?} add up to {total} rows, but there are only {n}; shrink them"
        )));
    }
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..total.min(n.saturating_sub(1)) {
        let j = rng.random_range(i..n);
        perm.swap(i, j);
    }
    let mut parts = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &s in sizes {
        let mut p = perm[at..at + s].to_vec();
        p.sort_unstable();
        parts.push(p);
        at += s;
    }
    Ok(parts)
}

/// DNAS's supernet data split (`dnas_data_utils.py`): each row independently goes to the
/// "weights" set with probability `p_weights` (0.8 in the paper), else to the "architecture"
/// set, by a seeded Bernoulli draw; both keep the input order, since DNAS's loaders do not
/// shuffle. A `p_weights` outside [0, 1] acts as the nearest bound (NaN as 0).
pub fn weights_arch_split(rows: &[usize], p_weights: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cap = (rows.len() as f64 * p_weights.clamp(0.0, 1.0)) as usize;
    let mut weights = Vec::with_capacity(cap + 16);
    let mut arch = Vec::with_capacity(rows.len().saturating_sub(cap) + 16);
    for &r in rows {
        if rng.random::<f64>() < p_weights {
            weights.push(r);
        } else {
            arch.push(r);
        }
    }
    (weights, arch)
}
