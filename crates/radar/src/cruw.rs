//! The CRUW / ROD2021 file layout as the devkit's `reorganize_rod2021.sh` leaves it (spec §2.1),
//! read strictly, and the `.npy` frames in it.
//!
//! ```text
//! <root>/sequences/<split>/<SEQ>/RADAR_RA_H/<FRAME:06d>_<CHIRP:04d>.npy   (128, 128, 2) float
//! <root>/annotations/<split>/<SEQ>.txt                                   frame range azimuth class
//! ```
//!
//! Path-layout mismatches are the most common trouble users report (spec §13: `KeyError
//! 'radar_data'` after preparation), so every layout error names the path that was expected, what
//! was found instead, and what to do. A sequence's frame count is its number of radar files / 4;
//! a frame missing one of the four chirps, or a file that is not `<frame>_<chirp>.npy`, is an
//! error, never a silently shorter sequence. Hidden files (a leading `.`, such as an interrupted
//! atomic write's temp file) are ignored.
//!
//! The `.npy` reader takes exactly what NumPy writes for these frames: little-endian `<f4` or
//! `<f8`, C order, header version 1, 2 or 3, and the frame shape of the sensor config. Values
//! are returned as f32 in the file's (range, azimuth, real/imag) order; windows are rearranged
//! into the models' (2, T, R, A) layout (spec §3). No normalisation: the devkit has none.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{RadarError, Result};
use crate::labels::Object;
use crate::sensor::RadarConfig;

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The frames of one `.npy` file: its shape and its values as f32, C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a little-endian float `.npy` file (`<f4` or `<f8`, C order). `expected_shape`, when
/// given, must match exactly.
pub fn read_npy(path: &Path, expected_shape: Option<&[usize]>) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| RadarError::io(path, e))?;
    parse_npy(path, &bytes, expected_shape)
}

fn parse_npy(path: &Path, bytes: &[u8], expected_shape: Option<&[usize]>) -> Result<NpyArray> {
    let bad = |msg: String| RadarError::format(path, 0, msg);
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err(bad(
            "not a NumPy .npy file (expected the magic bytes \\x93NUMPY at the start); CRUW \
             frames are arrays saved with numpy.save"
                .into(),
        ));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad(
                    "truncated .npy header (version 2 needs 12 bytes)".into()
                ));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => {
            return Err(bad(format!(
                ".npy format version {v}.{} is not supported (expected 1, 2 or 3)",
                bytes[7]
            )))
        }
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(bad(format!(
            "truncated .npy header: it declares {header_len} header bytes, the file has {}",
            bytes.len() - header_start
        )));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| bad(".npy header is not text".into()))?;
    let descr = header_value(header, "descr")
        .ok_or_else(|| bad(format!("no 'descr' in the .npy header {header:?}")))?;
    let item = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" => 4,
        "<f8" => 8,
        other => {
            return Err(bad(format!(
                "dtype {other} is not supported: expected little-endian float ('<f4' or '<f8'); \
                 convert with array.astype('<f4')"
            )))
        }
    };
    let fortran = header_value(header, "fortran_order")
        .ok_or_else(|| bad(format!("no 'fortran_order' in the .npy header {header:?}")))?;
    match fortran {
        "False" => {}
        "True" => {
            return Err(bad(
                "array is in Fortran order: expected C order (save np.ascontiguousarray(x))".into(),
            ))
        }
        other => return Err(bad(format!("fortran_order {other:?} is not True or False"))),
    }
    let shape_text = header_value(header, "shape")
        .ok_or_else(|| bad(format!("no 'shape' in the .npy header {header:?}")))?;
    let shape = parse_shape(shape_text).ok_or_else(|| {
        bad(format!(
            "cannot read the shape {shape_text:?} of the .npy header"
        ))
    })?;
    if let Some(want) = expected_shape {
        if shape != want {
            return Err(bad(format!(
                "shape {} where a CRUW frame is {} (range bins, azimuth bins, real/imag)",
                fmt_shape(&shape),
                fmt_shape(want)
            )));
        }
    }
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {} is too large", fmt_shape(&shape))))?;
    let body = &bytes[data_start..];
    let want_bytes = count.saturating_mul(item);
    if body.len() != want_bytes {
        return Err(bad(format!(
            "{} data bytes where shape {} of {descr} needs {want_bytes}: the file is {}",
            body.len(),
            fmt_shape(&shape),
            if body.len() < want_bytes {
                "truncated (re-extract or re-copy it)"
            } else {
                "longer than its header says"
            }
        )));
    }
    let data = if item == 4 {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    };
    Ok(NpyArray { shape, data })
}

