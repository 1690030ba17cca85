//! `staged-training`: Shen et al. 2022. As in the paper's pairs, one target size is trained from
//! scratch and reached from two small models, half the width (heads halved) and half the depth;
//! each small model is grown at the point the slope criterion picks (online, §8.2) and restarted
//! at S*, matched on the target curve (oracle) and, with `oracle_free`, `S_g / constant_op`
//! (§8.4). Every run goes through [`crate::procedure::train_curve`], the loop the oracle-free
//! procedure and the tests use. Reports loss-vs-compute curves, the growth points, the loss
//! right before and after growth, the released-script depth mapping's loss jump on the same
//! state, the multi-stage theory's saving, the compute saving in the layout of the spec's
//! section 11, and each run's final eval loss (table `eval_loss`). Every reported eval loss cites
//! the per-block losses of the state it was computed on (`predictions/eval-blocks/`, one file per
//! run and state), from which `kiln verify` recomputes it; the paper's savings are in a
//! `paper_reference` table of their own, with what differs from the run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::corpus::{build_token_cache, CompactVocab, TokenCorpus};
use kiln_data::TextTokenizer;
use kiln_experiment::{
    Bench, ExperimentFile, Paper, Plot, Resolver, RunArgs, RunContext, RunRecord,
};
use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
use kiln_report::{Cell, Source, Table};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::depth::{grow_depth_with, DepthInit, Placement};
use crate::procedure::{
    flops_per_step, grow_and_restart, measured_saving, oracle_free_restart, train_curve,
    CurvePoint, Operator, SlopeAxis, TrainOpts, Trainer,
};
use crate::schedule::{lr_heuristic, matching_step, saving, Schedule};
use crate::{StagedError, TrainState};

pub const NAME: &str = "staged-training";

/// The experiment, for the registry.
pub struct StagedTraining;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
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
    crate::procedure::thresholds::OPTIMALITY
}
fn default_width_constant() -> f64 {
    crate::procedure::constants::WIDTH
}
fn default_depth_constant() -> f64 {
    crate::procedure::constants::DEPTH
}
fn default_depth_init() -> String {
    "identity".into()
}

/// Evaluation points of one run: step, compute so far, eval loss.
type Curve = Vec<CurvePoint>;

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

/// GPT-2's tokenizer.json (`tokenizers/gpt2/` under a data root: --data-dir, KILN_DATA, the
/// cache, ../shared/data).
const GPT2_TOKENIZER: &str = "tokenizers/gpt2/tokenizer.json";

fn gpt2_tokenizer(r: &Resolver) -> Result<TextTokenizer> {
    let f = r.file(GPT2_TOKENIZER)?;
    Ok(TextTokenizer::from_file(&f.path, 1 << 20)?)
}

/// WikiText-2's two files the mini profile reads.
const WIKITEXT: (&str, &[&str]) = ("wikitext-2", &["valid.txt", "test.txt"]);

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

fn write_if_changed(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        kiln_core::atomic_write(path, bytes)?;
    }
    Ok(())
}

