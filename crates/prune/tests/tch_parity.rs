//! The pruning path gives the same result on LibTorch (`tch`) as on flex: the mask gradients
//! (hence the Fisher importances), the searched and rearranged masks, and the tuned mask
//! values, from the same fine-tuned model and sample set. Runs when the build has the `tch`
//! feature (`just test` builds it); otherwise a logged skip, a failure under `KILN_REQUIRE_TCH`.

use burn::module::Module;
use burn::tensor::Device;
use kiln_data::synthetic::{generate, vocabulary, SyntheticTask};
use kiln_data::TextTokenizer;
use kiln_models::finetune::{finetune, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};
use kiln_prune::importance::collect_mask_grads;
use kiln_prune::{prune, sample_batches, Criterion, Masks, PruneOptions, Teacher};

fn rel_diff(a: &[Vec<Vec<f32>>], b: &[Vec<Vec<f32>>]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        for (p, q) in x.iter().zip(y) {
            num = num.max((*p as f64 - *q as f64).abs());
            den = den.max((*p as f64).abs());
        }
    }
    num / den.max(1e-30)
}

fn max_mask_diff(a: &Masks, b: &Masks) -> f32 {
    a.head
        .iter()
        .chain(&a.neuron)
        .flatten()
        .zip(b.head.iter().chain(&b.neuron).flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn pruning_matches_on_flex_and_tch() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let flex = Device::flex();
    flex.seed(11);
    let tok = TextTokenizer::word_level(&vocabulary(), 32).unwrap();
    let ex = generate(SyntheticTask::Sentiment, 256, 3);
    let enc: Vec<_> = ex
        .iter()
        .map(|e| tok.encode(&e.text_a, None).unwrap())
        .collect();
    let labels: Vec<_> = ex.iter().map(|e| e.label).collect();
    let config = BertConfig::tiny(tok.vocab_size(), 2);
    let model = BertForSequenceClassification::new(&config, &flex);
    let cfg = FinetuneConfig {
        epochs: 1.0,
        batch_size: 32,
        learning_rate: 2e-3,
        warmup_ratio: 0.1,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        seed: 1,
        evals: 1,
        group_by_length: true,
    };
    let data = TaskData {
        name: "syn".into(),
        num_labels: 2,
        metric_names: vec!["accuracy".into()],
        train: &enc,
        train_labels: &labels,
        dev: &enc[..64],
        dev_labels: &labels[..64],
        pad_id: 0,
    };
    let model = finetune(model, &data, &cfg, &flex).unwrap().model;
    let samples = sample_batches(&enc, &labels, 96, 32, 0, 0).unwrap();
    let on_tch = model.clone().to_device(&tch);

    let ga = collect_mask_grads(&model, &samples, &flex).unwrap();
    let gb = collect_mask_grads(&on_tch, &samples, &tch).unwrap();
    let (dh, dn) = (
        rel_diff(&ga.head, &gb.head),
        rel_diff(&ga.neuron, &gb.neuron),
    );
    eprintln!("mask gradients: relative max diff heads {dh:e}, neurons {dn:e}");
    assert!(dh <= 1e-4 && dn <= 1e-4, "heads {dh}, neurons {dn}");

    let opts = PruneOptions {
        constraint: 0.5,
        criterion: Criterion::Fisher,
        seq_len: 20.0,
        rearrange: true,
        tune: true,
        teacher: Teacher::SqrtConstraint,
        solver: Default::default(),
        latency: None,
    };
    let a = prune(&model, &samples, None, &opts, &flex).unwrap();
    let b = prune(&on_tch, &samples, None, &opts, &tch).unwrap();
    assert_eq!(a.search, b.search, "searched masks");
    assert_eq!(a.rearranged, b.rearranged, "rearranged masks");
    assert_eq!(a.tuning.blocks.len(), b.tuning.blocks.len());
    let d = max_mask_diff(&a.tuned, &b.tuned);
    eprintln!("tuned masks: max |flex - tch| = {d:e}");
    assert!(d <= 1e-4, "{d}");
    assert!(
        max_mask_diff(&a.tuned, &a.rearranged) > 1e-2,
        "tuning changed nothing, so the comparison above is empty"
    );
}
