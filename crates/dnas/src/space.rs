//! The `SuperNet` abstraction (spec §4.1, §8) and DLRM's three search spaces over it.
//!
//! A supernet is a deterministic function of its per-example masks: it returns the prediction
//! and the expected cost per example; sampling lives in [`crate::gumbel`]. `derive` turns hard
//! choices into the standalone DLRM's shape, `standalone` builds that DLRM with the supernet's
//! own weights (the one-hot reduction property), `arch_cost` is the chosen architecture's
//! deterministic cost.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use kiln_models::dlrm::{dlrm_table, pad_to, CtrRows, Dlrm, DlrmConfig, Interaction, Last, Mlp};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cost::OpCosts;
use crate::emb::{EmbCardSuper, EmbDimSuper};
use crate::mlp::{path_cost, SuperMlp};

/// What a search space must offer the search manager.
pub trait SuperNet: Module + Sized {
    /// Sizes of the choice vectors, in θ order.
    fn choice_sizes(&self) -> Vec<usize>;
    /// `p(click)` `[B]` and expected cost `[B]` for per-example masks (one `[B, n_k]` each).
    fn forward(
        &self,
        rows: &CtrRows,
        masks: &[Tensor<2>],
        device: &Device,
    ) -> (Tensor<1>, Tensor<1>);
    /// The standalone DLRM's shape for hard choices.
    fn derive(&self, choice: &[usize]) -> DlrmConfig;
    /// That DLRM with this supernet's weights.
    fn standalone(&self, choice: &[usize]) -> Dlrm;
    /// The chosen architecture's cost (what `forward`'s cost is under one-hot masks).
    fn arch_cost(&self, choice: &[usize]) -> f64;
}

/// Which space, and the unit its cost is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Space {
    /// Bottom and top MLP widths and depths (FC-of-FC), cost in FLOPs.
    Mlp,
    /// Per-table embedding width, cost in parameters.
    EmbDim,
    /// Per-table embedding rows, cost in parameters.
    EmbCard,
}

impl Space {
    pub fn name(self) -> &'static str {
        match self {
            Space::Mlp => "mlp",
            Space::EmbDim => "emb-dim",
            Space::EmbCard => "emb-card",
        }
    }
    pub fn cost_unit(self) -> &'static str {
        match self {
            Space::Mlp => "MLP FLOPs",
            Space::EmbDim | Space::EmbCard => "embedding params",
        }
    }
}

fn to_batch(p: Tensor<2>) -> Tensor<1> {
    let b = p.dims()[0];
    p.reshape([b])
}

/// MLP search (§5.1): both MLPs are FC-of-FC supernets; tables fixed.
#[derive(Module, Debug)]
pub struct MlpSearch {
    pub bottom: SuperMlp,
    pub tables: Vec<Param<Tensor<2>>>,
    pub top: SuperMlp,
    pub interaction: usize,
    #[module(skip)]
    pub costs: OpCosts,
    /// Propagate skip mass in the cost (exact); `false` is the official approximation.
    pub exact_cost: bool,
}

/// The MLP space's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlpSpaceConfig {
    pub n_dense: usize,
    pub d: usize,
    pub table_rows: Vec<usize>,
    pub widths: Vec<usize>,
    pub layers: usize,
    pub interaction: Interaction,
    #[serde(default = "yes")]
    pub exact_cost: bool,
    /// The official supernet's top MLP: ReLU on its last layer and the prediction clamped to
    /// [1e-9, 1 − 1e-9] (pitfall 15; in float32 the upper bound is 1, so outputs ≥ 1 get no
    /// gradient). Off by default: kiln's supernet ends in a sigmoid like the retrained DLRM, and
    /// only then does the one-hot reduction to the standalone DLRM hold.
    #[serde(default)]
    pub official_relu_head: bool,
}
fn yes() -> bool {
    true
}

impl MlpSearch {
    pub fn new(c: &MlpSpaceConfig, costs: OpCosts, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let bottom = SuperMlp::new(c.n_dense, c.d, c.layers, &c.widths, Last::Relu, rng, device);
        let tables = c
            .table_rows
            .iter()
            .map(|&r| dlrm_table(r, c.d, rng, device))
            .collect();
        let top_in = c.interaction.out_width(c.table_rows.len(), c.d);
        let head = if c.official_relu_head {
            Last::Relu
        } else {
            Last::Sigmoid
        };
        let top = SuperMlp::new(top_in, 1, c.layers, &c.widths, head, rng, device);
        Self {
            bottom,
            tables,
            top,
            interaction: c.interaction.code(),
            costs,
            exact_cost: c.exact_cost,
        }
    }

