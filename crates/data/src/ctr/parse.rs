//! The row parsers and the line scanner that both the in-memory readers and the two-pass cache
//! builder run, so the two paths cannot drift apart: they see the same rows, skip the same
//! malformed lines and build the same first-appearance dictionaries.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{CtrFormat, Hashing, ReadOptions, ReadReport};
use crate::DataError;

/// How many bad rows a lenient read lists by line number (the rest are only counted).
pub(crate) const FIRST_BAD_KEPT: usize = 10;

/// What a strict read's malformed-row error tells the user to do, in each of the three places
/// the switch lives: the CLI flag, the experiment file and the library option.
pub(crate) const LENIENT_HINT: &str = "repair the file, or pass `--lenient` to kiln (`lenient = \
     true` in the experiment's profile; `ReadOptions::lenient(true)` from Rust) to count and \
     skip malformed rows";

/// Criteo Kaggle: label, I1..I13, C1..C26.
pub(crate) const CRITEO_DENSE: usize = 13;
pub(crate) const CRITEO_CAT: usize = 26;
pub(crate) const CRITEO_FIELDS: usize = 1 + CRITEO_DENSE + CRITEO_CAT;
/// Avazu: id, click, hour and the 21 categorical columns.
pub(crate) const AVAZU_FIELDS: usize = 24;
pub(crate) const AVAZU_CAT: usize = 22;

/// Clamp-then-log as DLRM does (`X_int[X_int < 0] = 0` at preprocessing, `log(x + 1)` at load),
/// so the model sees the same inputs as the PyTorch reference.
pub(crate) fn dense_transform(x: i64) -> f32 {
    (x.max(0) as f64).ln_1p() as f32
}

/// FNV-1a, 64-bit. Avazu's values are strings; a fixed, documented hash keeps the ids (and the
/// effect of a modulus) the same across runs, platforms and Rust versions, which `std`'s
/// randomly seeded `DefaultHasher` would not.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A splitmix64 finaliser as the dictionaries' hasher: the keys are already hashes or small
/// integers (after a modulus), so SipHash's DoS resistance buys nothing, and on the full Kaggle
/// file the dictionaries see ~1.2 billion look-ups per pass.
#[derive(Default)]
pub(crate) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

type Dict = HashMap<u64, u32, BuildHasherDefault<MixHasher>>;

/// One dictionary per categorical feature, ids in first-appearance order.
pub(crate) struct Dicts {
    maps: Vec<Dict>,
}

impl Dicts {
    pub(crate) fn new(n_cat: usize) -> Self {
        Dicts {
            maps: (0..n_cat).map(|_| Dict::default()).collect(),
        }
    }

    /// Assigns the next id to keys not seen before.
    pub(crate) fn insert(&mut self, keys: &[u64], ids: &mut Vec<u32>) -> Result<(), String> {
        for (f, (&k, map)) in keys.iter().zip(&mut self.maps).enumerate() {
            let id = match map.get(&k) {
                Some(&id) => id,
                None => {
                    let next = u32::try_from(map.len()).map_err(|_| {
                        format!(
                            "categorical feature {} has more than 2^32 distinct values; set a modulus (ReadOptions::modulo)",
                            f + 1
                        )
                    })?;
                    map.insert(k, next);
                    next
                }
            };
            ids.push(id);
        }
        Ok(())
    }

    /// Looks keys up in frozen dictionaries (pass 2 of the cache builder).
    pub(crate) fn lookup(&self, keys: &[u64], ids: &mut Vec<u32>) -> Option<()> {
        for (k, map) in keys.iter().zip(&self.maps) {
            ids.push(*map.get(k)?);
        }
        Some(())
    }

    /// Cardinalities, at least 1 each so every feature can back an embedding table even when
    /// no row was read.
    pub(crate) fn counts(&self) -> Vec<usize> {
        self.maps.iter().map(|m| m.len().max(1)).collect()
    }
}

/// One parsed row before the dictionary: keys are the raw categorical values (Criteo's hex as an
/// integer, Avazu's FNV-1a hash), already reduced by the modulus when hashing is on.
pub(crate) struct RawRow {
    pub label: f32,
    pub dense: Vec<f32>,
    pub keys: Vec<u64>,
}

/// Shortens a field for an error message so one garbage line cannot flood the terminal.
fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

fn criteo_field_name(i: usize) -> String {
    match i {
        0 => "label".into(),
        1..=CRITEO_DENSE => format!("I{i}"),
        _ => format!("C{}", i - CRITEO_DENSE),
    }
}

fn parse_label(field: &[u8], i: usize, name: impl Fn() -> String) -> Result<f32, String> {
    match field {
        b"0" => Ok(0.0),
        b"1" => Ok(1.0),
        _ => Err(format!(
            "field {} ({}) = `{}`: the label must be 0 or 1",
            i + 1,
            name(),
            show(field)
        )),
    }
}

