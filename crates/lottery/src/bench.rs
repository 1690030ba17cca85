//! `kiln bench --only lottery`: training steps of the trained Transformer and of the one-layer
//! masked model at the mini profile's shape, and beam search, against a plain-PyTorch model of
//! the same shape and the same step in the same run (`bench/peer_lottery.py`).
//!
//! Both sides build the same synthetic data from one rule ([`pair`]), so batches, padding and
//! decoder step counts are identical; the peer checks the token and step counts it is handed and
//! fails otherwise. Weights are random (each side its own generator): only shapes matter here.

use anyhow::{bail, Result};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use kiln_experiment::bench::{interleaved, write_table, BenchArgs, Interleaved};
use kiln_models::seq2seq::batch::tensors;
use kiln_models::seq2seq::{
    clip_grad_norm, label_smoothed_loss, BeamConfig, Pair, Projection, Seq2Seq, Seq2SeqConfig,
    TokenTable,
};
use kiln_report::{Cell, Table};

use crate::model::{build, masked_shape, Embeddings, LotteryConfig};
use crate::train::translate;

/// Source and target vocabulary (the mini profile's Multi30k BPE dictionaries are about this).
const VOCAB: usize = 3000;
/// Sentences in the training batch: 2,025 target tokens with `</s>` (lengths 10-24, padded to
/// 25), about the mini profile's `max_tokens` 2048.
const TRAIN_SENTENCES: usize = 114;
/// Sentences translated per beam-search call (one batch).
const BEAM_SENTENCES: usize = 64;
const BEAM: usize = 5;
const MAX_LEN_A: f64 = 1.2;
const MAX_LEN_B: usize = 10;
const LABEL_SMOOTHING: f64 = 0.1;
/// A constant learning rate: the schedule's value changes nothing in the cost of a step.
const LR: f64 = 5e-4;
const WEIGHT_DECAY: f64 = 1e-4;
/// The mini profile's clipping: none for the trained model (train.rs then skips the norm
/// too), 0.5 for the masked one.
const CLIP_TRAINED: f64 = 0.0;
const CLIP_MASKED: f64 = 0.5;

/// Sentence pair `i`, the rule `bench/peer_lottery.py` repeats: source and target of length
/// `10 + i % 15`, source token `j` = `(7i + 3j) % (V − 4) + 4`, target token `j` =
/// `(3i + 7j) % (V − 4) + 4` (ids 0-3 are the special symbols).
pub fn pair(i: usize) -> Pair {
    let len = 10 + i % 15;
    let tok = |a: usize, b: usize, j: usize| ((a * i + b * j) % (VOCAB - 4) + 4) as u32;
    Pair {
        src: (0..len).map(|j| tok(7, 3, j)).collect(),
        tgt: (0..len).map(|j| tok(3, 7, j)).collect(),
    }
}

/// The mini profile's shape (experiments/one-layer-lottery.toml), built as `run_row` does.
fn shape() -> Seq2SeqConfig {
    let mut cfg = Seq2SeqConfig::iwslt_de_en(VOCAB, VOCAB);
    cfg.d_model = 128;
    cfg.ffn = 256;
    cfg.heads = 4;
    cfg.encoder_layers = 2;
    cfg.decoder_layers = 2;
    cfg.dropout = 0.1;
    cfg
}

/// Median seconds of one optimiser update on `pairs` as one batch, with the calls
/// [`crate::train`] makes (forward, label-smoothed loss, its value read back, backward of the
/// per-token loss, global-norm clip when `clip` > 0, AdamW step); the batch tensors are built
/// once, outside the timing.
fn step_seconds<P: Projection, T: TokenTable>(
    model: Seq2Seq<P, T>,
    pairs: &[Pair],
    clip: f64,
    device: &Device,
    iters: usize,
) -> Result<f64> {
    let ad = device.clone().autodiff();
    ad.seed(0);
    let mut model = Some(model.to_device(&ad).train());
    let mut optim = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.98)
        .with_epsilon(1e-8)
        .with_weight_decay(WEIGHT_DECAY as f32)
        .init();
    let idx: Vec<usize> = (0..pairs.len()).collect();
    let batch = tensors(pairs, &idx, &ad);
    let mut bad = None;
    let t = kiln_core::timing::time_it(&ad, 2, iters, || {
        let m = model.take().expect("model");
        let logits = m.forward(&batch);
        let (loss, nll, ntok) = label_smoothed_loss(logits, batch.target.clone(), LABEL_SMOOTHING);
        let l = loss.clone().into_scalar::<f32>() as f64;
        let _ = nll.into_scalar::<f32>();
        if !l.is_finite() {
            bad = Some(l);
        }
        let mut grads = GradientsParams::from_grads((loss / ntok as f64).backward(), &m);
        if clip > 0.0 {
            clip_grad_norm(&m, &mut grads, clip);
        }
        model = Some(optim.step(LR, m, grads));
    });
    if let Some(l) = bad {
        bail!("non-finite loss {l} in the benchmark's training step");
    }
    Ok(t.median_s)
}

