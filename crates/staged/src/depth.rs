//! The loss-preserving depth operator (spec §5.1): L -> 2L, inserting identity blocks (LayerNorm
//! gains and biases 0, so both residual branches output exactly 0). Old layers keep their
//! parameters and Adam moments verbatim at their new index; new layers start with zero moments.
//!
//! Two other initialisations are offered behind [`DepthInit`], for comparison only:
//! [`DepthInit::ZeroOutputCopy`] (copy the neighbouring old layer, zero both residual output
//! projections: also loss preserving, different early gradient flow) and
//! [`DepthInit::OfficialReleasedCompat`], which reproduces what the released `gpt_pretrain.py`
//! does (spec §5.2): both slots get a *copy* of the old layer's parameters (the block is applied
//! twice, so the loss is **not** preserved), the old slot's Adam moments are replaced by the
//! identity initialiser applied to the moments, and the new slot gets the old moments. kiln
//! defaults to the intended operator; the compat mode exists so the discrepancy can be measured.

use burn::tensor::Tensor;

use crate::state::{Named, TrainState};
use crate::StagedError;

/// Where the new layers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Old layer i -> 2i, a new identity block at 2i + 1 (the official cheatsheet's choice).
    Alternate,
    /// Old layers keep 0..L-1; identity blocks at L..2L-1.
    Append,
}

/// `[r, c]` with ones at (i, i) for i < min(r, c) ("identity" / "eye-like" of the code).
fn eye_like(r: usize, c: usize, like: &Tensor<2>) -> Tensor<2> {
    let device = like.device();
    let n = r.min(c);
    let eye = Tensor::<2>::eye(n, &device);
    let eye = if c > n {
        Tensor::cat(vec![eye, Tensor::zeros([n, c - n], &device)], 1)
    } else {
        eye
    };
    if r > n {
        Tensor::cat(vec![eye, Tensor::zeros([r - n, c], &device)], 0)
    } else {
        eye
    }
}

/// The identity block's value for a tensor of the block (by its name within the block).
fn identity_value(suffix: &str, like: &Tensor<2>) -> Tensor<2> {
    let [r, c] = like.dims();
    match suffix {
        "attn.c_attn.weight" => {
            let e = eye_like(r, r, like);
            Tensor::cat(vec![e.clone(), e.clone(), e], 1)
        }
        "attn.c_proj.weight" | "mlp.c_fc.weight" | "mlp.c_proj.weight" => eye_like(r, c, like),
        // LayerNorm gains and biases, and every linear bias: 0.
        _ => like.zeros_like(),
    }
}

/// How the new layers (and, in the compat mode, the old slots) are initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DepthInit {
    /// Spec §5.1: exact identity blocks, zero moments (the default).
    #[default]
    Identity,
    /// A copy of the old layer with `attn.c_proj` and `mlp.c_proj` (weights and biases) zeroed;
    /// zero moments. Loss preserving.
    ZeroOutputCopy,
    /// Spec §5.2, the released script: layers duplicated, identity-like moments in the old slot,
    /// copied moments in the new one. Not loss preserving; for comparison only.
    OfficialReleasedCompat,
}

impl DepthInit {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "identity" => Some(Self::Identity),
            "zero-output-copy" => Some(Self::ZeroOutputCopy),
            "official-released-compat" => Some(Self::OfficialReleasedCompat),
            _ => None,
        }
    }
}

fn zero_output_copy(suffix: &str, t: &Tensor<2>) -> Tensor<2> {
    if suffix.starts_with("attn.c_proj.") || suffix.starts_with("mlp.c_proj.") {
        t.zeros_like()
    } else {
        t.clone()
    }
}

/// Rebuilds the layer-indexed tensors: old layer i's tensor `t` goes to its new index as
/// `old_slot(suffix, t)` and to the new layer's index as `new_slot(suffix, t)`.
fn relocate(
    map: &Named,
    layers: usize,
    placement: Placement,
    old_slot: impl Fn(&str, &Tensor<2>) -> Tensor<2>,
    new_slot: impl Fn(&str, &Tensor<2>) -> Tensor<2>,
) -> Result<Named, StagedError> {
    let mut out = Named::new();
    let dest = |i: usize| match placement {
        Placement::Alternate => (2 * i, 2 * i + 1),
        Placement::Append => (i, layers + i),
    };
    for (name, t) in map {
        let Some(rest) = name.strip_prefix("h.") else {
            out.insert(name.clone(), t.clone());
            continue;
        };
        let bad = || StagedError::State(format!("`{name}` is not named h.<layer>.<tensor>"));
        let (idx, suffix) = rest.split_once('.').ok_or_else(bad)?;
        let i: usize = idx.parse().map_err(|_| bad())?;
        if i >= layers {
            return Err(StagedError::State(format!(
                "`{name}` names layer {i} of a {layers}-layer model"
            )));
        }
        let (old_at, new_at) = dest(i);
        out.insert(format!("h.{old_at}.{suffix}"), old_slot(suffix, t));
        out.insert(format!("h.{new_at}.{suffix}"), new_slot(suffix, t));
    }
    Ok(out)
}

/// Doubles the depth of the whole state with identity blocks (spec §5.1); step and schedule
/// unchanged.
pub fn grow_depth(s: &TrainState, placement: Placement) -> Result<TrainState, StagedError> {
    grow_depth_with(s, placement, DepthInit::Identity)
}

/// [`grow_depth`] with a chosen initialisation of the new layers.
pub fn grow_depth_with(
    s: &TrainState,
    placement: Placement,
    init: DepthInit,
) -> Result<TrainState, StagedError> {
    let layers = s.config.n_layer;
    for l in 0..layers {
        let key = format!("h.{l}.attn.c_attn.weight");
        if !s.params.contains_key(&key) || !s.m.contains_key(&key) || !s.v.contains_key(&key) {
            return Err(StagedError::State(format!(
                "layer {l} is missing from the parameters or the optimizer state (`{key}`)"
            )));
        }
    }
    let mut config = s.config.clone();
    config.n_layer *= 2;
    let keep = |_: &str, t: &Tensor<2>| t.clone();
    let zero = |_: &str, t: &Tensor<2>| t.zeros_like();
    let (params, m, v) = match init {
        DepthInit::Identity => (
            relocate(&s.params, layers, placement, keep, identity_value)?,
            relocate(&s.m, layers, placement, keep, zero)?,
            relocate(&s.v, layers, placement, keep, zero)?,
        ),
        DepthInit::ZeroOutputCopy => (
            relocate(&s.params, layers, placement, keep, zero_output_copy)?,
            relocate(&s.m, layers, placement, keep, zero)?,
            relocate(&s.v, layers, placement, keep, zero)?,
        ),
        DepthInit::OfficialReleasedCompat => (
            relocate(&s.params, layers, placement, keep, keep)?,
            relocate(&s.m, layers, placement, identity_value, keep)?,
            relocate(&s.v, layers, placement, identity_value, keep)?,
        ),
    };
    Ok(TrainState {
        config,
        params,
        m,
        v,
        step: s.step,
        schedule: s.schedule.clone(),
        adam: s.adam,
    })
}
