//! `radar`: Zheng et al. 2021 (ROD2021). Per seed: a scene classifier, and per architecture a
//! plain detector against its scene-aware counterparts, the components added one at a time:
//! hard-scene oversampling (`double_hard`), SceneMix, one fine-tuned branch per scene group
//! routed by the classifier, and per-group post-processing tuned on the validation sequences.
//! Controls isolate each: a plain model trained as many steps as `double_hard`'s longer epochs;
//! the same extra fine-tuning steps on all scenes instead of per-group branches; one global
//! threshold tuned on the same validation sequences (every row but RODNet's fixed-threshold one
//! is tuned, so rows differ in training, not in tuning); and routing by the true scene, which
//! separates what the branches are worth from what the classifier gets right. With two or more
//! architectures, the authors' voting ensemble (spec §9.5) of their scene-aware detections is a
//! row of its own. Every row is evaluated with the ROD2021 metric (AP and AR over the nine OLS
//! thresholds, pooled over sequences) overall and per scene.
//!
//! Data: `simulated` sequences from [`crate::sim`] written in the CRUW layout and read back
//! through [`crate::cruw`] (smoke and mini: every number SIMULATED), or `rod2021`, the user's
//! CRUW download (`--data-dir`), split into the authors' 8 validation sequences (the test
//! split here, because ROD2021's test labels are withheld), one tuning sequence per scene and
//! the rest for training.
//!
//! Files: `ground-truth/<split>[-<scene>]/` (annotations + `frames.json`) and, per row and seed,
//! `predictions/<arch>/<row>/seed<k>/<SEQ>.txt` in the devkit's submission format; every AP/AR
//! cell cites them (`rod/ap:…`, `rod-subset/ap:…`) so `kiln verify` (or the devkit itself)
//! recomputes it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use kiln_core::progress;
use kiln_data::rod::{self, Region};
use kiln_experiment::{ExperimentFile, Flags, Paper, Plot, RunArgs, RunContext, RunRecord};
use kiln_report::figure::{Axis, Bars, Chart, ColorScale, MapMarker, MapPanel, Maps, Point};
use kiln_report::{Cell, Source, Table};
use serde::{Deserialize, Serialize};

use crate::cruw::CruwRoot;
use crate::eval::{evaluate, SequenceInput};
use crate::labels::Detection;
use crate::nets::{Arch, NetConfig, RadarNet, SceneClassifierConfig};
use crate::postprocess::{ensemble_frame, frame_detections, PostCfg};
use crate::scene::{scene_vote, MixGate};
use crate::sensor::{Grid, RadarConfig, Scene, SceneGroup, AUTHORS_VALID};
use crate::sim::{write_dataset, SimSpec};
use crate::train::{
    classify_windows, predict_sequence, steps_per_epoch, train_classifier, train_detector, SeqData,
    TrainCfg,
};

pub const NAME: &str = "radar";

pub struct RadarExperiment;

/// Simulated data: a coarser grid than the sensor's keeps the mini within minutes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// Range and azimuth bins (128 = the sensor).
    pub grid: usize,
    pub frames: usize,
    pub train_per_scene: usize,
    pub valid_per_scene: usize,
    pub test_per_scene: usize,
    /// Multiplies every scene's clutter reflectivity (1: the simulator's scenes).
    #[serde(default = "one")]
    pub clutter_scale: f64,
}

fn one() -> f64 {
    1.0
}

/// One architecture of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub arch: Arch,
    /// Channel multiplier (1 = the paper's network).
    pub width: f64,
    pub epochs: usize,
    /// Every scene-aware component on its own (otherwise plain, the augmented model, its
    /// equal-steps control and the full scene-aware pipeline).
    #[serde(default)]
    pub ablations: bool,
    /// The output head and loss (default: the architecture's training script's, spec §6).
    #[serde(default)]
    pub head: Option<crate::nets::Head>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    pub batch_size: usize,
    pub lr: f64,
    pub lr_step: usize,
    pub lr_gamma: f64,
    pub train_stride: usize,
    /// SceneMix's gate in the rows that use it.
    pub gate: MixGate,
}

/// Fine-tuning a branch per scene group (and the equal-steps control on all scenes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchSettings {
    pub epochs: usize,
    pub lr: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSettings {
    pub width: f64,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub description: String,
    /// `simulated` or `rod2021` (the CRUW layout under --data-dir).
    pub data: String,
    #[serde(default)]
    pub sim: Option<SimSettings>,
    /// Frames per window (T) and the stride of test windows.
    pub win: usize,
    pub test_stride: usize,
    /// The chirp every window reads (the authors always use chirp 0).
    pub chirp: usize,
    pub seeds: Vec<u64>,
    pub models: Vec<ModelSettings>,
    pub train: TrainSettings,
    pub branch: BranchSettings,
    pub classifier: ClassifierSettings,
    /// The default post-processing (spec §7) of every row that does not tune it.
    pub post: PostCfg,
    /// Peak thresholds the tuned rows choose from, on the validation sequences.
    pub peak_grid: Vec<f64>,
}

impl Paper for RadarExperiment {
    type Profile = Profile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn flags(&self, _: &Profile) -> Flags {
        Flags::default()
    }

    fn inputs(&self, _: &str, p: &Profile, args: &RunArgs) -> Result<String, String> {
        match p.data.as_str() {
            "simulated" => Ok("simulated FMCW radar sequences (generated on first use)".into()),
            "rod2021" => match &args.data_dir {
                Some(d) if d.join("sequences/train").is_dir() => {
                    Ok(format!("ROD2021 (CRUW layout) in {}", d.display()))
                }
                _ => Err(
                    "the rod2021 profile needs --data-dir with the ROD2021 download in \
                          the CRUW layout (sequences/train/<SEQ>/RADAR_RA_H, annotations/train; \
                          cruw-devkit's reorganisation script makes it from the zips)"
                        .into(),
                ),
            },
            other => Err(format!(
                "unknown data `{other}`: use `simulated` or `rod2021`"
            )),
        }
    }

