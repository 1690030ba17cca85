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
//!
//! What differs from fairseq without changing outputs (beyond float rounding): the encoder output
//! is kept once per sentence, not repeated per beam ([`EncoderOut::beams`]), so a sentence's
//! beams share one cross-attention key/value cache and attend to it as one product; and the
//! `2·beam` candidates are picked on the host in one pass over the log-probabilities, with
//! fairseq's order of additions, rather than by adding scores on the device and sorting.

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
        beams: enc.beams,
    }
}

/// The `k` best candidates of one sentence, best first, ties to the lower flat index (what a
/// stable sort of every candidate would give): candidate `b·V + t` scores
/// `(lprobs[b][t] + ban[t]) + scores[b]` (fairseq's order of additions) over the sentence's
/// `scores.len()` beams; a NaN log-probability counts as −∞, as fairseq sets it. One pass with
/// a running threshold on the host, where the model's log-probabilities are read anyway: no
/// `[rows, V]` tensors for the sums and no sort of all `beam·V` candidates (that sort was an
/// eighth of flex's decoding time).
fn best_candidates(
    lprobs: &[f32],
    scores: &[f32],
    ban: &[f32],
    k: usize,
    out: &mut Vec<(f32, usize)>,
) {
    let vocab = ban.len();
    out.clear();
    for (b, &s) in scores.iter().enumerate() {
        let row = &lprobs[b * vocab..(b + 1) * vocab];
        for (t, (&lp, &bn)) in row.iter().zip(ban).enumerate() {
            let lp = if lp.is_nan() { f32::NEG_INFINITY } else { lp };
            let v = (lp + bn) + s;
            // Only a strictly better candidate displaces the worst kept one.
            if out.len() == k && v.partial_cmp(&out[k - 1].0) != Some(std::cmp::Ordering::Greater) {
                continue;
            }
            // After every kept candidate at least as good (they have lower indices).
            let at = out.partition_point(|&(w, _)| w >= v);
            if out.len() == k {
                out.pop();
            }
            out.insert(at, (v, b * vocab + t));
        }
    }
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
    beam_search_observed(model, srcs, cfg, device, |_| {})
}

/// [`beam_search`], calling `on_step(active)` before every decoder step with the number of
/// sentences still in the batch (for progress displays, and for tests that must see sentences
/// leave).
pub fn beam_search_observed<P: Projection, T: TokenTable>(
    model: &Seq2Seq<P, T>,
    srcs: &[&[u32]],
    cfg: &BeamConfig,
    device: &Device,
    mut on_step: impl FnMut(usize),
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
    // Decoder row sentence·beam + k reads encoder row `sentence` (one copy per sentence).
    let mut enc = model.encode(src, pos, pad);
    enc.beams = beam;
    let mut caches = model.new_caches();
    let vocab = model.target_table().table().dims()[0];

    let mut active: Vec<usize> = (0..n).collect(); // sentence ids still decoding
    let mut history: Vec<Vec<u32>> = vec![Vec::new(); n * beam];
    let mut scores: Vec<f32> = vec![0.0; n * beam];
    let mut finalized: Vec<Vec<Hypothesis>> = vec![Vec::new(); n];
    let mut last: Vec<i64> = vec![EOS as i64; n * beam];

    for step in 0..=max_len {
        let a = active.len();
        on_step(a);
        let r = a * beam;
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(last.clone(), [r, 1]), device);
        let lprobs: Vec<f32> = model
            .step(&enc, tokens, step, &mut caches)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
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
        // The first step expands only each sentence's first beam (all are identical then).
        let live = if step == 0 { 1 } else { beam };
        let k = (2 * beam).min(live * vocab);
        let mut best = Vec::with_capacity(k + 1);

        let mut next_rows = Vec::new(); // previous-row index of every surviving beam
        let mut next_sents = Vec::new(); // previous position in `active` of every survivor
        let mut next_active = Vec::new();
        let mut next_history = Vec::new();
        let mut next_scores = Vec::new();
        let mut next_last = Vec::new();
        for (ai, &sent) in active.iter().enumerate() {
            let mut chosen = Vec::with_capacity(beam);
            let first = ai * beam;
            best_candidates(
                &lprobs[first * vocab..(first + live) * vocab],
                &scores[first..first + live],
                &ban,
                k,
                &mut best,
            );
            for (c, &(v, flat)) in best.iter().enumerate() {
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
            next_sents.push(ai);
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
        let sents = removed.then(|| index(&next_sents, device));
        for c in caches.iter_mut() {
            c.select_self(&sel);
            if let Some(s) = &sents {
                c.select_cross(s);
            }
        }
        if let Some(s) = &sents {
            enc = select_enc(&enc, s);
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

#[cfg(test)]
mod tests {
    use super::best_candidates;

    /// The one-pass selection returns what sorting every candidate would: best first, ties to
    /// the lower flat index, banned (−∞) entries last.
    #[test]
    fn best_candidates_equal_a_full_stable_sort() {
        let vocab = 7;
        // Values on a coarse grid so that ties are frequent.
        let mut lprobs: Vec<f32> = (0..3 * vocab)
            .map(|i| -(((i * 5) % 4) as f32) * 0.5)
            .collect();
        // A NaN (a broken model's output) ranks as −∞, as fairseq sets it, never first.
        lprobs[2] = f32::NAN;
        let scores = [-1.0f32, -0.5, -1.5];
        let mut ban = vec![0.0f32; vocab];
        ban[1] = f32::NEG_INFINITY;
        for k in [1, 4, 6, 3 * vocab] {
            let mut got = Vec::new();
            best_candidates(&lprobs, &scores, &ban, k, &mut got);
            let lp = |f: usize| {
                if lprobs[f].is_nan() {
                    f32::NEG_INFINITY
                } else {
                    lprobs[f]
                }
            };
            let mut all: Vec<(f32, usize)> = (0..3 * vocab)
                .map(|f| ((lp(f) + ban[f % vocab]) + scores[f / vocab], f))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            all.truncate(k);
            assert_eq!(got, all, "k = {k}");
        }
    }
}
