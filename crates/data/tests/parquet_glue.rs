//! The hub's parquet layout reads back through `read_glue_file`.

use kiln_data::parquet_reader::write_glue_parquet;
use kiln_data::{read_glue_file, Example, GlueTask};

#[test]
fn parquet_pair_and_single_layouts_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let pair = vec![
        Example {
            text_a: "A man.".into(),
            text_b: Some("A person.".into()),
            label: Some(0.0),
        },
        Example {
            text_a: "Ünïcode ✓".into(),
            text_b: Some("x".into()),
            label: Some(1.0),
        },
    ];
    let p = dir.path().join("rte.parquet");
    write_glue_parquet(&p, &pair).unwrap();
    assert_eq!(read_glue_file(&p, GlueTask::Rte).unwrap(), pair);

    // A test split: every label -1, read back as unlabelled.
    let test = vec![
        Example {
            text_a: "test row".into(),
            text_b: Some("y".into()),
            label: None,
        };
        2
    ];
    let p = dir.path().join("rte-test.parquet");
    write_glue_parquet(&p, &test).unwrap();
    assert_eq!(read_glue_file(&p, GlueTask::Rte).unwrap(), test);

    let single = vec![Example {
        text_a: "good".into(),
        text_b: None,
        label: Some(1.0),
    }];
    let p = dir.path().join("sst2.parquet");
    write_glue_parquet(&p, &single).unwrap();
    assert_eq!(read_glue_file(&p, GlueTask::Sst2).unwrap(), single);
}

#[test]
fn not_a_parquet_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.parquet");
    std::fs::write(&p, b"sentence\tlabel\n").unwrap();
    let e = read_glue_file(&p, GlueTask::Sst2).unwrap_err().to_string();
    assert!(e.contains("train.parquet") && e.contains("parquet"), "{e}");
}

fn ex(label: Option<f32>) -> Example {
    Example {
        text_a: "good".into(),
        text_b: None,
        label,
    }
}

// Issue 35: labels are checked where they are read, and an empty split is an error, in the
// parquet layout as in TSV.
#[test]
fn parquet_labels_are_checked_and_empty_files_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.parquet");

    write_glue_parquet(&p, &[ex(Some(1.0)), ex(Some(2.0))]).unwrap();
    let e = read_glue_file(&p, GlueTask::Sst2).unwrap_err().to_string();
    assert!(e.contains("train.parquet:2") && e.contains("0 or 1"), "{e}");

    write_glue_parquet(&p, &[ex(Some(1.0)), ex(None), ex(Some(0.0))]).unwrap();
    let e = read_glue_file(&p, GlueTask::Sst2).unwrap_err().to_string();
    assert!(
        e.contains("train.parquet:2") && e.contains("no label") && e.contains("row 1"),
        "{e}"
    );

    write_glue_parquet(&p, &[]).unwrap();
    let e = read_glue_file(&p, GlueTask::Sst2).unwrap_err().to_string();
    assert!(
        e.contains("train.parquet") && e.contains("no examples"),
        "{e}"
    );

    // STS-B scores outside [0, 5] (the writer stores whole numbers).
    write_glue_parquet(&p, &[ex(Some(3.0)), ex(Some(7.0))]).unwrap();
    let e = read_glue_file(&p, GlueTask::Stsb).unwrap_err().to_string();
    assert!(e.contains("train.parquet:2") && e.contains("[0, 5]"), "{e}");
}

/// STS-B scores survive the export: written as integers they came back 2.5 → 2.
#[test]
fn stsb_scores_round_trip_with_their_fractions() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        Example {
            text_a: "A man plays.".into(),
            text_b: Some("A person plays.".into()),
            label: Some(2.5),
        },
        Example {
            text_a: "x".into(),
            text_b: Some("y".into()),
            label: Some(4.0),
        },
    ];
    let p = dir.path().join("stsb.parquet");
    write_glue_parquet(&p, &rows).unwrap();
    assert_eq!(read_glue_file(&p, GlueTask::Stsb).unwrap(), rows);
}
