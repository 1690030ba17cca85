//! The width operator (spec §4): d -> 2d, h -> 2h heads (head size unchanged), FFN 4d -> 8d.
//! Every activation of the grown model is `dup(x) = [x; x]` of the small model's; only `ln_f`
//! is halved so the tied head `[E, E]` gives the same logits.

use burn::tensor::Tensor;

use crate::state::{Named, TrainState};
use crate::StagedError;

/// What a tensor holds, which decides the scaling (§4.3-4.4).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Param,
    FirstMoment,
    SecondMoment,
}

/// `[A, A]` along columns (vectors and embeddings: `dup` of every row).
fn dup(t: Tensor<2>) -> Tensor<2> {
    Tensor::cat(vec![t.clone(), t], 1)
}

/// `[[A, 0], [0, A]]`.
fn blockdiag(t: Tensor<2>) -> Tensor<2> {
    let z = t.zeros_like();
    Tensor::cat(
        vec![
            Tensor::cat(vec![t.clone(), z.clone()], 1),
            Tensor::cat(vec![z, t], 1),
        ],
        0,
    )
}

/// Applies `f` to each of the q, k, v column blocks of a fused `[.., 3d]` tensor.
fn per_qkv(t: Tensor<2>, f: impl Fn(Tensor<2>) -> Tensor<2>) -> Tensor<2> {
    let d = t.dims()[1] / 3;
    Tensor::cat(
        (0..3).map(|i| f(t.clone().narrow(1, i * d, d))).collect(),
        1,
    )
}

fn grow_tensor(name: &str, t: Tensor<2>, kind: Kind) -> Tensor<2> {
    let structural = if name.ends_with("attn.c_attn.weight") {
        per_qkv(t, blockdiag)
    } else if name.ends_with("attn.c_attn.bias") {
        per_qkv(t, dup)
    } else if name.ends_with(".weight")
        && !name.contains("ln_")
        && !name.starts_with("wte")
        && !name.starts_with("wpe")
    {
        blockdiag(t)
    } else {
        // Embeddings, LayerNorms and biases.
        dup(t)
    };
    let is_ln_f = name.starts_with("ln_f.");
    match (kind, is_ln_f) {
        (Kind::Param, true) => structural / 2.0,
        (Kind::Param, false) => structural,
        // ln_f's gradient is unchanged by growth, so its moments are copied unscaled.
        (_, true) => structural,
        // Every other copy entry's gradient halves: m / 2 and v / 4 keep Adam's direction.
        (Kind::FirstMoment, false) => structural / 2.0,
        (Kind::SecondMoment, false) => structural / 4.0,
    }
}

fn grow_all(map: &Named, kind: Kind) -> Named {
    map.iter()
        .map(|(k, t)| (k.clone(), grow_tensor(k, t.clone(), kind)))
        .collect()
}

/// Grows the whole state: parameters, moments, config; step and schedule unchanged (set the
/// post-growth schedule with [`crate::schedule::Schedule::restart`]).
pub fn grow_width(s: &TrainState) -> Result<TrainState, StagedError> {
    let c = &s.config;
    if c.n_head == 0 || !c.n_embd.is_multiple_of(c.n_head) {
        return Err(StagedError::State(format!(
            "width growth needs n_embd ({}) divisible by n_head ({})",
            c.n_embd, c.n_head
        )));
    }
    for (name, t) in &s.params {
        let (m, v) = (s.m.get(name), s.v.get(name));
        if m.map(|m| m.dims()) != Some(t.dims()) || v.map(|v| v.dims()) != Some(t.dims()) {
            return Err(StagedError::State(format!(
                "optimizer state does not match parameter `{name}` ({:?}): moments {:?} / {:?}",
                t.dims(),
                m.map(|m| m.dims()),
                v.map(|v| v.dims())
            )));
        }
    }
    let mut config = c.clone();
    config.n_embd *= 2;
    config.n_head *= 2;
    config.n_inner = c.n_inner.map(|i| 2 * i);
    Ok(TrainState {
        config,
        params: grow_all(&s.params, Kind::Param),
        m: grow_all(&s.m, Kind::FirstMoment),
        v: grow_all(&s.v, Kind::SecondMoment),
        step: s.step,
        schedule: s.schedule.clone(),
        adam: s.adam,
    })
}
