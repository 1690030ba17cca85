//! Pruning a span-prediction (SQuAD-style) model: the pipeline has no [CLS]-only shortcut, the
//! physically pruned QA model equals the masked one, and the HF directory round-trips.

use burn::tensor::Device;
use kiln_data::squad::{squad_batches, squad_features, SquadDecode, SquadWindows};
use kiln_data::synthetic::{squad, vocabulary};
use kiln_data::TextTokenizer;
use kiln_models::bert::{load_qa, save_qa, PrunePlan};
use kiln_models::finetune::{evaluate_squad, finetune_qa, predict_spans, FinetuneConfig};
use kiln_models::{BertConfig, BertForQuestionAnswering, EncoderTask};
use kiln_prune::tuning::tune_masks;
use kiln_prune::{prune, sample_indices, Criterion, PruneOptions, Teacher};

#[test]
fn span_model_prunes_shrinks_and_round_trips() {
    let device = Device::flex();
    device.seed(5);
    let tok = TextTokenizer::word_level(&vocabulary(), 64).unwrap();
    let w = SquadWindows {
        max_len: 48,
        stride: 8,
        max_query: 8,
    };
    let train = squad(400, 1, 0.0);
    let dev = squad(100, 2, 0.0);
    let tf = squad_features(&train, &tok, w).unwrap();
    let df = squad_features(&dev, &tok, w).unwrap();
    let config = BertConfig::tiny(tok.vocab_size(), 2);
    let untrained = BertForQuestionAnswering::new(&config, &device);
    let decode = SquadDecode::default();
    let f1_before = evaluate_squad(&untrained, &dev, &df, decode, 0, None, &device).unwrap()["f1"];
    let cfg = FinetuneConfig {
        epochs: 3.0,
        batch_size: 16,
        learning_rate: 3e-3,
        warmup_ratio: 0.1,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        seed: 1,
        evals: 1,
        group_by_length: false,
    };
    let eval =
        |m: &BertForQuestionAnswering| evaluate_squad(m, &dev, &df, decode, 0, None, &device);
    let res = finetune_qa(untrained, "syn-squad", &tf, 0, &cfg, eval, &device).unwrap();
    let model = res.model;
    let f1_after = res.dev_metrics["f1"];
    assert!(
        f1_after > f1_before + 10.0,
        "F1 {f1_before:.1} -> {f1_after:.1}"
    );

    let order = sample_indices(&(0..tf.len()).collect::<Vec<_>>(), 96, 0);
    let samples = squad_batches(&tf, &order, 12, 0);
    assert!(!model.reads_first_token_only());
    let opts = PruneOptions {
        constraint: 0.5,
        criterion: Criterion::Fisher,
        seq_len: 40.0,
        rearrange: true,
        tune: true,
        teacher: Teacher::SqrtConstraint,
        solver: Default::default(),
        latency: None,
    };
    let out = prune(&model, &samples, None, &opts, &device).unwrap();
    assert!(out.mac_ratio <= 0.5 + 1e-9, "{}", out.mac_ratio);
    assert!(!out.tuning.blocks.is_empty());

    // All-token tuning never makes a block's reconstruction worse.
    let (_, rep) = tune_masks(
        &model.bert,
        &samples,
        &out.rearranged,
        &out.search,
        false,
        kiln_prune::Solver::Exact,
        &device,
    )
    .unwrap();
    for b in rep.blocks.iter().filter(|b| b.accepted) {
        assert!(
            b.after <= b.before + 1e-6 * b.before.abs().max(1.0),
            "{b:?}"
        );
    }

    // Physically pruned == masked, on span logits.
    let masks = out.tuned.to_encoder(&model.bert, &device).unwrap();
    let (ms, me) = predict_spans(&model, &df[..20], 0, 8, Some(&masks), &device);
    let (bert, pcfg) = model
        .bert
        .shrink(&config, &PrunePlan::from_masks(&masks))
        .unwrap();
    let small = BertForQuestionAnswering {
        bert,
        qa_outputs: model.qa_outputs.clone(),
    };
    let (ss, se) = predict_spans(&small, &df[..20], 0, 8, None, &device);
    let diff = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(diff(&ms, &ss) <= 1e-5 && diff(&me, &se) <= 1e-5);

    // HF directory round trip (pruned config included).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qa");
    save_qa(&small, &pcfg, None, &path).unwrap();
    let (back, _) = load_qa(&path, &device).unwrap();
    let (bs, be) = predict_spans(&back, &df[..20], 0, 8, None, &device);
    assert!(diff(&ss, &bs) == 0.0 && diff(&se, &be) == 0.0);
    let cfg_json = std::fs::read_to_string(path.join("config.json")).unwrap();
    assert!(cfg_json.contains("BertForQuestionAnswering"));
}
