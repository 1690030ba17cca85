//! The MLP search space: the "FC-of-FC" supernet (`SuperNetMLP`, spec §5.1).
//!
//! `L` layers of nodes, one node per candidate width `s ∈ S`. Layer 0's nodes are FCs from the
//! input; a middle node of width `o` mixes `FC(s_i → o)` of every previous node and a skip
//! (identity of the previous node of width `o`); the last layer's single node mixes
//! `FC(s_i → D_out)`. One choice vector per node: θ count `n·(L−1) + 1`, in the order layer 0
//! (length 1 each), middle layers by width (length `n + 1`, skip last), the final node
//! (length `n`).
//!
//! Deliberate choices (spec §5.1, pitfalls 2 and 15):
//! * the expected cost propagates the skip mass by default (a skip passes its node's usage
//!   probability to the node of the same width one layer down); the official code drops it,
//!   available as `exact = false`;
//! * derivation follows the intended semantics (follow the chosen path from the output,
//!   skips keep the width, widths emitted input-to-output); the official code's two defects
//!   (a node index that never moves, reversed order) are not reproduced;
//! * the top MLP's supernet ends in a sigmoid like the standalone DLRM (the official supernet
//!   ends in ReLU + clamp, whose gradient dies at 0 and 1).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};
use kiln_models::dlrm::{dlrm_linear, Last, Mlp};
use rand_chacha::ChaCha8Rng;

use crate::cost::OpCosts;

#[derive(Module, Debug)]
pub struct SuperMlp {
    /// Layer 0: `first[o]` is `FC(D_in → S[o])`.
    pub first: Vec<Linear>,
    /// Middle layers `1..L−1`: `middle[l−1][o][i]` is `FC(S[i] → S[o])`.
    pub middle: Vec<Vec<Vec<Linear>>>,
    /// The last layer: `last[i]` is `FC(S[i] → D_out)`.
    pub last: Vec<Linear>,
    pub widths: Vec<usize>,
    pub d_in: usize,
    pub d_out: usize,
    pub sigmoid_last: bool,
}

fn col(m: &Tensor<2>, k: usize) -> Tensor<2> {
    m.clone().narrow(1, k, 1)
}

fn col1(m: &Tensor<2>, k: usize) -> Tensor<1> {
    let b = m.dims()[0];
    col(m, k).reshape([b])
}

