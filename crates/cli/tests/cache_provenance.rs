//! Issue 35.3: caches keyed by what they hold. A quick `glue-finetune --train-examples 16` trial
//! used to overwrite the cached fine-tuned checkpoint, and glue-pruning then pruned it without a
//! word. Here every run goes through the `kiln` binary on a miniature of the real setting: a tiny
//! BERT standing in for all-MiniLM-L6-v2 in the cache and a small SST-2 in GLUE's TSV layout.

use std::path::PathBuf;
use std::process::{Command, Output};

use kiln_glue::checkpoints::{
    cached_checkpoints, file_sha256, finetuned_for, read_provenance, write_provenance,
    CheckpointError, Wanted,
};

const N_TRAIN: usize = 64;
const N_DEV: usize = 32;
const MODEL: &str = "all-MiniLM-L6-v2";

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    cache: PathBuf,
    out: PathBuf,
}

/// A fake base model under the cache's `all-MiniLM-L6-v2/` (tiny BERT, word-level tokenizer)
/// and SST-2 train/dev files built from the synthetic sentiment task.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache, out) = (
        tmp.path().join("data"),
        tmp.path().join("cache"),
        tmp.path().join("out"),
    );
    let device = burn::tensor::Device::flex();
    let st = kiln_glue::checkpoints::smoke_task("syn-sentiment", N_TRAIN, N_DEV, 128, 7, &device)
        .unwrap();
    let tok = tmp.path().join("tokenizer.json");
    st.tok.save(&tok).unwrap();
    kiln_models::bert::save_classifier(&st.model, &st.config, Some(&tok), &cache.join(MODEL))
        .unwrap();
    let sst2 = data.join("SST-2");
    std::fs::create_dir_all(&sst2).unwrap();
    let tsv = |ex: &[kiln_data::Example]| {
        let mut s = String::from("sentence\tlabel\n");
        for e in ex {
            s.push_str(&format!("{}\t{}\n", e.text_a, e.label.unwrap() as u8));
        }
        s
    };
    std::fs::write(sst2.join("train.tsv"), tsv(&st.train)).unwrap();
    std::fs::write(sst2.join("dev.tsv"), tsv(&st.dev)).unwrap();
    Fixture {
        _tmp: tmp,
        data,
        cache,
        out,
    }
}

fn kiln(f: &Fixture, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("reproduce")
        .args(args)
        .args(["--no-download", "--device", "flex"])
        .arg("--data-dir")
        .arg(&f.data)
        .arg("--cache")
        .arg(&f.cache)
        .arg("--out")
        .arg(&f.out)
        .env_remove("KILN_MODELS")
        .env_remove("KILN_DATA")
        .env_remove("KILN_CACHE")
        .output()
        .unwrap()
}

fn ok(o: Output, what: &str) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{what} failed:\n{text}");
    text
}

fn resolver(f: &Fixture) -> kiln_experiment::Resolver {
    kiln_experiment::Resolver {
        data_dir: Some(f.data.clone()),
        ..kiln_experiment::Resolver::offline(&f.cache)
    }
}

/// The reported case: a quick trial (`--train-examples 16`) before the main job. glue-pruning
/// does not prune the trial's checkpoint: it fine-tunes the one its profile starts from, says so
/// in its table and run.json, and a later trial does not replace it.
#[test]
fn a_quick_trial_is_not_what_glue_pruning_prunes() {
    let f = fixture();
    let trial = ["glue-finetune", "--profile", "quick", "--tasks", "sst2"];
    let trial16 = [&trial[..], &["--train-examples", "16"]].concat();
    ok(kiln(&f, &trial16), "the trial");
    let log = ok(
        kiln(
            &f,
            &["glue-pruning", "--profile", "mini", "--tasks", "sst2"],
        ),
        "glue-pruning",
    );
    assert!(log.contains("stage 1/2"), "{log}");
    let dir = f.out.join("glue-pruning/mini");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let s = &run["settings"];
    assert_eq!(s["finetuned_in_run"][0]["task"], "sst2", "{s}");
    let ck = &s["checkpoints"]["sst2"];
    assert_eq!(ck["matches"], "quick", "{ck}");
    assert_eq!(ck["how"], "cache");
    assert_eq!(ck["provenance"]["train_examples"], N_TRAIN, "{ck}");
    assert_eq!(ck["provenance"]["settings"]["train"]["seed"], 42);
    let used = PathBuf::from(ck["dir"].as_str().unwrap());
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(
        table.contains(&format!(
            "glue-finetune `quick` profile: {N_TRAIN} train examples"
        )) && table.contains(&used.display().to_string()),
        "the table names the checkpoint and what made it:\n{table}"
    );
    // Another trial writes beside it, not over it.
    let weights = file_sha256(&used.join("model.safetensors")).unwrap();
    ok(kiln(&f, &trial16), "the second trial");
    assert_eq!(cached_checkpoints(&f.cache, MODEL, "sst2").len(), 2);
    assert_eq!(
        file_sha256(&used.join("model.safetensors")).unwrap(),
        weights
    );
    // And the next pruning run finds the same one (no new fine-tuning).
    let wanted = Wanted {
        by: "glue-pruning `mini`".into(),
        profiles: vec!["quick".into(), "mini".into()],
    };
    let c = finetuned_for(&resolver(&f), MODEL, "sst2", &wanted, true).unwrap();
    assert_eq!((c.dir, c.matches.as_deref()), (used, Some("quick")));
}

