//! Every experiment's smoke profile end to end through the `kiln` binary: tables, plots,
//! predictions and run.json, with results and caches in temporary folders. Each run is its own
//! process, so no run shares a device RNG with another test running in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `kiln reproduce <experiment> --profile smoke` with `extra` arguments; returns the results
/// folder and the cache root.
fn reproduce(experiment: &str, extra: &[&str]) -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
    let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let st = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "reproduce",
            experiment,
            "--profile",
            "smoke",
            "--no-download",
        ])
        .args(["--device", "flex", "--seed", "42"])
        .arg("--out")
        .arg(out.path())
        .arg("--cache")
        .arg(cache.path())
        .args(extra)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{experiment} failed:\n{}\n{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    let dir = out.path().join(experiment).join("smoke");
    (out, cache, dir)
}

/// The model glue-pruning saved for `task` at constraint `c`: one run folder keyed by what shaped
/// it, with `kiln-pruned.json` saying what it was pruned from.
fn pruned_model(cache: &Path, task: &str, c: &str) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(cache.join("pruned/smoke-tiny").join(task))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let ck = runs[0].join(format!("c{c}"));
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("kiln-pruned.json")).unwrap())
            .unwrap();
    assert_eq!(
        (rec["task"].as_str(), rec["profile"].as_str()),
        (Some(task), Some("smoke"))
    );
    assert!(
        rec["source"].as_str().unwrap().contains("in-process"),
        "{rec}"
    );
    ck
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

fn assert_files(dir: &Path, files: &[&str]) {
    for f in files {
        assert!(dir.join(f).exists(), "missing {f} in {}", dir.display());
    }
    // One whole run: no staging or temporary files left beside or inside it.
    let parent = dir.parent().unwrap();
    for e in std::fs::read_dir(parent).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with('.'), "left behind: {n}");
    }
}

/// `kiln verify` on the run folder: every seed statistic of its tables cites prediction files
/// (none unsourced), at least `min_checks` of them, and each recomputes from its files; the run
/// records its tree. Returns the number of checks.
fn assert_verified(dir: &Path, min_checks: usize) -> usize {
    let st = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("verify")
        .arg(dir)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(st.status.success(), "kiln verify failed:\n{said}");
    let c = kiln_experiment::verify::check_run(dir).unwrap();
    assert!(c.has_checks, "no checks.json in {}", dir.display());
    assert!(c.failures.is_empty(), "{:?}", c.failures);
    assert_eq!(
        c.unsourced, 0,
        "seed statistics without prediction files:\n{said}"
    );
    assert!(
        c.agreed >= min_checks,
        "{} checks, expected at least {min_checks}:\n{said}",
        c.agreed
    );
    assert!(
        run_json(dir)["uncommitted"].is_array(),
        "run.json records the tree"
    );
    c.agreed
}

/// GLUE predictions: header `idx,prediction,label`, one row per dev example, and the accuracy
/// recomputed from the file equals the reported one.
fn check_glue_predictions(file: &Path, accuracy: f64) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("idx,prediction,label"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty());
    let right = rows.iter().filter(|r| r[1] == r[2]).count();
    let acc = 100.0 * right as f64 / rows.len() as f64;
    assert!(
        (acc - accuracy).abs() < 1e-6,
        "{}: {acc} vs {accuracy}",
        file.display()
    );
}

