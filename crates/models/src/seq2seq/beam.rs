//! fairseq's `SequenceGenerator` beam search, on cached incremental decoding.
//!
//! What is kept from fairseq because it changes outputs: the first step expands only the
//! first beam (all beams are identical then); `2·beam` candidates are drawn per sentence and
//! an end-of-sentence among the first `beam` of them is finalised with its score divided by
//! `length^lenpen` (length counting the `</s>`); the next beams are the best `beam`
//! candidates that do not end; a sentence stops once it has `beam` finalised hypotheses;
//! `</s>` is banned before `min_len` and forced at `max_len = min(a·src_len + b,
//! max_positions − 1)` with `src_len` the batch's padded source length; padding is never
//! generated. Finished sentences leave the batch, as fairseq's batch reduction does.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::batch::source_tensors;
use super::{EncoderOut, Projection, Seq2Seq, TokenTable, EOS, PAD};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamConfig {
    pub beam: usize,
    pub len_penalty: f64,
    pub max_len_a: f64,
    pub max_len_b: usize,
    pub min_len: usize,
}

impl Default for BeamConfig {
    /// fairseq-generate's defaults with the papers' beam of 5.
    fn default() -> Self {
        Self {
            beam: 5,
            len_penalty: 1.0,
            max_len_a: 0.0,
            max_len_b: 200,
            min_len: 1,
        }
    }
}

/// A finished translation: ids without the final `</s>`, and its length-normalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    pub score: f64,
}

fn select_enc(enc: &EncoderOut, index: &Tensor<1, Int>) -> EncoderOut {
    EncoderOut {
        x: enc.x.clone().select(0, index.clone()),
        key_bias: enc.key_bias.clone().select(0, index.clone()),
    }
}

/// The `k` best entries of every row, best first (ties: lower index first), as host vectors
/// `[rows·k]`. On the host: flex's `topk` sorts whole rows (121 ms for 100 × 15,000
/// candidates) where copying them out and a linear-time selection take ~2 ms.
fn top_k(x: Tensor<2>, k: usize) -> (Vec<f32>, Vec<i64>) {
    let [rows, width] = x.dims();
    let v: Vec<f32> = x
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    let mut vals = Vec::with_capacity(rows * k);
    let mut idx = Vec::with_capacity(rows * k);
    let mut order: Vec<u32> = Vec::with_capacity(width);
    for r in 0..rows {
        let row = &v[r * width..(r + 1) * width];
        order.clear();
        order.extend(0..width as u32);
        let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
        if k < width {
            order.select_nth_unstable_by(k, cmp);
        }
        let top = &mut order[..k];
        top.sort_by(cmp);
        for &i in top.iter() {
            vals.push(row[i as usize]);
            idx.push(i as i64);
        }
    }
    (vals, idx)
}

fn index(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(v, [rows.len()]), device)
}

