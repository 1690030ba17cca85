//! GLUE readers. Two families of layout are accepted, both detected from the file itself:
//!
//! * the canonical GLUE TSVs written by `download_glue_data.py` (CoLA without header, SST-2,
//!   MRPC with a UTF-8 BOM, STS-B, QQP, MNLI matched/mismatched, QNLI, RTE, WNLI, train/dev/test),
//!   plus the raw MSRP and STS-benchmark files they are derived from;
//! * the HuggingFace `datasets` export (`sentence1, sentence2, label, idx` or `sentence, label,
//!   idx`, test labels -1), as TSV or parquet ([`crate::parquet_reader`]).
//!
//! Labels are numbered as HuggingFace's `glue` dataset numbers them (MNLI: entailment 0,
//! neutral 1, contradiction 2; QNLI/RTE: entailment 0, not_entailment 1), so a model fine-tuned
//! here and one fine-tuned with `transformers` agree on what each logit means.

use std::path::{Path, PathBuf};

use crate::DataError;

/// The nine GLUE tasks (MNLI counted twice for its two dev sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GlueTask {
    Cola,
    Sst2,
    Mrpc,
    Stsb,
    Qqp,
    Mnli,
    MnliMismatched,
    Qnli,
    Rte,
    Wnli,
}

/// Which split of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Dev,
    Test,
}

/// One example. `label` is a class index (as f32) or an STS-B score; `None` on test splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text_a: String,
    pub text_b: Option<String>,
    pub label: Option<f32>,
}

impl GlueTask {
    pub const ALL: [GlueTask; 10] = [
        Self::Cola,
        Self::Sst2,
        Self::Mrpc,
        Self::Stsb,
        Self::Qqp,
        Self::Mnli,
        Self::MnliMismatched,
        Self::Qnli,
        Self::Rte,
        Self::Wnli,
    ];

