//! Readers for the **official VQA v2 files**, for the paper profile of the CLIP-ViL
//! reproduction (direct fine-tuning of Pythia / MCAN heads on CLIP grid features; spec
//! clip-vil.md §5.1, §6.1, §6.2). The mini and smoke profiles use [`crate::vqa`] (the
//! `vqa2_yesno` subset and synthetic scenes); this module is for the full data as
//! <https://visualqa.org/download.html> distributes it.
//!
//! # What is read and written
//!
//! * Questions, `v2_OpenEnded_mscoco_<split>_questions.json`
//!   (`{"questions": [{"image_id", "question", "question_id"}], ...}`): [`read_questions`].
//! * Annotations, `v2_mscoco_<split>_annotations.json` (train2014 / val2014 only):
//!   `{"annotations": [{"question_id", "image_id", "question_type", "answer_type",
//!   "multiple_choice_answer", "answers": [10 × {"answer", "answer_confidence",
//!   "answer_id"}]}], ...}`: [`read_annotations`].
//! * Both are parsed into typed structs with serde; unknown fields (`info`, `license`,
//!   `data_subtype`, …) are ignored, missing or mistyped fields are errors that name the file,
//!   say what is wrong (serde's message with line and column) and what to do. A question id
//!   that occurs twice in one file is an error too.
//! * [`join`] pairs questions with annotations by `question_id` (the order of the questions
//!   file is kept); a question without an annotation is an error naming its id and the
//!   annotations file. Annotations without a question are ignored, so a subset of the questions
//!   (e.g. a minival slice) can be joined with the full annotations. Test splits
//!   (test2015, test-dev2015) have no annotations: [`questions_only`], or [`read_split`] with
//!   `None`.
//! * Image file names: [`coco_image_name`] gives `COCO_<split>_<12-digit id>.jpg`. test-dev2015
//!   questions use test2015 images, so pass `"test2015"` for them.
//! * Results for the evaluation server, `[{"question_id": int, "answer": str}]`:
//!   [`write_results`] (written to a temporary file in the same folder, then renamed, so a
//!   crash never leaves a half-written file under the final name) and [`read_results`].
//!
//! # Answer vocabulary ([`AnswerTable`])
//!
//! Built as the BUTD preprocessing (`tools/compute_softscore.py` of
//! hengyuan-hu/bottom-up-attention-vqa, the standard 3,129-answer vocabulary that Pythia, MCAN
//! and LXMERT reuse) builds it:
//!
//! * each annotation's `multiple_choice_answer` (not the ten human answers) is normalised by
//!   [`preprocess_answer`]: `process_punctuation` → `process_digit_article` → delete `,`, the
//!   official evaluation's normalisation ([`crate::vqa_eval`]). **Choice:** we clean whitespace
//!   first (tabs/newlines → space, trim), as the evaluation always does and BUTD does not; this
//!   only changes answers containing tabs or newlines next to punctuation. The final comma
//!   deletion is a no-op kept for fidelity (`,` is one of the punctuation marks already removed
//!   or replaced);
//! * the number of distinct question ids per normalised answer is counted over the
//!   annotations given (BUTD: train2014 + val2014) and answers with at least `min_count`
//!   ([`BUTD_MIN_COUNT`] = 9) are kept;
//! * **order (our choice):** by descending count, ties by byte order of the UTF-8 strings
//!   (code-point order). BUTD labels answers in Python dict order, which is not reproducible
//!   across Python versions; to use the *released* label order (needed to load a released
//!   checkpoint) load `trainval_label2ans.json` with [`AnswerTable::from_label2ans_json`].
//!
//! # Soft targets ([`soft_target`])
//!
//! Spec §6.2: the target of answer class `a` is its official accuracy
//! [`vqa_accuracy`]`(a, answers)` against the human answers, i.e. 0.3 / 0.6 / 0.9 / 1.0 for
//! 1 / 2 / 3 / ≥4 matching annotators of ten (the leave-one-annotator-out mean; three matches
//! give 0.9). It is computed from match counts, with the evaluation's exact matching rules:
//! whitespace cleaned always; prediction and answers normalised only when the answers are not
//! all identical (so, as in the official evaluation, class `yes` gets 0 from ten `Yes`).
//! Every class whose evaluation accuracy is non-zero is listed, even a class that is not in
//! normal form (e.g. a released vocabulary entry `Two` scores like `2`). A question whose
//! answers are all out of vocabulary gets an empty list and stays in the data (all-zero target).
//!
//! **Difference from BUTD's code:** `compute_target` there counts the *raw* human answer
//! strings (its docstring asks for preprocessed answers, its caller passes raw ones) and looks
//! them up in the normalised vocabulary, so e.g. three annotators answering `Two` give the
//! class `2` no credit. We follow the spec (target = evaluation accuracy), which the property
//! tests check against [`vqa_accuracy`] on random answer lists.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::vqa_eval::{clean_whitespace, process_digit_article, process_punctuation, vqa_accuracy};
use crate::DataError;

