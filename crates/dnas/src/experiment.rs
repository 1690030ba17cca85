//! `dnas-dlrm`: Krishna et al. 2021 on click logs. Per dataset: the DLRM baseline; for each
//! search space a supernet searched with the alternating Gumbel-softmax procedure, the sampled
//! architectures retrained from scratch, and as the control the same number of random
//! architectures of equal cost (the closest in cost among uniform draws), retrained the same
//! way. Every retraining runs over several seeds; the table reports test log loss, AUC and
//! calibration (mean and standard deviation), parameters, FLOPs per example and search and
//! training times. No row runs the paper's setting (full Criteo Kaggle with the paper's models
//! and schedule), so the paper's numbers are not beside any row: they are in a separate
//! `paper_reference` table that says what differs in the run. Plots: test log loss vs FLOPs and
//! vs parameters, and the architecture probabilities during search. Per-example test
//! predictions of every row and every retraining seed are written as CSV (`row,p_click,label`,
//! `predictions/<dataset>/<row>-s<seed>.csv`, p_click at full float32 precision), and every
//! metric cell cites its files (`ctr/log_loss`, `ctr/auc`, `ctr/calibration`) for `kiln verify`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use kiln_core::progress;
use kiln_data::ctr::{
    preprocess, random_split, read_avazu, read_criteo, weights_arch_split, CtrCache, CtrData,
    CtrFormat, ReadOptions,
};
use kiln_experiment::predictions::is_constant;
use kiln_experiment::{Bench, ExperimentFile, Flags, Paper, Plot, RunArgs, RunContext, RunRecord};
use kiln_models::dlrm::{CtrRows, DlrmConfig, Interaction};
use kiln_report::{Cell, Series, Source, Table};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cost::{CostLoss, OpCosts};
use crate::retrain::{train_dlrm, Scores, TrainConfig, Trained};
use crate::search::{random_at_cost, search, SearchConfig, SearchOutcome};
use crate::space::{EmbCardSpaceConfig, EmbDimSpaceConfig, MlpSpaceConfig, Space, SuperNet};
use crate::synthetic::planted_clicks;
use crate::{EmbCardSearch, EmbDimSearch, MlpSearch};

pub const NAME: &str = "dnas-dlrm";

pub const CRITEO_10K: &str = "criteo/dac10k/train.txt";
pub const AVAZU_10K: &str = "avazu/train-10k.csv";

