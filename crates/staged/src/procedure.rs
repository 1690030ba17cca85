//! Growing a training state and restarting its schedule (spec §4.6, §6), and the oracle-free
//! staged-training procedure of spec §8.4: train the small model until its log-log slope flattens
//! past the operator's threshold, grow, restart at `S* = S_g / constant_op` with the target size's
//! LR and a re-warm-up, train until the slope (in the target's compute coordinates) passes the
//! optimality threshold.

use crate::depth::{grow_depth_with, DepthInit, Placement};
use crate::schedule::lr_heuristic;
use crate::slope::settled_decision_point;
use crate::state::TrainState;
use crate::width::grow_width;
use crate::StagedError;

/// Slope thresholds of spec §8.2 (GPT-2 on C4; tiny models flatten at other slopes).
pub mod thresholds {
    pub const OPTIMALITY: f64 = -0.052;
    pub const DEPTH: f64 = -0.0575;
    pub const WIDTH: f64 = -0.0475;
    pub const DEPTH_WIDTH: f64 = -0.03;
}

/// Step-mapping constants `S_g / S*` of spec §8.3.
pub mod constants {
    /// The cheatsheet's values, what the official runs used (pitfall 9).
    pub const WIDTH: f64 = 1.776;
    pub const DEPTH: f64 = 1.412;
    pub const DEPTH_WIDTH: f64 = 2.455;
    /// From the real GPT-2/C4 curves (notebook).
    pub const WIDTH_REAL: f64 = 1.814;
    pub const DEPTH_REAL: f64 = 1.433;
    /// From simulated scaling laws.
    pub const WIDTH_SIMULATED: f64 = 2.717;
    pub const DEPTH_SIMULATED: f64 = 1.831;
}

/// A growth operator on the whole training state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// d -> 2d, heads x2 (spec §4).
    Width,
    /// L -> 2L (spec §5).
    Depth {
        placement: Placement,
        init: DepthInit,
    },
}

impl Operator {
    /// The default depth operator: identity blocks, alternating (the cheatsheet's `alternate_id`).
    pub const DEPTH: Operator = Operator::Depth {
        placement: Placement::Alternate,
        init: DepthInit::Identity,
    };

    pub fn name(&self) -> &'static str {
        match self {
            Operator::Width => "width",
            Operator::Depth { .. } => "depth",
        }
    }

    pub fn apply(&self, s: &TrainState) -> Result<TrainState, StagedError> {
        match *self {
            Operator::Width => grow_width(s),
            Operator::Depth { placement, init } => grow_depth_with(s, placement, init),
        }
    }
}

/// Grows `s` and restarts its schedule for the target size (spec §4.6, §6): base LR = the LR
/// heuristic of the grown model's N, a `rewarmup`-step ramp from restart step `s_star`. As in the
/// official resume (`--restart_steps R --reset_lr_scheduler` sets the global step to R + 1), the
/// first post-growth step runs at position `s_star + 1`, so it does not waste a step at LR 0.
pub fn grow_and_restart(
    s: &TrainState,
    op: Operator,
    s_star: usize,
    rewarmup: usize,
) -> Result<TrainState, StagedError> {
    let mut g = op.apply(s)?;
    let lr = lr_heuristic(g.non_embedding_params() as f64);
    g.schedule = g.schedule.restart(lr, s_star, rewarmup);
    g.step = s_star + 1;
    Ok(g)
}

/// `S* = S_g / constant_op`, rounded to the nearest step.
pub fn oracle_free_restart(s_grow: usize, constant_op: f64) -> usize {
    (s_grow as f64 / constant_op).round() as usize
}

/// What the procedure needs from a training loop: batches, evaluation, compute accounting.
pub trait Trainer {
    /// One optimizer step of `s` on the next training batch; returns the training loss.
    fn step(&mut self, s: &mut TrainState) -> Result<f64, StagedError>;
    /// Validation loss of `s` (dropout off).
    fn eval(&mut self, s: &TrainState) -> Result<f64, StagedError>;
    /// Tokens per optimizer step.
    fn tokens_per_step(&self) -> f64;
}

/// One validation point: the step in the run's own coordinates (the grown run's steps count
/// from S*), the compute actually spent so far (6 N tokens, N = 12 L d²), the loss.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    pub step: usize,
    pub flops: f64,
    pub loss: f64,
}

