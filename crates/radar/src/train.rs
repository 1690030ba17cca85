//! Training and sliding-window inference of the detectors and the scene classifier, over
//! sequences held in memory.
//!
//! Sequences are loaded once (one chirp per frame, as the authors do: chirp 0), their ConfMaps
//! computed once per frame, and windows assembled per batch. Training samples windows of
//! `win` frames every `train_stride` frames (spec §3); SceneMix and hard-scene oversampling are
//! switches of [`TrainCfg`]. The learning rate follows a StepLR schedule (spec §7).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::confmap::{objects_confmap, N_CLASSES};
use crate::cruw::{window_starts, CruwRoot};
use crate::error::{RadarError, Result};
use crate::labels::{Detection, Object};
use crate::nets::{RadarDetector, RadarNet, SceneClassifier};
use crate::postprocess::{frame_detections, PostCfg, TemporalAverager};
use crate::scene::{oversample_hard, scene_mix, MixGate, MixLog, Window, WindowDims};
use crate::sensor::{Grid, Scene};

/// One sequence in memory: chirp-0 frames as `(2, R, A)` planes (real, imaginary), its labels
/// and, per frame, its ConfMap `(C, R, A)`.
#[derive(Debug, Clone)]
pub struct SeqData {
    pub name: String,
    pub scene: Scene,
    pub n_frames: usize,
    pub rows: usize,
    pub cols: usize,
    frames: Vec<f32>,
    pub objects: Vec<Object>,
    targets: Vec<f32>,
    pub channels: usize,
}

impl SeqData {
    /// A sequence from its frames `(n, R, A, 2)` as stored (real, imaginary last) and labels.
    pub fn new(
        name: impl Into<String>,
        scene: Scene,
        stored_frames: &[Vec<f32>],
        objects: Vec<Object>,
        grid: &Grid,
        noise_channel: bool,
    ) -> Result<Self> {
        let name = name.into();
        let (rows, cols) = (grid.rows(), grid.cols());
        let plane = rows * cols;
        let n_frames = stored_frames.len();
        let mut frames = vec![0.0f32; n_frames * 2 * plane];
        for (f, stored) in stored_frames.iter().enumerate() {
            if stored.len() != 2 * plane {
                return Err(RadarError::Invalid(format!(
                    "{name}: frame {f} holds {} values, the {rows}×{cols} grid needs {}",
                    stored.len(),
                    2 * plane
                )));
            }
            let (re, im) = frames[f * 2 * plane..(f + 1) * 2 * plane].split_at_mut(plane);
            for (p, v) in stored.chunks_exact(2).enumerate() {
                re[p] = v[0];
                im[p] = v[1];
            }
        }
        if let Some(o) = objects.iter().find(|o| o.frame >= n_frames) {
            return Err(RadarError::Invalid(format!(
                "{name}: an object is labelled in frame {} of a {n_frames}-frame sequence",
                o.frame
            )));
        }
        let channels = N_CLASSES + usize::from(noise_channel);
        let mut targets = Vec::with_capacity(n_frames * channels * plane);
        for f in 0..n_frames {
            let here: Vec<Object> = objects.iter().filter(|o| o.frame == f).copied().collect();
            targets.extend(objects_confmap(&here, grid, noise_channel));
        }
        Ok(Self {
            name,
            scene,
            n_frames,
            rows,
            cols,
            frames,
            objects,
            targets,
            channels,
        })
    }

    /// A sequence of a CRUW root, chirp `chirp` of every frame.
    pub fn load(
        root: &CruwRoot,
        split: &str,
        name: &str,
        scene: Scene,
        chirp: usize,
        grid: &Grid,
        noise_channel: bool,
    ) -> Result<Self> {
        let n = root.n_frames(split, name)?;
        let frames = (0..n)
            .map(|f| root.read_frame(split, name, f, chirp))
            .collect::<Result<Vec<_>>>()?;
        let objects = root.read_annotations(split, name)?;
        Self::new(name, scene, &frames, objects, grid, noise_channel)
    }

