//! Seeded synthetic GLUE-style tasks for the smoke profile. They have real structure (a model
//! must combine several words, handle negation, or compare two sentences), so training curves
//! and pruning results on them are meaningful, if only as a smoke test. Every result built on
//! them is labelled synthetic.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Example;

/// Which synthetic task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntheticTask {
    /// Single sentence, 2 classes: sign of the summed polarity of sentiment words, where "not"
    /// flips the next word (an SST-2 stand-in).
    Sentiment,
    /// Sentence pair, 2 classes: is sentence 2 a paraphrase of sentence 1 (synonym swaps and a
    /// local reordering) or a near-miss with changed content words (an MRPC stand-in).
    Paraphrase,
}

const FILLERS: usize = 40;
const POLAR: usize = 12;
const CONTENT: usize = 60;

impl SyntheticTask {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sentiment => "syn-sentiment",
            Self::Paraphrase => "syn-paraphrase",
        }
    }
    pub fn is_pair(self) -> bool {
        self == Self::Paraphrase
    }
}

/// Every word the generators can emit (for a word-level tokenizer).
pub fn vocabulary() -> Vec<String> {
    let mut v = vec!["not".to_string(), "very".to_string()];
    v.extend((0..FILLERS).map(|i| format!("f{i}")));
    v.extend((0..POLAR).map(|i| format!("pos{i}")));
    v.extend((0..POLAR).map(|i| format!("neg{i}")));
    v.extend((0..CONTENT).map(|i| format!("c{i}")));
    v.extend((0..CONTENT).map(|i| format!("s{i}"))); // synonyms of c{i}
    v.extend(["what", "is", "the", "?", "."].map(String::from));
    v.extend(QA_ATTRIBUTES.map(String::from));
    for a in 0..QA_ATTRIBUTES.len() {
        v.extend((0..QA_VALUES).map(|k| format!("v{a}x{k}")));
    }
    v
}

/// Attributes the synthetic reading-comprehension task asks about.
pub const QA_ATTRIBUTES: [&str; 6] = ["color", "size", "shape", "owner", "place", "era"];
/// Values per attribute (`v<attribute>x<k>`): each attribute has its own values, as colours and
/// sizes do, so a small model can learn the task in seconds.
const QA_VALUES: usize = 8;

/// A SQuAD stand-in: a context of 3-5 facts "is <value> ." among filler words, each value
/// belonging to one attribute (`v<attribute>x<k>`), and the question "what is the <attribute> ?";
/// the answer is the value of the attribute asked. To answer, a model must relate the question
/// to the one matching token of the context and point at it, a span task in miniature. With `unanswerable > 0` that share of questions asks about
/// an attribute the context lacks (SQuAD 2.0 style, `is_impossible`).
pub fn squad(n: usize, seed: u64, unanswerable: f64) -> Vec<crate::squad::SquadExample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5155_4144);
    (0..n)
        .map(|i| {
            let mut attrs: Vec<usize> = (0..QA_ATTRIBUTES.len()).collect();
            for j in (1..attrs.len()).rev() {
                attrs.swap(j, rng.random_range(0..=j));
            }
            let k = rng.random_range(3..6);
            let impossible = rng.random_bool(unanswerable.clamp(0.0, 1.0));
            let asked = if impossible {
                attrs[k]
            } else {
                attrs[rng.random_range(0..k)]
            };
            let mut words: Vec<String> = Vec::new();
            let mut answer = None;
            for &a in &attrs[..k] {
                for _ in 0..rng.random_range(0..3) {
                    words.push(format!("f{}", rng.random_range(0..FILLERS)));
                }
                let v = format!("v{a}x{}", rng.random_range(0..QA_VALUES));
                words.push("is".into());
                if a == asked {
                    let before: usize = words.iter().map(|w| w.len() + 1).sum();
                    answer = Some((v.clone(), before));
                }
                words.extend([v, ".".into()]);
            }
            crate::squad::SquadExample {
                id: format!("syn{i}"),
                title: "synthetic".into(),
                context: words.join(" "),
                question: format!("what is the {} ?", QA_ATTRIBUTES[asked]),
                answers: answer.into_iter().collect(),
                is_impossible: impossible,
            }
        })
        .collect()
}