/// The best hypothesis per source sentence (`srcs` without `</s>`). Run on a model in
/// inference mode (`model.valid()`), where dropout is off.
pub fn beam_search<P: Projection, T: TokenTable>(
    model: &Seq2Seq<P, T>,
    srcs: &[&[u32]],
    cfg: &BeamConfig,
    device: &Device,
) -> Vec<Hypothesis> {
    let n = srcs.len();
    if n == 0 {
        return Vec::new();
    }
    let beam = cfg.beam.max(1);
    let (src, pos, pad) = source_tensors(srcs, device);
    let src_len = src.dims()[1];
    let max_positions = model.decoder.positions.val().dims()[0] - PAD - 1;
    let max_len =
        ((cfg.max_len_a * src_len as f64) as usize + cfg.max_len_b).min(max_positions - 1);
    let enc = model.encode(src, pos, pad);
    // Every sentence's encoder output repeated for its beams: row = sentence·beam + k.
    let rows: Vec<usize> = (0..n).flat_map(|s| std::iter::repeat_n(s, beam)).collect();
    let mut enc = select_enc(&enc, &index(&rows, device));
    let mut caches = model.new_caches();
    let vocab = model.decoder.embed.table().dims()[0];

    let mut active: Vec<usize> = (0..n).collect(); // sentence ids still decoding
    let mut history: Vec<Vec<u32>> = vec![Vec::new(); n * beam];
    let mut scores: Vec<f32> = vec![0.0; n * beam];
    let mut finalized: Vec<Vec<Hypothesis>> = vec![Vec::new(); n];
    let mut last: Vec<i64> = vec![EOS as i64; n * beam];

    for step in 0..=max_len {
        let a = active.len();
        let r = a * beam;
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(last.clone(), [r, 1]), device);
        let lprobs = model.step(&enc, tokens, step, &mut caches);
        // Bans as an additive row: padding always; </s> before min_len; all but </s> at max_len.
        let mut ban = vec![0f32; vocab];
        ban[PAD] = f32::NEG_INFINITY;
        if step < cfg.min_len {
            ban[EOS] = f32::NEG_INFINITY;
        }
        if step >= max_len {
            for (t, b) in ban.iter_mut().enumerate() {
                if t != EOS {
                    *b = f32::NEG_INFINITY;
                }
            }
        }
        let ban = Tensor::<2>::from_data(TensorData::new(ban, [1, vocab]), device);
        let sc = Tensor::<2>::from_data(TensorData::new(scores.clone(), [r, 1]), device);
        let cand = (lprobs + ban + sc).reshape([a, beam, vocab]);
        let cand = if step == 0 {
            cand.narrow(1, 0, 1).reshape([a, vocab])
        } else {
            cand.reshape([a, beam * vocab])
        };
        let k = (2 * beam).min(cand.dims()[1]);
        let (vals, idx) = top_k(cand, k);

        let mut next_rows = Vec::new(); // previous-row index of every surviving beam
        let mut next_active = Vec::new();
        let mut next_history = Vec::new();
        let mut next_scores = Vec::new();
        let mut next_last = Vec::new();
        for (ai, &sent) in active.iter().enumerate() {
            let mut chosen = Vec::with_capacity(beam);
            for c in 0..k {
                let (v, flat) = (vals[ai * k + c], idx[ai * k + c] as usize);
                if v == f32::NEG_INFINITY {
                    continue;
                }
                let (b, tok) = (flat / vocab, flat % vocab);
                let row = ai * beam + b;
                if tok == EOS {
                    if c < beam && finalized[sent].len() < beam {
                        let len = (step + 1) as f64;
                        finalized[sent].push(Hypothesis {
                            tokens: history[row].clone(),
                            score: v as f64 / len.powf(cfg.len_penalty),
                        });
                    }
                } else if chosen.len() < beam {
                    chosen.push((row, tok, v));
                }
            }
            if finalized[sent].len() >= beam || step >= max_len || chosen.len() < beam {
                // Done (or, defensively, no way to fill the beam: keep what was finalised).
                continue;
            }
            next_active.push(sent);
            for (row, tok, v) in chosen {
                next_rows.push(row);
                let mut h = history[row].clone();
                h.push(tok as u32);
                next_history.push(h);
                next_scores.push(v);
                next_last.push(tok as i64);
            }
        }
        if next_active.is_empty() {
            break;
        }
        let sel = index(&next_rows, device);
        let removed = next_active.len() != active.len();
        for c in caches.iter_mut() {
            if removed {
                c.select(&sel);
            } else {
                c.select_self(&sel);
            }
        }
        if removed {
            enc = select_enc(&enc, &sel);
        }
        active = next_active;
        history = next_history;
        scores = next_scores;
        last = next_last;
    }
    finalized
        .into_iter()
        .map(|mut f| {
            // fairseq sorts finalised hypotheses by score (stable for ties).
            f.sort_by(|a, b| {
                b.score
                    .partial_cmp(&a.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            f.into_iter().next().unwrap_or(Hypothesis {
                tokens: Vec::new(),
                score: f64::NEG_INFINITY,
            })
        })
        .collect()
}