/// DLRM reads an empty integer as 0; anything else must be a (possibly negative) integer.
fn parse_int(field: &[u8], i: usize, name: impl Fn() -> String) -> Result<i64, String> {
    if field.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            format!(
                "field {} ({}) = `{}`: not an integer",
                i + 1,
                name(),
                show(field)
            )
        })
}

/// DLRM substitutes "0" for an empty categorical and parses it with `int(x, 16)`; Criteo's
/// values are 32-bit hashes written as 8 hex digits.
fn parse_hex(field: &[u8], i: usize, name: impl Fn() -> String) -> Result<u64, String> {
    if field.is_empty() {
        return Ok(0);
    }
    let bad = || {
        format!(
            "field {} ({}) = `{}`: not a hexadecimal value of at most 8 digits",
            i + 1,
            name(),
            show(field)
        )
    };
    if field.len() > 8 {
        return Err(bad());
    }
    let mut v: u64 = 0;
    for &b in field {
        let d = (b as char).to_digit(16).ok_or_else(bad)?;
        v = v << 4 | d as u64;
    }
    Ok(v)
}

fn criteo_row(line: &[u8], row: &mut RawRow) -> Result<(), String> {
    let n = line.split(|&b| b == b'\t').count();
    if n != CRITEO_FIELDS {
        return Err(format!(
            "{n} tab-separated fields, expected {CRITEO_FIELDS} (label, I1-I13, C1-C26). A row \
             whose trailing empty fields were stripped is not padded, since it cannot be told \
             from a cut-off one"
        ));
    }
    row.dense.clear();
    row.keys.clear();
    for (i, field) in line.split(|&b| b == b'\t').enumerate() {
        // The field's name is only formatted on error: this loop runs 1.8 billion times on
        // the full Kaggle file.
        let name = || criteo_field_name(i);
        match i {
            0 => row.label = parse_label(field, i, name)?,
            1..=CRITEO_DENSE => row.dense.push(dense_transform(parse_int(field, i, name)?)),
            _ => row.keys.push(parse_hex(field, i, name)?),
        }
    }
    Ok(())
}

/// Avazu's `hour` is YYMMDDHH; the hour of day is its last two digits.
fn avazu_hour(field: &[u8]) -> Result<u8, String> {
    let bad = || {
        format!(
            "field 3 (hour) = `{}`: expected YYMMDDHH (8 digits, hour 00-23)",
            show(field)
        )
    };
    if field.len() != 8 || !field.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let h = (field[6] - b'0') * 10 + (field[7] - b'0');
    if h > 23 {
        return Err(bad());
    }
    Ok(h)
}

fn avazu_row(line: &[u8], row: &mut RawRow) -> Result<(), String> {
    let n = line.split(|&b| b == b',').count();
    if n != AVAZU_FIELDS {
        return Err(format!(
            "{n} comma-separated fields, expected {AVAZU_FIELDS} (id, click, hour, C1 .. C21)"
        ));
    }
    row.dense.clear();
    row.keys.clear();
    let mut hour = [0u8; 2];
    for (i, field) in line.split(|&b| b == b',').enumerate() {
        match i {
            0 => {}
            1 => row.label = parse_label(field, i, || "click".into())?,
            2 => {
                let h = avazu_hour(field)?;
                row.dense.push(dense_transform(h as i64));
                hour = [field[6], field[7]];
            }
            // An empty value is a value like any other (it hashes to FNV's offset basis).
            _ => row.keys.push(fnv1a64(field)),
        }
    }
    row.keys.push(fnv1a64(&hour));
    Ok(())
}

/// The moduli per feature, checked against the format's feature count.
pub(crate) fn moduli(h: &Hashing, n_cat: usize) -> Result<Option<Vec<u64>>, DataError> {
    let m: Vec<u32> = match h {
        Hashing::None => return Ok(None),
        Hashing::Modulo(m) => vec![*m; n_cat],
        Hashing::PerFeature(v) => {
            if v.len() != n_cat {
                return Err(DataError::Invalid(format!(
                    "ReadOptions.max_ind_range lists {} per-feature moduli, but the data has {n_cat} categorical features",
                    v.len()
                )));
            }
            v.clone()
        }
    };
    if let Some(f) = m.iter().position(|&x| x == 0) {
        return Err(DataError::Invalid(format!(
            "ReadOptions.max_ind_range: modulus 0 for categorical feature {}; use Hashing::None to turn hashing off",
            f + 1
        )));
    }
    Ok(Some(m.into_iter().map(u64::from).collect()))
}

