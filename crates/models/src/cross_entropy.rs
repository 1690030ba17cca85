//! Row-wise cross-entropy over wide logits as one operation each way, as PyTorch's
//! `cross_entropy` is.
//!
//! Composed from burn's tensor ops, `logsumexp(z) − z[target]` over `[n, V]` logits costs a
//! shifted copy, its exponential, a gather, and on the way back the chain rule through each of
//! them plus a scatter into zeros and an add: about a dozen passes over the largest tensor of a
//! language model's step (50,257 columns for GPT-2). On flex (a rayon row loop) the forward
//! reads the logits twice (three times with label smoothing) and writes a few numbers per row,
//! and the backward writes the gradient in one pass into the logits' own buffer when nothing
//! else holds them. LibTorch does what PyTorch's `cross_entropy` does: one `log_softmax` kernel,
//! kept, and a backward in place on it. The CubeCL backends run the composite through burn's
//! primitives, which is still one custom backward instead of the chain. Other backends
//! (ndarray, or a CubeCL build without kiln-models' `wgpu`/`cuda` feature) fall back to the
//! plain tensor-op composite in [`cross_entropy_rows`].
//!
//! Label smoothing rides in the same pass: with weight ε spread evenly over the `V` classes
//! (fairseq's `label_smoothed_cross_entropy` of 2020, and PyTorch's `label_smoothing`), a row's
//! loss `(1−ε)·(lse − z_t) + (ε/V)·Σ_v (lse − z_v)` is `lse − (1−ε)·z_t − (ε/V)·Σ_v z_v`, one
//! more sum over the row, and its gradient `(softmax(z) − (1−ε)·onehot(t) − ε/V)·g` one more
//! subtraction in the same write. [`label_smoothed_rows`] also returns the plain NLL the
//! training logs report, which the forward has in hand.
// burn 0.22 marks burn-tch deprecated; kiln keeps it as its offline CUDA path (README,
// Backends), and the extension macro's LibTorch arm and the tch kernel name its types.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{
    backend_extension, Autodiff, AutodiffBackend, Backend, Dispatch, TensorMetadata,
};
use burn::tensor::{Device, Int, Tensor};

/// The fused operation, per backend. Library users call [`cross_entropy_rows`] or
/// [`label_smoothed_rows`].
#[backend_extension(
    Flex,
    LibTorch: cfg(feature = "tch"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Autodiff,
)]
pub trait CrossEntropyBackend: Backend {
    /// `(loss [n], nll [n])` of logits `[n, V]` against targets `[n]` with label smoothing
    /// `smoothing` (0 for plain cross-entropy, where the two are equal). The loss is
    /// differentiable in the logits on autodiff devices through
    /// [`Self::cross_entropy_backward`]; the NLL is a constant (for logs).
    fn cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (loss, nll, _, _) = Self::cross_entropy_forward(logits, targets, smoothing);
        (loss, nll)
    }

    /// `(loss [n], nll [n], saved, logsumexp [n])`. `saved` is what the backward reads in
    /// place of the logits, the logits themselves by default; a backend may keep its
    /// log-softmax instead (LibTorch: one fused kernel forward, and the backward is in place
    /// on it). The logits are taken by value, so a backend that keeps something else frees
    /// them.
    fn cross_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        generic_forward::<Self>(logits, targets, smoothing)
    }

    /// Gradient wrt the logits, `(softmax(z) − (1−ε)·onehot(t) − ε/V) · g`, for row gradients
    /// `g [n]`, from what [`Self::cross_entropy_forward`] saved.
    fn cross_entropy_backward(
        saved: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
        smoothing: f32,
    ) -> FloatTensor<Self> {
        generic_backward::<Self>(saved, lse, targets, grad, smoothing)
    }
}

/// The forward through a backend's primitives (one custom op, several kernels).
#[allow(clippy::type_complexity)]
fn generic_forward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    smoothing: f32,
) -> (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
) {
    let [n, v] = dims2(&logits);
    let max = B::float_max_dim(logits.clone(), 1); // [n, 1]
    let shifted = B::float_sub(logits.clone(), max.clone());
    let log_sum = B::float_log(B::float_sum_dim(B::float_exp(shifted.clone()), 1)); // lse − max
    let lse = B::float_add(log_sum.clone(), max); // [n, 1]
    let t = B::int_reshape(targets, [n, 1].into());
    let picked = B::float_gather(1, logits.clone(), t);
    let nll = B::float_reshape(B::float_sub(lse.clone(), picked), [n].into());
    let loss = if smoothing == 0.0 {
        nll.clone()
    } else {
        // (1/V)·Σ_v −log p_v = (lse − max) − mean(z − max): summed after the shift, so a large
        // common offset in the logits costs no precision
        let eps = smoothing as f64;
        let mean = B::float_div_scalar(B::float_sum_dim(shifted, 1), (v as f64).into());
        let smooth = B::float_reshape(B::float_sub(log_sum, mean), [n].into());
        B::float_add(
            B::float_mul_scalar(nll.clone(), (1.0 - eps).into()),
            B::float_mul_scalar(smooth, eps.into()),
        )
    };
    (loss, nll, logits, B::float_reshape(lse, [n].into()))
}

