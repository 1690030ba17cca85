use std::path::PathBuf;

/// Errors of the shared layer. Each variant names the thing that went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("device `{requested}` needs the `{feature}` cargo feature; rebuild with `--features {feature}` (or `just backend={feature} ...`)")]
    BackendNotCompiled { requested: String, feature: String },
    #[error("unknown device `{0}`; expected one of: flex, ndarray, wgpu, vulkan, cuda, cuda:N, tch, tch-cuda, tch-cuda:N")]
    UnknownDevice(String),
    #[error("device `{requested}`: LibTorch sees {found} CUDA device(s); check `nvidia-smi`, and that the installed torch is a CUDA build (`just backend=tch-cuda torch-info`)")]
    NoCudaDevice { requested: String, found: usize },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
