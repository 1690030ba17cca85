//! The ROD2021 evaluation (cruw-devkit `cruw/eval/rod`, spec §10), step for step as the devkit
//! at 7e9317d computes it (`read_gt_txt`/`read_sub_txt`, `compute_ols_dts_gts`, `evaluate_img`,
//! `accumulate`, `summarize`, the loop of `evaluate_rod2021`):
//! 1. per sequence, keep the objects and detections inside the region: range in [1, 25] m and
//!    azimuth in [−60°, 60°], both ends included, no tolerance (the devkit's `rng > 25 or rng < 1`,
//!    `agl > radians(60) or agl < radians(-60)` drop); the positions are the txt's metric values,
//!    **not** snapped to the grid (the limits come from the [`Region`]; for ROD2021,
//!    [`Region::rod2021`], they are the devkit's hard-coded 1, 25 and 60°);
//! 2. per frame and class, with the frames in order: skip it when it has neither ground truth nor
//!    detections; sort the detections by score, descending and stable (file order among ties);
//!    for each OLS threshold t ∈ {0.50, 0.55, …, 0.90} and each detection in that order, match
//!    the not-yet-matched ground truth of highest OLS ≥ t, the **later** one in file order on a
//!    tie (the devkit's `if olss < iou: continue` lets an equal value replace the best so far);
//!    OLS is [`ols`]`(gt, det)`, scaled by the ground truth's range;
//! 3. per class, pool the evaluated frames of **all** sequences (spec pitfall 6), the sequences
//!    in the order of their sorted file names `<name>.txt` as the devkit lists its directory;
//!    sort the pooled scores descending and stable; per threshold, cumulative TP and FP,
//!    rc = TP / (n_gt + ε) and pr = TP / (TP + FP + ε) with ε = 2⁻⁵² (`np.spacing(1)`), pr made
//!    non-increasing from the right, precision at recall r ∈ {0, 0.01, …, 1} = pr at the first
//!    index with rc ≥ r, 0 from the first r that is never reached; recall = the last rc, 0 without
//!    detections;
//! 4. a class with neither ground truth nor detections anywhere is left out (the devkit's −1); a
//!    class with detections but no ground truth is evaluated (all zeros) and weighs 0;
//! 5. the 12 statistics: AP = Σ_c (n_gt,c / N_gt) · mean over (t, r) of precision_c; AP@t the
//!    same at one t ∈ {0.5, 0.6, 0.7, 0.8, 0.9}; AR and AR@t the same with the per-threshold
//!    recall.
//!
//! Quirks kept because the leaderboard numbers have them: with ε, a class with exactly **one**
//! ground-truth object never reaches recall 1 (1/(1 + ε) < 1), so even a perfect detection of it
//! scores AP_c = 100/101; for two or more objects n_gt + ε rounds to n_gt.
//!
//! Deliberate choices where the devkit is silent or fails:
//! * a detection score above 1 is an error naming the sequence and frame (spec pitfall 1). The
//!   devkit raises only when such a detection meets a ground truth of its class in its frame;
//!   kiln refuses it wherever it is, since a result that depends on where a bad score lands is
//!   not one to report. Scores below 0 rank as the devkit ranks them;
//! * an object or detection in a frame at or beyond the sequence's frame count is an error (the
//!   devkit's reader raises `IndexError`); non-finite values are errors (the devkit would keep a
//!   NaN position, as no comparison drops it);
//! * no ground truth inside the region in any evaluated sequence is an error: AP and AR are
//!   undefined (the devkit prints 0 without detections and NaN with them).

use std::collections::BTreeMap;

use super::labels::{Detection, Object};
use super::{ObjectClass, Region};
use crate::error::DataError;

type Result<T> = std::result::Result<T, DataError>;

/// Object location similarity of `b` to `a` (spec §10.1, devkit `get_ols_btw_objects`): with
/// Cartesian positions, OLS = exp(−‖a − b‖² / (2·s²·κ)), s = the range of `a`, κ = size/100.
/// Not symmetric: the scale comes from the first argument (the ground truth in the evaluation,
/// the higher-scoring peak in L-NMS).
pub fn ols(a: (f64, f64), b: (f64, f64), class: ObjectClass) -> f64 {
    let (xa, ya) = (a.0 * a.1.sin(), a.0 * a.1.cos());
    let (xb, yb) = (b.0 * b.1.sin(), b.0 * b.1.cos());
    let dist2 = (xa - xb).powi(2) + (ya - yb).powi(2);
    let s2 = xa * xa + ya * ya;
    let kappa = class.size() / 100.0;
    (-dist2 / (2.0 * s2 * kappa)).exp()
}

/// The nine OLS thresholds, as the devkit's `np.around(np.linspace(0.5, 0.9, 9), 2)`.
pub const OLS_THRESHOLDS: [f64; 9] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9];

