//! SQuAD v1.1 / v2.0: the official JSON layout and the official evaluation (EM and F1 after
//! `normalize_answer`, maximum over the gold answers; v2.0 unanswerable questions have the empty
//! string as their only gold answer, so predicting "" scores 1 on them and 0 elsewhere).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{DataError, Encoded};

/// One question.
#[derive(Debug, Clone, PartialEq)]
pub struct SquadExample {
    pub id: String,
    pub title: String,
    pub context: String,
    pub question: String,
    /// Gold answers (text, *byte* offset in `context`; the file's character offsets are
    /// converted on reading); empty when unanswerable (v2.0).
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
    let text = crate::textfile::strip_bom_str(&text);
    let raw: RawFile = serde_json::from_str(text).map_err(|e| DataError::Malformed {
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
                    // `answer_start` counts characters (Python string indices), not bytes.
                    let byte = p
                        .context
                        .char_indices()
                        .map(|(b, _)| b)
                        .chain(std::iter::once(p.context.len()))
                        .nth(ans.answer_start);
                    let ok = byte.is_some_and(|b| p.context[b..].starts_with(&ans.text));
                    if !ok {
                        return Err(DataError::Layout {
                            path: path.to_path_buf(),
                            msg: format!(
                                "question {}: answer {:?} is not at character {} of its context",
                                q.id, ans.text, ans.answer_start
                            ),
                        });
                    }
                    answers.push((ans.text.clone(), byte.unwrap_or_default()));
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
    if out.is_empty() {
        return Err(DataError::Layout {
            path: path.to_path_buf(),
            msg: "no questions (`data` holds no paragraph with a question): a SQuAD split needs \
                  at least one; check that the file was written completely"
                .into(),
        });
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
/// An empty dataset is an error, not a score of 0.
pub fn evaluate(
    examples: &[SquadExample],
    predictions: &BTreeMap<String, String>,
) -> Result<(f64, f64), DataError> {
    if examples.is_empty() {
        return Err(DataError::Metric {
            metric: "SQuAD EM/F1",
            msg: "no questions to score: the evaluation set is empty (check the dev file and \
                  any option that subsets it)"
                .into(),
        });
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
    Ok((100.0 * em / n, 100.0 * f1 / n))
}

/// One window of one example (HF `prepare_train_features` / `prepare_validation_features`):
/// `[CLS] question [SEP] context-window [SEP]`, windows overlapping by `stride` tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SquadFeature {
    /// Index of the example in the slice the features were built from.
    pub example: usize,
    pub encoded: Encoded,
    /// Byte span in the context of each token; `None` for question and special tokens.
    pub offsets: Vec<Option<(usize, usize)>>,
    /// Gold start/end token; both 0 ([CLS]) when the answer is not fully inside this window or
    /// the question is unanswerable.
    pub start: usize,
    pub end: usize,
}

/// Windowing settings (the reference's: 384 tokens, 128-token overlap; questions are cut to 64
/// tokens as in the original BERT script so every window has room for context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquadWindows {
    pub max_len: usize,
    pub stride: usize,
    pub max_query: usize,
}

impl Default for SquadWindows {
    fn default() -> Self {
        Self {
            max_len: 384,
            stride: 128,
            max_query: 64,
        }
    }
}

/// Tokenizes and windows `examples`. Training labels use the first gold answer, as HF does.
pub fn squad_features(
    examples: &[SquadExample],
    tok: &crate::TextTokenizer,
    w: SquadWindows,
) -> Result<Vec<SquadFeature>, DataError> {
    let source = tok
        .source
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("<built-in>"));
    let special = |t: &str| {
        tok.token_id(t).ok_or_else(|| DataError::Tokenizer {
            path: source.clone(),
            msg: format!("the tokenizer has no {t} token, which SQuAD features need"),
        })
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    let mut out = Vec::new();
    for (ei, ex) in examples.iter().enumerate() {
        let (mut q, _) = tok.encode_with_offsets(&ex.question)?;
        q.truncate(w.max_query);
        let (ctx, offs) = tok.encode_with_offsets(&ex.context)?;
        let room = w.max_len.saturating_sub(q.len() + 3);
        if room <= w.stride {
            return Err(DataError::Invalid(format!(
                "SQuAD windows: max_len {} leaves {room} context tokens after a {}-token question, not more than the stride {}",
                w.max_len,
                q.len(),
                w.stride
            )));
        }
        let answer = ex
            .answers
            .first()
            .filter(|_| !ex.is_impossible)
            .map(|(t, b)| (*b, b + t.len()));
        let mut start = 0usize;
        loop {
            let end = (start + room).min(ctx.len());
            let mut ids = Vec::with_capacity(q.len() + end - start + 3);
            ids.push(cls);
            ids.extend_from_slice(&q);
            ids.push(sep);
            let first = ids.len();
            ids.extend_from_slice(&ctx[start..end]);
            ids.push(sep);
            let mut type_ids = vec![0i64; first];
            type_ids.resize(ids.len(), 1);
            let mut offsets = vec![None; first];
            offsets.extend(offs[start..end].iter().map(|&o| Some(o)));
            offsets.push(None);
            let (mut s_tok, mut e_tok) = (0, 0);
            if let Some((a, b)) = answer {
                let win = &offs[start..end];
                if let (Some(f), Some(l)) = (win.first(), win.last()) {
                    if f.0 <= a && l.1 >= b {
                        // First token ending after the answer start; last token starting
                        // before its end.
                        let si = win.iter().position(|o| o.1 > a).unwrap_or(0);
                        let ei = win.iter().rposition(|o| o.0 < b).unwrap_or(si);
                        s_tok = first + si;
                        e_tok = first + ei.max(si);
                    }
                }
            }
            out.push(SquadFeature {
                example: ei,
                encoded: Encoded { ids, type_ids },
                offsets,
                start: s_tok,
                end: e_tok,
            });
            if end >= ctx.len() {
                break;
            }
            start += room - w.stride;
        }
    }
    Ok(out)
}

/// Batches `features[order]` in that order, padded to the longest, with their gold spans.
pub fn squad_batches(
    features: &[SquadFeature],
    order: &[usize],
    batch_size: usize,
    pad_id: i64,
) -> Vec<crate::Batch> {
    order
        .chunks(batch_size.max(1))
        .map(|c| {
            let items: Vec<(&Encoded, Option<f32>)> =
                c.iter().map(|&i| (&features[i].encoded, None)).collect();
            let mut b = crate::batch::pad(&items, c.to_vec(), pad_id, None);
            b.spans = c
                .iter()
                .map(|&i| (features[i].start, features[i].end))
                .collect();
            b
        })
        .collect()
}

/// Post-processing settings (HF `postprocess_qa_predictions` defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SquadDecode {
    pub n_best: usize,
    pub max_answer_len: usize,
    /// v2.0: answer "" when the null score beats the best span by more than this.
    pub null_threshold: f32,
    pub version_2: bool,
}

impl Default for SquadDecode {
    fn default() -> Self {
        Self {
            n_best: 20,
            max_answer_len: 30,
            null_threshold: 0.0,
            version_2: false,
        }
    }
}

fn top_n(v: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(n);
    idx
}

/// Turns per-feature start/end logits into one answer per example: the best-scoring valid span
/// (both ends in the context, end ≥ start, at most `max_answer_len` tokens) over the example's
/// windows among the `n_best` starts × `n_best` ends; for v2.0, "" when the smallest null score
/// ([CLS] start + end) beats it by more than the threshold. An example with no valid span gets "".
pub fn squad_predictions(
    examples: &[SquadExample],
    features: &[SquadFeature],
    start_logits: &[Vec<f32>],
    end_logits: &[Vec<f32>],
    cfg: SquadDecode,
) -> BTreeMap<String, String> {
    let mut best: Vec<Option<(f32, usize, usize)>> = vec![None; examples.len()];
    let mut null: Vec<Option<f32>> = vec![None; examples.len()];
    for (fi, f) in features.iter().enumerate() {
        let (s, e) = (&start_logits[fi], &end_logits[fi]);
        let n = s.len().min(e.len()).min(f.offsets.len());
        if n == 0 {
            continue;
        }
        let ns = s[0] + e[0];
        let slot = &mut null[f.example];
        *slot = Some(slot.map_or(ns, |v| v.min(ns)));
        for &i in &top_n(&s[..n], cfg.n_best) {
            for &j in &top_n(&e[..n], cfg.n_best) {
                let (Some(a), Some(b)) = (f.offsets[i], f.offsets[j]) else {
                    continue;
                };
                if j < i || j - i + 1 > cfg.max_answer_len {
                    continue;
                }
                let score = s[i] + e[j];
                if best[f.example].is_none_or(|(v, _, _)| score > v) {
                    best[f.example] = Some((score, a.0, b.1));
                }
            }
        }
    }
    examples
        .iter()
        .enumerate()
        .map(|(k, ex)| {
            let text = match best[k] {
                Some((score, a, b)) => {
                    let abstain =
                        cfg.version_2 && null[k].is_some_and(|ns| ns > score + cfg.null_threshold);
                    if abstain {
                        String::new()
                    } else {
                        ex.context.get(a..b).unwrap_or_default().to_string()
                    }
                }
                None => String::new(),
            };
            (ex.id.clone(), text)
        })
        .collect()
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
        let (em, f1) = evaluate(&ex, &pred).unwrap();
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

    // Issue 35: zero questions scored EM 0 / F1 0 instead of failing.
    #[test]
    fn no_questions_is_an_error_not_a_score() {
        let (_d, p) = write(r#"{"version": "v2.0", "data": []}"#);
        let e = read_squad(&p).unwrap_err().to_string();
        assert!(e.contains("dev.json") && e.contains("no questions"), "{e}");
        let e = evaluate(&[], &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("no questions"), "{e}");
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

    #[test]
    fn character_offsets_become_byte_offsets() {
        let text = r#"{"data": [{"title": "t", "paragraphs": [{"context": "Café Zoë opened in 1887 in Zürich.",
            "qas": [{"id": "a", "question": "When?", "answers": [{"text": "1887", "answer_start": 19}]},
                    {"id": "b", "question": "Where?", "answers": [{"text": "Zürich", "answer_start": 27}]}]}]}]}"#;
        let (_d, p) = write(text);
        let ex = read_squad(&p).unwrap();
        assert_eq!(ex[0].answers[0].1, 21);
        assert_eq!(&ex[1].context[ex[1].answers[0].1..][..7], "Zürich");
    }

    fn word_tok() -> crate::TextTokenizer {
        crate::TextTokenizer::word_level(&crate::synthetic::vocabulary(), 512).unwrap()
    }

    fn one_hot(features: &[SquadFeature], null: bool) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let mk = |f: &SquadFeature, at: usize| {
            let mut v = vec![0.0f32; f.encoded.ids.len()];
            v[at] += 5.0;
            if null {
                v[0] += 4.0;
            }
            v
        };
        (
            features.iter().map(|f| mk(f, f.start)).collect(),
            features.iter().map(|f| mk(f, f.end)).collect(),
        )
    }

    #[test]
    fn windows_cover_the_context_and_labels_point_at_the_answer() {
        let tok = word_tok();
        let examples = crate::synthetic::squad(60, 2, 0.0);
        let w = SquadWindows {
            max_len: 16,
            stride: 4,
            max_query: 8,
        };
        let feats = squad_features(&examples, &tok, w).unwrap();
        assert!(
            feats.len() > examples.len() * 3 / 2,
            "long contexts need several windows: {} features for {} examples",
            feats.len(),
            examples.len()
        );
        let cls = tok.token_id("[CLS]").unwrap();
        for (ei, ex) in examples.iter().enumerate() {
            let mine: Vec<&SquadFeature> = feats.iter().filter(|f| f.example == ei).collect();
            let (ctx_ids, _) = tok.encode_with_offsets(&ex.context).unwrap();
            // Every context token is in some window; consecutive windows overlap by the stride.
            let covered: usize = mine
                .iter()
                .map(|f| f.offsets.iter().flatten().count())
                .sum();
            assert_eq!(covered - (mine.len() - 1) * w.stride, ctx_ids.len());
            let mut found = false;
            for f in &mine {
                assert!(f.encoded.ids.len() <= w.max_len && f.encoded.ids[0] == cls);
                if f.start != 0 {
                    let (a, b) = (f.offsets[f.start].unwrap().0, f.offsets[f.end].unwrap().1);
                    assert_eq!(&ex.context[a..b], ex.answers[0].0);
                    found = true;
                }
            }
            assert!(found, "answer of {} in no window", ex.id);
        }
        // Gold logits decode back to the gold answers: EM 100.
        let (s, e) = one_hot(&feats, false);
        let pred = squad_predictions(&examples, &feats, &s, &e, SquadDecode::default());
        assert_eq!(evaluate(&examples, &pred).unwrap(), (100.0, 100.0));
    }

    #[test]
    fn v2_abstains_when_the_null_score_wins() {
        let tok = word_tok();
        let examples = crate::synthetic::squad(80, 3, 0.5);
        let feats = squad_features(&examples, &tok, SquadWindows::default()).unwrap();
        assert_eq!(feats.len(), examples.len());
        for f in &feats {
            assert_eq!(
                examples[f.example].is_impossible,
                f.start == 0 && f.end == 0
            );
        }
        // [CLS] gets 9 on impossible questions, 4 (< 5 on the span) elsewhere.
        let (s, e) = one_hot(&feats, true);
        let v2 = SquadDecode {
            version_2: true,
            ..SquadDecode::default()
        };
        let pred = squad_predictions(&examples, &feats, &s, &e, v2);
        assert_eq!(evaluate(&examples, &pred).unwrap(), (100.0, 100.0));
        // Without v2 handling every question gets a span, so the impossible ones score 0.
        let pred = squad_predictions(&examples, &feats, &s, &e, SquadDecode::default());
        let (em, _) = evaluate(&examples, &pred).unwrap();
        assert!(em < 75.0, "{em}");
    }

    #[test]
    fn too_small_windows_are_an_error() {
        let tok = word_tok();
        let ex = crate::synthetic::squad(1, 0, 0.0);
        let w = SquadWindows {
            max_len: 12,
            stride: 8,
            max_query: 8,
        };
        let e = squad_features(&ex, &tok, w).unwrap_err().to_string();
        assert!(e.contains("stride"), "{e}");
    }

    #[test]
    fn wordpiece_offsets_map_back_to_the_original_text() {
        let Some(dir) = kiln_core::paths::minilm_dir() else {
            kiln_core::paths::skip("MiniLM tokenizer (just fetch all-MiniLM-L6-v2)");
            return;
        };
        let tok = crate::TextTokenizer::from_file(&dir.join("tokenizer.json"), 128).unwrap();
        let ex = SquadExample {
            id: "z".into(),
            title: String::new(),
            context: "Café Zoë opened in 1887 in Zürich, Switzerland.".into(),
            question: "Where did Café Zoë open?".into(),
            answers: vec![("Zürich".into(), 29)],
            is_impossible: false,
        };
        let feats =
            squad_features(std::slice::from_ref(&ex), &tok, SquadWindows::default()).unwrap();
        let f = &feats[0];
        assert!(f.start > 0 && f.end >= f.start);
        let (s, e) = one_hot(&feats, false);
        let pred = squad_predictions(
            std::slice::from_ref(&ex),
            &feats,
            &s,
            &e,
            SquadDecode::default(),
        );
        assert_eq!(pred["z"], "Zürich");
    }
}