#[test]
fn glue_finetune_smoke_runs_end_to_end() {
    let (_out, cache, dir) = reproduce("glue-finetune", &[]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "training_curve.svg",
            "training_curve.png",
            "dev_curve.svg",
            "dev_curve.png",
            "predictions/syn-sentiment-dev-s42.csv",
            "predictions/syn-paraphrase-dev-s42.csv",
        ],
    );
    let md = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(
        md.contains("SYNTHETIC"),
        "smoke tables are labelled synthetic"
    );
    let meta = run_json(&dir);
    assert_eq!(meta["synthetic"], true);
    assert_eq!(meta["backend"], "flex");
    assert_eq!(meta["profile_choice"], "requested with --profile");
    assert_eq!(meta["paper"]["sst2"], 93.5, "the file's paper numbers");
    for t in ["syn-sentiment", "syn-paraphrase"] {
        let acc = meta["metrics"][format!("{t}.accuracy")].as_f64().unwrap();
        // The synthetic tasks are learnable: well above chance (50); seed 42 gives 81.25 and
        // 82.25 here (the tasks carry label noise).
        assert!(acc > 75.0, "{t}: dev accuracy {acc}");
        check_glue_predictions(&dir.join(format!("predictions/{t}-dev-s42.csv")), acc);
        // The checkpoint records how it was trained, for the experiments that start from it,
        // under a directory keyed by those settings (`<profile>-<key>`).
        let cks = kiln_glue::checkpoints::cached_checkpoints(cache.path(), "smoke-tiny", t);
        assert_eq!(cks.len(), 1, "{cks:?}");
        let ck = &cks[0];
        let line = kiln_glue::checkpoints::provenance(ck).expect("kiln-finetune.json");
        assert!(
            line.contains("`smoke` profile") && line.contains(&format!("{acc:.2}")),
            "{line}"
        );
        let prov = kiln_glue::checkpoints::read_provenance(ck).unwrap();
        let settings = prov.settings.expect("the settings that shape it");
        assert_eq!(
            ck,
            &kiln_glue::finetuned_dir(cache.path(), "smoke-tiny", t, "smoke", &settings)
        );
        assert_eq!(
            meta["settings"]["checkpoints"][t].as_str(),
            Some(ck.display().to_string().as_str())
        );
        let (m, _) =
            kiln_models::bert::load_classifier(ck, 2, &burn::tensor::Device::flex()).unwrap();
        assert_eq!(m.num_labels(), 2);
        assert!(ck.join("tokenizer.json").exists());
    }
    // Issue 27: 2 tasks × 1 dev-score column, each recomputed from its seed's predictions; no
    // paper number (synthetic), so no paper-reference table.
    assert_verified(&dir, 2);
    assert!(!dir.join("paper_reference.md").exists());
}

#[test]
fn unknown_experiment_and_profile_are_clear_errors() {
    let out = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .arg("--out")
            .arg(out.path())
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&["reproduce", "glue-finetune", "--profile", "huge"]);
    assert!(e.contains("huge") && e.contains("smoke"), "{e}");
    let e = run(&["reproduce", "no-such"]);
    assert!(e.contains("no-such") && e.contains("glue-finetune"), "{e}");
}

#[test]
fn glue_pruning_smoke_runs_end_to_end() {
    let (_out, cache, dir) = reproduce("glue-pruning", &["--tasks", "syn-sentiment"]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "stages.md",
            "kept_per_layer.csv",
            "metric_vs_flops_syn-sentiment.svg",
            "kept_per_layer_syn-sentiment.png",
            "speedup_vs_flops.png",
            "predictions/syn-sentiment-unpruned.csv",
            "predictions/syn-sentiment-c0.5-magnitude.csv",
            "latency.md",
            "latency_target_vs_measured.svg",
        ],
    );
    let meta = run_json(&dir);
    let m = &meta["metrics"];
    let seed = meta["seed"].as_u64().unwrap();
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(
        table.contains("exact solver") && table.contains(" ± "),
        "{table}"
    );
    for c in ["0.5", "0.7"] {
        // Two sample-set seeds (the run's seed and the next), each recorded; the speedup comes
        // with its quartiles and the MAC bound it is checked against.
        for s in [seed, seed + 1] {
            assert!(
                m[format!("syn-sentiment.c{c}.seed{s}.tuned")].is_f64(),
                "seed {s}"
            );
        }
        assert!(m[format!("syn-sentiment.c{c}.tuned_sd")].is_f64());
        assert!(m[format!("syn-sentiment.c{c}.exact_solver.tuned")].is_f64());
        let (q25, q75) = (
            m[format!("syn-sentiment.c{c}.speedup_q25")]
                .as_f64()
                .unwrap(),
            m[format!("syn-sentiment.c{c}.speedup_q75")]
                .as_f64()
                .unwrap(),
        );
        assert!(
            q25 <= q75
                && m[format!("syn-sentiment.c{c}.speedup_mac_bound")]
                    .as_f64()
                    .unwrap()
                    > 1.0
        );
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
        // Every seed's every stage has its predictions; the exact-solver row shares the
        // reference's first sample set, so it writes only its own tuned model's.
        for s in [seed, seed + 1] {
            for (stage, key) in [
                ("search", "search"),
                ("rearranged", "rearranged"),
                ("tuned", "tuned"),
            ] {
                check_glue_predictions(
                    &dir.join(format!(
                        "predictions/syn-sentiment-c{c}-reference-s{s}-{stage}.csv"
                    )),
                    m[format!("syn-sentiment.c{c}.seed{s}.{key}")]
                        .as_f64()
                        .unwrap(),
                );
            }
        }
        check_glue_predictions(
            &dir.join(format!(
                "predictions/syn-sentiment-c{c}-exact-solver-s{seed}-tuned.csv"
            )),
            m[format!("syn-sentiment.c{c}.exact_solver.seed{seed}.tuned")]
                .as_f64()
                .unwrap(),
        );
        assert!(!dir
            .join(format!(
                "predictions/syn-sentiment-c{c}-exact-solver-s{seed}-search.csv"
            ))
            .exists());
    }
    assert!(dir
        .join(format!(
            "predictions/syn-sentiment-latency0.6-s{seed}-tuned.csv"
        ))
        .is_file());
    // 2 constraints x 2 settings x 5 metric columns (unpruned, search, + rearrange, + tuning,
    // magnitude) in `table`, 1 latency target x 3 (unpruned, search, tuned) in `latency`.
    assert_verified(&dir, 23);
    // The physically pruned model was saved into the run's cache and loads back smaller.
    let ck = pruned_model(cache.path(), "syn-sentiment", "0.5");
    let (m, _) = kiln_models::bert::load_classifier(&ck, 2, &burn::tensor::Device::flex()).unwrap();
    assert!(m.bert.neurons_per_layer().iter().sum::<usize>() < 256);
}

