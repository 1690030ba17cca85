//! `staged-training`: Shen et al. 2022. Trains a small GPT-2-style model, the width-grown and
//! depth-grown targets from scratch, and the staged runs (small model grown with each operator at
//! the point the slope criterion picks, restarted at the matched step S* of the target curve);
//! reports loss-vs-compute curves, the growth points, the loss right before and after growth, and
//! the compute saving in the layout of the spec's section 11.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_data::corpus::{build_token_cache, TokenCorpus};
use kiln_data::TextTokenizer;
use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
use kiln_report::{line_plot, Cell, RunMeta, Series, Table};
use kiln_staged::depth::{grow_depth, Placement};
use kiln_staged::schedule::{lr_heuristic, matching_step, saving, Schedule};
use kiln_staged::slope::decision_point;
use kiln_staged::width::grow_width;
use kiln_staged::TrainState;
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
    source: String,
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
                train,
                eval,
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
            let tok_path = kiln_core::paths::shared_data()
                .map(|d| d.join("tokenizers/gpt2/tokenizer.json"))
                .filter(|p| p.exists())
                .context("the GPT-2 tokenizer.json is needed (../shared/data/tokenizers/gpt2/)")?;
            let tok = TextTokenizer::from_file(&tok_path, 1 << 20)?;
            (
                tok,
                root.join("valid.txt"),
                root.join("test.txt"),
                format!(
                    "WikiText-2 ({}): train on valid.txt, evaluate on test.txt, GPT-2 BPE",
                    root.display()
                ),
            )
        }
        other => {
            bail!("experiments/{NAME}.toml: unknown corpus `{other}` (synthetic or wikitext-2)")
        }
    };
    let stem = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let train = build_token_cache(
        std::slice::from_ref(&train_src),
        &tok,
        &cache_dir.join(format!("{}-{}.bin", p.corpus, stem(&train_src))),
    )?;
    let eval_c = build_token_cache(
        std::slice::from_ref(&eval_src),
        &tok,
        &cache_dir.join(format!("{}-{}.bin", p.corpus, stem(&eval_src))),
    )?;
    let blocks = eval_c.blocks(p.seq_len).min(p.eval_blocks);
    if blocks == 0 || train.blocks(p.seq_len) < p.batch_size {
        bail!("corpus too small for {}-token blocks", p.seq_len);
    }
    Ok(Data {
        eval: (0..blocks).map(|i| eval_c.block(i, p.seq_len)).collect(),
        vocab: tok.vocab_size(),
        train,
        source,
    })
}

fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let (b, t) = (rows.len(), rows[0].len());
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::<1, Int>::from_data(TensorData::new(flat, [b * t]), device).reshape([b, t])
}

fn eval_loss(s: &TrainState, d: &Data, device: &Device) -> Result<f64> {
    let mut total = 0.0;
    let chunks: Vec<&[Vec<i64>]> = d.eval.chunks(16).collect();
    for c in &chunks {
        total += s.eval_loss(ids(c, device), device)? * c.len() as f64;
    }
    Ok(total / d.eval.len() as f64)
}

/// FLOPs per optimizer step: 6 N tokens with N = 12 L d² (spec §8.1).
fn step_flops(s: &TrainState, p: &Profile) -> f64 {
    6.0 * s.non_embedding_params() as f64 * (p.batch_size * p.seq_len) as f64
}

