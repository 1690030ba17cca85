//! Checkpoint selection as the paper's recipes do it (spec §6-7): IWSLT14 scores the epoch
//! checkpoint with the best validation BLEU, WMT14 the mean of the last 10 epoch checkpoints
//! (every tensor averaged, masks recomputed from the averaged scores).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use kiln_lottery::*;
use kiln_models::seq2seq::{Pair, Seq2SeqConfig};

fn dev() -> Device {
    Device::flex()
}

fn model(seed: u64) -> model::MaskedTransformer {
    let mut c = Seq2SeqConfig::iwslt_de_en(24, 20);
    c.d_model = 16;
    c.ffn = 32;
    c.heads = 2;
    c.encoder_layers = 2;
    c.decoder_layers = 2;
    c.dropout = 0.0;
    build(
        &masked_shape(c),
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        seed,
        &dev(),
    )
    .unwrap()
}

fn pairs() -> Vec<Pair> {
    (0..12)
        .map(|i| Pair {
            src: vec![4 + i % 7, 5 + i % 5, 6 + i % 11, 7],
            tgt: vec![8 + i % 9, 9 + i % 3, 10],
        })
        .collect()
}

fn tc(checkpoint: Checkpoint, epochs: usize) -> TrainConfig {
    let mut tc = TrainConfig::iwslt_masked();
    tc.max_epochs = epochs;
    tc.max_tokens = 16; // several batches per epoch
    tc.lr.warmup = 1;
    tc.lr.peak = 0.3; // large, so scores move visibly between epochs
    tc.checkpoint = checkpoint;
    tc
}

/// Every float parameter, flattened, in visiting order.
fn params<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct V(Vec<Vec<f32>>);
    impl ModuleVisitor for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    let mut v = V(Vec::new());
    m.visit(&mut v);
    v.0
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn best_valid_returns_the_first_checkpoint_with_the_highest_score() {
    // Scripted validation scores per epoch: the best (5.0) first appears at epoch 2 and is
    // only equalled later, so epoch 2's checkpoint must come back.
    let script = [1.0, 5.0, 3.0, 5.0];
    let mut seen: Vec<Vec<Vec<f32>>> = Vec::new();
    let mut calls = 0;
    let mut score = |m: &model::MaskedTransformer| {
        seen.push(params(m));
        calls += 1;
        script[calls - 1]
    };
    let out = train(
        model(7),
        &pairs(),
        &tc(Checkpoint::BestValid, 4),
        3,
        &dev(),
        Some(&mut score),
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(calls, 4, "one validation per epoch");
    let got = params(&out.model);
    assert_eq!(max_diff(&got, &seen[1]), 0.0, "epoch 2's checkpoint");
    assert!(
        max_diff(&got, &seen[3]) > 0.0,
        "the last checkpoint differs"
    );
    let per_epoch = out.updates / 4;
    assert_eq!(out.chosen_update, 2 * per_epoch);
    assert_eq!(out.valid_scores.len(), 4);
    assert_eq!(out.valid_scores[1], (2 * per_epoch, 5.0));
}

#[test]
fn best_valid_without_a_validation_set_is_an_error() {
    let r = train(
        model(7),
        &pairs(),
        &tc(Checkpoint::BestValid, 1),
        3,
        &dev(),
        None,
        |_, _, _| {},
    );
    let e = r
        .err()
        .expect("no validation callback must be refused")
        .to_string();
    assert!(e.contains("validation"), "{e}");
}

#[test]
fn stopping_inside_an_epoch_still_offers_the_final_state() {
    let mut calls = Vec::new();
    let mut t = tc(Checkpoint::BestValid, 10);
    t.max_updates = 5; // inside epoch 2 (four batches of 16 tokens per epoch at least)
    let mut score = |_: &model::MaskedTransformer| {
        calls.push(());
        calls.len() as f64 // increasing: the final state is best
    };
    let out = train(
        model(7),
        &pairs(),
        &t,
        3,
        &dev(),
        Some(&mut score),
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(out.updates, 5);
    assert_eq!(out.chosen_update, 5);
    // The partial second epoch has its own point on the loss curve.
    assert_eq!(out.curve.len(), 2);
    assert_eq!((out.curve[1].epoch, out.curve[1].update), (2, 5));
    assert_eq!(out.valid_scores.last().unwrap().0, 5);
}

#[test]
fn average_last_is_the_mean_of_the_last_epoch_checkpoints() {
    // Training is deterministic for a seed, so the checkpoints after epochs 2 and 3 are the
    // results of 2- and 3-epoch runs.
    let run = |c: Checkpoint, e: usize| {
        train(model(7), &pairs(), &tc(c, e), 3, &dev(), None, |_, _, _| {})
            .unwrap()
            .model
    };
    let (p1, p2, p3) = (
        params(&run(Checkpoint::Last, 1)),
        params(&run(Checkpoint::Last, 2)),
        params(&run(Checkpoint::Last, 3)),
    );
    let avg = run(Checkpoint::AverageLast(2), 3);
    let want: Vec<Vec<f32>> = p2
        .iter()
        .zip(&p3)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect())
        .collect();
    let got = params(&avg);
    assert!(max_diff(&got, &want) < 1e-6, "{}", max_diff(&got, &want));
    // Not the last checkpoint alone, nor a mean that includes epoch 1.
    assert!(max_diff(&got, &p3) > 1e-4);
    let with_first: Vec<Vec<f32>> = (0..p1.len())
        .map(|i| {
            (0..p1[i].len())
                .map(|j| (p1[i][j] + p2[i][j] + p3[i][j]) / 3.0)
                .collect()
        })
        .collect();
    assert!(max_diff(&got, &with_first) > 1e-4);
    // The frozen random weights are untouched by averaging identical copies, and the masks
    // of the averaged model come from the averaged scores with the exact cardinality.
    for (site, proj) in avg.projections() {
        let s = proj.scores.val();
        let n = s.dims().iter().product::<usize>();
        let ones = proj.mask().sum().into_scalar::<f32>() as usize;
        assert_eq!(ones, n - n / 2, "{site:?}");
    }
}
