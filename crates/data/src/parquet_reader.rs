//! GLUE as the HuggingFace hub stores it: parquet files with columns `sentence` or
//! `sentence1`/`sentence2` (`question`/`sentence`, `question1`/`question2`, `premise`/
//! `hypothesis`), `label` and `idx`. Read with the arrow-rs `parquet` crate's row API.
//! (kiln reads parquet with arrow-rs rather than polars: polars costs 14-27 minutes of cold
//! build on the 2-core machines CI runs on, parquet about one.)

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::glue::LabelRows;
use crate::{DataError, Example, GlueTask};

pub fn read_glue_parquet(path: &Path, task: GlueTask) -> Result<Vec<Example>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let layout_err = |msg: String| DataError::Layout {
        path: path.to_path_buf(),
        msg,
    };
    let reader = SerializedFileReader::new(file)
        .map_err(|e| layout_err(format!("not a parquet file: {e}")))?;
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| layout_err(format!("cannot read rows: {e}")))?;
    let mut out = Vec::new();
    let mut labelled = LabelRows::default();
    for (i, row) in iter.enumerate() {
        let row = row.map_err(|e| DataError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!("row {}: {e}", i + 1),
        })?;
        let mut a = None;
        let mut b = None;
        let mut q = None;
        let mut s = None;
        let mut label = None;
        for (name, field) in row.get_column_iter() {
            let text = match field {
                Field::Str(v) => Some(v.clone()),
                _ => None,
            };
            let num = match field {
                Field::Long(v) => Some(*v as f32),
                Field::Int(v) => Some(*v as f32),
                Field::Float(v) => Some(*v),
                Field::Double(v) => Some(*v as f32),
                _ => None,
            };
            match name.as_str() {
                "sentence1" | "question1" | "premise" => a = text,
                "sentence2" | "question2" | "hypothesis" => b = text,
                "question" => q = text,
                "sentence" => s = text,
                "label" => label = num,
                _ => {}
            }
        }
        // QNLI: question + sentence; single-sentence tasks: sentence only.
        let (text_a, text_b) = match (a, q, s) {
            (Some(a), _, _) => (a, b),
            (None, Some(q), s) => (q, s),
            (None, None, Some(s)) => (s, None),
            _ => {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    line: i + 1,
                    msg: "row has no sentence/sentence1/question column".into(),
                })
            }
        };
        // -1 (the hub's test label) or null: unlabelled; anything else must be a valid label.
        let label = match label {
            None => None,
            Some(-1.0) => None,
            Some(v) => Some(task.check_label(v).map_err(|msg| DataError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                msg: format!("row {}: {msg}", i + 1),
            })?),
        };
        labelled.push(i + 1, label.is_some());
        out.push(Example {
            text_a,
            text_b,
            label,
        });
    }
    labelled.finish(path, task, "row")?;
    Ok(out)
}

/// Writes examples in the hub's layout (`sentence1`, `sentence2` or `sentence`, `label`, `idx`),
/// e.g. to export a subset; test labels are written as -1.
pub fn write_glue_parquet(path: &Path, examples: &[Example]) -> Result<(), DataError> {
    use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    let err = |e: parquet::errors::ParquetError| DataError::Layout {
        path: path.to_path_buf(),
        msg: format!("cannot write parquet: {e}"),
    };
    let pair = examples.first().is_some_and(|e| e.text_b.is_some());
    // Scores (STS-B) as float, as the hub's own files store them; class ids as int64. Writing a
    // score as an integer would turn 2.5 into 2 without a word.
    let scores = examples
        .iter()
        .any(|e| e.label.is_some_and(|l| l.fract() != 0.0));
    let label_type = if scores { "FLOAT" } else { "INT64" };
    let schema = if pair {
        format!("message glue {{ REQUIRED BYTE_ARRAY sentence1 (UTF8); REQUIRED BYTE_ARRAY sentence2 (UTF8); REQUIRED {label_type} label; REQUIRED INT32 idx; }}")
    } else {
        format!("message glue {{ REQUIRED BYTE_ARRAY sentence (UTF8); REQUIRED {label_type} label; REQUIRED INT32 idx; }}")
    };
    let schema = Arc::new(parse_message_type(&schema).map_err(err)?);
    let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .map_err(err)?;
    let mut rg = writer.next_row_group().map_err(err)?;
    let a: Vec<ByteArray> = examples
        .iter()
        .map(|e| ByteArray::from(e.text_a.as_str()))
        .collect();
    let b: Vec<ByteArray> = examples
        .iter()
        .map(|e| ByteArray::from(e.text_b.as_deref().unwrap_or("")))
        .collect();
    let labels: Vec<i64> = examples
        .iter()
        .map(|e| e.label.map_or(-1, |l| l as i64))
        .collect();
    let idx: Vec<i32> = (0..examples.len() as i32).collect();
    let mut col_no = 0;
    while let Some(mut col) = rg.next_column().map_err(err)? {
        let text_cols = if pair { 2 } else { 1 };
        if col_no < text_cols {
            let v = if col_no == 0 { &a } else { &b };
            col.typed::<ByteArrayType>()
                .write_batch(v, None, None)
                .map_err(err)?;
        } else if col_no == text_cols && scores {
            let f: Vec<f32> = examples.iter().map(|e| e.label.unwrap_or(-1.0)).collect();
            col.typed::<FloatType>()
                .write_batch(&f, None, None)
                .map_err(err)?;
        } else if col_no == text_cols {
            col.typed::<Int64Type>()
                .write_batch(&labels, None, None)
                .map_err(err)?;
        } else {
            col.typed::<Int32Type>()
                .write_batch(&idx, None, None)
                .map_err(err)?;
        }
        col.close().map_err(err)?;
        col_no += 1;
    }
    rg.close().map_err(err)?;
    writer.close().map_err(err)?;
    Ok(())
}
