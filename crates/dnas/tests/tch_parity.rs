//! DNAS and DLRM give the same results on LibTorch (`tch`) as on flex: a whole search (step
//! losses, learnt θ, sampled architectures) and a DLRM retraining (test predictions). Runs when
//! the build has the `tch` feature (`just test` builds it); otherwise a logged skip, a failure
//! under `KILN_REQUIRE_TCH`.

use burn::tensor::Device;
use kiln_dnas::cost::{CostLoss, OpCosts};
use kiln_dnas::retrain::{train_dlrm, TrainConfig};
use kiln_dnas::search::{search, SearchConfig};
use kiln_dnas::space::MlpSpaceConfig;
use kiln_dnas::synthetic::planted_clicks;
use kiln_dnas::MlpSearch;
use kiln_models::dlrm::{CtrRows, DlrmConfig, Interaction};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn a_search_is_the_same_on_tch_and_flex() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let d = planted_clicks(768, 4);
    let r = CtrRows::from(&d);
    let cfg = SearchConfig {
        epochs: 3.0,
        warmup: 1.0,
        alternation: 1.0,
        tau0: 1.0,
        tau_decay: 0.2,
        weights_lr: 0.5,
        arch_lr: 5.0,
        lr_base: 0.9,
        batch_size: 64,
        clip: 100.0,
        cost: CostLoss::linear(1.0),
        samples: "2:4".into(),
        seed: 3,
    };
    let run = |device: &Device| {
        let c = MlpSpaceConfig {
            n_dense: d.n_dense,
            d: 8,
            table_rows: d.counts.clone(),
            widths: vec![8, 16],
            layers: 3,
            interaction: Interaction::Dot,
            exact_cost: true,
            official_relu_head: false,
        };
        let net = MlpSearch::new(
            &c,
            OpCosts::flops(),
            &mut ChaCha8Rng::seed_from_u64(1),
            device,
        );
        search(
            net,
            &r.slice(0, 576),
            &r.slice(576, 768),
            &cfg,
            device,
            |_, _, _| {},
        )
        .unwrap()
    };
    let (a, b) = (run(&Device::flex()), run(&tch));
    assert_eq!(a.log.len(), b.log.len());
    let worst = a
        .log
        .iter()
        .zip(&b.log)
        .map(|(x, y)| (x.loss - y.loss).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "step losses differ by {worst}");
    let (ta, tb) = (a.theta.values(), b.theta.values());
    let dt = ta
        .iter()
        .flatten()
        .zip(tb.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(dt < 1e-4, "θ differs by {dt}");
    assert!(
        ta.iter().flatten().any(|x| x.abs() > 1e-3),
        "θ did not move"
    );
    let ca: Vec<_> = a.samples.iter().map(|s| s.choice.clone()).collect();
    let cb: Vec<_> = b.samples.iter().map(|s| s.choice.clone()).collect();
    assert_eq!(ca, cb, "sampled architectures");
}

#[test]
fn dlrm_training_is_the_same_on_tch_and_flex() {
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let d = planted_clicks(1200, 5);
    let r = CtrRows::from(&d);
    let cfg = DlrmConfig::uniform(
        vec![d.n_dense, 16, 8],
        vec![16],
        d.counts.clone(),
        Interaction::Dot,
    );
    let tc = TrainConfig {
        lr: 0.5,
        lr_base: 0.9,
        epochs: 2,
        batch_size: 64,
        eval_batch: 512,
        clip: 100.0,
        seed: 2,
    };
    let (tr, va, te) = (r.slice(0, 1000), r.slice(1000, 1100), r.slice(1100, 1200));
    let a = train_dlrm(&cfg, &tr, &va, &te, &tc, &Device::flex(), |_, _, _| {}).unwrap();
    let b = train_dlrm(&cfg, &tr, &va, &te, &tc, &tch, |_, _, _| {}).unwrap();
    let diff = a
        .test_p
        .iter()
        .zip(&b.test_p)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "test predictions differ by {diff}");
    assert!((a.test.log_loss - b.test.log_loss).abs() < 1e-5);
    assert!(
        a.curve[0].train_loss > a.curve[1].train_loss,
        "training did not progress"
    );
}
