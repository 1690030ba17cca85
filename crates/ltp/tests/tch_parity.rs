//! Learned token pruning gives the same result on LibTorch (`tch`) as on flex: the masked
//! simulation in soft and hard modes (logits, regulariser, kept-token counts), real token
//! removal, and a soft training stage (the learnt thresholds). Runs when the build has the
//! `tch` feature (`just test` builds it); otherwise a logged skip, a failure under
//! `KILN_REQUIRE_TCH`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use kiln_data::synthetic::{generate, vocabulary, SyntheticTask};
use kiln_data::{batch::pad, Encoded, TextTokenizer};
use kiln_ltp::physical::forward_removed;
use kiln_ltp::train::{train_stage, StageConfig, TaskSplit};
use kiln_ltp::{LtpModel, Mode};
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

/// A 4-layer model with sharpened attention, so that θ separates tokens.
fn model(theta: f64) -> LtpModel {
    let device = Device::flex();
    device.seed(3);
    let (_, _, vocab) = data(1);
    let mut c = BertConfig::tiny(vocab, 2);
    c.num_hidden_layers = 4;
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    let mut clf = BertForSequenceClassification::new(&c, &device);
    for layer in clf.bert.encoder.layer.iter_mut() {
        let sa = &mut layer.attention.self_attn;
        sa.query.weight = Param::from_tensor(sa.query.weight.val() * 6.0);
        sa.key.weight = Param::from_tensor(sa.key.weight.val() * 6.0);
    }
    LtpModel::new(clf, theta, 128).unwrap()
}

fn on(m: &LtpModel, d: &Device) -> LtpModel {
    m.clone().to_device(d)
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn input(enc: &[Encoded], d: &Device) -> EncoderInput {
    let rows: Vec<(&Encoded, Option<f32>)> = enc.iter().map(|e| (e, None)).collect();
    let b = pad(&rows, (0..rows.len()).collect(), 0, None);
    EncoderInput::from_batch(&b, d)
}

#[test]
fn token_pruning_forward_matches_on_flex_and_tch() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let flex = Device::flex();
    let (enc, _, _) = data(16);
    let (xf, xt) = (input(&enc, &flex), input(&enc, &tch));
    let mut dropped_somewhere = false;
    for theta in [0.012, 0.009, 0.007] {
        let m = model(theta);
        let mt = on(&m, &tch);
        for mode in [Mode::Hard, Mode::Soft { temperature: 1e-3 }] {
            let a = m.forward(&xf, mode);
            let b = mt.forward(&xt, mode);
            let d = max_diff(&host(a.logits), &host(b.logits));
            assert!(d <= 1e-4, "θ {theta} {mode:?}: logits differ by {d}");
            assert_eq!(
                a.counts.ffn, b.counts.ffn,
                "θ {theta} {mode:?}: kept tokens"
            );
            assert_eq!(a.first_kept, b.first_kept);
            if let (Some(ra), Some(rb)) = (a.regulariser, b.regulariser) {
                let (ra, rb): (f32, f32) = (ra.into_scalar(), rb.into_scalar());
                assert!((ra - rb).abs() <= 1e-4 * ra.abs().max(1.0), "{ra} vs {rb}");
            }
        }
        let (la, ca) = forward_removed(&m, &xf);
        let (lb, cb) = forward_removed(&mt, &xt);
        let d = max_diff(&host(la), &host(lb));
        assert!(d <= 1e-4, "θ {theta} real removal: logits differ by {d}");
        assert_eq!(ca.ffn, cb.ffn, "θ {theta} real removal: live tokens");
        let last = ca.ffn.len() - 1;
        dropped_somewhere |= ca.ffn[last].iter().sum::<usize>() < ca.lengths.iter().sum::<usize>();
    }
    assert!(
        dropped_somewhere,
        "no θ dropped a token: the comparison is empty"
    );
}

#[test]
fn soft_stage_learns_the_same_thresholds_on_flex_and_tch() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let (enc, labels, _) = data(48);
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
    let m = model(0.01);
    let start = m.thresholds.values();
    let soft = Mode::Soft { temperature: 1e-3 };
    let (a, la) = train_stage(m.clone(), &task, soft, Mode::Hard, &cfg, &Device::flex()).unwrap();
    let (b, lb) = train_stage(on(&m, &tch), &task, soft, Mode::Hard, &cfg, &tch).unwrap();
    let (ta, tb) = (a.thresholds.values(), b.thresholds.values());
    eprintln!("thresholds: start {start:?}\n  flex {ta:?}\n  tch  {tb:?}");
    assert!(
        ta.iter().zip(&start).any(|(x, y)| x != y),
        "soft stage moved nothing"
    );
    for (x, y) in ta.iter().zip(&tb) {
        assert!((x - y).abs() <= 1e-5 + 1e-3 * x.abs(), "{ta:?} vs {tb:?}");
    }
    let (ra, rb) = (la.mean_regulariser.unwrap(), lb.mean_regulariser.unwrap());
    assert!((ra - rb).abs() <= 1e-3 * ra.abs().max(1e-6), "{ra} vs {rb}");
}