/// Settings of the oracle-free procedure.
#[derive(Debug, Clone, Copy)]
pub struct OracleFree {
    pub operator: Operator,
    /// Grow when the small model's slope exceeds this (spec §8.2: -0.0475 width, -0.0575 depth).
    pub grow_threshold: f64,
    /// `S_g / S*` (spec §8.3).
    pub constant_op: f64,
    /// Stop the grown model when its slope exceeds this (-0.052).
    pub optimality_threshold: f64,
    pub eval_every: usize,
    pub rewarmup: usize,
    /// Budgets: the small model grows here if the criterion never fires; the grown run stops
    /// after this many of its own steps if optimality is never reached.
    pub max_small_steps: usize,
    pub max_grown_steps: usize,
}

/// The outcome of one staged run.
#[derive(Debug, Clone)]
pub struct StagedRun {
    pub small: Vec<CurvePoint>,
    /// Step where the small model was grown, and whether the slope criterion chose it (false:
    /// the budget ran out first).
    pub s_grow: usize,
    pub grow_by_criterion: bool,
    pub s_star: usize,
    pub loss_before: f64,
    pub loss_after: f64,
    pub grown: Vec<CurvePoint>,
    /// Step (grown coordinates) where the optimality criterion stopped the run, if it did.
    pub stop: Option<usize>,
    pub state: TrainState,
}

fn flops_per_step(s: &TrainState, tokens: f64) -> f64 {
    6.0 * s.non_embedding_params() as f64 * tokens
}

/// Trains `s` for at most `budget` more steps, evaluating every `every` steps, until the settled
/// slope criterion fires on the curve's points mapped by `x` (compute, loss); appends to `curve`
/// and returns whether the criterion fired.
#[allow(clippy::too_many_arguments)]
fn train_until_flat(
    s: &mut TrainState,
    trainer: &mut impl Trainer,
    curve: &mut Vec<CurvePoint>,
    flops: &mut f64,
    budget: usize,
    every: usize,
    threshold: f64,
    x: impl Fn(&CurvePoint) -> f64,
) -> Result<bool, StagedError> {
    let end = s.step + budget;
    let per_step = flops_per_step(s, trainer.tokens_per_step());
    while s.step < end {
        trainer.step(s)?;
        *flops += per_step;
        if s.step.is_multiple_of(every) {
            curve.push(CurvePoint {
                step: s.step,
                flops: *flops,
                loss: trainer.eval(s)?,
            });
            let pts: Vec<(f64, f64)> = curve.iter().skip(1).map(|p| (x(p), p.loss)).collect();
            if settled_decision_point(&pts, threshold).is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Runs spec §8.4 end to end on `small` (a fresh or partly trained small-model state).
pub fn run_oracle_free(
    mut s: TrainState,
    cfg: &OracleFree,
    trainer: &mut impl Trainer,
) -> Result<StagedRun, StagedError> {
    let every = cfg.eval_every.max(1);
    let mut flops = 0.0;
    let mut small = vec![CurvePoint {
        step: s.step,
        flops,
        loss: trainer.eval(&s)?,
    }];
    let budget = cfg.max_small_steps.saturating_sub(s.step);
    let by_criterion = train_until_flat(
        &mut s,
        trainer,
        &mut small,
        &mut flops,
        budget,
        every,
        cfg.grow_threshold,
        |p| p.flops,
    )?;
    let s_grow = s.step;
    let loss_before = trainer.eval(&s)?;
    let s_star = oracle_free_restart(s_grow, cfg.constant_op);
    let mut g = grow_and_restart(&s, cfg.operator, s_star, cfg.rewarmup)?;
    let loss_after = trainer.eval(&g)?;
    let mut grown = vec![CurvePoint {
        step: g.step,
        flops,
        loss: loss_after,
    }];
    // The optimality slope is read in the target's coordinates: compute 6 N_tgt tokens(step).
    let per_step = flops_per_step(&g, trainer.tokens_per_step());
    let stopped = train_until_flat(
        &mut g,
        trainer,
        &mut grown,
        &mut flops,
        cfg.max_grown_steps,
        every,
        cfg.optimality_threshold,
        |p| per_step * p.step.max(1) as f64,
    )?;
    Ok(StagedRun {
        small,
        s_grow,
        grow_by_criterion: by_criterion,
        s_star,
        loss_before,
        loss_after,
        stop: stopped.then_some(g.step),
        grown,
        state: g,
    })
}
