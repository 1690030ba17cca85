//! `staged-training`: Shen et al. 2022. As in the paper's pairs, one target size is trained from
//! scratch and reached from two small models, half the width (heads halved) and half the depth;
//! each small model is grown at the point the slope criterion picks (online, §8.2) and restarted
//! at S*, matched on the target curve (oracle) and, with `oracle_free`, `S_g / constant_op`
//! (§8.4). Reports loss-vs-compute curves, the growth points, the loss right before and after
//! growth, the released-script depth mapping's loss jump on the same state, the multi-stage
//! theory's saving, and the compute saving in the layout of the spec's section 11.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::corpus::{build_token_cache, CompactVocab, TokenCorpus};
use kiln_data::TextTokenizer;
use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
use kiln_report::{line_plot, Cell, RunMeta, Series, Table};
use kiln_staged::depth::{grow_depth_with, DepthInit, Placement};
use kiln_staged::procedure::{grow_and_restart, oracle_free_restart, Operator, Trainer};
use kiln_staged::schedule::{lr_heuristic, matching_step, saving, Schedule};
use kiln_staged::slope::settled_decision_point;
use kiln_staged::{StagedError, TrainState};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::RunArgs;
use crate::settings;

const NAME: &str = "staged-training";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    description: String,
    /// "synthetic" or a text corpus: "wikitext-2" (train on valid.txt, evaluate on test.txt).
    corpus: String,
    #[serde(default)]
    corpus_words: usize,
    seq_len: usize,
    batch_size: usize,
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    /// Steps of the small run and of each from-scratch target.
    small_steps: usize,
    target_steps: usize,
    eval_every: usize,
    eval_blocks: usize,
    warmup: usize,
    total_steps: usize,
    rewarmup: usize,
    /// Slope thresholds (spec §8.2); tiny models flatten at other slopes than GPT-2.
    width_threshold: f64,
    depth_threshold: f64,
    /// Dropout (the width operator needs it to break symmetry, spec §4.5).
    dropout: f64,
    /// Stop slope of the final stage (spec §8.2: -0.052).
    #[serde(default = "default_optimality")]
    optimality_threshold: f64,
    /// Also run the oracle-free procedure (S* = S_g / constant_op, spec §8.4).
    #[serde(default)]
    oracle_free: bool,
    #[serde(default = "default_width_constant")]
    width_constant: f64,
    #[serde(default = "default_depth_constant")]
    depth_constant: f64,
    /// New-layer initialisation of the depth operator: "identity" (spec §5.1, default),
    /// "zero-output-copy", or "official-released-compat" (the released script, §5.2).
    #[serde(default = "default_depth_init")]
    depth_init: String,
    /// Train over the token types the corpus uses only (see `CompactVocab`).
    #[serde(default)]
    compact_vocab: bool,
    /// Official training items `[BOS] + seq-2 tokens + [EOS]` (GPT-2 BPE corpora without
    /// `compact_vocab`); otherwise plain blocks.
    #[serde(default)]
    frame_bos_eos: bool,
    /// End each small run once it has been grown (the method needs nothing later; the figure
    /// then shows the small curves up to their growth points).
    #[serde(default)]
    stop_small_at_growth: bool,
    /// Rows per forward/backward pass with gradient accumulation (0: the whole batch at once).
    #[serde(default)]
    micro_batch: usize,
}

/// GPT-2's `<|endoftext|>`, its BOS and EOS.
const GPT2_EOS: i64 = 50256;

fn default_optimality() -> f64 {
    kiln_staged::procedure::thresholds::OPTIMALITY
}
fn default_width_constant() -> f64 {
    kiln_staged::procedure::constants::WIDTH
}
fn default_depth_constant() -> f64 {
    kiln_staged::procedure::constants::DEPTH
}
fn default_depth_init() -> String {
    "identity".into()
}

#[derive(Debug, Clone, Deserialize)]
struct Experiment {
    title: String,
    reference: String,
    profiles: BTreeMap<String, Profile>,
}

/// (step, compute so far in FLOPs, eval loss)
type Curve = Vec<(usize, f64, f64)>;

struct Data {
    train: TokenCorpus,
    eval: Vec<Vec<i64>>,
    vocab: usize,
    compact: Option<CompactVocab>,
    source: String,
}