/// BUTD's minimum number of questions (train2014 + val2014) whose multiple-choice answer is an
/// answer for it to become a class; gives the standard 3,129 answers.
pub const BUTD_MIN_COUNT: usize = 9;

const DOWNLOAD_HINT: &str = "download it from https://visualqa.org/download.html (VQA v2, \
     unzip it), or check the path";

// ------------------------------------------------------------------------------------------
// Questions and annotations
// ------------------------------------------------------------------------------------------

/// One entry of `v2_OpenEnded_mscoco_<split>_questions.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub image_id: u64,
    pub question: String,
    /// `image_id · 1000 + k` in the official files.
    pub question_id: u64,
}

/// `answer_type` of an annotation (the categories of the per-type accuracies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AnswerType {
    #[serde(rename = "yes/no")]
    YesNo,
    #[serde(rename = "number")]
    Number,
    #[serde(rename = "other")]
    Other,
}

impl AnswerType {
    /// The string used in the files and in the official per-type report.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerType::YesNo => "yes/no",
            AnswerType::Number => "number",
            AnswerType::Other => "other",
        }
    }
}

/// One human answer of an annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanAnswer {
    pub answer: String,
    /// `"yes"`, `"maybe"` or `"no"` in the official files (kept as given).
    pub answer_confidence: String,
    /// 1..=10.
    pub answer_id: u32,
}

/// One entry of `v2_mscoco_<split>_annotations.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub question_id: u64,
    pub image_id: u64,
    pub question_type: String,
    pub answer_type: AnswerType,
    /// The most frequent human answer (what the vocabulary is built from).
    pub multiple_choice_answer: String,
    /// The ten human answers.
    pub answers: Vec<HumanAnswer>,
}

impl Annotation {
    /// The human answer strings, as [`vqa_accuracy`] and [`soft_target`] take them.
    pub fn answer_strings(&self) -> Vec<String> {
        self.answers.iter().map(|a| a.answer.clone()).collect()
    }
}

/// A question with its annotation (`None` for test splits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VqaExample {
    pub question: Question,
    pub annotation: Option<Annotation>,
}

#[derive(Deserialize)]
struct QuestionsFile {
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct AnnotationsFile {
    annotations: Vec<Annotation>,
}

/// Reads `v2_OpenEnded_mscoco_<split>_questions.json`, in file order.
pub fn read_questions(path: &Path) -> Result<Vec<Question>, DataError> {
    let file: QuestionsFile = read_json(
        path,
        "VQA v2 questions file",
        r#"{"questions": [{"image_id": int, "question": str, "question_id": int}, ...]} as in v2_OpenEnded_mscoco_<split>_questions.json (an annotations file goes to read_annotations)"#,
    )?;
    check_unique(path, file.questions.iter().map(|q| q.question_id))?;
    Ok(file.questions)
}

/// Reads `v2_mscoco_<split>_annotations.json`, in file order.
pub fn read_annotations(path: &Path) -> Result<Vec<Annotation>, DataError> {
    let file: AnnotationsFile = read_json(
        path,
        "VQA v2 annotations file",
        r#"{"annotations": [{"question_id", "image_id", "question_type", "answer_type": "yes/no"|"number"|"other", "multiple_choice_answer", "answers": [{"answer", "answer_confidence", "answer_id"}, ...]}, ...]} as in v2_mscoco_<split>_annotations.json (a questions file goes to read_questions)"#,
    )?;
    check_unique(path, file.annotations.iter().map(|a| a.question_id))?;
    Ok(file.annotations)
}

fn check_unique(path: &Path, ids: impl Iterator<Item = u64>) -> Result<(), DataError> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: format!(
                    "question_id {id} occurs twice; the official files have unique ids: the file \
                     was edited or concatenated, re-download it"
                ),
            });
        }
    }
    Ok(())
}