    fn validate(&self, p: &Profile) -> Result<()> {
        let f = format!("experiments/{NAME}.toml");
        if p.seeds.is_empty() || p.models.is_empty() || p.peak_grid.is_empty() {
            bail!("{f}: `seeds`, `models` and `peak_grid` need at least one entry each");
        }
        if p.data == "simulated" && p.sim.is_none() {
            bail!("{f}: simulated data needs a [sim] table (grid, frames, sequences per scene)");
        }
        if let Some(s) = &p.sim {
            if s.grid % 16 != 0 || s.frames < p.win {
                bail!(
                    "{f}: sim.grid must be a multiple of 16 and sim.frames at least win = {}",
                    p.win
                );
            }
            if s.train_per_scene == 0 || s.valid_per_scene == 0 || s.test_per_scene == 0 {
                bail!("{f}: every split needs at least one sequence per scene");
            }
        }
        if !RadarConfig::default().chirp_ids.contains(&p.chirp) {
            bail!(
                "{f}: chirp {} is not one of the stored chirps 0, 64, 128, 192",
                p.chirp
            );
        }
        for m in &p.models {
            NetConfig::new(m.arch, 4)
                .with_width(m.width)
                .validate()
                .map_err(|e| anyhow::anyhow!("{f}: {e}"))?;
        }
        Ok(())
    }

    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<Profile>,
        p: &Profile,
    ) -> Result<RunRecord> {
        let data = load(ctx, p)?;
        let mut out = Outcome::default();
        for &seed in &p.seeds {
            run_seed(ctx, p, &data, seed, &mut out)?;
        }
        record(ctx, file, p, &data, out)
    }

    fn benches(&self) -> &'static [kiln_experiment::Bench] {
        &[("radar-cdc", crate::bench::cdc_train)]
    }
}

/// The three splits in memory.
struct Dataset {
    grid: Grid,
    source: String,
    simulated: bool,
    train: Vec<SeqData>,
    valid: Vec<SeqData>,
    test: Vec<SeqData>,
}

fn load(ctx: &RunContext, p: &Profile) -> Result<Dataset> {
    match p.data.as_str() {
        "simulated" => load_simulated(ctx, p),
        "rod2021" => load_rod2021(ctx, p),
        other => bail!("unknown data `{other}` in experiments/{NAME}.toml"),
    }
}

fn sim_name(scene: Scene, split: &str, k: usize) -> String {
    format!("sim_{}_{split}_{k:02}", scene.code())
}

/// Simulates the sequences once into the cache (CRUW layout; the folder name holds every
/// setting and the seed) and reads them back through the CRUW reader.
fn load_simulated(ctx: &RunContext, p: &Profile) -> Result<Dataset> {
    let s = p.sim.as_ref().context("simulated data needs [sim]")?;
    let radar = RadarConfig {
        ramap_rsize: s.grid,
        ramap_asize: s.grid,
        ..RadarConfig::default()
    };
    let grid = Grid::new(&radar);
    let key = format!(
        "radar-sim-v1-g{}-f{}-{}-{}-{}-c{}-s{}",
        s.grid,
        s.frames,
        s.train_per_scene,
        s.valid_per_scene,
        s.test_per_scene,
        s.clutter_scale,
        ctx.seed
    );
    let root_dir = ctx.cache.join(&key);
    let splits = [
        ("train", s.train_per_scene),
        ("valid", s.valid_per_scene),
        ("test", s.test_per_scene),
    ];
    let done = root_dir.join(".complete");
    if !done.exists() {
        if root_dir.exists() {
            std::fs::remove_dir_all(&root_dir)
                .with_context(|| format!("{}: cannot clear", root_dir.display()))?;
        }
        let bar = progress::bar(3, "simulate");
        for (si, (split, n)) in splits.iter().enumerate() {
            let mut specs = Vec::new();
            for scene in Scene::ALL {
                for k in 0..*n {
                    let seed = ctx.seed * 1_000_003 + (si * 1000 + scene.id() * 100 + k) as u64;
                    let mut spec = SimSpec::new(sim_name(scene, split, k), scene, s.frames, seed);
                    spec.config.radar = radar.clone();
                    spec.config.clutter_scale *= s.clutter_scale;
                    specs.push(spec);
                }
            }
            write_dataset(&root_dir, split, &specs)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        kiln_core::atomic_write(&done, b"")?;
    }
    let root = CruwRoot::with_config(&root_dir, &radar);
    let read = |split: &str| -> Result<Vec<SeqData>> {
        let mut out = Vec::new();
        for name in root.sequences(split)? {
            let code = name.split('_').nth(1).unwrap_or_default();
            let scene = Scene::parse(code)
                .with_context(|| format!("{}: no scene code in the name", name))?;
            out.push(SeqData::load(
                &root, split, &name, scene, p.chirp, &grid, true,
            )?);
        }
        Ok(out)
    };
    Ok(Dataset {
        source: format!(
            "SIMULATED FMCW radar ({}×{} grid, {} frames per sequence; {} train, {} valid, {} \
             test sequences per scene; data seed {}), CRUW layout in {}",
            s.grid,
            s.grid,
            s.frames,
            s.train_per_scene,
            s.valid_per_scene,
            s.test_per_scene,
            ctx.seed,
            root_dir.display()
        ),
        simulated: true,
        train: read("train")?,
        valid: read("valid")?,
        test: read("test")?,
        grid,
    })
}

/// ROD2021's labelled training sequences: the authors' 8 validation sequences held out (they
/// serve as the test split here, since ROD2021's test labels are withheld), tuning on 4 more.
fn load_rod2021(ctx: &RunContext, p: &Profile) -> Result<Dataset> {
    let dir = ctx
        .args
        .data_dir
        .clone()
        .context("the rod2021 profile needs --data-dir (the ROD2021 download, CRUW layout)")?;
    let root = CruwRoot::new(&dir);
    let grid = Grid::rod2021();
    let names = root.sequences("train")?;
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let bar = progress::bar(names.len() as u64, "load");
    for name in &names {
        let scene = Scene::of_rod2021_sequence(name).with_context(|| {
            format!("{name}: not a ROD2021 training sequence of the authors' scene table")
        })?;
        let seq = SeqData::load(&root, "train", name, scene, p.chirp, &grid, true)?;
        if AUTHORS_VALID.contains(&name.as_str()) {
            test.push(seq);
        } else if valid.iter().all(|v: &SeqData| v.scene != scene) {
            // One sequence per scene for tuning the post-processing.
            valid.push(seq);
        } else {
            train.push(seq);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Dataset {
        source: format!("ROD2021 training sequences in {}", dir.display()),
        simulated: false,
        grid,
        train,
        valid,
        test,
    })
}

/// The rows of the table, in order. Every row but the first and the last picks one global peak
/// threshold on the validation sequences, so that differences between rows are not differences
/// in tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    PlainFixed,
    Plain,
    PlainLong,
    Hard,
    Aug,
    AugExtra,
    Branches,
    SceneAware,
    SceneAwareOracle,
    /// Across architectures: every model's scene-aware detections, voted (spec §9.5).
    Ensemble,
}

impl Row {
    fn slug(self) -> &'static str {
        match self {
            Row::PlainFixed => "plain-fixed-threshold",
            Row::Plain => "plain",
            Row::PlainLong => "plain-long",
            Row::Hard => "double-hard",
            Row::Aug => "scenemix-double-hard",
            Row::AugExtra => "aug-extra-steps",
            Row::Branches => "branches",
            Row::SceneAware => "scene-aware",
            Row::SceneAwareOracle => "scene-aware-true-routing",
            Row::Ensemble => "ensemble",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Row::PlainFixed => "plain, RODNet's fixed peak threshold",
            Row::Plain => "plain",
            Row::PlainLong => "control: plain, as many steps as + double_hard",
            Row::Hard => "+ double_hard",
            Row::Aug => "+ double_hard + SceneMix",
            Row::AugExtra => "control: + double_hard + SceneMix, extra steps on all scenes",
            Row::Branches => "+ double_hard + SceneMix + scene branches (classifier-routed)",
            Row::SceneAware => "scene-aware: branches + per-group peak thresholds",
            Row::SceneAwareOracle => {
                "upper bound: scene-aware routed by the true scene (not the method)"
            }
            Row::Ensemble => "ensemble of every architecture's scene-aware detections",
        }
    }

    fn rows(ablations: bool) -> Vec<Row> {
        if ablations {
            vec![
                Row::PlainFixed,
                Row::Plain,
                Row::PlainLong,
                Row::Hard,
                Row::Aug,
                Row::AugExtra,
                Row::Branches,
                Row::SceneAware,
                Row::SceneAwareOracle,
            ]
        } else {
            vec![
                Row::Plain,
                Row::PlainLong,
                Row::Aug,
                Row::AugExtra,
                Row::Branches,
                Row::SceneAware,
                Row::SceneAwareOracle,
            ]
        }
    }
}