impl Data {
    /// Training item `i`: a block of the corpus, in compact ids when the profile compacts the
    /// vocabulary; with `frame` the official item `[BOS] + seq-2 tokens + [EOS]` (spec §10).
    fn item(&self, i: usize, seq: usize, frame: Option<i64>) -> Vec<i64> {
        match (&self.compact, frame) {
            (Some(v), _) => v.block(&self.train, i, seq),
            (None, Some(eos)) => {
                let mut b = vec![eos];
                b.extend(self.train.block(i, seq - 2));
                b.push(eos);
                b
            }
            (None, None) => self.train.block(i, seq),
        }
    }

    fn items(&self, seq: usize, frame: Option<i64>) -> usize {
        self.train
            .blocks(if frame.is_some() { seq - 2 } else { seq })
    }
}

/// GPT-2's tokenizer.json: ../shared/data/tokenizers/gpt2, else datasets/cache/tokenizers/gpt2.
fn gpt2_tokenizer() -> Result<TextTokenizer> {
    let path = kiln_core::paths::shared_data()
        .map(|d| d.join("tokenizers/gpt2/tokenizer.json"))
        .filter(|p| p.exists())
        .or_else(|| {
            Some(kiln_core::paths::cache_dir().join("tokenizers/gpt2/tokenizer.json"))
                .filter(|p| p.exists())
        })
        .context("GPT-2's tokenizer.json is needed: ../shared/data/tokenizers/gpt2/ or datasets/cache/tokenizers/gpt2/")?;
    Ok(TextTokenizer::from_file(&path, 1 << 20)?)
}

/// Text files in `dir` whose names contain `part` ("train" / "val"), sorted.
fn shards(dir: &std::path::Path, part: &str) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read --data-dir {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(part))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        bail!(
            "no text files with `{part}` in their name under {}: the `text` corpus reads *train* and *val* shards (plain UTF-8 text, e.g. C4 exported to text)",
            dir.display()
        );
    }
    Ok(v)
}

fn load_data(p: &Profile, args: &RunArgs) -> Result<Data> {
    let cache_dir = kiln_core::paths::cache_dir().join("corpus");
    std::fs::create_dir_all(&cache_dir)?;
    let (tok, train_src, eval_src, source) = match p.corpus.as_str() {
        "synthetic" => {
            let tok = TextTokenizer::word_level(&kiln_data::synthetic::lm_vocabulary(), 1 << 20)?;
            let train = cache_dir.join(format!("synthetic-{}-{}.txt", p.corpus_words, args.seed));
            let eval = cache_dir.join(format!("synthetic-eval-{}.txt", args.seed));
            if !train.exists() {
                kiln_core::atomic_write(
                    &train,
                    kiln_data::synthetic::lm_corpus(p.corpus_words, args.seed).as_bytes(),
                )?;
            }
            if !eval.exists() {
                kiln_core::atomic_write(
                    &eval,
                    kiln_data::synthetic::lm_corpus(p.corpus_words / 10, args.seed + 1).as_bytes(),
                )?;
            }
            (
                tok,
                vec![train],
                vec![eval],
                format!(
                    "synthetic grammar corpus, {} words, seed {}",
                    p.corpus_words, args.seed
                ),
            )
        }
        "wikitext-2" => {
            let root = args
                .data_dir
                .clone()
                .or_else(|| kiln_core::paths::shared_data().map(|d| d.join("wikitext-2")))
                .context(
                    "WikiText-2 not found: pass --data-dir <folder with valid.txt and test.txt>",
                )?;
            for f in ["valid.txt", "test.txt"] {
                if !root.join(f).exists() {
                    bail!(
                        "{}: no {f}; --data-dir must be a WikiText-2 folder with valid.txt (training) and test.txt (evaluation)",
                        root.display()
                    );
                }
            }
            (
                gpt2_tokenizer()?,
                vec![root.join("valid.txt")],
                vec![root.join("test.txt")],
                format!(
                    "WikiText-2 ({}): train on valid.txt, evaluate on test.txt, GPT-2 BPE",
                    root.display()
                ),
            )
        }
        "text" => {
            let root = args.data_dir.clone().context(
                "the `text` corpus needs --data-dir <folder with *train* and *val* text files>",
            )?;
            let (train, eval) = (shards(&root, "train")?, shards(&root, "val")?);
            let source = format!(
                "text shards under {}: {} train, {} val files, GPT-2 BPE",
                root.display(),
                train.len(),
                eval.len()
            );
            (gpt2_tokenizer()?, train, eval, source)
        }
        other => {
            bail!(
                "experiments/{NAME}.toml: unknown corpus `{other}` (synthetic, wikitext-2 or text)"
            )
        }
    };
    let stem = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let train = build_token_cache(
        &train_src,
        &tok,
        &cache_dir.join(format!("{}-{}.bin", p.corpus, stem(&train_src[0]))),
    )?;
    let eval_c = build_token_cache(
        &eval_src,
        &tok,
        &cache_dir.join(format!("{}-{}.bin", p.corpus, stem(&eval_src[0]))),
    )?;
    let blocks = eval_c.blocks(p.seq_len).min(p.eval_blocks);
    if blocks == 0 || train.blocks(p.seq_len) < p.batch_size {
        bail!("corpus too small for {}-token blocks", p.seq_len);
    }
    let compact = p
        .compact_vocab
        .then(|| CompactVocab::of(&[&train, &eval_c]));
    let eval = (0..blocks)
        .map(|i| match &compact {
            Some(v) => v.block(&eval_c, i, p.seq_len),
            None => eval_c.block(i, p.seq_len),
        })
        .collect();
    let (vocab, source) = match &compact {
        Some(v) => (
            v.size(),
            format!(
                "{source}; vocabulary compacted to the {} token types the two files use (of {})",
                v.size(),
                tok.vocab_size()
            ),
        ),
        None => (tok.vocab_size(), source),
    };
    Ok(Data {
        eval,
        vocab,
        compact,
        train,
        source,
    })
}

fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let (b, t) = (rows.len(), rows[0].len());
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::<1, Int>::from_data(TensorData::new(flat, [b * t]), device).reshape([b, t])
}

/// Random training blocks (seeded) and the fixed evaluation blocks of the profile's corpus.
struct CorpusTrainer<'a> {
    d: &'a Data,
    p: &'a Profile,
    rng: rand_chacha::ChaCha8Rng,
    device: Device,
}

impl<'a> CorpusTrainer<'a> {
    fn new(d: &'a Data, p: &'a Profile, seed: u64, device: &Device) -> Self {
        Self {
            d,
            p,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
        }
    }
}

impl Trainer for CorpusTrainer<'_> {
    fn step(&mut self, s: &mut TrainState) -> Result<f64, StagedError> {
        let frame = self.p.frame_bos_eos.then_some(GPT2_EOS);
        let n = self.d.items(self.p.seq_len, frame);
        let rows: Vec<Vec<i64>> = (0..self.p.batch_size)
            .map(|_| {
                let i = self.rng.random_range(0..n);
                self.d.item(i, self.p.seq_len, frame)
            })
            .collect();
        match self.p.micro_batch {
            0 => s.train_step(ids(&rows, &self.device), &self.device),
            m => s.train_step_accumulated(ids(&rows, &self.device), m, &self.device),
        }
    }

    fn eval(&mut self, s: &TrainState) -> Result<f64, StagedError> {
        let mut total = 0.0;
        for c in self.d.eval.chunks(16) {
            total += s.eval_loss(ids(c, &self.device), &self.device)? * c.len() as f64;
        }
        Ok(total / self.d.eval.len() as f64)
    }

    fn tokens_per_step(&self) -> f64 {
        (self.p.batch_size * self.p.seq_len) as f64
    }
}

/// FLOPs per optimizer step: 6 N tokens with N = 12 L d² (spec §8.1).
fn step_flops(s: &TrainState, p: &Profile) -> f64 {
    6.0 * s.non_embedding_params() as f64 * (p.batch_size * p.seq_len) as f64
}