/// Lines of a file as bytes without their `\n` / `\r\n`, counting bytes for progress.
struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    line: usize,
    bytes: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line and its 1-based number.
    fn next_line(&mut self) -> std::io::Result<Option<(usize, &[u8])>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes += n as u64;
        self.line += 1;
        if self.line == 1 && self.buf.starts_with(crate::textfile::UTF8_BOM) {
            self.buf.drain(..crate::textfile::UTF8_BOM.len());
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.line, &self.buf)))
    }
}

pub(crate) fn ctr_io(path: &Path, e: std::io::Error) -> DataError {
    if e.kind() == std::io::ErrorKind::NotFound {
        DataError::Missing {
            path: path.to_path_buf(),
            hint: "pass the path of a Criteo Kaggle train.txt (tab-separated) or an Avazu train \
                   CSV; the shared 10k-row samples are under shared/data/criteo and shared/data/avazu"
                .into(),
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// What a scan found besides the rows it handed on.
pub(crate) struct ScanInfo {
    pub report: ReadReport,
    pub cat_names: Vec<String>,
}

/// Reads `path` line by line, parses every data row with the format's parser and hands it to
/// `on_row` (with its 1-based line number). Malformed rows fail the scan, or in lenient mode
/// are counted and skipped. Blank lines at the very end are ignored (editors add them); a blank
/// line between rows is malformed, since it usually means a damaged file. `progress` gets the
/// bytes consumed so far.
pub(crate) fn scan(
    path: &Path,
    format: CtrFormat,
    opts: &ReadOptions,
    progress: &mut dyn FnMut(u64),
    on_row: &mut dyn FnMut(&RawRow, usize) -> Result<(), DataError>,
) -> Result<ScanInfo, DataError> {
    let n_cat = format.n_cat();
    let moduli = moduli(&opts.max_ind_range, n_cat)?;
    let file = std::fs::File::open(path).map_err(|e| ctr_io(path, e))?;
    let mut lines = Lines {
        reader: BufReader::with_capacity(1 << 20, file),
        buf: Vec::with_capacity(1024),
        line: 0,
        bytes: 0,
    };
    let io = |e| ctr_io(path, e);
    let malformed = |line: usize, msg: String| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let cat_names: Vec<String> = match format {
        CtrFormat::Criteo => (1..=CRITEO_CAT).map(|i| format!("C{i}")).collect(),
        CtrFormat::Avazu => {
            let header = lines.next_line().map_err(io)?.unwrap_or_default().1;
            let cols: Vec<&[u8]> = header.split(|&b| b == b',').collect();
            if !header.starts_with(b"id,click,hour") {
                return Err(DataError::Layout {
                    path: path.to_path_buf(),
                    msg: format!(
                        "not an Avazu CSV: the first line should start with `id,click,hour`, found `{}`",
                        show(&header[..header.len().min(60)])
                    ),
                });
            }
            if cols.len() != AVAZU_FIELDS {
                return Err(malformed(
                    1,
                    format!(
                        "the Avazu header has {} columns, expected {AVAZU_FIELDS} (id, click, hour, C1 .. C21)",
                        cols.len()
                    ),
                ));
            }
            cols[3..]
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .chain(std::iter::once("hour_of_day".to_string()))
                .collect()
        }
    };
    let mut report = ReadReport::default();
    let mut row = RawRow {
        label: 0.0,
        dense: Vec::with_capacity(format.n_dense()),
        keys: Vec::with_capacity(n_cat),
    };
    let mut blanks: Vec<usize> = Vec::new();
    let mut last_progress = 0u64;
    let bad = |report: &mut ReadReport, line: usize, msg: String| {
        if !opts.lenient {
            return Err(malformed(line, format!("{msg}; {LENIENT_HINT}")));
        }
        report.skipped += 1;
        if report.first_bad.len() < FIRST_BAD_KEPT {
            report.first_bad.push((line, msg));
        }
        Ok(())
    };
    loop {
        if opts.limit.is_some_and(|l| report.rows >= l) {
            break;
        }
        let Some((line, text)) = lines.next_line().map_err(io)? else {
            break;
        };
        if text.is_empty() {
            blanks.push(line);
            continue;
        }
        for b in blanks.drain(..) {
            bad(
                &mut report,
                b,
                "blank line between rows (only blank lines at the very end are ignored)".into(),
            )?;
        }
        let parsed = match format {
            CtrFormat::Criteo => criteo_row(text, &mut row),
            CtrFormat::Avazu => avazu_row(text, &mut row),
        };
        match parsed {
            Ok(()) => {
                if let Some(m) = &moduli {
                    for (k, m) in row.keys.iter_mut().zip(m) {
                        *k %= m;
                    }
                }
                on_row(&row, line)?;
                report.rows += 1;
            }
            Err(msg) => bad(&mut report, line, msg)?,
        }
        if lines.bytes - last_progress >= 1 << 20 {
            last_progress = lines.bytes;
            progress(lines.bytes);
        }
    }
    progress(lines.bytes);
    Ok(ScanInfo { report, cat_names })
}