impl SuperMlp {
    /// `layers` (L ≥ 2) FC layers over the candidate widths, DLRM initialisation.
    pub fn new(
        d_in: usize,
        d_out: usize,
        layers: usize,
        widths: &[usize],
        last: Last,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Self {
        let first = widths
            .iter()
            .map(|&o| dlrm_linear(d_in, o, rng, device))
            .collect();
        let middle = (1..layers.saturating_sub(1))
            .map(|_| {
                widths
                    .iter()
                    .map(|&o| {
                        widths
                            .iter()
                            .map(|&i| dlrm_linear(i, o, rng, device))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let last_l = widths
            .iter()
            .map(|&i| dlrm_linear(i, d_out, rng, device))
            .collect();
        Self {
            first,
            middle,
            last: last_l,
            widths: widths.to_vec(),
            d_in,
            d_out,
            sigmoid_last: last == Last::Sigmoid,
        }
    }

    pub fn layers(&self) -> usize {
        self.middle.len() + 2
    }

    /// The sizes of this MLP's choice vectors, in θ order.
    pub fn choice_sizes(&self) -> Vec<usize> {
        let n = self.widths.len();
        let mut s = vec![1; n];
        for _ in &self.middle {
            s.extend(std::iter::repeat_n(n + 1, n));
        }
        s.push(n);
        s
    }

    fn mid_index(&self, l: usize, o: usize) -> usize {
        let n = self.widths.len();
        n + (l - 1) * n + o
    }

    fn last_index(&self) -> usize {
        let n = self.widths.len();
        n + self.middle.len() * n
    }

    fn act_last(&self, x: Tensor<2>) -> Tensor<2> {
        if self.sigmoid_last {
            sigmoid(x)
        } else {
            relu(x)
        }
    }

    /// The mixed output `[B, D_out]` for per-example masks (one `[B, n_k]` per choice).
    pub fn forward(&self, x: Tensor<2>, masks: &[Tensor<2>]) -> Tensor<2> {
        let n = self.widths.len();
        let mut h: Vec<Tensor<2>> = self
            .first
            .iter()
            .enumerate()
            .map(|(o, fc)| relu(fc.forward(x.clone())) * col(&masks[o], 0))
            .collect();
        for (l1, layer) in self.middle.iter().enumerate() {
            let l = l1 + 1;
            let next = layer
                .iter()
                .enumerate()
                .map(|(o, fcs)| {
                    let m = &masks[self.mid_index(l, o)];
                    let mut acc = relu(h[o].clone()) * col(m, n);
                    for (i, fc) in fcs.iter().enumerate() {
                        acc = acc + relu(fc.forward(h[i].clone())) * col(m, i);
                    }
                    acc
                })
                .collect();
            h = next;
        }
        let m = &masks[self.last_index()];
        let mut out: Option<Tensor<2>> = None;
        for (i, fc) in self.last.iter().enumerate() {
            let y = self.act_last(fc.forward(h[i].clone())) * col(m, i);
            out = Some(match out {
                Some(a) => a + y,
                None => y,
            });
        }
        out.expect("at least one candidate width")
    }

    /// Expected cost per example `[B]` under the masks, propagated from the output node back
    /// (§5.1). `exact` forwards skip mass to the same-width node below; `false` drops it as the
    /// official code does.
    pub fn expected_cost(&self, masks: &[Tensor<2>], costs: &OpCosts, exact: bool) -> Tensor<1> {
        let n = self.widths.len();
        let s = &self.widths;
        let m_last = &masks[self.last_index()];
        let mut cost = m_last
            .clone()
            .mul(weights_row(
                &s.iter()
                    .map(|&i| costs.fc(i, self.d_out))
                    .collect::<Vec<_>>(),
                &m_last.device(),
            ))
            .sum_dim(1);
        // Usage probability of each node of the layer below the one just costed.
        let mut p: Vec<Tensor<1>> = (0..n).map(|i| col1(m_last, i)).collect();
        for l in (1..=self.middle.len()).rev() {
            let mut below: Vec<Option<Tensor<1>>> = vec![None; n];
            let add = |slot: &mut Option<Tensor<1>>, v: Tensor<1>| {
                *slot = Some(match slot.take() {
                    Some(a) => a + v,
                    None => v,
                });
            };
            for o in 0..n {
                let m = &masks[self.mid_index(l, o)];
                let node_cost: Vec<f64> = (0..n).map(|i| costs.fc(s[i], s[o])).collect();
                let c_o = m
                    .clone()
                    .narrow(1, 0, n)
                    .mul(weights_row(&node_cost, &m.device()))
                    .sum_dim(1)
                    .reshape([m.dims()[0]]);
                cost = cost + c_o.mul(p[o].clone()).unsqueeze_dim(1);
                for (i, slot) in below.iter_mut().enumerate() {
                    add(slot, col1(m, i) * p[o].clone());
                }
                if exact {
                    add(&mut below[o], col1(m, n) * p[o].clone());
                }
            }
            p = below
                .into_iter()
                .map(|x| x.expect("every node has a parent"))
                .collect();
        }
        let b = m_last.dims()[0];
        let mut total = cost.reshape([b]);
        for (o, po) in p.into_iter().enumerate() {
            total = total + po.mul_scalar(costs.fc(self.d_in, s[o]));
        }
        total
    }

    /// The standalone MLP sizes `[D_in, hidden..., D_out]` the hard choices pick: follow the
    /// chosen inputs back from the output node; a skip keeps the width and adds no layer.
    pub fn derive(&self, choice: &[usize]) -> Vec<usize> {
        self.path(choice).0
    }

    /// Sizes and, per FC layer from the input side, which Linear it is.
    fn path(&self, choice: &[usize]) -> (Vec<usize>, Vec<&Linear>) {
        let n = self.widths.len();
        let mut w = choice[self.last_index()];
        let mut fcs = vec![&self.last[w]];
        let mut hidden = Vec::new();
        for l in (1..=self.middle.len()).rev() {
            let c = choice[self.mid_index(l, w)];
            if c < n {
                hidden.push(self.widths[w]);
                fcs.push(&self.middle[l - 1][w][c]);
                w = c;
            }
        }
        hidden.push(self.widths[w]);
        fcs.push(&self.first[w]);
        hidden.reverse();
        fcs.reverse();
        let mut sizes = vec![self.d_in];
        sizes.extend(hidden);
        sizes.push(self.d_out);
        (sizes, fcs)
    }

    /// The standalone MLP of the hard choices, with this supernet's weights (one-hot reduction).
    pub fn standalone(&self, choice: &[usize]) -> Mlp {
        let (_, fcs) = self.path(choice);
        Mlp {
            layers: fcs.into_iter().cloned().collect(),
            sigmoid_last: self.sigmoid_last,
        }
    }
}

/// FC cost of a standalone MLP of `sizes`.
pub fn path_cost(sizes: &[usize], costs: &OpCosts) -> f64 {
    sizes.windows(2).map(|w| costs.fc(w[0], w[1])).sum()
}

/// `[1, n]` row of constants.
pub(crate) fn weights_row(v: &[f64], device: &Device) -> Tensor<2> {
    let n = v.len();
    Tensor::<1>::from_data(
        burn::tensor::TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [n]),
        device,
    )
    .reshape([1, n])
}
