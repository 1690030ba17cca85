//! Hardware cost: what an op costs (a look-up table by op name, FLOPs by default, or a
//! measured table loaded from a file) and how the expected cost enters the loss (spec §4.2
//! step 4).

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::DnasError;

/// Cost of the FC ops of the MLP search, by op name `fc_<in>_<out>`. Ops missing from a loaded
/// table fall back to FLOPs, so a partial latency table still covers every op.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpCosts {
    pub table: BTreeMap<String, f64>,
}

impl OpCosts {
    /// FLOPs: an FC `i → o` costs `o·(2i − 1) + o = 2·i·o` (§5.1); a skip costs 0.
    pub fn flops() -> Self {
        Self::default()
    }

    pub fn fc(&self, i: usize, o: usize) -> f64 {
        self.table
            .get(&format!("fc_{i}_{o}"))
            .copied()
            .unwrap_or((2 * i * o) as f64)
    }

    /// A JSON object `{"fc_13_512": 0.012, ...}` (e.g. measured latencies).
    pub fn load(path: &Path) -> Result<Self, DnasError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            DnasError::Invalid(format!(
                "{}: cannot read the op cost table: {e}",
                path.display()
            ))
        })?;
        let table: BTreeMap<String, f64> = serde_json::from_str(&text).map_err(|e| {
            DnasError::Invalid(format!(
                "{}: not a JSON object of op name → cost (e.g. {{\"fc_13_512\": 0.012}}): {e}",
                path.display()
            ))
        })?;
        if let Some((k, v)) = table.iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return Err(DnasError::Invalid(format!(
                "{}: op `{k}` has cost {v}; costs must be finite and non-negative",
                path.display()
            )));
        }
        Ok(Self { table })
    }
}

/// How the per-example expected cost `c_b` enters the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CostLoss {
    /// No cost term.
    None,
    /// `L_task + λ·mean_b(ln(μ·c_b)) / divisor` (all paper configs; divisor 100 in the DLRM
    /// trainer, 1 in the CNN sample, pitfall 7).
    Linear {
        lambda: f64,
        #[serde(default = "one")]
        multiplier: f64,
        #[serde(default = "hundred")]
        divisor: f64,
    },
    /// FBNet's `L_task · mean_b((ln(μ·c_b))^β) · λ`.
    Exponential {
        lambda: f64,
        beta: f64,
        #[serde(default = "one")]
        multiplier: f64,
    },
}

fn one() -> f64 {
    1.0
}
fn hundred() -> f64 {
    100.0
}

impl CostLoss {
    pub fn linear(lambda: f64) -> Self {
        CostLoss::Linear {
            lambda,
            multiplier: 1.0,
            divisor: 100.0,
        }
    }

    /// The loss to minimise from the task loss (a scalar) and the per-example cost `[B]`.
    pub fn apply(&self, task: Tensor<1>, cost: Tensor<1>) -> Tensor<1> {
        match *self {
            CostLoss::None => task,
            CostLoss::Linear {
                lambda,
                multiplier,
                divisor,
            } => {
                task + cost
                    .mul_scalar(multiplier)
                    .log()
                    .mean()
                    .mul_scalar(lambda / divisor)
            }
            CostLoss::Exponential {
                lambda,
                beta,
                multiplier,
            } => {
                task * cost
                    .mul_scalar(multiplier)
                    .log()
                    .powf_scalar(beta)
                    .mean()
                    .mul_scalar(lambda)
            }
        }
    }
}