    /// Short lowercase name used on the command line and in results (`sst2`, `stsb`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cola => "cola",
            Self::Sst2 => "sst2",
            Self::Mrpc => "mrpc",
            Self::Stsb => "stsb",
            Self::Qqp => "qqp",
            Self::Mnli => "mnli",
            Self::MnliMismatched => "mnli-mm",
            Self::Qnli => "qnli",
            Self::Rte => "rte",
            Self::Wnli => "wnli",
        }
    }

    /// Folder name in a GLUE download (`SST-2`, `STS-B`, ...).
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Cola => "CoLA",
            Self::Sst2 => "SST-2",
            Self::Mrpc => "MRPC",
            Self::Stsb => "STS-B",
            Self::Qqp => "QQP",
            Self::Mnli | Self::MnliMismatched => "MNLI",
            Self::Qnli => "QNLI",
            Self::Rte => "RTE",
            Self::Wnli => "WNLI",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DataError> {
        let k: String = s
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        Self::ALL
            .into_iter()
            .find(|t| t.name().replace('-', "") == k || t.dir_name().to_ascii_lowercase().replace('-', "") == k && *t != Self::MnliMismatched)
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "unknown GLUE task `{s}`; expected one of cola, sst2, mrpc, stsb, qqp, mnli, mnli-mm, qnli, rte, wnli"
                ))
            })
    }

    /// Number of model outputs: 1 for STS-B regression, 3 for MNLI, else 2.
    pub fn num_labels(self) -> usize {
        match self {
            Self::Stsb => 1,
            Self::Mnli | Self::MnliMismatched => 3,
            _ => 2,
        }
    }

    pub fn is_regression(self) -> bool {
        self == Self::Stsb
    }

    pub fn is_pair(self) -> bool {
        !matches!(self, Self::Cola | Self::Sst2)
    }

    /// The metrics GLUE reports for this task, main one first.
    pub fn metric_names(self) -> &'static [&'static str] {
        match self {
            Self::Cola => &["mcc"],
            Self::Stsb => &["pearson", "spearman"],
            Self::Mrpc | Self::Qqp => &["f1", "accuracy"],
            _ => &["accuracy"],
        }
    }

    /// File of a split inside the task folder.
    pub fn split_file(self, split: Split) -> &'static str {
        match (self, split) {
            (_, Split::Train) => "train.tsv",
            (Self::Mnli, Split::Dev) => "dev_matched.tsv",
            (Self::MnliMismatched, Split::Dev) => "dev_mismatched.tsv",
            (Self::Mnli, Split::Test) => "test_matched.tsv",
            (Self::MnliMismatched, Split::Test) => "test_mismatched.tsv",
            (_, Split::Dev) => "dev.tsv",
            (_, Split::Test) => "test.tsv",
        }
    }

    /// Path of a split under a GLUE root, trying `<root>/<Dir>/<file>` then `<root>/<file>`.
    pub fn locate(self, root: &Path, split: Split) -> PathBuf {
        let a = root.join(self.dir_name()).join(self.split_file(split));
        if a.exists() {
            return a;
        }
        let b = root.join(self.split_file(split));
        if b.exists() {
            b
        } else {
            a
        }
    }

    /// A label as GLUE's own files and submission format write it: the class name for the
    /// tasks whose TSVs name their classes (MNLI, QNLI, RTE), the score for STS-B, else the
    /// class number. The inverse of [`GlueTask::parse_label`].
    pub fn label_text(self, v: f32) -> String {
        match (self, v.round() as i64) {
            // The shortest text that reads back as the same f32 (up to 9 significant digits):
            // rounding to 3 decimals tied half the predictions and moved Spearman.
            (Self::Stsb, _) => format!("{v}"),
            (Self::Mnli | Self::MnliMismatched, 0) => "entailment".into(),
            (Self::Mnli | Self::MnliMismatched, 1) => "neutral".into(),
            (Self::Mnli | Self::MnliMismatched, 2) => "contradiction".into(),
            (Self::Qnli | Self::Rte, 0) => "entailment".into(),
            (Self::Qnli | Self::Rte, 1) => "not_entailment".into(),
            (_, c) => c.to_string(),
        }
    }

    /// The labels a labelled file of this task may hold, for messages.
    pub fn label_set(self) -> &'static str {
        match self {
            Self::Stsb => "a score in [0, 5]",
            Self::Mnli | Self::MnliMismatched => {
                "one of entailment, neutral, contradiction (or 0, 1, 2)"
            }
            Self::Qnli | Self::Rte => "one of entailment, not_entailment (or 0, 1)",
            _ => "0 or 1",
        }
    }

    /// Checks a label value: for STS-B a finite score in [0, 5], else one of the task's class
    /// indices. The error says what was found and what is allowed.
    pub fn check_label(self, v: f32) -> Result<f32, String> {
        let ok = if self.is_regression() {
            (0.0..=5.0).contains(&v)
        } else {
            v.is_finite() && v >= 0.0 && v.fract() == 0.0 && (v as usize) < self.num_labels()
        };
        if ok {
            Ok(v)
        } else {
            Err(format!(
                "label {v} is not a valid {} label: expected {}",
                self.name(),
                self.label_set()
            ))
        }
    }

    /// Reads one label cell: `Ok(None)` for an unlabelled row (empty, or the HF test export's
    /// `-1`), `Ok(Some(v))` for a label that passes [`GlueTask::check_label`].
    pub fn read_label_cell(self, cell: &str) -> Result<Option<f32>, String> {
        let c = cell.trim();
        if c.is_empty() {
            return Ok(None);
        }
        match c.parse::<f32>() {
            Ok(-1.0) => Ok(None),
            Ok(v) => self
                .check_label(v)
                .map(Some)
                .map_err(|e| format!("`{c}`: {e}")),
            Err(_) => self.parse_label(c).map(Some).ok_or_else(|| {
                format!(
                    "cannot parse label `{c}` for task {}: expected {}",
                    self.name(),
                    self.label_set()
                )
            }),
        }
    }

    /// Maps a label cell to HF's numbering. Numeric cells are taken as they are.
    pub fn parse_label(self, cell: &str) -> Option<f32> {
        let c = cell.trim();
        if let Ok(v) = c.parse::<f32>() {
            return if v < 0.0 && !self.is_regression() {
                None
            } else {
                Some(v)
            };
        }
        match (self, c) {
            (Self::Mnli | Self::MnliMismatched, "entailment") => Some(0.0),
            (Self::Mnli | Self::MnliMismatched, "neutral") => Some(1.0),
            (Self::Mnli | Self::MnliMismatched, "contradiction") => Some(2.0),
            (Self::Qnli | Self::Rte, "entailment") => Some(0.0),
            (Self::Qnli | Self::Rte, "not_entailment") => Some(1.0),
            _ => None,
        }
    }
}

/// Column indices of one layout.
#[derive(Debug, Clone, Copy)]
struct Layout {
    has_header: bool,
    ncols: usize,
    a: usize,
    b: Option<usize>,
    label: Option<usize>,
    /// Extra columns are allowed (raw STS files carry licence columns on some lines).
    min_cols_only: bool,
}

fn find(header: &[&str], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.trim() == *n))
}