/// The raw text of `key`'s value in a NumPy header dict (`{'descr': '<f4', 'shape': (2, 3), }`).
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q)? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The bytes of a `<f4`, C-order, version-1 `.npy` file, as `numpy.save` writes them.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(RadarError::Invalid(format!(
            "npy: shape {} holds {count} values, got {}",
            fmt_shape(shape),
            data.len()
        )));
    }
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        fmt_shape(shape)
    );
    // NumPy pads so the data starts on a 64-byte boundary, the header ending in a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes `data` as a `<f4` `.npy` file atomically (a reader never sees half a frame).
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let bytes = npy_bytes(shape, data)?;
    atomic_write(path, &bytes)
}

fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    kiln_core::atomic_write(path, bytes).map_err(|e| match e {
        kiln_core::CoreError::Write { path, source } => RadarError::io(path, source),
        other => RadarError::io(path, std::io::Error::other(other.to_string())),
    })
}

/// The training and test window starts of a sequence (spec §3): 0, stride, 2·stride, … while a
/// whole window of `win` frames fits, i.e. ⌊(N − win)/stride⌋ + 1 windows. The last up to
/// `stride − 1` frames are never covered (spec §14.7). A sequence shorter than a window has none.
pub fn window_starts(n_frames: usize, win: usize, stride: usize) -> Result<Vec<usize>> {
    if win == 0 || stride == 0 {
        return Err(RadarError::Invalid(format!(
            "window length {win} and stride {stride} must both be at least 1"
        )));
    }
    if n_frames < win {
        return Ok(Vec::new());
    }
    Ok((0..=n_frames - win).step_by(stride).collect())
}

/// A CRUW root folder laid out as the devkit's reorganisation script leaves it.
#[derive(Debug, Clone)]
pub struct CruwRoot {
    root: PathBuf,
    chirp_folder: String,
    chirp_ids: Vec<usize>,
    rows: usize,
    cols: usize,
}

