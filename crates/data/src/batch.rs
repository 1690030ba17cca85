//! Dynamic padding: each batch is padded to its own longest sequence, not a global maximum.

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// One encoded example.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
}

/// A padded batch in row-major layout (`batch * seq` values per field).
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
    pub mask: Vec<i64>,
    pub labels: Vec<f32>,
    pub batch: usize,
    pub seq: usize,
    /// Positions of these examples in the input order.
    pub index: Vec<usize>,
    /// Gold (start, end) token per example for span tasks (SQuAD); empty otherwise.
    pub spans: Vec<(usize, usize)>,
}

impl Batch {
    pub fn real_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m == 1).count()
    }
}

/// Pads `items[order]` to the longest in each batch. `pad_to` (if set) pads to a fixed length
/// instead (for benchmarks). Missing labels become NaN.
pub fn pad(
    items: &[(&Encoded, Option<f32>)],
    index: Vec<usize>,
    pad_id: i64,
    pad_to: Option<usize>,
) -> Batch {
    let seq = pad_to
        .unwrap_or_else(|| items.iter().map(|(e, _)| e.ids.len()).max().unwrap_or(1))
        .max(1);
    let b = items.len();
    let mut ids = vec![pad_id; b * seq];
    let mut type_ids = vec![0; b * seq];
    let mut mask = vec![0; b * seq];
    for (r, (e, _)) in items.iter().enumerate() {
        let n = e.ids.len().min(seq);
        ids[r * seq..r * seq + n].copy_from_slice(&e.ids[..n]);
        type_ids[r * seq..r * seq + n].copy_from_slice(&e.type_ids[..n]);
        mask[r * seq..r * seq + n].iter_mut().for_each(|m| *m = 1);
    }
    Batch {
        ids,
        type_ids,
        mask,
        labels: items.iter().map(|(_, l)| l.unwrap_or(f32::NAN)).collect(),
        batch: b,
        seq,
        index,
        spans: Vec::new(),
    }
}

/// Splits examples into batches. With `shuffle_seed` the order is a seeded permutation
/// (training); without it the input order is kept (evaluation). With `group_by_length`,
/// examples of similar length share a batch (HF's `LengthGroupedSampler`: sort within
/// mega-batches of 50 batches, then shuffle the batches), which cuts padding several-fold on
/// pair tasks; outputs are mapped back through `Batch::index`.
pub fn make_batches_grouped(
    encoded: &[Encoded],
    labels: &[Option<f32>],
    batch_size: usize,
    pad_id: i64,
    shuffle_seed: Option<u64>,
    group_by_length: bool,
) -> Vec<Batch> {
    let bs = batch_size.max(1);
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(shuffle_seed.unwrap_or(0));
    if shuffle_seed.is_some() {
        order.shuffle(&mut rng);
    }
    if group_by_length {
        let mega = if shuffle_seed.is_some() {
            50 * bs
        } else {
            order.len().max(1)
        };
        for chunk in order.chunks_mut(mega) {
            chunk.sort_by_key(|&i| std::cmp::Reverse(encoded[i].ids.len()));
        }
    }
    let mut chunks: Vec<Vec<usize>> = order.chunks(bs).map(|c| c.to_vec()).collect();
    if group_by_length && shuffle_seed.is_some() {
        chunks.shuffle(&mut rng);
    }
    chunks
        .into_iter()
        .map(|chunk| {
            let items: Vec<(&Encoded, Option<f32>)> =
                chunk.iter().map(|&i| (&encoded[i], labels[i])).collect();
            pad(&items, chunk, pad_id, None)
        })
        .collect()
}

/// [`make_batches_grouped`] without length grouping.
pub fn make_batches(
    encoded: &[Encoded],
    labels: &[Option<f32>],
    batch_size: usize,
    pad_id: i64,
    shuffle_seed: Option<u64>,
) -> Vec<Batch> {
    make_batches_grouped(encoded, labels, batch_size, pad_id, shuffle_seed, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_each_batch_to_its_longest() {
        let e = |n: usize| Encoded {
            ids: (1..=n as i64).collect(),
            type_ids: vec![0; n],
        };
        let enc = vec![e(3), e(5), e(2)];
        let labels = vec![Some(1.0), Some(0.0), None];
        let b = make_batches(&enc, &labels, 2, 0, None);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].batch, b[0].seq), (2, 5));
        assert_eq!(&b[0].ids[..5], &[1, 2, 3, 0, 0]);
        assert_eq!(&b[0].mask[..5], &[1, 1, 1, 0, 0]);
        assert_eq!((b[1].batch, b[1].seq), (1, 2));
        assert!(b[1].labels[0].is_nan());
        let shuffled = make_batches(&enc, &labels, 3, 0, Some(7));
        let mut idx = shuffled[0].index.clone();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2]);
        // Grouped evaluation batches: longest first, every example exactly once.
        let g = make_batches_grouped(&enc, &labels, 2, 0, None, true);
        assert_eq!(g[0].index, vec![1, 0]);
        assert_eq!((g[0].seq, g[1].seq), (5, 2));
    }
}
