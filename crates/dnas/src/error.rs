/// DNAS errors name the setting, tensor or stage at fault and say what to change.
#[derive(Debug, thiserror::Error)]
pub enum DnasError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "non-finite loss {loss} at {stage} step {step}: lower the learning rate or check the data"
    )]
    NonFinite {
        stage: String,
        step: usize,
        loss: f64,
    },
    #[error(transparent)]
    Model(#[from] kiln_models::ModelError),
    #[error(transparent)]
    Data(#[from] kiln_data::DataError),
}
