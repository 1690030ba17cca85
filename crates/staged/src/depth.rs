//! The loss-preserving depth operator (spec §5.1): L -> 2L, inserting identity blocks (LayerNorm
//! gains and biases 0, so both residual branches output exactly 0). Old layers keep their
//! parameters and Adam moments verbatim at their new index; new layers start with zero moments.

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

fn relocate(
    map: &Named,
    layers: usize,
    placement: Placement,
    new_layer: impl Fn(&str, &Tensor<2>) -> Tensor<2>,
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
        out.insert(format!("h.{old_at}.{suffix}"), t.clone());
        out.insert(format!("h.{new_at}.{suffix}"), new_layer(suffix, t));
    }
    Ok(out)
}

/// Doubles the depth of the whole state; step and schedule unchanged.
pub fn grow_depth(s: &TrainState, placement: Placement) -> Result<TrainState, StagedError> {
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
    Ok(TrainState {
        config,
        params: relocate(&s.params, layers, placement, identity_value)?,
        m: relocate(&s.m, layers, placement, |_, t| t.zeros_like())?,
        v: relocate(&s.v, layers, placement, |_, t| t.zeros_like())?,
        step: s.step,
        schedule: s.schedule.clone(),
        adam: s.adam,
    })
}
