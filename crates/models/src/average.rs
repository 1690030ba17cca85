//! Checkpoint averaging: the element-wise mean of every float parameter over several copies of
//! one module (fairseq's `scripts/average_checkpoints.py`, which the WMT14 recipes use on the
//! last epoch checkpoints). Every tensor is averaged, frozen ones included, as the script does;
//! identical frozen tensors come back equal up to float rounding of the mean.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::ModelError;

struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().flatten::<1>(0, D - 1));
    }
}

struct Replace {
    means: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let mean = self.means.next();
        param.map(|t| match mean {
            Some(m) => m.reshape(t.shape()),
            None => t,
        })
    }
}

/// The module whose float parameters are the means of `models`' (which must share one
/// structure: copies of one model at different points of training). The last model provides
/// everything that is not a float parameter.
pub fn average_params<M: Module>(models: &[M]) -> Result<M, ModelError> {
    let Some(last) = models.last() else {
        return Err(ModelError::Invalid(
            "average_params: no models to average".into(),
        ));
    };
    let mut sums: Option<Vec<Tensor<1>>> = None;
    for (i, m) in models.iter().enumerate() {
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        sums = Some(match sums {
            None => c.0,
            Some(s) => {
                if s.len() != c.0.len() {
                    return Err(ModelError::Invalid(format!(
                        "average_params: model {i} has {} float parameters, model 0 has {}",
                        c.0.len(),
                        s.len()
                    )));
                }
                let mut out = Vec::with_capacity(s.len());
                for (j, (a, b)) in s.into_iter().zip(c.0).enumerate() {
                    if a.dims() != b.dims() {
                        return Err(ModelError::Invalid(format!(
                            "average_params: parameter {j} of model {i} has {} values, model 0's has {}",
                            b.dims()[0],
                            a.dims()[0]
                        )));
                    }
                    out.push(a + b);
                }
                out
            }
        });
    }
    let n = models.len() as f64;
    let means: Vec<Tensor<1>> = sums
        .unwrap_or_default()
        .into_iter()
        .map(|s| s / n)
        .collect();
    Ok(last.clone().map(&mut Replace {
        means: means.into_iter(),
    }))
}