/// The 101 recall thresholds 0, 0.01, …, 1 (`np.around(np.linspace(0, 1, 101), 2)`).
pub const N_RECALL_THRESHOLDS: usize = 101;

/// The i-th recall threshold: i/100 rounds to the same double as the devkit's `np.around`.
pub fn recall_threshold(i: usize) -> f64 {
    i as f64 / 100.0
}

/// The names of [`RodStats::stats`], in the devkit's `_summarizeKps` order.
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP@0.5", "AP@0.6", "AP@0.7", "AP@0.8", "AP@0.9", "AR", "AR@0.5", "AR@0.6", "AR@0.7",
    "AR@0.8", "AR@0.9",
];

/// Indices into [`OLS_THRESHOLDS`] of 0.5, 0.6, 0.7, 0.8, 0.9 (the AP@t and AR@t statistics).
const STAT_THRESHOLDS: [usize; 5] = [0, 2, 4, 6, 8];

const N_T: usize = OLS_THRESHOLDS.len();

/// NumPy's `np.spacing(1)`, the devkit's guard against dividing by zero.
const EPS: f64 = f64::EPSILON;

/// One sequence to evaluate: its labels, its detections and its frame count (the number of
/// radar files / 4, spec §10.4; the devkit's `n_frame`).
#[derive(Debug, Clone, Copy)]
pub struct SequenceInput<'a> {
    pub name: &'a str,
    pub n_frames: usize,
    pub gt: &'a [Object],
    pub dets: &'a [Detection],
}

/// One class's evaluation over the pooled frames.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassStats {
    pub class: ObjectClass,
    /// Ground-truth objects inside the region: this class's weight in the overall numbers.
    pub n_gt: usize,
    /// Detections inside the region.
    pub n_det: usize,
    /// Mean of `precision` over thresholds and recall levels.
    pub ap: f64,
    /// Mean of `recall` over thresholds.
    pub ar: f64,
    /// Interpolated precision, `[threshold][recall level]` (9 × 101): the PR curve per OLS
    /// threshold against [`recall_threshold`].
    pub precision: Vec<Vec<f64>>,
    /// Final recall per OLS threshold (9).
    pub recall: Vec<f64>,
}

/// The ROD2021 statistics of a set of sequences evaluated together.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RodStats {
    /// The devkit's 12 statistics as fractions, named by [`STAT_NAMES`].
    pub stats: [f64; 12],
    /// The evaluated classes in class order; a class with neither ground truth nor detections
    /// in the region is absent.
    pub classes: Vec<ClassStats>,
    /// Ground-truth objects inside the region, all classes.
    pub n_gt: usize,
    /// Frames of all sequences together.
    pub n_frames: usize,
    /// The sequences, in the order their frames were pooled.
    pub sequences: Vec<String>,
}

impl RodStats {
    /// AP over the nine OLS thresholds, GT-count-weighted over classes.
    pub fn ap(&self) -> f64 {
        self.stats[0]
    }

    /// AR over the nine OLS thresholds, GT-count-weighted over classes.
    pub fn ar(&self) -> f64 {
        self.stats[6]
    }

    pub fn class(&self, class: ObjectClass) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.class == class)
    }
}

/// The evaluation of all sequences and of each scene's subset (spec §10.4); `K` is the scene
/// key (kiln-radar's `Scene`), generic so that the metric does not depend on the radar crate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SceneBreakdown<K> {
    pub overall: RodStats,
    /// Scenes with at least one sequence, in key order.
    pub scenes: Vec<(K, RodStats)>,
    /// Sequences without a scene: in `overall` only.
    pub unassigned: Vec<String>,
}

