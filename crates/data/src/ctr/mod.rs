//! Click-through-rate data: Criteo Kaggle (DAC) and Avazu readers, DLRM's preprocessing, the
//! DLRM and DNAS splits, and a binary cache for the full 45M-row Kaggle file.
//!
//! The encoding follows DLRM's `data_utils.getCriteoAdData` (Kaggle branch) so that a model
//! trained here sees the same inputs as the PyTorch reference:
//!
//! * empty fields read as 0 (integers) or as the categorical value 0;
//! * integer features are clamped at 0 and then transformed to ln(1 + x);
//! * categorical values are hashed `% modulus` at parse time when hashing is on (per feature,
//!   see [`Hashing`]), and only then numbered per feature 0..count-1 in first-appearance order
//!   over every row read, so the counts reflect the hashed values.
//!
//! Rows that DLRM would silently accept or mangle (a wrong field count, a non-integer, a label
//! other than 0/1) are errors naming the file and line; `lenient` counts and skips them instead.
//! Rows are never padded: the shared `criteo/dac/train.txt` lost trailing empty fields on about
//! half its rows, and a short row cannot be told from a cut-off one, so padding would turn a
//! damaged file into plausible-looking data.
//!
//! Avazu (`id,click,hour,C1,banner_pos,...,C21`) is mapped onto the same shape: the label is
//! `click`, the single dense feature is the hour of day (the last two digits of `hour`,
//! YYMMDDHH, as ln(1 + h)), and the categoricals are the 21 columns after `hour` plus
//! `hour_of_day` as a 22nd. Values are strings, so they are keyed by FNV-1a (64-bit) before the
//! optional modulus. The shared 10k-row sample spans a single hour (14102100), so `hour_of_day`
//! is constant there (count 1) and the dense feature is ln(1) = 0 on every row.

mod cache;
mod parse;
mod split;

use std::path::Path;

pub use cache::{preprocess, CacheHeader, CtrCache};
pub use parse::fnv1a64;
pub use split::{day_sizes, dlrm_split, random_split, weights_arch_split, DaySplit};

use crate::DataError;

/// Encoded CTR rows, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CtrData {
    /// "criteo", "avazu", "synthetic", ...
    pub name: String,
    pub n_dense: usize,
    pub n_cat: usize,
    /// `n_rows * n_dense`, already transformed: ln(1 + max(x, 0)).
    pub dense: Vec<f32>,
    /// `n_rows * n_cat`, per-feature contiguous ids in `0..counts[f]`.
    pub cats: Vec<u32>,
    /// `n_rows`, 0.0 or 1.0.
    pub labels: Vec<f32>,
    /// Per-feature cardinalities; at least 1 each, so every feature can back an embedding
    /// table even when it saw no rows.
    pub counts: Vec<usize>,
    pub cat_names: Vec<String>,
}

impl CtrData {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The given rows, in the given order. Counts are kept (not recomputed), so embedding
    /// tables sized from the full data stay valid for every split of it. Panics on an index
    /// `>= len()`, like slice indexing: indices come from code, not from a file.
    pub fn subset(&self, rows: &[usize]) -> CtrData {
        let mut out = CtrData {
            name: self.name.clone(),
            n_dense: self.n_dense,
            n_cat: self.n_cat,
            dense: Vec::with_capacity(rows.len() * self.n_dense),
            cats: Vec::with_capacity(rows.len() * self.n_cat),
            labels: Vec::with_capacity(rows.len()),
            counts: self.counts.clone(),
            cat_names: self.cat_names.clone(),
        };
        for &r in rows {
            out.labels.push(self.labels[r]);
            out.dense
                .extend_from_slice(&self.dense[r * self.n_dense..(r + 1) * self.n_dense]);
            out.cats
                .extend_from_slice(&self.cats[r * self.n_cat..(r + 1) * self.n_cat]);
        }
        out
    }

    /// Dense features of row `r`.
    pub fn dense_row(&self, r: usize) -> &[f32] {
        &self.dense[r * self.n_dense..(r + 1) * self.n_dense]
    }

    /// Categorical ids of row `r`.
    pub fn cat_row(&self, r: usize) -> &[u32] {
        &self.cats[r * self.n_cat..(r + 1) * self.n_cat]
    }

    /// Fraction of label-1 rows; NaN when there are no rows (a 0 would read as "no clicks").
    pub fn positive_rate(&self) -> f64 {
        if self.is_empty() {
            return f64::NAN;
        }
        self.labels.iter().map(|&y| y as f64).sum::<f64>() / self.len() as f64
    }

    /// The dataset-stats printout users of DLRM keep asking for: rows, positive rate and every
    /// feature's cardinality, so a wrong file, a missing modulus or an all-one-class split shows
    /// before training.
    pub fn stats(&self) -> String {
        let pos = self.labels.iter().filter(|&&y| y == 1.0).count();
        let mut s = format!(
            "{}: {} rows, {} positive ({:.4}), {} dense, {} categorical\n",
            self.name,
            self.len(),
            pos,
            self.positive_rate(),
            self.n_dense,
            self.n_cat
        );
        s.push_str("cardinalities:");
        for (f, c) in self.counts.iter().enumerate() {
            let name = self.cat_names.get(f).map_or("?", String::as_str);
            s.push_str(&format!(" {name}={c}"));
        }
        s.push_str(&format!(
            "\ntotal embedding rows: {}",
            self.counts.iter().sum::<usize>()
        ));
        s
    }
}

