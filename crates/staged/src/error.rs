/// Growth and training-state errors.
#[derive(Debug, thiserror::Error)]
pub enum StagedError {
    #[error("training state: {0}")]
    State(String),
    #[error(transparent)]
    Model(#[from] kiln_models::ModelError),
}
