//! Properties of the maskable encoder on a tiny random BERT: all-ones masks change nothing,
//! masks are differentiable, shrinking equals masking, HF directories round-trip, and bad
//! checkpoints give errors that name the file and tensor.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use kiln_models::bert::{load_classifier, save_classifier, EncoderMasks, PrunePlan};
use kiln_models::{BertConfig, BertForSequenceClassification, EncoderInput};

fn input(device: &Device) -> EncoderInput {
    // Two rows, the second padded.
    let ids = vec![2, 10, 11, 12, 3, 13, 14, 3, 2, 20, 21, 3, 0, 0, 0, 0];
    let types = vec![0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let mask = vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
    EncoderInput::from_rows(ids, types, mask, 2, 8, device)
}

fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
    (a - b).abs().max().into_scalar()
}

fn tiny(device: &Device) -> (BertForSequenceClassification, BertConfig) {
    device.seed(7);
    let cfg = BertConfig::tiny(40, 3);
    (BertForSequenceClassification::new(&cfg, device), cfg)
}

#[test]
fn all_ones_masks_reproduce_the_dense_model() {
    let device = Device::flex();
    let (model, _) = tiny(&device);
    let x = input(&device);
    let dense = model.forward(&x, None);
    let masks = EncoderMasks::ones(&model.bert, &device);
    let masked = model.forward(&x, Some(&masks));
    assert_eq!(max_abs_diff(dense, masked), 0.0);
}

#[test]
fn masks_are_differentiable() {
    let device = Device::flex().autodiff();
    let (model, _) = tiny(&device);
    let x = input(&device);
    let masks = EncoderMasks::ones(&model.bert, &device).require_grad();
    let logits = model.forward(&x, Some(&masks));
    let loss = model.loss(logits, &[0.0, 2.0]);
    let grads = loss.backward();
    for l in 0..2 {
        let gh = masks.head[l].grad(&grads).expect("head mask gradient");
        let gf = masks.ffn[l].grad(&grads).expect("ffn mask gradient");
        assert_eq!(gh.dims(), [4]);
        assert_eq!(gf.dims(), [128]);
        let nh: f32 = gh.abs().sum().into_scalar();
        let nf: f32 = gf.abs().sum().into_scalar();
        assert!(nh > 0.0 && nf > 0.0, "layer {l}: zero mask gradients");
    }
}

#[test]
fn mask_gradient_matches_finite_difference() {
    // d loss / d m_h at m = 1 against a central difference on one head.
    let device = Device::flex().autodiff();
    let (model, _) = tiny(&device);
    let model = model.valid(); // no dropout
    let dev = Device::flex().autodiff();
    let model = burn::module::Module::to_device(model, &dev);
    let x = input(&dev);
    let masks = EncoderMasks::ones(&model.bert, &dev).require_grad();
    let loss = model.loss(model.forward(&x, Some(&masks)), &[1.0, 0.0]);
    let g: Vec<f32> = masks.head[1]
        .grad(&loss.backward())
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let eps = 1e-2f32;
    let plain = Device::flex();
    let m2 = burn::module::Module::to_device(model.valid(), &plain);
    let x2 = input(&plain);
    let eval = |v: f32| {
        let mut heads = vec![vec![1.0; 4]; 2];
        heads[1][2] = v;
        let masks =
            EncoderMasks::from_values(&m2.bert, &heads, &[vec![1.0; 128], vec![1.0; 128]], &plain)
                .unwrap();
        m2.loss(m2.forward(&x2, Some(&masks)), &[1.0, 0.0])
            .into_scalar::<f32>()
    };
    let fd: f32 = (eval(1.0 + eps) - eval(1.0 - eps)) / (2.0 * eps);
    assert!(
        (fd - g[2]).abs() <= 1e-3 + 1e-2 * fd.abs(),
        "fd {fd} vs grad {}",
        g[2]
    );
}