#[test]
fn glue_pruning_span_task_smoke_runs_end_to_end() {
    let (_out, cache, dir) = reproduce("glue-pruning", &["--tasks", "syn-squad"]);
    let meta = run_json(&dir);
    let m = &meta["metrics"];
    let unpruned = m["syn-squad.c0.5.unpruned"].as_f64().unwrap();
    // Untrained span models score F1 < 10. The tiny span model learns at least that answers
    // are values (F1 about 25); whether it gets past that plateau within the smoke budget
    // depends on the seed and float rounding (F1 23 to 100 seen here), so only the plateau is
    // asserted: this test guards the span pipeline, not the model's quality.
    assert!(
        unpruned > 15.0,
        "the span model learnt nothing: F1 {unpruned}"
    );
    assert!(m["syn-squad.c0.5.mac_ratio"].as_f64().unwrap() <= 0.5 + 1e-9);
    // SQuAD's official predictions.json (question id -> answer text) of every seed and stage,
    // beside the evaluated questions in the official dataset layout.
    let seed = meta["seed"].as_u64().unwrap();
    let preds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!(
            "predictions/syn-squad-c0.5-reference-s{}-search.json",
            seed + 1
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(preds.as_object().unwrap().len(), 300);
    let gold = dir.join("predictions/syn-squad-dev-gold.json");
    let gold_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&gold).unwrap()).unwrap();
    assert_eq!(gold_json["version"], "1.1");
    assert_eq!(kiln_data::squad::read_squad(&gold).unwrap().len(), 300);
    // 2 constraints x 2 settings x 5 metric columns, each an official F1 against the gold file.
    assert_verified(&dir, 20);
    // The pruned span model is saved as an HF BertForQuestionAnswering directory.
    let ck = pruned_model(cache.path(), "syn-squad", "0.5");
    let (qa, _) = kiln_models::bert::load_qa(&ck, &burn::tensor::Device::flex()).unwrap();
    assert!(qa.bert.neurons_per_layer().iter().sum::<usize>() < 256);
}