    fn split<'a>(&self, v: &'a [usize]) -> (&'a [usize], &'a [usize]) {
        v.split_at(self.bottom.choice_sizes().len())
    }
}

impl SuperNet for MlpSearch {
    fn choice_sizes(&self) -> Vec<usize> {
        let mut s = self.bottom.choice_sizes();
        s.extend(self.top.choice_sizes());
        s
    }

    fn forward(
        &self,
        rows: &CtrRows,
        masks: &[Tensor<2>],
        device: &Device,
    ) -> (Tensor<1>, Tensor<1>) {
        let nb = self.bottom.choice_sizes().len();
        let (mb, mt) = masks.split_at(nb);
        let z0 = self.bottom.forward(rows.dense_tensor(device), mb);
        let embs = self
            .tables
            .iter()
            .enumerate()
            .map(|(f, t)| {
                let w = t.val();
                let r = w.dims()[0];
                w.select(0, rows.ids(f, r, device))
            })
            .collect();
        let x = Interaction::from_code(self.interaction).apply(z0, embs);
        let mut p = to_batch(self.top.forward(x, mt));
        if !self.top.sigmoid_last {
            p = p.clamp(1e-9, 1.0 - 1e-9);
        }
        let cost = self.bottom.expected_cost(mb, &self.costs, self.exact_cost)
            + self.top.expected_cost(mt, &self.costs, self.exact_cost);
        (p, cost)
    }

    fn derive(&self, choice: &[usize]) -> DlrmConfig {
        let (cb, ct) = self.split(choice);
        let top = self.top.derive(ct);
        DlrmConfig::uniform(
            self.bottom.derive(cb),
            top[1..top.len() - 1].to_vec(),
            self.tables.iter().map(|t| t.dims()[0]).collect(),
            Interaction::from_code(self.interaction),
        )
    }

    fn standalone(&self, choice: &[usize]) -> Dlrm {
        let (cb, ct) = self.split(choice);
        Dlrm {
            bottom: self.bottom.standalone(cb),
            tables: self.tables.clone(),
            top: self.top.standalone(ct),
            interaction: self.interaction,
        }
    }

    fn arch_cost(&self, choice: &[usize]) -> f64 {
        let cfg = self.derive(choice);
        path_cost(&cfg.bottom, &self.costs) + path_cost(&cfg.top_sizes(), &self.costs)
    }
}

/// Embedding-dimension search (§5.2): fixed MLPs, the bottom one ending at `D_max`.
#[derive(Module, Debug)]
pub struct EmbDimSearch {
    pub bottom: Mlp,
    pub emb: EmbDimSuper,
    pub top: Mlp,
    pub interaction: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbDimSpaceConfig {
    /// `[n_dense, ..., D_max]`.
    pub bottom: Vec<usize>,
    pub top_hidden: Vec<usize>,
    pub table_rows: Vec<usize>,
    pub dims: Vec<usize>,
    pub interaction: Interaction,
}

impl EmbDimSearch {
    pub fn new(c: &EmbDimSpaceConfig, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let base = DlrmConfig::uniform(
            c.bottom.clone(),
            c.top_hidden.clone(),
            c.table_rows.clone(),
            c.interaction,
        );
        let bottom = Mlp::new(&c.bottom, Last::Relu, rng, device);
        let emb = EmbDimSuper::new(&c.table_rows, &c.dims, rng, device);
        let top = Mlp::new(&base.top_sizes(), Last::Sigmoid, rng, device);
        Self {
            bottom,
            emb,
            top,
            interaction: c.interaction.code(),
        }
    }
}

impl SuperNet for EmbDimSearch {
    fn choice_sizes(&self) -> Vec<usize> {
        vec![self.emb.dims.len(); self.emb.tables.len()]
    }

