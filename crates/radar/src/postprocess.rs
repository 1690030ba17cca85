//! From predicted ConfMaps to detections (spec §9): sliding-window temporal averaging, peak
//! detection, location-based NMS per class, the class merge, and the authors' voting ensemble.
//!
//! Deliberate fixes of the reference code:
//! * L-NMS filters the remaining peaks properly; RODNet's version deletes from the list it is
//!   iterating over and so keeps some peaks it meant to suppress (pitfall 5);
//! * OLS in L-NMS takes the higher-scoring peak first, whose range sets the scale (pitfall 12);
//! * scores are clipped to at most 1 before they leave this module (pitfall 1: MSE-trained
//!   heads exceed 1 and the devkit rejects such a submission).

use crate::confmap::{frame_confmap, N_CLASSES};
use crate::eval::ols;
use crate::labels::Detection;
use crate::sensor::{Grid, ObjectClass};

/// Post-processing settings (the authors' defaults; spec §7 "Inference/post-processing").
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PostCfg {
    /// A peak must exceed this confidence.
    pub peak_thres: f64,
    /// L-NMS removes a same-class peak whose OLS to a kept one exceeds this.
    pub ols_thres: f64,
    /// At most this many detections per class after L-NMS, and per frame after the merge.
    pub max_dets: usize,
}

impl Default for PostCfg {
    fn default() -> Self {
        Self {
            peak_thres: 0.3,
            ols_thres: 0.3,
            max_dets: 20,
        }
    }
}

/// A local maximum of one class map: row, column, value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    pub row: usize,
    pub col: usize,
    pub score: f32,
}

/// The peaks of one `(rows, cols)` class map (spec §9.2): a pixel at least 1 row and 2 columns
/// from the border, above `thres`, and strictly greater than every other pixel of its 3 × 5
/// (rows × columns) neighbourhood, so a plateau of equal maxima gives no peak. Row-major order.
pub fn peaks(map: &[f32], rows: usize, cols: usize, thres: f64) -> Vec<Peak> {
    let mut out = Vec::new();
    if rows < 3 || cols < 5 {
        return out;
    }
    for h in 1..rows - 1 {
        for w in 2..cols - 2 {
            let v = map[h * cols + w];
            if (v as f64) <= thres {
                continue;
            }
            let unique = (h - 1..=h + 1)
                .all(|i| (w - 2..=w + 2).all(|j| (i == h && j == w) || map[i * cols + j] < v));
            if unique {
                out.push(Peak {
                    row: h,
                    col: w,
                    score: v,
                });
            }
        }
    }
    out
}

/// Location-based NMS of one class's peaks (spec §9.3): by descending score (stable), keep the
/// best, drop every remaining peak whose OLS to it exceeds `cfg.ols_thres`, until none is left
/// or `cfg.max_dets` are kept.
pub fn lnms(peaks: &[Peak], class: ObjectClass, grid: &Grid, cfg: &PostCfg) -> Vec<Peak> {
    let mut rest: Vec<Peak> = peaks.to_vec();
    rest.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = Vec::new();
    while !rest.is_empty() && kept.len() < cfg.max_dets {
        let best = rest.remove(0);
        let at = grid.idx2ra(best.row, best.col);
        rest.retain(|q| ols(at, grid.idx2ra(q.row, q.col), class) <= cfg.ols_thres);
        kept.push(best);
    }
    kept
}

/// The detections of one frame from its maps `(C ≥ 3, rows, cols)` (a background channel, if
/// any, is ignored): peaks and L-NMS per class, then all classes together by descending score,
/// the best `max_dets` kept, with no cross-class suppression (spec §9.4).
pub fn frame_detections(maps: &[f32], frame: usize, grid: &Grid, cfg: &PostCfg) -> Vec<Detection> {
    let (rows, cols) = (grid.rows(), grid.cols());
    let plane = rows * cols;
    let mut dets = Vec::new();
    for class in ObjectClass::ALL {
        let map = &maps[class.id() * plane..(class.id() + 1) * plane];
        for p in lnms(&peaks(map, rows, cols, cfg.peak_thres), class, grid, cfg) {
            let (range, angle) = grid.idx2ra(p.row, p.col);
            dets.push(Detection {
                frame,
                range,
                angle,
                class,
                score: (p.score as f64).min(1.0),
            });
        }
    }
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    dets.truncate(cfg.max_dets);
    dets
}

/// Running per-frame averages over overlapping windows (spec §9.1). Windows arrive in order of
/// their start; a frame is final once no later window can cover it, and is handed out exactly
/// once. Frames past the last window's end are never covered and get no detections
/// (pitfall 7: they count as misses).
pub struct TemporalAverager {
    plane: usize,
    channels: usize,
    win: usize,
    /// First frame not yet handed out.
    next: usize,
    /// Frame → (running mean `(C, R, A)`, number of windows averaged).
    open: std::collections::BTreeMap<usize, (Vec<f32>, u32)>,
}

