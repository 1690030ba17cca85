//! Issue 35, point 7: the safetensors checkpoint loaders fed random mutations of real files
//! (truncation, byte flips, inserted and deleted ranges, ...) must not panic, and must either
//! load or fail with an error naming the file. The mutation fuzzer is kiln-data's
//! (`crates/data/tests/fuzz/mod.rs`; `KILN_FUZZ_CASES`, `KILN_FUZZ_SEED`, `KILN_FUZZ_CASE`).
//!
//! Inputs: this crate's fixtures written by PyTorch (`clip_text_tiny`,
//! `torchvision_resnet_tiny`), the tiny open_clip ViT and HF CLIPVisionModel of
//! `shared/data/reference/clip` (skipped through `kiln_core::paths::skip` without shared data,
//! which fails under `KILN_REQUIRE_REAL_DATA=1`), and a tiny BERT classifier saved by
//! `save_classifier` (config.json + model.safetensors, read back by `load_classifier`).
//!
//! The HF CLIP directory's config.json is fuzzed through its parser only: a mutated width
//! (`hidden_size: 3299999`) would make the model allocate before any weight is read, which is
//! an out-of-memory abort, not a panic `catch_unwind` could report.

#[path = "../../data/tests/fuzz/mod.rs"]
mod fuzz;

use std::path::PathBuf;

use burn::tensor::Device;
use fuzz::{fuzz_file, fuzz_files};
use kiln_models::bert::{load_classifier, save_classifier};
use kiln_models::clip::{load_hf_vision, StateDict, VitConfig};
use kiln_models::gpt2::Gpt2Config;
use kiln_models::{BertConfig, BertForSequenceClassification};

fn fixture(name: &str) -> PathBuf {
    // The package folder at run time: a shared target directory may hold a test binary built
    // from another checkout, whose compile-time path is gone.
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures")
    .join(name)
}

fn read(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn fuzz_state_dict_fixtures() {
    for name in [
        "clip_text_tiny.safetensors",
        "torchvision_resnet_tiny.safetensors",
    ] {
        fuzz_file(
            &format!("safetensors-{name}"),
            200,
            name,
            read(&fixture(name)),
            |p| {
                let sd = StateDict::read(p)?;
                // Touch every tensor's shape, as the loaders do.
                let n: usize = sd.names().map(|t| sd.shape(t).map_or(0, |s| s.len())).sum();
                Ok::<_, kiln_models::ModelError>(n)
            },
        );
    }
}

#[test]
fn fuzz_clip_reference_checkpoints() {
    let Some(root) = kiln_core::paths::shared_data() else {
        kiln_core::paths::skip("shared data (reference/clip)");
        return;
    };
    let dir = root.join("reference/clip");
    fuzz_file(
        "safetensors-vit_tiny",
        150,
        "vit_tiny.safetensors",
        read(&dir.join("vit_tiny.safetensors")),
        |p| StateDict::read(p).map(|sd| sd.names().count()),
    );
    let hf = dir.join("hf_clip_vision_tiny");
    let config = read(&hf.join("config.json"));
    let weights = read(&hf.join("model.safetensors"));
    let device = Device::flex();
    // The weights through the whole loader, the config intact (see the module doc).
    fuzz_files(
        "hf-clip-vision",
        120,
        &[("model.safetensors", weights)],
        |d| {
            std::fs::write(d.join("config.json"), &config).unwrap();
            load_hf_vision(d, &device).map(|(_, c, projected)| (c.width, projected))
        },
    );
    fuzz_file(
        "hf-clip-vision-config",
        300,
        "config.json",
        config.clone(),
        VitConfig::from_hf_json,
    );
}

/// Found by `fuzz_clip_reference_checkpoints` (a dropped `num_attention_heads` line leaves the
/// default 12 heads for width 32): the size check's error did not name the file.
#[test]
fn hf_vision_config_with_inconsistent_sizes_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.json");
    std::fs::write(
        &p,
        r#"{"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 5,
            "image_size": 32, "patch_size": 8, "intermediate_size": 64, "projection_dim": 24}"#,
    )
    .unwrap();
    let err = VitConfig::from_hf_json(&p).unwrap_err().to_string();
    assert!(
        err.contains(&p.display().to_string()) && err.contains("5 heads must divide width 32"),
        "{err}"
    );
}

/// A tiny BERT classifier saved as an HF directory.
fn saved_bert(dir: &std::path::Path) -> PathBuf {
    let device = Device::flex();
    device.seed(7);
    let cfg = BertConfig::tiny(40, 3);
    let model = BertForSequenceClassification::new(&cfg, &device);
    let out = dir.join("ckpt");
    save_classifier(&model, &cfg, None, &out).unwrap();
    out
}

fn edit_config(dir: &std::path::Path, from: &str, to: &str) -> PathBuf {
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(&p, text.replace(from, to)).unwrap();
    p
}