    fn plane(&self) -> usize {
        self.rows * self.cols
    }

    /// The radar window `(2, T, R, A)` starting at `start`.
    pub fn radar_window(&self, start: usize, win: usize) -> Vec<f32> {
        let p = self.plane();
        let mut out = vec![0.0f32; 2 * win * p];
        for t in 0..win {
            let f = &self.frames[(start + t) * 2 * p..(start + t + 1) * 2 * p];
            for ch in 0..2 {
                out[(ch * win + t) * p..(ch * win + t + 1) * p]
                    .copy_from_slice(&f[ch * p..(ch + 1) * p]);
            }
        }
        out
    }

    /// The target window `(C, T, R, A)` starting at `start`.
    pub fn target_window(&self, start: usize, win: usize) -> Vec<f32> {
        let (p, c) = (self.plane(), self.channels);
        let mut out = vec![0.0f32; c * win * p];
        for t in 0..win {
            let f = &self.targets[(start + t) * c * p..(start + t + 1) * c * p];
            for k in 0..c {
                out[(k * win + t) * p..(k * win + t + 1) * p]
                    .copy_from_slice(&f[k * p..(k + 1) * p]);
            }
        }
        out
    }

    fn window(&self, start: usize, win: usize) -> Window {
        Window {
            radar: self.radar_window(start, win),
            target: self.target_window(start, win),
            scene: self.scene,
        }
    }
}

/// How a detector is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainCfg {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// StepLR: the rate is multiplied by `lr_gamma` every `lr_step` epochs.
    pub lr_step: usize,
    pub lr_gamma: f64,
    /// Frames per window (T) and the stride between training windows.
    pub win: usize,
    pub train_stride: usize,
    /// SceneMix (spec §8.2) with this gate; `None` trains on the windows as they are.
    #[serde(default)]
    pub scene_mix: Option<MixGate>,
    /// List every dynamic-scene sequence twice (the authors' `double_hard`, spec §8.3).
    #[serde(default)]
    pub double_hard: bool,
}

impl TrainCfg {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(RadarError::Invalid(format!("training: {what}")));
        if self.epochs == 0 || self.batch_size == 0 || self.win == 0 || self.train_stride == 0 {
            return bad("epochs, batch_size, win and train_stride must be at least 1");
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !(positive(self.lr) && positive(self.lr_gamma)) || self.lr_step == 0 {
            return bad("lr and lr_gamma must be above 0 and lr_step at least 1");
        }
        Ok(())
    }

