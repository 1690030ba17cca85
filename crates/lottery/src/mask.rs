//! Edge-popup supermasks (spec §2): a frozen random weight `W`, a learnt score `S` of the same
//! shape, and per forward pass the mask keeping the `n − ⌊(1−k)·n⌋` entries of largest `|S|`
//! in that tensor. The straight-through estimator passes `∂L/∂W_eff ⊙ W` to `|S|` as if the
//! binarisation were the identity, so `∂L/∂S = sign(S) ⊙ W ⊙ ∂L/∂W_eff` for every entry, kept
//! or not.

use burn::module::{Module, Param};
use burn::tensor::{Device, IndexingUpdateOp, Tensor};
use kiln_models::seq2seq::{Projection, TokenTable};

/// Number of entries a mask keeps: `n − ⌊(1 − k)·n⌋` (spec M1; `ceil(n/2)` at k = 0.5).
pub fn kept(n: usize, keep: f64) -> usize {
    n - ((1.0 - keep) * n as f64).floor() as usize
}

/// The binary mask of `scores` at keep fraction `keep`, with the straight-through gradient to
/// the scores. The forward value is exactly 0 or 1: `M + (|S| − stopgrad(|S|))` adds an exact
/// zero whose gradient is `sign(S)`.
pub fn supermask<const D: usize>(scores: Tensor<D>, keep: f64) -> Tensor<D> {
    let dims = scores.dims();
    let n: usize = dims.iter().product();
    let device = scores.device();
    if keep >= 1.0 {
        return Tensor::ones(dims, &device);
    }
    let a = scores.abs();
    let j = n - kept(n, keep);
    let mask = if host_selection(&device) {
        host_mask(a.clone().detach().reshape([n]), j, &device).reshape(dims)
    } else {
        let order = a.clone().detach().reshape([n]).argsort(0); // ascending |S|
        let top = order.narrow(0, j, n - j);
        Tensor::<1>::zeros([n], &device)
            .scatter(
                0,
                top,
                Tensor::ones([n - j], &device),
                IndexingUpdateOp::Assign,
            )
            .reshape(dims)
    };
    mask + (a.clone() - a.detach())
}

/// On CPU backends a linear-time selection on the host beats the backend's full sort by far
/// (flex: 118 ms to argsort 768k scores, the size of a small embedding table's; LibTorch on
/// the CPU sorts too); GPU backends keep the on-device sort.
fn host_selection(device: &Device) -> bool {
    let b = kiln_core::backend_name(device);
    b.starts_with("flex") || b.starts_with("ndarray") || b == "tch"
}

/// Ones at all but the `j` smallest entries of `a` (ties broken by position; any order gives
/// exactly `n − j` ones).
fn host_mask(a: Tensor<1>, j: usize, device: &Device) -> Tensor<1> {
    let v: Vec<f32> = a
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    let n = v.len();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut mask = vec![1f32; n];
    if j > 0 && j <= n {
        let cmp = |x: &u32, y: &u32| v[*x as usize].total_cmp(&v[*y as usize]).then(x.cmp(y));
        if j < n {
            idx.select_nth_unstable_by(j, cmp);
        }
        for &i in &idx[..j] {
            mask[i as usize] = 0.0;
        }
    }
    Tensor::from_data(burn::tensor::TensorData::new(mask, [n]), device)
}

/// A masked linear map `y = x·(W ⊙ M)` with no bias. `weight` is frozen and may be the very
/// same parameter in several layers (the one-layer sharing); `scores` are this layer's own.
#[derive(Module, Debug)]
pub struct MaskedProj {
    pub weight: Param<Tensor<2>>,
    pub scores: Param<Tensor<2>>,
    pub keep: f64,
}

impl MaskedProj {
    pub fn mask(&self) -> Tensor<2> {
        supermask(self.scores.val(), self.keep)
    }
}

impl Projection for MaskedProj {
    fn weight(&self) -> Tensor<2> {
        self.weight.val() * self.mask()
    }
    fn bias(&self) -> Option<Tensor<1>> {
        None
    }
}

/// A frozen random (or pre-trained) embedding table, masked like the projections unless
/// `scores` is `None` (fairseq's `--embed-no-mask`: a plain fixed table).
#[derive(Module, Debug)]
pub struct MaskedTable {
    pub weight: Param<Tensor<2>>,
    pub scores: Option<Param<Tensor<2>>>,
    pub keep: f64,
}

impl MaskedTable {
    pub fn mask(&self) -> Option<Tensor<2>> {
        self.scores.as_ref().map(|s| supermask(s.val(), self.keep))
    }
}

impl TokenTable for MaskedTable {
    fn table(&self) -> Tensor<2> {
        match self.mask() {
            Some(m) => self.weight.val() * m,
            None => self.weight.val(),
        }
    }
}

/// Frozen parameter from host values.
pub fn frozen(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(kiln_models::seq2seq::tensor2(values, shape, device)).set_require_grad(false)
}

/// Trainable parameter from host values.
pub fn trainable(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(kiln_models::seq2seq::tensor2(values, shape, device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn host_selection_equals_the_device_sort() {
        let device = Device::flex();
        device.seed(3);
        for (n, keep) in [(1000usize, 0.5), (999, 0.3), (7, 0.9)] {
            let a = Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), &device);
            let j = n - kept(n, keep);
            let host = host_mask(a.clone(), j, &device);
            let top = a.argsort(0).narrow(0, j, n - j);
            let dev = Tensor::<1>::zeros([n], &device).scatter(
                0,
                top,
                Tensor::ones([n - j], &device),
                IndexingUpdateOp::Assign,
            );
            assert_eq!(
                host.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap(),
                dev.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap(),
                "n {n} keep {keep}"
            );
        }
    }
}