fn sentiment(rng: &mut ChaCha8Rng) -> Example {
    loop {
        let len = rng.random_range(5..12);
        let mut words: Vec<String> = (0..len)
            .map(|_| format!("f{}", rng.random_range(0..FILLERS)))
            .collect();
        let k = rng.random_range(1..4);
        let mut score = 0i32;
        for _ in 0..k {
            let positive = rng.random_bool(0.5);
            let negated = rng.random_bool(0.3);
            let intense = rng.random_bool(0.2);
            let w = if positive {
                format!("pos{}", rng.random_range(0..POLAR))
            } else {
                format!("neg{}", rng.random_range(0..POLAR))
            };
            let mut v = if positive { 1 } else { -1 } * if intense { 2 } else { 1 };
            if negated {
                v = -v;
            }
            score += v;
            let at = rng.random_range(0..=words.len());
            let mut ins = Vec::new();
            if negated {
                ins.push("not".to_string());
            }
            if intense {
                ins.push("very".to_string());
            }
            ins.push(w);
            words.splice(at..at, ins);
        }
        if score != 0 {
            return Example {
                text_a: words.join(" "),
                text_b: None,
                label: Some(if score > 0 { 1.0 } else { 0.0 }),
            };
        }
    }
}

fn paraphrase(rng: &mut ChaCha8Rng) -> Example {
    let len = rng.random_range(6..12);
    let s1: Vec<usize> = (0..len).map(|_| rng.random_range(0..CONTENT)).collect();
    let positive = rng.random_bool(0.5);
    let mut s2: Vec<String> = s1
        .iter()
        .map(|&c| {
            if positive && rng.random_bool(0.4) {
                format!("s{c}")
            } else {
                format!("c{c}")
            }
        })
        .collect();
    if !positive {
        // Near miss: change 2-4 content words to others (or their synonyms).
        let changes = rng.random_range(2..5).min(len);
        for _ in 0..changes {
            let at = rng.random_range(0..len);
            let mut w = rng.random_range(0..CONTENT);
            while w == s1[at] {
                w = rng.random_range(0..CONTENT);
            }
            s2[at] = if rng.random_bool(0.3) {
                format!("s{w}")
            } else {
                format!("c{w}")
            };
        }
    }
    // A local reordering on both kinds, so position alone does not decide.
    let at = rng.random_range(0..len - 1);
    s2.swap(at, at + 1);
    let mut s1w: Vec<String> = s1.iter().map(|c| format!("c{c}")).collect();
    let f = rng.random_range(0..s1w.len());
    s1w.insert(f, format!("f{}", rng.random_range(0..FILLERS)));
    Example {
        text_a: s1w.join(" "),
        text_b: Some(s2.join(" ")),
        label: Some(if positive { 1.0 } else { 0.0 }),
    }
}

/// `n` examples of `task` from `seed` (same seed, same data).
pub fn generate(task: SyntheticTask, n: usize, seed: u64) -> Vec<Example> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (task as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (0..n)
        .map(|_| match task {
            SyntheticTask::Sentiment => sentiment(&mut rng),
            SyntheticTask::Paraphrase => paraphrase(&mut rng),
        })
        .collect()
}

/// Vocabulary of [`lm_corpus`].
pub fn lm_vocabulary() -> Vec<String> {
    let mut v: Vec<String> = ["(", ")", ".", "\n", "and", "the", "was", "were"]
        .map(String::from)
        .to_vec();
    for t in 0..LM_TOPICS {
        v.extend((0..LM_WORDS).map(|i| format!("t{t}w{i}")));
    }
    v.extend((0..LM_SUBJECTS).map(|i| format!("s{i}")));
    v.extend((0..LM_SUBJECTS).map(|i| format!("s{i}s")));
    v
}

const LM_TOPICS: usize = 8;
const LM_WORDS: usize = 40;
const LM_SUBJECTS: usize = 20;

