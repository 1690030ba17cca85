//! The top-k cascade baseline (SpAtten-style, spec §8).

/// Keep rate of layer `l` (0-based) for final rate `r`: the first `L0 = max(3, ceil(0.15 L))`
/// layers keep everything, then the rate falls linearly to `r` at the last layer, floored at 0.01.
pub fn keep_rate(l: usize, layers: usize, r: f64) -> f64 {
    let l0 = 3usize.max((0.15 * layers as f64).ceil() as usize);
    if l < l0 || layers <= l0 {
        return 1.0;
    }
    let rate = 1.0 + (r - 1.0) * (l - l0 + 1) as f64 / (layers - l0) as f64;
    rate.max(0.01)
}

/// PyTorch's `round`: halves go to the even neighbour.
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// Tokens kept at layer `l` for an example of original (unpadded) length `n`.
pub fn kept_count(n: usize, l: usize, layers: usize, r: f64) -> usize {
    round_half_even(n as f64 * keep_rate(l, layers, r)).max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_and_rounding() {
        // 12 layers: L0 = 3, layers 0-2 keep all, the last keeps r.
        for l in 0..3 {
            assert_eq!(keep_rate(l, 12, 0.3), 1.0);
        }
        assert!((keep_rate(11, 12, 0.3) - 0.3).abs() < 1e-12);
        assert!((keep_rate(3, 12, 0.3) - (1.0 - 0.7 / 9.0)).abs() < 1e-12);
        assert_eq!(keep_rate(11, 12, -5.0), 0.01);
        // Rate non-increasing over layers.
        for l in 1..12 {
            assert!(keep_rate(l, 12, 0.5) <= keep_rate(l - 1, 12, 0.5));
        }
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(-2.5), -2.0);
        // n = 10, r = 0.5 at the last layer -> 5; 6 layers: L0 = 3.
        assert_eq!(kept_count(10, 5, 6, 0.5), 5);
        assert_eq!(kept_count(10, 0, 6, 0.5), 10);
        // 10 * (1 - 0.5 * 1/3) = 8.33 -> 8.
        assert_eq!(kept_count(10, 3, 6, 0.5), 8);
    }
}