/// Trains `s` until step `until`, evaluating every `eval_every` steps; `flops0` is the compute
/// already spent (for grown runs). `watch` lists slope thresholds: the state is kept at the first
/// evaluation where each fires on the curve (spec §8.2, online), so growth needs no replay;
/// with `stop_when_fired` the run ends once every watched threshold has fired.
fn train(
    mut s: TrainState,
    t: &mut CorpusTrainer,
    until: usize,
    flops0: f64,
    label: &str,
    watch: &[f64],
    stop_when_fired: bool,
) -> Result<(TrainState, Curve, Vec<Option<TrainState>>)> {
    let p = t.p;
    let mut curve = vec![(s.step, flops0, t.eval(&s)?)];
    let mut fired: Vec<Option<TrainState>> = vec![None; watch.len()];
    let mut flops = flops0;
    let pb = kiln_core::progress::bar((until.saturating_sub(s.step)) as u64, label);
    while s.step < until {
        let loss = t.step(&mut s)?;
        flops += step_flops(&s, p);
        pb.set_message(format!("loss {loss:.3}"));
        pb.inc(1);
        if s.step.is_multiple_of(p.eval_every.max(1)) {
            curve.push((s.step, flops, t.eval(&s)?));
            let pts: Vec<(f64, f64)> = curve.iter().skip(1).map(|c| (c.1, c.2)).collect();
            for (f, &th) in fired.iter_mut().zip(watch) {
                if f.is_none() && settled_decision_point(&pts, th).is_some() {
                    *f = Some(s.clone());
                }
            }
            if stop_when_fired && !watch.is_empty() && fired.iter().all(Option::is_some) {
                break;
            }
        }
    }
    pb.finish_and_clear();
    Ok((s, curve, fired))
}

fn fresh(cfg: Gpt2Config, p: &Profile, seed: u64, device: &Device) -> TrainState {
    device.seed(seed);
    let m = Gpt2Model::new(&cfg, device);
    let n = 12.0 * (cfg.n_layer * cfg.n_embd * cfg.n_embd) as f64;
    TrainState::new(
        cfg,
        &m,
        Schedule::new(lr_heuristic(n), p.warmup, p.total_steps),
    )
}

#[derive(Debug, Clone, Serialize)]
struct Growth {
    operator: String,
    /// "oracle" (S* matched on the scratch target curve) or "oracle-free" (S* = S_g / constant).
    procedure: String,
    small_n: f64,
    target_n: f64,
    s_grow: usize,
    s_star: usize,
    s_opt: usize,
    loss_before: f64,
    loss_after_growth: f64,
    first_post_growth: f64,
    spec_saving: f64,
    measured_saving: Option<f64>,
    decided_by: String,
    /// Oracle-free runs: the step (target coordinates) where the optimality slope stopped it.
    optimality_stop: Option<usize>,
}

/// Compute the staged run spent to reach the scratch target's final loss, relative to what the
/// scratch target spent to reach it: `1 - staged / scratch`.
fn measured_saving(target: &Curve, grown: &Curve) -> Option<f64> {
    let goal = target.last()?.2;
    let scratch = target.iter().find(|c| c.2 <= goal)?.1;
    let staged = grown.iter().find(|c| c.2 <= goal)?.1;
    Some(1.0 - staged / scratch)
}

/// `mini` when WikiText-2 and GPT-2's tokenizer are at hand (real text), else `smoke`.
fn default_profile(args: &RunArgs) -> (String, String) {
    let wikitext = args
        .data_dir
        .clone()
        .or_else(|| kiln_core::paths::shared_data().map(|d| d.join("wikitext-2")))
        .filter(|d| d.join("valid.txt").exists() && d.join("test.txt").exists());
    match (wikitext, gpt2_tokenizer()) {
        (Some(d), Ok(_)) => (
            "mini".into(),
            format!("WikiText-2 found at {}", d.display()),
        ),
        _ => (
            "smoke".into(),
            "no WikiText-2 (valid.txt, test.txt) or GPT-2 tokenizer found; pass --data-dir".into(),
        ),
    }
}

pub fn run(args: &RunArgs) -> Result<PathBuf> {
    let exp: Experiment = settings::load_typed(NAME)?;
    let (profile, why) = match super::requested_profile(NAME, &exp.profiles, args)? {
        Some(p) => p,
        None => default_profile(args),
    };
    let p = exp.profiles[&profile].clone();
    println!("staged-training: profile `{profile}` ({why})");
    run_profile(&exp, &profile, p, args)
}

