//! Row-wise cross-entropy over wide logits as one operation each way, as PyTorch's
//! `cross_entropy` is.
//!
//! Composed from burn's tensor ops, `logsumexp(z) − z[target]` over `[n, V]` logits costs a
//! shifted copy, its exponential, a gather, and on the way back the chain rule through each of
//! them plus a scatter into zeros and an add: about a dozen passes over the largest tensor of a
//! language model's step (50,257 columns for GPT-2). On flex (a rayon row loop) the forward
//! reads the logits twice and writes `n` numbers, and the backward writes
//! `(softmax(z) − onehot(t)) · g` in one pass into the logits' own buffer when nothing else
//! holds them. LibTorch does what PyTorch's `cross_entropy` does: one `log_softmax` kernel,
//! kept, and a backward in place on it. The CubeCL backends run the composite through burn's
//! primitives, which is still one custom backward instead of the chain. Other backends
//! (ndarray, or a CubeCL build without kiln-models' `wgpu`/`cuda` feature) fall back to the
//! plain tensor-op composite in [`cross_entropy_rows`].
// burn 0.22 marks burn-tch deprecated; kiln keeps it as its offline CUDA path (README,
// Backends), and the extension macro's LibTorch arm and the tch kernel name its types.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, TensorMetadata};
use burn::tensor::{Device, Int, Tensor};

/// The fused operation, per backend. Library users call [`cross_entropy_rows`].
#[backend_extension(
    Flex,
    LibTorch: cfg(feature = "tch"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Autodiff,
)]
pub trait CrossEntropyBackend: Backend {
    /// Per-row loss `[n]` of logits `[n, V]` against targets `[n]`; differentiable in the
    /// logits on autodiff devices through [`Self::cross_entropy_backward`].
    fn cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        Self::cross_entropy_forward(logits, targets).0
    }

    /// `(loss [n], saved, logsumexp [n])`. `saved` is what the backward reads in place of the
    /// logits, the logits themselves by default; a backend may keep its log-softmax instead
    /// (LibTorch: one fused kernel forward, and the backward is in place on it). The logits
    /// are taken by value, so a backend that keeps something else frees them.
    fn cross_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        generic_forward::<Self>(logits, targets)
    }

    /// Gradient wrt the logits, `(softmax(z) − onehot(t)) · g`, for row gradients `g [n]`,
    /// from what [`Self::cross_entropy_forward`] saved.
    fn cross_entropy_backward(
        saved: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        generic_backward::<Self>(saved, lse, targets, grad)
    }
}

/// The forward through a backend's primitives (one custom op, several kernels).
fn generic_forward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let [n, _] = dims2(&logits);
    let max = B::float_max_dim(logits.clone(), 1); // [n, 1]
    let shifted = B::float_sub(logits.clone(), max.clone());
    let sum = B::float_sum_dim(B::float_exp(shifted), 1);
    let lse = B::float_add(B::float_log(sum), max); // [n, 1]
    let t = B::int_reshape(targets, [n, 1].into());
    let picked = B::float_gather(1, logits.clone(), t);
    let loss = B::float_sub(lse.clone(), picked);
    (
        B::float_reshape(loss, [n].into()),
        logits,
        B::float_reshape(lse, [n].into()),
    )
}

/// The backward through a backend's primitives.
fn generic_backward<B: Backend>(
    logits: FloatTensor<B>,
    lse: FloatTensor<B>,
    targets: IntTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let [n, _] = dims2(&logits);
    let lse = B::float_reshape(lse, [n, 1].into());
    let g = B::float_reshape(grad, [n, 1].into());
    let p = B::float_exp(B::float_sub(logits, lse));
    let p = B::float_mul(p, g.clone());
    let t = B::int_reshape(targets, [n, 1].into());
    B::float_scatter(
        1,
        p,
        t,
        B::float_neg(g),
        burn::tensor::IndexingUpdateOp::Add,
    )
}

fn dims2<T: TensorMetadata>(t: &T) -> [usize; 2] {
    let s = t.shape();
    [s[0], s[1]]
}

impl CrossEntropyBackend for burn::backend::Flex {
    fn cross_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        flex::forward(logits, targets)
    }

    fn cross_entropy_backward(
        saved: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        flex::backward(saved, lse, targets, grad)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl CrossEntropyBackend for burn::backend::Cube {}

#[cfg(feature = "tch")]
impl CrossEntropyBackend for burn::backend::LibTorch {
    // As PyTorch's own `cross_entropy`: `log_softmax` (one kernel) kept for the backward, whose
    // softmax is then an in-place `exp_` on it.
    fn cross_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        use burn::backend::libtorch::TchTensor;
        let z = &logits.tensor;
        let t = targets.tensor.reshape([-1, 1]);
        let ls = z.log_softmax(1, None);
        let picked = ls.gather(1, &t, false).reshape([-1]);
        let loss = -&picked;
        let lse = z.gather(1, &t, false).reshape([-1]) - picked;
        (
            TchTensor::new(loss),
            TchTensor::new(ls),
            TchTensor::new(lse),
        )
    }

    fn cross_entropy_backward(
        saved: FloatTensor<Self>,
        _lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let g = grad.tensor.reshape([-1, 1]);
        let t = targets.tensor.reshape([-1, 1]);
        // The log-softmax is the autodiff state's alone: exponentiate it in place.
        let mut p = saved.tensor;
        let _ = p.exp_();
        let _ = p.g_mul_(&g);
        let _ = p.scatter_add_(1, &t, &(-&g));
        burn::backend::libtorch::TchTensor::new(p)
    }
}

