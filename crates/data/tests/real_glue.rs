//! Reads every file under ../shared/data/glue_data and glue_derived (skips when absent).

use std::path::{Path, PathBuf};

use kiln_data::glue::read_id_pairs;
use kiln_data::{read_glue_file, GlueTask, TextTokenizer};

fn shared() -> Option<PathBuf> {
    let p = kiln_core::paths::shared_data();
    if p.is_none() {
        kiln_core::paths::skip("../shared/data");
    }
    p
}

fn check(path: &Path, task: GlueTask, rows: usize, labelled: bool) {
    let ex = read_glue_file(path, task).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ex.len(), rows, "{}", path.display());
    assert!(ex.iter().all(|e| !e.text_a.is_empty()));
    assert!(
        ex.iter().all(|e| e.text_b.is_some() == task.is_pair()),
        "{}",
        path.display()
    );
    let with_label = ex.iter().filter(|e| e.label.is_some()).count();
    assert_eq!(
        with_label,
        if labelled { rows } else { 0 },
        "{}",
        path.display()
    );
}

#[test]
fn every_shared_glue_file_reads() {
    let Some(d) = shared() else { return };
    let g = d.join("glue_data");
    check(&g.join("SST-2/train.tsv"), GlueTask::Sst2, 67_349, true);
    check(&g.join("SST-2/dev.tsv"), GlueTask::Sst2, 872, true);
    check(&g.join("SST-2/test.tsv"), GlueTask::Sst2, 1_821, false);
    check(&g.join("MRPC/train.tsv"), GlueTask::Mrpc, 3_668, true);
    check(&g.join("MRPC/dev.tsv"), GlueTask::Mrpc, 408, true);
    check(&g.join("MRPC/test.tsv"), GlueTask::Mrpc, 1_725, false);
    check(
        &g.join("MRPC/msr_paraphrase_train.txt"),
        GlueTask::Mrpc,
        4_076,
        true,
    );
    check(
        &g.join("MRPC/msr_paraphrase_test.txt"),
        GlueTask::Mrpc,
        1_725,
        true,
    );
    check(&g.join("STS-B/train.tsv"), GlueTask::Stsb, 5_749, true);
    check(&g.join("STS-B/dev.tsv"), GlueTask::Stsb, 1_500, true);
    check(&g.join("STS-B/test.tsv"), GlueTask::Stsb, 1_379, false);
    for (f, n) in [
        ("sts-train.tsv", 5_749),
        ("sts-dev.tsv", 1_500),
        ("sts-test.tsv", 1_379),
    ] {
        check(&g.join("STS-B/original").join(f), GlueTask::Stsb, n, true);
    }
    let h = d.join("glue_derived");
    check(&h.join("CoLA/train.tsv"), GlueTask::Cola, 8_551, true);
    check(&h.join("CoLA/dev_ood.tsv"), GlueTask::Cola, 516, true);
    check(&h.join("RTE/train.tsv"), GlueTask::Rte, 2_490, true);
    check(&h.join("RTE/dev.tsv"), GlueTask::Rte, 277, true);
    check(&h.join("RTE/test.tsv"), GlueTask::Rte, 3_000, false);
}

#[test]
fn label_balance_and_values_are_glue_like() {
    let Some(d) = shared() else { return };
    let dev = read_glue_file(&d.join("glue_data/SST-2/dev.tsv"), GlueTask::Sst2).unwrap();
    let pos = dev.iter().filter(|e| e.label == Some(1.0)).count();
    assert_eq!(pos, 444, "SST-2 dev has 444 positives (MANIFEST)");
    let sts = read_glue_file(&d.join("glue_data/STS-B/dev.tsv"), GlueTask::Stsb).unwrap();
    assert_eq!(sts[0].label, Some(5.0));
    assert!(sts.iter().all(|e| (0.0..=5.0).contains(&e.label.unwrap())));
    let mrpc = read_glue_file(&d.join("glue_data/MRPC/train.tsv"), GlueTask::Mrpc).unwrap();
    assert!(
        mrpc[0].text_a.starts_with("Amrozi accused"),
        "BOM handled: {}",
        mrpc[0].text_a
    );
}