/// Runs one profile's settings (tests run the paper profile's code path at a toy size).
fn run_profile(exp: &Experiment, profile: &str, p: Profile, args: &RunArgs) -> Result<PathBuf> {
    let device = args.device.device()?;
    let started = kiln_core::run::unix_now();
    let t0 = Instant::now();
    let d = load_data(&p, args)?;
    println!(
        "corpus: {} ({} training tokens, {} eval blocks of {}, vocabulary {})",
        d.source,
        d.train.len(),
        d.eval.len(),
        p.seq_len,
        d.vocab
    );
    // The paper's pairing: one target size, reached from a half-width model (div2_width, about
    // 1/4 of the non-embedding parameters) and from a half-depth one (div2_depth).
    if [p.n_head, p.n_embd, p.n_layer]
        .iter()
        .any(|x| !x.is_multiple_of(2))
    {
        bail!(
            "experiments/{NAME}.toml: the target's n_embd, n_head and n_layer must be even (the small models halve them)"
        );
    }
    let mut target_cfg = Gpt2Config::new(d.vocab, p.seq_len, p.n_embd, p.n_layer, p.n_head);
    target_cfg.resid_pdrop = p.dropout;
    target_cfg.embd_pdrop = p.dropout;
    target_cfg.attn_pdrop = p.dropout;
    let mut width_small = target_cfg.clone();
    width_small.n_embd /= 2;
    width_small.n_head /= 2;
    let mut depth_small = target_cfg.clone();
    depth_small.n_layer /= 2;
    let depth_init = DepthInit::parse(&p.depth_init).with_context(|| {
        format!(
            "experiments/{NAME}.toml: depth_init `{}` (identity, zero-output-copy or official-released-compat)",
            p.depth_init
        )
    })?;
    let depth_op = Operator::Depth {
        placement: Placement::Alternate,
        init: depth_init,
    };

    // From-scratch runs: same seed, same batch order.
    let seed = args.seed;
    let (_, target_curve, _) = train(
        fresh(target_cfg, &p, seed, &device),
        &mut CorpusTrainer::new(&d, &p, seed, &device),
        p.target_steps,
        0.0,
        "target",
        &[],
        false,
    )?;
    let mut smalls = Vec::new();
    for (label, cfg, threshold) in [
        ("half-width", width_small, p.width_threshold),
        ("half-depth", depth_small, p.depth_threshold),
    ] {
        let (end, curve, mut fired) = train(
            fresh(cfg, &p, seed, &device),
            &mut CorpusTrainer::new(&d, &p, seed, &device),
            p.small_steps,
            0.0,
            label,
            &[threshold],
            p.stop_small_at_growth,
        )?;
        smalls.push((end, curve, fired.remove(0)));
    }

    let mut growths = Vec::new();
    let mut notes = Vec::new();
    let mut curves: Vec<(String, Curve)> = vec![
        ("target (scratch)".into(), target_curve.clone()),
        ("half-width (scratch)".into(), smalls[0].1.clone()),
        ("half-depth (scratch)".into(), smalls[1].1.clone()),
    ];
    let ops = [
        (
            Operator::Width,
            p.width_threshold,
            p.width_constant,
            &smalls[0],
        ),
        (depth_op, p.depth_threshold, p.depth_constant, &smalls[1]),
    ];
    let target_curve = &target_curve;
    for (op, threshold, constant, (small_end, small_curve, at)) in ops {
        let name = op.name();
        let (small_g, decided_by) = match at {
            Some(s) => (s.clone(), format!("slope > {threshold}")),
            None => (
                small_end.clone(),
                format!("slope never above {threshold}: grown at the end of the small run"),
            ),
        };
        let s_g = small_g.step;
        let flops_g = small_curve
            .iter()
            .find(|c| c.0 == s_g)
            .map(|c| c.1)
            .unwrap_or(step_flops(&small_g, &p) * s_g as f64);
        let mut tr = CorpusTrainer::new(&d, &p, seed + 7, &device);
        let loss_g = tr.eval(&small_g)?;
        let s_opt = target_curve.last().map(|c| c.0).unwrap_or(p.target_steps);
        let oracle = matching_step(
            &target_curve.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
            loss_g,
        )
        .unwrap_or(0);
        let mut procedures = vec![("oracle", oracle)];
        if p.oracle_free {
            procedures.push(("oracle-free", oracle_free_restart(s_g, constant)));
        }
        for (procedure, s_star) in procedures {
            let grown = grow_and_restart(&small_g, op, s_star, p.rewarmup)?;
            let mut tr = CorpusTrainer::new(&d, &p, seed + 7, &device);
            let loss_after = tr.eval(&grown)?;
            let target_n = grown.non_embedding_params() as f64;
            let (_, mut gcurve, _) = train(
                grown,
                &mut tr,
                p.target_steps.max(s_star + 1),
                flops_g,
                &format!("{name}-grown ({procedure})"),
                &[],
                false,
            )?;
            gcurve[0].2 = loss_after;
            let first_post = gcurve.get(1).map(|c| c.2).unwrap_or(f64::NAN);
            // The optimality criterion in the target's coordinates (spec §8.4 step 5).
            let per_step = 6.0 * target_n * (p.batch_size * p.seq_len) as f64;
            let pts: Vec<(f64, f64)> = gcurve
                .iter()
                .skip(1)
                .map(|c| (per_step * c.0 as f64, c.2))
                .collect();
            let optimality_stop =
                settled_decision_point(&pts, p.optimality_threshold).map(|i| gcurve[i + 1].0);
            let measured = measured_saving(target_curve, &gcurve);
            let small_n = small_g.non_embedding_params() as f64;
            println!(
                "{name} ({procedure}): grown at step {s_g} (loss {loss_g:.4} -> {loss_after:.4} right after growth), S* = {s_star}, measured saving {}",
                measured.map(|m| format!("{:.1}%", 100.0 * m)).unwrap_or_else(|| "not reached".into())
            );
            curves.push((format!("{name}-grown ({procedure})"), gcurve));
            growths.push(Growth {
                operator: name.into(),
                procedure: procedure.into(),
                small_n,
                target_n,
                s_grow: s_g,
                s_star,
                s_opt,
                loss_before: loss_g,
                loss_after_growth: loss_after,
                first_post_growth: first_post,
                spec_saving: saving(small_n, target_n, s_g as f64, s_star as f64, s_opt as f64),
                measured_saving: measured,
                decided_by: decided_by.clone(),
                optimality_stop,
            });
        }
        if name == "depth" && depth_init != DepthInit::OfficialReleasedCompat {
            // What the released script's depth mapping (spec §5.2) does to the same state.
            let compat = grow_depth_with(
                &small_g,
                Placement::Alternate,
                DepthInit::OfficialReleasedCompat,
            )?;
            let after = tr.eval(&compat)?;
            notes.push(format!(
                "released-script depth mapping (spec §5.2: layers duplicated) on the same state at step {s_g}: eval loss {loss_g:.4} → {after:.4} (the identity-block operator used above keeps it)"
            ));
        }
    }
    // The theory of spec §8.5 under Kaplan's laws: scale-free, so one target loss suffices.
    let l_target = 3.0;
    let savings: Vec<String> = (2..=4)
        .map(|k| {
            format!(
                "{k} stages {:.1}%",
                100.0 * kiln_staged::multistage::multistage_saving(k, l_target)
            )
        })
        .collect();
    notes.push(format!(
        "multi-stage theory (spec §8.5, Kaplan's L(N, S), growth preserving the dynamics): the compute-optimal schedule to a target loss saves {} over the best single model (the same at any target loss: the saving is scale-free)",
        savings.join(", ")
    ));
    let wall = t0.elapsed().as_secs_f64();
    write(
        exp, profile, &p, args, &d, &curves, &growths, &notes, wall, started, &device,
    )
}