pub struct DnasDlrm;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchSettings {
    pub epochs: f64,
    pub warmup: f64,
    pub alternation: f64,
    pub tau0: f64,
    pub tau_decay: f64,
    pub weights_lr: f64,
    pub lr_base: f64,
    pub batch_size: usize,
    pub clip: f64,
    /// Divisor of the linear cost term (100 in the DLRM trainer).
    pub cost_divisor: f64,
    /// "arch epochs done:count".
    pub samples: String,
    /// Share of the training rows in the weights split (the rest trains θ).
    pub weights_fraction: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlpSpaceSettings {
    pub widths: Vec<usize>,
    pub layers: usize,
    pub lambda: f64,
    pub arch_lr: f64,
    #[serde(default = "yes")]
    pub exact_cost: bool,
    /// The official supernet head (ReLU + clamp) instead of kiln's sigmoid; a labelled ablation.
    #[serde(default)]
    pub official_relu_head: bool,
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DimSpaceSettings {
    pub dims: Vec<usize>,
    pub lambda: f64,
    pub arch_lr: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardSpaceSettings {
    pub fractions: Vec<f64>,
    pub lambda: f64,
    pub arch_lr: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub description: String,
    /// `synthetic`, `criteo-10k`, `avazu-10k`, or `criteo-kaggle` (the full train.txt from
    /// --data-dir, DLRM's day split).
    pub datasets: Vec<String>,
    #[serde(default)]
    pub synthetic_rows: usize,
    /// Train / val / test sizes of a seeded random split (ignored for `criteo-kaggle`).
    #[serde(default)]
    pub split: Vec<usize>,
    /// Hash every categorical id modulo this at parse time (0: no hashing).
    #[serde(default)]
    pub hash: u32,
    /// Count and skip malformed rows instead of stopping at the first.
    #[serde(default)]
    pub lenient: bool,
    /// Embedding width of the baseline and the MLP and cardinality searches.
    pub d: usize,
    pub bottom_hidden: Vec<usize>,
    pub top_hidden: Vec<usize>,
    pub interaction: Interaction,
    pub spaces: Vec<Space>,
    pub mlp: MlpSpaceSettings,
    pub emb_dim: DimSpaceSettings,
    pub emb_card: CardSpaceSettings,
    pub search: SearchSettings,
    pub retrain: TrainConfig,
    /// Retraining seeds (each architecture is retrained once per seed).
    pub seeds: Vec<u64>,
    /// Uniform draws the equal-cost random control picks from.
    pub random_draws: usize,
}

impl Paper for DnasDlrm {
    type Profile = Profile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn flags(&self, p: &Profile) -> Flags {
        Flags {
            tasks: Some(p.datasets.clone()),
            lenient: true,
            ..Flags::default()
        }
    }

    fn inputs(&self, _: &str, p: &Profile, args: &RunArgs) -> Result<String, String> {
        let r = kiln_experiment::Resolver::from_args(args);
        let mut found = Vec::new();
        for d in &args.tasks_or(&p.datasets) {
            match d.as_str() {
                "synthetic" => found.push("synthetic click logs".to_string()),
                "criteo-10k" | "avazu-10k" => {
                    let rel = if d == "criteo-10k" { CRITEO_10K } else { AVAZU_10K };
                    match r.find_file(rel) {
                        Some(f) => found.push(format!("{d} at {}", f.path.display())),
                        None => {
                            return Err(format!(
                                "no {rel} under the data roots; pass --data-dir (the folder holding criteo/ and avazu/)"
                            ))
                        }
                    }
                }
                "criteo-kaggle" => match &args.data_dir {
                    Some(dir) if dir.join("train.txt").exists() => {
                        found.push(format!("Criteo Kaggle train.txt in {}", dir.display()))
                    }
                    _ => {
                        return Err(
                            "criteo-kaggle needs --data-dir with the Kaggle DAC train.txt (45,840,617 lines)"
                                .into(),
                        )
                    }
                },
                other => return Err(format!("unknown dataset `{other}`")),
            }
        }
        Ok(found.join("; "))
    }

    fn validate(&self, p: &Profile) -> Result<()> {
        let f = format!("experiments/{NAME}.toml");
        if p.seeds.is_empty() {
            bail!("{f}: `seeds` is empty; give at least one retraining seed");
        }
        if p.mlp.layers < 2 || p.mlp.widths.is_empty() {
            bail!("{f}: the MLP space needs at least 2 layers and one width");
        }
        if p.emb_dim.dims.is_empty() || p.emb_dim.dims.contains(&0) {
            bail!("{f}: emb_dim.dims must be non-empty and positive");
        }
        if p.emb_card
            .fractions
            .iter()
            .any(|x| !(*x > 0.0 && *x <= 1.0))
        {
            bail!("{f}: emb_card.fractions must lie in (0, 1]");
        }
        if !(0.0..1.0).contains(&p.search.weights_fraction) || p.search.weights_fraction == 0.0 {
            bail!("{f}: search.weights_fraction must lie in (0, 1)");
        }
        crate::plan::parse_samples(&p.search.samples)
            .map_err(|e| anyhow::anyhow!("{f}: search.samples: {e}"))?;
        Ok(())
    }

    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<Profile>,
        p: &Profile,
    ) -> Result<RunRecord> {
        let mut outcomes = Vec::new();
        let datasets = ctx.args.tasks_or(&p.datasets);
        if let Some(bad) = datasets.iter().find(|d| !p.datasets.contains(d)) {
            bail!(
                "--tasks {bad}: not a dataset of this profile; choose from {:?}",
                p.datasets
            );
        }
        for name in &datasets {
            let data = load(name, p, ctx)?;
            outcomes.push(run_dataset(name, &data, p, ctx)?);
        }
        record(ctx, file, p, &outcomes)
    }

    fn benches(&self) -> &'static [Bench] {
        &[("dlrm", crate::bench::dlrm_train)]
    }
}

/// A dataset's splits, each materialised once (the full Kaggle file is dropped after
/// splitting, so the paper profile holds each row about twice, not five times).
pub struct Prepared {
    pub source: String,
    pub stats: String,
    pub n_dense: usize,
    pub counts: Vec<usize>,
    pub train: CtrData,
    pub val: CtrData,
    pub test: CtrData,
    /// Source-file row of each test row (for the predictions CSV).
    pub test_rows: Vec<usize>,
    /// The training rows split for the search: weights, architecture.
    pub weights: CtrData,
    pub arch: CtrData,
}

fn load(name: &str, p: &Profile, ctx: &RunContext) -> Result<Prepared> {
    let opts = ReadOptions {
        lenient: p.lenient || ctx.args.lenient,
        ..if p.hash > 0 {
            ReadOptions::modulo(p.hash)
        } else {
            ReadOptions::default()
        }
    };
    let (data, source) = match name {
        "synthetic" => (
            planted_clicks(p.synthetic_rows, ctx.seed),
            format!(
                "synthetic click logs, {} rows (seed {})",
                p.synthetic_rows, ctx.seed
            ),
        ),
        "criteo-10k" | "avazu-10k" => {
            let rel = if name == "criteo-10k" {
                CRITEO_10K
            } else {
                AVAZU_10K
            };
            let f = ctx.resolver.file(rel)?;
            let (d, report) = if name == "criteo-10k" {
                read_criteo(&f.path, &opts)
            } else {
                read_avazu(&f.path, &opts)
            }
            .with_context(|| format!("reading {}", f.path.display()))?;
            if report.skipped > 0 {
                println!(
                    "{}: skipped {} malformed rows (lenient): first {:?}",
                    f.path.display(),
                    report.skipped,
                    report.first_bad
                );
            }
            (d, f.path.display().to_string())
        }
        "criteo-kaggle" => {
            let dir = ctx
                .args
                .data_dir
                .clone()
                .context("criteo-kaggle needs --data-dir")?;
            let src = dir.join("train.txt");
            let cache = ctx.cache.join(format!("criteo-kaggle-h{}.ctr", p.hash));
            let bar = progress::bar(100, "preprocess");
            let mut c: CtrCache =
                preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |a, b| {
                    bar.set_position((100 * a / b.max(1)).min(100));
                })?;
            bar.finish_and_clear();
            let n = c.len();
            (c.read_rows(0, n)?, src.display().to_string())
        }
        other => bail!("unknown dataset `{other}` in experiments/{NAME}.toml"),
    };
    println!("{name}: {}", data.stats());
    let n = data.len();
    let (train, val, test) = if name == "criteo-kaggle" {
        if n < 14 {
            bail!(
                "{source}: {n} rows, but DLRM's day split needs at least 14 (7 days, the last \
                 halved into test and val; the Kaggle train.txt has 45,840,617): point \
                 --data-dir at the full file"
            );
        }
        // DLRM's split: days 0-5 train ("total" randomisation), the first half of day 6 test.
        let s = kiln_data::ctr::dlrm_split(n);
        let mut train: Vec<usize> = s.train.collect();
        use rand::seq::SliceRandom;
        train.shuffle(&mut ChaCha8Rng::seed_from_u64(ctx.seed));
        (train, s.val.collect(), s.test.collect())
    } else {
        let source = if name == "synthetic" {
            format!("{source} (`synthetic_rows` in experiments/{NAME}.toml)")
        } else {
            source.clone()
        };
        let sizes = split_sizes(&p.split, n, &source)?;
        let mut parts = random_split(n, &sizes, ctx.seed)?;
        let test = parts.pop().unwrap_or_default();
        let val = parts.pop().unwrap_or_default();
        let mut train = parts.pop().unwrap_or_default();
        // DLRM's "total" randomisation: the training rows are shuffled once, then read in
        // that order every epoch (val and test keep file order).
        use rand::seq::SliceRandom;
        train.shuffle(&mut ChaCha8Rng::seed_from_u64(ctx.seed ^ 0x7074));
        (train, val, test)
    };
    let (weights, arch) = weights_arch_split(&train, p.search.weights_fraction, ctx.seed);
    Ok(Prepared {
        source,
        stats: data.stats(),
        n_dense: data.n_dense,
        counts: data.counts.clone(),
        train: data.subset(&train),
        val: data.subset(&val),
        weights: data.subset(&weights),
        arch: data.subset(&arch),
        test: data.subset(&test),
        test_rows: test,
    })
}