fn detect_layout(task: GlueTask, first: &[&str], path: &Path) -> Result<Layout, DataError> {
    let known = [
        "sentence",
        "sentence1",
        "question",
        "question1",
        "#1 String",
        "label",
        "index",
        "idx",
    ];
    let is_header = first.iter().any(|c| known.contains(&c.trim()));
    if is_header {
        let a = find(first, &["sentence1", "question1", "#1 String"])
            .or_else(|| find(first, &["question"]))
            .or_else(|| find(first, &["sentence"]));
        let a = a.ok_or_else(|| DataError::Layout {
            path: path.to_path_buf(),
            msg: format!("header {first:?} has no sentence/sentence1/question column"),
        })?;
        let b = find(first, &["sentence2", "question2", "#2 String"]).or_else(|| {
            (first.get(a).map(|s| s.trim()) == Some("question"))
                .then(|| find(first, &["sentence"]))
                .flatten()
        });
        let label = find(
            first,
            &["gold_label", "label", "Quality", "is_duplicate", "score"],
        );
        return Ok(Layout {
            has_header: true,
            ncols: first.len(),
            a,
            b,
            label,
            min_cols_only: false,
        });
    }
    // Headerless layouts.
    match (task, first.len()) {
        // Canonical CoLA: source, label, original label, sentence.
        (GlueTask::Cola, 4) => Ok(Layout {
            has_header: false,
            ncols: 4,
            a: 3,
            b: None,
            label: Some(1),
            min_cols_only: false,
        }),
        // Derived CoLA / generic single-sentence export without header: sentence, label.
        (_, 2) if !task.is_pair() => Ok(Layout {
            has_header: false,
            ncols: 2,
            a: 0,
            b: None,
            label: Some(1),
            min_cols_only: false,
        }),
        // Raw STS benchmark: genre, file, year, id, score, s1, s2 [, licence columns].
        (GlueTask::Stsb, n) if n >= 7 => Ok(Layout {
            has_header: false,
            ncols: 7,
            a: 5,
            b: Some(6),
            label: Some(4),
            min_cols_only: true,
        }),
        (_, n) => Err(DataError::Layout {
            path: path.to_path_buf(),
            msg: format!(
                "no header and {n} columns: not a {} layout this reader knows (canonical GLUE TSV or HF export)",
                task.dir_name()
            ),
        }),
    }
}

/// Which rows of a file carry a label. A GLUE file is labelled on every row (train, dev) or on
/// none (test); a mix means a damaged row, which would otherwise reach training as a NaN label.
#[derive(Debug, Default)]
pub(crate) struct LabelRows {
    rows: usize,
    first_labelled: Option<usize>,
    first_unlabelled: Option<usize>,
}

impl LabelRows {
    /// Records row `line` (1-based line, or row for parquet).
    pub(crate) fn push(&mut self, line: usize, labelled: bool) {
        self.rows += 1;
        let slot = if labelled {
            &mut self.first_labelled
        } else {
            &mut self.first_unlabelled
        };
        slot.get_or_insert(line);
    }

    /// An error for a file with no rows, or with labelled and unlabelled rows mixed.
    /// `unit` is "line" or "row".
    pub(crate) fn finish(&self, path: &Path, task: GlueTask, unit: &str) -> Result<(), DataError> {
        if self.rows == 0 {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: "no examples (a header, or nothing, but no data rows): every GLUE split \
                      needs at least one; check that the file was written completely"
                    .into(),
            });
        }
        if let (Some(with), Some(without)) = (self.first_labelled, self.first_unlabelled) {
            return Err(DataError::Malformed {
                path: path.to_path_buf(),
                line: without,
                msg: format!(
                    "no label (empty or -1), but {unit} {with} has one: a training or dev file \
                     needs a label on every row ({} for {}); fill it in or drop the row",
                    task.label_set(),
                    task.name()
                ),
            });
        }
        Ok(())
    }
}

/// [`read_glue_file`] for a split that must be labelled (train, dev): a file without labels
/// (a test split: no label column, or every label empty or -1) is an error naming it.
pub fn read_glue_labelled(path: &Path, task: GlueTask) -> Result<Vec<Example>, DataError> {
    let ex = read_glue_file(path, task)?;
    // read_glue_file refuses a file that mixes labelled and unlabelled rows, so the first row
    // speaks for all.
    if ex.first().is_some_and(|e| e.label.is_none()) {
        return Err(DataError::Layout {
            path: path.to_path_buf(),
            msg: format!(
                "no labels (a test split? no label column, or every label empty or -1): \
                 training and evaluation need {} on every row; point at the train or dev file",
                task.label_set()
            ),
        });
    }
    Ok(ex)
}