/// Trains `s` until step `until`, evaluating every `eval_every` steps; `flops0` is the compute
/// already spent (for grown runs). Returns the curve and the state at every `keep` step asked.
fn train(
    mut s: TrainState,
    d: &Data,
    p: &Profile,
    until: usize,
    flops0: f64,
    seed: u64,
    label: &str,
    keep: &[usize],
    device: &Device,
) -> Result<(TrainState, Curve, BTreeMap<usize, TrainState>)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n_blocks = d.train.blocks(p.seq_len);
    let mut curve = vec![(s.step, flops0, eval_loss(&s, d, device)?)];
    let mut kept = BTreeMap::new();
    let mut flops = flops0;
    let pb = kiln_core::progress::bar((until.saturating_sub(s.step)) as u64, label);
    while s.step < until {
        if keep.contains(&s.step) {
            kept.insert(s.step, s.clone());
        }
        let rows: Vec<Vec<i64>> = (0..p.batch_size)
            .map(|_| d.train.block(rng.random_range(0..n_blocks), p.seq_len))
            .collect();
        let loss = s.train_step(ids(&rows, device), device)?;
        flops += step_flops(&s, p);
        pb.set_message(format!("loss {loss:.3}"));
        pb.inc(1);
        if s.step.is_multiple_of(p.eval_every.max(1)) {
            curve.push((s.step, flops, eval_loss(&s, d, device)?));
        }
    }
    pb.finish_and_clear();
    if keep.contains(&s.step) {
        kept.insert(s.step, s.clone());
    }
    Ok((s, curve, kept))
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
}