/// A sequence's averaged maps: (frame, `(n_out, R, A)`) for every covered frame.
type SeqMaps = Vec<(usize, Vec<f32>)>;

/// One row's result for one seed.
struct RowResult {
    /// Test detections per sequence (test order).
    dets: Vec<Vec<Detection>>,
    steps: usize,
    train_seconds: f64,
    peak_thres: BTreeMap<String, f64>,
}

/// What the scene classifier got right, as fractions.
struct ClassifierScore {
    /// Test sequences routed to their own scene, and to their own scene group (what the
    /// branches need).
    scene: f64,
    group: f64,
    /// Windows classified right, on test and on the training sequences.
    test_windows: f64,
    train_windows: f64,
}

#[derive(Default)]
struct Outcome {
    /// (arch index, row) → per seed.
    rows: BTreeMap<(usize, Row), Vec<RowResult>>,
    /// Per seed: the scene classifier's accuracies.
    classifier: Vec<ClassifierScore>,
    /// The first seed's maps for the figure: (arch index, test sequence 0 maps of the
    /// scene-aware row, the peak threshold that row used on it).
    figure: Option<(usize, SeqMaps, f64)>,
    /// Training loss curves of the first seed: (label, per-epoch loss).
    curves: Vec<(String, Vec<f64>)>,
}

/// Maps of every sequence of `seqs` from `net` (averaged over windows, per frame).
fn maps(net: &RadarNet, seqs: &[SeqData], p: &Profile, device: &Device) -> Result<Vec<SeqMaps>> {
    seqs.iter()
        .map(|s| Ok(predict_sequence(net, s, p.win, p.test_stride, device)?))
        .collect()
}

fn detections(maps: &[(usize, Vec<f32>)], grid: &Grid, post: &PostCfg) -> Vec<Detection> {
    maps.iter()
        .flat_map(|(f, m)| frame_detections(m, *f, grid, post))
        .collect()
}

fn ap_of(seqs: &[&SeqData], dets: &[Vec<Detection>], grid: &Grid) -> Result<f64> {
    let inputs: Vec<SequenceInput> = seqs
        .iter()
        .zip(dets)
        .map(|(s, d)| SequenceInput {
            name: &s.name,
            n_frames: s.n_frames,
            gt: &s.objects,
            dets: d,
        })
        .collect();
    Ok(evaluate(&inputs, grid)?.ap())
}

