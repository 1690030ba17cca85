//! The embedding search spaces (spec §5.2, §5.3): one choice vector per table.
//!
//! * dimension (FBNetV2-style masking): one `rows × D_max` table; option `d_k` is the lookup
//!   truncated to `d_k` columns and zero-padded back. `Σ_k m_k·pad(trunc_{d_k}(e))` equals
//!   `e ⊙ (m · C)` with `C[k, j] = 1` for `j < d_k`, which is how it is computed here;
//! * cardinality: one separate table per option (`c_k = max(⌊frac_k·n_t⌋, 1)` rows, looked up
//!   at `id mod c_k`), never slices of one table, so hashed and unhashed ids do not collide
//!   inconsistently.
//!
//! Costs are expected parameters per table, `Σ_k m_k·rows·d_k` (dimension) and `Σ_k m_k·c_k·d`
//! (cardinality).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use kiln_models::dlrm::{dlrm_table, pad_to, CtrRows};
use rand_chacha::ChaCha8Rng;

use crate::mlp::weights_row;

#[derive(Module, Debug)]
pub struct EmbDimSuper {
    /// `rows_t × D_max` per table.
    pub tables: Vec<Param<Tensor<2>>>,
    pub dims: Vec<usize>,
}

impl EmbDimSuper {
    pub fn new(rows: &[usize], dims: &[usize], rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let d_max = dims.iter().copied().max().unwrap_or(0);
        Self {
            tables: rows
                .iter()
                .map(|&r| dlrm_table(r, d_max, rng, device))
                .collect(),
            dims: dims.to_vec(),
        }
    }

    pub fn d_max(&self) -> usize {
        self.dims.iter().copied().max().unwrap_or(0)
    }

    /// `C[k, j] = 1` for `j < d_k`: option `k`'s column mask.
    fn columns(&self, device: &Device) -> Tensor<2> {
        let (n, d) = (self.dims.len(), self.d_max());
        let v: Vec<f32> = (0..n * d)
            .map(|x| f32::from(u8::from(x % d < self.dims[x / d])))
            .collect();
        Tensor::from_data(TensorData::new(v, [n, d]), device)
    }

    /// Mixed lookups, each `[B, D_max]`.
    pub fn forward(&self, rows: &CtrRows, masks: &[Tensor<2>], device: &Device) -> Vec<Tensor<2>> {
        let c = self.columns(device);
        self.tables
            .iter()
            .enumerate()
            .map(|(f, t)| {
                let w = t.val();
                let r = w.dims()[0];
                w.select(0, rows.ids(f, r, device)) * masks[f].clone().matmul(c.clone())
            })
            .collect()
    }

    /// Expected parameters `[B]`.
    pub fn expected_cost(&self, masks: &[Tensor<2>]) -> Tensor<1> {
        let b = masks[0].dims()[0];
        let mut total: Option<Tensor<1>> = None;
        for (t, m) in self.tables.iter().zip(masks) {
            let rows = t.dims()[0];
            let per: Vec<f64> = self.dims.iter().map(|&d| (rows * d) as f64).collect();
            let c = m
                .clone()
                .mul(weights_row(&per, &m.device()))
                .sum_dim(1)
                .reshape([b]);
            total = Some(match total {
                Some(a) => a + c,
                None => c,
            });
        }
        total.expect("at least one table")
    }

    pub fn chosen_dims(&self, choice: &[usize]) -> Vec<usize> {
        choice.iter().map(|&k| self.dims[k]).collect()
    }

    /// Tables of the chosen widths with this supernet's values (first `d_k` columns).
    pub fn standalone(&self, choice: &[usize]) -> Vec<Param<Tensor<2>>> {
        self.tables
            .iter()
            .zip(choice)
            .map(|(t, &k)| Param::from_tensor(t.val().narrow(1, 0, self.dims[k])))
            .collect()
    }
}

#[derive(Module, Debug)]
pub struct EmbCardSuper {
    /// `options[t][k]`: table `t`'s option `k`, `c_{t,k} × d`.
    pub options: Vec<Vec<Param<Tensor<2>>>>,
}

/// `c_k = max(⌊frac_k·count⌋, 1)` (spec §5.3).
pub fn card_rows(count: usize, fractions: &[f64]) -> Vec<usize> {
    fractions
        .iter()
        .map(|f| ((f * count as f64).floor() as usize).max(1))
        .collect()
}

impl EmbCardSuper {
    pub fn new(
        counts: &[usize],
        fractions: &[f64],
        d: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Self {
        Self {
            options: counts
                .iter()
                .map(|&n| {
                    card_rows(n, fractions)
                        .into_iter()
                        .map(|r| dlrm_table(r, d, rng, device))
                        .collect()
                })
                .collect(),
        }
    }

    pub fn rows(&self, t: usize) -> Vec<usize> {
        self.options[t].iter().map(|p| p.dims()[0]).collect()
    }

    /// Mixed lookups, each `[B, d]` (padded to `d_model`).
    pub fn forward(
        &self,
        rows: &CtrRows,
        masks: &[Tensor<2>],
        d_model: usize,
        device: &Device,
    ) -> Vec<Tensor<2>> {
        self.options
            .iter()
            .enumerate()
            .map(|(f, opts)| {
                let mut acc: Option<Tensor<2>> = None;
                for (k, t) in opts.iter().enumerate() {
                    let w = t.val();
                    let r = w.dims()[0];
                    let y = w.select(0, rows.ids(f, r, device)) * masks[f].clone().narrow(1, k, 1);
                    acc = Some(match acc {
                        Some(a) => a + y,
                        None => y,
                    });
                }
                pad_to(acc.expect("at least one option"), d_model)
            })
            .collect()
    }

    pub fn expected_cost(&self, masks: &[Tensor<2>]) -> Tensor<1> {
        let b = masks[0].dims()[0];
        let mut total: Option<Tensor<1>> = None;
        for (opts, m) in self.options.iter().zip(masks) {
            let per: Vec<f64> = opts
                .iter()
                .map(|p| (p.dims()[0] * p.dims()[1]) as f64)
                .collect();
            let c = m
                .clone()
                .mul(weights_row(&per, &m.device()))
                .sum_dim(1)
                .reshape([b]);
            total = Some(match total {
                Some(a) => a + c,
                None => c,
            });
        }
        total.expect("at least one table")
    }

    pub fn chosen_rows(&self, choice: &[usize]) -> Vec<usize> {
        choice
            .iter()
            .enumerate()
            .map(|(t, &k)| self.options[t][k].dims()[0])
            .collect()
    }

    pub fn standalone(&self, choice: &[usize]) -> Vec<Param<Tensor<2>>> {
        choice
            .iter()
            .enumerate()
            .map(|(t, &k)| Param::from_tensor(self.options[t][k].val()))
            .collect()
    }
}
