//! The binary CTR cache: the full Kaggle file is 45M rows × 40 text fields (~11 GB), too big to
//! hold as strings and too slow to re-parse every run. [`preprocess`] streams it twice (pass 1:
//! dictionaries and row count; pass 2: encoded rows), holding only the dictionaries in memory,
//! and writes fixed-size records that [`CtrCache`] reads by range or by index.
//!
//! Layout: the magic line `KILN-CTR-CACHE 1\n`, one line of JSON ([`CacheHeader`]), then
//! `n_rows` little-endian records of `label f32, dense f32 × n_dense, cats u32 × n_cat`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::parse::{self, ctr_io};
use super::{CtrData, CtrFormat, ReadOptions, ReadReport};
use crate::DataError;

const MAGIC: &[u8] = b"KILN-CTR-CACHE 1\n";
const VERSION: u32 = 1;
/// A header longer than this means the file is not a cache (the real one is a few KB).
const MAX_HEADER: u64 = 16 << 20;

/// What a cache holds and what it was built from; the source's content (sha256), the format and
/// the options decide whether [`preprocess`] may reuse it (size and modification time are
/// recorded, but a file replaced by another of the same size and time is not the same source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheHeader {
    pub version: u32,
    pub name: String,
    pub n_rows: usize,
    pub n_dense: usize,
    pub n_cat: usize,
    pub counts: Vec<usize>,
    pub cat_names: Vec<String>,
    /// The source path as given (informational: a moved data folder still reuses the cache).
    pub source: String,
    pub source_size: u64,
    pub source_mtime_secs: u64,
    pub source_mtime_nanos: u32,
    /// sha256 of the source file (empty in caches written before kiln recorded it: rebuilt).
    #[serde(default)]
    pub source_sha256: String,
    pub options: ReadOptions,
    pub report: ReadReport,
}

impl CacheHeader {
    fn record_bytes(&self) -> u64 {
        4 * (1 + self.n_dense + self.n_cat) as u64
    }

    /// Same source content (size and sha256), format and options.
    fn matches(&self, other: &CacheHeader) -> bool {
        self.version == other.version
            && self.name == other.name
            && self.source_size == other.source_size
            && !self.source_sha256.is_empty()
            && self.source_sha256 == other.source_sha256
            && self.options == other.options
    }
}

/// An open cache file.
#[derive(Debug)]
pub struct CtrCache {
    path: PathBuf,
    file: File,
    header: CacheHeader,
    data_offset: u64,
}

fn layout(path: &Path, msg: String) -> DataError {
    DataError::Layout {
        path: path.to_path_buf(),
        msg,
    }
}

