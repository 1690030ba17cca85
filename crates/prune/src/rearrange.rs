//! Mask rearrangement (spec §5): within each (layer, unit type) block, keep the number of pruned
//! units the search chose, but pick them to minimise the block-diagonal Fisher objective
//! `|| sum_{i in P} G_i ||²`, where `G_i` is unit i's vector of mini-batch gradients.

use crate::{MaskGrads, Masks};

/// Greedy of the official `prune/rearrange.py` on one block. `g[i]` = gradients of unit i over
/// the batches; `k` = units to prune. Returns the pruned set (sorted).
pub fn rearrange_block(g: &[Vec<f64>], k: usize) -> Vec<usize> {
    let n = g.len();
    if k == 0 || k >= n {
        return if k == 0 { vec![] } else { (0..n).collect() };
    }
    let sq = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| sq(&g[a]).total_cmp(&sq(&g[b])).then(a.cmp(&b)));
    let dims = g[0].len();
    let mut pruned: Vec<usize> = order[..k].to_vec();
    let mut sum = vec![0.0; dims];
    for &i in &pruned {
        for (s, x) in sum.iter_mut().zip(&g[i]) {
            *s += x;
        }
    }
    for &j in &order[k..] {
        pruned.push(j);
        for (s, x) in sum.iter_mut().zip(&g[j]) {
            *s += x;
        }
        // Remove the unit whose removal leaves the smallest objective (first minimum on ties).
        let mut best = (f64::MAX, 0usize);
        for (pos, &r) in pruned.iter().enumerate() {
            let c: f64 = sum.iter().zip(&g[r]).map(|(s, x)| (s - x) * (s - x)).sum();
            if c < best.0 {
                best = (c, pos);
            }
        }
        let r = pruned.remove(best.1);
        for (s, x) in sum.iter_mut().zip(&g[r]) {
            *s -= x;
        }
    }
    pruned.sort();
    pruned
}

/// Block objective `|| sum_{i in P} G_i ||²`.
pub fn block_objective(g: &[Vec<f64>], pruned: &[usize]) -> f64 {
    let dims = g.first().map_or(0, |v| v.len());
    (0..dims)
        .map(|d| pruned.iter().map(|&i| g[i][d]).sum::<f64>().powi(2))
        .sum()
}

/// Unit gradient vectors of one block from the per-batch gradients.
fn block(per_batch: &[Vec<Vec<f32>>], l: usize) -> Vec<Vec<f64>> {
    let n = per_batch[0][l].len();
    (0..n)
        .map(|i| per_batch.iter().map(|b| b[l][i] as f64).collect())
        .collect()
}

/// Rearranges every layer's heads and neurons of a searched (binary) mask.
pub fn rearrange(masks: &Masks, grads: &MaskGrads) -> Masks {
    let mut out = masks.clone();
    let apply = |mask: &mut Vec<Vec<f32>>, per_batch: &[Vec<Vec<f32>>]| {
        for l in 0..mask.len() {
            let k = mask[l].iter().filter(|&&m| m == 0.0).count();
            let pruned = rearrange_block(&block(per_batch, l), k);
            let new: Vec<f32> = (0..mask[l].len())
                .map(|i| if pruned.contains(&i) { 0.0 } else { 1.0 })
                .collect();
            mask[l] = new;
        }
    };
    apply(&mut out.head, &grads.head);
    apply(&mut out.neuron, &grads.neuron);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_of_the_spec() {
        let g = vec![vec![1.0, 0.0], vec![-1.1, 0.0], vec![0.0, 0.6]];
        let before = block_objective(&g, &[0, 2]);
        assert!((before - 1.36).abs() < 1e-12);
        let p = rearrange_block(&g, 2);
        assert_eq!(p, vec![0, 1]);
        assert!((block_objective(&g, &p) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn count_kept_and_objective_never_increases() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..50 {
            let n = rng.random_range(2..20);
            let k = rng.random_range(0..=n);
            let g: Vec<Vec<f64>> = (0..n)
                .map(|_| (0..4).map(|_| rng.random_range(-1.0..1.0)).collect())
                .collect();
            let mut order: Vec<usize> = (0..n).collect();
            let sq = |v: &Vec<f64>| v.iter().map(|x| x * x).sum::<f64>();
            order.sort_by(|&a, &b| sq(&g[a]).total_cmp(&sq(&g[b])));
            let diag: Vec<usize> = order[..k].to_vec();
            let p = rearrange_block(&g, k);
            assert_eq!(p.len(), k);
            assert!(block_objective(&g, &p) <= block_objective(&g, &diag) + 1e-12);
        }
    }
}
