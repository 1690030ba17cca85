//! The ROD2021 radar object detection metric (cruw-devkit `cruw/eval/rod`): the classes, the
//! annotation and submission txt files ([`labels`]), and the evaluation ([`eval`]). It lives here,
//! not in kiln-radar, so that `kiln verify` (kiln-experiment, which cannot depend on paper
//! crates) recomputes a radar table from its submission files with the same code.
//!
//! Folders, as the devkit lays them out and `kiln verify` reads them:
//! * a **submission folder** holds one `<SEQ>.txt` submission per sequence (the devkit's
//!   `submit_dir`); a sequence without detections is an empty file;
//! * a **ground-truth folder** holds one `<SEQ>.txt` annotation per sequence plus
//!   [`FRAMES_FILE`] (`frames.json`), a JSON object mapping each sequence name to its frame count,
//!   e.g. `{"2019_04_09_BMS1000": 897}`: the devkit counts the radar files of the sequence for it
//!   (radar files / 4), which a results folder does not hold. The sequences are exactly the keys
//!   of `frames.json`.
//!
//! As the devkit's `evaluate_rod2021` (which asserts "missing submission files!" / "wrong
//! submission file names!"), [`evaluate_folders`] refuses a submission folder whose `.txt` files
//! are not exactly the ground truth's sequences: a missing file is an error, not "nothing
//! detected" (write an empty file for that). Other files in either folder are ignored.

pub mod eval;
pub mod labels;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use eval::{evaluate, evaluate_by_scene, ols, RodStats, SceneBreakdown, SequenceInput};
pub use labels::{
    read_annotations, read_submission, write_annotations, write_submission, Detection, Object,
};

use crate::error::DataError;

type Result<T> = std::result::Result<T, DataError>;

/// The three ROD2021 classes, in the devkit's order (its class ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ObjectClass {
    Pedestrian,
    Cyclist,
    Car,
}

impl ObjectClass {
    pub const ALL: [ObjectClass; 3] = [Self::Pedestrian, Self::Cyclist, Self::Car];

    /// The devkit's class id (the ConfMap channel).
    pub fn id(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pedestrian => "pedestrian",
            Self::Cyclist => "cyclist",
            Self::Car => "car",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Object size (m) of the devkit's `object_config.json`, the OLS scale.
    pub fn size(self) -> f64 {
        match self {
            Self::Pedestrian => 0.5,
            Self::Cyclist => 1.0,
            Self::Car => 3.0,
        }
    }

    /// ConfMap constants (spec §4): sigma scale s_k, object length L_k, and the σ clip interval.
    pub fn confmap_constants(self) -> (f64, f64, (f64, f64)) {
        match self {
            Self::Pedestrian => (15.0, 1.0, (5.0, 15.0)),
            Self::Cyclist => (20.0, 2.0, (8.0, 20.0)),
            Self::Car => (30.0, 3.0, (10.0, 30.0)),
        }
    }
}

/// The evaluated region: range in [`range.0`, `range.1`] metres and |azimuth| ≤ `angle_limit`
/// radians, ends included (kiln-radar's `Grid::region` derives it from the sensor config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub range: (f64, f64),
    pub angle_limit: f64,
}

impl Region {
    /// The devkit's hard-coded ROD2021 region: 1–25 m, ±60°.
    pub fn rod2021() -> Self {
        Self {
            range: (1.0, 25.0),
            angle_limit: 60f64.to_radians(),
        }
    }
}

/// The frame-count file of a ground-truth folder.
pub const FRAMES_FILE: &str = "frames.json";

/// One sequence's ground truth: name, frame count, objects.
pub type GroundTruth = (String, usize, Vec<Object>);