/// A seeded synthetic language-modelling corpus of about `n_words` words with structure at
/// several ranges, so loss curves keep improving over many steps (a power law in steps, as real
/// text gives): each document draws a topic that sets its content words (long range), content
/// words follow a Zipf law, a plural subject (`s3s`) takes "were" and a singular one "was"
/// (agreement across a clause), and brackets open and close in nested pairs.
pub fn lm_corpus(n_words: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4c4d);
    let zipf: Vec<f64> = (1..=LM_WORDS).map(|r| 1.0 / r as f64).collect();
    let total: f64 = zipf.iter().sum();
    let mut words: Vec<String> = Vec::with_capacity(n_words + 64);
    let mut count = 0;
    let mut newlines = 0;
    while count < n_words {
        let topic = rng.random_range(0..LM_TOPICS);
        let sentences = rng.random_range(3..8);
        for _ in 0..sentences {
            let subj = rng.random_range(0..LM_SUBJECTS);
            let plural = rng.random_bool(0.5);
            words.push("the".into());
            words.push(if plural {
                format!("s{subj}s")
            } else {
                format!("s{subj}")
            });
            words.push(if plural { "were".into() } else { "was".into() });
            let mut depth = 0;
            for _ in 0..rng.random_range(3..10) {
                if depth < 2 && rng.random_bool(0.1) {
                    words.push("(".into());
                    depth += 1;
                } else if depth > 0 && rng.random_bool(0.3) {
                    words.push(")".into());
                    depth -= 1;
                }
                let mut x = rng.random_range(0.0..total);
                let mut w = 0;
                while x > zipf[w] && w + 1 < LM_WORDS {
                    x -= zipf[w];
                    w += 1;
                }
                words.push(format!("t{topic}w{w}"));
                if rng.random_bool(0.1) {
                    words.push("and".into());
                }
            }
            for _ in 0..depth {
                words.push(")".into());
            }
            words.push(".".into());
        }
        words.push("\n".into());
        newlines += 1;
        count = words.len() - newlines;
    }
    let mut text = String::new();
    for w in words {
        if w == "\n" {
            text.push('\n');
        } else {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push(' ');
            }
            text.push_str(&w);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_balanced() {
        for t in [SyntheticTask::Sentiment, SyntheticTask::Paraphrase] {
            let a = generate(t, 400, 3);
            assert_eq!(a, generate(t, 400, 3));
            assert_ne!(a, generate(t, 400, 4));
            let pos = a.iter().filter(|e| e.label == Some(1.0)).count();
            assert!((120..280).contains(&pos), "{t:?}: {pos} positives of 400");
            assert_eq!(a[0].text_b.is_some(), t.is_pair());
        }
    }

    #[test]
    fn synthetic_squad_answers_sit_at_their_offsets() {
        let ex = squad(200, 5, 0.25);
        assert_eq!(ex, squad(200, 5, 0.25));
        let v: std::collections::HashSet<String> = vocabulary().into_iter().collect();
        let mut impossible = 0;
        for e in &ex {
            for w in e.context.split(' ').chain(e.question.split(' ')) {
                assert!(v.contains(w), "{w}");
            }
            match e.answers.first() {
                Some((t, b)) => assert!(e.context[*b..].starts_with(t.as_str()), "{e:?}"),
                None => {
                    assert!(e.is_impossible);
                    impossible += 1;
                }
            }
        }
        assert!((25..80).contains(&impossible), "{impossible}");
    }

    #[test]
    fn lm_corpus_is_seeded_in_vocabulary_and_agrees() {
        let a = lm_corpus(3000, 4);
        assert_eq!(a, lm_corpus(3000, 4));
        let v: std::collections::HashSet<String> = lm_vocabulary().into_iter().collect();
        let words: Vec<&str> = a.split_whitespace().collect();
        assert!(words.len() >= 3000);
        for w in &words {
            assert!(v.contains(*w), "{w}");
        }
        for i in 0..words.len() - 1 {
            if words[i].starts_with('s')
                && words[i].len() > 1
                && words[i].as_bytes()[1].is_ascii_digit()
            {
                let want = if words[i].ends_with('s')
                    && words[i].len() > 2
                    && !words[i][1..].chars().all(|c| c.is_ascii_digit())
                {
                    "were"
                } else {
                    "was"
                };
                assert_eq!(words[i + 1], want, "{} {}", words[i], words[i + 1]);
            }
        }
    }

    #[test]
    fn words_are_in_vocabulary() {
        let v: std::collections::HashSet<String> = vocabulary().into_iter().collect();
        for t in [SyntheticTask::Sentiment, SyntheticTask::Paraphrase] {
            for e in generate(t, 50, 1) {
                for w in e
                    .text_a
                    .split(' ')
                    .chain(e.text_b.iter().flat_map(|b| b.split(' ')))
                {
                    assert!(v.contains(w), "{w}");
                }
            }
        }
    }
}