/// Train / val / test sizes of the random split of a click log of `n` rows (`source` names it):
/// the profile's `split`, the test part cut to what is left when the file is shorter (Avazu's
/// 9,999 rows). A `split` that is not three positive sizes is the experiment file's fault; a
/// log too short for train and val plus one test row is the data file's, and the error names
/// it with how many rows it has and needs.
fn split_sizes(split: &[usize], n: usize, source: &str) -> Result<[usize; 3]> {
    let &[train, val, test] = split else {
        bail!("experiments/{NAME}.toml: split {split:?} must be three sizes (train, val, test)");
    };
    if train == 0 || val == 0 || test == 0 {
        bail!("experiments/{NAME}.toml: split {split:?}: every part needs at least one row");
    }
    let need = train.saturating_add(val).saturating_add(1);
    if n < need {
        bail!(
            "{source}: {n} rows, but the split {split:?} needs at least {need} ({train} train + \
             {val} val + at least 1 test); use a complete click log, or shrink `split` in \
             experiments/{NAME}.toml"
        );
    }
    Ok([train, val, test.min(n - train - val)])
}

fn rows(d: &CtrData) -> CtrRows<'_> {
    CtrRows {
        dense: &d.dense,
        cats: &d.cats,
        labels: &d.labels,
        n_dense: d.n_dense,
        n_cat: d.n_cat,
    }
}

/// One architecture's retrainings.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub dataset: String,
    /// baseline | dnas | random
    pub kind: String,
    pub space: String,
    pub label: String,
    pub config: DlrmConfig,
    pub params: f64,
    pub flops: f64,
    /// The space's cost of this architecture (FLOPs or embedding parameters).
    pub space_cost: Option<f64>,
    pub search_seconds: Option<f64>,
    pub train_seconds: f64,
    pub test: Vec<Scores>,
    pub val: Vec<Scores>,
    /// Per retraining seed (the profile's `seeds`, in order): p(click) for every test row.
    #[serde(skip)]
    pub test_p: Vec<Vec<f32>>,
}

pub struct DatasetOutcome {
    pub name: String,
    pub source: String,
    pub rows: Vec<Row>,
    pub test_rows: Vec<usize>,
    pub test_labels: Vec<f32>,
    /// Per plotted choice: its title, the probability trace and the option names.
    pub probs: Vec<(String, ProbTrace, Vec<String>)>,
    pub stats: String,
}