/// Token caches live under `<cache>/corpus/`, named after the corpus and its first file; what
/// decides reuse is their content key ([`build_token_cache`]: the sources' sha256, the
/// tokenizer's fingerprint), so new text under an old name is tokenised again.
fn load_data(p: &Profile, ctx: &RunContext) -> Result<Data> {
    let seed = ctx.seed;
    let cache_dir = ctx.cache.join("corpus");
    std::fs::create_dir_all(&cache_dir)?;
    let (tok, train_src, eval_src, source) = match p.corpus.as_str() {
        "synthetic" => {
            let tok = TextTokenizer::word_level(&kiln_data::synthetic::lm_vocabulary(), 1 << 20)?;
            let train = cache_dir.join(format!("synthetic-{}-{}.txt", p.corpus_words, seed));
            let eval = cache_dir.join(format!("synthetic-eval-{}.txt", seed));
            // Generated on every run (cheap) and written when the file differs, so the text is
            // what this build's generator makes for these settings, whatever a file of that
            // name held before.
            write_if_changed(
                &train,
                kiln_data::synthetic::lm_corpus(p.corpus_words, seed).as_bytes(),
            )?;
            write_if_changed(
                &eval,
                kiln_data::synthetic::lm_corpus(p.corpus_words / 10, seed + 1).as_bytes(),
            )?;
            (
                tok,
                vec![train],
                vec![eval],
                format!(
                    "synthetic grammar corpus, {} words, seed {}",
                    p.corpus_words, seed
                ),
            )
        }
        "wikitext-2" => {
            let root = ctx.resolver.folder(WIKITEXT.0, WIKITEXT.1)?.path;
            (
                gpt2_tokenizer(&ctx.resolver)?,
                vec![root.join("valid.txt")],
                vec![root.join("test.txt")],
                format!(
                    "WikiText-2 ({}): train on valid.txt, evaluate on test.txt, GPT-2 BPE",
                    root.display()
                ),
            )
        }
        "text" => {
            let root = ctx.args.data_dir.clone().context(
                "the `text` corpus needs --data-dir <folder with *train* and *val* text files>",
            )?;
            let (train, eval) = (shards(&root, "train")?, shards(&root, "val")?);
            let source = format!(
                "text shards under {}: {} train, {} val files, GPT-2 BPE",
                root.display(),
                train.len(),
                eval.len()
            );
            (gpt2_tokenizer(&ctx.resolver)?, train, eval, source)
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

/// One model state scored per evaluation block: the per-example file behind a reported eval
/// loss (`predictions/eval-blocks/<run>-s<seed>.csv`).
#[derive(Debug, Clone)]
struct Scored {
    /// Which run and state (`target (scratch)`, `half-width at growth`, ...).
    run: String,
    step: usize,
    /// The eval loss as the run computed it (the curve's batched evaluation).
    loss: f64,
    /// Mean next-token loss of each evaluation block (`seq_len - 1` predictions each).
    blocks: Vec<f64>,
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
    /// The small model at growth and the grown model at restart, per evaluation block (their
    /// means are `loss_before` and `loss_after_growth`).
    #[serde(skip)]
    before: Scored,
    #[serde(skip)]
    after: Scored,
}

impl Paper for StagedTraining {
    type Profile = Profile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn inputs(&self, _: &str, p: &Profile, args: &RunArgs) -> Result<String, String> {
        let r = Resolver::from_args(args);
        match p.corpus.as_str() {
            "synthetic" => Ok("synthetic grammar corpus".into()),
            "wikitext-2" => match (r.find_folder(WIKITEXT.0, WIKITEXT.1), r.find_file(GPT2_TOKENIZER)) {
                (Some(d), Some(_)) => Ok(format!("WikiText-2 found at {}", d.path.display())),
                _ => Err("no WikiText-2 (valid.txt, test.txt) or GPT-2 tokenizer found; pass --data-dir".into()),
            },
            "text" => match (&args.data_dir, r.find_file(GPT2_TOKENIZER)) {
                (Some(d), Some(_)) => Ok(format!("text shards in {}", d.display())),
                _ => Err("the `text` corpus needs --data-dir with *train*/*val* text files and GPT-2's tokenizer".into()),
            },
            other => Err(format!("unknown corpus `{other}`")),
        }
    }

    fn validate(&self, p: &Profile) -> Result<()> {
        // The paper's pairing: the small models halve n_embd and n_head (width) or n_layer.
        if [p.n_head, p.n_embd, p.n_layer]
            .iter()
            .any(|x| !x.is_multiple_of(2))
        {
            bail!(
                "experiments/{NAME}.toml: the target's n_embd, n_head and n_layer must be even (the small models halve them)"
            );
        }
        DepthInit::parse(&p.depth_init).with_context(|| {
            format!(
                "experiments/{NAME}.toml: depth_init `{}` (identity, zero-output-copy or official-released-compat)",
                p.depth_init
            )
        })?;
        Ok(())
    }

    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<Profile>,
        p: &Profile,
    ) -> Result<RunRecord> {
        let r = run_profile(ctx, p)?;
        record(file, p, ctx, &r)
    }

    fn benches(&self) -> &'static [Bench] {
        &[
            ("gpt2", crate::bench::gpt2_train),
            ("gpt2-loss", crate::bench::gpt2_loss),
        ]
    }
}

/// What a run of the profile measured.
struct Outcome {
    source: String,
    eval_blocks: usize,
    curves: Vec<(String, Curve)>,
    growths: Vec<Growth>,
    notes: Vec<String>,
    /// Each run's final state scored per evaluation block.
    block_losses: Vec<Scored>,
    wall: f64,
}

/// Mean token loss of `s` on each evaluation block (the per-example output of a language
/// model's evaluation; their mean over blocks is the reported eval loss).
fn block_losses(s: &TrainState, d: &Data, device: &Device) -> Result<Vec<f64>> {
    d.eval
        .iter()
        .map(|b| Ok(s.eval_loss(ids(std::slice::from_ref(b), device), device)?))
        .collect()
}

/// `s` scored per evaluation block, with `loss` its eval loss as the run computed it.
fn scored(run: &str, s: &TrainState, loss: f64, d: &Data, device: &Device) -> Result<Scored> {
    Ok(Scored {
        run: run.to_string(),
        step: s.step,
        loss,
        blocks: block_losses(s, d, device)?,
    })
}

/// A run's final state scored per block; its eval loss is the curve's last point when that is
/// the final state (the run ended on an evaluation step), else the same evaluation run now.
fn final_scored(
    run: &str,
    s: &TrainState,
    curve: &Curve,
    tr: &mut impl Trainer,
    d: &Data,
    device: &Device,
) -> Result<Scored> {
    let loss = match curve.last() {
        Some(c) if c.step == s.step => c.loss,
        _ => tr.eval(s)?,
    };
    scored(run, s, loss, d, device)
}

fn opts<'a>(p: &Profile, until: usize, flops0: f64, label: &'a str) -> TrainOpts<'a> {
    TrainOpts {
        until,
        flops0,
        eval_every: p.eval_every,
        watch: &[],
        axis: SlopeAxis::Compute,
        stop_when_fired: false,
        label,
    }
}

