use std::path::PathBuf;

/// Model loading/saving/shaping errors. Every variant names the file or tensor involved and what
/// to do about it, since these surface straight to a researcher's terminal.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: file not found ({what}); pass a HuggingFace model directory with config.json and model.safetensors (e.g. `just fetch all-MiniLM-L6-v2`)")]
    Missing { path: PathBuf, what: &'static str },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid config.json: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{path}: corrupt or truncated safetensors file: {msg}; re-download it")]
    CorruptWeights { path: PathBuf, msg: String },
    #[error("{path}: tensor `{tensor}` has shape {found:?} but the model's config implies {expected:?}; the config and weights belong to different models")]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: tensor `{tensor}` is missing from the checkpoint ({hint})")]
    MissingTensor {
        path: PathBuf,
        tensor: String,
        hint: String,
    },
    #[error("{path}: {msg}")]
    Store { path: PathBuf, msg: String },
    #[error("{path}: tensor `{tensor}` is stored as {found}{others}, but this loader reads float32 weights; convert the checkpoint to float32 (in Python: `model.float().save_pretrained(dir)` or `save_file({{k: v.float() for k, v in load_file(path).items()}}, path)`)")]
    Dtype {
        path: PathBuf,
        tensor: String,
        found: String,
        /// ", like N more tensors" when there are others, else empty.
        others: String,
    },
    #[error("mask shape mismatch: {0}")]
    Mask(String),
    #[error("{0}")]
    Invalid(String),
    #[error("training loss became {loss}; lower the learning rate or check the labels")]
    NonFiniteLoss { loss: f64 },
    /// A metric or reader error surfacing through evaluation.
    #[error(transparent)]
    Data(#[from] kiln_data::DataError),
}
