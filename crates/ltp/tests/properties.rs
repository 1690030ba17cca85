//! Section 13 properties of the LTP spec on a tiny random BERT over the synthetic tasks.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use kiln_data::synthetic::{generate, vocabulary, SyntheticTask};
use kiln_data::{batch::pad, Encoded, TextTokenizer};
use kiln_ltp::physical::forward_removed;
use kiln_ltp::score::token_scores;
use kiln_ltp::topk::kept_count;
use kiln_ltp::train::{train_stage, StageConfig, TaskSplit};
use kiln_ltp::{LtpModel, Mode};
use kiln_models::bert::attention_bias;
use kiln_models::{BertConfig, BertForSequenceClassification, EncoderInput};

fn data(n: usize) -> (Vec<Encoded>, Vec<Option<f32>>, usize) {
    let tok = TextTokenizer::word_level(&vocabulary(), 64).unwrap();
    let ex = generate(SyntheticTask::Paraphrase, n, 4);
    let enc = ex
        .iter()
        .map(|e| tok.encode(&e.text_a, e.text_b.as_deref()).unwrap())
        .collect();
    (enc, ex.iter().map(|e| e.label).collect(), tok.vocab_size())
}

fn model(final_threshold: f64, layers: usize) -> LtpModel {
    let device = Device::flex();
    device.seed(3);
    let (_, _, vocab) = data(1);
    let mut c = BertConfig::tiny(vocab, 2);
    c.num_hidden_layers = layers;
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    let clf = BertForSequenceClassification::new(&c, &device);
    LtpModel::new(clf, final_threshold, 128).unwrap()
}

fn input(items: &[&Encoded], pad_to: Option<usize>) -> EncoderInput {
    let rows: Vec<(&Encoded, Option<f32>)> = items.iter().map(|e| (*e, None)).collect();
    let b = pad(&rows, (0..rows.len()).collect(), 0, pad_to);
    EncoderInput::from_batch(&b, &Device::flex())
}