fn summary(c: &DlrmConfig) -> String {
    let j = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("-")
    };
    let mut s = format!("bot {} / top {}", j(&c.bottom), j(&c.top_sizes()));
    let d = c.d();
    if c.table_dims.iter().any(|&w| w != d) {
        let mut hist: BTreeMap<usize, usize> = BTreeMap::new();
        for &w in &c.table_dims {
            *hist.entry(w).or_default() += 1;
        }
        let h: Vec<String> = hist.iter().map(|(w, n)| format!("{n}×{w}")).collect();
        s.push_str(&format!(" / dims {}", h.join(",")));
    }
    s.push_str(&format!(" / rows {}", c.table_rows.iter().sum::<usize>()));
    s
}

fn retrain_all(
    cfg: &DlrmConfig,
    prep: &Prepared,
    p: &Profile,
    device: &Device,
    what: &str,
) -> Result<(Vec<Trained>, f64)> {
    let (train, val, test) = (&prep.train, &prep.val, &prep.test);
    let mut out = Vec::new();
    let mut secs = 0.0;
    for &seed in &p.seeds {
        let tc = TrainConfig {
            seed,
            ..p.retrain.clone()
        };
        let per_epoch = train.len() / tc.batch_size.max(1);
        let bar = progress::bar((per_epoch * tc.epochs) as u64, &format!("{what} s{seed}"));
        let t = train_dlrm(
            cfg,
            &rows(train),
            &rows(val),
            &rows(test),
            &tc,
            device,
            |i, _, l| {
                bar.set_position(i as u64);
                bar.set_message(format!("loss {l:.4}"));
            },
        )?;
        bar.finish_and_clear();
        secs += t.seconds;
        out.push(t);
    }
    Ok((out, secs))
}

#[allow(clippy::too_many_arguments)]
fn push_row(
    rows_out: &mut Vec<Row>,
    dataset: &str,
    kind: &str,
    space: &str,
    label: String,
    cfg: &DlrmConfig,
    space_cost: Option<f64>,
    search_seconds: Option<f64>,
    prep: &Prepared,
    p: &Profile,
    device: &Device,
) -> Result<()> {
    let (runs, secs) = retrain_all(cfg, prep, p, device, &label)?;
    let row = Row {
        dataset: dataset.into(),
        kind: kind.into(),
        space: space.into(),
        config: cfg.clone(),
        params: cfg.params(),
        flops: cfg.flops(),
        space_cost,
        search_seconds,
        train_seconds: secs,
        test: runs.iter().map(|t| t.test).collect(),
        val: runs.iter().map(|t| t.val).collect(),
        test_p: runs.into_iter().map(|t| t.test_p).collect(),
        label,
    };
    let (m, s) = kiln_report::mean_sd(&row.test.iter().map(|x| x.log_loss).collect::<Vec<_>>());
    println!(
        "  {:<10} {:<8} {:<60} test log loss {m:.4} ± {s:.4}",
        row.kind,
        row.space,
        summary(cfg)
    );
    rows_out.push(row);
    Ok(())
}

fn search_config(p: &Profile, arch_lr: f64, lambda: f64, seed: u64) -> SearchConfig {
    let s = &p.search;
    SearchConfig {
        epochs: s.epochs,
        warmup: s.warmup,
        alternation: s.alternation,
        tau0: s.tau0,
        tau_decay: s.tau_decay,
        weights_lr: s.weights_lr,
        arch_lr,
        lr_base: s.lr_base,
        batch_size: s.batch_size,
        clip: s.clip,
        cost: CostLoss::Linear {
            lambda,
            multiplier: 1.0,
            divisor: s.cost_divisor,
        },
        samples: s.samples.clone(),
        seed,
    }
}

fn run_search<N: SuperNet>(
    net: N,
    prep: &Prepared,
    cfg: &SearchConfig,
    device: &Device,
    what: &str,
) -> Result<SearchOutcome<N>> {
    let (w, a) = (&prep.weights, &prep.arch);
    let bar = progress::bar(1, &format!("search {what}"));
    let out = search(net, &rows(w), &rows(a), cfg, device, |s, i, n| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
        bar.set_message(format!("{:?} τ {:.3} loss {:.4}", s.stage, s.tau, s.loss));
    })?;
    bar.finish_and_clear();
    Ok(out)
}

/// The derived architectures and their equal-cost random controls, retrained.
#[allow(clippy::too_many_arguments)]
fn space_rows<N: SuperNet>(
    out: &SearchOutcome<N>,
    space: Space,
    prep: &Prepared,
    p: &Profile,
    dataset: &str,
    rows_out: &mut Vec<Row>,
    device: &Device,
    seed: u64,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0FFEE);
    for s in &out.samples {
        push_row(
            rows_out,
            dataset,
            "dnas",
            space.name(),
            format!("DNAS {} #{}", space.name(), s.index),
            &s.config,
            Some(s.cost),
            Some(out.seconds),
            prep,
            p,
            device,
        )?;
        let (choice, cost) = random_at_cost(&out.net, s.cost, p.random_draws, &mut rng);
        push_row(
            rows_out,
            dataset,
            "random",
            space.name(),
            format!("random {} #{}", space.name(), s.index),
            &out.net.derive(&choice),
            Some(cost),
            None,
            prep,
            p,
            device,
        )?;
    }
    Ok(())
}

