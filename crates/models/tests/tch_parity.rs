//! LibTorch (`tch`) gives what flex gives: the encoder's outputs, the real MiniLM against the
//! HF golden outputs, and fine-tuning steps (forward, backward, clipping, AdamW) from the same
//! start. Runs when the build has the `tch` feature (`just test` builds it); otherwise a logged
//! skip, and a failure under `KILN_REQUIRE_TCH`.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use kiln_data::Encoded;
use kiln_models::bert::load_bert;
use kiln_models::finetune::{finetune, predict, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification, BertModel, EncoderInput};

fn host(t: Tensor<3>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn hidden(
    model: &BertModel,
    ids: &[i64],
    mask: &[i64],
    b: usize,
    l: usize,
    d: &Device,
) -> Vec<f32> {
    let m = model.clone().to_device(d);
    let x = EncoderInput::from_rows(ids.to_vec(), vec![0; b * l], mask.to_vec(), b, l, d);
    host(m.forward(&x, None).last_hidden_state)
}

#[test]
fn tiny_encoder_matches_on_flex_and_tch() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let flex = Device::flex();
    flex.seed(3);
    let model = BertModel::new(&BertConfig::tiny(50, 2), true, &flex);
    let ids: Vec<i64> = (0..24).map(|i| (i * 7 % 50) as i64).collect();
    let mut mask = vec![1; 24];
    mask[20..].iter_mut().for_each(|m| *m = 0);
    let a = hidden(&model, &ids, &mask, 2, 12, &flex);
    let b = hidden(&model, &ids, &mask, 2, 12, &tch);
    let d = max_diff(&a, &b);
    eprintln!("tiny: max |flex - tch| = {d:e}");
    assert!(d <= 1e-4, "{d}");
}

#[test]
fn minilm_on_tch_matches_flex() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let Some(dir) = kiln_core::paths::minilm_dir() else {
        kiln_core::paths::skip("all-MiniLM-L6-v2 (run `just fetch all-MiniLM-L6-v2`)");
        return;
    };
    // Loaded straight onto LibTorch (the loader's path on that backend), compared with flex,
    // which minilm_golden.rs holds to HF transformers' outputs within 1e-4.
    let (on_tch, _) = load_bert(&dir, &tch).expect("MiniLM loads on tch");
    let (on_flex, _) = load_bert(&dir, &Device::flex()).expect("MiniLM loads on flex");
    let ids: Vec<i64> = (0..64).map(|i| 1000 + (i * 37 % 2000) as i64).collect();
    let mut mask = vec![1; 64];
    mask[50..].iter_mut().for_each(|m| *m = 0);
    let a = hidden(&on_flex, &ids, &mask, 2, 32, &Device::flex());
    let b = hidden(&on_tch, &ids, &mask, 2, 32, &tch);
    let d = max_diff(&a, &b);
    eprintln!("MiniLM: max |flex - tch| = {d:e}");
    assert!(d <= 1e-4, "{d}");
}

fn toy() -> (Vec<Encoded>, Vec<Option<f32>>) {
    (0..96)
        .map(|i| {
            let has = i % 3 == 0;
            let mut ids = vec![2, 6 + (i % 7) as i64, 7 + (i % 5) as i64];
            if has {
                ids.push(5);
            }
            ids.push(3);
            let n = ids.len();
            let e = Encoded {
                ids,
                type_ids: vec![0; n],
            };
            (e, Some(if has { 1.0 } else { 0.0 }))
        })
        .unzip()
}

#[test]
fn finetuning_steps_match_on_flex_and_tch() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let flex = Device::flex();
    flex.seed(5);
    let mut c = BertConfig::tiny(16, 2);
    // Dropout draws from each backend's own generator; without it a step is deterministic.
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    let start = BertForSequenceClassification::new(&c, &flex);
    let (x, y) = toy();
    let task = TaskData {
        name: "toy".into(),
        num_labels: 2,
        metric_names: vec!["accuracy".into()],
        train: &x,
        train_labels: &y,
        dev: &x,
        dev_labels: &y,
        pad_id: 0,
    };
    let cfg = FinetuneConfig {
        epochs: 2.0,
        batch_size: 16,
        learning_rate: 1e-3,
        warmup_ratio: 0.1,
        weight_decay: 0.01,
        max_grad_norm: 1.0,
        seed: 1,
        evals: 3,
        group_by_length: true,
    };
    let a = finetune(start.clone(), &task, &cfg, &flex).unwrap();
    let b = finetune(start.clone().to_device(&tch), &task, &cfg, &tch).unwrap();
    assert_eq!(a.steps, 12);
    assert_eq!(a.steps, b.steps);
    for (p, q) in a.curve.iter().zip(&b.curve) {
        eprintln!(
            "step {}: loss flex {} tch {}",
            p.step, p.train_loss, q.train_loss
        );
        assert!(
            (p.train_loss - q.train_loss).abs() <= 1e-4 * p.train_loss.abs().max(1.0),
            "step {}: {} vs {}",
            p.step,
            p.train_loss,
            q.train_loss
        );
    }
    // The weights moved, and moved the same way: the trained models agree on every example.
    let pa = predict(&a.model, &x, 0, 32, None, &flex);
    let pb = predict(&b.model, &x, 0, 32, None, &tch);
    let p0 = predict(&start, &x, 0, 32, None, &flex);
    let (fa, fb, f0): (Vec<f32>, Vec<f32>, Vec<f32>) = (pa.concat(), pb.concat(), p0.concat());
    let moved = max_diff(&fa, &f0);
    let d = max_diff(&fa, &fb);
    eprintln!("logits: trained flex vs tch {d:e}, trained vs start {moved:e}");
    assert!(moved > 1e-2, "training changed nothing ({moved})");
    assert!(d <= 1e-3, "{d}");
}
