//! DLRM (Naumov et al. 2019) as `facebookresearch/dlrm` builds it for Criteo Kaggle: a bottom
//! MLP over the dense features, one embedding table per categorical feature, the pairwise dot
//! interaction, a top MLP ending in a sigmoid, PyTorch's `BCELoss` (spec dnas-dlrm.md §2).
//!
//! What the reference does and kiln keeps, because the DNAS recipe depends on it:
//! * its initialisation (Linear `W ~ N(0, sqrt(2/(m+n)))`, `b ~ N(0, sqrt(1/m))`, tables
//!   `U(±sqrt(1/rows))`): SGD at lr 1-2 with clipping at 100 only trains from this start (§12.9);
//! * lookups take `id % rows` (the DNAS fork's DLRM always does), so a table can be smaller
//!   than its feature's vocabulary (embedding-cardinality search);
//! * a table narrower than the interaction width is zero-padded to it (embedding-dimension
//!   search; §5.2 caveat: pad to the bottom MLP's output width, not to the widest sampled table);
//! * the loss is BCE on probabilities with PyTorch's log clamp at −100, not BCE with logits, so
//!   a supernet mixing several sigmoid heads and the standalone model share one loss.
//!
//! Initial values are drawn on the host from a seeded ChaCha stream, so a model is the same on
//! every backend and a test can rebuild it exactly.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Host-side rows of a CTR batch: what a reader produced, before any model-specific id mapping.
#[derive(Debug, Clone, Copy)]
pub struct CtrRows<'a> {
    /// `n × n_dense`, already `ln(1 + x)`.
    pub dense: &'a [f32],
    /// `n × n_cat` raw per-feature ids.
    pub cats: &'a [u32],
    pub labels: &'a [f32],
    pub n_dense: usize,
    pub n_cat: usize,
}

impl<'a> From<&'a kiln_data::ctr::CtrData> for CtrRows<'a> {
    fn from(d: &'a kiln_data::ctr::CtrData) -> Self {
        CtrRows {
            dense: &d.dense,
            cats: &d.cats,
            labels: &d.labels,
            n_dense: d.n_dense,
            n_cat: d.n_cat,
        }
    }
}

impl<'a> CtrRows<'a> {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Rows `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> CtrRows<'a> {
        CtrRows {
            dense: &self.dense[start * self.n_dense..end * self.n_dense],
            cats: &self.cats[start * self.n_cat..end * self.n_cat],
            labels: &self.labels[start..end],
            ..*self
        }
    }
    pub fn dense_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.dense.to_vec(), [self.len(), self.n_dense]),
            device,
        )
    }
    pub fn label_tensor(&self, device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(self.labels.to_vec(), [self.len()]), device)
    }
    /// Feature `f`'s ids taken modulo `rows` (the table's size), as an index tensor.
    pub fn ids(&self, f: usize, rows: usize, device: &Device) -> Tensor<1, Int> {
        let ids: Vec<i64> = (0..self.len())
            .map(|r| (self.cats[r * self.n_cat + f] as usize % rows) as i64)
            .collect();
        Tensor::from_data(TensorData::new(ids, [self.len()]), device)
    }
}

/// Standard normal draws (Box–Muller), so initialisation needs no extra crate.
pub fn normal_vec(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos() * std) as f32);
        out.push((r * t.sin() * std) as f32);
    }
    out.truncate(n);
    out
}

/// A Linear `i → o` with DLRM's initialisation.
pub fn dlrm_linear(i: usize, o: usize, rng: &mut ChaCha8Rng, device: &Device) -> Linear {
    let w = normal_vec(rng, i * o, (2.0 / (i + o) as f64).sqrt());
    let b = normal_vec(rng, o, (1.0 / o as f64).sqrt());
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [i, o]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [o]),
            device,
        ))),
    }
}

/// An embedding table `rows × d` with DLRM's initialisation.
pub fn dlrm_table(
    rows: usize,
    d: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Param<Tensor<2>> {
    let k = (1.0 / rows as f64).sqrt();
    let v: Vec<f32> = (0..rows * d)
        .map(|_| rng.random_range(-k..k.max(f64::MIN_POSITIVE)) as f32)
        .collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [rows, d]), device))
}

/// How an MLP ends. DLRM's bottom MLP ends in a ReLU, its top MLP in a sigmoid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Last {
    Relu,
    Sigmoid,
}

/// Linear layers with ReLU between them and `last` after the final one.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    /// `true`: sigmoid after the last layer, else ReLU.
    pub sigmoid_last: bool,
}

impl Mlp {
    /// `sizes = [in, h1, ..., out]` (at least two entries).
    pub fn new(sizes: &[usize], last: Last, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        Self {
            layers: sizes
                .windows(2)
                .map(|w| dlrm_linear(w[0], w[1], rng, device))
                .collect(),
            sigmoid_last: last == Last::Sigmoid,
        }
    }

    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            x = if i + 1 == n && self.sigmoid_last {
                sigmoid(x)
            } else {
                relu(x)
            };
        }
        x
    }

    pub fn sizes(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.layers.iter().map(|l| l.weight.dims()[0]).collect();
        if let Some(l) = self.layers.last() {
            s.push(l.weight.dims()[1]);
        }
        s
    }
}

/// Feature interaction (`arch_interaction_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interaction {
    /// Strictly-lower-triangular pairwise dot products, concatenated after the dense vector.
    Dot,
    /// `Dot` with the diagonal (`arch_interaction_itself`).
    DotSelf,
    /// Concatenation of the dense vector and every embedding.
    Cat,
}

impl Interaction {
    /// The `usize` a module stores (burn modules hold plain constants, not enums).
    pub fn code(self) -> usize {
        match self {
            Interaction::Dot => 0,
            Interaction::DotSelf => 1,
            Interaction::Cat => 2,
        }
    }