/// Runs one profile's settings (tests run the paper profile's code path at a toy size).
fn run_profile(ctx: &RunContext, p: &Profile) -> Result<Outcome> {
    let device = &ctx.device;
    let d = load_data(p, ctx)?;
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
    let mut target_cfg = Gpt2Config::new(d.vocab, p.seq_len, p.n_embd, p.n_layer, p.n_head);
    target_cfg.resid_pdrop = p.dropout;
    target_cfg.embd_pdrop = p.dropout;
    target_cfg.attn_pdrop = p.dropout;
    let mut width_small = target_cfg.clone();
    width_small.n_embd /= 2;
    width_small.n_head /= 2;
    let mut depth_small = target_cfg.clone();
    depth_small.n_layer /= 2;
    let depth_init = DepthInit::parse(&p.depth_init)
        .with_context(|| format!("experiments/{NAME}.toml: depth_init `{}`", p.depth_init))?;
    let depth_op = Operator::Depth {
        placement: Placement::Alternate,
        init: depth_init,
    };

    // From-scratch runs: same seed, same batch order.
    let seed = ctx.seed;
    let target = train_curve(
        fresh(target_cfg, p, seed, device),
        &mut CorpusTrainer::new(&d, p, seed, device),
        &opts(p, p.target_steps, 0.0, "target"),
    )?;
    // Each run's final state scored per evaluation block. Evaluating draws nothing from the
    // device RNG (the model is rebuilt with `Gpt2Model::zeroed`), so it cannot perturb the
    // dropout of the runs that follow.
    let mut blocks = vec![final_scored(
        "target (scratch)",
        &target.state,
        &target.curve,
        &mut CorpusTrainer::new(&d, p, seed, device),
        &d,
        device,
    )?];
    let target_curve = target.curve;
    let mut smalls = Vec::new();
    for (label, cfg, threshold) in [
        ("half-width", width_small, p.width_threshold),
        ("half-depth", depth_small, p.depth_threshold),
    ] {
        let mut r = train_curve(
            fresh(cfg, p, seed, device),
            &mut CorpusTrainer::new(&d, p, seed, device),
            &TrainOpts {
                watch: &[threshold],
                stop_when_fired: p.stop_small_at_growth,
                ..opts(p, p.small_steps, 0.0, label)
            },
        )?;
        let fired = r.fired.remove(0);
        blocks.push(final_scored(
            &format!("{label} (scratch)"),
            &r.state,
            &r.curve,
            &mut CorpusTrainer::new(&d, p, seed, device),
            &d,
            device,
        )?);
        smalls.push((r.state, r.curve, fired));
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
    let tokens = (p.batch_size * p.seq_len) as f64;
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
            .find(|c| c.step == s_g)
            .map(|c| c.flops)
            .unwrap_or(flops_per_step(&small_g, tokens) * s_g as f64);
        let mut tr = CorpusTrainer::new(&d, p, seed + 7, device);
        let loss_g = tr.eval(&small_g)?;
        let small_label = if name == "width" {
            "half-width"
        } else {
            "half-depth"
        };
        let before = scored(
            &format!("{small_label} at growth"),
            &small_g,
            loss_g,
            &d,
            device,
        )?;
        let s_opt = target_curve
            .last()
            .map(|c| c.step)
            .unwrap_or(p.target_steps);
        let oracle = matching_step(
            &target_curve
                .iter()
                .map(|c| (c.step, c.loss))
                .collect::<Vec<_>>(),
            loss_g,
        )
        .unwrap_or(0);
        let mut procedures = vec![("oracle", oracle)];
        if p.oracle_free {
            procedures.push(("oracle-free", oracle_free_restart(s_g, constant)));
        }
        for (procedure, s_star) in procedures {
            let grown = grow_and_restart(&small_g, op, s_star, p.rewarmup)?;
            let mut tr = CorpusTrainer::new(&d, p, seed + 7, device);
            let target_n = grown.non_embedding_params() as f64;
            // The optimality criterion, watched online in the target's coordinates (spec §8.4
            // step 5); the run goes on to the target's step count so the curves compare.
            let per_step = flops_per_step(&grown, tokens);
            let label = format!("{name}-grown ({procedure})");
            // The grown state before any post-growth step, scored per block; `train_curve`'s
            // first evaluation is of this same state.
            let restart_blocks = block_losses(&grown, &d, device)?;
            let g = train_curve(
                grown,
                &mut tr,
                &TrainOpts {
                    watch: &[p.optimality_threshold],
                    axis: SlopeAxis::TargetCompute { per_step },
                    ..opts(p, p.target_steps.max(s_star + 1), flops_g, &label)
                },
            )?;
            blocks.push(final_scored(
                &label, &g.state, &g.curve, &mut tr, &d, device,
            )?);
            let gcurve = g.curve;
            let loss_after = gcurve[0].loss;
            let after = Scored {
                run: format!("{label} at restart"),
                step: gcurve[0].step,
                loss: loss_after,
                blocks: restart_blocks,
            };
            let first_post = gcurve.get(1).map(|c| c.loss).unwrap_or(f64::NAN);
            let optimality_stop = g.fired[0].as_ref().map(|f| f.step);
            let measured = measured_saving(&target_curve, &gcurve);
            let small_n = small_g.non_embedding_params() as f64;
            println!(
                "{name} ({procedure}): grown at step {s_g} (loss {loss_g:.4} -> {loss_after:.4} right after growth), S* = {s_star}, measured saving {}",
                measured.map(|m| format!("{:.1}%", 100.0 * m)).unwrap_or_else(|| "not reached".into())
            );
            curves.push((label, gcurve));
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
                before: before.clone(),
                after,
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
                100.0 * crate::multistage::multistage_saving(k, l_target)
            )
        })
        .collect();
    notes.push(format!(
        "multi-stage theory (spec §8.5, Kaplan's L(N, S), growth preserving the dynamics): the compute-optimal schedule to a target loss saves {} over the best single model (the same at any target loss: the saving is scale-free)",
        savings.join(", ")
    ));
    Ok(Outcome {
        source: d.source.clone(),
        eval_blocks: d.eval.len(),
        curves,
        growths,
        notes,
        block_losses: blocks,
        wall: ctx.elapsed(),
    })
}

