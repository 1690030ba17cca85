//! The paper profile's whole path on a miniature VQA v2: official-format JSON, COCO-named image
//! files decoded per batch at a forced non-square size, a released-layout tower loaded from
//! `--model` and frozen, the BUTD answer table and soft targets, training, the table and the
//! official results files. (The real profile is sized for a GPU; this checks the code it runs.)

use std::path::Path;

use kiln_clipvil::experiment::{ClipVil, Profile, VQA_V2_FILES};
use kiln_experiment::{ExperimentFile, Paper, RunArgs, RunContext};
use serde_json::json;

fn write_split(dir: &Path, split: &str, qfile: &str, afile: &str, images: u64, per_image: u64) {
    let mut qs = Vec::new();
    let mut anns = Vec::new();
    let answers = ["yes", "no", "2", "red"];
    for img in 1..=images {
        let im = image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(img * 50) as u8, x as u8 * 5, y as u8 * 7])
        });
        let name = format!("COCO_{split}_{img:012}.jpg");
        std::fs::create_dir_all(dir.join(split)).unwrap();
        // PNG bytes under a .jpg name: the reader sniffs the format, as it must for COCO's
        // occasional mislabelled files.
        im.save_with_format(dir.join(split).join(&name), image::ImageFormat::Png)
            .unwrap();
        for k in 0..per_image {
            let qid = img * 1000 + k;
            let a = answers[((img + k) % 4) as usize];
            qs.push(json!({"image_id": img, "question": format!("what is {k} in {img} ?"), "question_id": qid}));
            let ten: Vec<_> = (1..=10)
                .map(|i| json!({"answer": if i <= 7 { a } else { "blue" }, "answer_confidence": "yes", "answer_id": i}))
                .collect();
            anns.push(json!({
                "question_id": qid, "image_id": img, "question_type": "what is",
                "answer_type": if a == "yes" || a == "no" { "yes/no" } else if a == "2" { "number" } else { "other" },
                "multiple_choice_answer": a, "answers": ten
            }));
        }
    }
    std::fs::write(
        dir.join(qfile),
        json!({"questions": qs, "task_type": "Open-Ended"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join(afile), json!({"annotations": anns}).to_string()).unwrap();
}

#[test]
fn the_paper_path_runs_end_to_end_on_a_miniature_vqa_v2() {
    let Some(root) = kiln_core::paths::shared_data() else {
        kiln_core::paths::skip("shared data (reference/clip)");
        return;
    };
    let weights = root.join("reference/clip/rn_tiny.safetensors");
    if !weights.exists() {
        kiln_core::paths::skip("reference/clip/rn_tiny.safetensors");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    write_split(
        data.path(),
        "train2014",
        VQA_V2_FILES[0],
        VQA_V2_FILES[1],
        4,
        4,
    );
    write_split(
        data.path(),
        "val2014",
        VQA_V2_FILES[2],
        VQA_V2_FILES[3],
        3,
        3,
    );
    let models = tempfile::tempdir().unwrap();
    std::fs::copy(&weights, models.path().join("RN.safetensors")).unwrap();
    // The encoder swap's ImageNet row: a torchvision-layout ResNet (kiln-models' golden fixture).
    std::fs::copy(
        std::path::PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../models/tests/fixtures/torchvision_resnet_tiny.safetensors"),
        models.path().join("resnet.safetensors"),
    )
    .unwrap();
    let profile: Profile = serde_json::from_value(json!({
        "description": "miniature paper path",
        "data": "vqa-v2",
        "image_size": 64,
        "image_hw": [64, 100],
        "dev_questions": 4,
        "freeze_encoder": true,
        "answer_min_count": 1,
        "weights": {"rn": "RN.safetensors", "inet": "resnet.safetensors"},
        "encoders": {"rn": {"type": "resnet", "layers": [1, 1, 1, 1], "width": 16, "heads": 2, "output_dim": 32, "image_size": 64},
                     "inet": {"type": "torchvision-resnet", "layers": [1, 2, 1, 1], "width": 8, "num_classes": 10}},
        "head": {"word_dim": 8, "lstm": 8, "hidden": 16, "text_hidden": 8, "d": 8, "layers": 1, "heads": 2, "fused": 8, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 4, "lr": 0.01, "warmup": 0.0, "warmup_factor": 1.0, "decay_at": [], "decay": 1.0, "clip": 1.0, "eval_batch": 4},
        "rows": [
            {"label": "question-only", "head": "question-only", "kind": "baseline"},
            {"label": "CLIP-RN + Pythia", "encoder": "rn", "head": "pythia", "paper": "pythia_rn50x4_test_dev"},
            {"label": "ImageNet-RN + Pythia", "encoder": "inet", "head": "pythia"},
            {"label": "CLIP-RN + MCAN", "encoder": "rn", "head": "mcan",
             "train": {"epochs": 1, "batch_size": 8, "lr": 0.001, "warmup": 0.5, "warmup_factor": 0.25, "decay_at": [], "decay": 1.0, "clip": 5.0, "eval_batch": 4}}
        ],
        "seeds": [1]
    }))
    .unwrap();
    ClipVil.validate(&profile).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut args = RunArgs::new("paper", out.path(), out.path());
    args.data_dir = Some(data.path().to_path_buf());
    args.model = Some(models.path().to_path_buf());
    ClipVil.inputs("paper", &profile, &args).unwrap();
    let ctx = RunContext::new("clip-vil", "paper", "test", &args).unwrap();
    let file = ExperimentFile {
        name: "clip-vil".into(),
        title: "miniature".into(),
        reference: "test".into(),
        paper: serde_json::from_value(json!({"pythia_rn50x4_test_dev": 68.37})).unwrap(),
        profiles: [("paper".to_string(), profile.clone())]
            .into_iter()
            .collect(),
    };
    let rec = ClipVil.run(&ctx, &file, &profile).unwrap();
    let dir = rec.finish(&ctx).unwrap();
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    for row in [
        "question-only",
        "CLIP-RN + Pythia",
        "CLIP-RN + MCAN",
        "2×3×512",
        // The ImageNet tower rounds up (⌈64/32⌉ × ⌈100/32⌉) where CLIP's floors, and has 32·8
        // channels.
        "ImageNet-RN + Pythia",
        "2×4×256",
        "val2014 split into dev 4 / test 5",
    ] {
        assert!(table.contains(row), "missing `{row}`:\n{table}");
    }
    assert!(!table.contains("No released CLIP weights"), "{table}");
    // Results in the official format, keyed by the official question ids of val2014's test part.
    let results: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("predictions/clip-rn-pythia-test-s1.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<u64> = results
        .iter()
        .map(|r| r["question_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![2001, 2002, 3000, 3001, 3002]);
    assert!(results
        .iter()
        .all(|r| ["yes", "no", "2", "red"].contains(&r["answer"].as_str().unwrap())));
    // Every accuracy cell (4 rows + majority, × dev, test and novel test) recomputes from the
    // results files it cites; the paper's number is in its own table, with what differs.
    let c = kiln_experiment::verify::check_run(&dir).unwrap();
    assert_eq!((c.agreed, c.unsourced), (15, 0), "{:?}", c.failures);
    assert!(!table.contains("68.37"), "{table}");
    let paper = std::fs::read_to_string(dir.join("paper_reference.md")).unwrap();
    for s in [
        "68.37",
        "CLIP-RN + Pythia",
        "held-out part of val2014",
        "64×100 inputs",
        "not CLIP-Res50x4",
    ] {
        assert!(paper.contains(s), "missing `{s}`:\n{paper}");
    }
    assert!(!paper.contains("no pretrained CLIP weights"), "{paper}");
    // Missing inputs are named.
    let mut bare = args.clone();
    bare.model = None;
    let e = ClipVil.inputs("paper", &profile, &bare).unwrap_err();
    assert!(e.contains("--model"), "{e}");
    std::fs::remove_file(data.path().join(VQA_V2_FILES[3])).unwrap();
    let e = ClipVil.inputs("paper", &profile, &args).unwrap_err();
    assert!(e.contains(VQA_V2_FILES[3]), "{e}");
}
