//! The oracle-free procedure end to end (spec §8.4) and the stochastic training-dynamics test of
//! spec §12 at tiny size, on the seeded synthetic grammar corpus.

use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::synthetic::{lm_corpus, lm_vocabulary};
use kiln_data::TextTokenizer;
use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
use kiln_staged::procedure::{
    grow_and_restart, oracle_free_restart, run_oracle_free, Operator, OracleFree, Trainer,
};
use kiln_staged::schedule::{lr_heuristic, matching_step, Schedule};
use kiln_staged::slope::{running_mean, settled_decision_point};
use kiln_staged::{StagedError, TrainState};
use rand::{Rng, SeedableRng};

const SEQ: usize = 32;

/// burn's flex device RNG (initialisation, dropout) is process-wide: the two tests take turns so
/// each one's random stream depends only on its own seeds.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
const BATCH: usize = 16;

/// Random training blocks of a token stream (seeded), fixed evaluation blocks.
struct CorpusTrainer {
    train: Vec<i64>,
    eval: Vec<Vec<i64>>,
    rng: rand_chacha::ChaCha8Rng,
    device: Device,
}

fn tokens(words: usize, seed: u64) -> (Vec<i64>, usize) {
    let tok = TextTokenizer::word_level(&lm_vocabulary(), 1 << 20).unwrap();
    let (ids, _) = tok.encode_with_offsets(&lm_corpus(words, seed)).unwrap();
    (ids, tok.vocab_size())
}

impl CorpusTrainer {
    fn new(seed: u64) -> (Self, usize) {
        let (train, vocab) = tokens(40_000, 3);
        let (eval, _) = tokens(4_000, 4);
        let eval = eval
            .chunks_exact(SEQ)
            .take(32)
            .map(|c| c.to_vec())
            .collect();
        let t = Self {
            train,
            eval,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            device: Device::flex(),
        };
        (t, vocab)
    }

    fn ids(&self, rows: &[Vec<i64>]) -> Tensor<2, Int> {
        let flat: Vec<i64> = rows.iter().flatten().copied().collect();
        Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * SEQ]), &self.device)
            .reshape([rows.len(), SEQ])
    }
}

impl Trainer for CorpusTrainer {
    fn step(&mut self, s: &mut TrainState) -> Result<f64, StagedError> {
        let n = self.train.len() - SEQ;
        let rows: Vec<Vec<i64>> = (0..BATCH)
            .map(|_| {
                let at = self.rng.random_range(0..n);
                self.train[at..at + SEQ].to_vec()
            })
            .collect();
        let ids = self.ids(&rows);
        s.train_step(ids, &self.device.clone())
    }

    fn eval(&mut self, s: &TrainState) -> Result<f64, StagedError> {
        let ids = self.ids(&self.eval);
        s.eval_loss(ids, &self.device)
    }

    fn tokens_per_step(&self) -> f64 {
        (BATCH * SEQ) as f64
    }
}

fn fresh(vocab: usize, d: usize, layers: usize, heads: usize, seed: u64) -> TrainState {
    let device = Device::flex();
    device.seed(seed);
    let mut c = Gpt2Config::new(vocab, SEQ, d, layers, heads);
    c.resid_pdrop = 0.1;
    c.embd_pdrop = 0.1;
    c.attn_pdrop = 0.1;
    let m = Gpt2Model::new(&c, &device);
    let n = 12.0 * (layers * d * d) as f64;
    TrainState::new(c, &m, Schedule::new(lr_heuristic(n), 30, 100_000))
}

