//! Objects and detections as ROD2021 writes them: one annotation line
//! `frame_id range_m azimuth_rad class_name` per object, one submission line
//! `frame_id range_m azimuth_rad class_name score` per detection (spec §2.2).
//!
//! The readers are stricter than the devkit's `read_gt_txt`/`read_sub_txt` (cruw-devkit
//! 7e9317d, `cruw/eval/rod/load_txt.py`), never looser: every file they accept, the devkit reads
//! to the same objects. Deliberate choices:
//! * **Blank lines are errors**, as in the devkit, whose `frame_id, r, a, class_name =
//!   line.split()` fails on them (a final newline is not a blank line; an empty file is an empty
//!   list). A submission our writer produces therefore never breaks the official evaluator.
//! * **A negative frame is an error**: the devkit would index its frame list with it and file the
//!   object silently under one of the sequence's last frames. A frame beyond the sequence is
//!   caught by [`super::evaluate`], which knows the frame count (the devkit raises there).
//! * **A score outside [0, 1] is an error** on reading and writing (spec pitfall 1): the devkit
//!   raises on a score above 1 whenever it meets a ground truth of its class, and a negative
//!   score is not a confidence. Clip before writing.
//! * Positions are kept exactly as written, not snapped to the grid: the devkit evaluates the
//!   metric positions of the txt files.
//! * The writers print every float in Rust's shortest round-trip form, so reading a written file
//!   gives back the same bits and the same metric (fixed decimals could merge distinct scores
//!   into ties and change the ranking).

use std::path::Path;

use super::ObjectClass;
use crate::error::DataError;

type Result<T> = std::result::Result<T, DataError>;

/// A labelled object in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub frame: usize,
    /// Metres.
    pub range: f64,
    /// Radians, 0 straight ahead, positive to the right as the devkit's grid.
    pub angle: f64,
    pub class: ObjectClass,
}

/// A detected object with its confidence in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub frame: usize,
    pub range: f64,
    pub angle: f64,
    pub class: ObjectClass,
    pub score: f64,
}

const ANNOTATION_FIELDS: &str = "frame_id range_m azimuth_rad class_name";
const SUBMISSION_FIELDS: &str = "frame_id range_m azimuth_rad class_name score";

/// An annotation txt (`annotations/train/<SEQ>.txt`), in file order.
pub fn read_annotations(path: &Path) -> Result<Vec<Object>> {
    parse_lines(path, 4, ANNOTATION_FIELDS, |f, at| {
        Ok(Object {
            frame: parse_frame(f[0], at)?,
            range: parse_coord(f[1], "range", at)?,
            angle: parse_coord(f[2], "azimuth", at)?,
            class: parse_class(f[3], at)?,
        })
    })
}

/// A submission txt (`<SEQ>.txt`), in file order.
pub fn read_submission(path: &Path) -> Result<Vec<Detection>> {
    parse_lines(path, 5, SUBMISSION_FIELDS, |f, at| {
        Ok(Detection {
            frame: parse_frame(f[0], at)?,
            range: parse_coord(f[1], "range", at)?,
            angle: parse_coord(f[2], "azimuth", at)?,
            class: parse_class(f[3], at)?,
            score: parse_score(f[4], at)?,
        })
    })
}

/// Writes an annotation txt atomically (a reader never sees half a file).
pub fn write_annotations(path: &Path, objects: &[Object]) -> Result<()> {
    write_atomically(path, &annotation_text(path, objects)?)
}

/// The annotation txt of `objects`, checked as [`write_annotations`] checks it (`path` names the
/// file in errors): for a caller that writes the file itself, e.g. into a run folder.
pub fn annotation_text(path: &Path, objects: &[Object]) -> Result<String> {
    let mut text = String::new();
    for (i, o) in objects.iter().enumerate() {
        check_position(path, i, o.frame, o.range, o.angle)?;
        text.push_str(&format!(
            "{} {} {} {}\n",
            o.frame,
            o.range,
            o.angle,
            o.class.name()
        ));
    }
    Ok(text)
}

/// Writes a submission txt atomically; refuses a score the devkit would fail on.
pub fn write_submission(path: &Path, dets: &[Detection]) -> Result<()> {
    write_atomically(path, &submission_text(path, dets)?)
}

/// The submission txt of `dets`, checked as [`write_submission`] checks it.
pub fn submission_text(path: &Path, dets: &[Detection]) -> Result<String> {
    let mut text = String::new();
    for (i, d) in dets.iter().enumerate() {
        check_position(path, i, d.frame, d.range, d.angle)?;
        if !(0.0..=1.0).contains(&d.score) {
            return Err(DataError::Invalid(format!(
                "{}: detection {i} (frame {}) has score {}: clip scores to [0, 1] before writing \
                 a submission (spec pitfall 1: the devkit raises on scores above 1)",
                path.display(),
                d.frame,
                d.score
            )));
        }
        text.push_str(&format!(
            "{} {} {} {} {}\n",
            d.frame,
            d.range,
            d.angle,
            d.class.name(),
            d.score
        ));
    }
    Ok(text)
}

