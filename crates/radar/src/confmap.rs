//! Confidence-map targets (spec §4, RODNet `generate_confmap` with the authors' noise channel):
//! one Gaussian per object on its class channel, spread by the object's angular size at its
//! range, every centre exactly 1 after a joint normalisation, and a background channel.

use crate::labels::Object;
use crate::sensor::{Grid, ObjectClass};

/// Class channels; the background ("noise") channel, when present, is channel 3.
pub const N_CLASSES: usize = 3;
pub const NOISE_CHANNEL: usize = 3;

/// A Gaussian's support: pixels with normalised squared distance D < 36 (six sigma).
const SUPPORT: f64 = 36.0;

/// The σ (in bins) of an object of `class` whose centre lies on range row `row`:
/// 2·atan(L_k / (2·r))·s_k clipped to the class interval, r the row's range in metres.
///
/// The constants are the devkit's for the 128-bin azimuth grid. On a coarser grid (kiln's mini
/// profiles) σ and its clip interval shrink with the bin count, so a blob covers the same angles
/// and ranges as on the sensor's grid; at 128 bins the factor is exactly 1.
pub fn sigma(class: ObjectClass, row: usize, grid: &Grid) -> f64 {
    let (s, len, (lo, hi)) = class.confmap_constants();
    let k = grid.cols() as f64 / 128.0;
    (2.0 * (len / (2.0 * grid.range[row])).atan() * s * k).clamp(lo * k, hi * k)
}

/// The ConfMap of one frame, `(C, R, A)` row-major with C = 3, or 4 with `noise_channel`.
///
/// Every point is snapped to its nearest grid bin first (`ra2idx`), as the devkit's labels
/// are. Overlapping blobs combine by max, and the three class channels are min-max normalised
/// together (pitfall 4: per class would change the relative heights the loss sees), so every
/// object centre is exactly 1 and an empty pixel exactly 0. An empty frame stays all zero, with
/// background 1.
pub fn frame_confmap(
    points: impl IntoIterator<Item = (ObjectClass, f64, f64)>,
    grid: &Grid,
    noise_channel: bool,
) -> Vec<f32> {
    let (rows, cols) = (grid.rows(), grid.cols());
    let plane = rows * cols;
    let mut cm = vec![0.0f64; N_CLASSES * plane];
    let mut any = false;
    for (class, range, angle) in points {
        any = true;
        let (rho, alpha) = grid.ra2idx(range, angle);
        let sig = sigma(class, rho, grid);
        let ch = &mut cm[class.id() * plane..(class.id() + 1) * plane];
        // Outside |2Δi| < 6σ or |Δj| < 6σ, D ≥ 36: only that box needs visiting.
        let reach_r = (3.0 * sig).ceil() as isize;
        let reach_a = (6.0 * sig).ceil() as isize;
        let (r0, r1) = clamp_span(rho as isize, reach_r, rows);
        let (a0, a1) = clamp_span(alpha as isize, reach_a, cols);
        for i in r0..r1 {
            let di = 2.0 * (i as f64 - rho as f64);
            for j in a0..a1 {
                let dj = j as f64 - alpha as f64;
                let d = (di * di + dj * dj) / (sig * sig);
                if d < SUPPORT {
                    let v = (-d / 2.0).exp() / (2.0 * std::f64::consts::PI);
                    let cell = &mut ch[i * cols + j];
                    if v > *cell {
                        *cell = v;
                    }
                }
            }
        }
    }
    if any {
        let (min, max) = cm
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if max > min {
            cm.iter_mut().for_each(|v| *v = (*v - min) / (max - min));
        }
    }
    let mut out: Vec<f32> = cm.iter().map(|&v| v as f32).collect();
    if noise_channel {
        let mut noise = vec![0.0f32; plane];
        for (p, n) in noise.iter_mut().enumerate() {
            let m = (0..N_CLASSES)
                .map(|k| cm[k * plane + p])
                .fold(0.0, f64::max);
            *n = (1.0 - m) as f32;
        }
        out.extend(noise);
    }
    out
}

