/// CLIP-ViL errors name the setting, file or tensor at fault and say what to change.
#[derive(Debug, thiserror::Error)]
pub enum ClipVilError {
    #[error("{0}")]
    Invalid(String),
    #[error("non-finite loss {loss} at epoch {epoch} step {step}: lower the learning rate or check the targets")]
    NonFinite {
        epoch: usize,
        step: usize,
        loss: f64,
    },
    #[error(transparent)]
    Model(#[from] kiln_models::ModelError),
    #[error(transparent)]
    Data(#[from] kiln_data::DataError),
}