impl CtrCache {
    /// Opens and validates a cache: the magic line, the header, and a file size that matches
    /// the header's row count exactly (an interrupted copy or a full disk shows up here, not as
    /// garbage rows in training).
    pub fn open(path: &Path) -> Result<CtrCache, DataError> {
        let mut file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::Missing {
                    path: path.to_path_buf(),
                    hint: "no CTR cache there; build it with ctr::preprocess".into(),
                }
            } else {
                ctr_io(path, e)
            }
        })?;
        let size = file.metadata().map_err(|e| ctr_io(path, e))?.len();
        let mut r = BufReader::new((&mut file).take(MAX_HEADER));
        let mut magic = Vec::new();
        r.read_until(b'\n', &mut magic)
            .map_err(|e| ctr_io(path, e))?;
        if magic != MAGIC {
            return Err(layout(
                path,
                format!(
                    "not a kiln CTR cache (the first line is not `{}`); pass the cache path, not the source file",
                    String::from_utf8_lossy(&MAGIC[..MAGIC.len() - 1])
                ),
            ));
        }
        let mut json = Vec::new();
        r.read_until(b'\n', &mut json)
            .map_err(|e| ctr_io(path, e))?;
        if json.last() != Some(&b'\n') {
            return Err(layout(
                path,
                "truncated CTR cache: the header line is incomplete; delete the file and run preprocess again to rebuild it".into(),
            ));
        }
        let header: CacheHeader = serde_json::from_slice(&json).map_err(|e| {
            layout(
                path,
                format!("corrupt CTR cache header ({e}); delete the file and run preprocess again to rebuild it"),
            )
        })?;
        drop(r);
        if header.version != VERSION {
            return Err(layout(
                path,
                format!(
                    "CTR cache version {} (this build reads {VERSION}); delete it and run preprocess again to rebuild it",
                    header.version
                ),
            ));
        }
        if header.counts.len() != header.n_cat
            || header.cat_names.len() != header.n_cat
            || header.counts.contains(&0)
        {
            return Err(layout(
                path,
                format!(
                    "corrupt CTR cache header: {} counts / {} names for {} categorical features (each count must be >= 1); delete it to rebuild",
                    header.counts.len(),
                    header.cat_names.len(),
                    header.n_cat
                ),
            ));
        }
        let data_offset = (MAGIC.len() + json.len()) as u64;
        let expected = (header.n_rows as u64)
            .checked_mul(header.record_bytes())
            .and_then(|b| b.checked_add(data_offset));
        if expected != Some(size) {
            return Err(layout(
                path,
                format!(
                    "truncated or corrupt CTR cache: {size} bytes, but its header promises {} rows ({} bytes); delete the file and run preprocess again to rebuild it",
                    header.n_rows,
                    expected.map_or("too many".into(), |b| b.to_string())
                ),
            ));
        }
        Ok(CtrCache {
            path: path.to_path_buf(),
            file,
            header,
            data_offset,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    /// What the build kept and skipped.
    pub fn report(&self) -> &ReadReport {
        &self.header.report
    }

    pub fn len(&self) -> usize {
        self.header.n_rows
    }

    pub fn is_empty(&self) -> bool {
        self.header.n_rows == 0
    }

    pub fn n_dense(&self) -> usize {
        self.header.n_dense
    }

    pub fn n_cat(&self) -> usize {
        self.header.n_cat
    }

    pub fn counts(&self) -> &[usize] {
        &self.header.counts
    }

    pub fn cat_names(&self) -> &[String] {
        &self.header.cat_names
    }

    fn empty_data(&self, rows: usize) -> CtrData {
        let h = &self.header;
        CtrData {
            name: h.name.clone(),
            n_dense: h.n_dense,
            n_cat: h.n_cat,
            dense: Vec::with_capacity(rows * h.n_dense),
            cats: Vec::with_capacity(rows * h.n_cat),
            labels: Vec::with_capacity(rows),
            counts: h.counts.clone(),
            cat_names: h.cat_names.clone(),
        }
    }

    /// Decodes records, checking labels and ids so a corrupted cache fails here with its row
    /// number instead of indexing past an embedding table.
    fn decode(&self, bytes: &[u8], first_row: usize, out: &mut CtrData) -> Result<(), DataError> {
        let h = &self.header;
        let word = |b: &[u8], i: usize| [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]];
        for (k, rec) in bytes
            .chunks_exact(self.header.record_bytes() as usize)
            .enumerate()
        {
            let row = first_row + k;
            let label = f32::from_le_bytes(word(rec, 0));
            if label != 0.0 && label != 1.0 {
                return Err(layout(
                    &self.path,
                    format!("corrupt CTR cache: label {label} at row {row}; delete the file and run preprocess again to rebuild it"),
                ));
            }
            out.labels.push(label);
            for i in 0..h.n_dense {
                out.dense.push(f32::from_le_bytes(word(rec, 1 + i)));
            }
            for f in 0..h.n_cat {
                let id = u32::from_le_bytes(word(rec, 1 + h.n_dense + f));
                if id as usize >= h.counts[f] {
                    return Err(layout(
                        &self.path,
                        format!(
                            "corrupt CTR cache: id {id} of {} at row {row} is not below its count {}; delete the file and run preprocess again to rebuild it",
                            h.cat_names[f], h.counts[f]
                        ),
                    ));
                }
                out.cats.push(id);
            }
        }
        Ok(())
    }

    fn read_run(&mut self, start: usize, end: usize, out: &mut CtrData) -> Result<(), DataError> {
        let rec = self.header.record_bytes();
        let mut buf = vec![0u8; (end - start) * rec as usize];
        self.file
            .seek(SeekFrom::Start(self.data_offset + start as u64 * rec))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| ctr_io(&self.path, e))?;
        self.decode(&buf, start, out)
    }

    /// Rows `start..end` in file order, in one read (the fast path for the sequential loaders
    /// DLRM and DNAS use). Read the full Kaggle cache in chunks: all of it is ~7 GB.
    pub fn read_rows(&mut self, start: usize, end: usize) -> Result<CtrData, DataError> {
        if start > end || end > self.len() {
            return Err(DataError::Invalid(format!(
                "{}: rows {start}..{end} requested from a CTR cache of {} rows",
                self.path.display(),
                self.len()
            )));
        }
        let mut out = self.empty_data(end - start);
        self.read_run(start, end, &mut out)?;
        Ok(out)
    }

    /// The given rows in the given order; runs of consecutive indices are read at once, so a
    /// sorted index list costs about as much as a range read.
    pub fn read_indices(&mut self, rows: &[usize]) -> Result<CtrData, DataError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(DataError::Invalid(format!(
                "{}: row {bad} requested from a CTR cache of {} rows",
                self.path.display(),
                self.len()
            )));
        }
        let mut out = self.empty_data(rows.len());
        let mut i = 0;
        while i < rows.len() {
            let mut j = i + 1;
            while j < rows.len() && rows[j] == rows[j - 1] + 1 {
                j += 1;
            }
            self.read_run(rows[i], rows[j - 1] + 1, &mut out)?;
            i = j;
        }
        Ok(out)
    }
}

