//! fairseq's `LanguagePairDataset` batching: sentences ordered by length, grouped so that
//! `sentences × longest ≤ max_tokens`, the source left-padded with positions counted past the
//! padding, the target right-padded, and the decoder fed `</s>` + target.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{EOS, PAD};

/// One sentence pair as dictionary ids, without the `</s>` the batcher appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

impl Pair {
    /// fairseq's `num_tokens`: the longer side, `</s>` included.
    pub fn tokens(&self) -> usize {
        self.src.len().max(self.tgt.len()) + 1
    }
}

/// Indices of the pairs in one batch.
pub type Batch = Vec<usize>;

/// Groups `pairs` into batches of at most `max_tokens` padded tokens (and `max_sentences`
/// sentences). With `rng`, ties in length are broken at random and the batches come out
/// shuffled, as fairseq's epoch iterator does; without it the order is deterministic (for
/// evaluation). A pair longer than `max_tokens` on its own is an error naming it.
pub fn batch_by_size(
    pairs: &[Pair],
    max_tokens: usize,
    max_sentences: usize,
    rng: Option<&mut ChaCha8Rng>,
) -> Result<Vec<Batch>, String> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    let mut rng = rng;
    if let Some(r) = rng.as_deref_mut() {
        order.shuffle(r);
    }
    // fairseq sorts by target length, then (stably) by source length.
    order.sort_by_key(|&i| pairs[i].tgt.len());
    order.sort_by_key(|&i| pairs[i].src.len());
    let mut batches = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        let n = pairs[i].tokens();
        if n > max_tokens {
            return Err(format!(
                "sentence pair {i} has {n} tokens, more than max_tokens {max_tokens}; raise max_tokens or filter long sentences"
            ));
        }
        let l = longest.max(n);
        if !cur.is_empty() && ((cur.len() + 1) * l > max_tokens || cur.len() == max_sentences) {
            batches.push(std::mem::take(&mut cur));
            longest = 0;
        }
        longest = longest.max(n);
        cur.push(i);
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    if let Some(r) = rng {
        batches.shuffle(r);
    }
    Ok(batches)
}

/// A batch on a device.
#[derive(Debug, Clone)]
pub struct TensorBatch {
    /// `[b, s]`, left-padded, each ending in `</s>`.
    pub src: Tensor<2, Int>,
    /// fairseq's `make_positions`: `PAD + 1, PAD + 2, …` over real tokens, `PAD` on padding.
    pub src_pos: Tensor<2, Int>,
    pub src_pad: Tensor<2, Bool>,
    /// `[b, t]`: `</s>` + target without its `</s>`, right-padded.
    pub prev: Tensor<2, Int>,
    /// `[b, t]`: target + `</s>`, right-padded.
    pub target: Tensor<2, Int>,
    pub ntokens: usize,
}

/// Source tensors only (decoding).
pub fn source_tensors(
    srcs: &[&[u32]],
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Bool>) {
    let b = srcs.len();
    let s = srcs.iter().map(|x| x.len() + 1).max().unwrap_or(1);
    let mut tok = vec![PAD as i64; b * s];
    let mut pos = vec![PAD as i64; b * s];
    let mut pad = vec![true; b * s];
    for (r, x) in srcs.iter().enumerate() {
        let off = s - (x.len() + 1);
        for (j, &t) in x.iter().chain(std::iter::once(&(EOS as u32))).enumerate() {
            tok[r * s + off + j] = t as i64;
            pos[r * s + off + j] = (PAD + 1 + j) as i64;
            pad[r * s + off + j] = false;
        }
    }
    (
        Tensor::from_data(TensorData::new(tok, [b, s]), device),
        Tensor::from_data(TensorData::new(pos, [b, s]), device),
        Tensor::from_data(TensorData::new(pad, [b, s]), device),
    )
}

pub fn tensors(pairs: &[Pair], idx: &[usize], device: &Device) -> TensorBatch {
    let srcs: Vec<&[u32]> = idx.iter().map(|&i| pairs[i].src.as_slice()).collect();
    let (src, src_pos, src_pad) = source_tensors(&srcs, device);
    let b = idx.len();
    let t = idx
        .iter()
        .map(|&i| pairs[i].tgt.len() + 1)
        .max()
        .unwrap_or(1);
    let mut prev = vec![PAD as i64; b * t];
    let mut target = vec![PAD as i64; b * t];
    let mut ntokens = 0;
    for (r, &i) in idx.iter().enumerate() {
        let y = &pairs[i].tgt;
        prev[r * t] = EOS as i64;
        for (j, &tok) in y.iter().enumerate() {
            target[r * t + j] = tok as i64;
            prev[r * t + j + 1] = tok as i64;
        }
        target[r * t + y.len()] = EOS as i64;
        ntokens += y.len() + 1;
    }
    TensorBatch {
        src,
        src_pos,
        src_pad,
        prev: Tensor::from_data(TensorData::new(prev, [b, t]), device),
        target: Tensor::from_data(TensorData::new(target, [b, t]), device),
        ntokens,
    }
}
