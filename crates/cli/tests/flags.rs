//! Flags are validated before any work (issue 35, point 4): a bad value, a flag the experiment
//! would ignore, a task it does not have, a path that does not exist or an output folder that
//! cannot be written is an error at once, never a run that exits 0 with a number nobody asked
//! for.

use std::path::Path;
use std::process::{Command, Output};

fn kiln(args: &[&str], out: &Path, cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("reproduce")
        .args(args)
        .args(["--no-download", "--device", "flex"])
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .output()
        .unwrap()
}

/// Runs `args`, expects a failure whose stderr contains `want`, and that nothing was written.
fn refused(args: &[&str], want: &str) {
    let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = kiln(args, out.path(), cache.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "`kiln reproduce {}` succeeded:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        err.contains(want),
        "`kiln reproduce {}`: expected `{want}` in:\n{err}",
        args.join(" ")
    );
    let written: Vec<_> = walk(out.path());
    assert!(written.is_empty(), "{args:?} wrote {written:?}");
}

fn walk(d: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            v.extend(walk(&e.path()));
        } else {
            v.push(e.path().display().to_string());
        }
    }
    v
}

#[test]
fn epochs_must_be_a_finite_number_above_zero() {
    for bad in ["0", "-1", "NaN", "inf", "abc"] {
        refused(
            &[
                "glue-finetune",
                "--profile",
                "smoke",
                &format!("--epochs={bad}"),
            ],
            "--epochs",
        );
    }
    refused(
        &[
            "glue-finetune",
            "--profile",
            "smoke",
            "--train-examples",
            "0",
        ],
        "--train-examples",
    );
}

#[test]
fn tasks_an_experiment_does_not_have_are_errors() {
    for e in ["one-layer-lottery", "clip-vil", "staged-training"] {
        refused(
            &[e, "--profile", "smoke", "--tasks", "nosuch"],
            "--tasks would select nothing",
        );
    }
    for e in ["glue-finetune", "glue-pruning", "ltp-glue", "dnas-dlrm"] {
        refused(&[e, "--profile", "smoke", "--tasks", "nosuch"], "nosuch");
    }
    // A real task of another profile is refused by the profile that lacks it, by name.
    refused(
        &["glue-finetune", "--profile", "smoke", "--tasks", "sst2"],
        "not in glue-finetune's profile `smoke`",
    );
}

#[test]
fn overrides_an_experiment_ignores_are_errors() {
    refused(
        &["staged-training", "--profile", "smoke", "--epochs", "2"],
        "does not read --epochs",
    );
    refused(
        &[
            "glue-pruning",
            "--profile",
            "smoke",
            "--train-examples",
            "16",
        ],
        "does not read --train-examples",
    );
    refused(
        &["one-layer-lottery", "--profile", "smoke", "--lenient"],
        "does not read --lenient",
    );
}

#[test]
fn an_explicit_path_that_does_not_exist_is_an_error() {
    refused(
        &[
            "staged-training",
            "--profile",
            "smoke",
            "--data-dir",
            "/nonexistent/kiln-data",
        ],
        "--data-dir /nonexistent/kiln-data: no such file or folder",
    );
    refused(
        &[
            "glue-finetune",
            "--profile",
            "mini",
            "--model",
            "/nonexistent/kiln-model",
        ],
        "--model /nonexistent/kiln-model: no such file or folder",
    );
}

#[test]
fn an_out_path_that_is_a_file_fails_before_any_work() {
    let (d, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let f = d.path().join("results-file");
    std::fs::write(&f, "not a folder").unwrap();
    let o = kiln(&["dnas-dlrm", "--profile", "smoke"], &f, cache.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("is a file"), "{err}");
    // Before any work: no training progress was printed.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stdout.contains("results written"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "not a folder");
}

/// clip-vil recorded its file's 6 epochs when run with `--epochs 1`; the table and run.json now
/// hold the schedule that ran.
#[test]
fn the_record_holds_the_epochs_that_ran() {
    let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = kiln(
        &[
            "clip-vil",
            "--profile",
            "smoke",
            "--epochs",
            "1",
            "--seed",
            "3",
        ],
        out.path(),
        cache.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = out.path().join("clip-vil/smoke");
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("1 epochs (--epochs"), "{table}");
    assert!(!table.contains("6 epochs"), "{table}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["settings"]["overrides"]["epochs"], 1.0, "{meta}");
    refused(
        &["clip-vil", "--profile", "smoke", "--epochs", "1.5"],
        "whole epochs",
    );
}

/// Two runs writing one results folder: the second fails at once naming the first (issue 35,
/// point 5). The "first run" is this test process holding the folder's lock, so the outcome
/// does not depend on how long a run takes.
#[test]
fn a_second_run_on_the_same_folder_fails_at_once() {
    let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let target = out.path().join("staged-training/smoke");
    let held = kiln_experiment::outdir::OutLock::acquire(&target).unwrap();
    let second = kiln(
        &["staged-training", "--profile", "smoke"],
        out.path(),
        cache.path(),
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{err}");
    assert!(
        err.contains("another kiln run") && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!target.exists(), "the refused run wrote results");
    drop(held);
    // Once the holder is gone the same run goes through.
    let again = kiln(
        &["staged-training", "--profile", "smoke"],
        out.path(),
        cache.path(),
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(target.join("table.md").exists());
}