/// Pairs each question with the annotation of the same `question_id`, in question order.
/// `annotations_path` is the file the annotations came from (named in errors). Errors on the
/// first question without an annotation, or whose annotation has another `image_id` (files of
/// different splits or versions). Annotations without a question are ignored.
pub fn join(
    questions: Vec<Question>,
    annotations: Vec<Annotation>,
    annotations_path: &Path,
) -> Result<Vec<VqaExample>, DataError> {
    let mut by_id: HashMap<u64, Annotation> = HashMap::with_capacity(annotations.len());
    for a in annotations {
        by_id.insert(a.question_id, a);
    }
    questions
        .into_iter()
        .map(|q| {
            let a = by_id
                .remove(&q.question_id)
                .ok_or_else(|| DataError::Layout {
                    path: annotations_path.to_path_buf(),
                    msg: format!(
                        "no annotation for question_id {} (image_id {}); the questions and \
                     annotations files must be of the same split and VQA version (v2_OpenEnded_\
                     mscoco_<split>_questions.json with v2_mscoco_<split>_annotations.json); test \
                     splits have no annotations: read them questions-only",
                        q.question_id, q.image_id
                    ),
                })?;
            if a.image_id != q.image_id {
                return Err(DataError::Layout {
                    path: annotations_path.to_path_buf(),
                    msg: format!(
                        "question_id {} has image_id {} in the questions file but {} here; the \
                         files are of different splits or versions",
                        q.question_id, q.image_id, a.image_id
                    ),
                });
            }
            Ok(VqaExample {
                question: q,
                annotation: Some(a),
            })
        })
        .collect()
}

/// Questions without annotations (test2015, test-dev2015).
pub fn questions_only(questions: Vec<Question>) -> Vec<VqaExample> {
    questions
        .into_iter()
        .map(|question| VqaExample {
            question,
            annotation: None,
        })
        .collect()
}

/// [`read_questions`] then, when `annotations_path` is given, [`read_annotations`] and
/// [`join`]; otherwise [`questions_only`].
pub fn read_split(
    questions_path: &Path,
    annotations_path: Option<&Path>,
) -> Result<Vec<VqaExample>, DataError> {
    let questions = read_questions(questions_path)?;
    match annotations_path {
        // join names the annotations file; a mismatch may as well be the questions file's.
        Some(p) => join(questions, read_annotations(p)?, p).map_err(|e| match e {
            DataError::Layout { path, msg } => DataError::Layout {
                path,
                msg: format!("{msg} (questions from {})", questions_path.display()),
            },
            e => e,
        }),
        None => Ok(questions_only(questions)),
    }
}

/// COCO image file name: `COCO_<split>_<12-digit zero-padded id>.jpg`, with `split` the image
/// split (`train2014`, `val2014`, `test2015`; test-dev2015 questions use `test2015`).
pub fn coco_image_name(split: &str, image_id: u64) -> String {
    format!("COCO_{split}_{image_id:012}.jpg")
}

// ------------------------------------------------------------------------------------------
// Answer vocabulary
// ------------------------------------------------------------------------------------------

/// BUTD's `preprocess_answer` (see the module doc): whitespace cleaned (our addition), then
/// `process_punctuation`, `process_digit_article`, commas deleted.
pub fn preprocess_answer(answer: &str) -> String {
    process_digit_article(&process_punctuation(&clean_whitespace(answer))).replace(',', "")
}

/// The evaluation's normal form when the answers are not all identical.
fn eval_form(answer: &str) -> String {
    process_digit_article(&process_punctuation(&clean_whitespace(answer)))
}

/// Answer classes: `answers[label]` and its inverse.
#[derive(Debug, Clone)]
pub struct AnswerTable {
    answers: Vec<String>,
    index: HashMap<String, u32>,
    /// Classes by `clean_whitespace(class)`: what the evaluation compares with identical answers.
    by_clean: HashMap<String, Vec<u32>>,
    /// Classes by their evaluation normal form: what it compares with differing answers.
    by_norm: HashMap<String, Vec<u32>>,
}