#[test]
fn oracle_free_procedure_grows_restarts_and_stops() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mut trainer, vocab) = CorpusTrainer::new(5);
    let cfg = OracleFree {
        operator: Operator::Width,
        grow_threshold: -0.2,
        constant_op: 1.776,
        optimality_threshold: -0.052,
        eval_every: 10,
        rewarmup: 10,
        max_small_steps: 150,
        max_grown_steps: 60,
    };
    let run = run_oracle_free(fresh(vocab, 16, 1, 2, 1), &cfg, &mut trainer).unwrap();
    // Growth happens where the criterion fired on the small curve (or at the budget).
    let pts: Vec<(f64, f64)> = run
        .small
        .iter()
        .skip(1)
        .map(|p| (p.flops, p.loss))
        .collect();
    assert_eq!(
        run.grow_by_criterion,
        settled_decision_point(&pts, -0.2).is_some()
    );
    assert_eq!(run.s_grow, run.small.last().unwrap().step);
    assert!(run.s_grow <= 150);
    assert_eq!(run.s_star, oracle_free_restart(run.s_grow, 1.776));
    assert!(
        (run.loss_after - run.loss_before).abs() <= 1e-5,
        "loss preserved"
    );
    // The grown run starts at S* + 1 with the target's LR and stays within its budget.
    assert_eq!(run.grown[0].step, run.s_star + 1);
    assert_eq!(run.state.config.n_embd, 32);
    assert_eq!(run.state.schedule.base_lr, lr_heuristic(12.0 * 32.0 * 32.0));
    let last = run.grown.last().unwrap();
    assert!(last.step <= run.s_star + 1 + 60);
    if let Some(stop) = run.stop {
        assert_eq!(stop, last.step);
    }
    // Compute keeps accumulating across growth, 4x faster per step after it.
    let small_rate = run.small[1].flops / run.small[1].step as f64;
    let g = &run.grown;
    let grown_rate = (g[1].flops - g[0].flops) / (g[1].step - g[0].step) as f64;
    assert!((grown_rate / small_rate - 4.0).abs() < 1e-9);
    assert!(run.grown.iter().all(|p| p.loss.is_finite()));
}

/// Spec §12 "Dynamics": after the re-warm-up, the smoothed loss of the width-grown model stays
/// within a small band of the from-scratch target's loss at the same effective step S* + D.
/// Stochastic (dropout, random batches): compared on curves smoothed with the spec's window 5.
#[test]
fn width_growth_preserves_the_training_dynamics() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mut trainer, vocab) = CorpusTrainer::new(7);
    let every = 5;
    let curve = |s: &mut TrainState, t: &mut CorpusTrainer, until: usize| {
        let mut c = vec![(s.step, t.eval(s).unwrap())];
        while s.step < until {
            t.step(s).unwrap();
            if s.step.is_multiple_of(every) {
                c.push((s.step, t.eval(s).unwrap()));
            }
        }
        c
    };
    let mut target = fresh(vocab, 64, 2, 4, 2);
    let target_curve = curve(&mut target, &mut trainer, 320);
    let mut small = fresh(vocab, 32, 2, 2, 2);
    let small_curve = curve(&mut small, &mut trainer, 160);
    let loss_g = small_curve.last().unwrap().1;
    let s_star = matching_step(&target_curve, loss_g).unwrap();
    let rewarmup = 10;
    let mut grown = grow_and_restart(&small, Operator::Width, s_star, rewarmup).unwrap();
    let grown_curve = curve(&mut grown, &mut trainer, 320);
    // Compare on the target's grid after the re-warm-up, smoothed with the spec's window 5.
    let after: Vec<(f64, f64)> = grown_curve
        .iter()
        .filter(|p| p.0 >= s_star + rewarmup)
        .filter_map(|p| {
            let t = target_curve.iter().find(|q| q.0 == p.0)?;
            Some((p.1, t.1))
        })
        .collect();
    assert!(
        after.len() >= 8,
        "too few overlapping points: {}",
        after.len()
    );
    let g = running_mean(&after.iter().map(|x| x.0).collect::<Vec<_>>(), 5);
    let t = running_mean(&after.iter().map(|x| x.1).collect::<Vec<_>>(), 5);
    let gaps: Vec<f64> = g.iter().zip(&t).map(|(a, b)| (a - b).abs()).collect();
    let worst = gaps.iter().copied().fold(0.0, f64::max);
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    eprintln!(
        "S* = {s_star}: grown vs target (smoothed) over {} points: max gap {worst:.4}, mean {mean:.4} nats",
        gaps.len()
    );
    // The spec's band is "e.g. 0.05 nats". At this size (batch 16, dropout) the curves wander
    // by a few hundredths either way, and three runs here measured max gaps of 0.041-0.058
    // (the largest right after the re-warm-up) and means near 0.02; hence a 0.08 ceiling on the
    // worst point and 0.035 on the mean.
    assert!(
        worst <= 0.08,
        "grown run left the target curve by {worst:.4} nats"
    );
    assert!(
        mean <= 0.035,
        "grown run trails the target by {mean:.4} nats on average"
    );
}
