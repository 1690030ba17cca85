//! The glue-finetune smoke profile end to end: tables, plots, run.json, cached checkpoints
//! that load back.

use kiln_cli::experiments::{self, RunArgs};
use kiln_core::DeviceChoice;

fn args(profile: &str, out: &std::path::Path, tasks: Option<Vec<String>>) -> RunArgs {
    RunArgs {
        profile: Some(profile.into()),
        device: DeviceChoice::Flex,
        data_dir: None,
        model: None,
        out: out.to_path_buf(),
        tasks,
        seed: 42,
        download: false,
        train_examples: None,
        epochs: None,
    }
}

#[test]
fn glue_finetune_smoke_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let args = args("smoke", out.path(), None);
    let dir = experiments::run("glue-finetune", &args).unwrap();
    for f in [
        "table.md",
        "table.csv",
        "run.json",
        "training_curve.svg",
        "training_curve.png",
        "dev_curve.svg",
        "dev_curve.png",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    let md = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(
        md.contains("SYNTHETIC"),
        "smoke tables are labelled synthetic"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["synthetic"], true);
    assert_eq!(meta["backend"], "flex");
    // The synthetic tasks are learnable: well above chance.
    for t in ["syn-sentiment", "syn-paraphrase"] {
        let acc = meta["metrics"][format!("{t}.accuracy")].as_f64().unwrap();
        assert!(acc > 65.0, "{t}: dev accuracy {acc}");
        let ck = kiln_cli::experiments::glue_finetune::finetuned_dir("smoke-tiny", t);
        let (m, _) =
            kiln_models::bert::load_classifier(&ck, 2, &burn::tensor::Device::flex()).unwrap();
        assert_eq!(m.num_labels(), 2);
        assert!(ck.join("tokenizer.json").exists());
    }
}

#[test]
fn unknown_experiment_and_profile_are_clear_errors() {
    let args = args("huge", &std::env::temp_dir(), None);
    let e = experiments::run("glue-finetune", &args)
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge") && e.contains("smoke"), "{e}");
    let e = experiments::run("no-such", &args).unwrap_err().to_string();
    assert!(e.contains("no-such") && e.contains("glue-finetune"), "{e}");
}

#[test]
fn missing_model_says_what_to_put_where() {
    let e = kiln_cli::resolve::resolve_model("bert-large-nonexistent", None, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--model") && e.contains("KILN_MODELS") && e.contains("config.json"),
        "{e}"
    );
    let e = kiln_cli::resolve::resolve_task(
        kiln_data::GlueTask::Qqp,
        Some(std::path::Path::new("/nowhere")),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("QQP/train.tsv") && e.contains("--data-dir"),
        "{e}"
    );
}

#[test]
fn flag_wins_over_cache() {
    let d = tempfile::tempdir().unwrap();
    let r = kiln_cli::resolve::find_model("all-MiniLM-L6-v2", Some(d.path())).unwrap();
    assert_eq!(r.path, d.path());
    assert_eq!(r.how, "--model");
    // A data dir given by flag is searched first.
    let root = d.path().join("glue");
    std::fs::create_dir_all(root.join("QQP")).unwrap();
    std::fs::write(
        root.join("QQP/train.tsv"),
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n",
    )
    .unwrap();
    std::fs::write(
        root.join("QQP/dev.tsv"),
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n",
    )
    .unwrap();
    let t = kiln_cli::resolve::find_task(kiln_data::GlueTask::Qqp, Some(&root)).unwrap();
    assert_eq!(t.how, "--data-dir");
}

#[test]
fn glue_pruning_smoke_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let args = args("smoke", out.path(), Some(vec!["syn-sentiment".into()]));
    let dir = experiments::run("glue-pruning", &args).unwrap();
    for f in [
        "table.md",
        "table.csv",
        "run.json",
        "stages.md",
        "kept_per_layer.csv",
        "metric_vs_flops_syn-sentiment.svg",
        "kept_per_layer_syn-sentiment.png",
        "speedup_vs_flops.png",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    for c in ["0.5", "0.7"] {
        let m = &meta["metrics"];
        let ratio = m[format!("syn-sentiment.c{c}.mac_ratio")].as_f64().unwrap();
        assert!(
            ratio <= c.parse::<f64>().unwrap() + 1e-9,
            "MAC ratio {ratio} over {c}"
        );
        let tuned = m[format!("syn-sentiment.c{c}.tuned")].as_f64().unwrap();
        let unpruned = m[format!("syn-sentiment.c{c}.unpruned")].as_f64().unwrap();
        assert!(
            tuned > unpruned - 10.0,
            "C={c}: tuned {tuned} vs unpruned {unpruned}"
        );
    }
    // The physically pruned model was saved and loads back smaller.
    let ck = kiln_core::paths::cache_dir().join("pruned/smoke-tiny/syn-sentiment/c0.5");
    let (m, _) = kiln_models::bert::load_classifier(&ck, 2, &burn::tensor::Device::flex()).unwrap();
    assert!(m.bert.neurons_per_layer().iter().sum::<usize>() < 256);
}
