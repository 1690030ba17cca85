//! GLUE as the HuggingFace hub stores it: parquet files with columns `sentence` or
//! `sentence1`/`sentence2` (`question`/`sentence`, `question1`/`question2`, `premise`/
//! `hypothesis`), `label` and `idx`. Read with the arrow-rs `parquet` crate's row API.
//! (kiln reads parquet with arrow-rs rather than polars: polars costs 14-27 minutes of cold
//! build on the 2-core machines CI runs on, parquet about one.)

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::{DataError, Example, GlueTask};

pub fn read_glue_parquet(path: &Path, task: GlueTask) -> Result<Vec<Example>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let layout_err = |msg: String| DataError::Layout {
        path: path.to_path_buf(),
        msg,
    };
    let reader =
        SerializedFileReader::new(file).map_err(|e| layout_err(format!("not a parquet file: {e}")))?;
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| layout_err(format!("cannot read rows: {e}")))?;
    let mut out = Vec::new();
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
        let label = label.filter(|v| task.is_regression() || *v >= 0.0);
        out.push(Example {
            text_a,
            text_b,
            label,
        });
    }
    Ok(out)
}