/// Reads a GLUE TSV file for `task`; `.parquet` files go to the parquet reader. Labels are
/// checked on every row ([`GlueTask::check_label`]: STS-B scores in [0, 5], class labels in the
/// task's set); a file with no rows, or with labelled and unlabelled rows mixed, is an error
/// naming the file and line.
pub fn read_glue_file(path: &Path, task: GlueTask) -> Result<Vec<Example>, DataError> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return crate::parquet_reader::read_glue_parquet(path, task);
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::Layout {
        path: path.to_path_buf(),
        msg: format!("not UTF-8 ({e}); GLUE files are UTF-8"),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse_tsv(text, task, path)
}

fn parse_tsv(text: &str, task: GlueTask, path: &Path) -> Result<Vec<Example>, DataError> {
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .filter(|(_, l)| !l.is_empty());
    let Some((_, first_line)) = lines.next() else {
        return Err(DataError::Layout {
            path: path.to_path_buf(),
            msg: "file is empty".into(),
        });
    };
    let first: Vec<&str> = first_line.split('\t').collect();
    let layout = detect_layout(task, &first, path)?;
    let mut out = Vec::new();
    let mut labelled = LabelRows::default();
    let first_row = if layout.has_header {
        None
    } else {
        Some((0usize, first_line))
    };
    for (i, line) in first_row.into_iter().chain(lines) {
        let lineno = i + 1;
        let cols: Vec<&str> = line.split('\t').collect();
        let ok = if layout.min_cols_only {
            cols.len() >= layout.ncols
        } else {
            cols.len() == layout.ncols
        };
        if !ok {
            return Err(DataError::Malformed {
                path: path.to_path_buf(),
                line: lineno,
                msg: format!(
                    "expected {} tab-separated columns, found {}",
                    layout.ncols,
                    cols.len()
                ),
            });
        }
        let label = match layout.label {
            None => None,
            Some(c) => task
                .read_label_cell(cols[c])
                .map_err(|msg| DataError::Malformed {
                    path: path.to_path_buf(),
                    line: lineno,
                    msg,
                })?,
        };
        labelled.push(lineno, label.is_some());
        out.push(Example {
            text_a: cols[layout.a].to_string(),
            text_b: layout.b.map(|b| cols[b].to_string()),
            label,
        });
    }
    labelled.finish(path, task, "line")?;
    Ok(out)
}