fn vec2(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn off_or_zero_thresholds_equal_the_plain_model() {
    let (enc, _, _) = data(8);
    let items: Vec<&Encoded> = enc.iter().collect();
    let inp = input(&items, None);
    let m = model(0.0, 3);
    let plain = vec2(m.classifier.forward(&inp, None));
    for mode in [Mode::Off, Mode::Hard] {
        let out = m.forward(&inp, mode);
        assert_eq!(vec2(out.logits), plain, "{mode:?}");
    }
    let (removed, _) = forward_removed(&m, &inp);
    assert!(max_diff(&vec2(removed), &plain) < 1e-5);
}

#[test]
fn scores_are_normalised_by_the_fixed_length_and_ignore_padding() {
    let (enc, _, _) = data(4);
    let m = model(0.01, 2);
    let items: Vec<&Encoded> = enc.iter().collect();
    let inp = input(&items, Some(40));
    let bert = &m.classifier.bert;
    let x = bert.embed(&inp);
    let live = inp.attention_mask.clone().float();
    let (probs, _) = bert.encoder.layer[0]
        .attention
        .self_attn
        .probs_and_values(x, attention_bias(&inp.attention_mask));
    let s = vec2(token_scores(probs, live, 128));
    for (r, e) in enc.iter().enumerate() {
        let n = e.ids.len();
        let row = &s[r * 40..(r + 1) * 40];
        let sum: f32 = row.iter().sum();
        assert!((sum - n as f32 / 128.0).abs() < 1e-6, "{sum} vs {n}/128");
        assert!(row[n..].iter().all(|&v| v == 0.0));
        assert!(row[..n]
            .iter()
            .all(|&v| (0.0..=n as f32 / 128.0).contains(&v)));
    }
}

#[test]
fn decisions_do_not_depend_on_batch_or_padding_and_counts_are_monotone() {
    let (enc, _, _) = data(6);
    let m = model(0.02, 4);
    let alone = m.forward(&input(&[&enc[0]], None), Mode::Hard);
    let items: Vec<&Encoded> = enc.iter().collect();
    let batch = m.forward(&input(&items, Some(60)), Mode::Hard);
    let la = vec2(alone.logits);
    let lb = vec2(batch.logits);
    assert!(max_diff(&la, &lb[..2]) < 1e-5);
    for l in 0..4 {
        assert_eq!(alone.counts.ffn[l][0], batch.counts.ffn[l][0], "layer {l}");
    }
    let c = &batch.counts;
    for r in 0..enc.len() {
        // Layer 0 never prunes (θ_0 = 0); padding never counts.
        assert_eq!(c.attn[0][r], enc[r].ids.len());
        assert_eq!(c.ffn[0][r], enc[r].ids.len());
        for l in 0..4 {
            assert!(c.ffn[l][r] <= c.attn[l][r]);
            if l > 0 {
                assert_eq!(c.attn[l][r], c.ffn[l - 1][r]);
            }
        }
    }
    assert!(
        c.ffn[3].iter().sum::<usize>() < c.ffn[0].iter().sum::<usize>(),
        "θ = 0.02 prunes something"
    );
}

#[test]
fn real_removal_matches_the_masked_simulation_and_drops_tokens() {
    let (enc, _, _) = data(16);
    let items: Vec<&Encoded> = enc.iter().collect();
    let inp = input(&items, None);
    // A random model attends almost uniformly (every score near 1/128), so scan θ_final for a
    // setting that drops tokens while some rows keep [CLS]; the equality must hold at every θ.
    // (Each test runs in its own process, so the seeded weights are the same on every run; the
    // scan keeps the test meaningful for any seed.)
    let mut found = false;
    for theta in [
        0.012, 0.0104, 0.0095, 0.009, 0.0085, 0.008, 0.0075, 0.007, 0.006,
    ] {
        let mut m = model(theta, 4);
        // Sharpen the random attention (larger query/key weights) so scores spread out and a
        // threshold separates tokens instead of cutting all-or-nothing at the uniform 1/128.
        for layer in m.classifier.bert.encoder.layer.iter_mut() {
            let sa = &mut layer.attention.self_attn;
            sa.query.weight = burn::module::Param::from_tensor(sa.query.weight.val() * 6.0);
            sa.key.weight = burn::module::Param::from_tensor(sa.key.weight.val() * 6.0);
        }
        let sim = m.forward(&inp, Mode::Hard);
        let (logits, counts) = forward_removed(&m, &inp);
        let (a, b) = (vec2(sim.logits), vec2(logits));
        let mut checked = 0;
        for r in 0..enc.len() {
            if sim.first_kept[r] {
                assert!(
                    max_diff(&a[2 * r..2 * r + 2], &b[2 * r..2 * r + 2]) <= 1e-5,
                    "θ {theta} row {r}"
                );
                // Same live counts as the simulation on these rows.
                for l in 0..4 {
                    assert_eq!(counts.ffn[l][r], sim.counts.ffn[l][r]);
                }
                checked += 1;
            }
        }
        let last = counts.ffn.len() - 1;
        let dropped = counts.ffn[last].iter().sum::<usize>() < counts.lengths.iter().sum::<usize>();
        found |= checked > 0 && dropped;
    }
    assert!(
        found,
        "no threshold both kept [CLS] in some row and dropped tokens"
    );
}

#[test]
fn soft_masks_tend_to_hard_masks_and_fall_with_the_threshold() {
    let (enc, labels, _) = data(8);
    let items: Vec<&Encoded> = enc.iter().collect();
    let inp = input(&items, None);
    let m = model(0.01, 3);
    let hard = m.forward(&inp, Mode::Hard);
    // As T -> 0 the regulariser counts the tokens the hard rule keeps at each active layer
    // (decided on unpruned attention in soft mode, so compare layer 1, the first active one).
    let soft = m.forward(&inp, Mode::Soft { temperature: 1e-7 });
    let r: f32 = soft.regulariser.unwrap().into_scalar();
    assert!(r > 0.0 && r < 2.0 * enc.len() as f32 * 64.0 / (8.0 * 128.0));
    let kept1: usize = hard.counts.ffn[1].iter().sum();
    assert!(kept1 > 0);
    // d reg / d δ < 0 on every active layer.
    let ad = Device::flex().autodiff();
    let mad = LtpModel {
        classifier: m.classifier.clone().to_device(&ad),
        thresholds: m.thresholds.clone().to_device(&ad).train(),
        norm_len: 128,
    };
    let inp_ad = inp.to_device(&ad);
    let out = mad.forward(&inp_ad, Mode::Soft { temperature: 1e-2 });
    let g = out.regulariser.unwrap().backward();
    let gd: Vec<f32> = mad
        .thresholds
        .delta
        .val()
        .grad(&g)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(gd[0], 0.0, "layer 0 (θ = 0) gets no gradient");
    assert!(gd[1..].iter().all(|&v| v < 0.0), "{gd:?}");
    let _ = labels;
}

#[test]
fn thresholds_init_linearly_and_hard_training_freezes_them() {
    let m = model(0.01, 4);
    let t = m.thresholds.values();
    assert_eq!(t, vec![0.0, 0.0025, 0.005, 0.0075]);
    let (enc, labels, _) = data(64);
    let names = vec!["accuracy".to_string()];
    let task = TaskSplit {
        train: &enc,
        train_labels: &labels,
        dev: &enc[..16],
        dev_labels: &labels[..16],
        metric_names: &names,
        main_metric: "accuracy",
        pad_id: 0,
    };
    let cfg = StageConfig {
        epochs: 1.0,
        batch_size: 16,
        learning_rate: 1e-3,
        threshold_learning_rate: Some(1e-2),
        lambda: 0.1,
        seed: 0,
        keep_best: false,
    };
    let (hard, _) = train_stage(m, &task, Mode::Hard, Mode::Hard, &cfg, &Device::flex()).unwrap();
    assert_eq!(hard.thresholds.values(), t, "hard stage: bitwise unchanged");
    let (soft, log) = train_stage(
        hard,
        &task,
        Mode::Soft { temperature: 1e-3 },
        Mode::Hard,
        &cfg,
        &Device::flex(),
    )
    .unwrap();
    assert!(log.mean_regulariser.is_some());
    let t2 = soft.thresholds.values();
    assert_eq!(t2[0], 0.0, "layer 0 never moves");
    assert!(
        t2[1..].iter().zip(&t[1..]).any(|(a, b)| a != b),
        "soft stage moves thresholds"
    );
}

#[test]
fn topk_keeps_round_half_even_of_the_schedule() {
    let (enc, _, _) = data(6);
    let m = model(0.01, 6);
    let items: Vec<&Encoded> = enc.iter().collect();
    let out = m.forward(&input(&items, None), Mode::TopK { rate: 0.3 });
    for (r, e) in enc.iter().enumerate() {
        for l in 0..6 {
            assert_eq!(
                out.counts.ffn[l][r],
                kept_count(e.ids.len(), l, 6, 0.3).min(if l == 0 {
                    e.ids.len()
                } else {
                    out.counts.ffn[l - 1][r]
                })
            );
        }
    }
}

#[test]
fn out_of_range_settings_are_clear_errors() {
    let m = model(0.01, 2);
    let clf = m.classifier.clone();
    let e = LtpModel::new(clf, 1.5, 128).unwrap_err().to_string();
    assert!(
        e.contains("final_token_threshold") && e.contains("1.5"),
        "{e}"
    );
    let e = Mode::Soft { temperature: 0.0 }
        .check()
        .unwrap_err()
        .to_string();
    assert!(e.contains("temperature"), "{e}");
    let e = Mode::TopK { rate: 1.0 }.check().unwrap_err().to_string();
    assert!(e.contains("keep rate"), "{e}");
}