impl TemporalAverager {
    /// For windows of `win` frames of `channels` maps of `plane` pixels.
    pub fn new(channels: usize, win: usize, plane: usize) -> Self {
        Self {
            plane,
            channels,
            win,
            next: 0,
            open: Default::default(),
        }
    }

    /// Adds the model output `(C, T, R, A)` of the window starting at `start`, and returns the
    /// frames that are final once `next_start` (the next window's start, `None` after the last)
    /// is known, each `(frame, (C, R, A) mean)`, in order.
    pub fn push(
        &mut self,
        start: usize,
        window: &[f32],
        next_start: Option<usize>,
    ) -> Vec<(usize, Vec<f32>)> {
        let (c, t, p) = (self.channels, self.win, self.plane);
        assert_eq!(window.len(), c * t * p, "window of {c}×{t}×{p} values");
        for dt in 0..t {
            let f = start + dt;
            if f < self.next {
                continue;
            }
            let (mean, n) = self.open.entry(f).or_insert_with(|| (vec![0.0; c * p], 0));
            let w = *n as f32;
            for k in 0..c {
                let src = &window[(k * t + dt) * p..(k * t + dt + 1) * p];
                let dst = &mut mean[k * p..(k + 1) * p];
                for (m, &x) in dst.iter_mut().zip(src) {
                    *m = (*m * w + x) / (w + 1.0);
                }
            }
            *n += 1;
        }
        let until = next_start.unwrap_or(usize::MAX);
        let done: Vec<usize> = self.open.range(..until).map(|(&f, _)| f).collect();
        let mut out = Vec::with_capacity(done.len());
        for f in done {
            if let Some((mean, _)) = self.open.remove(&f) {
                out.push((f, mean));
                self.next = f + 1;
            }
        }
        out
    }
}