fn check_position(path: &Path, i: usize, frame: usize, range: f64, angle: f64) -> Result<()> {
    if range.is_finite() && angle.is_finite() {
        return Ok(());
    }
    Err(DataError::Invalid(format!(
        "{}: entry {i} (frame {frame}) has a non-finite position (range {range}, azimuth \
         {angle}): fix the producer; the txt formats hold finite metres and radians",
        path.display()
    )))
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    // CoreError::Write already names the file and says "cannot write" (DataError::Io would
    // say "cannot read").
    kiln_core::atomic_write(path, text.as_bytes()).map_err(|e| DataError::Invalid(e.to_string()))
}

/// Where a field came from, for error messages.
struct At<'a> {
    path: &'a Path,
    line: usize,
}

impl At<'_> {
    fn err(&self, msg: String) -> DataError {
        DataError::Malformed {
            path: self.path.to_path_buf(),
            line: self.line,
            msg,
        }
    }
}

fn parse_lines<T>(
    path: &Path,
    n_fields: usize,
    layout: &str,
    parse: impl Fn(&[&str], &At) -> Result<T>,
) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = At { path, line: i + 1 };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            return Err(at.err(
                "blank line: the format has one object per line and the devkit's reader fails \
                 on blank lines; remove it"
                    .into(),
            ));
        }
        if fields.len() != n_fields {
            return Err(at.err(format!(
                "{} fields, expected {n_fields} (`{layout}`)",
                fields.len()
            )));
        }
        out.push(parse(&fields, &at)?);
    }
    Ok(out)
}

fn parse_frame(s: &str, at: &At) -> Result<usize> {
    match s.parse::<i64>() {
        Ok(f) if f >= 0 => usize::try_from(f)
            .map_err(|_| at.err(format!("frame_id {f} does not fit this machine's usize"))),
        Ok(f) => Err(at.err(format!(
            "negative frame_id {f}: frames are 0-based (the devkit would file it under a frame \
             counted from the end)"
        ))),
        Err(_) if s.parse::<f64>().is_ok() => Err(at.err(format!(
            "frame_id `{s}` is not an integer: write the 0-based frame index"
        ))),
        Err(_) => Err(at.err(format!("frame_id `{s}` is not a number"))),
    }
}

fn parse_coord(s: &str, what: &str, at: &At) -> Result<f64> {
    let v: f64 = s
        .parse()
        .map_err(|_| at.err(format!("{what} `{s}` is not a number")))?;
    if !v.is_finite() {
        return Err(at.err(format!("{what} `{s}` is not finite")));
    }
    Ok(v)
}

fn parse_class(s: &str, at: &At) -> Result<ObjectClass> {
    ObjectClass::parse(s).ok_or_else(|| {
        at.err(format!(
            "unknown class `{s}` (expected pedestrian, cyclist or car, lower case)"
        ))
    })
}