impl<B: Backend + CrossEntropyBackend, C: CheckpointStrategy> CrossEntropyBackend
    for Autodiff<B, C>
{
    fn cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct CrossEntropy;

        impl<B: Backend + CrossEntropyBackend> Backward<B, 1> for CrossEntropy {
            type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (saved, lse, targets) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::cross_entropy_backward(saved, lse, targets, grad)
                });
            }
        }

        let (z, node) = logits.into_parts();
        match CrossEntropy.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (loss, saved, lse) = B::cross_entropy_forward(z, targets.clone());
                prep.finish((saved, lse, targets), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::cross_entropy_forward(z, targets).0),
        }
    }
}

/// Whether this build has the fused kernel for `device`'s backend (see the module docs).
fn fused_available(device: &Device) -> bool {
    match kiln_core::device::backend_name(device).as_str() {
        "flex" => true,
        "tch" | "tch-cuda" => cfg!(feature = "tch"),
        "wgpu" | "vulkan" | "metal" => cfg!(feature = "wgpu"),
        "cuda" => cfg!(feature = "cuda"),
        _ => false,
    }
}

/// Cross-entropy of each row of `logits [n, V]` against `targets [n]` (class indices in
/// `0..V`): `logsumexp(z_i) − z_i[t_i]`, shape `[n]`. Differentiable in the logits.
///
/// A target outside `0..V` is the caller's bug (token ids are checked where they are made):
/// flex gives that row a NaN loss, which a training loop's non-finite-loss check reports;
/// LibTorch stops with its own index error.
pub fn cross_entropy_rows(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    if fused_available(&logits.device()) {
        return Tensor::from_dispatch(<Dispatch as CrossEntropyBackend>::cross_entropy(
            logits.into_dispatch(),
            targets.into_dispatch(),
        ));
    }
    composite(logits, targets)
}

/// The same loss from burn's tensor ops, for backends without the fused kernel, and the
/// reference the fused kernels are tested against.
pub fn composite(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let max = logits.clone().detach().max_dim(1); // [n, 1], shift only
    let lse = (logits.clone() - max.clone()).exp().sum_dim(1).log() + max;
    let picked = logits.gather(1, targets.reshape([n, 1]));
    (lse - picked).reshape([n])
}

/// flex: one rayon task per block of rows over the contiguous f32 buffer.
mod flex {
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;
    use burn::tensor::{DType, TensorData};
    use rayon::prelude::*;

    fn targets_of(t: FlexTensor) -> Vec<i64> {
        t.into_data().iter::<i64>().collect()
    }

    /// The logits as one contiguous f32 buffer, or back unchanged (another dtype) for the
    /// primitive composite. Taken by value: a clone kept alive here would make the backward's
    /// in-place write impossible.
    fn contiguous_f32(z: FlexTensor) -> Result<FlexTensor, FlexTensor> {
        if z.dtype() != DType::F32 {
            return Err(z);
        }
        let z = if z.is_contiguous() && z.as_slice::<f32>().is_some() {
            z
        } else {
            z.to_contiguous()
        };
        if z.as_slice::<f32>().is_some() {
            Ok(z)
        } else {
            Err(z)
        }
    }

    fn row_lse(row: &[f32]) -> f32 {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return max;
        }
        let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
        sum.ln() + max
    }

    pub(super) fn forward(
        logits: FlexTensor,
        targets: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let z = match contiguous_f32(logits) {
            Ok(z) => z,
            Err(z) => return super::generic_forward::<Flex>(z, targets),
        };
        let shape = z.layout().shape().clone();
        let (n, v) = (shape[0], shape[1]);
        let t = targets_of(targets);
        let data = z.as_slice::<f32>().unwrap_or_default();
        let (loss, lse): (Vec<f32>, Vec<f32>) = data
            .par_chunks(v.max(1))
            .zip(t.par_iter())
            .map(|(row, &ti)| {
                let lse = row_lse(row);
                let loss = match usize::try_from(ti).ok().filter(|&i| i < v) {
                    Some(i) => lse - row[i],
                    None => f32::NAN,
                };
                (loss, lse)
            })
            .unzip();
        (
            FlexTensor::from_data(TensorData::new(loss, [n])),
            z,
            FlexTensor::from_data(TensorData::new(lse, [n])),
        )
    }

    pub(super) fn backward(
        logits: FlexTensor,
        lse: FlexTensor,
        targets: FlexTensor,
        grad: FlexTensor,
    ) -> FlexTensor {
        let mut z = match contiguous_f32(logits) {
            Ok(z) => z,
            Err(z) => return super::generic_backward::<Flex>(z, lse, targets, grad),
        };
        // the row-vectors are small; read them as plain vectors
        let v = z.layout().shape()[1];
        let t = targets_of(targets);
        let lse: Vec<f32> = lse.into_data().iter::<f32>().collect();
        let g: Vec<f32> = grad.into_data().iter::<f32>().collect();
        let write = |out: &mut [f32]| {
            out.par_chunks_mut(v.max(1))
                .zip(t.par_iter().zip(lse.par_iter().zip(g.par_iter())))
                .for_each(|(row, (&ti, (&l, &gi)))| {
                    for x in row.iter_mut() {
                        *x = (*x - l).exp() * gi;
                    }
                    if let Some(i) = usize::try_from(ti).ok().filter(|&i| i < v) {
                        row[i] -= gi;
                    }
                });
        };
        // In place when the logits are ours alone (autodiff hands them over at the end of the
        // graph); a copy otherwise.
        if let Some(buf) = z.try_storage_mut::<f32>() {
            write(buf);
            return z;
        }
        let mut buf = z.as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default();
        write(&mut buf);
        FlexTensor::from_data(TensorData::new(buf, z.layout().shape().clone()))
    }
}