/// Hashing of categorical values at parse time (DLRM's `max_ind_range`), applied before the
/// dictionary. Per feature on purpose: the official DNAS loaders hash every feature by
/// `num_vectors[0]` (spec pitfall 3), which with counts loaded from the fea-count file silently
/// makes C1's cardinality (≈1460) the modulus of all 26 features.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Hashing {
    /// No hashing: the true per-feature cardinalities (DNAS's emb-card search).
    #[default]
    None,
    /// The same modulus for every feature (DNAS's pipeline uses 10000).
    Modulo(u32),
    /// One modulus per categorical feature, in column order.
    PerFeature(Vec<u32>),
}

/// How to read a CTR file.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadOptions {
    /// Hashing applied at parse time, before the dictionary, so a feature ends with at most
    /// `modulus` ids. A modulus of 0 is an error (DLRM's "0 = off" is [`Hashing::None`] here).
    pub max_ind_range: Hashing,
    /// Count and skip malformed rows instead of failing; the report says how many and lists
    /// the first few line numbers.
    pub lenient: bool,
    /// Stop after this many data rows (None = all); skipped rows do not count.
    pub limit: Option<usize>,
}

impl ReadOptions {
    /// The same modulus for every feature.
    pub fn modulo(m: u32) -> Self {
        ReadOptions {
            max_ind_range: Hashing::Modulo(m),
            ..Default::default()
        }
    }

    /// One modulus per categorical feature (26 for Criteo, 22 for Avazu).
    pub fn per_feature(moduli: Vec<u32>) -> Self {
        ReadOptions {
            max_ind_range: Hashing::PerFeature(moduli),
            ..Default::default()
        }
    }

    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    pub fn limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }
}

/// What a read kept and skipped.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadReport {
    /// Rows kept.
    pub rows: usize,
    /// Malformed rows skipped (lenient mode only; strict mode fails on the first).
    pub skipped: usize,
    /// (1-based line number, reason) of the first few skipped rows.
    pub first_bad: Vec<(usize, String)>,
}

impl std::fmt::Display for ReadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows read, {} skipped", self.rows, self.skipped)?;
        for (line, why) in &self.first_bad {
            write!(f, "\n  line {line}: {why}")?;
        }
        if self.skipped > self.first_bad.len() {
            write!(
                f,
                "\n  ... and {} more",
                self.skipped - self.first_bad.len()
            )?;
        }
        Ok(())
    }
}

/// Which text format a CTR file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CtrFormat {
    /// Criteo Kaggle DAC `train.txt`: `label \t I1..I13 \t C1..C26`.
    Criteo,
    /// Avazu `train.csv`: `id,click,hour,C1,banner_pos,...,C21` with a header.
    Avazu,
}

impl CtrFormat {
    pub fn name(self) -> &'static str {
        match self {
            CtrFormat::Criteo => "criteo",
            CtrFormat::Avazu => "avazu",
        }
    }

    pub fn n_dense(self) -> usize {
        match self {
            CtrFormat::Criteo => parse::CRITEO_DENSE,
            CtrFormat::Avazu => 1,
        }
    }

    pub fn n_cat(self) -> usize {
        match self {
            CtrFormat::Criteo => parse::CRITEO_CAT,
            CtrFormat::Avazu => parse::AVAZU_CAT,
        }
    }
}

/// Reads a whole CTR file into memory (fine for samples; use [`preprocess`] for the full
/// Kaggle file).
pub fn read_ctr(
    path: &Path,
    format: CtrFormat,
    opts: &ReadOptions,
) -> Result<(CtrData, ReadReport), DataError> {
    let (n_dense, n_cat) = (format.n_dense(), format.n_cat());
    let mut dicts = parse::Dicts::new(n_cat);
    let mut data = CtrData {
        name: format.name().into(),
        n_dense,
        n_cat,
        dense: Vec::new(),
        cats: Vec::new(),
        labels: Vec::new(),
        counts: Vec::new(),
        cat_names: Vec::new(),
    };
    let info = parse::scan(path, format, opts, &mut |_| {}, &mut |row, line| {
        dicts
            .insert(&row.keys, &mut data.cats)
            .map_err(|msg| DataError::Malformed {
                path: path.to_path_buf(),
                line,
                msg,
            })?;
        data.labels.push(row.label);
        data.dense.extend_from_slice(&row.dense);
        Ok(())
    })?;
    data.counts = dicts.counts();
    data.cat_names = info.cat_names;
    Ok((data, info.report))
}

/// Reads a Criteo Kaggle DAC file (`label \t I1..I13 \t C1..C26`).
pub fn read_criteo(path: &Path, opts: &ReadOptions) -> Result<(CtrData, ReadReport), DataError> {
    read_ctr(path, CtrFormat::Criteo, opts)
}

/// Reads an Avazu CSV (header `id,click,hour,...`).
pub fn read_avazu(path: &Path, opts: &ReadOptions) -> Result<(CtrData, ReadReport), DataError> {
    read_ctr(path, CtrFormat::Avazu, opts)
}

#[cfg(test)]
mod tests;