#[test]
fn shrunk_model_equals_masked_model() {
    let device = Device::flex();
    let (model, cfg) = tiny(&device);
    let x = input(&device);
    // Binary masks plus a few non-binary values (as after mask tuning).
    let heads = vec![vec![1.0, 0.0, 0.7, 1.0], vec![0.0, 1.3, 0.0, 0.0]];
    let ffn: Vec<Vec<f32>> = (0..2)
        .map(|l| {
            (0..128)
                .map(|i| {
                    if (i + l) % 3 == 0 {
                        0.0
                    } else {
                        1.0 + (i % 5) as f32 * 0.1
                    }
                })
                .collect()
        })
        .collect();
    let masks = EncoderMasks::from_values(&model.bert, &heads, &ffn, &device).unwrap();
    let masked = model.forward(&x, Some(&masks));
    let plan = PrunePlan::from_masks(&masks);
    let (bert, small_cfg) = model.bert.shrink(&cfg, &plan).unwrap();
    assert_eq!(bert.heads_per_layer(), vec![3, 1]);
    assert_eq!(small_cfg.pruned_heads.get("0"), Some(&vec![1]));
    assert_eq!(small_cfg.pruned_heads.get("1"), Some(&vec![0, 2, 3]));
    let small = BertForSequenceClassification {
        bert,
        ..model.clone()
    };
    let out = small.forward(&x, None);
    let d = max_abs_diff(masked, out);
    assert!(d <= 1e-5, "shrunk vs masked: {d}");
}

#[test]
fn layer_with_every_head_removed_still_runs() {
    let device = Device::flex();
    let (model, cfg) = tiny(&device);
    let x = input(&device);
    let heads = vec![vec![0.0; 4], vec![1.0; 4]];
    let ffn = vec![vec![1.0; 128]; 2];
    let masks = EncoderMasks::from_values(&model.bert, &heads, &ffn, &device).unwrap();
    let masked = model.forward(&x, Some(&masks));
    let (bert, _) = model
        .bert
        .shrink(&cfg, &PrunePlan::from_masks(&masks))
        .unwrap();
    let small = BertForSequenceClassification {
        bert,
        ..model.clone()
    };
    let d = max_abs_diff(masked, small.forward(&x, None));
    assert!(d <= 1e-5, "{d}");
}

#[test]
fn wrong_mask_shapes_are_errors() {
    let device = Device::flex();
    let (model, _) = tiny(&device);
    let err = EncoderMasks::from_values(
        &model.bert,
        &[vec![1.0; 3], vec![1.0; 4]],
        &[vec![1.0; 128], vec![1.0; 128]],
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("layer 0") && err.contains("3 heads"), "{err}");
    let err = EncoderMasks::from_values(&model.bert, &[vec![1.0; 4]], &[vec![1.0; 128]], &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 layers"), "{err}");
}

#[test]
fn hf_directory_round_trip() {
    let device = Device::flex();
    let (model, cfg) = tiny(&device);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    save_classifier(&model, &cfg, None, &out).unwrap();
    // HF names and PyTorch layout in the file.
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    for n in [
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.output.LayerNorm.bias",
        "bert.pooler.dense.weight",
        "classifier.weight",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n} in {names:?}");
    }
    assert_eq!(
        st.tensor("bert.encoder.layer.0.intermediate.dense.weight")
            .unwrap()
            .shape(),
        &[128, 64]
    );
    assert_eq!(st.tensor("classifier.weight").unwrap().shape(), &[3, 64]);
    let cfg_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg_json["architectures"][0],
        "BertForSequenceClassification"
    );
    assert_eq!(cfg_json["id2label"].as_object().unwrap().len(), 3);

    let (back, _) = load_classifier(&out, 3, &device).unwrap();
    let x = input(&device);
    let d = max_abs_diff(model.forward(&x, None), back.forward(&x, None));
    assert_eq!(d, 0.0, "round trip changed outputs by {d}");
}

#[test]
fn pruned_checkpoint_round_trips() {
    let device = Device::flex();
    let (model, cfg) = tiny(&device);
    let plan = PrunePlan::keep(
        &[vec![0, 3], vec![1]],
        &[(0..50).collect(), (10..128).collect()],
    );
    let (bert, small_cfg) = model.bert.shrink(&cfg, &plan).unwrap();
    let small = BertForSequenceClassification { bert, ..model };
    let dir = tempfile::tempdir().unwrap();
    save_classifier(&small, &small_cfg, None, &dir.path().join("p")).unwrap();
    let (back, ck) = load_classifier(&dir.path().join("p"), 3, &device).unwrap();
    assert_eq!(back.bert.heads_per_layer(), vec![2, 1]);
    assert_eq!(back.bert.neurons_per_layer(), vec![50, 118]);
    assert_eq!(ck.config.kiln_intermediate_sizes, Some(vec![50, 118]));
    let x = input(&device);
    assert_eq!(
        max_abs_diff(small.forward(&x, None), back.forward(&x, None)),
        0.0
    );
}