/// The columns of a per-block eval-loss file.
const EVAL_BLOCKS_HEADER: [&str; 5] = ["run", "step", "block", "tokens", "loss"];
/// A reported eval loss: the mean of the blocks' losses weighted by their predicted tokens.
const EVAL_LOSS_METRIC: &str = "weighted_mean:loss:tokens";

/// The paper's savings (GPT-2 base and large on C4, recomputed from the official learning
/// curves) in a table of their own, with what differs from this run: no profile runs the
/// paper's setting (its S_opt is the optimality step of a full-length run).
fn paper_reference(file: &ExperimentFile<Profile>, p: &Profile, o: &Outcome) -> Table {
    let mut t = Table::new(
        "The paper's compute savings, and what differs from this run",
        &[
            "growth",
            "paper target",
            "paper saving",
            "kiln target",
            "kiln saving (spec formula, oracle S*)",
            "data (kiln vs paper)",
            "training (kiln vs paper)",
        ],
    );
    let tokens = p.batch_size * p.seq_len;
    for op in ["width", "depth"] {
        let kiln = o
            .growths
            .iter()
            .find(|g| g.operator == op && g.procedure == "oracle");
        for size in ["base", "large"] {
            let Some(saving) = file.paper.get(&format!("{op}.{size}")) else {
                continue;
            };
            let n = |k: &str| file.paper.get(&format!("setting.{size}.{k}"));
            t.push(vec![
                Cell::text(op),
                Cell::text(match (n("layers"), n("d")) {
                    (Some(l), Some(d)) => format!("GPT2_{size}: {l} layers, d {d}"),
                    _ => format!("GPT2_{size}"),
                }),
                Cell::text(format!("{saving:.1}%")),
                Cell::text(format!("{} layers, d {}", p.n_layer, p.n_embd)),
                Cell::text(kiln.map_or("—".into(), |g| format!("{:.1}%", 100.0 * g.spec_saving))),
                Cell::text(format!(
                    "{}, {tokens} tokens per step vs C4, {} tokens per step",
                    p.corpus,
                    file.paper
                        .get("setting.tokens_per_step")
                        .map_or("—".into(), |x| format!("{x}"))
                )),
                Cell::text(format!(
                    "S_opt {} (the target run's last step) vs {} (the optimality step of the official curve)",
                    kiln.map_or(p.target_steps, |g| g.s_opt),
                    n("s_opt").map_or("—".into(), |x| format!("{x}"))
                )),
            ]);
        }
    }
    t.note(format!("paper: {}", file.reference));
    t.note("The paper's savings are the official notebook's, recomputed from the real GPT-2/C4 learning curves with the oracle S* (spec §11); kiln's are this run's, with the same formula but S_opt = the target run's last step and far smaller models, data and training.");
    t
}