fn parse_score(s: &str, at: &At) -> Result<f64> {
    let v = parse_coord(s, "score", at)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(at.err(format!(
            "score {v} outside [0, 1]: clip scores to [0, 1] (spec pitfall 1: the devkit raises \
             on scores above 1)"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ObjectClass::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    /// The `Format` error of reading `text`: its line and message.
    fn ann_err(text: &str) -> (usize, String) {
        let f = file(text);
        match read_annotations(f.path()) {
            Err(DataError::Malformed { line, msg, path }) => {
                assert_eq!(path, f.path());
                (line, msg)
            }
            other => panic!("expected a format error for {text:?}, got {other:?}"),
        }
    }

    fn sub_err(text: &str) -> (usize, String) {
        let f = file(text);
        match read_submission(f.path()) {
            Err(DataError::Malformed { line, msg, .. }) => (line, msg),
            other => panic!("expected a format error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn reads_both_formats_in_file_order() {
        let f = file("0 3.5 -0.25 pedestrian\n2 10 0.1 car\r\n0 7.25 0.5 cyclist");
        let objs = read_annotations(f.path()).unwrap();
        assert_eq!(
            objs,
            vec![
                Object {
                    frame: 0,
                    range: 3.5,
                    angle: -0.25,
                    class: Pedestrian
                },
                Object {
                    frame: 2,
                    range: 10.0,
                    angle: 0.1,
                    class: Car
                },
                Object {
                    frame: 0,
                    range: 7.25,
                    angle: 0.5,
                    class: Cyclist
                },
            ]
        );
        let f = file("4   12.0\t-1.2 car 0.75\n");
        let dets = read_submission(f.path()).unwrap();
        assert_eq!(
            dets,
            vec![Detection {
                frame: 4,
                range: 12.0,
                angle: -1.2,
                class: Car,
                score: 0.75
            }]
        );
        assert!(read_annotations(file("").path()).unwrap().is_empty());
    }

    #[test]
    fn each_malformed_line_is_named() {
        let (line, msg) = ann_err("0 3 0 car\n1 3 0 car 0.5\n");
        assert_eq!(line, 2);
        assert!(msg.contains("5 fields, expected 4"), "{msg}");
        let (line, msg) = sub_err("0 3 0 car\n");
        assert_eq!(line, 1);
        assert!(msg.contains("4 fields, expected 5"), "{msg}");
        let (_, msg) = ann_err("0 3 x car\n");
        assert!(msg.contains("azimuth `x` is not a number"), "{msg}");
        let (_, msg) = ann_err("0 nan 0 car\n");
        assert!(msg.contains("range `nan` is not finite"), "{msg}");
        let (_, msg) = ann_err("0 3 inf car\n");
        assert!(msg.contains("not finite"), "{msg}");
        let (_, msg) = ann_err("0 3 0 truck\n");
        assert!(msg.contains("unknown class `truck`"), "{msg}");
        let (_, msg) = ann_err("0 3 0 Car\n");
        assert!(msg.contains("unknown class `Car`"), "{msg}");
        let (line, msg) = ann_err("0 3 0 car\n-1 3 0 car\n");
        assert_eq!(line, 2);
        assert!(msg.contains("negative frame_id -1"), "{msg}");
        let (_, msg) = ann_err("1.0 3 0 car\n");
        assert!(msg.contains("frame_id `1.0` is not an integer"), "{msg}");
        let (_, msg) = ann_err("one 3 0 car\n");
        assert!(msg.contains("frame_id `one` is not a number"), "{msg}");
        let (_, msg) = sub_err("0 3 0 car NaN\n");
        assert!(msg.contains("score `NaN` is not finite"), "{msg}");
        let (_, msg) = sub_err("0 3 0 car 1.2\n");
        assert!(
            msg.contains("outside [0, 1]") && msg.contains("clip"),
            "{msg}"
        );
        let (_, msg) = sub_err("0 3 0 car -0.1\n");
        assert!(msg.contains("outside [0, 1]"), "{msg}");
    }

    #[test]
    fn blank_lines_are_errors_as_in_the_devkit() {
        let (line, msg) = ann_err("0 3 0 car\n\n1 3 0 car\n");
        assert_eq!(line, 2);
        assert!(msg.contains("blank line"), "{msg}");
        let (line, _) = sub_err("0 3 0 car 0.5\n   \t\n");
        assert_eq!(line, 2);
        // A final newline is the end of the last line, not a blank line.
        assert_eq!(
            read_annotations(file("0 3 0 car\n").path()).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("absent.txt");
        match read_submission(&p) {
            Err(e @ DataError::Io { .. }) => assert!(e.to_string().contains("absent.txt")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn written_files_read_back_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let objs = vec![
            Object {
                frame: 0,
                range: 1.0 / 3.0,
                angle: -0.0,
                class: Pedestrian,
            },
            Object {
                frame: 7,
                range: 24.999_999_999_9,
                angle: 1e-9,
                class: Car,
            },
        ];
        let p = dir.path().join("seq/ann.txt");
        write_annotations(&p, &objs).unwrap();
        let back = read_annotations(&p).unwrap();
        assert_eq!(back, objs);
        assert_eq!(back[0].angle.to_bits(), (-0.0f64).to_bits());
        let dets = vec![
            Detection {
                frame: 3,
                range: 5.5,
                angle: 0.1,
                class: Cyclist,
                score: 0.123_456_789_012,
            },
            Detection {
                frame: 1,
                range: 2.0,
                angle: 0.2,
                class: Car,
                score: 1.0,
            },
            Detection {
                frame: 1,
                range: 2.0,
                angle: 0.2,
                class: Car,
                score: 0.0,
            },
        ];
        let p = dir.path().join("sub.txt");
        write_submission(&p, &dets).unwrap();
        assert_eq!(read_submission(&p).unwrap(), dets);
        write_submission(&p, &[]).unwrap();
        assert!(read_submission(&p).unwrap().is_empty());
    }

    #[test]
    fn writers_refuse_what_the_readers_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub.txt");
        let ok = Detection {
            frame: 0,
            range: 3.0,
            angle: 0.0,
            class: Car,
            score: 0.5,
        };
        write_submission(&p, &[ok]).unwrap();
        for bad in [1.0 + 1e-12, -0.01, f64::NAN, f64::INFINITY] {
            let d = Detection { score: bad, ..ok };
            let e = write_submission(&p, &[ok, d]).unwrap_err().to_string();
            assert!(
                e.contains("clip scores to [0, 1]") && e.contains("detection 1"),
                "{e}"
            );
        }
        let d = Detection {
            range: f64::NAN,
            ..ok
        };
        assert!(write_submission(&p, &[d]).is_err());
        let o = Object {
            frame: 0,
            range: 3.0,
            angle: f64::INFINITY,
            class: Car,
        };
        assert!(write_annotations(&dir.path().join("a.txt"), &[o]).is_err());
        // The refused writes left the earlier file whole.
        assert_eq!(read_submission(&p).unwrap(), vec![ok]);
    }
}