#[test]
fn ltp_glue_smoke_runs_end_to_end() {
    let (_out, _cache, dir) = reproduce("ltp-glue", &["--tasks", "syn-sentiment"]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "throughput.md",
            "metric_vs_flops_syn-sentiment.svg",
            "kept_tokens_syn-sentiment.png",
            "predictions/syn-sentiment-unpruned-dev-s42.csv",
            "predictions/syn-sentiment-ltp-lambda0-2-dev-s42.csv",
            "predictions/syn-sentiment-top-k-r0-5-dev-s42.csv",
            "predictions/syn-sentiment-manual-theta0-01-dev-s42.csv",
        ],
    );
    let meta = run_json(&dir);
    let points = meta["settings"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 6, "2 LTP + 2 top-k + 2 manual settings");
    for p in points {
        let rel = p["relative_flops"].as_f64().unwrap();
        assert!(rel > 0.0 && rel <= 1.0 + 1e-12, "{p}");
        // Kept tokens never increase over layers.
        let kept: Vec<f64> = p["kept_per_layer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(kept.windows(2).all(|w| w[1] <= w[0] + 1e-9), "{kept:?}");
    }
    let first = &points[0];
    check_glue_predictions(
        &dir.join("predictions/syn-sentiment-ltp-lambda0-2-dev-s42.csv"),
        first["metric"].as_f64().unwrap(),
    );
    // Stronger regularisation prunes at least as much.
    let ltp: Vec<f64> = points
        .iter()
        .filter(|p| p["method"] == "LTP")
        .map(|p| p["relative_flops"].as_f64().unwrap())
        .collect();
    assert!(ltp[1] <= ltp[0] + 1e-9, "{ltp:?}");
    // Issue 27: 7 rows (unpruned + 2 LTP + 2 top-k + 2 manual) × 1 dev-metric column, each
    // recomputed from its own prediction file (the length study runs on syn-paraphrase only).
    assert_verified(&dir, 7);
}

