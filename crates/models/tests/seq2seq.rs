//! The fairseq-style encoder-decoder: cached decoding equals teacher forcing, padding does not
//! leak, beam search of width 1 is greedy search, and the loss, positions and batching follow
//! fairseq's definitions.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_models::seq2seq::batch::{source_tensors, tensors};
use kiln_models::seq2seq::*;

fn dev() -> Device {
    Device::flex()
}

fn cfg(pre_norm: bool, share: bool) -> Seq2SeqConfig {
    let mut c = Seq2SeqConfig::iwslt_de_en(30, 25);
    c.d_model = 16;
    c.ffn = 24;
    c.heads = 4;
    c.encoder_layers = 2;
    c.decoder_layers = 2;
    c.dropout = 0.0;
    c.pre_norm = pre_norm;
    c.share_decoder_io = share;
    c
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

fn pairs() -> Vec<Pair> {
    vec![
        Pair {
            src: vec![4, 5, 6, 7, 8, 9],
            tgt: vec![10, 11, 12, 13],
        },
        Pair {
            src: vec![14, 15],
            tgt: vec![16, 17, 18, 19, 20, 21],
        },
    ]
}

#[test]
fn cached_incremental_decoding_equals_teacher_forcing() {
    for (pre, share) in [(false, true), (true, false)] {
        let m = Seq2Seq::dense(&cfg(pre, share), 3, &dev()).unwrap();
        let ps = pairs();
        let b = tensors(&ps, &[0, 1], &dev());
        let full = log_softmax(m.forward(&b), 2); // [2, t, V]
        let [_, t, v] = full.dims();
        let enc = m.encode(b.src.clone(), b.src_pos.clone(), b.src_pad.clone());
        let mut caches = m.new_caches();
        for step in 0..t {
            let tok = b.prev.clone().narrow(1, step, 1);
            let lp = m.step(&enc, tok, step, &mut caches);
            let want = full.clone().narrow(1, step, 1).reshape([2, v]);
            close(
                &host(lp),
                &host(want),
                2e-5,
                &format!("pre_norm={pre} step {step}"),
            );
        }
    }
}

#[test]
fn left_padding_changes_nothing_for_the_shorter_sentence() {
    let m = Seq2Seq::dense(&cfg(false, true), 4, &dev()).unwrap();
    let ps = pairs();
    let together = log_softmax(m.forward(&tensors(&ps, &[0, 1], &dev())), 2);
    let alone = log_softmax(m.forward(&tensors(&ps, &[1], &dev())), 2);
    let [_, t, v] = together.dims();
    close(
        &host(together.narrow(0, 1, 1).reshape([t, v])),
        &host(alone.reshape([t, v])),
        2e-5,
        "sentence 1 batched vs alone",
    );
    // fairseq's make_positions: real tokens count from PAD + 1, padding sits at PAD.
    let (_, pos, pad) = source_tensors(&[&[4, 5, 6], &[7]], &dev());
    let pos: Vec<i64> = pos
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap();
    assert_eq!(pos, vec![2, 3, 4, 5, 1, 1, 2, 3]);
    let pad: Vec<bool> = pad.into_data().try_into_vec::<bool>().unwrap();
    assert_eq!(
        pad,
        vec![false, false, false, false, true, true, false, false]
    );
}

#[test]
fn beam_of_one_is_greedy_and_wider_beams_score_no_worse() {
    let m = Seq2Seq::dense(&cfg(false, true), 5, &dev()).unwrap();
    let srcs: Vec<Vec<u32>> = vec![vec![4, 9, 6, 22], vec![14, 15, 16]];
    let refs: Vec<&[u32]> = srcs.iter().map(|s| s.as_slice()).collect();
    let bc = BeamConfig {
        beam: 1,
        max_len_b: 12,
        ..BeamConfig::default()
    };
    let hyps = beam_search(&m, &refs, &bc, &dev());
    for (i, s) in srcs.iter().enumerate() {
        // Greedy by re-running the full decoder on the growing prefix.
        let (src, pos, pad) = source_tensors(&[s.as_slice()], &dev());
        let enc = m.encode(src, pos, pad);
        let mut prefix = vec![EOS as i64];
        let mut out = Vec::new();
        let mut total = 0.0f64;
        for step in 0..=12 {
            let prev = Tensor::<2, Int>::from_data(
                TensorData::new(prefix.clone(), [1, prefix.len()]),
                &dev(),
            );
            let lp = host(
                log_softmax(m.decode(&enc, prev), 2)
                    .narrow(1, step, 1)
                    .reshape([25]),
            );
            let mut best = (f32::NEG_INFINITY, 0usize);
            for (t, &x) in lp.iter().enumerate() {
                let banned = t == PAD || (step == 0 && t == EOS) || (step == 12 && t != EOS);
                if !banned && x > best.0 {
                    best = (x, t);
                }
            }
            total += best.0 as f64;
            if best.1 == EOS {
                break;
            }
            out.push(best.1 as u32);
            prefix.push(best.1 as i64);
        }
        assert_eq!(hyps[i].tokens, out, "sentence {i}");
        let norm = total / (out.len() + 1) as f64; // length counts the </s>
        assert!(
            (hyps[i].score - norm).abs() < 1e-4,
            "{} vs {norm}",
            hyps[i].score
        );
    }
    let wide = beam_search(
        &m,
        &refs,
        &BeamConfig {
            beam: 5,
            max_len_b: 12,
            ..BeamConfig::default()
        },
        &dev(),
    );
    for (w, g) in wide.iter().zip(&hyps) {
        assert!(
            w.score >= g.score - 1e-5,
            "beam 5 found {} < greedy {}",
            w.score,
            g.score
        );
        assert!(w.tokens.len() <= 13);
    }
}

#[test]
fn label_smoothed_loss_matches_its_definition() {
    let logits = Tensor::<3>::from_data(
        TensorData::new(vec![0.5f32, -1.0, 2.0, 0.0, 1.0, 1.0, -0.5, 3.0], [1, 2, 4]),
        &dev(),
    );
    let target =
        Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, PAD as i64], [1, 2]), &dev());
    let (loss, nll, n) = label_smoothed_loss(logits, target, 0.1);
    assert_eq!(n, 1, "padding counted as a target token");
    let row = [0.5f64, -1.0, 2.0, 0.0];
    let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
    let lp: Vec<f64> = row.iter().map(|x| x - lse).collect();
    let want = 0.9 * -lp[2] + 0.1 / 4.0 * -lp.iter().sum::<f64>();
    assert!((loss.into_scalar::<f32>() as f64 - want).abs() < 1e-5);
    assert!((nll.into_scalar::<f32>() as f64 + lp[2]).abs() < 1e-5);
}