/// The ROD2021 metric of `seqs` evaluated together, frames pooled across sequences as the
/// official server does (so it is not the mean of per-sequence numbers), inside `region`.
pub fn evaluate(seqs: &[SequenceInput], region: &Region) -> Result<RodStats> {
    let mut order: Vec<&SequenceInput> = seqs.iter().collect();
    order.sort_by_cached_key(|s| format!("{}.txt", s.name));
    for w in order.windows(2) {
        if w[0].name == w[1].name {
            return Err(DataError::Invalid(format!(
                "sequence {} is given twice: evaluate each sequence once",
                w[0].name
            )));
        }
    }
    let mut pools: [ClassPool; 3] = Default::default();
    for seq in &order {
        match_sequence(seq, region, &mut pools)?;
    }
    let classes: Vec<ClassStats> = ObjectClass::ALL
        .into_iter()
        .zip(&pools)
        .filter(|(_, p)| p.evaluated)
        .map(|(c, p)| accumulate(c, p))
        .collect();
    let n_gt: usize = classes.iter().map(|c| c.n_gt).sum();
    if n_gt == 0 {
        let names: Vec<&str> = order.iter().map(|s| s.name).collect();
        return Err(DataError::Invalid(format!(
            "no ground-truth object inside the evaluated region in sequences {names:?}: AP and \
             AR are undefined; evaluate sequences that have labels"
        )));
    }
    let weighted = |f: &dyn Fn(&ClassStats) -> f64| -> f64 {
        classes
            .iter()
            .map(|c| c.n_gt as f64 / n_gt as f64 * f(c))
            .sum()
    };
    let mut stats = [0.0; 12];
    stats[0] = weighted(&|c| c.ap);
    stats[6] = weighted(&|c| c.ar);
    for (k, &t) in STAT_THRESHOLDS.iter().enumerate() {
        stats[1 + k] = weighted(&|c| mean(&c.precision[t]));
        stats[7 + k] = weighted(&|c| c.recall[t]);
    }
    Ok(RodStats {
        stats,
        classes,
        n_gt,
        n_frames: order.iter().map(|s| s.n_frames).sum(),
        sequences: order.iter().map(|s| s.name.to_string()).collect(),
    })
}

/// [`evaluate`] on all `seqs` and on each scene's sequences (`scene_of` maps a sequence name to
/// its scene, e.g. kiln-radar's `Scene::of_rod2021_sequence`).
pub fn evaluate_by_scene<K: Ord + Copy>(
    seqs: &[SequenceInput],
    scene_of: impl Fn(&str) -> Option<K>,
    region: &Region,
) -> Result<SceneBreakdown<K>> {
    let overall = evaluate(seqs, region)?;
    let mut by_scene: BTreeMap<K, Vec<SequenceInput>> = BTreeMap::new();
    for s in seqs {
        if let Some(k) = scene_of(s.name) {
            by_scene.entry(k).or_default().push(*s);
        }
    }
    let mut scenes = Vec::new();
    for (scene, subset) in by_scene {
        scenes.push((scene, evaluate(&subset, region)?));
    }
    let unassigned = seqs
        .iter()
        .filter(|s| scene_of(s.name).is_none())
        .map(|s| s.name.to_string())
        .collect();
    Ok(SceneBreakdown {
        overall,
        scenes,
        unassigned,
    })
}

/// One class's ranked detections over the evaluated frames of all sequences, in pooling order.
#[derive(Default)]
struct ClassPool {
    /// Some frame had a ground truth or a detection of the class (the devkit's non-empty `E`).
    evaluated: bool,
    n_gt: usize,
    scores: Vec<f64>,
    /// Per detection: matched at each OLS threshold.
    matched: Vec<[bool; N_T]>,
}

/// The devkit's region filter, ends included and without tolerance.
fn in_region(region: &Region, range: f64, angle: f64) -> bool {
    let (lo, hi) = region.range;
    !(range > hi || range < lo || angle > region.angle_limit || angle < -region.angle_limit)
}

/// Ground truth (range, angle) and detections (range, angle, score) of one frame and class, in
/// file order.
type FrameClass = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

fn match_sequence(seq: &SequenceInput, region: &Region, pools: &mut [ClassPool; 3]) -> Result<()> {
    let bad = |what: String| {
        DataError::Invalid(format!(
            "sequence {} ({} frames): {what}",
            seq.name, seq.n_frames
        ))
    };
    let mut cells: BTreeMap<(usize, usize), FrameClass> = BTreeMap::new();
    for (i, o) in seq.gt.iter().enumerate() {
        if o.frame >= seq.n_frames {
            return Err(bad(format!(
                "ground-truth object {i} is in frame {}, past the last frame: check the frame \
                 count (radar files / 4)",
                o.frame
            )));
        }
        if !(o.range.is_finite() && o.angle.is_finite()) {
            return Err(bad(format!(
                "ground-truth object {i} in frame {} has a non-finite position",
                o.frame
            )));
        }
        if in_region(region, o.range, o.angle) {
            let cell = cells.entry((o.frame, o.class.id())).or_default();
            cell.0.push((o.range, o.angle));
        }
    }
    for (i, d) in seq.dets.iter().enumerate() {
        if d.frame >= seq.n_frames {
            return Err(bad(format!(
                "detection {i} is in frame {}, past the last frame: check the frame count \
                 (radar files / 4)",
                d.frame
            )));
        }
        if !(d.range.is_finite() && d.angle.is_finite() && d.score.is_finite()) {
            return Err(bad(format!(
                "detection {i} in frame {} has a non-finite position or score",
                d.frame
            )));
        }
        if d.score > 1.0 {
            return Err(bad(format!(
                "detection {i} in frame {} has score {} > 1: clip scores to [0, 1] (spec pitfall \
                 1; the devkit's OLS raises on it)",
                d.frame, d.score
            )));
        }
        if in_region(region, d.range, d.angle) {
            let cell = cells.entry((d.frame, d.class.id())).or_default();
            cell.1.push((d.range, d.angle, d.score));
        }
    }
    for ((_, class_id), (gts, mut dets)) in cells {
        let class = ObjectClass::ALL[class_id];
        sort_by_score_desc(&mut dets, |d| d.2);
        let pool = &mut pools[class_id];
        pool.evaluated = true;
        pool.n_gt += gts.len();
        pool.matched.extend(match_frame(&gts, &dets, class));
        pool.scores.extend(dets.iter().map(|d| d.2));
    }
    Ok(())
}