/// A consumer with no fine-tuning stage refuses a cached checkpoint made otherwise, naming it,
/// what made it, what its profile expects and how to proceed; `--model` uses it anyway, and the
/// run records it as given.
#[test]
fn a_checkpoint_made_otherwise_is_refused_unless_given() {
    let f = fixture();
    ok(
        kiln(
            &f,
            &[
                "glue-finetune",
                "--profile",
                "mini",
                "--tasks",
                "sst2",
                "--train-examples",
                "16",
            ],
        ),
        "the trial",
    );
    let cks = cached_checkpoints(&f.cache, MODEL, "sst2");
    assert_eq!(cks.len(), 1);
    let trial = &cks[0];
    let o = kiln(&f, &["ltp-glue", "--profile", "mini", "--tasks", "sst2"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "ltp-glue ran on the trial's checkpoint"
    );
    for want in [
        trial.display().to_string(),
        "16 train examples".into(),
        "train_examples 16 (expected 24000)".into(),
        "expects what glue-finetune `mini` makes".into(),
        "kiln reproduce glue-finetune --profile mini --tasks sst2".into(),
        format!("--model {}", trial.display()),
    ] {
        assert!(err.contains(&want), "missing `{want}` in:\n{err}");
    }
    // The same in-process, typed.
    let wanted = Wanted {
        by: "ltp-glue `mini`".into(),
        profiles: vec!["mini".into()],
    };
    let e = finetuned_for(&resolver(&f), MODEL, "sst2", &wanted, true).unwrap_err();
    assert!(matches!(
        e.downcast_ref::<CheckpointError>(),
        Some(CheckpointError::Mismatch { rejected, .. }) if rejected.len() == 1
    ));
    // Told to use it: --model.
    let given = kiln_experiment::Resolver {
        model: Some(trial.clone()),
        ..resolver(&f)
    };
    let c = finetuned_for(&given, MODEL, "sst2", &wanted, true).unwrap();
    assert_eq!(
        (&c.dir, c.how.as_str(), c.matches.as_deref()),
        (trial, "--model", None)
    );
    assert!(c.line().contains("used as given"), "{}", c.line());
    assert_eq!(c.provenance.unwrap().train_examples, 16);
    // With the settings `mini` expects (a record rewritten by hand), a checkpoint is used only
    // when its weights are the file glue-finetune wrote.
    let prov = read_provenance(trial).unwrap();
    let want = kiln_glue::experiment::expected_settings("mini", "sst2", &resolver(&f)).unwrap();
    assert_eq!(
        prov.settings.as_ref().unwrap().differences(&want),
        vec!["train_examples 16 (expected 24000)".to_string()]
    );
    let mut forged = prov.clone();
    forged.settings = Some(want);
    forged.weights_sha256 = Some("0".repeat(64));
    write_provenance(trial, &forged).unwrap();
    let e = finetuned_for(&resolver(&f), MODEL, "sst2", &wanted, true).unwrap_err();
    assert!(
        format!("{e:#}").contains("not the file glue-finetune wrote"),
        "{e:#}"
    );
    forged.weights_sha256 = prov.weights_sha256.clone();
    write_provenance(trial, &forged).unwrap();
    let c = finetuned_for(&resolver(&f), MODEL, "sst2", &wanted, true).unwrap();
    assert_eq!(c.matches.as_deref(), Some("mini"));
    // A record from before kiln recorded settings cannot be checked: refused.
    let mut legacy = prov;
    legacy.settings = None;
    write_provenance(trial, &legacy).unwrap();
    let e = finetuned_for(&resolver(&f), MODEL, "sst2", &wanted, true).unwrap_err();
    assert!(format!("{e:#}").contains("cannot be checked"), "{e:#}");
}
