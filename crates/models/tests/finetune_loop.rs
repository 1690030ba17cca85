//! The fine-tuning loop learns a trivially learnable task and turns a diverging loss into an
//! error that says what to do.

use burn::tensor::Device;
use kiln_data::Encoded;
use kiln_models::finetune::{finetune, FinetuneConfig, TaskData};
use kiln_models::{BertConfig, BertForSequenceClassification};

fn toy() -> (Vec<Encoded>, Vec<Option<f32>>) {
    // Label = whether token 5 appears.
    (0..128)
        .map(|i| {
            let has = i % 2 == 0;
            let mut ids = vec![2, 6 + (i % 7) as i64, 7 + (i % 5) as i64];
            if has {
                ids.push(5);
            }
            ids.push(3);
            let n = ids.len();
            (
                Encoded {
                    ids,
                    type_ids: vec![0; n],
                },
                Some(if has { 1.0 } else { 0.0 }),
            )
        })
        .unzip()
}

fn cfg(lr: f64) -> FinetuneConfig {
    FinetuneConfig {
        epochs: 8.0,
        batch_size: 16,
        learning_rate: lr,
        warmup_ratio: 0.1,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        seed: 1,
        evals: 2,
        group_by_length: true,
    }
}

fn data<'a>(x: &'a [Encoded], y: &'a [Option<f32>]) -> TaskData<'a> {
    TaskData {
        name: "toy".into(),
        num_labels: 2,
        metric_names: vec!["accuracy".into()],
        train: x,
        train_labels: y,
        dev: x,
        dev_labels: y,
        pad_id: 0,
    }
}

#[test]
fn learns_a_learnable_task() {
    let device = Device::flex();
    device.seed(1);
    let (x, y) = toy();
    let model = BertForSequenceClassification::new(&BertConfig::tiny(16, 2), &device);
    let r = finetune(model, &data(&x, &y), &cfg(2e-3), &device).unwrap();
    assert_eq!(r.steps, 64);
    assert!(r.dev_metrics["accuracy"] > 95.0, "{:?}", r.dev_metrics);
    assert!(r.curve.last().unwrap().train_loss < r.curve[0].train_loss);
}

#[test]
fn diverging_loss_is_an_error_not_a_nan_result() {
    let device = Device::flex();
    let (x, y) = toy();
    let model = BertForSequenceClassification::new(&BertConfig::tiny(16, 2), &device);
    let err = match finetune(model, &data(&x, &y), &cfg(1e30), &device) {
        Ok(_) => panic!("lr 1e30 should diverge"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("toy") && err.contains("lower the learning rate"),
        "{err}"
    );
}

// Issue 35: an unlabelled dev example (gold NaN) counted as class 0, an empty dev set scored
// accuracy 0, and a NaN STS-B gold score gave a finite Spearman. Each is an error now.
#[test]
fn scoring_nothing_or_a_nan_is_an_error() {
    use kiln_models::finetune::score;
    let acc = vec!["accuracy".to_string()];
    let e = score(&acc, &[], &[]).unwrap_err().to_string();
    assert!(e.contains("no examples"), "{e}");
    let e = score(&acc, &[vec![0.1, 0.9], vec![0.8, 0.2]], &[1.0, f32::NAN])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dev example 2 of 2") && e.contains("NaN"), "{e}");
    let e = score(&acc, &[vec![0.1, f32::NAN]], &[1.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dev example 1 of 1"), "{e}");
    let sts = vec!["pearson".to_string(), "spearman".to_string()];
    let e = score(
        &sts,
        &[vec![1.0], vec![2.0], vec![3.0]],
        &[1.0, f32::NAN, 2.0],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("gold value 2 of 3") && e.contains("NaN"), "{e}");
    let ok = score(&acc, &[vec![0.1, 0.9], vec![0.8, 0.2]], &[1.0, 1.0]).unwrap();
    assert_eq!(ok["accuracy"], 50.0);
}
