//! SQuAD v1.1 / v2.0: the official JSON layout and the official evaluation (EM and F1 after
//! `normalize_answer`, maximum over the gold answers; v2.0 unanswerable questions have the empty
//! string as their only gold answer, so predicting "" scores 1 on them and 0 elsewhere).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::DataError;

/// One question.
#[derive(Debug, Clone, PartialEq)]
pub struct SquadExample {
    pub id: String,
    pub title: String,
    pub context: String,
    pub question: String,
    /// Gold answers (text, character offset in `context`); empty when unanswerable (v2.0).
    pub answers: Vec<(String, usize)>,
    pub is_impossible: bool,
}

#[derive(Deserialize)]
struct RawAnswer {
    text: String,
    answer_start: usize,
}
#[derive(Deserialize)]
struct RawQa {
    id: String,
    question: String,
    #[serde(default)]
    answers: Vec<RawAnswer>,
    #[serde(default)]
    is_impossible: bool,
}
#[derive(Deserialize)]
struct RawParagraph {
    context: String,
    qas: Vec<RawQa>,
}
#[derive(Deserialize)]
struct RawArticle {
    #[serde(default)]
    title: String,
    paragraphs: Vec<RawParagraph>,
}
#[derive(Deserialize)]
struct RawFile {
    data: Vec<RawArticle>,
}

/// Reads a SQuAD JSON file (v1.1 or v2.0), checking every answer offset against its context.
pub fn read_squad(path: &Path) -> Result<Vec<SquadExample>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let raw: RawFile = serde_json::from_str(&text).map_err(|e| DataError::Malformed {
        path: path.to_path_buf(),
        line: e.line(),
        msg: format!("not a SQuAD JSON file: {e}"),
    })?;
    let mut out = Vec::new();
    for a in raw.data {
        for p in a.paragraphs {
            for q in p.qas {
                let mut answers = Vec::new();
                for ans in &q.answers {
                    let ok = p
                        .context
                        .get(ans.answer_start..)
                        .is_some_and(|s| s.starts_with(&ans.text));
                    if !ok {
                        return Err(DataError::Layout {
                            path: path.to_path_buf(),
                            msg: format!(
                                "question {}: answer {:?} is not at character {} of its context",
                                q.id, ans.text, ans.answer_start
                            ),
                        });
                    }
                    answers.push((ans.text.clone(), ans.answer_start));
                }
                if answers.is_empty() && !q.is_impossible {
                    return Err(DataError::Layout {
                        path: path.to_path_buf(),
                        msg: format!(
                            "question {} has no answer and is not marked is_impossible",
                            q.id
                        ),
                    });
                }
                out.push(SquadExample {
                    id: q.id,
                    title: a.title.clone(),
                    context: p.context.clone(),
                    // The reference left-strips questions (some start with whitespace).
                    question: q.question.trim_start().to_string(),
                    answers,
                    is_impossible: q.is_impossible,
                });
            }
        }
    }
    Ok(out)
}

/// The official `normalize_answer`: lower-case, drop punctuation, drop the articles a/an/the,
/// collapse whitespace.
pub fn normalize_answer(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    no_punct
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn exact_match(pred: &str, gold: &str) -> f64 {
    (normalize_answer(pred) == normalize_answer(gold)) as u8 as f64
}

/// Token-level F1 of the official script (bag-of-tokens overlap).
pub fn f1_score(pred: &str, gold: &str) -> f64 {
    let p = normalize_answer(pred);
    let g = normalize_answer(gold);
    let pt: Vec<&str> = p.split_whitespace().collect();
    let gt: Vec<&str> = g.split_whitespace().collect();
    if pt.is_empty() || gt.is_empty() {
        // v2.0 script: both empty -> 1, else 0.
        return (pt.is_empty() && gt.is_empty()) as u8 as f64;
    }
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for t in &gt {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0i64;
    for t in &pt {
        if let Some(c) = counts.get_mut(t) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pt.len() as f64;
    let recall = same as f64 / gt.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// EM and F1 (x100) over a dataset; a missing prediction scores 0 (the official script warns).
pub fn evaluate(examples: &[SquadExample], predictions: &BTreeMap<String, String>) -> (f64, f64) {
    if examples.is_empty() {
        return (0.0, 0.0);
    }
    let (mut em, mut f1) = (0.0, 0.0);
    for ex in examples {
        let Some(pred) = predictions.get(&ex.id) else {
            continue;
        };
        let golds: Vec<&str> = if ex.answers.is_empty() {
            vec![""]
        } else {
            ex.answers.iter().map(|(t, _)| t.as_str()).collect()
        };
        em += golds
            .iter()
            .map(|g| exact_match(pred, g))
            .fold(0.0, f64::max);
        f1 += golds.iter().map(|g| f1_score(pred, g)).fold(0.0, f64::max);
    }
    let n = examples.len() as f64;
    (100.0 * em / n, 100.0 * f1 / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = r#"{"version": "v2.0", "data": [{"title": "Kiln", "paragraphs": [{
        "context": "The kiln was built in 1887 by Ada Smith near the river.",
        "qas": [
          {"id": "q1", "question": "  When was the kiln built?", "answers": [{"text": "1887", "answer_start": 22}], "is_impossible": false},
          {"id": "q2", "question": "Who built the kiln?", "answers": [{"text": "Ada Smith", "answer_start": 30}, {"text": "Smith", "answer_start": 34}]},
          {"id": "q3", "question": "Who painted the kiln?", "answers": [], "is_impossible": true}
        ]}]}]}"#;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dev.json");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn reads_v2_with_unanswerable_questions() {
        let (_d, p) = write(V2);
        let ex = read_squad(&p).unwrap();
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[0].question, "When was the kiln built?");
        assert_eq!(ex[1].answers.len(), 2);
        assert!(ex[2].is_impossible && ex[2].answers.is_empty());
    }

    #[test]
    fn official_metrics_on_hand_checked_cases() {
        let (_d, p) = write(V2);
        let ex = read_squad(&p).unwrap();
        let mut pred = BTreeMap::new();
        pred.insert("q1".to_string(), "in 1887".to_string()); // EM 0, F1 2/3
        pred.insert("q2".to_string(), "the Smith".to_string()); // EM 1 (vs "Smith"), F1 1
        pred.insert("q3".to_string(), "".to_string()); // unanswerable, abstained: 1, 1
        let (em, f1) = evaluate(&ex, &pred);
        assert!((em - 200.0 / 3.0).abs() < 1e-9, "{em}");
        assert!(
            (f1 - 100.0 * (2.0 / 3.0 + 1.0 + 1.0) / 3.0).abs() < 1e-9,
            "{f1}"
        );
        assert_eq!(
            normalize_answer("The  Quick, brown fox!"),
            "quick brown fox"
        );
    }

    #[test]
    fn bad_offsets_and_bad_json_are_clear_errors() {
        let (_d, p) = write(&V2.replace("\"answer_start\": 22", "\"answer_start\": 5"));
        let e = read_squad(&p).unwrap_err().to_string();
        assert!(
            e.contains("dev.json") && e.contains("q1") && e.contains("character 5"),
            "{e}"
        );
        let (_d2, p2) = write("{\"data\": [");
        let e = read_squad(&p2).unwrap_err().to_string();
        assert!(e.contains("dev.json") && e.contains("SQuAD"), "{e}");
    }
}