    fn forward(
        &self,
        rows: &CtrRows,
        masks: &[Tensor<2>],
        device: &Device,
    ) -> (Tensor<1>, Tensor<1>) {
        let z0 = self.bottom.forward(rows.dense_tensor(device));
        let d = z0.dims()[1];
        let embs = self
            .emb
            .forward(rows, masks, device)
            .into_iter()
            .map(|e| pad_to(e, d))
            .collect();
        let x = Interaction::from_code(self.interaction).apply(z0, embs);
        (to_batch(self.top.forward(x)), self.emb.expected_cost(masks))
    }

    fn derive(&self, choice: &[usize]) -> DlrmConfig {
        // Lookups pad to the bottom MLP's output width, not the widest chosen table (§5.2).
        let bottom = self.bottom.sizes();
        let top = self.top.sizes();
        DlrmConfig {
            bottom,
            top_hidden: top[1..top.len() - 1].to_vec(),
            table_rows: self.emb.tables.iter().map(|t| t.dims()[0]).collect(),
            table_dims: self.emb.chosen_dims(choice),
            interaction: Interaction::from_code(self.interaction),
        }
    }

    fn standalone(&self, choice: &[usize]) -> Dlrm {
        Dlrm {
            bottom: self.bottom.clone(),
            tables: self.emb.standalone(choice),
            top: self.top.clone(),
            interaction: self.interaction,
        }
    }

    fn arch_cost(&self, choice: &[usize]) -> f64 {
        let c = self.derive(choice);
        c.table_rows
            .iter()
            .zip(&c.table_dims)
            .map(|(r, d)| (r * d) as f64)
            .sum()
    }
}

/// Embedding-cardinality search (§5.3): fixed MLPs, tables of `frac·count` rows per option.
#[derive(Module, Debug)]
pub struct EmbCardSearch {
    pub bottom: Mlp,
    pub emb: EmbCardSuper,
    pub top: Mlp,
    pub interaction: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbCardSpaceConfig {
    pub bottom: Vec<usize>,
    pub top_hidden: Vec<usize>,
    /// Each feature's category count (the fractions apply to it).
    pub counts: Vec<usize>,
    pub fractions: Vec<f64>,
    pub interaction: Interaction,
}

impl EmbCardSearch {
    pub fn new(c: &EmbCardSpaceConfig, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let d = *c.bottom.last().unwrap_or(&1);
        let base = DlrmConfig::uniform(
            c.bottom.clone(),
            c.top_hidden.clone(),
            c.counts.clone(),
            c.interaction,
        );
        let bottom = Mlp::new(&c.bottom, Last::Relu, rng, device);
        let emb = EmbCardSuper::new(&c.counts, &c.fractions, d, rng, device);
        let top = Mlp::new(&base.top_sizes(), Last::Sigmoid, rng, device);
        Self {
            bottom,
            emb,
            top,
            interaction: c.interaction.code(),
        }
    }
}

impl SuperNet for EmbCardSearch {
    fn choice_sizes(&self) -> Vec<usize> {
        self.emb.options.iter().map(Vec::len).collect()
    }

    fn forward(
        &self,
        rows: &CtrRows,
        masks: &[Tensor<2>],
        device: &Device,
    ) -> (Tensor<1>, Tensor<1>) {
        let z0 = self.bottom.forward(rows.dense_tensor(device));
        let d = z0.dims()[1];
        let embs = self.emb.forward(rows, masks, d, device);
        let x = Interaction::from_code(self.interaction).apply(z0, embs);
        (to_batch(self.top.forward(x)), self.emb.expected_cost(masks))
    }

    fn derive(&self, choice: &[usize]) -> DlrmConfig {
        let top = self.top.sizes();
        let bottom = self.bottom.sizes();
        let d = *bottom.last().unwrap_or(&1);
        let n = choice.len();
        DlrmConfig {
            bottom,
            top_hidden: top[1..top.len() - 1].to_vec(),
            table_rows: self.emb.chosen_rows(choice),
            table_dims: vec![d; n],
            interaction: Interaction::from_code(self.interaction),
        }
    }

    fn standalone(&self, choice: &[usize]) -> Dlrm {
        Dlrm {
            bottom: self.bottom.clone(),
            tables: self.emb.standalone(choice),
            top: self.top.clone(),
            interaction: self.interaction,
        }
    }

    fn arch_cost(&self, choice: &[usize]) -> f64 {
        let c = self.derive(choice);
        c.table_rows
            .iter()
            .zip(&c.table_dims)
            .map(|(r, d)| (r * d) as f64)
            .sum()
    }
}