/// The padded source length of `srcs` and the step at which beam search forces `</s>`
/// (`beam.rs`: `a·src_len + b`, `src_len` counting `</s>`).
fn beam_lengths(srcs: &[Vec<u32>]) -> (usize, usize) {
    let src_len = srcs.iter().map(|s| s.len() + 1).max().unwrap_or(1);
    (src_len, (MAX_LEN_A * src_len as f64) as usize + MAX_LEN_B)
}

struct Row {
    label: &'static str,
    unit: &'static str,
    /// Work units (target tokens or sentences) per timed call.
    work: f64,
    res: Interleaved,
}

/// Runs the three measurements and writes `results/bench/lottery.{md,csv}`.
pub fn lottery(a: &BenchArgs) -> Result<()> {
    let iters = a.iters.clamp(2, 20);
    let cfg = shape();
    let train_pairs: Vec<Pair> = (0..TRAIN_SENTENCES).map(pair).collect();
    let ntok: usize = train_pairs.iter().map(|p| p.tgt.len() + 1).sum();
    let padded_tgt = train_pairs
        .iter()
        .map(|p| p.tgt.len() + 1)
        .max()
        .unwrap_or(0);
    let srcs: Vec<Vec<u32>> = (0..BEAM_SENTENCES).map(|i| pair(i).src).collect();
    let (src_len, max_len) = beam_lengths(&srcs);
    // `</s>` is banned before max_len and forced at it, so every sentence runs exactly
    // max_len + 1 decoder steps on both sides (random weights would stop at different points).
    let beam = BeamConfig {
        beam: BEAM,
        len_penalty: 1.0,
        max_len_a: MAX_LEN_A,
        max_len_b: MAX_LEN_B,
        min_len: max_len,
    };
    let common =
        [VOCAB, cfg.d_model, cfg.ffn, cfg.heads, cfg.encoder_layers].map(|x| x.to_string());
    let peer_args = |mode: &str, n: usize, check: usize| -> Vec<String> {
        let mut v = vec![mode.to_string()];
        v.extend(common.iter().cloned());
        v.extend([
            cfg.dropout.to_string(),
            n.to_string(),
            iters.to_string(),
            check.to_string(),
            BEAM.to_string(),
            MAX_LEN_A.to_string(),
            MAX_LEN_B.to_string(),
        ]);
        v
    };
    let mut rows = Vec::new();

    println!(
        "bench: lottery train step, trained Transformer ({iters} timed steps, {} rounds)...",
        a.rounds
    );
    let args = peer_args("trained", TRAIN_SENTENCES, ntok);
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            device.seed(0);
            let m = Seq2Seq::dense(&cfg, 1, &device)?;
            step_seconds(m, &train_pairs, CLIP_TRAINED, &device, iters)
        },
        Some(("peer_lottery.py", &args[..])),
    )?;
    rows.push(Row {
        label: "train step, trained Transformer",
        unit: "target tokens/s",
        work: ntok as f64,
        res,
    });

    println!(
        "bench: lottery train step, one-layer masked ({iters} timed steps, {} rounds)...",
        a.rounds
    );
    let args = peer_args("masked", TRAIN_SENTENCES, ntok);
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            device.seed(0);
            let m = build(
                &masked_shape(cfg.clone()),
                &LotteryConfig::default(),
                &Embeddings::RandomMasked,
                1,
                &device,
            )?;
            step_seconds(m, &train_pairs, CLIP_MASKED, &device, iters)
        },
        Some(("peer_lottery.py", &args[..])),
    )?;
    rows.push(Row {
        label: "train step, one-layer masked",
        unit: "target tokens/s",
        work: ntok as f64,
        res,
    });

    println!(
        "bench: lottery beam search ({iters} timed batches of {BEAM_SENTENCES}, {} rounds)...",
        a.rounds
    );
    let args = peer_args("beam", BEAM_SENTENCES, max_len + 1);
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            device.seed(0);
            let m = Seq2Seq::dense(&cfg, 1, &device)?;
            let mut lens = Vec::new();
            let t = kiln_core::timing::time_it(&device, 1, iters, || {
                let out = translate(&m, &srcs, &beam, BEAM_SENTENCES, &device, |_, _| {});
                lens = out.iter().map(Vec::len).collect();
            });
            // A hypothesis of max_len tokens took max_len + 1 steps (the last one `</s>`).
            if let Some(l) = lens.iter().find(|&&l| l != max_len) {
                bail!("a kiln hypothesis has {l} tokens, not max_len {max_len}: the step counts would differ from the peer's");
            }
            Ok(t.median_s)
        },
        Some(("peer_lottery.py", &args[..])),
    )?;
    rows.push(Row {
        label: "beam search",
        unit: "sentences/s",
        work: BEAM_SENTENCES as f64,
        res,
    });

    let mut table = Table::new(
        format!(
            "One-layer lottery throughput at the mini profile's shape (d {}, ffn {}, {} heads, {}+{} layers, vocab {VOCAB} both sides, dropout {}, random weights, fp32)",
            cfg.d_model, cfg.ffn, cfg.heads, cfg.encoder_layers, cfg.decoder_layers, cfg.dropout
        ),
        &[
            "measurement",
            "backend",
            "throughput",
            "unit",
            "s per step / batch",
            "vs PyTorch [range over rounds]",
        ],
    );
    let mut with_peer = false;
    for r in &rows {
        with_peer |= r.res.peer.is_some();
        for (backend, times) in r.res.kiln.iter().chain(r.res.peer.iter()) {
            let m = Interleaved::seconds(times);
            let is_peer = r.res.peer.as_ref().is_some_and(|p| &p.0 == backend);
            table.push(vec![
                Cell::text(r.label),
                Cell::text(backend),
                Cell::num(r.work / m, 1),
                Cell::text(r.unit),
                Cell::num(m, 4),
                Cell::text(if is_peer {
                    "1.00".to_string()
                } else {
                    r.res.ratio_text(times)
                }),
            ]);
        }
    }
    table.note(format!(
        "train steps: one update = forward + label-smoothed CE (ε {LABEL_SMOOTHING}) + backward of the per-token loss + global-norm clip (masked only) + AdamW (β 0.9/0.98, ε 1e-8, weight decay {WEIGHT_DECAY}, constant lr {LR}), dropout {} in training mode, on one fixed batch of {TRAIN_SENTENCES} synthetic pairs (lengths 10-24 on both sides, {ntok} target tokens with </s>, padded to {TRAIN_SENTENCES}×{padded_tgt}), built once outside the timing; median of {iters} steps after 2 warm-up steps",
        cfg.dropout
    ));
    table.note(format!(
        "trained Transformer: fairseq's (biases, LayerNorm gains, tied decoder input/output embedding), clip-norm {CLIP_TRAINED} (no norm computed, as train.rs); one-layer masked: every layer of a side on the same frozen random matrices, each layer its own scores, random masked embeddings, keep 0.5, no biases, affine-free LayerNorms; masks recomputed every step as the top half of |scores| per tensor with the straight-through gradient `M + (|S| − stopgrad |S|)`; only the scores train; clip-norm {CLIP_MASKED}"
    ));
    table.note(format!(
        "beam search: {BEAM_SENTENCES} synthetic source sentences (lengths 10-24, padded to {src_len}) as one batch, beam {BEAM}, max_len = {MAX_LEN_A}·{src_len} + {MAX_LEN_B} = {max_len}; `</s>` is banned before max_len (min_len = max_len) so every sentence runs exactly {} decoder steps on both sides (kiln checks every hypothesis has {max_len} tokens; the peer counts its steps); cached keys/values, 2·beam candidates per sentence, the trained-shape Transformer in inference mode; median of {iters} batches after 1 warm-up batch",
        max_len + 1
    ));
    table.note(format!(
        "{} alternating rounds per measurement (kiln devices, then PyTorch); {}",
        a.rounds.max(1),
        BenchArgs::threads_note()
    ));
    if with_peer {
        table.note("PyTorch: bench/peer_lottery.py, the same model in plain PyTorch (F.linear, F.layer_norm, its own attention and beam search; no fairseq), torch.optim.AdamW, clip_grad_norm_(0.5) for the masked model, torch.topk(sorted=False) for the masks, same thread count");
    } else {
        table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch)");
    }
    write_table(&a.dir(), "lottery", &table)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_batch_is_the_documented_one() {
        let pairs: Vec<Pair> = (0..TRAIN_SENTENCES).map(pair).collect();
        let ntok: usize = pairs.iter().map(|p| p.tgt.len() + 1).sum();
        assert_eq!(ntok, 2025);
        assert_eq!(pair(0).src[..3], [4, 7, 10]);
        assert_eq!(pair(1).tgt[..2], [7, 14]);
        let srcs: Vec<Vec<u32>> = (0..BEAM_SENTENCES).map(|i| pair(i).src).collect();
        assert_eq!(beam_lengths(&srcs), (25, 40));
        // The sizes bench/peer_lottery.py's models have (trainable parameters; for the masked
        // model its scores and the distinct frozen projection matrices).
        let device = Device::flex();
        let dense = Seq2Seq::dense(&shape(), 1, &device).unwrap();
        // num_params counts the two frozen sinusoidal tables too.
        let positions = 2 * (shape().max_positions + 2) * shape().d_model;
        assert_eq!(dense.num_params() - positions, 1_430_528);
        let masked = build(
            &masked_shape(shape()),
            &LotteryConfig::default(),
            &Embeddings::RandomMasked,
            1,
            &device,
        )
        .unwrap();
        assert_eq!(crate::model::counts(&masked), (327_680, 1_423_360));
        assert!(pairs.iter().all(|p| p
            .src
            .iter()
            .chain(&p.tgt)
            .all(|&t| (4..VOCAB as u32).contains(&t))));
    }
}