/// Reads MRPC's `dev_ids.tsv` (pairs of sentence ids defining the GLUE dev split of MSRP).
pub fn read_id_pairs(path: &Path) -> Result<Vec<(u64, u64)>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    crate::textfile::strip_bom_str(&text)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let c: Vec<&str> = l.trim().split('\t').collect();
            match c.as_slice() {
                [a, b] => a
                    .parse()
                    .and_then(|a| b.parse().map(|b| (a, b)))
                    .map_err(|_| ()),
                _ => Err(()),
            }
            .map_err(|_| DataError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                msg: "expected two numeric ids separated by a tab".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("mem.tsv")
    }

    #[test]
    fn header_driven_pair_layout() {
        let t = "index\tquestion\tsentence\tlabel\n0\tWhy?\tBecause.\tnot_entailment\n";
        let ex = parse_tsv(t, GlueTask::Qnli, p()).unwrap();
        assert_eq!(ex[0].text_a, "Why?");
        assert_eq!(ex[0].text_b.as_deref(), Some("Because."));
        assert_eq!(ex[0].label, Some(1.0));
    }

    #[test]
    fn mnli_gold_label_and_hf_numbering() {
        let t = "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label\n\
                 0\t1\t2\tg\tx\tx\tx\tx\tA man.\tA person.\tentailment\tneutral\n";
        let ex = parse_tsv(t, GlueTask::Mnli, p()).unwrap();
        assert_eq!(ex[0].label, Some(1.0));
        assert_eq!(ex[0].text_b.as_deref(), Some("A person."));
    }

    #[test]
    fn wrong_column_count_names_line() {
        let t = "sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n";
        let err = parse_tsv(t, GlueTask::Sst2, p()).unwrap_err().to_string();
        assert!(
            err.contains("mem.tsv:3") && err.contains("columns"),
            "{err}"
        );
    }

    #[test]
    fn unparsable_label_names_line() {
        let t = "sentence\tlabel\ngood film\tmaybe\n";
        let err = parse_tsv(t, GlueTask::Sst2, p()).unwrap_err().to_string();
        assert!(err.contains("mem.tsv:2") && err.contains("maybe"), "{err}");
    }

    /// A STS-B dev file in the canonical layout with the given score cells.
    fn stsb(scores: &[&str]) -> String {
        let mut t = String::from(
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n",
        );
        for (i, s) in scores.iter().enumerate() {
            t += &format!("{i}\tmain\tMSRvid\t2012\t{i}\tnone\tnone\tA man.\tA person.\t{s}\n");
        }
        t
    }

    // Issue 35: a `nan` STS-B score reached Spearman (finite, wrong); 7.5 and -3 passed.
    #[test]
    fn stsb_scores_are_checked_where_read() {
        assert_eq!(
            parse_tsv(&stsb(&["5.000", "0", "2.5"]), GlueTask::Stsb, p())
                .unwrap()
                .iter()
                .map(|e| e.label)
                .collect::<Vec<_>>(),
            vec![Some(5.0), Some(0.0), Some(2.5)]
        );
        for bad in ["nan", "NaN", "7.5", "-3", "inf", "5.01"] {
            let err = parse_tsv(&stsb(&["1.0", bad]), GlueTask::Stsb, p())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("mem.tsv:3") && err.contains(bad) && err.contains("[0, 5]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn class_labels_must_be_in_the_task_set() {
        for (task, bad) in [
            (GlueTask::Sst2, "2"),
            (GlueTask::Sst2, "0.5"),
            (GlueTask::Sst2, "-2"),
            (GlueTask::Sst2, "nan"),
            (GlueTask::Qnli, "neutral"),
        ] {
            let t = if task.is_pair() {
                format!("question\tsentence\tlabel\nWhy?\tBecause.\t{bad}\n")
            } else {
                format!("sentence\tlabel\ngood film\t{bad}\n")
            };
            let err = parse_tsv(&t, task, p()).unwrap_err().to_string();
            assert!(
                err.contains("mem.tsv:2") && err.contains(bad) && err.contains("expected"),
                "{bad}: {err}"
            );
        }
    }

    // Issue 35: a dev file with a header and no rows scored accuracy 0.
    #[test]
    fn header_without_rows_is_an_error() {
        let err = parse_tsv("sentence\tlabel\n", GlueTask::Sst2, p())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mem.tsv") && err.contains("no examples"),
            "{err}"
        );
        let err = parse_tsv(&stsb(&[]), GlueTask::Stsb, p())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no examples"), "{err}");
    }

    // Issue 35: an empty label in a training file surfaced as "label NaN in a training batch"
    // with no file or line.
    #[test]
    fn empty_label_among_labelled_rows_names_the_line() {
        let t = "sentence\tlabel\ngood film\t1\nbad film\t\nfine\t0\n";
        let err = parse_tsv(t, GlueTask::Sst2, p()).unwrap_err().to_string();
        assert!(
            err.contains("mem.tsv:3") && err.contains("no label") && err.contains("line 2"),
            "{err}"
        );
        // The first rows unlabelled, a later one labelled: the unlabelled line is named.
        let err = parse_tsv(&stsb(&["", "-1", "3.2"]), GlueTask::Stsb, p())
            .unwrap_err()
            .to_string();
        assert!(err.contains("mem.tsv:2") && err.contains("line 4"), "{err}");
        // A test file (no label anywhere) still reads, as unlabelled rows.
        let t = "sentence1\tsentence2\tlabel\tidx\nA.\tB.\t-1\t0\nC.\tD.\t-1\t1\n";
        let ex = parse_tsv(t, GlueTask::Rte, p()).unwrap();
        assert!(ex.iter().all(|e| e.label.is_none()));
    }

    #[test]
    fn labelled_reader_refuses_a_test_split() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("train.tsv");
        std::fs::write(&f, "index\tsentence\n0\tgood film\n1\tbad film\n").unwrap();
        assert_eq!(read_glue_file(&f, GlueTask::Sst2).unwrap().len(), 2);
        let err = read_glue_labelled(&f, GlueTask::Sst2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.tsv") && err.contains("no labels"),
            "{err}"
        );
        std::fs::write(&f, "sentence\tlabel\ngood film\t1\n").unwrap();
        assert_eq!(read_glue_labelled(&f, GlueTask::Sst2).unwrap().len(), 1);
    }

    #[test]
    fn task_names_parse() {
        assert_eq!(GlueTask::parse("SST-2").unwrap(), GlueTask::Sst2);
        assert_eq!(GlueTask::parse("sts-b").unwrap(), GlueTask::Stsb);
        assert_eq!(
            GlueTask::parse("mnli-mm").unwrap(),
            GlueTask::MnliMismatched
        );
        assert_eq!(GlueTask::parse("MNLI").unwrap(), GlueTask::Mnli);
        assert!(GlueTask::parse("squad").is_err());
    }
}