/// Writes a ground-truth folder (`<name>.txt` per sequence and [`FRAMES_FILE`]), each file
/// atomically.
pub fn write_ground_truth_folder(dir: &Path, seqs: &[(&str, usize, &[Object])]) -> Result<()> {
    for (path, bytes) in ground_truth_files(dir, seqs)? {
        kiln_core::atomic_write(&path, &bytes).map_err(|e| DataError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// The files of a ground-truth folder at `dir` (paths under `dir`, contents), checked as
/// [`write_ground_truth_folder`] checks them: for a caller that writes them itself.
pub fn ground_truth_files(
    dir: &Path,
    seqs: &[(&str, usize, &[Object])],
) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut frames = BTreeMap::new();
    let mut out = Vec::new();
    for &(name, n_frames, objects) in seqs {
        check_name(dir, name)?;
        if frames.insert(name, n_frames).is_some() {
            return Err(DataError::Invalid(format!(
                "{}: sequence {name} given twice: write each sequence once",
                dir.display()
            )));
        }
        let path = dir.join(format!("{name}.txt"));
        let text = labels::annotation_text(&path, objects)?;
        out.push((path, text.into_bytes()));
    }
    let path = dir.join(FRAMES_FILE);
    let text = serde_json::to_string_pretty(&frames)
        .map_err(|e| DataError::Invalid(format!("{}: {e}", path.display())))?;
    out.push((path, text.into_bytes()));
    Ok(out)
}

/// Reads a ground-truth folder: the sequences of its [`FRAMES_FILE`], in name order.
pub fn read_ground_truth_folder(dir: &Path) -> Result<Vec<GroundTruth>> {
    let path = dir.join(FRAMES_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    let frames: BTreeMap<String, usize> =
        serde_json::from_str(&text).map_err(|e| DataError::Malformed {
            path: path.clone(),
            line: e.line(),
            msg: format!(
                "{e}: expected a JSON object mapping each sequence name to its frame count"
            ),
        })?;
    let txts = txt_stems(dir)?;
    if let Some(extra) = txts.iter().find(|s| !frames.contains_key(*s)) {
        return Err(DataError::Invalid(format!(
            "{}: {extra}.txt is not listed in {FRAMES_FILE}: add its frame count or remove it",
            dir.display()
        )));
    }
    let mut out = Vec::with_capacity(frames.len());
    for (name, n_frames) in frames {
        check_name(dir, &name)?;
        let objects = read_annotations(&dir.join(format!("{name}.txt")))?;
        out.push((name, n_frames, objects));
    }
    Ok(out)
}

/// The ROD2021 metric of the submission folder `sub_dir` against the ground-truth folder
/// `gt_dir`, all sequences pooled (see the module doc for the layout).
pub fn evaluate_folders(gt_dir: &Path, sub_dir: &Path, region: &Region) -> Result<RodStats> {
    evaluate_folders_with(gt_dir, sub_dir, region, false)
}

/// [`evaluate_folders`] on the sequences `gt_dir` lists only, ignoring the other submission
/// files of `sub_dir`: a per-scene breakdown (spec §10.4) evaluates one submission against each
/// scene's ground-truth folder, as the devkit does on a copy holding that scene's files.
pub fn evaluate_folder_subset(gt_dir: &Path, sub_dir: &Path, region: &Region) -> Result<RodStats> {
    evaluate_folders_with(gt_dir, sub_dir, region, true)
}

fn evaluate_folders_with(
    gt_dir: &Path,
    sub_dir: &Path,
    region: &Region,
    subset: bool,
) -> Result<RodStats> {
    let gt = read_ground_truth_folder(gt_dir)?;
    let subs = txt_stems(sub_dir)?;
    let want: BTreeSet<String> = gt.iter().map(|g| g.0.clone()).collect();
    if let Some(missing) = want.iter().find(|s| !subs.contains(*s)) {
        return Err(DataError::Invalid(format!(
            "{}: no submission {missing}.txt for a sequence of {}: write an empty file for a \
             sequence without detections (the devkit refuses missing files)",
            sub_dir.display(),
            gt_dir.display()
        )));
    }
    if let Some(extra) = subs.iter().find(|s| !subset && !want.contains(*s)) {
        return Err(DataError::Invalid(format!(
            "{}: submission {extra}.txt has no ground truth in {}: remove it or add its labels \
             (the devkit refuses unmatched file names)",
            sub_dir.display(),
            gt_dir.display()
        )));
    }
    let dets = gt
        .iter()
        .map(|g| read_submission(&sub_dir.join(format!("{}.txt", g.0))))
        .collect::<Result<Vec<_>>>()?;
    let seqs: Vec<SequenceInput> = gt
        .iter()
        .zip(&dets)
        .map(|((name, n_frames, objects), dets)| SequenceInput {
            name,
            n_frames: *n_frames,
            gt: objects,
            dets,
        })
        .collect();
    evaluate(&seqs, region)
}

/// A sequence name is one file name: no separators, not empty.
fn check_name(dir: &Path, name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(DataError::Invalid(format!(
            "{}: `{name}` is not a sequence name (one file name, without `.txt`)",
            dir.display()
        )));
    }
    Ok(())
}

/// The stems of the `.txt` files of `dir`.
fn txt_stems(dir: &Path) -> Result<BTreeSet<String>> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".txt")) {
            out.insert(stem.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car(frame: usize, range: f64, angle: f64) -> Object {
        Object {
            frame,
            range,
            angle,
            class: ObjectClass::Car,
        }
    }

    fn det(o: Object, score: f64) -> Detection {
        Detection {
            frame: o.frame,
            range: o.range,
            angle: o.angle,
            class: o.class,
            score,
        }
    }

    #[test]
    fn folders_evaluate_as_their_sequences() {
        let d = tempfile::tempdir().unwrap();
        let (gt_dir, sub_dir) = (d.path().join("gt"), d.path().join("sub"));
        let a = [car(0, 10.0, 0.0), car(1, 12.0, 0.2)];
        let b = [car(0, 5.0, -0.3)];
        write_ground_truth_folder(&gt_dir, &[("a", 2, &a), ("b", 3, &b)]).unwrap();
        let da = [det(a[0], 0.9), det(car(1, 20.0, 0.8), 0.8)];
        write_submission(&sub_dir.join("a.txt"), &da).unwrap();
        let got = |sub: &Path| evaluate_folders(&gt_dir, sub, &Region::rod2021());
        // b.txt missing: an error, as in the devkit.
        let e = got(&sub_dir).unwrap_err().to_string();
        assert!(e.contains("b.txt") && e.contains("empty file"), "{e}");
        write_submission(&sub_dir.join("b.txt"), &[]).unwrap();
        let s = got(&sub_dir).unwrap();
        let want = evaluate(
            &[
                SequenceInput {
                    name: "a",
                    n_frames: 2,
                    gt: &a,
                    dets: &da,
                },
                SequenceInput {
                    name: "b",
                    n_frames: 3,
                    gt: &b,
                    dets: &[],
                },
            ],
            &Region::rod2021(),
        )
        .unwrap();
        assert_eq!(s, want);
        assert_eq!(s.n_frames, 5);
        write_submission(&sub_dir.join("c.txt"), &[]).unwrap();
        assert!(got(&sub_dir).unwrap_err().to_string().contains("c.txt"));
        // A frame count too small for the labels is caught by the evaluation.
        std::fs::write(gt_dir.join(FRAMES_FILE), r#"{"a": 1, "b": 3}"#).unwrap();
        std::fs::remove_file(sub_dir.join("c.txt")).unwrap();
        assert!(got(&sub_dir).unwrap_err().to_string().contains("frame 1"));
        std::fs::write(gt_dir.join(FRAMES_FILE), "{\n\"a\": 2,\n\"b\": -3}").unwrap();
        let e = got(&sub_dir).unwrap_err();
        assert!(
            matches!(e, DataError::Malformed { line: 3, .. })
                && e.to_string().contains(FRAMES_FILE),
            "{e}"
        );
    }
}
