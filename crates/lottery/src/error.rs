/// Lottery errors name the setting or file at fault and say what to change.
#[derive(Debug, thiserror::Error)]
pub enum LotteryError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "non-finite loss {loss} at update {update}: lower the learning rate or check the data"
    )]
    NonFinite { update: usize, loss: f64 },
    #[error(transparent)]
    Model(#[from] kiln_models::ModelError),
    #[error(transparent)]
    Data(#[from] kiln_data::DataError),
}