/// Descending and stable, as `np.argsort(-score, kind='mergesort')` (scores are finite here).
fn sort_by_score_desc<T>(v: &mut [T], score: impl Fn(&T) -> f64) {
    // `partial_cmp`, not `total_cmp`: NumPy ranks -0.0 and 0.0 as ties.
    v.sort_by(|a, b| {
        score(b)
            .partial_cmp(&score(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
}

/// The devkit's `evaluate_img` greedy matching of one frame and class; `dets` ranked.
fn match_frame(
    gts: &[(f64, f64)],
    dets: &[(f64, f64, f64)],
    class: ObjectClass,
) -> Vec<[bool; N_T]> {
    let mut matched = vec![[false; N_T]; dets.len()];
    let olss: Vec<Vec<f64>> = dets
        .iter()
        .map(|d| gts.iter().map(|&g| ols(g, (d.0, d.1), class)).collect())
        .collect();
    for (ti, &t) in OLS_THRESHOLDS.iter().enumerate() {
        let mut gt_taken = vec![false; gts.len()];
        for (di, row) in olss.iter().enumerate() {
            let mut best = t.min(1.0 - 1e-10);
            let mut m = None;
            for (gi, &o) in row.iter().enumerate() {
                if gt_taken[gi] || o < best {
                    continue;
                }
                best = o;
                m = Some(gi);
            }
            if let Some(gi) = m {
                gt_taken[gi] = true;
                matched[di][ti] = true;
            }
        }
    }
    matched
}

/// The devkit's `accumulate` for one class.
fn accumulate(class: ObjectClass, pool: &ClassPool) -> ClassStats {
    let nd = pool.scores.len();
    let mut order: Vec<usize> = (0..nd).collect();
    sort_by_score_desc(&mut order, |&i| pool.scores[i]);
    let ng = pool.n_gt as f64;
    let mut precision = Vec::with_capacity(N_T);
    let mut recall = Vec::with_capacity(N_T);
    for t in 0..N_T {
        let (mut tp, mut fp) = (0.0, 0.0);
        let mut rc = Vec::with_capacity(nd);
        let mut pr = Vec::with_capacity(nd);
        for &i in &order {
            if pool.matched[i][t] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            rc.push(tp / (ng + EPS));
            pr.push(tp / (fp + tp + EPS));
        }
        recall.push(rc.last().copied().unwrap_or(0.0));
        for i in (1..nd).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        let mut q = vec![0.0; N_RECALL_THRESHOLDS];
        for (r, q) in q.iter_mut().enumerate() {
            // `np.searchsorted(rc, r, side='left')`; the devkit's bare `except` leaves the rest 0.
            let i = rc.partition_point(|&x| x < recall_threshold(r));
            if i == nd {
                break;
            }
            *q = pr[i];
        }
        precision.push(q);
    }
    let all: Vec<f64> = precision.iter().flatten().copied().collect();
    ClassStats {
        class,
        n_gt: pool.n_gt,
        n_det: nd,
        ap: mean(&all),
        ar: mean(&recall),
        precision,
        recall,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rod::labels::{read_annotations, read_submission};
    use ObjectClass::*;

    #[test]
    fn ols_test_vectors() {
        assert_eq!(ols((7.0, 0.3), (7.0, 0.3), Car), 1.0);
        assert!((ols((10.0, 0.0), (10.5, 0.0), Pedestrian) - 0.7788).abs() < 1e-4);
        assert!((ols((10.0, 0.0), (11.0, 0.0), Car) - 0.8465).abs() < 1e-4);
        assert!((ols((5.0, 0.0), (5.5, 0.0), Cyclist) - 0.6065).abs() < 1e-4);
    }

    #[test]
    fn ols_is_in_0_1_and_decreases_with_distance() {
        for class in ObjectClass::ALL {
            for r in [1.0, 4.0, 10.0, 25.0] {
                for a in [-1.0, 0.0, 0.7] {
                    let gt = (r, a);
                    let mut last = ols(gt, gt, class);
                    assert_eq!(last, 1.0);
                    // Walk away from the ground truth in a straight line (2 m at most: beyond
                    // about 27·s·√κ metres exp underflows to 0).
                    let (x, y) = (r * a.sin(), r * a.cos());
                    for k in 1..=200 {
                        let d = k as f64 * 0.01;
                        let (bx, by) = (x + 0.6 * d, y - 0.8 * d);
                        let b = (bx.hypot(by), bx.atan2(by));
                        let o = ols(gt, b, class);
                        assert!(o > 0.0 && o <= 1.0, "{class:?} {gt:?} {b:?}: {o}");
                        assert!(o < last, "{class:?} {gt:?} step {k}: {o} !< {last}");
                        last = o;
                    }
                }
            }
        }
    }

    /// Per frame: two pedestrians at 10 m, a cyclist at 6 m and a car at 15 m, drifting.
    fn street(n_frames: usize) -> Vec<Object> {
        let mut gt = Vec::new();
        for f in 0..n_frames {
            let drift = 0.01 * f as f64;
            let obj = |range, angle, class| Object {
                frame: f,
                range,
                angle,
                class,
            };
            gt.push(obj(10.0, -0.3 + drift, Pedestrian));
            gt.push(obj(10.0, 0.3 + drift, Pedestrian));
            gt.push(obj(6.0 + drift, -0.6, Cyclist));
            gt.push(obj(15.0, 0.5 - drift, Car));
        }
        gt
    }

    fn as_dets(gt: &[Object], score: f64) -> Vec<Detection> {
        gt.iter()
            .map(|o| Detection {
                frame: o.frame,
                range: o.range,
                angle: o.angle,
                class: o.class,
                score,
            })
            .collect()
    }

    /// Far from every object of `street`, inside the region.
    fn far_fps(n_frames: usize, score: f64) -> Vec<Detection> {
        let mut v = Vec::new();
        for f in 0..n_frames {
            for (range, angle, class) in [
                (20.0, -0.9, Pedestrian),
                (22.0, 0.0, Cyclist),
                (3.0, 0.9, Car),
            ] {
                v.push(Detection {
                    frame: f,
                    range,
                    angle,
                    class,
                    score,
                });
            }
        }
        v
    }

    fn eval1(gt: &[Object], dets: &[Detection], n_frames: usize) -> RodStats {
        let seq = SequenceInput {
            name: "seq",
            n_frames,
            gt,
            dets,
        };
        evaluate(&[seq], &Region::rod2021()).unwrap()
    }

    fn assert_all(stats: &RodStats, want: f64) {
        for (name, v) in STAT_NAMES.iter().zip(stats.stats) {
            assert!((v - want).abs() < 1e-12, "{name} = {v}, want {want}");
        }
    }

    #[test]
    fn the_ground_truth_as_submission_scores_one() {
        let gt = street(5);
        assert_all(&eval1(&gt, &as_dets(&gt, 1.0), 5), 1.0);
    }

    #[test]
    fn submitting_nothing_scores_zero() {
        let gt = street(5);
        let s = eval1(&gt, &[], 5);
        assert_all(&s, 0.0);
        assert_eq!(s.n_gt, 20);
    }

    #[test]
    fn false_positives_cost_ap_only_when_they_outrank_the_true_ones() {
        let gt = street(5);
        let mut dets = as_dets(&gt, 0.9);
        dets.extend(far_fps(5, 0.1));
        assert_all(&eval1(&gt, &dets, 5), 1.0);
        let mut dets = as_dets(&gt, 0.9);
        dets.extend(far_fps(5, 0.95));
        let s = eval1(&gt, &dets, 5);
        assert!(s.ap() < 0.9 && s.ap() > 0.1, "AP {}", s.ap());
        for k in 6..12 {
            assert!((s.stats[k] - 1.0).abs() < 1e-12, "{}", STAT_NAMES[k]);
        }
    }

    #[test]
    fn half_a_metre_off_a_pedestrian_at_10m_is_recalled_up_to_ols_075() {
        let gt = street(5);
        let mut dets = as_dets(&gt, 1.0);
        for d in dets.iter_mut().filter(|d| d.class == Pedestrian) {
            d.range += 0.5;
        }
        let s = eval1(&gt, &dets, 5);
        let ped = s.class(Pedestrian).unwrap();
        let want = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        for (r, w) in ped.recall.iter().zip(want) {
            assert!((r - w).abs() < 1e-12, "{:?}", ped.recall);
        }
        assert!((ped.ar - 6.0 / 9.0).abs() < 1e-12, "{}", ped.ar);
        assert!((s.class(Car).unwrap().ar - 1.0).abs() < 1e-12);
    }

    #[test]
    fn classes_weigh_by_their_ground_truth_counts() {
        // Six cars found, two pedestrians missed: 6/8 of a perfect score, not the class mean 1/2.
        let mut gt = Vec::new();
        for f in 0..3 {
            gt.push(Object {
                frame: f,
                range: 8.0,
                angle: 0.2,
                class: Car,
            });
            gt.push(Object {
                frame: f,
                range: 18.0,
                angle: -0.4,
                class: Car,
            });
        }
        let dets = as_dets(&gt, 0.7);
        gt.push(Object {
            frame: 0,
            range: 5.0,
            angle: 0.0,
            class: Pedestrian,
        });
        gt.push(Object {
            frame: 2,
            range: 7.0,
            angle: 0.1,
            class: Pedestrian,
        });
        let s = eval1(&gt, &dets, 3);
        assert_all(&s, 0.75);
        assert_eq!(
            (
                s.class(Car).unwrap().n_gt,
                s.class(Pedestrian).unwrap().n_gt
            ),
            (6, 2)
        );
        assert_eq!(s.class(Pedestrian).unwrap().ap, 0.0);
        assert!(
            s.class(Cyclist).is_none(),
            "a class absent from GT and dets is left out"
        );
        // Detections of a class without ground truth are evaluated but weigh nothing.
        let mut with_cyclist = dets.clone();
        with_cyclist.push(Detection {
            frame: 1,
            range: 9.0,
            angle: 0.0,
            class: Cyclist,
            score: 0.9,
        });
        let s2 = eval1(&gt, &with_cyclist, 3);
        assert_eq!(s2.class(Cyclist).unwrap().n_gt, 0);
        assert_eq!(s2.stats, s.stats);
    }

    #[test]
    fn outside_the_region_nothing_counts_and_the_edges_are_inside() {
        let region = Region::rod2021();
        let gt = street(4);
        let mut dets = as_dets(&gt, 0.8);
        dets.extend(far_fps(4, 0.9));
        let base = eval1(&gt, &dets, 4);
        assert!(base.ap() < 1.0);
        let lim = 60f64.to_radians();
        let mut gt2 = gt.clone();
        let mut dets2 = dets.clone();
        for (range, angle) in [
            (0.99, 0.0),
            (25.01, 0.0),
            (10.0, lim + 1e-9),
            (10.0, -lim - 1e-9),
        ] {
            for class in ObjectClass::ALL {
                gt2.push(Object {
                    frame: 1,
                    range,
                    angle,
                    class,
                });
                dets2.push(Detection {
                    frame: 2,
                    range,
                    angle,
                    class,
                    score: 1.0,
                });
            }
        }
        let s = eval1(&gt2, &dets2, 4);
        assert_eq!(s.stats, base.stats);
        assert_eq!(s.n_gt, base.n_gt);
        // The devkit drops r > 25, r < 1 and |a| > 60° only: the limits themselves count.
        let edges: Vec<Object> = [(1.0, 0.0), (25.0, 0.0), (10.0, lim), (10.0, -lim)]
            .into_iter()
            .map(|(range, angle)| Object {
                frame: 0,
                range,
                angle,
                class: Car,
            })
            .collect();
        let s = eval1(&edges, &as_dets(&edges, 1.0), 1);
        assert_eq!(s.n_gt, 4);
        assert!(in_region(&region, 25.0, lim));
    }

    #[test]
    fn an_ols_tie_goes_to_the_later_ground_truth() {
        // Detection 1 sits exactly between A and B; detection 2 (lower score) sits on A. If the
        // first takes B (the later), the second still finds A at every threshold.
        let d = (0.03f64).asin();
        let a = Object {
            frame: 0,
            range: 10.0,
            angle: d,
            class: Pedestrian,
        };
        let b = Object { angle: -d, ..a };
        assert_eq!(
            ols((10.0, d), (10.0, 0.0), Pedestrian),
            ols((10.0, -d), (10.0, 0.0), Pedestrian)
        );
        assert!(ols((10.0, d), (10.0, 0.0), Pedestrian) > 0.9);
        assert!(ols((10.0, -d), (10.0, d), Pedestrian) < 0.7);
        let dets = [
            Detection {
                frame: 0,
                range: 10.0,
                angle: 0.0,
                class: Pedestrian,
                score: 0.9,
            },
            Detection {
                frame: 0,
                range: 10.0,
                angle: d,
                class: Pedestrian,
                score: 0.8,
            },
        ];
        let recall = |gt: &[Object]| eval1(gt, &dets, 1).class(Pedestrian).unwrap().recall[8];
        assert_eq!(recall(&[a, b]), 1.0);
        assert_eq!(recall(&[b, a]), 0.5);
    }

    #[test]
    fn equal_scores_keep_file_order() {
        // Per frame one car and two detections of equal score: on it, and far from it.
        let gt: Vec<Object> = (0..2)
            .map(|frame| Object {
                frame,
                range: 10.0,
                angle: 0.0,
                class: Car,
            })
            .collect();
        let on = |frame| Detection {
            frame,
            range: 10.0,
            angle: 0.0,
            class: Car,
            score: 0.5,
        };
        let off = |frame| Detection {
            frame,
            range: 20.0,
            angle: 0.8,
            class: Car,
            score: 0.5,
        };
        // Ranked TP, FP, TP, FP: precision 1 up to recall 0.5, then 2/3.
        let s = eval1(&gt, &[on(0), off(0), on(1), off(1)], 2);
        let want = (51.0 + 50.0 * 2.0 / (3.0 + EPS)) / 101.0;
        assert!((s.ap() - want).abs() < 1e-12, "{} vs {want}", s.ap());
        // Ranked FP, TP, FP, TP: precision 1/2 everywhere.
        let s = eval1(&gt, &[off(0), on(0), off(1), on(1)], 2);
        assert!((s.ap() - 0.5).abs() < 1e-12, "{}", s.ap());
    }

    #[test]
    fn sequences_pool_in_file_name_order() {
        // Equal scores across sequences: "a" (a miss and a false positive) ranks before "b"
        // (a hit) whatever order they are given in, as the devkit's sorted directory listing.
        let car = |range, angle| Object {
            frame: 0,
            range,
            angle,
            class: Car,
        };
        let det = |o: Object| Detection {
            frame: 0,
            range: o.range,
            angle: o.angle,
            class: Car,
            score: 0.5,
        };
        let (gt_a, dets_a) = ([car(10.0, 0.0)], [det(car(20.0, 0.8))]);
        let (gt_b, dets_b) = ([car(12.0, 0.1)], [det(car(12.0, 0.1))]);
        let sa = SequenceInput {
            name: "a",
            n_frames: 1,
            gt: &gt_a,
            dets: &dets_a,
        };
        let sb = SequenceInput {
            name: "b",
            n_frames: 1,
            gt: &gt_b,
            dets: &dets_b,
        };
        let region = Region::rod2021();
        let ab = evaluate(&[sa, sb], &region).unwrap();
        let ba = evaluate(&[sb, sa], &region).unwrap();
        assert_eq!(ab, ba);
        assert_eq!(ab.sequences, ["a", "b"]);
        // Ranked FP, TP with 2 GT: precision 1/2 up to recall 1/2.
        assert!((ab.ap() - 0.5 * 51.0 / 101.0).abs() < 1e-12, "{}", ab.ap());
        // Pooled is not the mean of the sequences: alone, "b" scores 100/101 (one object).
        let b = evaluate(&[sb], &region).unwrap();
        assert!((b.ap() - 100.0 / 101.0).abs() < 1e-12, "{}", b.ap());
    }

    #[test]
    fn a_single_object_class_tops_out_at_100_of_101() {
        // The devkit's rc = 1 / (1 + ε) < 1: recall level 1.0 is never reached.
        let gt = [Object {
            frame: 0,
            range: 10.0,
            angle: 0.0,
            class: Car,
        }];
        let s = eval1(&gt, &as_dets(&gt, 1.0), 1);
        assert!((s.ap() - 100.0 / 101.0).abs() < 1e-12, "{}", s.ap());
        assert!((s.ar() - 1.0).abs() < 1e-15 && s.ar() < 1.0);
    }

    #[test]
    fn bad_inputs_are_errors_naming_sequence_and_frame() {
        let region = Region::rod2021();
        let gt = street(3);
        let mut dets = as_dets(&gt, 0.5);
        dets[5].score = 1.0001;
        let seq = SequenceInput {
            name: "2019_04_09_BMS1000",
            n_frames: 3,
            gt: &gt,
            dets: &dets,
        };
        let e = evaluate(&[seq], &region).unwrap_err().to_string();
        assert!(
            e.contains("2019_04_09_BMS1000") && e.contains("frame 1") && e.contains("clip"),
            "{e}"
        );
        // Even outside the region and in a frame without a ground truth.
        let far = [Detection {
            frame: 2,
            range: 40.0,
            angle: 0.0,
            class: Car,
            score: 2.0,
        }];
        let seq = SequenceInput {
            name: "s",
            n_frames: 3,
            gt: &gt,
            dets: &far,
        };
        assert!(evaluate(&[seq], &region).is_err());
        let seq = SequenceInput {
            name: "s",
            n_frames: 2,
            gt: &gt,
            dets: &[],
        };
        let e = evaluate(&[seq], &region).unwrap_err().to_string();
        assert!(e.contains("frame 2") && e.contains("2 frames"), "{e}");
        let late = [Detection {
            frame: 3,
            range: 5.0,
            angle: 0.0,
            class: Car,
            score: 0.5,
        }];
        let seq = SequenceInput {
            name: "s",
            n_frames: 3,
            gt: &gt,
            dets: &late,
        };
        assert!(evaluate(&[seq], &region)
            .unwrap_err()
            .to_string()
            .contains("detection 0"));
        let nan = [Detection {
            frame: 0,
            range: f64::NAN,
            angle: 0.0,
            class: Car,
            score: 0.5,
        }];
        let seq = SequenceInput {
            name: "s",
            n_frames: 3,
            gt: &gt,
            dets: &nan,
        };
        assert!(evaluate(&[seq], &region).is_err());
        let seq = SequenceInput {
            name: "s",
            n_frames: 3,
            gt: &gt,
            dets: &[],
        };
        assert!(evaluate(&[seq, seq], &region)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let empty = SequenceInput {
            name: "e",
            n_frames: 3,
            gt: &[],
            dets: &[],
        };
        assert!(evaluate(&[empty], &region)
            .unwrap_err()
            .to_string()
            .contains("undefined"));
        assert!(evaluate(&[], &region).is_err());
    }

    #[test]
    fn scenes_are_evaluated_on_their_own_sequences() {
        let region = Region::rod2021();
        let (g1, g2, g3) = (street(3), street(4), street(2));
        let d1 = as_dets(&g1, 0.9);
        let mut d2 = as_dets(&g2, 0.6);
        d2.extend(far_fps(4, 0.8));
        let d3 = far_fps(2, 0.3);
        let pl = SequenceInput {
            name: "2019_04_09_BMS1000",
            n_frames: 3,
            gt: &g1,
            dets: &d1,
        };
        let hw = SequenceInput {
            name: "2019_09_29_ONRD005",
            n_frames: 4,
            gt: &g2,
            dets: &d2,
        };
        let other = SequenceInput {
            name: "mystery",
            n_frames: 2,
            gt: &g3,
            dets: &d3,
        };
        let all = [pl, hw, other];
        // kiln-radar's scene table: BMS1000 is a parking lot (0), ONRD005 a highway (3).
        let scene_of = |name: &str| match name {
            "2019_04_09_BMS1000" => Some(0u8),
            "2019_09_29_ONRD005" => Some(3),
            _ => None,
        };
        let b = evaluate_by_scene(&all, scene_of, &region).unwrap();
        assert_eq!(b.overall, evaluate(&all, &region).unwrap());
        assert_eq!(b.scenes.len(), 2);
        assert_eq!(b.scenes[0], (0, evaluate(&[pl], &region).unwrap()));
        assert_eq!(b.scenes[1], (3, evaluate(&[hw], &region).unwrap()));
        assert_eq!(b.unassigned, ["mystery"]);
    }

    #[test]
    fn matches_the_devkit_golden_numbers() {
        let Some(data) = kiln_core::paths::shared_data() else {
            return kiln_core::paths::skip("shared data (reference/rod-eval)");
        };
        let dir = data.join("reference/rod-eval");
        let text = std::fs::read_to_string(dir.join("rod-eval-golden.json")).unwrap();
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want = |case: &str| -> Vec<f64> {
            let v = golden["cases"][case]["stats"].as_array().unwrap();
            v.iter().map(|x| x.as_f64().unwrap()).collect()
        };
        let check = |case: &str, got: &RodStats| {
            for ((name, g), w) in STAT_NAMES.iter().zip(got.stats).zip(want(case)) {
                assert!((g - w).abs() < 1e-6, "{case} {name}: {g} vs devkit {w}");
            }
        };
        let mut loaded = Vec::new();
        for case in ["perfect", "noisy", "hard"] {
            let c = &golden["cases"][case];
            let files = c["files"].as_array().unwrap();
            let gt = read_annotations(&dir.join(files[0].as_str().unwrap())).unwrap();
            let dets = read_submission(&dir.join(files[1].as_str().unwrap())).unwrap();
            let n_frames = c["n_frame"].as_u64().unwrap() as usize;
            loaded.push((case, n_frames, gt, dets));
        }
        let seqs: Vec<SequenceInput> = loaded
            .iter()
            .map(|(name, n_frames, gt, dets)| SequenceInput {
                name,
                n_frames: *n_frames,
                gt,
                dets,
            })
            .collect();
        let region = Region::rod2021();
        let mut mean_ap = 0.0;
        for seq in &seqs {
            let s = evaluate(&[*seq], &region).unwrap();
            check(seq.name, &s);
            mean_ap += s.ap() / 3.0;
        }
        let pooled = evaluate(&seqs, &region).unwrap();
        check("all_three_pooled", &pooled);
        assert!(
            (pooled.ap() - mean_ap).abs() > 1e-3,
            "pooling must differ from the mean"
        );
    }
}