#[test]
fn sinusoidal_positions_and_schedule_follow_fairseq() {
    let d = 8;
    let t = sinusoidal_table(6, d);
    assert!(t[PAD * d..(PAD + 1) * d].iter().all(|&x| x == 0.0));
    // Row p, column i < d/2: sin(p·10000^(−i/(d/2−1))); column d/2 + i: the cosine.
    for p in [0usize, 2, 5] {
        for i in 0..d / 2 {
            let f = (-(10000f64.ln()) * i as f64 / (d / 2 - 1) as f64).exp();
            if p != PAD {
                assert!((t[p * d + i] as f64 - (p as f64 * f).sin()).abs() < 1e-5);
                assert!((t[p * d + d / 2 + i] as f64 - (p as f64 * f).cos()).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn batches_respect_max_tokens_and_targets_shift_by_one() {
    let ps: Vec<Pair> = (0..40)
        .map(|i| Pair {
            src: vec![5; 1 + i % 9],
            tgt: vec![6; 1 + (i * 7) % 11],
        })
        .collect();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    let batches = batch_by_size(&ps, 40, usize::MAX, Some(&mut rng)).unwrap();
    let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
    seen.sort();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    for b in &batches {
        let longest = b.iter().map(|&i| ps[i].tokens()).max().unwrap();
        assert!(b.len() * longest <= 40, "{b:?}");
    }
    let err = batch_by_size(&ps, 5, usize::MAX, None).unwrap_err();
    assert!(err.contains("more than max_tokens 5"), "{err}");
    let tb = tensors(&pairs(), &[0], &dev());
    let prev: Vec<i64> = tb
        .prev
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap();
    let target: Vec<i64> = tb
        .target
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap();
    assert_eq!(prev, vec![2, 10, 11, 12, 13]);
    assert_eq!(target, vec![10, 11, 12, 13, 2]);
    assert_eq!(tb.ntokens, 5);
}

#[test]
fn global_norm_clipping_scales_every_gradient_by_one_factor() {
    let m = Seq2Seq::dense(&cfg(false, true), 6, &dev()).unwrap();
    let ad = dev().autodiff();
    let m = m.to_device(&ad).train();
    let b = tensors(&pairs(), &[0, 1], &ad);
    let (loss, _, _) = label_smoothed_loss(m.forward(&b), b.target.clone(), 0.1);
    let mut grads = GradientsParams::from_grads(loss.backward(), &m);
    let before = host(grads.get::<2>(m.encoder.layers[0].fc1.weight.id).unwrap());
    let norm = clip_grad_norm(&m, &mut grads, 0.0);
    assert!(norm > 0.5, "{norm}");
    let again = clip_grad_norm(&m, &mut grads, 0.25 * norm);
    assert!((again - norm).abs() < 1e-3 * norm);
    let after_norm = clip_grad_norm(&m, &mut grads, 0.0);
    assert!(
        (after_norm - 0.25 * norm).abs() < 1e-3 * norm,
        "{after_norm}"
    );
    let after = host(grads.get::<2>(m.encoder.layers[0].fc1.weight.id).unwrap());
    let ratio = after[0] / before[0];
    assert!((ratio - 0.25).abs() < 1e-3, "{ratio}");
}

/// fairseq's `--share-all-embeddings`: one table serves the encoder input, the decoder input and
/// the output projection. The shared model must compute what a model holding two equal copies
/// computes, count the table once, and collect into the one table the gradients both copies
/// would receive (encoder-side plus decoder-side), so training updates a single tensor.
#[test]
fn share_all_embeddings_is_one_table_with_the_summed_gradient() {
    let mut c = cfg(false, true);
    c.tgt_vocab = c.src_vocab;
    c.share_all_embeddings = true;
    let ad = dev().autodiff();
    let shared = Seq2Seq::dense(&c, 9, &dev())
        .unwrap()
        .to_device(&ad)
        .train();
    assert!(shared.decoder.embed.is_none());
    assert_eq!(
        shared.target_table().weight.id,
        shared.encoder.embed.weight.id
    );
    // The same weights with the decoder's table a separate copy (a new parameter).
    let mut split = shared.clone();
    split.decoder.embed = Some(DenseTable {
        weight: burn::module::Param::from_tensor(shared.encoder.embed.weight.val().detach()),
    });
    let table = c.src_vocab * c.d_model;
    assert_eq!(shared.num_params() + table, split.num_params());

    let b = tensors(&pairs(), &[0, 1], &ad);
    let loss_of = |m: &Seq2Seq<DenseProj, DenseTable>| {
        let (loss, _, _) = label_smoothed_loss(m.forward(&b), b.target.clone(), 0.1);
        loss
    };
    let (ls, lp) = (loss_of(&shared), loss_of(&split));
    close(&host(ls.clone()), &host(lp.clone()), 1e-6, "loss");
    let gs = GradientsParams::from_grads(ls.backward(), &shared);
    let gp = GradientsParams::from_grads(lp.backward(), &split);
    let g = |grads: &GradientsParams, id| host(grads.get::<2>(id).expect("a table gradient"));
    let enc = g(&gp, split.encoder.embed.weight.id);
    let dec = g(&gp, split.target_table().weight.id);
    let sum: Vec<f32> = enc.iter().zip(&dec).map(|(a, b)| a + b).collect();
    assert!(enc.iter().any(|x| x.abs() > 1e-6) && dec.iter().any(|x| x.abs() > 1e-6));
    close(
        &g(&gs, shared.encoder.embed.weight.id),
        &sum,
        1e-5,
        "shared table gradient",
    );

    // Beam search reads the shared table's vocabulary.
    let m = shared.valid();
    let ps = pairs();
    let srcs: Vec<&[u32]> = ps.iter().map(|p| p.src.as_slice()).collect();
    let bc = BeamConfig {
        beam: 2,
        len_penalty: 1.0,
        max_len_a: 0.0,
        max_len_b: 6,
        min_len: 1,
    };
    let hyps = beam_search(&m, &srcs, &bc, &dev());
    assert_eq!(hyps.len(), 2);
    assert!(hyps
        .iter()
        .all(|h| h.tokens.iter().all(|&t| (t as usize) < c.tgt_vocab)));
}

#[test]
fn share_all_embeddings_needs_a_joined_dictionary_and_a_tied_output() {
    let mut c = cfg(false, true);
    c.share_all_embeddings = true;
    let e = c.validate().unwrap_err();
    assert!(
        e.contains("joined") && e.contains("30") && e.contains("25"),
        "{e}"
    );
    c.tgt_vocab = c.src_vocab;
    c.validate().unwrap();
    c.share_decoder_io = false;
    assert!(c.validate().unwrap_err().contains("share_decoder_io"));
}

/// Beam search stores the encoder output once per sentence (`EncoderOut::beams`) and lets a
/// sentence's beams attend to it as one grouped product; a step must give what the same step
/// gives with the encoder rows repeated per beam, as before.
#[test]
fn grouped_cross_attention_equals_repeated_encoder_rows() {
    let (beams, steps) = (3, 4);
    let m = Seq2Seq::dense(&cfg(false, true), 8, &dev()).unwrap();
    let ps = pairs();
    let srcs: Vec<&[u32]> = ps.iter().map(|p| p.src.as_slice()).collect();
    let (src, pos, pad) = source_tensors(&srcs, &dev());
    let mut grouped = m.encode(src, pos, pad);
    let rows: Vec<i64> = (0..2).flat_map(|s| [s; 3]).collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [2 * beams]), &dev());
    let repeated = EncoderOut {
        x: grouped.x.clone().select(0, idx.clone()),
        key_bias: grouped.key_bias.clone().select(0, idx),
        beams: 1,
    };
    grouped.beams = beams;
    let (mut cg, mut cr) = (m.new_caches(), m.new_caches());
    for step in 0..steps {
        let toks: Vec<i64> = (0..2 * beams)
            .map(|r| (4 + (r * 7 + step * 3) % 20) as i64)
            .collect();
        let toks = Tensor::<2, Int>::from_data(TensorData::new(toks, [2 * beams, 1]), &dev());
        let g = host(m.step(&grouped, toks.clone(), step, &mut cg));
        let r = host(m.step(&repeated, toks, step, &mut cr));
        close(&g, &r, 1e-5, &format!("step {step}"));
    }
    assert_eq!(
        cg[0].cross_kv.as_ref().unwrap().0.dims()[0],
        2,
        "one cross-attention cache row per sentence"
    );
}

/// A batch decodes as its sentences do one at a time: sentences that finish early leave the
/// batch (their encoder rows and caches are dropped by sentence, their beams' by row) without
/// disturbing the others. With `max_len_a = 0` the length limit does not depend on the batch.
#[test]
fn batched_beam_search_equals_one_sentence_at_a_time() {
    let m = Seq2Seq::dense(&cfg(false, true), 11, &dev()).unwrap();
    let srcs: Vec<Vec<u32>> = (0..6)
        .map(|i| {
            (0..2 + (i * 5) % 7)
                .map(|j| (4 + (i * 11 + j * 3) % 26) as u32)
                .collect()
        })
        .collect();
    let refs: Vec<&[u32]> = srcs.iter().map(|s| s.as_slice()).collect();
    let bc = BeamConfig {
        beam: 4,
        max_len_a: 0.0,
        max_len_b: 15,
        ..BeamConfig::default()
    };
    let mut active = Vec::new();
    let batched = beam_search_observed(&m, &refs, &bc, &dev(), |a| active.push(a));
    // Sentences must leave while others go on decoding, or the removal path is not exercised.
    assert!(
        active.windows(2).any(|w| w[1] < w[0] && w[1] > 0),
        "the fixture must have sentences finishing at different steps: {active:?}"
    );
    for (i, s) in refs.iter().enumerate() {
        let one = beam_search(&m, &[s], &bc, &dev());
        assert_eq!(batched[i].tokens, one[0].tokens, "sentence {i}");
        assert!(
            (batched[i].score - one[0].score).abs() < 1e-4,
            "sentence {i}"
        );
    }
}
