use std::path::PathBuf;

/// Data errors name the file (and line or column) and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: file not found; {hint}")]
    Missing { path: PathBuf, hint: String },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    Malformed {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Layout { path: PathBuf, msg: String },
    #[error("{path}: tokenizer: {msg}")]
    Tokenizer { path: PathBuf, msg: String },
    #[error("{path}: image not found (referenced by {referenced_by}); check the image folder (for vqa2_yesno: shared/data/vqa2_yesno/images_112, see MANIFEST.md) or drop the questions that use it")]
    MissingImage {
        path: PathBuf,
        referenced_by: String,
    },
    #[error("{path}: cannot decode image: {msg}; the file is corrupt or not an image: fetch it again (see MANIFEST.md)")]
    Image { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    /// A metric asked to score nothing, or given a NaN: an error, never a number.
    #[error("{metric}: {msg}")]
    Metric { metric: &'static str, msg: String },
}

impl DataError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                hint: "check --data-dir (or KILN_DATA) points at a GLUE folder such as glue_data/"
                    .into(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}