/// Found by `fuzz_bert_checkpoint_directory` (`KILN_FUZZ_SEED=12 KILN_FUZZ_CASES=3000`, case
/// 1231: a dropout probability replaced by a huge number): burn's `Dropout` panicked while the
/// model was built; the config check now rejects it, naming the file and the key.
#[test]
fn bert_config_with_a_dropout_outside_0_1_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let ck = saved_bert(d.path());
    for (key, bad) in [
        ("hidden_dropout_prob", "1.0"),
        ("attention_probs_dropout_prob", "1e23"),
        ("hidden_dropout_prob", "-0.5"),
    ] {
        let ck2 = d.path().join(format!("{key}{bad}"));
        std::fs::create_dir_all(&ck2).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(ck.join(f), ck2.join(f)).unwrap();
        }
        let p = edit_config(
            &ck2,
            &format!("\"{key}\": 0.1"),
            &format!("\"{key}\": {bad}"),
        );
        let r = std::panic::catch_unwind(|| load_classifier(&ck2, 3, &Device::flex()));
        let err = match r {
            Err(_) => panic!("{key} = {bad}: loading panicked"),
            Ok(r) => r.map(|_| ()).unwrap_err().to_string(),
        };
        assert!(
            err.contains(&p.display().to_string()) && err.contains(key) && err.contains("[0, 1)"),
            "{err}"
        );
    }
}

/// The same check for GPT-2 configs (`resid_pdrop`, `embd_pdrop`, `attn_pdrop`).
#[test]
fn gpt2_config_with_a_dropout_outside_0_1_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.json");
    let mut c = serde_json::to_value(Gpt2Config::new(50, 16, 32, 2, 4)).unwrap();
    std::fs::write(&p, c.to_string()).unwrap();
    Gpt2Config::from_file(&p).unwrap();
    c["attn_pdrop"] = serde_json::json!(1.0);
    std::fs::write(&p, c.to_string()).unwrap();
    let err = Gpt2Config::from_file(&p).unwrap_err().to_string();
    assert!(
        err.contains(&p.display().to_string()) && err.contains("attn_pdrop"),
        "{err}"
    );
}

/// Found by `fuzz_bert_checkpoint_directory` (`KILN_FUZZ_SEED=12 KILN_FUZZ_CASES=3000`, cases
/// 446, 1006, ...: a size in config.json changed): the shape mismatch named only
/// model.safetensors, not the config it disagrees with.
#[test]
fn config_and_weights_mismatch_names_both_files() {
    let d = tempfile::tempdir().unwrap();
    let ck = saved_bert(d.path());
    let p = edit_config(
        &ck,
        "\"intermediate_size\": 128",
        "\"intermediate_size\": 256",
    );
    let err = load_classifier(&ck, 3, &Device::flex())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&p.display().to_string())
            && err.contains(&ck.join("model.safetensors").display().to_string())
            && err.contains("encoder.layer.0.intermediate.dense.weight")
            && err.contains("[128, 64]"),
        "{err}"
    );
}

/// Found by `fuzz_bert_checkpoint_directory` (`KILN_FUZZ_SEED=21 KILN_FUZZ_CASES=3000`, case
/// 685: `num_hidden_layers` replaced by 65536): the error named only model.safetensors. With
/// 2^64 − 1 layers the loader listed the expected tensors of every layer before failing (it ran
/// out of memory); the layer count is now checked against the file first.
#[test]
fn config_claiming_more_layers_than_the_weights_names_both_files() {
    let d = tempfile::tempdir().unwrap();
    let ck = saved_bert(d.path());
    let original = std::fs::read(ck.join("config.json")).unwrap();
    for layers in ["3", "65536", "18446744073709551615"] {
        std::fs::write(ck.join("config.json"), &original).unwrap();
        let p = edit_config(
            &ck,
            "\"num_hidden_layers\": 2",
            &format!("\"num_hidden_layers\": {layers}"),
        );
        let err = load_classifier(&ck, 3, &Device::flex())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&p.display().to_string())
                && err.contains(&ck.join("model.safetensors").display().to_string())
                && err.contains(&format!("num_hidden_layers is {layers}"))
                && err.contains("weights for 2 layers"),
            "{err}"
        );
    }
}

/// A config.json of another model family than the weights (a missing tensor): both files named.
#[test]
fn missing_tensor_names_the_config_too() {
    let d = tempfile::tempdir().unwrap();
    let ck = saved_bert(d.path());
    let p = edit_config(
        &ck,
        "\"model_type\": \"bert\"",
        "\"model_type\": \"roberta\"",
    );
    let err = load_classifier(&ck, 3, &Device::flex())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&p.display().to_string())
            && err.contains(&ck.join("model.safetensors").display().to_string())
            && err.contains("is missing"),
        "{err}"
    );
}

#[test]
fn fuzz_bert_checkpoint_directory() {
    let device = Device::flex();
    let saved = tempfile::tempdir().unwrap();
    let out = saved_bert(saved.path());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"config.json".to_string())
            && names.contains(&"model.safetensors".to_string()),
        "{names:?}"
    );
    let files: Vec<(&str, Vec<u8>)> = names
        .iter()
        .map(|n| (n.as_str(), read(&out.join(n))))
        .collect();
    fuzz_files("bert-checkpoint", 150, &files, |dir| {
        load_classifier(dir, 3, &device).map(|(m, _)| m.num_labels())
    });
}
