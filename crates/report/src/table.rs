//! Tables in the papers' layout. Numbers keep their precision in CSV and are rounded in Markdown.

use serde::{Deserialize, Serialize};

/// Where a reported number comes from, so that `kiln verify` can recompute it: a metric over
/// per-example prediction files of the run folder, one file per seed. The cell shows
/// `scale ×` the mean of the per-file metric (± their sample sd when there are several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The metric as kiln-experiment's `verify` names it, e.g. `glue/sst2/accuracy`,
    /// `ctr/log_loss`, `bleu:translations/ref.detok.txt`.
    pub metric: String,
    /// Prediction files, relative to the run folder; one per seed.
    pub files: Vec<String>,
    /// Cell = scale × metric (100 for a percentage).
    pub scale: f64,
}

impl Source {
    pub fn new(metric: impl Into<String>, files: Vec<String>, scale: f64) -> Self {
        Self {
            metric: metric.into(),
            files,
            scale,
        }
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number shown with `decimals` places; `None` prints as an em dash (no paper number).
    Num(Option<f64>, usize),
    /// Per-seed values shown as `mean ± sd` (the value alone for one seed), with the prediction
    /// files they were computed from when the run wrote them. CSV keeps full precision.
    Stat {
        values: Vec<f64>,
        decimals: usize,
        source: Option<Source>,
    },
    /// Per-seed measurements that no prediction file could give (seconds, sizes, steps), shown
    /// like [`Cell::Stat`]; `kiln verify` neither checks them nor counts them as unsourced.
    Measured {
        values: Vec<f64>,
        decimals: usize,
    },
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }
    pub fn num(v: f64, decimals: usize) -> Self {
        Cell::Num(Some(v), decimals)
    }
    /// `mean ± sd` over seeds ([`crate::mean_sd`]), or the value alone for one seed.
    pub fn mean_sd(v: &[f64], decimals: usize) -> Self {
        Self::Stat {
            values: v.to_vec(),
            decimals,
            source: None,
        }
    }
    /// Like [`Cell::mean_sd`], with the prediction files the values were computed from
    /// (`source.files[i]` gave `v[i]`), which the run record lists for `kiln verify`.
    pub fn sourced(v: &[f64], decimals: usize, source: Source) -> Self {
        debug_assert_eq!(v.len(), source.files.len());
        Self::Stat {
            values: v.to_vec(),
            decimals,
            source: Some(source),
        }
    }
    /// `mean ± sd` of per-seed measurements that are not metrics of predictions ([`Cell::Measured`]).
    pub fn measured(v: &[f64], decimals: usize) -> Self {
        Self::Measured {
            values: v.to_vec(),
            decimals,
        }
    }
    /// The source of a [`Cell::Stat`], if it has one.
    pub fn source(&self) -> Option<&Source> {
        match self {
            Cell::Stat { source, .. } => source.as_ref(),
            _ => None,
        }
    }
    pub fn opt(v: Option<f64>, decimals: usize) -> Self {
        Cell::Num(v, decimals)
    }
    /// `paper`, `kiln`, `kiln - paper` as three cells.
    pub fn paper_vs_kiln(paper: Option<f64>, kiln: Option<f64>, decimals: usize) -> [Cell; 3] {
        let delta = paper.zip(kiln).map(|(p, k)| k - p);
        [
            Cell::opt(paper, decimals),
            Cell::opt(kiln, decimals),
            Cell::Num(delta, decimals),
        ]
    }
    fn md(&self) -> String {
        match self {
            Cell::Text(s) => s.replace('|', "\\|"),
            Cell::Num(None, _) => "—".into(),
            Cell::Num(Some(v), d) => format!("{v:.d$}", d = *d),
            Cell::Stat {
                values, decimals, ..
            }
            | Cell::Measured { values, decimals } => {
                let d = *decimals;
                let (m, s) = crate::mean_sd(values);
                match values.len() {
                    0 => "—".into(),
                    1 => format!("{m:.d$}"),
                    _ => format!("{m:.d$} ± {s:.d$}"),
                }
            }
        }
    }
    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => csv_field(s),
            Cell::Num(None, _) => String::new(),
            Cell::Num(Some(v), _) => format!("{v}"),
            Cell::Stat { values, .. } | Cell::Measured { values, .. } => {
                let (m, s) = crate::mean_sd(values);
                match values.len() {
                    0 => String::new(),
                    1 => format!("{m}"),
                    _ => format!("{m} ± {s}"),
                }
            }
        }
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A titled table with notes (data provenance, what is synthetic, what differs from the paper).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub notes: Vec<String>,
}

impl Table {
    /// The title of an experiment's table for one profile, marking synthetic-data runs.
    pub fn profile_title(title: &str, profile: &str, synthetic: bool) -> String {
        format!(
            "{title} — profile `{profile}`{}",
            if synthetic { " (SYNTHETIC DATA)" } else { "" }
        )
    }

    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    pub fn to_markdown(&self) -> String {
        let mut s = format!("### {}\n\n", self.title);
        s += &format!("| {} |\n", self.columns.join(" | "));
        s += &format!(
            "|{}|\n",
            self.columns
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            s += &format!(
                "| {} |\n",
                r.iter().map(Cell::md).collect::<Vec<_>>().join(" | ")
            );
        }
        if !self.notes.is_empty() {
            s += "\n";
            for n in &self.notes {
                s += &format!("- {n}\n");
            }
        }
        s
    }

    pub fn to_csv(&self) -> String {
        // Column names are quoted like any field: "BERT-base (paper, test)" holds a comma.
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
        let mut s = header.join(",") + "\n";
        for r in &self.rows {
            s += &(r.iter().map(Cell::csv).collect::<Vec<_>>().join(",") + "\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_csv_layout() {
        let mut t = Table::new("GLUE dev", &["task", "paper (test, dev)", "kiln", "Δ"]);
        let [p, k, d] = Cell::paper_vs_kiln(Some(93.5), Some(91.25), 1);
        t.push(vec![Cell::text("sst2"), p, k, d]);
        let [p, k, d] = Cell::paper_vs_kiln(None, Some(0.5), 2);
        t.push(vec![Cell::text("a,b"), p, k, d]);
        t.note("synthetic");
        let md = t.to_markdown();
        assert!(md.contains("| sst2 | 93.5 | 91.2 | -2.2 |"), "{md}");
        assert!(md.contains("| a,b | — | 0.50 | — |"));
        assert!(md.contains("- synthetic"));
        let csv = t.to_csv();
        assert!(
            csv.starts_with("task,\"paper (test, dev)\",kiln,Δ\n"),
            "{csv}"
        );
        assert!(csv.contains("sst2,93.5,91.25,-2.25"), "{csv}");
        assert!(csv.contains("\"a,b\",,0.5,"));
    }

    #[test]
    fn seed_statistics_round_in_markdown_and_keep_precision_in_csv() {
        let mut t = Table::new("t", &["one", "three", "none"]);
        t.push(vec![
            Cell::mean_sd(&[0.123456], 2),
            Cell::sourced(
                &[1.0, 2.0, 4.0],
                1,
                Source::new("m", vec!["a".into(), "b".into(), "c".into()], 1.0),
            ),
            Cell::mean_sd(&[], 1),
        ]);
        assert!(t.to_markdown().contains("| 0.12 | 2.3 ± 1.5 | — |"));
        let csv = t.to_csv();
        let row = csv.lines().nth(1).unwrap();
        assert!(
            row.starts_with("0.123456,2.3333333333333335 ± 1.5275252316519"),
            "{row}"
        );
        assert!(row.ends_with(','), "{row}");
    }
}