/// Encodes `src` into a cache at `cache` in two streaming passes and returns it opened. An
/// existing cache built from a source with the same content (sha256, one read of `src` per
/// call: seconds per GB, against minutes for the two passes) with the same format and options
/// is reused; a stale or corrupt one is rebuilt. The
/// file is written beside `cache` and renamed into place, so an interrupted run never leaves a
/// half cache under the real name. A file at `cache` that is not a kiln CTR cache is left alone
/// (an error), so a swapped argument cannot overwrite the source.
///
/// `progress(done, total)` counts bytes over both passes, so `total` is twice the file size
/// (and `done` reaches it at the end even when `limit` stopped the passes early).
pub fn preprocess(
    src: &Path,
    format: CtrFormat,
    opts: &ReadOptions,
    cache: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CtrCache, DataError> {
    let meta = std::fs::metadata(src).map_err(|e| ctr_io(src, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let mut header = CacheHeader {
        version: VERSION,
        name: format.name().into(),
        n_rows: 0,
        n_dense: format.n_dense(),
        n_cat: format.n_cat(),
        counts: Vec::new(),
        cat_names: Vec::new(),
        source: src.display().to_string(),
        source_size: meta.len(),
        source_mtime_secs: mtime.as_secs(),
        source_mtime_nanos: mtime.subsec_nanos(),
        source_sha256: kiln_core::sha256_file(src)
            .map_err(|e| DataError::Invalid(e.to_string()))?,
        options: opts.clone(),
        report: ReadReport::default(),
    };
    let total = 2 * meta.len();
    match CtrCache::open(cache) {
        Ok(c) if c.header.matches(&header) => {
            progress(total, total);
            return Ok(c);
        }
        Ok(_) | Err(DataError::Missing { .. }) => {}
        Err(e) => {
            // Overwrite only what is recognisably ours.
            let mut head = vec![0u8; MAGIC.len()];
            let ours = File::open(cache)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok()
                && head == MAGIC;
            if !ours {
                return Err(e);
            }
        }
    }

    // Pass 1: dictionaries and the row count.
    let mut dicts = parse::Dicts::new(format.n_cat());
    let mut ids = Vec::with_capacity(format.n_cat());
    let size = meta.len();
    let info = parse::scan(
        src,
        format,
        opts,
        &mut |b| progress(b.min(size), total),
        &mut |row, line| {
            ids.clear();
            dicts
                .insert(&row.keys, &mut ids)
                .map_err(|msg| DataError::Malformed {
                    path: src.to_path_buf(),
                    line,
                    msg,
                })
        },
    )?;
    header.n_rows = info.report.rows;
    header.counts = dicts.counts();
    header.cat_names = info.cat_names;
    header.report = info.report;

    let json = serde_json::to_string(&header)
        .map_err(|e| DataError::Invalid(format!("cannot encode the CTR cache header: {e}")))?;
    if let Some(dir) = cache.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ctr_io(dir, e))?;
    }
    let file_name = cache
        .file_name()
        .map_or_else(|| "ctr-cache".into(), |n| n.to_string_lossy().into_owned());
    let tmp = cache.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp).map_err(|e| ctr_io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let werr = |e| ctr_io(&tmp, e);
        w.write_all(MAGIC).map_err(werr)?;
        w.write_all(json.as_bytes()).map_err(werr)?;
        w.write_all(b"\n").map_err(werr)?;
        // Pass 2: the same rows again, encoded with the frozen dictionaries.
        let mut rec = Vec::with_capacity(header.record_bytes() as usize);
        let info2 = parse::scan(
            src,
            format,
            opts,
            &mut |b| progress(size + b.min(size), total),
            &mut |row, line| {
                ids.clear();
                dicts.lookup(&row.keys, &mut ids).ok_or_else(|| {
                    DataError::Malformed {
                        path: src.to_path_buf(),
                        line,
                        msg: "a value not seen in the first pass: the file changed while it was being preprocessed; run preprocess again".into(),
                    }
                })?;
                rec.clear();
                rec.extend_from_slice(&row.label.to_le_bytes());
                for x in &row.dense {
                    rec.extend_from_slice(&x.to_le_bytes());
                }
                for id in &ids {
                    rec.extend_from_slice(&id.to_le_bytes());
                }
                w.write_all(&rec).map_err(|e| ctr_io(&tmp, e))
            },
        )?;
        if info2.report != header.report {
            return Err(layout(
                src,
                "the file changed while it was being preprocessed (the two passes saw different rows); run preprocess again".into(),
            ));
        }
        let f = w.into_inner().map_err(|e| ctr_io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| ctr_io(&tmp, e))?;
        std::fs::rename(&tmp, cache).map_err(|e| ctr_io(cache, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    progress(total, total);
    CtrCache::open(cache)
}