impl CruwRoot {
    /// A root with the ROD2021 sensor's frame shape, chirps and folder name. Nothing is checked
    /// until something is read, so the same value can be used to write a new dataset.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_config(root, &RadarConfig::default())
    }

    pub fn with_config(root: impl Into<PathBuf>, cfg: &RadarConfig) -> Self {
        Self {
            root: root.into(),
            chirp_folder: cfg.chirp_folder.clone(),
            chirp_ids: cfg.chirp_ids.clone(),
            rows: cfg.ramap_rsize,
            cols: cfg.ramap_asize,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The chirp ids of the stored files (ROD2021: 0, 64, 128, 192).
    pub fn chirp_ids(&self) -> &[usize] {
        &self.chirp_ids
    }

    /// The shape of one stored frame: (range bins, azimuth bins, 2).
    pub fn frame_shape(&self) -> [usize; 3] {
        [self.rows, self.cols, 2]
    }

    /// Values in one frame (R·A·2).
    pub fn frame_len(&self) -> usize {
        self.rows * self.cols * 2
    }

    pub fn split_dir(&self, split: &str) -> PathBuf {
        self.root.join("sequences").join(split)
    }

    pub fn radar_dir(&self, split: &str, seq: &str) -> PathBuf {
        self.split_dir(split).join(seq).join(&self.chirp_folder)
    }

    pub fn frame_path(&self, split: &str, seq: &str, frame: usize, chirp: usize) -> PathBuf {
        self.radar_dir(split, seq)
            .join(format!("{frame:06}_{chirp:04}.npy"))
    }

    pub fn annotation_path(&self, split: &str, seq: &str) -> PathBuf {
        self.root
            .join("annotations")
            .join(split)
            .join(format!("{seq}.txt"))
    }

    /// The sequences of a split, sorted by name (hidden folders are skipped).
    pub fn sequences(&self, split: &str) -> Result<Vec<String>> {
        let dir = self.split_dir(split);
        let entries = std::fs::read_dir(&dir).map_err(|e| self.missing_split(&dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RadarError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if entry.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The error for a missing `sequences/<split>`, recognising the unreorganised zip layout.
    fn missing_split(&self, dir: &Path, e: std::io::Error) -> RadarError {
        if e.kind() != ErrorKind::NotFound {
            return RadarError::io(dir, e);
        }
        let hint =
            if self.root.join("TRAIN_RAD_H").is_dir() || self.root.join("TEST_RAD_H").is_dir() {
                "this looks like the unzipped ROD2021 archives: run the devkit's \
             scripts/reorganize_rod2021.sh in the root first"
                    .to_string()
            } else if !self.root.is_dir() {
                format!("the CRUW root {} does not exist", self.root.display())
            } else {
                format!(
                    "expected {}/sequences/<split>/<SEQ>/{}/<frame:06d>_<chirp:04d>.npy \
                 (the devkit's reorganize_rod2021.sh layout); check the root folder",
                    self.root.display(),
                    self.chirp_folder
                )
            };
        RadarError::io(dir, std::io::Error::new(ErrorKind::NotFound, hint))
    }

    /// Frames in a sequence: its radar files / the chirps per frame, after checking that every
    /// frame 0..N has every chirp and that no other file is there.
    pub fn n_frames(&self, split: &str, seq: &str) -> Result<usize> {
        let dir = self.radar_dir(split, seq);
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            if e.kind() != ErrorKind::NotFound {
                return RadarError::io(&dir, e);
            }
            let seq_dir = self.split_dir(split).join(seq);
            let what = if seq_dir.is_dir() {
                format!(
                    "sequence folder {} has no {} folder: frames go in \
                     <SEQ>/{}/<frame:06d>_<chirp:04d>.npy",
                    seq_dir.display(),
                    self.chirp_folder,
                    self.chirp_folder
                )
            } else {
                format!(
                    "no sequence {seq} in {}: list the split's sequences with CruwRoot::sequences",
                    self.split_dir(split).display()
                )
            };
            RadarError::io(&dir, std::io::Error::new(ErrorKind::NotFound, what))
        })?;
        let n_chirps = self.chirp_ids.len();
        if n_chirps == 0 || n_chirps > 63 {
            return Err(RadarError::Invalid(format!(
                "{} chirp ids in the sensor config: expected 1 to 63 (ROD2021 stores 4)",
                n_chirps
            )));
        }
        let mut have: Vec<u64> = Vec::new();
        let mut files = 0usize;
        for entry in entries {
            let entry = entry.map_err(|e| RadarError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let parsed = parse_frame_name(&name)
                .and_then(|(f, c)| Some((f, self.chirp_ids.iter().position(|&x| x == c)?)));
            let Some((frame, chirp)) = parsed else {
                return Err(RadarError::format(
                    entry.path(),
                    0,
                    format!(
                        "unexpected file in {}: expected only <frame:06d>_<chirp:04d>.npy with \
                         chirp in {:?}; move other files out",
                        self.chirp_folder, self.chirp_ids
                    ),
                ));
            };
            if have.len() <= frame {
                have.resize(frame + 1, 0);
            }
            have[frame] |= 1 << chirp;
            files += 1;
        }
        if files == 0 {
            return Err(RadarError::format(
                &dir,
                0,
                "no radar frames: expected <frame:06d>_<chirp:04d>.npy files",
            ));
        }
        let full = (1u64 << n_chirps) - 1;
        for (frame, mask) in have.iter().enumerate() {
            if *mask != full {
                let missing = (0..n_chirps)
                    .find(|c| mask & (1 << c) == 0)
                    .map_or(0, |c| self.chirp_ids[c]);
                return Err(RadarError::io(
                    self.frame_path(split, seq, frame, missing),
                    std::io::Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "missing: frame {frame} has {} of its {n_chirps} chirp files and \
                             frames run 0..{}; every frame needs chirps {:?} (re-extract the \
                             sequence)",
                            mask.count_ones(),
                            have.len(),
                            self.chirp_ids
                        ),
                    ),
                ));
            }
        }
        Ok(files / n_chirps)
    }

    fn check_chirp(&self, chirp: usize) -> Result<()> {
        if self.chirp_ids.contains(&chirp) {
            Ok(())
        } else {
            Err(RadarError::Invalid(format!(
                "chirp {chirp} is not stored: the chirp ids are {:?} (the file name's last four \
                 digits), not indices",
                self.chirp_ids
            )))
        }
    }

    /// One frame of one chirp as stored: (R, A, 2) f32, real then imaginary.
    pub fn read_frame(
        &self,
        split: &str,
        seq: &str,
        frame: usize,
        chirp: usize,
    ) -> Result<Vec<f32>> {
        self.check_chirp(chirp)?;
        let path = self.frame_path(split, seq, frame, chirp);
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                RadarError::io(
                    &path,
                    std::io::Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "no such frame file: check the frame ({frame}) against \
                             CruwRoot::n_frames and the layout <SEQ>/{}/<frame:06d>_<chirp:04d>.npy",
                            self.chirp_folder
                        ),
                    ),
                )
            } else {
                RadarError::io(&path, e)
            }
        })?;
        Ok(parse_npy(&path, &bytes, Some(&self.frame_shape()))?.data)
    }

    /// `len` consecutive frames of one chirp from `start`, in the models' layout (2, T, R, A)
    /// flattened: channel 0 the real part, channel 1 the imaginary part (spec §3).
    pub fn read_window(
        &self,
        split: &str,
        seq: &str,
        start: usize,
        len: usize,
        chirp: usize,
    ) -> Result<Vec<f32>> {
        let plane = self.rows * self.cols;
        let mut out = vec![0.0f32; 2 * len * plane];
        for t in 0..len {
            let frame = self.read_frame(split, seq, start + t, chirp)?;
            let (re, im) = out.split_at_mut(len * plane);
            let re = &mut re[t * plane..(t + 1) * plane];
            let im = &mut im[t * plane..(t + 1) * plane];
            for (p, v) in frame.chunks_exact(2).enumerate() {
                re[p] = v[0];
                im[p] = v[1];
            }
        }
        Ok(out)
    }

    /// A sequence's labelled objects. Every frame id must be below the sequence's frame count
    /// (a mismatch means annotations and frames come from different sequences or versions).
    pub fn read_annotations(&self, split: &str, seq: &str) -> Result<Vec<Object>> {
        let path = self.annotation_path(split, seq);
        if !path.is_file() {
            let what = if split == "test" {
                "no annotation file: ROD2021 test labels are withheld (spec §2.2); evaluate on a \
                 held-out part of the training split"
                    .to_string()
            } else {
                format!(
                    "no annotation file for sequence {seq}: the devkit layout puts \
                     TRAIN_RAD_H_ANNO's <SEQ>.txt files in {}/annotations/{split}/ \
                     (scripts/reorganize_rod2021.sh)",
                    self.root.display()
                )
            };
            return Err(RadarError::io(
                &path,
                std::io::Error::new(ErrorKind::NotFound, what),
            ));
        }
        let objects = crate::labels::read_annotations(&path)?;
        let n = self.n_frames(split, seq)?;
        if let Some(o) = objects.iter().find(|o| o.frame >= n) {
            return Err(RadarError::format(
                &path,
                0,
                format!(
                    "an object in frame {} but sequence {seq} has {n} frames (0..{n}): the \
                     annotation file does not belong to these radar frames",
                    o.frame
                ),
            ));
        }
        Ok(objects)
    }

    /// Writes one frame of one chirp, (R, A, 2) f32.
    pub fn write_frame(
        &self,
        split: &str,
        seq: &str,
        frame: usize,
        chirp: usize,
        data: &[f32],
    ) -> Result<()> {
        self.check_chirp(chirp)?;
        let path = self.frame_path(split, seq, frame, chirp);
        if data.len() != self.frame_len() {
            return Err(RadarError::Invalid(format!(
                "{}: a frame holds {} values ((R, A, 2) = {}), got {}",
                path.display(),
                self.frame_len(),
                fmt_shape(&self.frame_shape()),
                data.len()
            )));
        }
        write_npy(&path, &self.frame_shape(), data)
    }

    /// Writes a whole sequence: `frames[f][c]` is frame f of chirp `chirp_ids[c]`, then the
    /// annotation file.
    pub fn write_sequence(
        &self,
        split: &str,
        seq: &str,
        frames: &[Vec<Vec<f32>>],
        objects: &[Object],
    ) -> Result<()> {
        for (f, chirps) in frames.iter().enumerate() {
            self.write_chirps(split, seq, f, chirps)?;
        }
        self.write_annotations(split, seq, objects)
    }

    /// Writes frame `frame` for all chirps (`chirps[c]` belongs to `chirp_ids[c]`).
    pub fn write_chirps(
        &self,
        split: &str,
        seq: &str,
        frame: usize,
        chirps: &[Vec<f32>],
    ) -> Result<()> {
        if chirps.len() != self.chirp_ids.len() {
            return Err(RadarError::Invalid(format!(
                "frame {frame} of {seq}: {} chirps given, the layout stores {} ({:?})",
                chirps.len(),
                self.chirp_ids.len(),
                self.chirp_ids
            )));
        }
        for (c, data) in self.chirp_ids.iter().zip(chirps) {
            self.write_frame(split, seq, frame, *c, data)?;
        }
        Ok(())
    }

    pub fn write_annotations(&self, split: &str, seq: &str, objects: &[Object]) -> Result<()> {
        crate::labels::write_annotations(&self.annotation_path(split, seq), objects)
    }
}