/// Normalised multiple-choice answers with the number of distinct question ids that have
/// them, by descending count, ties in byte order ([`AnswerTable::build`] keeps a prefix).
pub fn answer_counts<'a>(
    annotations: impl IntoIterator<Item = &'a Annotation>,
) -> Vec<(String, usize)> {
    let mut ids: HashMap<String, HashSet<u64>> = HashMap::new();
    for a in annotations {
        ids.entry(preprocess_answer(&a.multiple_choice_answer))
            .or_default()
            .insert(a.question_id);
    }
    let mut counts: Vec<(String, usize)> = ids.into_iter().map(|(a, s)| (a, s.len())).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

impl AnswerTable {
    /// The BUTD vocabulary: normalised multiple-choice answers of at least `min_count`
    /// questions (pass train2014 and val2014 annotations and [`BUTD_MIN_COUNT`]), by
    /// descending count then byte order.
    pub fn build<'a>(
        annotations: impl IntoIterator<Item = &'a Annotation>,
        min_count: usize,
    ) -> Self {
        let answers = answer_counts(annotations)
            .into_iter()
            .filter(|(_, c)| *c >= min_count)
            .map(|(a, _)| a)
            .collect();
        Self::new_unchecked(answers)
    }

    /// A table with the given label order; duplicates are an error.
    pub fn from_answers(answers: Vec<String>) -> Result<Self, DataError> {
        if let Some(d) = first_duplicate(&answers) {
            return Err(DataError::Invalid(format!(
                "answer table: `{}` is labels {} and {}; answers must be distinct",
                answers[d.1], d.0, d.1
            )));
        }
        Ok(Self::new_unchecked(answers))
    }

    /// Loads a released `trainval_label2ans.json` (a JSON list of answer strings; the label is
    /// the position), keeping its order so released checkpoints line up.
    pub fn from_label2ans_json(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
        let bytes = crate::textfile::strip_bom(&bytes);
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return Err(DataError::Malformed {
                path: path.to_path_buf(),
                line: 1,
                msg: "a JSON object, not a list: this looks like trainval_ans2label.json; pass \
                      trainval_label2ans.json (a list of answer strings, label = position)"
                    .into(),
            });
        }
        let answers: Vec<String> = serde_json::from_slice(bytes).map_err(|e| {
            json_error(
                path,
                "label2ans file",
                &e,
                r#"a JSON list of answer strings ["yes", "no", ...] as in trainval_label2ans.json"#,
            )
        })?;
        if answers.is_empty() {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: "empty answer list; expected the released trainval_label2ans.json (3,129 \
                      answers)"
                    .into(),
            });
        }
        if let Some((i, j)) = first_duplicate(&answers) {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: format!(
                    "`{}` is labels {i} and {j}; a label2ans list has distinct answers: the file \
                     is damaged, re-download it",
                    answers[j]
                ),
            });
        }
        Ok(Self::new_unchecked(answers))
    }

    /// Writes the table as a label2ans JSON list (atomically), to keep next to a checkpoint.
    pub fn write_label2ans_json(&self, path: &Path) -> Result<(), DataError> {
        write_json_atomically(path, &self.answers)
    }

    fn new_unchecked(answers: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(answers.len());
        let mut by_clean: HashMap<String, Vec<u32>> = HashMap::new();
        let mut by_norm: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, a) in answers.iter().enumerate() {
            let label = i as u32;
            index.insert(a.clone(), label);
            by_clean.entry(clean_whitespace(a)).or_default().push(label);
            by_norm.entry(eval_form(a)).or_default().push(label);
        }
        Self {
            answers,
            index,
            by_clean,
            by_norm,
        }
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The answers, in label order.
    pub fn answers(&self) -> &[String] {
        &self.answers
    }

    /// The label of an answer string, exactly as stored (no normalisation).
    pub fn label(&self, answer: &str) -> Option<u32> {
        self.index.get(answer).copied()
    }

    /// The answer of a label (e.g. to write the argmax of a model into a results file).
    pub fn answer(&self, label: u32) -> Option<&str> {
        self.answers.get(label as usize).map(String::as_str)
    }
}

fn first_duplicate(answers: &[String]) -> Option<(usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(answers.len());
    for (j, a) in answers.iter().enumerate() {
        if let Some(&i) = seen.get(a.as_str()) {
            return Some((i, j));
        }
        seen.insert(a, j);
    }
    None
}

// ------------------------------------------------------------------------------------------
// Soft targets
// ------------------------------------------------------------------------------------------

/// The official accuracy of a prediction matched by `k` of `n` answers: the mean over the `n`
/// leave-one-out subsets of `min(1, matches / 3)`.
fn accuracy_from_matches(k: usize, n: usize) -> f64 {
    let in_subset = |m: usize| (m as f64 / 3.0).min(1.0);
    (k as f64 * in_subset(k.saturating_sub(1)) + (n - k) as f64 * in_subset(k)) / n as f64
}