/// The authors' ensemble (`tools/ensemble.py`, spec §9.5) for one frame: each model's
/// detections become a ConfMap with a unit peak per detection (scores ignored), the maps are
/// averaged, and peaks, L-NMS and the merge run on the average. A place k of M models detected
/// thus scores about k/M; with `cfg.peak_thres` = 0.33 a third of the models must agree.
pub fn ensemble_frame(
    per_model: &[Vec<Detection>],
    frame: usize,
    grid: &Grid,
    cfg: &PostCfg,
) -> Vec<Detection> {
    let plane = grid.rows() * grid.cols();
    let mut mean = vec![0.0f32; N_CLASSES * plane];
    if per_model.is_empty() {
        return Vec::new();
    }
    for dets in per_model {
        let cm = frame_confmap(
            dets.iter().map(|d| (d.class, d.range, d.angle)),
            grid,
            false,
        );
        for (m, x) in mean.iter_mut().zip(cm) {
            *m += x / per_model.len() as f32;
        }
    }
    frame_detections(&mean, frame, grid, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Object;
    use ObjectClass::*;

    fn blob(rows: usize, cols: usize, h: usize, w: usize, peak: f32) -> Vec<f32> {
        let mut m = vec![0.0f32; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                let d = ((i as f32 - h as f32).powi(2) + (j as f32 - w as f32).powi(2)) / 8.0;
                m[i * cols + j] = peak * (-d).exp();
            }
        }
        m
    }

    #[test]
    fn one_blob_one_peak_at_its_centre() {
        let m = blob(32, 32, 10, 20, 0.9);
        assert_eq!(
            peaks(&m, 32, 32, 0.3),
            [Peak {
                row: 10,
                col: 20,
                score: 0.9
            }]
        );
        assert!(peaks(&m, 32, 32, 0.9).is_empty(), "value ≤ threshold");
    }

    #[test]
    fn a_plateau_of_two_equal_maxima_gives_no_peak() {
        let mut m = vec![0.0f32; 16 * 16];
        m[5 * 16 + 7] = 0.8;
        m[5 * 16 + 8] = 0.8;
        assert!(peaks(&m, 16, 16, 0.3).is_empty());
        // Two columns apart is still the same 3×5 neighbourhood; three apart is not.
        m[5 * 16 + 8] = 0.0;
        m[5 * 16 + 9] = 0.8;
        assert!(peaks(&m, 16, 16, 0.3).is_empty());
        m[5 * 16 + 9] = 0.0;
        m[5 * 16 + 10] = 0.8;
        assert_eq!(peaks(&m, 16, 16, 0.3).len(), 2);
        // Borders: row 0 and column 1 are never peaks.
        let mut e = vec![0.0f32; 16 * 16];
        e[3] = 0.9;
        e[5 * 16 + 1] = 0.9;
        assert!(peaks(&e, 16, 16, 0.3).is_empty());
    }

    #[test]
    fn lnms_merges_close_same_class_peaks_only() {
        let g = Grid::rod2021();
        let cfg = PostCfg::default();
        // Two peaks ~0.2 m apart at 10 m (adjacent range rows): OLS ≈ 0.99 > 0.3.
        let (i, j) = g.ra2idx(10.0, 0.0);
        let p = [
            Peak {
                row: i,
                col: j,
                score: 0.8,
            },
            Peak {
                row: i + 1,
                col: j,
                score: 0.9,
            },
        ];
        let kept = lnms(&p, Pedestrian, &g, &cfg);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].score, 0.9);
        // Different classes are never suppressed against each other.
        let mut maps = vec![0.0f32; 3 * 128 * 128];
        for (k, (r, c)) in [(i, j), (i + 1, j)].into_iter().enumerate() {
            let b = blob(128, 128, r, c, 0.8 - 0.1 * k as f32);
            maps[k * 128 * 128..(k + 1) * 128 * 128].copy_from_slice(&b);
        }
        let dets = frame_detections(&maps, 0, &g, &cfg);
        assert_eq!(dets.len(), 2);
        assert_eq!((dets[0].class, dets[1].class), (Pedestrian, Cyclist));
    }

    #[test]
    fn lnms_keeps_what_the_in_loop_deletion_bug_would_drop_correctly() {
        // Three peaks in a row 1 bin apart at 10 m: the best removes both others. RODNet's
        // in-loop deletion skips the element after each removal and keeps one of them.
        let g = Grid::rod2021();
        let (i, j) = g.ra2idx(10.0, 0.0);
        let p: Vec<Peak> = (0..3)
            .map(|k| Peak {
                row: i + k,
                col: j,
                score: 0.9 - 0.1 * k as f32,
            })
            .collect();
        assert_eq!(lnms(&p, Car, &g, &PostCfg::default()).len(), 1);
    }

    #[test]
    fn at_most_max_dets_per_frame_and_scores_clipped() {
        let g = Grid::rod2021();
        let mut maps = vec![0.0f32; 3 * 128 * 128];
        // 3 classes × 12 isolated single-pixel peaks above 1.
        for k in 0..3 {
            for n in 0..12 {
                maps[k * 128 * 128 + (5 + 10 * n) * 128 + 10 + 30 * k] = 1.5 + n as f32 * 0.01;
            }
        }
        let dets = frame_detections(&maps, 3, &g, &PostCfg::default());
        assert_eq!(dets.len(), 20);
        assert!(dets.iter().all(|d| d.score == 1.0 && d.frame == 3));
    }

    #[test]
    fn constant_model_averages_to_the_constant_and_each_frame_is_final_once() {
        let (c, t, p) = (2, 16, 6);
        let n_frames = 45;
        let starts: Vec<usize> = (0..).step_by(8).take_while(|s| s + t <= n_frames).collect();
        let mut avg = TemporalAverager::new(c, t, p);
        let mut seen = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let out = avg.push(s, &vec![0.37; c * t * p], starts.get(k + 1).copied());
            for (f, m) in out {
                assert!(m.iter().all(|&v| (v - 0.37).abs() < 1e-6));
                seen.push(f);
            }
        }
        let last = starts.last().unwrap() + t;
        assert_eq!(seen, (0..last).collect::<Vec<_>>());
        // Interior frames average their two windows.
        let mut avg = TemporalAverager::new(1, 4, 1);
        assert!(avg.push(0, &[1.0, 1.0, 1.0, 1.0], Some(2)).len() == 2);
        let out = avg.push(2, &[3.0, 3.0, 3.0, 3.0], None);
        assert_eq!(
            out,
            [
                (2, vec![2.0]),
                (3, vec![2.0]),
                (4, vec![3.0]),
                (5, vec![3.0])
            ]
        );
    }

    #[test]
    fn ensemble_of_identical_lists_reproduces_each_location_with_score_one() {
        let g = Grid::rod2021();
        let objs = [
            Object {
                frame: 0,
                range: 12.0,
                angle: 0.3,
                class: Car,
            },
            Object {
                frame: 0,
                range: 5.0,
                angle: -0.4,
                class: Pedestrian,
            },
        ];
        let dets: Vec<Detection> = objs
            .iter()
            .map(|o| {
                let (i, j) = g.ra2idx(o.range, o.angle);
                let (range, angle) = g.idx2ra(i, j);
                Detection {
                    frame: 0,
                    range,
                    angle,
                    class: o.class,
                    score: 0.6,
                }
            })
            .collect();
        let cfg = PostCfg {
            peak_thres: 0.33,
            ..Default::default()
        };
        let out = ensemble_frame(&[dets.clone(), dets.clone(), dets.clone()], 0, &g, &cfg);
        assert_eq!(out.len(), 2);
        for d in &dets {
            assert!(out.iter().any(|o| o.class == d.class
                && o.range == d.range
                && o.angle == d.angle
                && (o.score - 1.0).abs() < 1e-6));
        }
        // One model of four alone (0.25) is below 0.33: dropped; one of three (1/3) passes.
        let lone = ensemble_frame(&[dets.clone(), vec![], vec![], vec![]], 0, &g, &cfg);
        assert!(lone.is_empty());
        let third = ensemble_frame(&[dets.clone(), vec![], vec![]], 0, &g, &cfg);
        assert_eq!(third.len(), 2);
    }
}
