use std::path::PathBuf;

/// Radar errors name the file, line or tensor at fault and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum RadarError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file's content is not what its format says (line 0: the file as a whole).
    #[error("{path}{}: {msg}", if *.line > 0 { format!(" line {}", .line) } else { String::new() })]
    Format {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// A setting or an argument outside what the method allows.
    #[error("{0}")]
    Invalid(String),
    /// The ROD2021 files and metric (kiln-data): their messages name the file and line.
    #[error(transparent)]
    Data(#[from] kiln_data::DataError),
    #[error("non-finite loss {loss} at step {step}: lower the learning rate or check the data")]
    NonFinite { step: usize, loss: f64 },
}

impl RadarError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            line,
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, RadarError>;