/// (frame, chirp) of `FFFFFF_CCCC.npy`; `None` for any other name.
fn parse_frame_name(name: &str) -> Option<(usize, usize)> {
    let stem = name.strip_suffix(".npy")?;
    let (f, c) = stem.split_once('_')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(f, 6) || !digits(c, 4) {
        return None;
    }
    Some((f.parse().ok()?, c.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::ObjectClass;

    fn frame(seed: usize) -> Vec<f32> {
        (0..128 * 128 * 2)
            .map(|i| ((i * 31 + seed * 7) % 1000) as f32 * 0.5 - 250.0)
            .collect()
    }

    /// A small dataset: one train sequence of `n` frames with one object per frame.
    fn dataset(n: usize) -> (tempfile::TempDir, CruwRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = CruwRoot::new(dir.path());
        let frames: Vec<Vec<Vec<f32>>> = (0..n)
            .map(|f| (0..4).map(|c| frame(f * 4 + c)).collect())
            .collect();
        let objects: Vec<Object> = (0..n)
            .map(|f| Object {
                frame: f,
                range: 5.0 + f as f64,
                angle: 0.1,
                class: ObjectClass::Car,
            })
            .collect();
        root.write_sequence("train", "2019_04_09_BMS1000", &frames, &objects)
            .unwrap();
        (dir, root)
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.expect_err("expected an error").to_string()
    }

    /// The header bytes NumPy would write for `descr`/`fortran`/`shape`, version `major`.
    fn header(major: u8, descr: &str, fortran: &str, shape: &str) -> Vec<u8> {
        let mut h =
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        h.push('\n');
        let mut out = NPY_MAGIC.to_vec();
        out.push(major);
        out.push(0);
        if major == 1 {
            out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(h.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(h.as_bytes());
        out
    }

    #[test]
    fn npy_round_trip_and_numpy_header_layout() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 1.5 - 3.0).collect();
        let bytes = npy_bytes(&[2, 3, 4], &data).unwrap();
        // NumPy's own layout: the data starts on a 64-byte boundary, the header ends in '\n'.
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes[10 + hlen - 1], b'\n');
        let p = Path::new("x.npy");
        let back = parse_npy(p, &bytes, Some(&[2, 3, 4])).unwrap();
        assert_eq!(back.shape, vec![2, 3, 4]);
        assert_eq!(back.data, data);
    }

    #[test]
    fn npy_reads_f8_and_version_2_headers() {
        let p = Path::new("x.npy");
        let mut bytes = header(2, "<f8", "False", "(3,)");
        for v in [1.25f64, -2.5, 1e30] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(p, &bytes, Some(&[3])).unwrap();
        assert_eq!(a.data, vec![1.25, -2.5, 1e30]);
        let mut bytes = header(1, "<f4", "False", "(1, 2)");
        for v in [7.0f32, 8.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(parse_npy(p, &bytes, None).unwrap().shape, vec![1, 2]);
    }

    #[test]
    fn npy_rejects_malformed_files_saying_what_was_expected() {
        let p = Path::new("bad.npy");
        let good = npy_bytes(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 not numpy at all".to_vec(), "magic"),
            (good[..8].to_vec(), "magic"),
            (good[..40].to_vec(), "truncated .npy header"),
            (good[..good.len() - 3].to_vec(), "truncated"),
            ([good.clone(), vec![0; 4]].concat(), "longer than"),
            (
                [header(1, "<i4", "False", "(2, 2)"), vec![0; 16]].concat(),
                "dtype <i4",
            ),
            (
                [header(1, ">f4", "False", "(2, 2)"), vec![0; 16]].concat(),
                "little-endian",
            ),
            (
                [header(1, "<f4", "True", "(2, 2)"), vec![0; 16]].concat(),
                "Fortran order",
            ),
            (
                [header(1, "<f4", "False", "(4,)"), vec![0; 16]].concat(),
                "shape (4,)",
            ),
            ([header(7, "<f4", "False", "(2, 2)")].concat(), "version 7"),
        ];
        for (bytes, want) in cases {
            let e = parse_npy(p, &bytes, Some(&[2, 2])).expect_err(want);
            let msg = e.to_string();
            assert!(matches!(e, RadarError::Format { line: 0, .. }), "{msg}");
            assert!(
                msg.contains("bad.npy") && msg.contains(want),
                "{want}: {msg}"
            );
        }
        // The frame reader names the expected CRUW shape.
        let msg = err_text(parse_npy(p, &good, Some(&[128, 128, 2])));
        assert!(
            msg.contains("(2, 2) where a CRUW frame is (128, 128, 2)"),
            "{msg}"
        );
    }

    #[test]
    fn window_count_follows_the_spec_formula() {
        for stride in [1, 4, 8] {
            for n in 0..200usize {
                let starts = window_starts(n, 16, stride).unwrap();
                // Spec §12.3: ⌈(N − 15)/stride⌉ windows (none when N < 16); §3: ⌊(N−16)/s⌋+1.
                let want = if n < 16 { 0 } else { (n - 15).div_ceil(stride) };
                assert_eq!(starts.len(), want, "N={n} stride={stride}");
                if n >= 16 {
                    assert_eq!(want, (n - 16) / stride + 1);
                }
                for (k, s) in starts.iter().enumerate() {
                    assert_eq!(*s, k * stride);
                    assert!(s + 16 <= n);
                }
            }
        }
        assert!(window_starts(100, 16, 0).is_err());
    }

    #[test]
    fn layout_round_trip_frames_windows_and_annotations() {
        let (_dir, root) = dataset(5);
        let seq = "2019_04_09_BMS1000";
        assert_eq!(root.sequences("train").unwrap(), vec![seq.to_string()]);
        assert_eq!(root.n_frames("train", seq).unwrap(), 5);
        assert!(root
            .frame_path("train", seq, 3, 64)
            .ends_with("sequences/train/2019_04_09_BMS1000/RADAR_RA_H/000003_0064.npy"));
        assert_eq!(
            root.read_frame("train", seq, 3, 64).unwrap(),
            frame(3 * 4 + 1)
        );
        // (2, T, R, A): channel 0 = the real parts (even positions), channel 1 = imaginary.
        let w = root.read_window("train", seq, 1, 3, 0).unwrap();
        let plane = 128 * 128;
        assert_eq!(w.len(), 2 * 3 * plane);
        for t in 0..3 {
            let f = frame((1 + t) * 4);
            for p in [0, 1, 77 * 128 + 5, plane - 1] {
                assert_eq!(w[t * plane + p], f[2 * p]);
                assert_eq!(w[3 * plane + t * plane + p], f[2 * p + 1]);
            }
        }
        let objects = root.read_annotations("train", seq).unwrap();
        assert_eq!(objects.len(), 5);
        assert_eq!(objects[4].frame, 4);
        assert!((objects[4].range - 9.0).abs() < 1e-6);
        assert!(matches!(
            root.read_frame("train", seq, 0, 1),
            Err(RadarError::Invalid(_))
        ));
        let msg = err_text(root.read_frame("train", seq, 5, 0));
        assert!(
            msg.contains("000005_0000.npy") && msg.contains("n_frames"),
            "{msg}"
        );
    }

    #[test]
    fn sequences_are_sorted_and_hidden_entries_skipped() {
        let (dir, root) = dataset(1);
        for s in ["2019_05_09_ZZZ", "2019_01_01_AAA", ".partial"] {
            std::fs::create_dir_all(dir.path().join("sequences/train").join(s)).unwrap();
        }
        std::fs::write(dir.path().join("sequences/train/readme.txt"), "x").unwrap();
        assert_eq!(
            root.sequences("train").unwrap(),
            vec!["2019_01_01_AAA", "2019_04_09_BMS1000", "2019_05_09_ZZZ"]
        );
    }

    #[test]
    fn a_missing_chirp_or_stray_file_is_an_error_naming_the_path() {
        let (dir, root) = dataset(3);
        let seq = "2019_04_09_BMS1000";
        let radar = root.radar_dir("train", seq);
        std::fs::remove_file(radar.join("000001_0128.npy")).unwrap();
        let msg = err_text(root.n_frames("train", seq));
        assert!(
            msg.contains("000001_0128.npy") && msg.contains("missing"),
            "{msg}"
        );
        // A missing last frame's chirp too: frames are not silently dropped.
        std::fs::write(radar.join("000001_0128.npy"), b"").unwrap();
        std::fs::remove_file(radar.join("000002_0192.npy")).unwrap();
        let msg = err_text(root.n_frames("train", seq));
        assert!(msg.contains("000002_0192.npy"), "{msg}");
        std::fs::write(radar.join("000002_0192.npy"), b"").unwrap();
        assert_eq!(root.n_frames("train", seq).unwrap(), 3);
        // Hidden files are skipped; any other name is refused.
        std::fs::write(radar.join(".000000_0000.npy.123.tmp"), b"").unwrap();
        assert_eq!(root.n_frames("train", seq).unwrap(), 3);
        for stray in ["000003_0001.npy", "3_0.npy", "000003_0000.npz", "notes.txt"] {
            std::fs::write(radar.join(stray), b"").unwrap();
            let msg = err_text(root.n_frames("train", seq));
            assert!(
                msg.contains(stray) && msg.contains("unexpected file"),
                "{msg}"
            );
            std::fs::remove_file(radar.join(stray)).unwrap();
        }
        // A truncated frame file is named by the reader.
        let msg = err_text(root.read_frame("train", seq, 1, 128));
        assert!(
            msg.contains("000001_0128.npy") && msg.contains("magic"),
            "{msg}"
        );
        drop(dir);
    }

    #[test]
    fn layout_mismatches_say_what_was_expected() {
        let dir = tempfile::tempdir().unwrap();
        let root = CruwRoot::new(dir.path());
        let msg = err_text(root.sequences("train"));
        assert!(
            msg.contains("sequences/train") && msg.contains("reorganize_rod2021"),
            "{msg}"
        );
        std::fs::create_dir_all(dir.path().join("TRAIN_RAD_H/2019_04_09_BMS1000")).unwrap();
        let msg = err_text(root.sequences("train"));
        assert!(msg.contains("unzipped ROD2021"), "{msg}");
        std::fs::create_dir_all(dir.path().join("sequences/train/SEQ/IMAGES_0")).unwrap();
        let msg = err_text(root.n_frames("train", "SEQ"));
        assert!(msg.contains("has no RADAR_RA_H folder"), "{msg}");
        let msg = err_text(root.n_frames("train", "OTHER"));
        assert!(msg.contains("no sequence OTHER"), "{msg}");
        std::fs::create_dir_all(dir.path().join("sequences/train/SEQ/RADAR_RA_H")).unwrap();
        let msg = err_text(root.n_frames("train", "SEQ"));
        assert!(msg.contains("no radar frames"), "{msg}");
    }

    #[test]
    fn missing_or_mismatched_annotations_are_errors_with_what_to_do() {
        let (dir, root) = dataset(2);
        let seq = "2019_04_09_BMS1000";
        let ann = root.annotation_path("train", seq);
        assert!(ann.ends_with("annotations/train/2019_04_09_BMS1000.txt"));
        std::fs::remove_file(&ann).unwrap();
        let msg = err_text(root.read_annotations("train", seq));
        assert!(
            msg.contains("2019_04_09_BMS1000.txt") && msg.contains("TRAIN_RAD_H_ANNO"),
            "{msg}"
        );
        let msg = err_text(root.read_annotations("test", seq));
        assert!(msg.contains("withheld"), "{msg}");
        // An object beyond the last frame: annotations of another sequence. Frames are 0-based,
        // so frame 2 of a 2-frame sequence is already one too many.
        std::fs::write(&ann, "1 5.0 0.1 car\n2 5.0 0.1 car\n").unwrap();
        let msg = err_text(root.read_annotations("train", seq));
        assert!(
            msg.contains("frame 2") && msg.contains("has 2 frames"),
            "{msg}"
        );
        drop(dir);
    }
}
