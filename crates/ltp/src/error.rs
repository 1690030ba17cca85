/// Token-pruning errors: what was wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum LtpError {
    #[error("{what} = {value} is out of range: {hint}")]
    Range {
        what: &'static str,
        value: f64,
        hint: &'static str,
    },
    #[error(transparent)]
    Model(#[from] kiln_models::ModelError),
    #[error("{0}")]
    Invalid(String),
}

/// Checks that `value` is finite and inside `(lo, hi)` (open bounds) or `[lo, hi)` with
/// `lo_inclusive`.
pub(crate) fn check_range(
    what: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    lo_inclusive: bool,
    hint: &'static str,
) -> Result<(), LtpError> {
    let above = if lo_inclusive {
        value >= lo
    } else {
        value > lo
    };
    if value.is_finite() && above && value < hi {
        Ok(())
    } else {
        Err(LtpError::Range { what, value, hint })
    }
}