    pub fn from_code(code: usize) -> Self {
        match code {
            0 => Interaction::Dot,
            1 => Interaction::DotSelf,
            _ => Interaction::Cat,
        }
    }

    /// Width of the interaction output for `n_cat` embeddings of width `d`.
    pub fn out_width(self, n_cat: usize, d: usize) -> usize {
        let t = n_cat + 1;
        match self {
            Interaction::Dot => d + t * (t - 1) / 2,
            Interaction::DotSelf => d + t * (t + 1) / 2,
            Interaction::Cat => d * t,
        }
    }

    /// The flat indices `i·T + j` of the pairs the dot interaction keeps, in DLRM's row-major
    /// order `(1,0), (2,0), (2,1), (3,0), …`.
    pub fn pairs(self, t: usize) -> Vec<usize> {
        let own = usize::from(self == Interaction::DotSelf);
        (0..t)
            .flat_map(|i| (0..i + own).map(move |j| i * t + j))
            .collect()
    }

    /// `z0` `[B, d]` and the embeddings (each `[B, d]`) to the top MLP's input.
    pub fn apply(self, z0: Tensor<2>, embs: Vec<Tensor<2>>) -> Tensor<2> {
        let [b, d] = z0.dims();
        let t = embs.len() + 1;
        let mut all = Vec::with_capacity(t);
        all.push(z0.clone());
        all.extend(embs);
        match self {
            Interaction::Cat => Tensor::cat(all, 1),
            Interaction::Dot | Interaction::DotSelf => {
                let device = z0.device();
                let tt = Tensor::stack::<3>(all, 1); // [B, T, d]
                let z = tt.clone().matmul(tt.swap_dims(1, 2)).reshape([b, t * t]);
                let idx = self.pairs(t);
                let n = idx.len();
                let idx = Tensor::<1, Int>::from_data(
                    TensorData::new(idx.into_iter().map(|i| i as i64).collect(), [n]),
                    &device,
                );
                let _ = d;
                Tensor::cat(vec![z0, z.select(1, idx)], 1)
            }
        }
    }

    /// FLOPs per example of the interaction (multiply-adds counted as 2).
    pub fn flops(self, n_cat: usize, d: usize) -> f64 {
        let t = n_cat + 1;
        match self {
            Interaction::Cat => 0.0,
            Interaction::Dot => (2 * d * t * (t - 1) / 2) as f64,
            Interaction::DotSelf => (2 * d * t * (t + 1) / 2) as f64,
        }
    }
}

/// PyTorch `BCELoss` (mean): `−[y·max(ln p, −100) + (1−y)·max(ln(1−p), −100)]`. The clamp keeps
/// a saturated sigmoid finite, which the reference's lr 1-2 runs rely on.
pub fn bce(p: Tensor<1>, y: Tensor<1>) -> Tensor<1> {
    let lp = p.clone().log().clamp_min(-100.0);
    let lq = p.neg().add_scalar(1.0).log().clamp_min(-100.0);
    let one_minus_y = y.clone().neg().add_scalar(1.0);
    (y * lp + one_minus_y * lq).mean().neg()
}

/// A DLRM's shape: everything needed to build it, and what DNAS derives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlrmConfig {
    /// `ln_bot`: `[n_dense, h1, ..., d]`; `d` is the interaction width.
    pub bottom: Vec<usize>,
    /// Hidden widths of the top MLP; its input width follows from the interaction and its
    /// output is 1.
    pub top_hidden: Vec<usize>,
    /// Rows of each table (ids are taken modulo this).
    pub table_rows: Vec<usize>,
    /// Width of each table (at most `d`; narrower lookups are zero-padded to `d`).
    pub table_dims: Vec<usize>,
    pub interaction: Interaction,
}