    fn lr_at(&self, epoch: usize) -> f64 {
        self.lr * self.lr_gamma.powi((epoch / self.lr_step) as i32)
    }
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainLog {
    /// Mean loss per epoch.
    pub epoch_loss: Vec<f64>,
    pub steps: usize,
    pub windows: usize,
    pub seconds: f64,
    /// Windows SceneMix changed: CropMix, Mix, noise injection.
    pub mixed: [usize; 3],
}

impl TrainLog {
    fn new(windows: usize) -> Self {
        Self {
            epoch_loss: Vec::new(),
            steps: 0,
            windows,
            seconds: 0.0,
            mixed: [0; 3],
        }
    }
}

/// Every training window `(sequence, start)` of `data`, dynamic sequences twice with
/// `double_hard`.
fn training_windows(data: &[SeqData], cfg: &TrainCfg) -> Result<Vec<(usize, usize)>> {
    let seqs: Vec<(usize, Scene)> = data.iter().enumerate().map(|(i, s)| (i, s.scene)).collect();
    let mut out = Vec::new();
    for (i, _) in oversample_hard(&seqs, cfg.double_hard) {
        if data[i].n_frames < cfg.win {
            continue;
        }
        for s in window_starts(data[i].n_frames, cfg.win, cfg.train_stride)? {
            out.push((i, s));
        }
    }
    if out.is_empty() {
        return Err(RadarError::Invalid(format!(
            "no training window: every sequence is shorter than the {}-frame window",
            cfg.win
        )));
    }
    Ok(out)
}

/// Optimiser steps per epoch of `cfg` on `data` (the last batch may be short).
pub fn steps_per_epoch(data: &[SeqData], cfg: &TrainCfg) -> Result<usize> {
    Ok(training_windows(data, cfg)?.len().div_ceil(cfg.batch_size))
}

fn tensor5(values: Vec<f32>, dims: [usize; 5], device: &Device) -> Tensor<5> {
    Tensor::<5>::from_data(TensorData::new(values, dims), device)
}

/// Trains `net` on `data` (fresh, or a copy to fine-tune), returning it with its log.
/// `on_step(done, total, loss)` reports progress.
pub fn train_detector(
    net: RadarNet,
    data: &[SeqData],
    cfg: &TrainCfg,
    seed: u64,
    device: &Device,
    on_step: impl FnMut(usize, usize, f64),
) -> Result<(RadarNet, TrainLog)> {
    cfg.validate()?;
    let started = Instant::now();
    let windows = training_windows(data, cfg)?;
    let first = &data[windows[0].0];
    let dims = WindowDims {
        t: cfg.win,
        r: first.rows,
        a: first.cols,
        c: first.channels,
    };
    if cfg.scene_mix.is_some() && dims.c <= N_CLASSES {
        return Err(RadarError::Invalid(
            "SceneMix needs the background channel (noise_channel = true)".into(),
        ));
    }
    let ad = device.clone().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7261_6461);
    let mut log = TrainLog::new(windows.len());
    let model = fit(
        net.to_device(&ad).train(),
        &windows,
        cfg,
        &mut rng,
        &mut log,
        |model: &RadarNet, batch, rng, log| {
            let b = batch.len();
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for &(i, s) in batch {
                let mut w = data[i].window(s, cfg.win);
                if let Some(gate) = cfg.scene_mix {
                    let l: MixLog = scene_mix(&mut w, dims, gate, rng, |r| {
                        let (j, t) = windows[r.random_range(0..windows.len())];
                        data[j].window(t, cfg.win)
                    });
                    log.mixed[0] += l.crop_mix as usize;
                    log.mixed[1] += l.mix as usize;
                    log.mixed[2] += l.noise as usize;
                }
                xs.extend(w.radar);
                ys.extend(w.target);
            }
            let x = tensor5(xs, [b, 2, dims.t, dims.r, dims.a], &ad);
            let y = tensor5(ys, [b, dims.c, dims.t, dims.r, dims.a], &ad);
            let outs = model.forward(x)?;
            model.loss(outs, y)
        },
        on_step,
    )?;
    log.seconds = started.elapsed().as_secs_f64();
    Ok((model.valid(), log))
}