fn run_dataset(
    name: &str,
    prep: &Prepared,
    p: &Profile,
    ctx: &RunContext,
) -> Result<DatasetOutcome> {
    let device = &ctx.device;
    let d = prep;
    println!(
        "{name}: train {} (search: weights {}, architecture {}), val {}, test {}",
        prep.train.len(),
        prep.weights.len(),
        prep.arch.len(),
        prep.val.len(),
        prep.test.len()
    );
    let mut out_rows = Vec::new();
    let mut bottom = vec![d.n_dense];
    bottom.extend(&p.bottom_hidden);
    bottom.push(p.d);
    let base = DlrmConfig::uniform(
        bottom,
        p.top_hidden.clone(),
        d.counts.clone(),
        p.interaction,
    );
    push_row(
        &mut out_rows,
        name,
        "baseline",
        "-",
        "DLRM baseline".into(),
        &base,
        None,
        None,
        prep,
        p,
        device,
    )?;
    let mut probs = Vec::new();
    for (k, &space) in p.spaces.iter().enumerate() {
        let seed = ctx.seed.wrapping_add(1000 * (k as u64 + 1));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match space {
            Space::Mlp => {
                let c = MlpSpaceConfig {
                    n_dense: d.n_dense,
                    d: p.d,
                    table_rows: d.counts.clone(),
                    widths: p.mlp.widths.clone(),
                    layers: p.mlp.layers,
                    interaction: p.interaction,
                    exact_cost: p.mlp.exact_cost,
                    official_relu_head: p.mlp.official_relu_head,
                };
                let net = MlpSearch::new(&c, OpCosts::flops(), &mut rng, device);
                let cfg = search_config(p, p.mlp.arch_lr, p.mlp.lambda, seed);
                let out = run_search(net, prep, &cfg, device, "mlp")?;
                // The two output nodes: which width feeds each MLP's last layer.
                let nb = out.net.bottom.choice_sizes().len();
                let nt = out.net.top.choice_sizes().len();
                let pick = vec![nb - 1, nb + nt - 1];
                let names: Vec<String> = p.mlp.widths.iter().map(|w| w.to_string()).collect();
                probs.push((
                    "mlp: width into the last layer (bottom, top)".to_string(),
                    select_probs(&out.probs, &pick),
                    names,
                ));
                space_rows(&out, space, prep, p, name, &mut out_rows, device, seed)?;
            }
            Space::EmbDim => {
                let mut bottom = vec![d.n_dense];
                bottom.extend(&p.bottom_hidden);
                bottom.push(p.emb_dim.dims.iter().copied().max().unwrap_or(p.d));
                let c = EmbDimSpaceConfig {
                    bottom,
                    top_hidden: p.top_hidden.clone(),
                    table_rows: d.counts.clone(),
                    dims: p.emb_dim.dims.clone(),
                    interaction: p.interaction,
                };
                let net = EmbDimSearch::new(&c, &mut rng, device);
                let cfg = search_config(p, p.emb_dim.arch_lr, p.emb_dim.lambda, seed);
                let out = run_search(net, prep, &cfg, device, "emb-dim")?;
                let names = p.emb_dim.dims.iter().map(|w| format!("d={w}")).collect();
                probs.push((
                    "emb-dim: mean over tables".into(),
                    mean_probs(&out.probs),
                    names,
                ));
                space_rows(&out, space, prep, p, name, &mut out_rows, device, seed)?;
            }
            Space::EmbCard => {
                let mut bottom = vec![d.n_dense];
                bottom.extend(&p.bottom_hidden);
                bottom.push(p.d);
                let c = EmbCardSpaceConfig {
                    bottom,
                    top_hidden: p.top_hidden.clone(),
                    counts: d.counts.clone(),
                    fractions: p.emb_card.fractions.clone(),
                    interaction: p.interaction,
                };
                let net = EmbCardSearch::new(&c, &mut rng, device);
                let cfg = search_config(p, p.emb_card.arch_lr, p.emb_card.lambda, seed);
                let out = run_search(net, prep, &cfg, device, "emb-card")?;
                let names = p
                    .emb_card
                    .fractions
                    .iter()
                    .map(|f| format!("{f}×count"))
                    .collect();
                probs.push((
                    "emb-card: mean over tables".into(),
                    mean_probs(&out.probs),
                    names,
                ));
                space_rows(&out, space, prep, p, name, &mut out_rows, device, seed)?;
            }
        }
    }
    Ok(DatasetOutcome {
        name: name.into(),
        source: prep.source.clone(),
        rows: out_rows,
        test_rows: prep.test_rows.clone(),
        test_labels: prep.test.labels.clone(),
        probs,
        stats: d.stats.clone(),
    })
}