/// The peak threshold of `grid_values` with the best validation AP on `seqs` (the first on a
/// tie, so the choice is reproducible).
fn tune_peak(
    seqs: &[&SeqData],
    maps: &[&SeqMaps],
    grid: &Grid,
    post: &PostCfg,
    values: &[f64],
) -> Result<f64> {
    let mut best = (f64::NEG_INFINITY, values[0]);
    for &t in values {
        let cfg = PostCfg {
            peak_thres: t,
            ..*post
        };
        let dets: Vec<Vec<Detection>> = maps.iter().map(|m| detections(m, grid, &cfg)).collect();
        let ap = ap_of(seqs, &dets, grid)?;
        if ap > best.0 {
            best = (ap, t);
        }
    }
    Ok(best.1)
}

fn train_cfg(p: &Profile, m: &ModelSettings, mix: bool, hard: bool) -> TrainCfg {
    TrainCfg {
        epochs: m.epochs,
        batch_size: p.train.batch_size,
        lr: p.train.lr,
        lr_step: p.train.lr_step,
        lr_gamma: p.train.lr_gamma,
        win: p.win,
        train_stride: p.train.train_stride,
        scene_mix: mix.then_some(p.train.gate),
        double_hard: hard,
    }
}

fn run_seed(
    ctx: &RunContext,
    p: &Profile,
    data: &Dataset,
    seed: u64,
    out: &mut Outcome,
) -> Result<()> {
    let device = &ctx.device;
    let grid = &data.grid;
    // The scene classifier, and the routing of every validation and test sequence.
    let cls_cfg = TrainCfg {
        epochs: p.classifier.epochs,
        batch_size: p.classifier.batch_size,
        lr: p.classifier.lr,
        lr_step: p.classifier.epochs.max(1),
        lr_gamma: 1.0,
        win: p.win,
        train_stride: p.train.train_stride,
        scene_mix: None,
        double_hard: false,
    };
    let cls = SceneClassifierConfig {
        width: p.classifier.width,
        seed,
        ..SceneClassifierConfig::default()
    }
    .init(device)?;
    let bar = progress::bar(0, &format!("seed {seed}: scene classifier"));
    let (cls, _) = train_classifier(cls, &data.train, &cls_cfg, seed, device, |d, t, _| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    })?;
    bar.finish_and_clear();
    let window_accuracy = |seqs: &[SeqData]| -> Result<(f64, Vec<Vec<Scene>>)> {
        let (mut right, mut windows, mut votes) = (0usize, 0usize, Vec::new());
        for s in seqs {
            let v = classify_windows(&cls, s, p.win, p.test_stride, device)?;
            right += v.iter().filter(|x| **x == s.scene).count();
            windows += v.len();
            votes.push(v);
        }
        Ok((right as f64 / windows.max(1) as f64, votes))
    };
    let (test_windows, votes) = window_accuracy(&data.test)?;
    let (train_windows, _) = window_accuracy(&data.train)?;
    let routed: Vec<Scene> = votes
        .iter()
        .map(|v| scene_vote(v).unwrap_or(Scene::ParkingLot))
        .collect();
    let share = |f: &dyn Fn(usize) -> bool| {
        (0..data.test.len()).filter(|&i| f(i)).count() as f64 / data.test.len().max(1) as f64
    };
    out.classifier.push(ClassifierScore {
        scene: share(&|i| routed[i] == data.test[i].scene),
        group: share(&|i| routed[i].group() == data.test[i].scene.group()),
        test_windows,
        train_windows,
    });
    let route: Vec<SceneGroup> = routed.iter().map(|s| s.group()).collect();

    let valid: Vec<&SeqData> = data.valid.iter().collect();
    for (mi, m) in p.models.iter().enumerate() {
        let rows = Row::rows(m.ablations);
        let net = |s: u64| -> Result<RadarNet> {
            let cfg = NetConfig::new(m.arch, 4).with_width(m.width).with_seed(s);
            let cfg = match m.head {
                Some(h) => cfg.with_head(h),
                None => cfg,
            };
            Ok(cfg.init(device)?)
        };
        let train = |cfg: &TrainCfg, n: RadarNet, what: &str, on: &[SeqData]| {
            let bar = progress::bar(0, &format!("seed {seed}: {} {what}", m.arch.name()));
            let r = train_detector(n, on, cfg, seed, device, |d, t, _| {
                bar.set_length(t as u64);
                bar.set_position(d as u64);
            });
            bar.finish_and_clear();
            r
        };
        // General models: plain, the step-matched plain control and the augmentations added
        // one at a time (ablations), and the augmented model every scene-aware row starts from.
        let mut general = BTreeMap::new();
        for (row, mix, hard) in [
            (Row::Plain, false, false),
            (Row::PlainLong, false, false),
            (Row::Hard, false, true),
            (Row::Aug, true, true),
        ] {
            let needed = match row {
                Row::Plain => rows.contains(&Row::Plain) || rows.contains(&Row::PlainFixed),
                // The augmented model is where every scene-aware row starts.
                Row::Aug => true,
                _ => rows.contains(&row),
            };
            if needed {
                let mut cfg = train_cfg(p, m, mix, hard);
                if row == Row::PlainLong {
                    // double_hard lists the dynamic sequences twice, so its epochs are longer:
                    // this control gets as many steps without the oversampling.
                    let hard_cfg = train_cfg(p, m, false, true);
                    let (long, short) = (
                        steps_per_epoch(&data.train, &hard_cfg)?,
                        steps_per_epoch(&data.train, &cfg)?,
                    );
                    cfg.epochs = ((m.epochs * long) as f64 / short as f64).round() as usize;
                }
                let (model, log) = train(&cfg, net(seed)?, row.slug(), &data.train)?;
                if seed == p.seeds[0] {
                    out.curves.push((
                        format!("{} {}", m.arch.name(), row.label()),
                        log.epoch_loss.clone(),
                    ));
                }
                general.insert(row, (model, log.steps, log.seconds));
            }
        }
        let default_post = p.post;
        // One global threshold, tuned on validation, for a model's test detections.
        let global = |model: &RadarNet| -> Result<(Vec<SeqMaps>, f64)> {
            let mv = maps(model, &data.valid, p, device)?;
            let vm: Vec<&SeqMaps> = mv.iter().collect();
            let t = tune_peak(&valid, &vm, grid, &default_post, &p.peak_grid)?;
            Ok((maps(model, &data.test, p, device)?, t))
        };
        let dets_at = |mt: &[SeqMaps], t: f64| -> Vec<Vec<Detection>> {
            let post = PostCfg {
                peak_thres: t,
                ..default_post
            };
            mt.iter().map(|x| detections(x, grid, &post)).collect()
        };
        for row in [Row::Plain, Row::PlainLong, Row::Hard, Row::Aug] {
            if let Some((model, steps, secs)) = general.get(&row) {
                let reported =
                    rows.contains(&row) || (row == Row::Plain && rows.contains(&Row::PlainFixed));
                if !reported {
                    continue;
                }
                let (mt, t) = global(model)?;
                if rows.contains(&row) {
                    out.rows.entry((mi, row)).or_default().push(RowResult {
                        dets: dets_at(&mt, t),
                        steps: *steps,
                        train_seconds: *secs,
                        peak_thres: [("all".to_string(), t)].into(),
                    });
                }
                if row == Row::Plain && rows.contains(&Row::PlainFixed) {
                    out.rows
                        .entry((mi, Row::PlainFixed))
                        .or_default()
                        .push(RowResult {
                            dets: dets_at(&mt, default_post.peak_thres),
                            steps: *steps,
                            train_seconds: *secs,
                            peak_thres: [("all".to_string(), default_post.peak_thres)].into(),
                        });
                }
            }
        }
        let (aug, aug_steps, aug_secs) = general
            .remove(&Row::Aug)
            .context("the augmented model is trained for every scene-aware row")?;
        let ft = |epochs: usize| TrainCfg {
            epochs,
            lr: p.branch.lr,
            lr_step: epochs.max(1),
            lr_gamma: 1.0,
            ..train_cfg(p, m, true, true)
        };
        // Control: the same extra steps on all scenes.
        if rows.contains(&Row::AugExtra) {
            let (extra, log) = train(
                &ft(p.branch.epochs),
                aug.clone(),
                "extra steps",
                &data.train,
            )?;
            let (mt, t) = global(&extra)?;
            out.rows
                .entry((mi, Row::AugExtra))
                .or_default()
                .push(RowResult {
                    dets: dets_at(&mt, t),
                    steps: aug_steps + log.steps,
                    train_seconds: aug_secs + log.seconds,
                    peak_thres: [("all".to_string(), t)].into(),
                });
        }
        // Branches: one fine-tuned copy per scene group, on that group's sequences.
        let mut branch_steps = aug_steps;
        let mut branch_secs = aug_secs;
        let mut test_maps: Vec<Option<SeqMaps>> = vec![None; data.test.len()];
        let mut oracle_maps: Vec<Option<SeqMaps>> = vec![None; data.test.len()];
        let mut valid_maps: Vec<Option<SeqMaps>> = vec![None; data.valid.len()];
        for group in [SceneGroup::Static, SceneGroup::Dynamic] {
            let on: Vec<SeqData> = data
                .train
                .iter()
                .filter(|s| s.scene.group() == group)
                .cloned()
                .collect();
            if on.is_empty() {
                continue;
            }
            let (branch, log) = train(
                &ft(p.branch.epochs),
                aug.clone(),
                &format!("{group:?} branch"),
                &on,
            )?;
            branch_steps += log.steps;
            branch_secs += log.seconds;
            let oracle = rows.contains(&Row::SceneAwareOracle);
            for (i, s) in data.test.iter().enumerate() {
                let (routed, true_group) = (route[i] == group, s.scene.group() == group);
                if routed || (oracle && true_group) {
                    let m = predict_sequence(&branch, s, p.win, p.test_stride, device)?;
                    if routed {
                        test_maps[i] = Some(m.clone());
                    }
                    if true_group {
                        oracle_maps[i] = Some(m);
                    }
                }
            }
            // Validation sequences go to their own group's branch (tuning, not testing).
            for (i, s) in data.valid.iter().enumerate() {
                if s.scene.group() == group {
                    valid_maps[i] =
                        Some(predict_sequence(&branch, s, p.win, p.test_stride, device)?);
                }
            }
        }
        let test_maps: Vec<SeqMaps> = test_maps
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let oracle_maps: Vec<SeqMaps> = oracle_maps
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let valid_maps: Vec<SeqMaps> = valid_maps
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let branch_row = |post_of: &dyn Fn(usize) -> PostCfg| -> Vec<Vec<Detection>> {
            test_maps
                .iter()
                .enumerate()
                .map(|(i, x)| detections(x, grid, &post_of(i)))
                .collect()
        };
        if rows.contains(&Row::Branches) {
            let vm: Vec<&SeqMaps> = valid_maps.iter().collect();
            let t = tune_peak(&valid, &vm, grid, &default_post, &p.peak_grid)?;
            let post = PostCfg {
                peak_thres: t,
                ..default_post
            };
            out.rows
                .entry((mi, Row::Branches))
                .or_default()
                .push(RowResult {
                    dets: branch_row(&|_| post),
                    steps: branch_steps,
                    train_seconds: branch_secs,
                    peak_thres: [("all".to_string(), t)].into(),
                });
        }
        if rows.contains(&Row::SceneAware) || rows.contains(&Row::SceneAwareOracle) {
            let mut per_group = BTreeMap::new();
            for group in [SceneGroup::Static, SceneGroup::Dynamic] {
                let idx: Vec<usize> = (0..data.valid.len())
                    .filter(|&i| data.valid[i].scene.group() == group)
                    .collect();
                let t = if idx.is_empty() {
                    default_post.peak_thres
                } else {
                    let seqs: Vec<&SeqData> = idx.iter().map(|&i| &data.valid[i]).collect();
                    let vm: Vec<&SeqMaps> = idx.iter().map(|&i| &valid_maps[i]).collect();
                    tune_peak(&seqs, &vm, grid, &default_post, &p.peak_grid)?
                };
                per_group.insert(group, t);
            }
            let thres: BTreeMap<String, f64> = per_group
                .iter()
                .map(|(g, t)| (format!("{g:?}").to_lowercase(), *t))
                .collect();
            // Each test sequence gets its branch's threshold: routed, or by its true scene.
            let routed = |maps: &[SeqMaps], group_of: &dyn Fn(usize) -> SceneGroup| {
                maps.iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let post = PostCfg {
                            peak_thres: per_group[&group_of(i)],
                            ..default_post
                        };
                        detections(x, grid, &post)
                    })
                    .collect::<Vec<_>>()
            };
            for (row, maps, group_of) in [
                (
                    Row::SceneAware,
                    &test_maps,
                    &(|i: usize| route[i]) as &dyn Fn(usize) -> SceneGroup,
                ),
                (Row::SceneAwareOracle, &oracle_maps, &|i: usize| {
                    data.test[i].scene.group()
                }),
            ] {
                if rows.contains(&row) {
                    out.rows.entry((mi, row)).or_default().push(RowResult {
                        dets: routed(maps, group_of),
                        steps: branch_steps,
                        train_seconds: branch_secs,
                        peak_thres: thres.clone(),
                    });
                }
            }
            if seed == p.seeds[0] && out.figure.is_none() {
                out.figure = Some((mi, test_maps[0].clone(), per_group[&route[0]]));
            }
        }
    }
    // The authors' ensemble: every architecture's scene-aware detections of this seed, voted
    // frame by frame.
    let per_model: Vec<&RowResult> = (0..p.models.len())
        .filter_map(|mi| out.rows.get(&(mi, Row::SceneAware))?.last())
        .collect();
    if per_model.len() >= 2 {
        let post = PostCfg {
            peak_thres: ENSEMBLE_PEAK_THRES,
            ..p.post
        };
        let dets = data
            .test
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (0..s.n_frames)
                    .flat_map(|f| {
                        let lists: Vec<Vec<Detection>> = per_model
                            .iter()
                            .map(|r| r.dets[i].iter().filter(|d| d.frame == f).copied().collect())
                            .collect();
                        ensemble_frame(&lists, f, grid, &post)
                    })
                    .collect()
            })
            .collect();
        let result = RowResult {
            dets,
            steps: per_model.iter().map(|r| r.steps).sum(),
            train_seconds: per_model.iter().map(|r| r.train_seconds).sum(),
            peak_thres: [("ensemble".to_string(), ENSEMBLE_PEAK_THRES)].into(),
        };
        out.rows
            .entry((ENSEMBLE, Row::Ensemble))
            .or_default()
            .push(result);
    }
    Ok(())
}