/// The epoch loop both trainers share: the windows reshuffled every epoch, batches of
/// `cfg.batch_size`, one Adam step per batch at the StepLR rate, and an error at the first
/// non-finite loss. `loss_of` builds a batch's loss; it draws from the same generator as the
/// shuffle, so a seed fixes the whole run.
fn fit<M: Module>(
    mut model: M,
    windows: &[(usize, usize)],
    cfg: &TrainCfg,
    rng: &mut ChaCha8Rng,
    log: &mut TrainLog,
    mut loss_of: impl FnMut(&M, &[(usize, usize)], &mut ChaCha8Rng, &mut TrainLog) -> Result<Tensor<1>>,
    mut on_step: impl FnMut(usize, usize, f64),
) -> Result<M> {
    let mut optim = AdamConfig::new().init();
    let per_epoch = windows.len().div_ceil(cfg.batch_size);
    let total = per_epoch * cfg.epochs;
    let mut order = windows.to_vec();
    for epoch in 0..cfg.epochs {
        order.shuffle(rng);
        let mut sum = 0.0;
        for batch in order.chunks(cfg.batch_size) {
            let loss = loss_of(&model, batch, rng, log)?;
            let l = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                return Err(RadarError::NonFinite {
                    step: log.steps,
                    loss: l,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.lr_at(epoch), model, grads);
            sum += l;
            log.steps += 1;
            on_step(log.steps, total, l);
        }
        log.epoch_loss.push(sum / per_epoch as f64);
    }
    Ok(model)
}

/// The detections of one sequence (spec §9): windows every `stride` frames, averaged per
/// frame, post-processed as each frame becomes final. Frames after the last window get none.
pub fn detect_sequence(
    net: &RadarNet,
    seq: &SeqData,
    grid: &Grid,
    win: usize,
    stride: usize,
    post: &PostCfg,
    device: &Device,
) -> Result<Vec<Detection>> {
    let maps = predict_sequence(net, seq, win, stride, device)?;
    let mut dets = Vec::new();
    for (f, m) in maps {
        dets.extend(frame_detections(&m, f, grid, post));
    }
    Ok(dets)
}

/// The temporally averaged maps `(n_out, R, A)` of every covered frame, in order.
pub fn predict_sequence(
    net: &RadarNet,
    seq: &SeqData,
    win: usize,
    stride: usize,
    device: &Device,
) -> Result<Vec<(usize, Vec<f32>)>> {
    if seq.n_frames < win {
        return Ok(Vec::new());
    }
    let starts = window_starts(seq.n_frames, win, stride)?;
    let n_out = net.config().n_out;
    let mut avg = TemporalAverager::new(n_out, win, seq.plane());
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let x = tensor5(
            seq.radar_window(s, win),
            [1, 2, win, seq.rows, seq.cols],
            device,
        );
        let y = net.predict(x)?;
        let v: Vec<f32> = y
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| RadarError::Invalid(format!("prediction of {}: {e:?}", seq.name)))?;
        out.extend(avg.push(s, &v, starts.get(k + 1).copied()));
    }
    Ok(out)
}

/// Trains the scene classifier (spec §5.7) on windows labelled with their sequence's scene.
pub fn train_classifier(
    net: SceneClassifier,
    data: &[SeqData],
    cfg: &TrainCfg,
    seed: u64,
    device: &Device,
    on_step: impl FnMut(usize, usize, f64),
) -> Result<(SceneClassifier, TrainLog)> {
    cfg.validate()?;
    let started = Instant::now();
    let windows = training_windows(data, cfg)?;
    let ad = device.clone().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7363_656e);
    let mut log = TrainLog::new(windows.len());
    let (r, a) = (data[0].rows, data[0].cols);
    let model = fit(
        net.to_device(&ad).train(),
        &windows,
        cfg,
        &mut rng,
        &mut log,
        |model: &SceneClassifier, batch, _, _| {
            let b = batch.len();
            let mut xs = Vec::new();
            let mut labels = Vec::new();
            for &(i, s) in batch {
                xs.extend(data[i].radar_window(s, cfg.win));
                labels.push(data[i].scene.id() as i64);
            }
            let x = tensor5(xs, [b, 2, cfg.win, r, a], &ad);
            let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &ad);
            let logits = model.forward(x)?;
            Ok(burn::nn::loss::CrossEntropyLossConfig::new()
                .init(&ad)
                .forward(logits, y))
        },
        on_step,
    )?;
    log.seconds = started.elapsed().as_secs_f64();
    Ok((model.valid(), log))
}