#[allow(clippy::too_many_arguments)]
fn write(
    exp: &Experiment,
    profile: &str,
    p: &Profile,
    args: &RunArgs,
    d: &Data,
    curves: &[(String, Curve)],
    growths: &[Growth],
    notes: &[String],
    wall: f64,
    started: u64,
    device: &Device,
) -> Result<PathBuf> {
    let synthetic = p.corpus == "synthetic";
    let out = args.out.join(NAME).join(profile);
    std::fs::create_dir_all(&out)?;
    let mut table = Table::new(
        Table::profile_title(&exp.title, profile, synthetic),
        &[
            "growth",
            "S* from",
            "small N",
            "target N",
            "S_g (grow)",
            "S* on target",
            "S_opt (target end)",
            "S_g/S*",
            "saving (spec formula)",
            "measured saving",
            "loss before → after growth",
            "first eval after growth",
            "paper saving",
        ],
    );
    let paper = [
        ("width", "21.6% (base) / 25.5% (large)"),
        ("depth", "13.2% (base) / 14.8% (large)"),
    ];
    let mut metrics = BTreeMap::new();
    for g in growths {
        table.push(vec![
            Cell::text(&g.operator),
            Cell::text(&g.procedure),
            Cell::num(g.small_n, 0),
            Cell::num(g.target_n, 0),
            Cell::num(g.s_grow as f64, 0),
            Cell::num(g.s_star as f64, 0),
            Cell::num(g.s_opt as f64, 0),
            Cell::num(g.s_grow as f64 / (g.s_star.max(1)) as f64, 3),
            Cell::text(format!("{:.1}%", 100.0 * g.spec_saving)),
            Cell::text(
                g.measured_saving
                    .map(|m| format!("{:.1}%", 100.0 * m))
                    .unwrap_or_else(|| "not reached".into()),
            ),
            Cell::text(format!("{:.4} → {:.4}", g.loss_before, g.loss_after_growth)),
            Cell::num(g.first_post_growth, 4),
            Cell::text(
                paper
                    .iter()
                    .find(|x| x.0 == g.operator)
                    .map(|x| x.1)
                    .unwrap_or("-"),
            ),
        ]);
        let key = format!("{}.{}", g.operator, g.procedure);
        metrics.insert(format!("{key}.spec_saving"), g.spec_saving);
        if let Some(m) = g.measured_saving {
            metrics.insert(format!("{key}.measured_saving"), m);
        }
        metrics.insert(
            format!("{key}.loss_jump"),
            g.loss_after_growth - g.loss_before,
        );
    }
    table.note(format!("profile `{profile}`: {}", p.description));
    if synthetic {
        table.note("SYNTHETIC: seeded grammar corpus and tiny models; the paper's rows are for GPT-2 on C4.");
    }
    table.note(format!("paper: {}", exp.reference));
    table.note(format!("data: {}", d.source));
    table.note("S_g: growth step chosen by the slope criterion (spec §8.2) on the small model's eval curve; S*: \"oracle\": step of the from-scratch target whose eval loss is closest to the small model's at S_g; \"oracle-free\": S_g / constant_op (spec §8.3, the cheatsheet's 1.776 width / 1.412 depth unless the profile sets others); the grown run restarts at S* (first step S* + 1) with the target's LR heuristic and a re-warm-up. Spec formula: (C_tgt(S*) - C_small(S_g)) / C_tgt(S_opt), S_opt = the target run's last step. Measured: 1 - (compute of the staged run to reach the scratch target's final eval loss) / (compute the scratch target spent to reach it). Compute = 6 N tokens, N = 12 L d². Loss after growth is evaluated before any post-growth step (dropout off).");
    for n in notes {
        table.note(n);
    }
    // WikiText-style evaluation: mean loss over the non-overlapping eval blocks, perplexity.
    let finals: Vec<String> = curves
        .iter()
        .filter_map(|(name, c)| {
            let (step, _, loss) = c.last()?;
            Some(format!(
                "{name} {loss:.4} (ppl {:.1}) at step {step}",
                loss.exp()
            ))
        })
        .collect();
    table.note(format!(
        "final eval loss (perplexity) over {} non-overlapping {}-token blocks: {}",
        d.eval.len(),
        p.seq_len,
        finals.join("; ")
    ));
    for g in growths.iter().filter(|g| g.procedure == "oracle-free") {
        table.note(format!(
            "{} oracle-free: optimality slope (> {}) reached at step {}",
            g.operator,
            p.optimality_threshold,
            g.optimality_stop
                .map(|s| s.to_string())
                .unwrap_or_else(|| "— (not within the run)".into())
        ));
    }
    table.note(format!("wall time {wall:.0} s"));
    let meta = RunMeta::for_run(
        NAME,
        profile,
        device,
        args.device.label(),
        args.seed,
        started,
        wall,
        synthetic,
        metrics,
        serde_json::json!({ "profile": p, "growths": growths, "curves": curves.iter().map(|(n, c)| (n.clone(), c.clone())).collect::<BTreeMap<_, _>>() }),
    );
    kiln_report::write_results(&out, &table, &meta)?;
    println!("{}", table.to_markdown());
    let series: Vec<Series> = curves
        .iter()
        .map(|(name, c)| Series {
            name: name.clone(),
            points: c
                .iter()
                .filter(|x| x.1 > 0.0)
                .map(|x| (x.1.log10(), x.2))
                .collect(),
        })
        .collect();
    line_plot(
        &out.join("loss_vs_compute"),
        "eval loss vs compute",
        "log10 training FLOPs",
        "eval loss",
        &series,
    )?;
    println!("results written to {}", out.display());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(dir: &std::path::Path, text: &str) -> Data {
        std::fs::write(dir.join("a.txt"), text).unwrap();
        let tok =
            TextTokenizer::word_level(&kiln_data::synthetic::lm_vocabulary(), 1 << 20).unwrap();
        let train = build_token_cache(&[dir.join("a.txt")], &tok, &dir.join("a.bin")).unwrap();
        Data {
            train,
            eval: Vec::new(),
            vocab: tok.vocab_size(),
            compact: None,
            source: String::new(),
        }
    }

    #[test]
    fn paper_items_are_framed_by_eos() {
        let dir = tempfile::tempdir().unwrap();
        let d = data(dir.path(), "the ( was ) the . and were the ( was )");
        let plain = d.item(0, 6, None);
        let framed = d.item(0, 6, Some(GPT2_EOS));
        assert_eq!(framed.len(), 6);
        assert_eq!((framed[0], framed[5]), (GPT2_EOS, GPT2_EOS));
        assert_eq!(&framed[1..5], &plain[..4]);
        assert_eq!(d.items(6, Some(GPT2_EOS)), d.train.len() / 4);
        assert_eq!(d.items(6, None), d.train.len() / 6);
    }

    /// The paper profile's code path (text shards, `[BOS] ... [EOS]` items over the full GPT-2
    /// vocabulary, gradient accumulation, the spec's thresholds, oracle-free restarts) at a toy
    /// size, since the profile itself needs a GPU.
    #[test]
    fn paper_profile_runs_at_toy_size() {
        let Some(shared) = kiln_core::paths::shared_data() else {
            eprintln!("skipped: ../shared/data not found (WikiText-2 text and GPT-2 tokenizer)");
            return;
        };
        let wiki = shared.join("wikitext-2");
        if !wiki.join("valid.txt").exists() || gpt2_tokenizer().is_err() {
            eprintln!(
                "skipped: WikiText-2 or the GPT-2 tokenizer missing under {}",
                shared.display()
            );
            return;
        }
        let text = |f: &str, n: usize| {
            let t = std::fs::read_to_string(wiki.join(f)).unwrap();
            t.chars().take(n).collect::<String>()
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c4-train.00000.txt"),
            text("valid.txt", 20_000),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c4-validation.00000.txt"),
            text("test.txt", 6_000),
        )
        .unwrap();
        let exp: Experiment = settings::load_typed(NAME).unwrap();
        let mut p = exp.profiles["paper"].clone();
        assert_eq!(
            (p.corpus.as_str(), p.frame_bos_eos, p.oracle_free),
            ("text", true, true)
        );
        (p.seq_len, p.batch_size, p.micro_batch) = (16, 4, 3);
        (p.n_embd, p.n_layer, p.n_head) = (16, 2, 2);
        (p.small_steps, p.target_steps, p.eval_every, p.eval_blocks) = (30, 30, 5, 4);
        (p.warmup, p.rewarmup) = (5, 5);
        let out = tempfile::tempdir().unwrap();
        let args = RunArgs {
            profile: Some("paper".into()),
            device: kiln_core::DeviceChoice::Flex,
            data_dir: Some(dir.path().to_path_buf()),
            model: None,
            out: out.path().to_path_buf(),
            tasks: None,
            seed: 3,
            download: false,
            train_examples: None,
            epochs: None,
        };
        let res = run_profile(&exp, "paper-toy", p, &args).unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(res.join("run.json")).unwrap()).unwrap();
        let growths = meta["settings"]["growths"].as_array().unwrap();
        assert_eq!(
            growths.len(),
            4,
            "oracle and oracle-free rows for both operators"
        );
        for g in growths {
            let jump =
                g["loss_after_growth"].as_f64().unwrap() - g["loss_before"].as_f64().unwrap();
            assert!(jump.abs() < 1e-4, "{g}");
        }
        let free: Vec<&serde_json::Value> = growths
            .iter()
            .filter(|g| g["procedure"] == "oracle-free")
            .collect();
        let s_g = free[0]["s_grow"].as_f64().unwrap();
        assert_eq!(free[0]["s_star"].as_f64().unwrap(), (s_g / 1.776).round());
    }

    #[test]
    fn text_corpus_needs_train_and_val_shards() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c4-train.00000.txt"), "x").unwrap();
        std::fs::write(dir.path().join("c4-train.00001.txt"), "y").unwrap();
        let t = shards(dir.path(), "train").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0] < t[1], "sorted");
        let e = shards(dir.path(), "val").unwrap_err().to_string();
        assert!(
            e.contains("`val`") && e.contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}