// Issue 35: a `nan` score in the STS-B dev file reached Spearman, which ranked it after every
// number and reported a finite, wrong correlation (-5.08 instead of -3.19); a dev file cut to
// its header scored accuracy 0. Both are errors naming the file (and line) now.
#[test]
fn damaged_real_dev_files_are_errors() {
    let Some(d) = shared() else { return };
    let text = std::fs::read_to_string(d.join("glue_data/STS-B/dev.tsv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dev.tsv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Line 11 of the file: the score is the last column.
    let cut = lines[10].rfind('\t').unwrap();
    lines[10] = format!("{}\tnan", &lines[10][..cut]);
    std::fs::write(&p, lines.join("\n")).unwrap();
    let err = read_glue_file(&p, GlueTask::Stsb).unwrap_err().to_string();
    assert!(err.contains("dev.tsv:11") && err.contains("nan"), "{err}");

    let sst = std::fs::read_to_string(d.join("glue_data/SST-2/dev.tsv")).unwrap();
    std::fs::write(&p, sst.lines().next().unwrap()).unwrap();
    let err = read_glue_file(&p, GlueTask::Sst2).unwrap_err().to_string();
    assert!(
        err.contains("dev.tsv") && err.contains("no examples"),
        "{err}"
    );
}

#[test]
fn mrpc_dev_ids_match_dev_split() {
    let Some(d) = shared() else { return };
    let ids = read_id_pairs(&d.join("glue_data/MRPC/dev_ids.tsv")).unwrap();
    assert_eq!(ids.len(), 408);
    assert_eq!(ids[0], (1606495, 1606619));
}

#[test]
fn non_example_file_is_a_clear_error() {
    let Some(d) = shared() else { return };
    // dev_ids.tsv holds id pairs, not examples: reading it as MRPC examples must say why.
    let err = read_glue_file(&d.join("glue_data/MRPC/dev_ids.tsv"), GlueTask::Mrpc)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dev_ids.tsv") && err.contains("2 columns"),
        "{err}"
    );
}

#[test]
fn missing_file_names_path() {
    let err = read_glue_file(Path::new("/no/such/SST-2/train.tsv"), GlueTask::Sst2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/no/such/SST-2/train.tsv") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn bom_and_crlf_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dev.tsv");
    std::fs::write(&p, "\u{feff}sentence\tlabel\r\nfine movie\t1\r\n").unwrap();
    let ex = read_glue_file(&p, GlueTask::Sst2).unwrap();
    assert_eq!(ex[0].text_a, "fine movie");
    assert_eq!(ex[0].label, Some(1.0));
}

#[test]
fn missing_tokenizer_is_a_clear_error() {
    let err = TextTokenizer::from_file(Path::new("/no/model/tokenizer.json"), 128)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/no/model/tokenizer.json") && err.contains("tokenizer.json"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tokenizer.json");
    std::fs::write(&p, "{not json").unwrap();
    let err = TextTokenizer::from_file(&p, 128).unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("tokenizer"),
        "{err}"
    );
}

#[test]
fn word_level_tokenizer_builds_bert_style_pairs() {
    let words: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let t = TextTokenizer::word_level(&words, 16).unwrap();
    let e = t.encode("a b", Some("c zzz")).unwrap();
    assert_eq!(e.ids, vec![2, 4, 5, 3, 6, 1, 3]);
    assert_eq!(e.type_ids, vec![0, 0, 0, 0, 1, 1, 1]);
}

#[test]
fn minilm_tokenizer_pads_nothing_and_truncates_to_max_len() {
    let Some(m) = kiln_core::paths::minilm_dir() else {
        kiln_core::paths::skip("all-MiniLM-L6-v2 (run `just fetch all-MiniLM-L6-v2`)");
        return;
    };
    let t = TextTokenizer::from_file(&m.join("tokenizer.json"), 12).unwrap();
    let e = t.encode("hello world", None).unwrap();
    assert_eq!(e.ids, vec![101, 7592, 2088, 102]);
    let long = "word ".repeat(50);
    let e = t.encode(&long, Some(&long)).unwrap();
    assert_eq!(e.ids.len(), 12);
}
