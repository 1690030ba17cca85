//! The ROD2021 evaluation (cruw-devkit `cruw/eval/rod`, spec §10), computed by
//! [`kiln_data::rod::eval`] step for step as the devkit at 7e9317d (its module doc lists the
//! steps, the quirks kept and the deliberate choices; its tests hold the devkit's golden numbers).
//! The metric lives in kiln-data so that `kiln verify` recomputes radar tables from submission
//! folders; here it takes the evaluated region from the [`Grid`] and breaks down by [`Scene`].

use crate::error::Result;
use crate::sensor::{Grid, Scene};

pub use kiln_data::rod::eval::{
    ols, recall_threshold, ClassStats, RodStats, SequenceInput, N_RECALL_THRESHOLDS,
    OLS_THRESHOLDS, STAT_NAMES,
};

/// The evaluation of all sequences and of each scene's subset (spec §10.4).
pub type SceneBreakdown = kiln_data::rod::SceneBreakdown<Scene>;

/// The ROD2021 metric of `seqs` evaluated together, frames pooled across sequences as the
/// official server does (so it is not the mean of per-sequence numbers). `grid` gives the
/// evaluated region.
pub fn evaluate(seqs: &[SequenceInput], grid: &Grid) -> Result<RodStats> {
    Ok(kiln_data::rod::evaluate(seqs, &grid.region())?)
}

/// [`evaluate`] on all `seqs` and on each scene's sequences (`scene_of` maps a sequence name to
/// its scene, e.g. [`Scene::of_rod2021_sequence`]); scenes in scene order.
pub fn evaluate_by_scene(
    seqs: &[SequenceInput],
    scene_of: impl Fn(&str) -> Option<Scene>,
    grid: &Grid,
) -> Result<SceneBreakdown> {
    Ok(kiln_data::rod::evaluate_by_scene(
        seqs,
        scene_of,
        &grid.region(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Detection, Object};
    use crate::sensor::ObjectClass::Car;

    fn car(range: f64) -> Object {
        Object {
            frame: 0,
            range,
            angle: 0.0,
            class: Car,
        }
    }

    #[test]
    fn scenes_come_in_scene_order_with_the_grids_region() {
        let grid = Grid::rod2021();
        let (g1, g2, g3) = ([car(10.0)], [car(12.0)], [car(30.0)]);
        let hit = [Detection {
            frame: 0,
            range: 10.0,
            angle: 0.0,
            class: Car,
            score: 0.9,
        }];
        let seq = |name, gt, dets| SequenceInput {
            name,
            n_frames: 1,
            gt,
            dets,
        };
        // Highway first in the input; parking lot first in scene order.
        let hw = seq("2019_09_29_ONRD005", &g2, &[]);
        let pl = seq("2019_04_09_BMS1000", &g1, &hit);
        let far = seq("mystery", &g3, &[]);
        let b = evaluate_by_scene(&[hw, pl, far], Scene::of_rod2021_sequence, &grid).unwrap();
        let scenes: Vec<Scene> = b.scenes.iter().map(|s| s.0).collect();
        assert_eq!(scenes, [Scene::ParkingLot, Scene::Highway]);
        assert_eq!(b.scenes[0].1, evaluate(&[pl], &grid).unwrap());
        assert_eq!(b.unassigned, ["mystery"]);
        // The object at 30 m is outside the grid's region: two ground truths count.
        assert_eq!(b.overall.n_gt, 2);
    }
}