/// The per-window scene predictions of a sequence, windows every `stride` frames.
pub fn classify_windows(
    net: &SceneClassifier,
    seq: &SeqData,
    win: usize,
    stride: usize,
    device: &Device,
) -> Result<Vec<Scene>> {
    if seq.n_frames < win {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for s in window_starts(seq.n_frames, win, stride)? {
        let x = tensor5(
            seq.radar_window(s, win),
            [1, 2, win, seq.rows, seq.cols],
            device,
        );
        let logits = net.forward(x)?;
        let k = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| RadarError::Invalid(format!("scene of {}: {e:?}", seq.name)))?;
        out.push(Scene::ALL[k[0] as usize]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{Arch, NetConfig};
    use crate::sensor::RadarConfig;
    use crate::sim::{simulate_sequence, SimConfig};

    fn small_grid_cfg() -> RadarConfig {
        RadarConfig {
            ramap_rsize: 32,
            ramap_asize: 32,
            ..RadarConfig::default()
        }
    }

    fn sim_seq(scene: Scene, frames: usize, seed: u64) -> SeqData {
        let mut cfg = SimConfig::for_scene(scene);
        cfg.radar = small_grid_cfg();
        cfg.frames = frames;
        let sim = simulate_sequence(&cfg, seed).unwrap();
        let grid = Grid::new(&cfg.radar);
        let frames: Vec<Vec<f32>> = sim.frames.iter().map(|f| f.chirps[0].clone()).collect();
        SeqData::new(
            format!("s{seed}"),
            scene,
            &frames,
            sim.objects(),
            &grid,
            true,
        )
        .unwrap()
    }

    fn cfg() -> TrainCfg {
        TrainCfg {
            epochs: 3,
            batch_size: 2,
            lr: 1e-3,
            lr_step: 10,
            lr_gamma: 0.1,
            win: 8,
            train_stride: 4,
            scene_mix: None,
            double_hard: false,
        }
    }

    #[test]
    fn windows_are_channel_time_planes_of_the_stored_frames() {
        let grid = Grid::new(&small_grid_cfg());
        let plane = 32 * 32;
        let frames: Vec<Vec<f32>> = (0..5)
            .map(|f| (0..2 * plane).map(|k| (f * 10_000 + k) as f32).collect())
            .collect();
        let s = SeqData::new("x", Scene::Highway, &frames, vec![], &grid, true).unwrap();
        let w = s.radar_window(1, 3);
        // Channel 1 (imaginary), time 2 = frame 3, pixel 5: stored index 2·5 + 1.
        assert_eq!(w[(3 + 2) * plane + 5], (3 * 10_000 + 11) as f32);
        assert_eq!(w[5], (10_000 + 10) as f32);
        let t = s.target_window(0, 2);
        assert_eq!(t.len(), 4 * 2 * plane);
        assert!(
            t[3 * 2 * plane..].iter().all(|&v| v == 1.0),
            "empty frames: background 1"
        );
        let bad = SeqData::new(
            "y",
            Scene::Highway,
            &frames[..1],
            vec![],
            &Grid::rod2021(),
            true,
        );
        assert!(bad.unwrap_err().to_string().contains("frame 0"));
    }

    #[test]
    fn a_tiny_cdc_learns_and_detects_only_in_covered_frames() {
        let device = Device::flex();
        let data = [
            sim_seq(Scene::ParkingLot, 20, 1),
            sim_seq(Scene::Highway, 20, 2),
        ];
        let net = NetConfig::new(Arch::Cdc, 4)
            .with_width(1.0 / 32.0)
            .with_seed(3)
            .init(&device)
            .unwrap();
        let mut c = cfg();
        c.epochs = 4;
        c.lr = 3e-3;
        let (net, log) = train_detector(net, &data, &c, 0, &device, |_, _, _| {}).unwrap();
        assert_eq!(log.windows, 2 * 4);
        assert!(
            log.epoch_loss[3] < log.epoch_loss[0],
            "loss {:?}",
            log.epoch_loss
        );
        let grid = Grid::new(&small_grid_cfg());
        let post = PostCfg {
            peak_thres: 0.0,
            ..Default::default()
        };
        let maps = predict_sequence(&net, &data[0], 8, 4, &device).unwrap();
        let frames: Vec<usize> = maps.iter().map(|(f, _)| *f).collect();
        assert_eq!(frames, (0..20).collect::<Vec<_>>());
        let short = SeqData {
            n_frames: 18,
            ..data[0].clone()
        };
        let dets = detect_sequence(&net, &short, &grid, 8, 8, &post, &device).unwrap();
        assert!(
            dets.iter().all(|d| d.frame < 16),
            "frames 16, 17 are never covered"
        );
    }

    #[test]
    fn scene_mix_runs_and_is_counted_and_nan_input_is_an_error() {
        let device = Device::flex();
        let data = [
            sim_seq(Scene::ParkingLot, 12, 1),
            sim_seq(Scene::CampusRoad, 12, 2),
        ];
        let net = || {
            NetConfig::new(Arch::Cdc, 4)
                .with_width(1.0 / 32.0)
                .init(&device)
                .unwrap()
        };
        let mut c = cfg();
        c.epochs = 1;
        c.scene_mix = Some(MixGate::Group);
        let (_, log) = train_detector(net(), &data, &c, 0, &device, |_, _, _| {}).unwrap();
        assert_eq!(log.mixed[0] + log.mixed[1], log.windows);
        let mut broken = data[0].clone();
        broken.frames[7] = f32::NAN;
        let err = train_detector(net(), &[broken], &cfg(), 0, &device, |_, _, _| {});
        assert!(matches!(err, Err(RadarError::NonFinite { .. })), "{err:?}");
    }
    #[test]
    fn the_scene_classifier_routes_trivially_separable_scenes() {
        use crate::nets::SceneClassifierConfig;
        use rand::SeedableRng;
        let device = Device::flex();
        let grid = Grid::new(&small_grid_cfg());
        let plane = 32 * 32;
        // Scene k's frames hold noise around the level k: a classifier that learns anything
        // routes every sequence right, unless labels and predictions disagree on the order.
        let seq = |scene: Scene, seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let frames: Vec<Vec<f32>> = (0..16)
                .map(|_| {
                    (0..2 * plane)
                        .map(|_| scene.id() as f32 + rng.random_range(-0.3..0.3))
                        .collect()
                })
                .collect();
            SeqData::new(
                format!("{}{seed}", scene.code()),
                scene,
                &frames,
                vec![],
                &grid,
                true,
            )
            .unwrap()
        };
        let train: Vec<SeqData> = Scene::ALL.iter().map(|&s| seq(s, 1)).collect();
        let cls = SceneClassifierConfig {
            width: 1.0 / 16.0,
            seed: 0,
            ..SceneClassifierConfig::default()
        }
        .init(&device)
        .unwrap();
        let cfg = TrainCfg {
            epochs: 30,
            batch_size: 4,
            lr: 3e-3,
            ..cfg()
        };
        let (cls, _) = train_classifier(cls, &train, &cfg, 0, &device, |_, _, _| {}).unwrap();
        for scene in Scene::ALL {
            let votes = classify_windows(&cls, &seq(scene, 7), 8, 4, &device).unwrap();
            assert_eq!(crate::scene::scene_vote(&votes), Some(scene), "{votes:?}");
        }
    }

    /// Seconds per training window of the mini candidates (run by hand to size profiles):
    /// `cargo test --release -p kiln-radar --lib mini_step_times -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand: prints seconds, asserts nothing about speed"]
    fn mini_step_times() {
        let name = std::env::var("KILN_BENCH_DEVICE").unwrap_or_else(|_| "flex".into());
        let device = kiln_core::parse_device(&name).unwrap();
        println!("device {name}");
        let archs = [Arch::Cdc, Arch::Hg { stacks: 1 }, Arch::Hgwi, Arch::C21d];
        for (t, r) in [(8, 64)] {
            for width in [1.0 / 16.0, 1.0 / 8.0] {
                for arch in archs {
                    let net = NetConfig::new(arch, 4)
                        .with_width(width)
                        .init(&device)
                        .unwrap();
                    let ad = device.clone().autodiff();
                    let model = net.to_device(&ad).train();
                    let b = 4;
                    let x = tensor5(vec![0.5; b * 2 * t * r * r], [b, 2, t, r, r], &ad);
                    let y = tensor5(vec![0.5; b * 4 * t * r * r], [b, 4, t, r, r], &ad);
                    let mut times = Vec::new();
                    for _ in 0..2 {
                        let start = Instant::now();
                        let outs = model.forward(x.clone()).unwrap();
                        let loss = model.loss(outs, y.clone()).unwrap();
                        let _ = loss.backward();
                        times.push(start.elapsed().as_secs_f64() / b as f64);
                    }
                    println!(
                        "T={t} R=A={r} width={width:.4} {}: {:.3} s/window",
                        arch.name(),
                        times[1]
                    );
                }
            }
        }
    }
    /// Whether a (kt, 5, 5) Conv3d is faster on a backend as one conv2d over the time-shifted
    /// frames stacked along channels (run by hand: `KILN_BENCH_DEVICE=flex cargo test --release
    /// -p kiln-radar --lib conv3d_as_conv2d_times -- --ignored --nocapture`).
    #[test]
    #[ignore = "timing, run by hand: prints seconds, asserts nothing about speed"]
    fn conv3d_as_conv2d_times() {
        use burn::tensor::module::{conv2d, conv3d};
        use burn::tensor::ops::ConvOptions;
        use burn::tensor::Distribution;
        let name = std::env::var("KILN_BENCH_DEVICE").unwrap_or_else(|_| "flex".into());
        let device = kiln_core::parse_device(&name).unwrap();
        let ad = device.clone().autodiff();
        for (b, c, o, t, r) in [(4, 4, 4, 8, 32), (4, 8, 8, 8, 32), (2, 8, 8, 16, 64)] {
            let x = Tensor::<5>::random([b, c, t, r, r], Distribution::Normal(0.0, 1.0), &ad)
                .require_grad();
            let w = Tensor::<5>::random([o, c, 9, 5, 5], Distribution::Normal(0.0, 0.1), &ad)
                .require_grad();
            let time = |f: &dyn Fn() -> Tensor<5>| {
                let mut v = Vec::new();
                for _ in 0..3 {
                    let start = Instant::now();
                    let y = f();
                    let _ = y.sum().backward();
                    v.push(start.elapsed().as_secs_f64());
                }
                v[2]
            };
            let direct = || {
                conv3d(
                    x.clone(),
                    w.clone(),
                    None,
                    ConvOptions::new([1, 1, 1], [4, 2, 2], [1, 1, 1], 1),
                )
            };
            let stacked = || {
                // [b, c, t + 8, r, r] → 9 shifted windows stacked on channels, frames on batch.
                let xp = x.clone().pad([(0, 0), (0, 0), (4, 4), (0, 0), (0, 0)], 0.0);
                let parts: Vec<Tensor<5>> = (0..9).map(|dt| xp.clone().narrow(2, dt, t)).collect();
                let xs = Tensor::cat(parts, 1) // [b, 9c, t, r, r] (dt-major)
                    .swap_dims(1, 2)
                    .reshape([b * t, 9 * c, r, r]);
                let ws = w.clone().swap_dims(1, 2).reshape([o, 9 * c, 5, 5]);
                conv2d(xs, ws, None, ConvOptions::new([1, 1], [2, 2], [1, 1], 1))
                    .reshape([b, t, o, r, r])
                    .swap_dims(1, 2)
            };
            let same = (direct() - stacked()).abs().max().into_scalar::<f32>();
            println!(
                "{name} x[{b},{c},{t},{r},{r}] w[{o},{c},9,5,5]: conv3d {:.4} s, stacked conv2d {:.4} s (fwd+bwd), max diff {same:.2e}",
                time(&direct),
                time(&stacked)
            );
        }
    }
}