fn clamp_span(centre: isize, reach: isize, n: usize) -> (usize, usize) {
    let lo = (centre - reach).max(0) as usize;
    let hi = ((centre + reach + 1).max(0) as usize).min(n);
    (lo, hi)
}

/// The ConfMap of one frame's labelled objects.
pub fn objects_confmap(objects: &[Object], grid: &Grid, noise_channel: bool) -> Vec<f32> {
    frame_confmap(
        objects.iter().map(|o| (o.class, o.range, o.angle)),
        grid,
        noise_channel,
    )
}

/// The target of a window of `win` frames starting at `start`: `(C, T, R, A)` row-major, from
/// `objects` (any frames; those outside the window are ignored, and a frame beyond the end of
/// the sequence is empty).
pub fn window_target(
    objects: &[Object],
    start: usize,
    win: usize,
    grid: &Grid,
    noise_channel: bool,
) -> Vec<f32> {
    let c = if noise_channel {
        N_CLASSES + 1
    } else {
        N_CLASSES
    };
    let plane = grid.rows() * grid.cols();
    let mut out = vec![0.0f32; c * win * plane];
    for t in 0..win {
        let frame: Vec<Object> = objects
            .iter()
            .filter(|o| o.frame == start + t)
            .copied()
            .collect();
        let cm = objects_confmap(&frame, grid, noise_channel);
        for k in 0..c {
            out[(k * win + t) * plane..(k * win + t + 1) * plane]
                .copy_from_slice(&cm[k * plane..(k + 1) * plane]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ObjectClass::*;

    fn obj(class: ObjectClass, range: f64, angle: f64) -> Object {
        Object {
            frame: 0,
            range,
            angle,
            class,
        }
    }

    #[test]
    fn sigma_follows_the_clip_rules() {
        let g = Grid::rod2021();
        let row = |r: f64| g.ra2idx(r, 0.0).0;
        assert_eq!(sigma(Car, row(10.0), &g), 10.0);
        assert_eq!(sigma(Pedestrian, row(3.0), &g), 5.0);
        // Cyclist: 2·atan(1/r)·20 reaches the clip at 5 m (the grid row nearest 5 m is 4.9 m).
        assert_eq!(sigma(Cyclist, row(5.2), &g), 8.0);
        assert!(sigma(Cyclist, row(4.0), &g) > 8.0);
        // Pedestrian at 2 m: 2·atan(1/4)·15 ≈ 7.349 at the exact range.
        let p = sigma(Pedestrian, row(2.0), &g);
        let exact = 2.0 * (1.0f64 / (2.0 * g.range[row(2.0)])).atan() * 15.0;
        assert_eq!(p, exact);
        assert!((2.0 * (0.25f64).atan() * 15.0 - 7.349).abs() < 1e-3);
        // Car at 5 m: 17.5 (17.8 at the 4.9 m row).
        assert!(
            (sigma(Car, row(5.0), &g) - 2.0 * (3.0 / (2.0 * g.range[row(5.0)])).atan() * 30.0)
                .abs()
                < 1e-12
        );
        assert!((2.0 * (0.3f64).atan() * 30.0 - 17.5).abs() < 0.02);
        // A 64-bin grid halves every σ: the same physical spread.
        let coarse = Grid::new(&crate::sensor::RadarConfig {
            ramap_rsize: 64,
            ramap_asize: 64,
            ..Default::default()
        });
        let crow = |r: f64| coarse.ra2idx(r, 0.0).0;
        assert_eq!(sigma(Car, crow(10.0), &coarse), 5.0);
        assert_eq!(sigma(Pedestrian, crow(4.0), &coarse), 2.5);
    }

    #[test]
    fn centres_are_one_values_in_unit_interval_and_noise_is_the_complement() {
        let g = Grid::rod2021();
        let objs = [
            obj(Car, 12.0, 0.3),
            obj(Pedestrian, 4.0, -0.5),
            obj(Cyclist, 20.0, 0.0),
        ];
        let cm = objects_confmap(&objs, &g, true);
        let plane = 128 * 128;
        assert_eq!(cm.len(), 4 * plane);
        assert!(cm.iter().all(|v| (0.0..=1.0).contains(v)));
        for o in &objs {
            let (i, j) = g.ra2idx(o.range, o.angle);
            assert_eq!(cm[o.class.id() * plane + i * 128 + j], 1.0);
            assert_eq!(cm[NOISE_CHANNEL * plane + i * 128 + j], 0.0);
        }
        for p in 0..plane {
            let m = (0..3).map(|k| cm[k * plane + p]).fold(0.0f32, f32::max);
            assert!((cm[NOISE_CHANNEL * plane + p] - (1.0 - m)).abs() < 1e-6);
        }
        let empty = objects_confmap(&[], &g, true);
        assert!(empty[..3 * plane].iter().all(|&v| v == 0.0));
        assert!(empty[3 * plane..].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn support_ends_at_d_36_and_range_blob_is_half_as_wide() {
        let g = Grid::rod2021();
        // A car at 15 m: σ = 10, centre well inside the map.
        let o = obj(Car, 15.0, 0.0);
        let (ci, cj) = g.ra2idx(o.range, o.angle);
        let cm = objects_confmap(&[o], &g, false);
        let at = |i: usize, j: usize| cm[2 * 128 * 128 + i * 128 + j];
        let sig = sigma(Car, ci, &g);
        for i in 0..128 {
            for j in 0..128 {
                let d = ((2.0 * (i as f64 - ci as f64)).powi(2) + (j as f64 - cj as f64).powi(2))
                    / (sig * sig);
                assert_eq!(at(i, j) > 0.0, d < 36.0, "({i},{j}) D={d}");
            }
        }
        // Half width along range: the value k rows away equals the value 2k columns away.
        for k in 1..10 {
            assert_eq!(at(ci + k, cj), at(ci, cj + 2 * k));
        }
    }

    #[test]
    fn overlapping_objects_combine_by_max_and_normalise_jointly() {
        let g = Grid::rod2021();
        let a = obj(Car, 15.0, 0.0);
        let b = obj(Car, 15.0, 0.05);
        let both = objects_confmap(&[a, b], &g, false);
        let one = objects_confmap(&[a], &g, false);
        let other = objects_confmap(&[b], &g, false);
        for p in 0..both.len() {
            assert_eq!(both[p], one[p].max(other[p]));
        }
        // Joint normalisation: a lone pedestrian's centre is 1 even beside a car.
        let two = objects_confmap(&[a, obj(Pedestrian, 5.0, -0.7)], &g, false);
        let (i, j) = g.ra2idx(5.0, -0.7);
        assert_eq!(two[i * 128 + j], 1.0);
    }

    #[test]
    fn window_target_stacks_frames_in_c_t_r_a_order() {
        let g = Grid::rod2021();
        let mut o = obj(Car, 10.0, 0.1);
        o.frame = 6;
        let t = window_target(&[o], 5, 4, &g, true);
        let plane = 128 * 128;
        assert_eq!(t.len(), 4 * 4 * plane);
        let (i, j) = g.ra2idx(10.0, 0.1);
        // Channel 2 (car), time 1 (frame 6).
        assert_eq!(t[(2 * 4 + 1) * plane + i * 128 + j], 1.0);
        assert!(t[(2 * 4) * plane..(2 * 4 + 1) * plane]
            .iter()
            .all(|&v| v == 0.0));
        // Background of an empty frame is 1.
        assert!(t[(3 * 4) * plane..(3 * 4 + 1) * plane]
            .iter()
            .all(|&v| v == 1.0));
    }
}
