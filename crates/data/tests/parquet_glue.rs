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
        Example {
            text_a: "test row".into(),
            text_b: Some("y".into()),
            label: None,
        },
    ];
    let p = dir.path().join("rte.parquet");
    write_glue_parquet(&p, &pair).unwrap();
    assert_eq!(read_glue_file(&p, GlueTask::Rte).unwrap(), pair);

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