impl DlrmConfig {
    /// The reference shape: every table `d` wide.
    pub fn uniform(
        bottom: Vec<usize>,
        top_hidden: Vec<usize>,
        table_rows: Vec<usize>,
        interaction: Interaction,
    ) -> Self {
        let d = *bottom.last().unwrap_or(&0);
        let n = table_rows.len();
        Self {
            bottom,
            top_hidden,
            table_rows,
            table_dims: vec![d; n],
            interaction,
        }
    }

    pub fn d(&self) -> usize {
        *self.bottom.last().unwrap_or(&0)
    }

    pub fn n_cat(&self) -> usize {
        self.table_rows.len()
    }

    /// `[top input, hidden..., 1]`.
    pub fn top_sizes(&self) -> Vec<usize> {
        let mut s = vec![self.interaction.out_width(self.n_cat(), self.d())];
        s.extend(&self.top_hidden);
        s.push(1);
        s
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(format!("DLRM config: {m}")));
        if self.bottom.len() < 2 || self.bottom.contains(&0) {
            return bad(format!(
                "bottom MLP sizes {:?} need at least [n_dense, d], all > 0",
                self.bottom
            ));
        }
        if self.table_rows.len() != self.table_dims.len() {
            return bad(format!(
                "{} table row counts but {} table widths",
                self.table_rows.len(),
                self.table_dims.len()
            ));
        }
        if let Some((t, &w)) = self
            .table_dims
            .iter()
            .enumerate()
            .find(|(_, &w)| w == 0 || w > self.d())
        {
            return bad(format!(
                "table {t} is {w} wide; widths must be in 1..={} (the bottom MLP's output)",
                self.d()
            ));
        }
        if self.table_rows.contains(&0) {
            return bad("a table has 0 rows".into());
        }
        if self.top_hidden.contains(&0) {
            return bad(format!("top MLP widths {:?} contain 0", self.top_hidden));
        }
        Ok(())
    }

    /// Trainable parameters: MLP weights and biases plus every table's `rows × width`.
    pub fn params(&self) -> f64 {
        let mlp = |s: &[usize]| -> usize { s.windows(2).map(|w| w[0] * w[1] + w[1]).sum() };
        let emb: usize = self
            .table_rows
            .iter()
            .zip(&self.table_dims)
            .map(|(r, d)| r * d)
            .sum();
        (mlp(&self.bottom) + mlp(&self.top_sizes()) + emb) as f64
    }

    /// FLOPs per example: `2·i·o` per FC layer (the DNAS cost table's count, spec §5.1) plus
    /// the interaction's dot products; lookups and activations are not counted.
    pub fn flops(&self) -> f64 {
        self.mlp_flops() + self.interaction.flops(self.n_cat(), self.d())
    }

    /// FC FLOPs only (what the MLP search's cost counts).
    pub fn mlp_flops(&self) -> f64 {
        let f = |s: &[usize]| -> usize { s.windows(2).map(|w| 2 * w[0] * w[1]).sum() };
        (f(&self.bottom) + f(&self.top_sizes())) as f64
    }
}

/// The standalone DLRM.
#[derive(Module, Debug)]
pub struct Dlrm {
    pub bottom: Mlp,
    pub tables: Vec<Param<Tensor<2>>>,
    pub top: Mlp,
    /// 0 dot, 1 dot with self-interaction, 2 cat.
    pub interaction: usize,
}

/// `x` `[B, w]` zero-padded on the right to `[B, d]`.
pub fn pad_to(x: Tensor<2>, d: usize) -> Tensor<2> {
    let [b, w] = x.dims();
    if w == d {
        return x;
    }
    let device = x.device();
    Tensor::cat(vec![x, Tensor::zeros([b, d - w], &device)], 1)
}

