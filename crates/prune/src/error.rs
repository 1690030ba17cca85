/// Pruning errors: what was wrong with the request and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("constraint {0} is outside (0, 1): it is the fraction of FLOPs (or latency) to keep, e.g. 0.5")]
    Constraint(f64),
    #[error("the sample set is empty: mask gradients need at least one labelled example")]
    EmptySamples,
    #[error("masks do not fit the model: {0}")]
    Shape(String),
    #[error("no mask satisfies the constraint: {0}")]
    Infeasible(String),
    #[error(transparent)]
    Model(#[from] kiln_models::ModelError),
    #[error("{0}")]
    Invalid(String),
}