pub fn run(args: &RunArgs) -> Result<PathBuf> {
    let exp: Experiment = settings::load_typed(NAME)?;
    let profile = match super::requested_profile(NAME, &exp.profiles, args)? {
        Some((p, _)) => p,
        None => "smoke".to_string(),
    };
    let p = exp.profiles[&profile].clone();
    println!("staged-training: profile `{profile}`");
    let device = args.device.device()?;
    let started = kiln_core::run::unix_now();
    let t0 = Instant::now();
    let d = load_data(&p, args)?;
    println!(
        "corpus: {} ({} training tokens, {} eval blocks of {})",
        d.source,
        d.train.len(),
        d.eval.len(),
        p.seq_len
    );
    let mut small_cfg = Gpt2Config::new(d.vocab, p.seq_len, p.n_embd, p.n_layer, p.n_head);
    small_cfg.resid_pdrop = p.dropout;
    small_cfg.embd_pdrop = p.dropout;
    small_cfg.attn_pdrop = p.dropout;
    let mut width_cfg = small_cfg.clone();
    width_cfg.n_embd *= 2;
    width_cfg.n_head *= 2;
    let mut depth_cfg = small_cfg.clone();
    depth_cfg.n_layer *= 2;

    // From-scratch runs (same seed, same data order).
    let seed = args.seed;
    let small0 = fresh(small_cfg, &p, seed, &device);
    let (_, small_curve, _) = train(
        small0.clone(),
        &d,
        &p,
        p.small_steps,
        0.0,
        seed,
        "small",
        &[],
        &device,
    )?;
    let (_, width_curve, _) = train(
        fresh(width_cfg, &p, seed, &device),
        &d,
        &p,
        p.target_steps,
        0.0,
        seed,
        "width target",
        &[],
        &device,
    )?;
    let (_, depth_curve, _) = train(
        fresh(depth_cfg, &p, seed, &device),
        &d,
        &p,
        p.target_steps,
        0.0,
        seed,
        "depth target",
        &[],
        &device,
    )?;

    let mut growths = Vec::new();
    let mut curves: Vec<(String, Curve)> = vec![
        ("small (scratch)".into(), small_curve.clone()),
        ("width target (scratch)".into(), width_curve.clone()),
        ("depth target (scratch)".into(), depth_curve.clone()),
    ];
    for (op, threshold, target_curve) in [
        ("width", p.width_threshold, &width_curve),
        ("depth", p.depth_threshold, &depth_curve),
    ] {
        // Growth point: the slope criterion on the small model's (compute, loss) curve.
        let pts: Vec<(f64, f64)> = small_curve.iter().skip(1).map(|c| (c.1, c.2)).collect();
        let (g_idx, decided_by) = match decision_point(&pts, threshold) {
            Some(i) => (i + 1, format!("slope > {threshold}")),
            None => (
                small_curve.len() - 1,
                format!("slope never above {threshold}: grown at the end of the small run"),
            ),
        };
        let (s_g, _, loss_g) = small_curve[g_idx];
        let s_opt = target_curve.last().map(|c| c.0).unwrap_or(p.target_steps);
        let s_star = matching_step(
            &target_curve.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
            loss_g,
        )
        .unwrap_or(0);
        // Replay the small run to S_g (same seed, same batches) to get its full state there.
        let (small_g, _, _) = train(
            small0.clone(),
            &d,
            &p,
            s_g,
            0.0,
            seed,
            "small (replay)",
            &[],
            &device,
        )?;
        let flops_g = small_curve[g_idx].1;
        // The jump check compares the very state that is grown (the replay's dropout draws
        // differ from the first run's, so its loss at S_g is re-measured).
        let loss_g = eval_loss(&small_g, &d, &device)?;
        let mut grown = if op == "width" {
            grow_width(&small_g)?
        } else {
            grow_depth(&small_g, Placement::Alternate)?
        };
        let loss_after = eval_loss(&grown, &d, &device)?;
        let target_n = grown.non_embedding_params() as f64;
        grown.schedule = grown
            .schedule
            .restart(lr_heuristic(target_n), s_star, p.rewarmup);
        grown.step = s_star;
        let (_, mut gcurve, _) = train(
            grown,
            &d,
            &p,
            p.target_steps,
            flops_g,
            seed + 7,
            &format!("{op}-grown"),
            &[],
            &device,
        )?;
        gcurve[0].2 = loss_after;
        let first_post = gcurve.get(1).map(|c| c.2).unwrap_or(f64::NAN);
        // Measured saving: compute to reach the scratch target's final loss.
        let goal = target_curve.last().map(|c| c.2).unwrap_or(f64::NAN);
        let scratch_c = target_curve.iter().find(|c| c.2 <= goal).map(|c| c.1);
        let grown_c = gcurve.iter().find(|c| c.2 <= goal).map(|c| c.1);
        let measured = scratch_c.zip(grown_c).map(|(s, g)| 1.0 - g / s);
        let small_n = small_g.non_embedding_params() as f64;
        let g = Growth {
            operator: op.into(),
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
            decided_by,
        };
        println!(
            "{op}: grown at step {s_g} (loss {loss_g:.4} -> {loss_after:.4} right after growth), S* = {s_star}, measured saving {}",
            measured.map(|m| format!("{:.1}%", 100.0 * m)).unwrap_or_else(|| "not reached".into())
        );
        curves.push((format!("{op}-grown (staged)"), gcurve));
        growths.push(g);
    }
    let wall = t0.elapsed().as_secs_f64();
    write(
        &exp, &profile, &p, args, &d, &curves, &growths, wall, started, &device,
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
        metrics.insert(format!("{}.spec_saving", g.operator), g.spec_saving);
        if let Some(m) = g.measured_saving {
            metrics.insert(format!("{}.measured_saving", g.operator), m);
        }
        metrics.insert(
            format!("{}.loss_jump", g.operator),
            g.loss_after_growth - g.loss_before,
        );
    }
    table.note(format!("profile `{profile}`: {}", p.description));
    if synthetic {
        table.note("SYNTHETIC: seeded grammar corpus and tiny models; the paper's rows are for GPT-2 on C4.");
    }
    table.note(format!("paper: {}", exp.reference));
    table.note(format!("data: {}", d.source));
    table.note("S_g: growth step chosen by the slope criterion (spec §8.2) on the small model's eval curve; S*: step of the from-scratch target whose eval loss is closest to the small model's at S_g (oracle match); the grown run restarts at S* with the target's LR heuristic and a re-warm-up. Spec formula: (C_tgt(S*) - C_small(S_g)) / C_tgt(S_opt), S_opt = the target run's last step. Measured: 1 - (compute of the staged run to reach the scratch target's final eval loss) / (compute the scratch target spent to reach it). Compute = 6 N tokens, N = 12 L d². Loss after growth is evaluated before any post-growth step (dropout off).");
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