impl Dlrm {
    /// A fresh model with DLRM's initialisation from `seed`'s ChaCha stream: bottom MLP, then
    /// the tables in order, then the top MLP.
    pub fn new(
        cfg: &DlrmConfig,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Self, ModelError> {
        cfg.validate()?;
        let bottom = Mlp::new(&cfg.bottom, Last::Relu, rng, device);
        let tables = cfg
            .table_rows
            .iter()
            .zip(&cfg.table_dims)
            .map(|(&r, &w)| dlrm_table(r, w, rng, device))
            .collect();
        let top = Mlp::new(&cfg.top_sizes(), Last::Sigmoid, rng, device);
        Ok(Self {
            bottom,
            tables,
            top,
            interaction: cfg.interaction.code(),
        })
    }

    pub fn interaction(&self) -> Interaction {
        Interaction::from_code(self.interaction)
    }

    /// The shape this model has.
    pub fn config(&self) -> DlrmConfig {
        DlrmConfig {
            bottom: self.bottom.sizes(),
            top_hidden: {
                let s = self.top.sizes();
                s[1..s.len() - 1].to_vec()
            },
            table_rows: self.tables.iter().map(|t| t.dims()[0]).collect(),
            table_dims: self.tables.iter().map(|t| t.dims()[1]).collect(),
            interaction: self.interaction(),
        }
    }

    /// Checks a batch against the model's shape, naming what disagrees.
    pub fn check(&self, rows: &CtrRows) -> Result<(), ModelError> {
        let n_dense = self.bottom.sizes()[0];
        if rows.n_dense != n_dense || rows.n_cat != self.tables.len() {
            return Err(ModelError::Invalid(format!(
                "batch has {} dense and {} categorical features; the DLRM expects {} and {}",
                rows.n_dense,
                rows.n_cat,
                n_dense,
                self.tables.len()
            )));
        }
        Ok(())
    }

    /// `p(click)` per row, `[B]`.
    pub fn forward(&self, rows: &CtrRows, device: &Device) -> Tensor<1> {
        let z0 = self.bottom.forward(rows.dense_tensor(device));
        let d = z0.dims()[1];
        let embs = self
            .tables
            .iter()
            .enumerate()
            .map(|(f, t)| {
                let w = t.val();
                let rows_t = w.dims()[0];
                pad_to(w.select(0, rows.ids(f, rows_t, device)), d)
            })
            .collect();
        let x = self.interaction().apply(z0, embs);
        let p = self.top.forward(x);
        let b = p.dims()[0];
        p.reshape([b])
    }

    /// Mean BCE of a batch.
    pub fn loss(&self, rows: &CtrRows, device: &Device) -> Tensor<1> {
        bce(self.forward(rows, device), rows.label_tensor(device))
    }
}

/// Squared L2 norm of all of `module`'s gradients (as a device scalar), for clipping the global
/// norm across several modules as `torch.nn.utils.clip_grad_norm_` does.
pub fn grad_sq_norm<M: Module>(module: &M, grads: &burn::tensor::Gradients) -> Option<Tensor<1>> {
    struct V<'a> {
        grads: &'a burn::tensor::Gradients,
        acc: Option<Tensor<1>>,
    }
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                let s = g.powi_scalar(2).sum();
                self.acc = Some(match self.acc.take() {
                    Some(a) => a + s,
                    None => s,
                });
            }
        }
    }
    let mut v = V { grads, acc: None };
    module.visit(&mut v);
    v.acc
}

/// PyTorch's `clip_grad_norm_` factor for a global norm: `min(1, max_norm / (norm + 1e-6))`.
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_pairs_are_row_major_lower_triangle() {
        assert_eq!(Interaction::Dot.pairs(3), vec![3, 6, 7]);
        assert_eq!(Interaction::DotSelf.pairs(3), vec![0, 3, 4, 6, 7, 8]);
        // Spec §9.11: 27 vectors give 351 pairs (378 with the diagonal).
        assert_eq!(Interaction::Dot.out_width(26, 16), 16 + 351);
        assert_eq!(Interaction::DotSelf.out_width(26, 16), 16 + 378);
        assert_eq!(Interaction::Dot.out_width(26, 32), 383);
        assert_eq!(Interaction::Dot.out_width(26, 128), 479);
        assert_eq!(Interaction::Cat.out_width(26, 16), 27 * 16);
    }
}
