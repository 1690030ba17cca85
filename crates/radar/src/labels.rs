//! Objects and detections as ROD2021 writes them: one annotation line
//! `frame_id range_m azimuth_rad class_name` per object, one submission line
//! `frame_id range_m azimuth_rad class_name score` per detection (spec §2.2).
//!
//! The types and the strict readers and writers live in [`kiln_data::rod::labels`] (with their
//! deliberate choices and tests), beside the metric, so that `kiln verify` reads submissions
//! without this crate; these wrappers return [`RadarError`](crate::RadarError), whose `Data`
//! variant keeps kiln-data's message naming the file and line.

use std::path::Path;

use crate::error::Result;

pub use kiln_data::rod::labels::{Detection, Object};

/// An annotation txt (`annotations/train/<SEQ>.txt`), in file order.
pub fn read_annotations(path: &Path) -> Result<Vec<Object>> {
    Ok(kiln_data::rod::read_annotations(path)?)
}

/// A submission txt (`<SEQ>.txt`), in file order.
pub fn read_submission(path: &Path) -> Result<Vec<Detection>> {
    Ok(kiln_data::rod::read_submission(path)?)
}

/// Writes an annotation txt atomically (a reader never sees half a file).
pub fn write_annotations(path: &Path, objects: &[Object]) -> Result<()> {
    Ok(kiln_data::rod::write_annotations(path, objects)?)
}

/// Writes a submission txt atomically; refuses a score the devkit would fail on.
pub fn write_submission(path: &Path, dets: &[Detection]) -> Result<()> {
    Ok(kiln_data::rod::write_submission(path, dets)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RadarError;

    #[test]
    fn errors_still_name_file_and_line() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "0 3 0 car\n0 3 0 truck\n").unwrap();
        let e = read_annotations(f.path()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, RadarError::Data(_)), "{e:?}");
        let want = format!("{}:2: unknown class `truck`", f.path().display());
        assert!(msg.starts_with(&want), "{msg}");
    }
}