fn record<'a>(
    file: &ExperimentFile<Profile>,
    p: &Profile,
    ctx: &RunContext,
    o: &'a Outcome,
) -> Result<RunRecord> {
    let synthetic = p.corpus == "synthetic";
    let mut rec = RunRecord::new(synthetic);
    let mut table = ctx.main_table(
        &file.title,
        synthetic,
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
            "eval loss before growth",
            "eval loss after growth",
            "first eval after growth",
        ],
    );
    // Every reported eval loss cites the per-block losses of the state it was computed on, one
    // file per run (one seed: the run seed), and `kiln verify` recomputes it as their
    // token-weighted mean.
    let mut files: Vec<(String, &Scored)> = Vec::new();
    let mut source = |s: &'a Scored| -> Source {
        let rel = format!(
            "predictions/eval-blocks/{}-s{}.csv",
            kiln_report::slug(&s.run),
            ctx.seed
        );
        if !files.iter().any(|(f, _)| *f == rel) {
            files.push((rel.clone(), s));
        }
        Source::new(EVAL_LOSS_METRIC, vec![rel], 1.0)
    };
    for g in &o.growths {
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
            Cell::sourced(&[g.loss_before], 4, source(&g.before)),
            Cell::sourced(&[g.loss_after_growth], 4, source(&g.after)),
            // A point of the grown run's eval curve (training dynamics right after growth), not
            // a result metric: no per-block file is kept for mid-run evaluations.
            Cell::num(g.first_post_growth, 4),
        ]);
        let key = format!("{}.{}", g.operator, g.procedure);
        rec.metric(format!("{key}.spec_saving"), g.spec_saving);
        if let Some(m) = g.measured_saving {
            rec.metric(format!("{key}.measured_saving"), m);
        }
        rec.metric(
            format!("{key}.loss_jump"),
            g.loss_after_growth - g.loss_before,
        );
    }
    table.note(format!("profile `{}`: {}", ctx.profile, p.description));
    if synthetic {
        table.note("SYNTHETIC: seeded grammar corpus and tiny models; the paper's rows are for GPT-2 on C4.");
    }
    table.note("paper: Shen et al. 2022 (arXiv 2203.06211); its savings, and what differs from this run, are in the `paper_reference` table.");
    table.note(format!("data: {}", o.source));
    table.note("S_g: growth step chosen by the slope criterion (spec §8.2) on the small model's eval curve; S*: \"oracle\": step of the from-scratch target whose eval loss is closest to the small model's at S_g; \"oracle-free\": S_g / constant_op (spec §8.3, the cheatsheet's 1.776 width / 1.412 depth unless the profile sets others); the grown run restarts at S* (first step S* + 1) with the target's LR heuristic and a re-warm-up. Spec formula: (C_tgt(S*) - C_small(S_g)) / C_tgt(S_opt), S_opt = the target run's last step. Measured: 1 - (compute of the staged run to reach the scratch target's final eval loss) / (compute the scratch target spent to reach it). Compute = 6 N tokens, N = 12 L d². Loss after growth is evaluated before any post-growth step (dropout off).");
    for n in &o.notes {
        table.note(n);
    }
    table.note("Eval losses before and after growth, and the final eval losses (table `eval_loss`), are recomputed by `kiln verify` from the per-block losses under predictions/eval-blocks/ (one file per run and state).");
    for g in o.growths.iter().filter(|g| g.procedure == "oracle-free") {
        table.note(format!(
            "{} oracle-free: optimality slope (> {}) reached at step {}",
            g.operator,
            p.optimality_threshold,
            g.optimality_stop
                .map(|s| s.to_string())
                .unwrap_or_else(|| "— (not within the run)".into())
        ));
    }
    table.note(format!("wall time {:.0} s", o.wall));
    rec.table("table", table);
    // WikiText-style evaluation: mean loss over the non-overlapping eval blocks, perplexity.
    let mut finals = Table::new(
        format!(
            "Final eval loss per run — profile `{}`{}",
            ctx.profile,
            if synthetic { " (SYNTHETIC DATA)" } else { "" }
        ),
        &["run", "step", "eval loss", "perplexity"],
    );
    for s in &o.block_losses {
        finals.push(vec![
            Cell::text(&s.run),
            Cell::num(s.step as f64, 0),
            Cell::sourced(&[s.loss], 4, source(s)),
            // Derived: exp of the eval loss beside it.
            Cell::num(s.loss.exp(), 1),
        ]);
    }
    finals.note(format!(
        "Eval loss: mean next-token cross-entropy (nats) over {} non-overlapping {}-token blocks of the eval text ({} predictions each), each run's final state; perplexity = exp(eval loss). Staged rows end at the same step of the target's schedule as the target from scratch.",
        o.eval_blocks,
        p.seq_len,
        p.seq_len - 1
    ));
    rec.table("eval_loss", finals);
    rec.table("paper_reference", paper_reference(file, p, o));
    rec.setting("growths", &o.growths).setting(
        "curves",
        o.curves
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect::<BTreeMap<_, _>>(),
    );
    for (rel, s) in &files {
        let rows: Vec<Vec<String>> = s
            .blocks
            .iter()
            .enumerate()
            .map(|(i, l)| {
                vec![
                    s.run.clone(),
                    s.step.to_string(),
                    i.to_string(),
                    (p.seq_len - 1).to_string(),
                    // Full precision (shortest round-trip form of the f64).
                    format!("{l}"),
                ]
            })
            .collect();
        let name = rel
            .strip_prefix("predictions/")
            .and_then(|r| r.strip_suffix(".csv"))
            .unwrap_or(rel);
        rec.predictions_csv(name, &EVAL_BLOCKS_HEADER, &rows);
    }
    // Compute on a true log axis (the paper plots loss against compute), curves beside their
    // legend rather than under it.
    use kiln_report::figure::{Axis, Chart, Figure, Point, Series as Curve, Style};
    let series = o
        .curves
        .iter()
        .map(|(name, c)| {
            let pts: Vec<Point> = c
                .iter()
                .filter(|x| x.flops > 0.0)
                .map(|x| Point::new(x.flops, x.loss))
                .collect();
            let style = if pts.len() > 40 {
                Style::Dense
            } else {
                Style::Curve
            };
            Curve::new(name, style, pts)
        })
        .collect();
    let fig = Figure {
        title: "eval loss vs compute".into(),
        x: Axis::log("training FLOPs"),
        y: Axis::linear("eval loss"),
        series,
        references: Vec::new(),
        caption: None,
    };
    rec.plot("loss_vs_compute", Plot::Chart(Chart::Xy(fig)));
    Ok(rec)
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

    /// Issue 35.3: the token cache was keyed by file name and size, so new text of the same
    /// size under the same shard name trained on the old text's tokens.
    #[test]
    fn same_size_new_text_is_tokenised_again() {
        let Some(shared) = kiln_core::paths::shared_data() else {
            kiln_core::paths::skip("../shared/data (the GPT-2 tokenizer)");
            return;
        };
        if !shared.join(GPT2_TOKENIZER).exists() {
            kiln_core::paths::skip("the GPT-2 tokenizer under ../shared/data");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (train, val) = (
            dir.path().join("c4-train.00000.txt"),
            dir.path().join("c4-validation.00000.txt"),
        );
        std::fs::write(&train, "the cat sat on the mat. ".repeat(20)).unwrap();
        std::fs::write(&val, "a dog ran in the park. ".repeat(10)).unwrap();
        let file = kiln_experiment::file::load::<Profile>(NAME).unwrap();
        let mut p = file.profiles["paper"].clone();
        (p.seq_len, p.batch_size, p.eval_blocks) = (16, 2, 2);
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut args = RunArgs::new("paper", out.path(), cache.path());
        args.data_dir = Some(dir.path().to_path_buf());
        let ctx = RunContext::new(NAME, "paper-cache", "test", &args).unwrap();
        let ids = |c: &TokenCorpus| (0..c.len()).map(|i| c.get(i)).collect::<Vec<u16>>();
        let before = ids(&load_data(&p, &ctx).unwrap().train);
        // Same shard name, same size, other text.
        std::fs::write(&train, "the mat sat on the cat. ".repeat(20)).unwrap();
        let tok = gpt2_tokenizer(&ctx.resolver).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let want = ids(&build_token_cache(&[train], &tok, &fresh.path().join("t.bin")).unwrap());
        assert_ne!(before, want);
        let got = ids(&load_data(&p, &ctx).unwrap().train);
        assert_eq!(got, want, "trained on the old text's tokens");
    }

    /// The paper profile's code path (text shards, `[BOS] ... [EOS]` items over the full GPT-2
    /// vocabulary, gradient accumulation, the spec's thresholds, oracle-free restarts) at a toy
    /// size, since the profile itself needs a GPU.
    #[test]
    fn paper_profile_runs_at_toy_size() {
        let Some(shared) = kiln_core::paths::shared_data() else {
            kiln_core::paths::skip("../shared/data (WikiText-2 text and the GPT-2 tokenizer)");
            return;
        };
        let wiki = shared.join("wikitext-2");
        if !wiki.join("valid.txt").exists() || !shared.join(GPT2_TOKENIZER).exists() {
            kiln_core::paths::skip("WikiText-2 or the GPT-2 tokenizer under ../shared/data");
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
        let file = kiln_experiment::file::load::<Profile>(NAME).unwrap();
        let mut p = file.profiles["paper"].clone();
        assert_eq!(
            (p.corpus.as_str(), p.frame_bos_eos, p.oracle_free),
            ("text", true, true)
        );
        (p.seq_len, p.batch_size, p.micro_batch) = (16, 4, 3);
        (p.n_embd, p.n_layer, p.n_head) = (16, 2, 2);
        (p.small_steps, p.target_steps, p.eval_every, p.eval_blocks) = (30, 30, 5, 4);
        (p.warmup, p.rewarmup) = (5, 5);
        let (out, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut args = RunArgs::new("paper", out.path(), cache.path());
        args.data_dir = Some(dir.path().to_path_buf());
        args.seed = 3;
        let ctx = RunContext::new(NAME, "paper-toy", "test", &args).unwrap();
        let o = run_profile(&ctx, &p).unwrap();
        assert_eq!(
            o.growths.len(),
            4,
            "oracle and oracle-free rows for both operators"
        );
        for g in &o.growths {
            let jump = g.loss_after_growth - g.loss_before;
            assert!(jump.abs() < 1e-4, "{g:?}");
        }
        let free: Vec<&Growth> = o
            .growths
            .iter()
            .filter(|g| g.procedure == "oracle-free")
            .collect();
        assert_eq!(
            free[0].s_star as f64,
            (free[0].s_grow as f64 / 1.776).round()
        );
        // Per-block eval losses of every run (3 scratch + 4 grown), each block once.
        assert_eq!(o.block_losses.len(), 7);
        assert!(o
            .block_losses
            .iter()
            .all(|s| s.blocks.len() == o.eval_blocks));
        // Each scored state's blocks average to the loss the run reported for it (the growth
        // states too): what `kiln verify` checks from the files.
        let mean = |s: &Scored| s.blocks.iter().sum::<f64>() / s.blocks.len() as f64;
        for s in o
            .block_losses
            .iter()
            .chain(o.growths.iter().flat_map(|g| [&g.before, &g.after]))
        {
            assert!((mean(s) - s.loss).abs() < 1e-4, "{s:?}");
        }
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