/// `(architecture epochs, probabilities per choice vector)` over a search.
pub type ProbTrace = Vec<(f64, Vec<Vec<f64>>)>;

fn select_probs(trace: &ProbTrace, pick: &[usize]) -> ProbTrace {
    trace
        .iter()
        .map(|(e, p)| (*e, pick.iter().map(|&i| p[i].clone()).collect()))
        .collect()
}

/// The per-option probability averaged over choice vectors (all of one size).
fn mean_probs(trace: &ProbTrace) -> ProbTrace {
    trace
        .iter()
        .map(|(e, p)| {
            let n = p.first().map_or(0, Vec::len);
            let m: Vec<f64> = (0..n)
                .map(|k| p.iter().map(|v| v[k]).sum::<f64>() / p.len() as f64)
                .collect();
            (*e, vec![m])
        })
        .collect()
}

/// A prediction file's name, `<dataset>/<row>-s<seed>` (without `.csv`, which
/// [`RunRecord::predictions_csv`] adds).
fn prediction_name(dataset: &str, label: &str, seed: u64) -> String {
    format!(
        "{}/{}-s{seed}",
        kiln_report::slug(dataset),
        kiln_report::slug(label)
    )
}

/// p(click) as the shortest decimal that reads back as the same float32: full precision, so a
/// log loss recomputed from the file is the one the table reports.
fn p_click(q: f32) -> String {
    format!("{q}")
}

/// The seeds (of `seeds`, in order with `preds`) whose model predicts one constant p(click) on
/// every test row: collapsed to a constant predictor, to be flagged in the table.
fn constant_seeds(seeds: &[u64], preds: &[Vec<f32>]) -> Vec<u64> {
    seeds
        .iter()
        .zip(preds)
        .filter(|(_, q)| is_constant(q))
        .map(|(s, _)| *s)
        .collect()
}

/// The paper's numbers (full Criteo Kaggle), which no row of `table` runs the setting of, with
/// what differs in this run per dataset.
fn paper_reference(
    file: &ExperimentFile<Profile>,
    p: &Profile,
    outcomes: &[DatasetOutcome],
) -> Table {
    let mut t = Table::new(
        "Paper reference: test log loss on full Criteo Kaggle (not this run's setting; not a column of `table`)",
        &["paper model", "paper test log loss", "paper setting", "source"],
    );
    let setting = "full Criteo Kaggle train.txt (45,840,617 rows), DLRM's day split (days 0-5 train, half of day 6 test)";
    if let Some(v) = file.paper.get("dlrm_test_logloss") {
        t.push(vec![
            Cell::text("DLRM (reference implementation's Kaggle script)"),
            Cell::num(v, 3),
            Cell::text(format!("{setting}; 1 epoch")),
            Cell::text("the reference DLRM repository's README plot (about 0.452)"),
        ]);
    }
    if let Some(v) = file.paper.get("dnas_test_logloss") {
        t.push(vec![
            Cell::text("DNAS (searched architecture)"),
            Cell::num(v, 4),
            Cell::text(setting),
            Cell::text("as quoted by NASRec (Zhang et al. 2023, Table 1); not verified against the DNAS paper, whose tables were unavailable"),
        ]);
    }
    for o in outcomes {
        t.note(format!(
            "What differs in this run, {}: {}",
            o.name,
            differs_from_paper(&o.name, p)
        ));
    }
    t
}

/// How a dataset of this run differs from the paper's setting (data, split, model, schedule).
fn differs_from_paper(dataset: &str, p: &Profile) -> String {
    let r = &p.retrain;
    let model = format!(
        "DLRM hidden widths bottom {:?} / top {:?}, embedding width {}{}; retrained {} epoch(s), SGD lr {}·{}^epoch, batch {}, over {} seed(s); search {} epochs",
        p.bottom_hidden,
        p.top_hidden,
        p.d,
        if p.hash > 0 {
            format!(", ids hashed mod {}", p.hash)
        } else {
            String::new()
        },
        r.epochs,
        r.lr,
        r.lr_base,
        r.batch_size,
        p.seeds.len(),
        p.search.epochs
    );
    match dataset {
        "criteo-kaggle" => format!(
            "data and split are the paper's; the model and schedule are this profile's ({model}), not the reference Kaggle script's DLRM, and the DNAS number is second-hand: compare with care"
        ),
        "criteo-10k" => format!(
            "data: the first 10,000 rows of Criteo Kaggle's train.txt (of 45,840,617), split {:?} (train/val/test) at random by the run seed, not DLRM's day split; model and schedule scaled down ({model}): not comparable with the paper's numbers",
            p.split
        ),
        "avazu-10k" => "Avazu (first 9,999 rows), a different dataset: there is no Avazu number in this reference".into(),
        "synthetic" => "synthetic click logs: nothing here is comparable with the paper".into(),
        other => format!("{other}: not the paper's data ({model})"),
    }
}