mod bad_input {
    use super::*;

    fn saved(dir: &std::path::Path) -> std::path::PathBuf {
        let device = Device::flex();
        let (model, cfg) = tiny(&device);
        let p = dir.join("m");
        save_classifier(&model, &cfg, None, &p).unwrap();
        p
    }

    #[test]
    fn missing_directory() {
        let err = load_classifier(
            std::path::Path::new("/nonexistent/kiln-model"),
            2,
            &Device::flex(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/nonexistent/kiln-model") && err.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn truncated_safetensors() {
        let d = tempfile::tempdir().unwrap();
        let p = saved(d.path());
        let w = p.join("model.safetensors");
        let bytes = std::fs::read(&w).unwrap();
        std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_classifier(&p, 3, &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.safetensors") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_safetensors_header() {
        let d = tempfile::tempdir().unwrap();
        let p = saved(d.path());
        let w = p.join("model.safetensors");
        let mut bytes = std::fs::read(&w).unwrap();
        bytes[8] = b'#';
        std::fs::write(&w, &bytes).unwrap();
        let err = load_classifier(&p, 3, &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.safetensors") && err.contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn config_weights_shape_mismatch() {
        let d = tempfile::tempdir().unwrap();
        let p = saved(d.path());
        let c = p.join("config.json");
        let text = std::fs::read_to_string(&c)
            .unwrap()
            .replace("\"intermediate_size\": 128", "\"intermediate_size\": 256");
        std::fs::write(&c, text).unwrap();
        let err = load_classifier(&p, 3, &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("encoder.layer.0.intermediate.dense.weight") && err.contains("[128, 64]"),
            "{err}"
        );
    }

    // Issue 35: a checkpoint with a float16 tensor failed with a dtype error that did not say
    // which tensor (or file) was at fault.
    #[test]
    fn f16_tensor_is_named_with_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = saved(d.path());
        let w = p.join("model.safetensors");
        let bytes = std::fs::read(&w).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let target = "bert.encoder.layer.1.attention.self.key.weight";
        let owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(name, v)| {
                if name == target {
                    let half: Vec<u8> = v
                        .data()
                        .chunks_exact(4)
                        .flat_map(|b| {
                            half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                                .to_le_bytes()
                        })
                        .collect();
                    (name, safetensors::Dtype::F16, v.shape().to_vec(), half)
                } else {
                    (name, v.dtype(), v.shape().to_vec(), v.data().to_vec())
                }
            })
            .collect();
        let views = owned.iter().map(|(n, dt, s, b)| {
            let view = safetensors::tensor::TensorView::new(*dt, s.clone(), b).unwrap();
            (n.clone(), view)
        });
        std::fs::write(&w, safetensors::serialize(views, None).unwrap()).unwrap();
        let device = Device::flex();
        let err = match load_classifier(&p, 3, &device) {
            Err(e) => e.to_string(),
            Ok((m, _)) => {
                let out = m.forward(&input(&device), None);
                panic!(
                    "the F16 tensor loaded without error; forward gave {:?}",
                    out.into_data()
                );
            }
        };
        assert!(
            err.contains(target)
                && err.contains("model.safetensors")
                && err.contains("F16")
                && err.contains("float32"),
            "{err}"
        );
    }

    #[test]
    fn wrong_model_family() {
        let d = tempfile::tempdir().unwrap();
        let p = saved(d.path());
        let c = p.join("config.json");
        let text = std::fs::read_to_string(&c)
            .unwrap()
            .replace("\"model_type\": \"bert\"", "\"model_type\": \"gpt2\"");
        std::fs::write(&c, text).unwrap();
        let err = load_classifier(&p, 3, &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json") && err.contains("gpt2"), "{err}");
    }
}
