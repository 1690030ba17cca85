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

/// Training compute of one optimizer step of `s`: 6 N tokens, N = 12 L d² (spec §8.1).
pub fn flops_per_step(s: &TrainState, tokens: f64) -> f64 {
    6.0 * s.non_embedding_params() as f64 * tokens
}

/// The x coordinate the slope criterion reads a curve in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlopeAxis {
    /// The compute actually spent (small models: the growth criterion, spec §8.2).
    Compute,
    /// `per_step x step`: the target model's compute coordinates, for a grown run whose steps
    /// count from S* (the optimality criterion, spec §8.4 step 5).
    TargetCompute { per_step: f64 },
}

impl SlopeAxis {
    fn x(&self, p: &CurvePoint) -> f64 {
        match *self {
            SlopeAxis::Compute => p.flops,
            SlopeAxis::TargetCompute { per_step } => per_step * p.step.max(1) as f64,
        }
    }
}

/// How long to train and what to watch.
#[derive(Debug, Clone, Copy)]
pub struct TrainOpts<'a> {
    /// Train until the state's step reaches this.
    pub until: usize,
    /// Compute already spent (a grown run continues its small model's count).
    pub flops0: f64,
    pub eval_every: usize,
    /// Slope thresholds watched online (settled criterion, spec §8.2): the state is kept at the
    /// first evaluation where each fires, so growth needs no replay.
    pub watch: &'a [f64],
    pub axis: SlopeAxis,
    /// End the run once every watched threshold has fired.
    pub stop_when_fired: bool,
    /// Progress-bar label.
    pub label: &'a str,
}

/// A trained curve: the final state, its evaluation points (the first is the starting state)
/// and, per watched threshold, the state where it fired.
#[derive(Debug, Clone)]
pub struct TrainedCurve {
    pub state: TrainState,
    pub curve: Vec<CurvePoint>,
    pub fired: Vec<Option<TrainState>>,
}

/// The one training loop of staged training, used by the oracle-free procedure and by the
/// experiment's scratch, small and grown runs alike: steps `s` on the trainer's batches,
/// evaluates every `eval_every` steps, counts compute, watches slope thresholds.
pub fn train_curve(
    mut s: TrainState,
    trainer: &mut impl Trainer,
    o: &TrainOpts,
) -> Result<TrainedCurve, StagedError> {
    let every = o.eval_every.max(1);
    let mut curve = vec![CurvePoint {
        step: s.step,
        flops: o.flops0,
        loss: trainer.eval(&s)?,
    }];
    let mut fired: Vec<Option<TrainState>> = vec![None; o.watch.len()];
    let mut flops = o.flops0;
    let per_step = flops_per_step(&s, trainer.tokens_per_step());
    let pb = kiln_core::progress::bar(o.until.saturating_sub(s.step) as u64, o.label);
    while s.step < o.until {
        let loss = trainer.step(&mut s)?;
        flops += per_step;
        pb.set_message(format!("loss {loss:.3}"));
        pb.inc(1);
        if s.step.is_multiple_of(every) {
            curve.push(CurvePoint {
                step: s.step,
                flops,
                loss: trainer.eval(&s)?,
            });
            let pts: Vec<(f64, f64)> = curve
                .iter()
                .skip(1)
                .map(|p| (o.axis.x(p), p.loss))
                .collect();
            for (f, &th) in fired.iter_mut().zip(o.watch) {
                if f.is_none() && settled_decision_point(&pts, th).is_some() {
                    *f = Some(s.clone());
                }
            }
            if o.stop_when_fired && !o.watch.is_empty() && fired.iter().all(Option::is_some) {
                break;
            }
        }
    }
    pb.finish_and_clear();
    Ok(TrainedCurve {
        state: s,
        curve,
        fired,
    })
}

/// The compute saving a staged run measured against training the target from scratch:
/// `1 - (compute of the staged run to reach the scratch target's final loss) / (compute the
/// scratch target spent to reach it)`; `None` when the staged run never reached it.
pub fn measured_saving(target: &[CurvePoint], grown: &[CurvePoint]) -> Option<f64> {
    let goal = target.last()?.loss;
    let scratch = target.iter().find(|c| c.loss <= goal)?.flops;
    let staged = grown.iter().find(|c| c.loss <= goal)?.flops;
    Some(1.0 - staged / scratch)
}

/// Runs spec §8.4 end to end on `small` (a fresh or partly trained small-model state).
pub fn run_oracle_free(
    s: TrainState,
    cfg: &OracleFree,
    trainer: &mut impl Trainer,
) -> Result<StagedRun, StagedError> {
    let small_run = train_curve(
        s,
        trainer,
        &TrainOpts {
            until: cfg.max_small_steps,
            flops0: 0.0,
            eval_every: cfg.eval_every,
            watch: &[cfg.grow_threshold],
            axis: SlopeAxis::Compute,
            stop_when_fired: true,
            label: "small",
        },
    )?;
    let grow_by_criterion = small_run.fired[0].is_some();
    let s = small_run.fired[0].clone().unwrap_or(small_run.state);
    let flops = small_run.curve.last().map_or(0.0, |p| p.flops);
    let s_grow = s.step;
    let loss_before = trainer.eval(&s)?;
    let s_star = oracle_free_restart(s_grow, cfg.constant_op);
    let g = grow_and_restart(&s, cfg.operator, s_star, cfg.rewarmup)?;
    // The optimality slope is read in the target's coordinates: compute 6 N_tgt tokens(step).
    let per_step = flops_per_step(&g, trainer.tokens_per_step());
    let until = g.step + cfg.max_grown_steps;
    let grown_run = train_curve(
        g,
        trainer,
        &TrainOpts {
            until,
            flops0: flops,
            eval_every: cfg.eval_every,
            watch: &[cfg.optimality_threshold],
            axis: SlopeAxis::TargetCompute { per_step },
            stop_when_fired: true,
            label: "grown",
        },
    )?;
    let loss_after = grown_run.curve[0].loss;
    let stop = grown_run.fired[0].as_ref().map(|f| f.step);
    Ok(StagedRun {
        small: small_run.curve,
        s_grow,
        grow_by_criterion,
        s_star,
        loss_before,
        loss_after,
        grown: grown_run.curve,
        stop,
        state: grown_run.state,
    })
}