fn record(
    ctx: &RunContext,
    file: &ExperimentFile<Profile>,
    p: &Profile,
    outcomes: &[DatasetOutcome],
) -> Result<RunRecord> {
    let synthetic = outcomes.iter().all(|o| o.name == "synthetic");
    let mut rec = RunRecord::new(synthetic);
    let mut t = ctx.main_table(
        &file.title,
        synthetic,
        &[
            "dataset",
            "model",
            "architecture",
            "test log loss",
            "test AUC",
            "calibration",
            "params",
            "FLOPs/example",
            "search s",
            "train s",
        ],
    );
    let mut collapsed = Vec::new();
    for o in outcomes {
        for r in &o.rows {
            let ll: Vec<f64> = r.test.iter().map(|s| s.log_loss).collect();
            let auc: Vec<f64> = r.test.iter().map(|s| s.auc).collect();
            let cal: Vec<f64> = r.test.iter().map(|s| s.calibration).collect();
            // Per-example test predictions of every retraining seed (row index in the source
            // file); `files[i]` holds seed `p.seeds[i]`, which gave `ll[i]`, `auc[i]`, `cal[i]`.
            let mut files = Vec::new();
            for (seed, pred) in p.seeds.iter().zip(&r.test_p) {
                let name = prediction_name(&o.name, &r.label, *seed);
                let csv: Vec<Vec<String>> = o
                    .test_rows
                    .iter()
                    .zip(pred)
                    .zip(&o.test_labels)
                    .map(|((i, q), y)| vec![i.to_string(), p_click(*q), format!("{y:.0}")])
                    .collect();
                rec.predictions_csv(&name, &["row", "p_click", "label"], &csv);
                files.push(format!("predictions/{name}.csv"));
            }
            let src = |m: &str| Source::new(format!("ctr/{m}"), files.clone(), 1.0);
            // A seed whose model collapsed to one constant p(click) is flagged, not hidden.
            let constant = constant_seeds(&p.seeds, &r.test_p);
            let model = if constant.is_empty() {
                r.label.clone()
            } else {
                collapsed.push(format!(
                    "{} `{}`: seed(s) {constant:?} predict one constant p(click) on every test row (collapsed to a constant predictor); the row's mean ± sd includes them",
                    o.name, r.label
                ));
                format!("{} (constant seed {constant:?})", r.label)
            };
            t.push(vec![
                Cell::text(&o.name),
                Cell::text(model),
                Cell::text(summary(&r.config)),
                Cell::sourced(&ll, 4, src("log_loss")),
                Cell::sourced(&auc, 4, src("auc")),
                Cell::sourced(&cal, 3, src("calibration")),
                Cell::text(format!("{:.3e}", r.params)),
                Cell::text(format!("{:.3e}", r.flops)),
                Cell::opt(r.search_seconds, 1),
                Cell::num(r.train_seconds, 1),
            ]);
            let key = format!("{}.{}", o.name, kiln_report::slug(&r.label));
            rec.metric(format!("{key}.test_log_loss"), kiln_report::mean_sd(&ll).0);
            rec.metric(format!("{key}.test_auc"), kiln_report::mean_sd(&auc).0);
            rec.metric(format!("{key}.params"), r.params);
            rec.metric(format!("{key}.flops"), r.flops);
        }
    }
    t.note(format!(
        "Test metrics are mean ± sd over {} retraining seed(s) {:?}; each architecture is retrained from scratch (supernet weights not inherited). \
`random` rows: the uniform architecture closest in cost to the DNAS sample of the same number, among {} draws (the equal-cost control).",
        p.seeds.len(),
        p.seeds,
        p.random_draws
    ));
    t.note("Every test log loss, AUC and calibration (Σp/Σy) cell is recomputed by `kiln verify` from `predictions/<dataset>/<row>-s<seed>.csv` (`row,p_click,label`), one file per retraining seed.");
    t.note("FLOPs/example: 2·in·out per FC layer plus the dot interaction's products; params: MLP weights and biases plus every table's rows × width. train s: summed over the seeds.");
    t.note("No row runs the paper's setting; the paper's numbers and what differs from them are in the `paper_reference` table.");
    for c in collapsed {
        t.note(c);
    }
    for o in outcomes {
        t.note(format!(
            "{}: {} — {}",
            o.name,
            o.source,
            o.stats.lines().next().unwrap_or("")
        ));
    }
    if synthetic {
        t.note("SYNTHETIC: planted pairwise interactions between 3 feature pairs, the other features noise; checks the machinery, says nothing about the paper's claim.");
    }
    rec.table("table", t);
    rec.table("paper_reference", paper_reference(file, p, outcomes));
    for o in outcomes {
        // Each row is a separate architecture, not a function of its cost: markers with seed
        // error bars on a log cost axis, and the Pareto front of the searched architectures.
        for (axis, f) in [("FLOPs per example", 0usize), ("parameters", 1)] {
            use kiln_report::figure::{Axis, Better, Chart, Figure, Point, Series, Style};
            let mut series = Vec::new();
            for (kind, name) in [
                ("baseline", "DLRM baseline"),
                ("dnas", "DNAS samples"),
                ("random", "random (equal cost)"),
            ] {
                let pts: Vec<Point> = o
                    .rows
                    .iter()
                    .filter(|r| r.kind == kind)
                    .map(|r| {
                        let x = if f == 0 { r.flops } else { r.params };
                        let ll: Vec<f64> = r.test.iter().map(|s| s.log_loss).collect();
                        Point::seeds(x, &ll)
                    })
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let s = Series::new(name, Style::Scatter, pts);
                series.push(if kind == "dnas" {
                    s.with_pareto(Better::LowXLowY)
                } else {
                    s
                });
            }
            let fig = Figure {
                title: format!("{}: test log loss vs {axis}", o.name),
                x: Axis::log(axis),
                y: Axis::linear("test log loss"),
                series,
                references: Vec::new(),
                caption: Some(format!(
                    "mean ± sd over {} retraining seed(s); lower is better",
                    p.seeds.len()
                )),
            };
            rec.plot(
                &format!(
                    "{}_logloss_vs_{}",
                    o.name,
                    if f == 0 { "flops" } else { "params" }
                ),
                Plot::Chart(Chart::Xy(fig)),
            );
        }
        for (i, (title, trace, names)) in o.probs.iter().enumerate() {
            let mut series = Vec::new();
            let vectors = trace.first().map_or(0, |(_, v)| v.len());
            for v in 0..vectors {
                for (k, n) in names.iter().enumerate() {
                    let label = if vectors > 1 {
                        format!("{} {n}", ["bottom", "top"].get(v).unwrap_or(&"θ"))
                    } else {
                        n.clone()
                    };
                    series.push(Series {
                        name: label,
                        points: trace.iter().map(|(e, p)| (*e, p[v][k])).collect(),
                    });
                }
            }
            rec.plot(
                &format!("{}_arch_probs_{i}", o.name),
                Plot::line(
                    &format!("{}: {title}", o.name),
                    "architecture epochs",
                    "P(option)",
                    series,
                ),
            );
        }
    }
    rec.setting(
        "rows",
        outcomes
            .iter()
            .flat_map(|o| o.rows.iter())
            .collect::<Vec<_>>(),
    );
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 35: an empty or too-short click log blamed the `split` setting of the experiment
    // file; the data file is named now, with the rows it has and needs.
    #[test]
    fn short_click_log_names_the_data_file() {
        let src = "/data/criteo/dac10k/train.txt";
        for n in [0, 5, 9_000] {
            let e = split_sizes(&[8000, 1000, 1000], n, src)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(src)
                    && e.contains(&format!("{n} rows"))
                    && e.contains("at least 9001")
                    && !e.starts_with("experiments/"),
                "{e}"
            );
        }
        // The test part takes what is left.
        assert_eq!(
            split_sizes(&[8000, 1000, 1000], 9_999, src).unwrap(),
            [8000, 1000, 999]
        );
        assert_eq!(
            split_sizes(&[8000, 1000, 1000], 10_000, src).unwrap(),
            [8000, 1000, 1000]
        );
        // A malformed `split` is still the experiment file's fault.
        for bad in [&[8000, 1000][..], &[8000, 0, 1000][..]] {
            let e = split_sizes(bad, 10_000, src).unwrap_err().to_string();
            assert!(e.starts_with("experiments/dnas-dlrm.toml"), "{e}");
        }
    }

    // Issue 27: one prediction file per (dataset, row, seed), named once (the mini run wrote
    // `*.csv.csv`), with p(click) at full precision.
    #[test]
    fn prediction_files_are_unique_and_named_once() {
        let mut labels = vec!["DLRM baseline".to_string()];
        for space in [Space::Mlp, Space::EmbDim, Space::EmbCard] {
            for i in 0..4 {
                labels.push(format!("DNAS {} #{i}", space.name()));
                labels.push(format!("random {} #{i}", space.name()));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for d in ["criteo-10k", "avazu-10k", "criteo-kaggle", "synthetic"] {
            for l in &labels {
                for seed in [1, 2, 3] {
                    let n = prediction_name(d, l, seed);
                    assert!(
                        !n.contains(".csv") && n.ends_with(&format!("-s{seed}")),
                        "{n}"
                    );
                    assert!(names.insert(n.clone()), "duplicate {n}");
                }
            }
        }
        assert_eq!(
            prediction_name("criteo-10k", "DNAS emb-dim #3", 2),
            "criteo-10k/dnas-emb-dim-3-s2"
        );
        for q in [0.123_456_79f32, 1e-7, 0.5, 0.999_999_9, 0.0, 1.0] {
            let back: f32 = p_click(q).parse().unwrap();
            assert_eq!(back, q);
        }
        assert_eq!(p_click(0.123_456_79), "0.12345679");
        // A collapsed seed is named.
        let preds = vec![vec![0.2, 0.7], vec![0.3, 0.3], vec![0.1, 0.4]];
        assert_eq!(constant_seeds(&[1, 2, 3], &preds), vec![2]);
    }
}