/// The ensemble's vote threshold (the authors' `tools/ensemble.py`): a place about a third of
/// the models detect survives.
const ENSEMBLE_PEAK_THRES: f64 = 0.33;
/// The architecture index the ensemble row is filed under (after every model).
const ENSEMBLE: usize = usize::MAX;

fn gt_of<'a>(seqs: &[&'a SeqData]) -> Vec<(&'a str, usize, &'a [rod::Object])> {
    seqs.iter()
        .map(|s| (s.name.as_str(), s.n_frames, s.objects.as_slice()))
        .collect()
}

fn pct(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| 100.0 * x).collect()
}

fn record(
    ctx: &RunContext,
    file: &ExperimentFile<Profile>,
    p: &Profile,
    data: &Dataset,
    out: Outcome,
) -> Result<RunRecord> {
    let grid = &data.grid;
    let region: Region = grid.region();
    let mut rec = RunRecord::new(data.simulated);
    // Ground truth of the test split, all sequences and per scene.
    let test: Vec<&SeqData> = data.test.iter().collect();
    let mut gt_dirs = vec![("ground-truth/test".to_string(), None)];
    for scene in Scene::ALL {
        if test.iter().any(|s| s.scene == scene) {
            gt_dirs.push((format!("ground-truth/test-{}", scene.code()), Some(scene)));
        }
    }
    for (dir, scene) in &gt_dirs {
        let seqs: Vec<&SeqData> = test
            .iter()
            .copied()
            .filter(|s| scene.is_none_or(|sc| s.scene == sc))
            .collect();
        for (path, bytes) in rod::ground_truth_files(Path::new(dir), &gt_of(&seqs))? {
            rec.file(&path.to_string_lossy(), bytes);
        }
    }
    let scenes: Vec<Scene> = gt_dirs.iter().filter_map(|(_, s)| *s).collect();
    let mut cols = vec!["architecture", "row", "AP", "AR"];
    let scene_cols: Vec<String> = scenes.iter().map(|s| format!("AP {}", s.code())).collect();
    cols.extend(scene_cols.iter().map(String::as_str));
    cols.extend([
        "Δ AP vs plain",
        "training steps",
        "training (s)",
        "peak threshold",
    ]);
    let title = if data.simulated {
        "Scene-aware radar detection (Zheng et al. 2021), SIMULATED radar: AP and AR (%) on the test sequences"
    } else {
        "Scene-aware radar detection (Zheng et al. 2021): AP and AR (%) on the authors' validation sequences"
    };
    let mut table = ctx.main_table(title, data.simulated, &cols);
    let mut per_scene_bars: Vec<(String, Vec<Option<Point>>)> = Vec::new();
    let mut plain_ap: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for ((mi, row), results) in &out.rows {
        if *row == Row::Plain {
            let v = results
                .iter()
                .map(|r| ap_of(&test, &r.dets, grid))
                .collect::<Result<_>>()?;
            plain_ap.insert(*mi, v);
        }
    }
    for ((mi, row), results) in &out.rows {
        let arch = p
            .models
            .get(*mi)
            .map_or_else(|| "all".to_string(), |m| m.arch.name());
        let mut folders = Vec::new();
        for (k, r) in results.iter().enumerate() {
            let folder = format!("predictions/{}/{}/seed{}", arch, row.slug(), p.seeds[k]);
            for (s, d) in test.iter().zip(&r.dets) {
                let path = format!("{folder}/{}.txt", s.name);
                let text = rod::labels::submission_text(Path::new(&path), d)?;
                rec.file(&path, text.into_bytes());
            }
            folders.push(folder);
        }
        let eval_of = |seqs: &[&SeqData], r: &RowResult| -> Result<rod::RodStats> {
            let inputs: Vec<SequenceInput> = seqs
                .iter()
                .map(|s| {
                    let i = test.iter().position(|t| t.name == s.name).unwrap_or(0);
                    SequenceInput {
                        name: &s.name,
                        n_frames: s.n_frames,
                        gt: &s.objects,
                        dets: &r.dets[i],
                    }
                })
                .collect();
            Ok(rod::evaluate(&inputs, &region)?)
        };
        let all: Vec<rod::RodStats> = results
            .iter()
            .map(|r| eval_of(&test, r))
            .collect::<Result<_>>()?;
        let ap: Vec<f64> = all.iter().map(|s| s.ap()).collect();
        let ar: Vec<f64> = all.iter().map(|s| s.ar()).collect();
        let mut cells = vec![
            Cell::text(&arch),
            Cell::text(row.label()),
            Cell::sourced(
                &pct(&ap),
                1,
                Source::new("rod/ap:ground-truth/test", folders.clone(), 100.0),
            ),
            Cell::sourced(
                &pct(&ar),
                1,
                Source::new("rod/ar:ground-truth/test", folders.clone(), 100.0),
            ),
        ];
        let mut bars = Vec::new();
        for scene in &scenes {
            let seqs: Vec<&SeqData> = test.iter().copied().filter(|s| s.scene == *scene).collect();
            let v: Vec<f64> = results
                .iter()
                .map(|r| eval_of(&seqs, r).map(|s| 100.0 * s.ap()))
                .collect::<Result<_>>()?;
            bars.push(Some(Point::seeds(f64::NAN, &v)));
            cells.push(Cell::sourced(
                &v,
                1,
                Source::new(
                    format!("rod-subset/ap:ground-truth/test-{}", scene.code()),
                    folders.clone(),
                    100.0,
                ),
            ));
        }
        let mut all_ap = pct(&ap);
        bars.push(Some(Point::seeds(f64::NAN, &std::mem::take(&mut all_ap))));
        if matches!(row, Row::Plain | Row::SceneAware | Row::Ensemble) {
            let name = if *row == Row::Ensemble {
                row.slug().to_string()
            } else {
                format!("{arch} {}", row.slug())
            };
            per_scene_bars.push((name, bars));
        }
        cells.push(match plain_ap.get(mi) {
            Some(base) if *row != Row::Plain => {
                let d: Vec<f64> = ap.iter().zip(base).map(|(a, b)| 100.0 * (a - b)).collect();
                Cell::measured(&d, 1)
            }
            _ => Cell::text("—"),
        });
        cells.push(Cell::text(format!("{}", results[0].steps)));
        let secs: Vec<f64> = results.iter().map(|r| r.train_seconds).collect();
        cells.push(Cell::measured(&secs, 0));
        let thres: Vec<String> = results
            .iter()
            .map(|r| {
                r.peak_thres
                    .iter()
                    .map(|(g, t)| format!("{g} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        cells.push(Cell::text(thres.join("; ")));
        table.push(cells);
    }
    table.note(format!("Data: {}.", data.source));
    table.note(format!(
        "Mean ± sd over seeds {:?} (the data seed is fixed: --seed {}). AP and AR: the ROD2021 \
         metric (cruw-devkit's OLS matching at 0.50:0.05:0.90, 101 recall points, GT-count \
         weighted), all test sequences pooled; per scene the same on that scene's sequences.",
        p.seeds, ctx.seed
    ));
    table.note(format!(
        "Peak thresholds: every row but RODNet's fixed-threshold one (which keeps {} to show \
         what tuning alone is worth) and the ensemble (the authors' vote threshold) picks its \
         threshold on the validation sequences (one for all scenes; scene-aware rows one per \
         scene group), never on test, so a difference between rows is not a difference in \
         tuning. Controls: `extra steps` trains the \
         augmented model for as many further steps as the two branches together, on all \
         scenes, so a branch gain is not just more training. The true-routing row sends every \
         test sequence to its own scene group's branch: the scene-aware pipeline with a perfect \
         classifier, an upper bound that separates what the branches are worth from what the \
         classifier gets right. Δ AP: each seed's AP minus the same seed's `plain` AP, mean ± sd \
         over seeds; a difference within its sd is not a result.",
        p.post.peak_thres
    ));
    let of = |f: &dyn Fn(&ClassifierScore) -> f64| {
        fmt_mean(
            &out.classifier
                .iter()
                .map(|c| 100.0 * f(c))
                .collect::<Vec<_>>(),
        )
    };
    table.note(format!(
        "Scene classifier (chance: 25 % of scenes, 50 % of groups): test sequences routed to \
         their scene {} %, to their scene group {} %; windows right {} % on test, {} % on the \
         training sequences (mean over seeds).",
        of(&|c| c.scene),
        of(&|c| c.group),
        of(&|c| c.test_windows),
        of(&|c| c.train_windows)
    ));
    rec.table("table", table);

    // Paper reference: never beside a row (no row runs ROD2021 test with the paper's models).
    let mut refs = Table::new(
        "Paper reference (Zheng et al. 2021, ROD2021 test server): not comparable to the rows above",
        &["setting", "AP", "AR", "what differs here"],
    );
    let paper = &file.paper;
    refs.push(vec![
        Cell::text("ensemble + scene-aware pipeline, all test sequences"),
        Cell::Num(paper.get("test.ap"), 1),
        Cell::Num(paper.get("test.ar"), 1),
        Cell::text(format!(
            "{}; {}",
            if data.simulated {
                "simulated radar, scaled-down networks"
            } else {
                "the authors' validation split (test labels are withheld)"
            },
            match p.models.len() {
                0 | 1 => "no ensemble".to_string(),
                n => format!(
                    "an ensemble of {n} architectures, one model each (the authors' has more)"
                ),
            }
        )),
    ]);
    refs.push(vec![
        Cell::text("parking-lot scene"),
        Cell::Num(paper.get("parking_lot.ap"), 1),
        Cell::Num(paper.get("parking_lot.ar"), 1),
        Cell::text("as above"),
    ]);
    rec.table("paper_reference", refs);

    // AP per scene with seed error bars.
    let mut groups: Vec<String> = scenes.iter().map(|s| s.code().to_string()).collect();
    groups.push("all".into());
    rec.plot(
        "ap_per_scene",
        Plot::Chart(Chart::Bars(Bars {
            title: format!(
                "AP per scene, plain vs scene-aware{}",
                if data.simulated {
                    " (SIMULATED radar)"
                } else {
                    ""
                }
            ),
            y: Axis::linear("AP (%)"),
            groups,
            series: per_scene_bars,
            references: Vec::new(),
            caption: Some(format!("mean ± sd over seeds {:?}", p.seeds)),
        })),
    );
    if let Some((mi, maps, peak_thres)) = &out.figure {
        if let Some(plot) = frame_figure(data, &p.models[*mi], maps, *peak_thres, p)? {
            rec.plot("radar_frame", plot);
        }
    }
    if !out.curves.is_empty() {
        let series = out
            .curves
            .iter()
            .map(|(name, v)| kiln_report::Series {
                name: name.clone(),
                points: v
                    .iter()
                    .enumerate()
                    .map(|(e, l)| ((e + 1) as f64, *l))
                    .collect(),
            })
            .collect();
        rec.plot(
            "training_loss",
            Plot::line("Training loss (first seed)", "epoch", "mean loss", series),
        );
    }
    rec.setting("profile", p);
    rec.setting("data", &data.source);
    Ok(rec)
}

fn fmt_mean(v: &[f64]) -> String {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    format!("{m:.1}")
}

/// A radar frame of the first test sequence beside its ground-truth ConfMap and the scene-aware
/// model's map, with labels and detections marked (axes: sin(azimuth), on which the devkit's
/// grid is uniform, and range in metres).
fn frame_figure(
    data: &Dataset,
    m: &ModelSettings,
    maps: &[(usize, Vec<f32>)],
    peak_thres: f64,
    p: &Profile,
) -> Result<Option<Plot>> {
    let grid = &data.grid;
    let seq = &data.test[0];
    // The covered frame with the most labelled objects.
    let Some((frame, pred)) = maps
        .iter()
        .max_by_key(|(f, _)| seq.objects.iter().filter(|o| o.frame == *f).count())
    else {
        return Ok(None);
    };
    let (rows, cols) = (grid.rows(), grid.cols());
    let plane = rows * cols;
    let radar = seq.radar_window(*frame, 1);
    let power: Vec<f64> = (0..plane)
        .map(|k| {
            let (re, im) = (radar[k] as f64, radar[plane + k] as f64);
            10.0 * (re * re + im * im).max(1e-12).log10()
        })
        .collect();
    let target = seq.target_window(*frame, 1);
    let gt_map: Vec<f64> = (0..plane)
        .map(|k| {
            (0..3)
                .map(|c| target[c * plane + k] as f64)
                .fold(0.0, f64::max)
        })
        .collect();
    let pred_map: Vec<f64> = (0..plane)
        .map(|k| {
            (0..3)
                .map(|c| pred[c * plane + k] as f64)
                .fold(f64::MIN, f64::max)
        })
        .collect();
    // The threshold the scene-aware row used on this sequence (its routed group's).
    let post = PostCfg {
        peak_thres,
        ..p.post
    };
    let dets = frame_detections(pred, *frame, grid, &post);
    let at = |r: f64, a: f64| (a.sin(), r);
    let mut markers = Vec::new();
    for o in seq.objects.iter().filter(|o| o.frame == *frame) {
        let (x, y) = at(o.range, o.angle);
        markers.push(MapMarker::new(
            &format!("ground truth ({})", o.class.name()),
            x,
            y,
        ));
    }
    for d in &dets {
        let (x, y) = at(d.range, d.angle);
        markers.push(MapMarker::new("detections", x, y));
    }
    let x = Axis::linear("sin(azimuth)").with_range(-1.0, 1.0);
    let y = Axis::linear("range (m)").with_range(grid.range[0], grid.range[rows - 1]);
    let panel = |title: &str, values: Vec<f64>, label: &str, scale: ColorScale| {
        let mut pnl = MapPanel::new(title, rows, cols, values);
        pnl.x = x.clone();
        pnl.y = y.clone();
        pnl.scale = scale;
        pnl.colorbar_label = Some(label.to_string());
        pnl.markers = markers.clone();
        pnl
    };
    Ok(Some(Plot::Chart(Chart::Maps(Maps {
        title: format!(
            "{} frame {}: radar, ground-truth ConfMap, {} scene-aware prediction{}",
            seq.name,
            frame,
            m.arch.name(),
            if data.simulated { " (SIMULATED)" } else { "" }
        ),
        panels: vec![
            panel("radar power, chirp 0", power, "dB", ColorScale::default()),
            panel(
                "ground-truth ConfMap",
                gt_map,
                "confidence",
                ColorScale::default().with_range(0.0, 1.0),
            ),
            panel(
                "predicted map",
                pred_map,
                "confidence",
                ColorScale::default(),
            ),
        ],
        caption: Some(format!(
            "max over the three class channels; detections after peak detection and L-NMS at \
             peak threshold {}",
            post.peak_thres
        )),
    }))))
}