/// The backward through a backend's primitives.
fn generic_backward<B: Backend>(
    logits: FloatTensor<B>,
    lse: FloatTensor<B>,
    targets: IntTensor<B>,
    grad: FloatTensor<B>,
    smoothing: f32,
) -> FloatTensor<B> {
    let [n, v] = dims2(&logits);
    let lse = B::float_reshape(lse, [n, 1].into());
    let g = B::float_reshape(grad, [n, 1].into());
    let p = B::float_exp(B::float_sub(logits, lse));
    let mut p = B::float_mul(p, g.clone());
    let mut at_target = B::float_neg(g.clone());
    if smoothing != 0.0 {
        let eps = smoothing as f64;
        p = B::float_sub(p, B::float_mul_scalar(g, (eps / v as f64).into()));
        at_target = B::float_mul_scalar(at_target, (1.0 - eps).into());
    }
    let t = B::int_reshape(targets, [n, 1].into());
    B::float_scatter(1, p, t, at_target, burn::tensor::IndexingUpdateOp::Add)
}

fn dims2<T: TensorMetadata>(t: &T) -> [usize; 2] {
    let s = t.shape();
    [s[0], s[1]]
}

impl CrossEntropyBackend for burn::backend::Flex {
    fn cross_entropy_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        flex::forward(logits, targets, smoothing)
    }

    fn cross_entropy_backward(
        saved: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
        smoothing: f32,
    ) -> FloatTensor<Self> {
        flex::backward(saved, lse, targets, grad, smoothing)
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
        smoothing: f32,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        use burn::backend::libtorch::TchTensor;
        let z = &logits.tensor;
        let t = targets.tensor.reshape([-1, 1]);
        let ls = z.log_softmax(1, None);
        let picked = ls.gather(1, &t, false).reshape([-1]);
        let nll = -&picked;
        let lse = z.gather(1, &t, false).reshape([-1]) - picked;
        let (loss, nll) = if smoothing == 0.0 {
            // one storage under one shared handle, so neither output is written in place
            // through the other (burn-tch mutates a tensor it holds alone)
            let nll = TchTensor::new(nll);
            (nll.clone(), nll)
        } else {
            // fairseq's own expression: (1−ε)·nll + (ε/V)·Σ_v −log p_v
            let eps = smoothing as f64;
            let v = ls.size()[1] as f64;
            let smooth = -ls.sum_dim_intlist(1, false, None);
            let loss = &nll * (1.0 - eps) + smooth * (eps / v);
            (TchTensor::new(loss), TchTensor::new(nll))
        };
        (loss, nll, TchTensor::new(ls), TchTensor::new(lse))
    }

    fn cross_entropy_backward(
        saved: FloatTensor<Self>,
        _lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
        smoothing: f32,
    ) -> FloatTensor<Self> {
        let g = grad.tensor.reshape([-1, 1]);
        let t = targets.tensor.reshape([-1, 1]);
        // The log-softmax is the autodiff state's alone: exponentiate it in place.
        let mut p = saved.tensor;
        let _ = p.exp_();
        let _ = p.g_mul_(&g);
        if smoothing == 0.0 {
            let _ = p.scatter_add_(1, &t, &(-&g));
        } else {
            let eps = smoothing as f64;
            let v = p.size()[1] as f64;
            let _ = p.g_sub_(&(&g * (eps / v)));
            let _ = p.scatter_add_(1, &t, &(&g * -(1.0 - eps)));
        }
        burn::backend::libtorch::TchTensor::new(p)
    }
}

impl<B: Backend + CrossEntropyBackend, C: CheckpointStrategy> CrossEntropyBackend
    for Autodiff<B, C>
{
    fn cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct CrossEntropy;

        impl<B: Backend + CrossEntropyBackend> Backward<B, 1> for CrossEntropy {
            type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>, f32);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (saved, lse, targets, smoothing) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::cross_entropy_backward(saved, lse, targets, grad, smoothing)
                });
            }
        }

        let (z, node) = logits.into_parts();
        match CrossEntropy.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (loss, nll, saved, lse) =
                    B::cross_entropy_forward(z, targets.clone(), smoothing);
                let loss = prep.finish((saved, lse, targets, smoothing), loss);
                (loss, <Self as AutodiffBackend>::from_inner(nll))
            }
            OpsKind::UnTracked(prep) => {
                let (loss, nll, _, _) = B::cross_entropy_forward(z, targets, smoothing);
                (
                    prep.finish(loss),
                    <Self as AutodiffBackend>::from_inner(nll),
                )
            }
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
        return fused(logits, targets, 0.0).0;
    }
    composite(logits, targets)
}