#[test]
fn staged_training_smoke_runs_end_to_end() {
    let (_out, _cache, dir) = reproduce("staged-training", &[]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "loss_vs_compute.svg",
            "loss_vs_compute.png",
            "eval_loss.md",
            "paper_reference.md",
            "predictions/eval-blocks/target-scratch-s42.csv",
            "predictions/eval-blocks/half-width-at-growth-s42.csv",
            "predictions/eval-blocks/width-grown-oracle-at-restart-s42.csv",
        ],
    );
    // Eval losses before and after each of the 2 growths, and the final loss of 5 runs.
    assert_verified(&dir, 2 * 2 + 5);
    let meta = run_json(&dir);
    for op in ["width", "depth"] {
        // Growth preserves the eval loss (the operators are loss-preserving; dropout off in eval).
        let jump = meta["metrics"][format!("{op}.oracle.loss_jump")]
            .as_f64()
            .unwrap();
        assert!(jump.abs() < 1e-4, "{op}: loss changed by {jump} at growth");
    }
    let growths = meta["settings"]["growths"].as_array().unwrap();
    assert_eq!(growths.len(), 2);
    assert_eq!(
        growths[0]["target_n"].as_f64().unwrap(),
        4.0 * growths[0]["small_n"].as_f64().unwrap()
    );
    assert_eq!(
        growths[1]["target_n"].as_f64().unwrap(),
        2.0 * growths[1]["small_n"].as_f64().unwrap()
    );
    // One target for both operators (the paper's pairs).
    assert_eq!(growths[0]["target_n"], growths[1]["target_n"]);
    // The paper's savings come from the experiment file, in a table of their own (no profile
    // runs the paper's setting).
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(!table.contains("21.6%"), "{table}");
    let paper = std::fs::read_to_string(dir.join("paper_reference.md")).unwrap();
    for want in ["21.6%", "25.5%", "13.2%", "14.8%", "vs 5099 (the"] {
        assert!(paper.contains(want), "missing `{want}`:\n{paper}");
    }
    // The released script's depth mapping is measured on the same state, and changes the loss.
    assert!(table.contains("released-script depth mapping"), "{table}");
    // Per-block eval losses: their mean is the final eval loss of each run's curve.
    let csv = std::fs::read_to_string(dir.join("predictions/eval-blocks/target-scratch-s42.csv"))
        .unwrap();
    assert!(csv.starts_with("run,step,block,tokens,loss\n"), "{csv}");
    let target: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| {
            assert!(l.starts_with("target (scratch),"), "{l}");
            l.rsplit(',').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(target.len(), 64);
    let mean = target.iter().sum::<f64>() / target.len() as f64;
    let last = meta["settings"]["curves"]["target (scratch)"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["loss"]
        .as_f64()
        .unwrap();
    assert!((mean - last).abs() < 1e-4, "{mean} vs {last}");
}

#[test]
fn dnas_dlrm_smoke_runs_end_to_end() {
    let (_out, _cache, dir) = reproduce("dnas-dlrm", &[]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "synthetic_logloss_vs_flops.svg",
            "synthetic_logloss_vs_params.png",
            "synthetic_arch_probs_0.svg",
            "predictions/synthetic/dlrm-baseline-s1.csv",
            "paper_reference.md",
        ],
    );
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("SYNTHETIC"), "{table}");
    for row in [
        "DLRM baseline",
        "DNAS mlp #0",
        "random mlp #0",
        "DNAS emb-dim #0",
        "DNAS emb-card #0",
        "random emb-card #0",
    ] {
        assert!(table.contains(row), "missing row {row}:\n{table}");
    }
    let meta = run_json(&dir);
    // The baseline learns the planted interactions (a constant predictor's AUC is 0.5).
    let auc = meta["metrics"]["synthetic.dlrm-baseline.test_auc"]
        .as_f64()
        .unwrap();
    assert!(auc > 0.75, "baseline test AUC {auc}");
    // Predictions: one row per test example; the log loss recomputed from the file is the
    // reported one (single seed in smoke).
    let csv =
        std::fs::read_to_string(dir.join("predictions/synthetic/dlrm-baseline-s1.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("row,p_click,label"));
    let (mut sum, mut n) = (0.0, 0usize);
    for l in lines {
        let f: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        let (p, y) = (f[1].clamp(1e-15, 1.0 - 1e-15), f[2]);
        sum -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
        n += 1;
    }
    assert_eq!(n, 1000);
    let reported = meta["metrics"]["synthetic.dlrm-baseline.test_log_loss"]
        .as_f64()
        .unwrap();
    assert!(
        (sum / n as f64 - reported).abs() < 1e-4,
        "{} vs {reported}",
        sum / n as f64
    );
    // Every derived architecture's FLOPs are recorded; the random controls sit at the DNAS cost.
    let rows = meta["settings"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    // Issue 27: 7 rows × 3 metric columns (test log loss, AUC, calibration), each recomputed
    // from its seed's prediction file; the paper's numbers are not beside any synthetic row.
    assert_verified(&dir, 7 * 3);
    assert!(!table.contains("paper test log loss"), "{table}");
    let paper = std::fs::read_to_string(dir.join("paper_reference.md")).unwrap();
    assert!(
        paper.contains("0.4442") && paper.contains("nothing here is comparable"),
        "{paper}"
    );
}

#[test]
fn clip_vil_smoke_runs_end_to_end() {
    let (_out, _cache, dir) = reproduce("clip-vil", &[]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "dev_accuracy.svg",
            "paper_reference.md",
            "predictions/dev_annotations.json",
            "predictions/test_annotations.json",
            "predictions/test_novel_annotations.json",
            "predictions/rn-pythia-test-s1.json",
            "predictions/rn-pythia-dev-s1.json",
            "predictions/majority-test.json",
        ],
    );
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("SYNTHETIC"), "{table}");
    for row in [
        "question-only",
        "image-only (RN)",
        "RN + Pythia",
        "ViT + Pythia",
        "ViT + MCAN",
        "majority answer",
    ] {
        assert!(table.contains(row), "missing row {row}:\n{table}");
    }
    let meta = run_json(&dir);
    let m = |k: &str| meta["metrics"][k].as_f64().unwrap();
    // The scenes are built so the question alone is worth ~50%: a head that looks at the image
    // must do clearly better than the question-only baseline.
    assert!(
        m("rn-pythia.test_accuracy") > m("question-only.test_accuracy") + 10.0,
        "RN + Pythia {} vs question-only {}",
        m("rn-pythia.test_accuracy"),
        m("question-only.test_accuracy")
    );
    // The results file is in the official format, one answer per test question, and its
    // accuracy recomputed against the annotations file is the reported one.
    let results: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("predictions/rn-pythia-test-s1.json")).unwrap(),
    )
    .unwrap();
    let ann: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("predictions/test_annotations.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results.len(), ann.len());
    let truth: std::collections::HashMap<u64, String> = ann
        .iter()
        .map(|a| {
            (
                a["question_id"].as_u64().unwrap(),
                a["answers"][0]["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let right = results
        .iter()
        .filter(|r| truth[&r["question_id"].as_u64().unwrap()] == r["answer"].as_str().unwrap())
        .count();
    let acc = 100.0 * right as f64 / results.len() as f64;
    assert!((acc - m("rn-pythia.test_accuracy")).abs() < 1e-6, "{acc}");
    // Issue 27: (5 rows + majority) × 3 accuracy columns (dev, test, novel test), each
    // recomputed with the official VQA accuracy from every seed's results file; the paper's
    // test-dev numbers are in their own table, not beside the from-scratch synthetic rows.
    assert_verified(&dir, 6 * 3);
    assert!(!table.contains("68.37"), "{table}");
    assert!(table.contains("constant seeds"), "{table}");
    let paper = std::fs::read_to_string(dir.join("paper_reference.md")).unwrap();
    assert!(
        paper.contains("68.37") && paper.contains("no row of this profile runs this setting"),
        "{paper}"
    );
}

#[test]
fn one_layer_lottery_smoke_runs_end_to_end() {
    let (_out, _cache, dir) = reproduce("one-layer-lottery", &[]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "translations/synthetic/ref.detok.txt",
            "translations/synthetic/trained-transformer_s1.detok.txt",
            "translations/synthetic/one-layer-masked-k-0-5_s1.detok.txt",
        ],
    );
    // sacreBLEU of 2 rows (the synthetic corpus is raw text: no tokenized BLEU).
    assert_verified(&dir, 2);
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("SYNTHETIC"), "{table}");
    // No paper number beside rows that do not run the paper's setting.
    assert!(!table.contains("| paper |"), "{table}");
    assert!(
        table.contains("version:2.4.3"),
        "no sacreBLEU signature:\n{table}"
    );
    let meta = run_json(&dir);
    let m = |k: &str| meta["metrics"][k].as_f64().unwrap();
    // The mapping is learnable: the trained model must translate most of it, and the masked
    // random model must learn something beyond chance.
    assert!(
        m("synthetic.trained-transformer.sacrebleu") > 40.0,
        "{table}"
    );
    assert!(
        m("synthetic.one-layer-masked-k-0-5.sacrebleu") > 10.0,
        "{table}"
    );
    let hyps = std::fs::read_to_string(
        dir.join("translations/synthetic/trained-transformer_s1.detok.txt"),
    )
    .unwrap();
    assert_eq!(hyps.lines().count(), 100);
}

#[test]
fn radar_smoke_runs_end_to_end() {
    let (_out, cache, dir) = reproduce("radar", &[]);
    assert_files(
        &dir,
        &[
            "table.md",
            "table.csv",
            "run.json",
            "paper_reference.md",
            "ap_per_scene.svg",
            "radar_frame.png",
            "training_loss.svg",
            "ground-truth/test/frames.json",
            "ground-truth/test/sim_PL_test_00.txt",
            "ground-truth/test-HW/sim_HW_test_00.txt",
            "predictions/CDC/plain/seed1/sim_CS_test_00.txt",
            "predictions/CDC/scene-aware/seed1/sim_HW_test_00.txt",
            "predictions/HG/scene-aware-true-routing/seed1/sim_PL_test_00.txt",
            "predictions/all/ensemble/seed1/sim_CR_test_00.txt",
        ],
    );
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("SIMULATED"), "{table}");
    for row in [
        "plain",
        "as many steps as + double_hard",
        "+ double_hard + SceneMix",
        "extra steps",
        "scene-aware",
        "routed by the true scene",
        "ensemble",
    ] {
        assert!(table.contains(row), "missing row {row}:\n{table}");
    }
    // The simulated sequences were written in the CRUW layout and read back from it.
    let sim = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("radar-sim"))
        .expect("simulated CRUW root in the cache")
        .path();
    assert!(sim
        .join("sequences/train/sim_PL_train_00/RADAR_RA_H/000000_0000.npy")
        .is_file());
    assert!(sim.join("annotations/train/sim_HW_train_00.txt").is_file());
    // Every AP and AR cell (overall and per scene) of the seven rows per architecture and the
    // ensemble recomputes from its submissions.
    assert_verified(&dir, (2 * 7 + 1) * 6);
}