/// Sparse training target of one question: `(label, score)` for every class of `table` whose
/// official accuracy against the human `answers` is non-zero, score = that accuracy
/// (0.3 / 0.6 / 0.9 / 1.0 for 1 / 2 / 3 / ≥4 of ten), sorted by label. Empty when no class
/// matches (the question stays, with an all-zero target).
pub fn soft_target(answers: &[String], table: &AnswerTable) -> Vec<(u32, f32)> {
    let n = answers.len();
    let cleaned: Vec<String> = answers.iter().map(|a| clean_whitespace(a)).collect();
    let all_same = cleaned.windows(2).all(|w| w[0] == w[1]);
    // Same rules as vqa_accuracy: raw (cleaned) comparison when the answers agree, normal
    // forms of both sides otherwise.
    let (gts, classes) = if all_same {
        (cleaned, &table.by_clean)
    } else {
        (
            cleaned.iter().map(|g| eval_form(g)).collect(),
            &table.by_norm,
        )
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for g in &gts {
        *counts.entry(g.as_str()).or_insert(0) += 1;
    }
    let mut out: Vec<(u32, f32)> = counts
        .into_iter()
        .filter_map(|(g, k)| classes.get(g).map(|labels| (labels, k)))
        .flat_map(|(labels, k)| {
            let score = accuracy_from_matches(k, n) as f32;
            labels.iter().map(move |&l| (l, score))
        })
        // A single answer scores 0 (no leave-one-out subset contains a match).
        .filter(|&(_, s)| s > 0.0)
        .collect();
    out.sort_by_key(|&(l, _)| l);
    out
}

/// [`soft_target`] of each annotation, in order.
pub fn soft_targets(annotations: &[Annotation], table: &AnswerTable) -> Vec<Vec<(u32, f32)>> {
    annotations
        .iter()
        .map(|a| soft_target(&a.answer_strings(), table))
        .collect()
}

/// The official accuracy of a class prediction (`vqa_accuracy` of the class's answer string);
/// 0 for an unknown label. The in-training evaluation of spec §6.2 is its mean over questions.
pub fn label_accuracy(label: u32, answers: &[String], table: &AnswerTable) -> f64 {
    table
        .answer(label)
        .map_or(0.0, |a| vqa_accuracy(a, answers))
}

// ------------------------------------------------------------------------------------------
// Results file
// ------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ResultEntry<'a> {
    question_id: u64,
    answer: std::borrow::Cow<'a, str>,
}

/// Writes the evaluation server's results file `[{"question_id": int, "answer": str}, ...]`
/// atomically (temporary file in the same folder, then rename). A question id given twice is
/// an error (the server rejects such files).
pub fn write_results<S: AsRef<str>>(path: &Path, results: &[(u64, S)]) -> Result<(), DataError> {
    let mut seen = HashSet::with_capacity(results.len());
    for (qid, _) in results {
        if !seen.insert(*qid) {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: format!(
                    "not written: question_id {qid} has two answers; give one answer per question"
                ),
            });
        }
    }
    let entries: Vec<ResultEntry<'_>> = results
        .iter()
        .map(|(qid, a)| ResultEntry {
            question_id: *qid,
            answer: std::borrow::Cow::Borrowed(a.as_ref()),
        })
        .collect();
    write_json_atomically(path, &entries)
}

/// Reads a results file written by [`write_results`] (or by any other tool for the server).
pub fn read_results(path: &Path) -> Result<Vec<(u64, String)>, DataError> {
    #[derive(Deserialize)]
    struct Entry {
        question_id: u64,
        answer: String,
    }
    let entries: Vec<Entry> = read_json(
        path,
        "VQA results file",
        r#"[{"question_id": int, "answer": str}, ...]"#,
    )?;
    Ok(entries
        .into_iter()
        .map(|e| (e.question_id, e.answer))
        .collect())
}

// ------------------------------------------------------------------------------------------
// File helpers
// ------------------------------------------------------------------------------------------

fn read_error(path: &Path, source: std::io::Error) -> DataError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DataError::Missing {
            path: path.to_path_buf(),
            hint: DOWNLOAD_HINT.into(),
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn json_error(path: &Path, what: &str, e: &serde_json::Error, expected: &str) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        line: e.line(),
        msg: format!(
            "not a valid {what}: {e}; expected {expected}; {}",
            if e.is_eof() || e.is_syntax() {
                "the file is truncated or damaged: re-download it"
            } else {
                "check that this is the right file"
            }
        ),
    }
}

fn read_json<T: DeserializeOwned>(path: &Path, what: &str, expected: &str) -> Result<T, DataError> {
    // One read then from_slice: much faster than from_reader on the 300 MB annotation files.
    let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
    serde_json::from_slice(crate::textfile::strip_bom(&bytes))
        .map_err(|e| json_error(path, what, &e, expected))
}

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn write_json_atomically<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), DataError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(DataError::Layout {
            path: path.to_path_buf(),
            msg: "not written: the path names no file".into(),
        });
    };
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut w = BufWriter::new(File::create(&tmp)?);
        serde_json::to_writer(&mut w, value)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::Layout {
            path: path.to_path_buf(),
            msg: format!(
                "not written ({e}); check that the folder {} exists and is writable",
                dir.display()
            ),
        }
    })
}