/// Label-smoothed cross-entropy of each row, `(loss [n], nll [n])`: the loss
/// `(1−ε)·(lse − z_t) + (ε/V)·Σ_v (lse − z_v)` (fairseq's `label_smoothed_nll_loss` of the
/// one-layer-lottery code's era, and PyTorch's `cross_entropy(label_smoothing = ε)`),
/// differentiable in the logits, and the plain negative log-likelihood `lse − z_t`, detached,
/// for logs. With `smoothing` 0 both are [`cross_entropy_rows`]'s value (bit for bit on
/// backends with the fused kernel).
pub fn label_smoothed_rows(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    smoothing: f64,
) -> (Tensor<1>, Tensor<1>) {
    if fused_available(&logits.device()) {
        return fused(logits, targets, smoothing as f32);
    }
    smoothed_composite(logits, targets, smoothing)
}

fn fused(logits: Tensor<2>, targets: Tensor<1, Int>, smoothing: f32) -> (Tensor<1>, Tensor<1>) {
    let (loss, nll) = <Dispatch as CrossEntropyBackend>::cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
        smoothing,
    );
    (Tensor::from_dispatch(loss), Tensor::from_dispatch(nll))
}

/// [`label_smoothed_rows`] from burn's tensor ops, as fairseq writes it: the log-softmax, its
/// value at the target and its row sum. The fallback for backends without the fused kernel,
/// and the reference the kernels are tested against.
pub fn smoothed_composite(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    smoothing: f64,
) -> (Tensor<1>, Tensor<1>) {
    let [n, v] = logits.dims();
    let lp = burn::tensor::activation::log_softmax(logits, 1);
    let nll = -lp.clone().gather(1, targets.reshape([n, 1])).reshape([n]);
    let smooth = -lp.sum_dim(1).reshape([n]);
    let loss = nll.clone() * (1.0 - smoothing) + smooth * (smoothing / v as f64);
    (loss, nll.detach())
}

/// [`cross_entropy_rows`] from burn's tensor ops, for backends without the fused kernel, and
/// the reference the fused kernels are tested against.
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

    /// `(max, logsumexp)` of a row.
    fn row_lse(row: &[f32]) -> (f32, f32) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return (max, max);
        }
        let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
        (max, sum.ln() + max)
    }

    pub(super) fn forward(
        logits: FlexTensor,
        targets: FlexTensor,
        smoothing: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let z = match contiguous_f32(logits) {
            Ok(z) => z,
            Err(z) => return super::generic_forward::<Flex>(z, targets, smoothing),
        };
        let shape = z.layout().shape().clone();
        let (n, v) = (shape[0], shape[1]);
        let t = targets_of(targets);
        let data = z.as_slice::<f32>().unwrap_or_default();
        let rows: Vec<(f32, f32, f32)> = data
            .par_chunks(v.max(1))
            .zip(t.par_iter())
            .map(|(row, &ti)| {
                let (max, lse) = row_lse(row);
                let Some(i) = usize::try_from(ti).ok().filter(|&i| i < v) else {
                    return (f32::NAN, f32::NAN, lse);
                };
                let nll = lse - row[i];
                let loss = if smoothing == 0.0 {
                    nll
                } else {
                    // (1/V)·Σ_v −log p_v, summed after the shift (see the generic forward)
                    let shifted: f32 = row.iter().map(|&x| x - max).sum();
                    let smooth = (lse - max) - shifted / v as f32;
                    (1.0 - smoothing) * nll + smoothing * smooth
                };
                (loss, nll, lse)
            })
            .collect();
        let column = |f: fn(&(f32, f32, f32)) -> f32| {
            FlexTensor::from_data(TensorData::new(rows.iter().map(f).collect::<Vec<_>>(), [n]))
        };
        (column(|r| r.0), column(|r| r.1), z, column(|r| r.2))
    }

    pub(super) fn backward(
        logits: FlexTensor,
        lse: FlexTensor,
        targets: FlexTensor,
        grad: FlexTensor,
        smoothing: f32,
    ) -> FlexTensor {
        let mut z = match contiguous_f32(logits) {
            Ok(z) => z,
            Err(z) => return super::generic_backward::<Flex>(z, lse, targets, grad, smoothing),
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
                    if smoothing == 0.0 {
                        for x in row.iter_mut() {
                            *x = (*x - l).exp() * gi;
                        }
                        if let Some(i) = usize::try_from(ti).ok().filter(|&i| i < v) {
                            row[i] -= gi;
                        }
                    } else {
                        let uniform = gi * smoothing / v as f32;
                        for x in row.iter_mut() {
                            *x = (*x - l).exp() * gi - uniform;
                        }
                        if let Some(i) = usize::try_from(ti).ok().filter(|&i| i < v) {
                            row[i] -= gi * (1.0 - smoothing);
                        }
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
