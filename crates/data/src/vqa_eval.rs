//! The official VQA accuracy, as `vqaEval.py` (GT-Vision-Lab/VQA @ a013f00) computes it
//! (spec clip-vil.md §6.1): whitespace cleaned always; punctuation, number words, articles and
//! contractions normalised for the prediction *and* the ten answers only when the ten answers
//! are not all identical (so "Yes" scores 0 against ten "yes", as in the official code); the
//! accuracy is the mean over the ten leave-one-annotator-out subsets of `min(1, matches/3)`, so
//! three matching annotators give 0.9.
//!
//! Python's `\d` matches any Unicode decimal digit; here digits are ASCII (VQA answers are).

const PUNCT: [&str; 21] = [
    ";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
    ",", "?", "!",
];

const MANUAL: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The official contractions table (GT-Vision-Lab/VQA, BSD licence), entry for entry: exact
/// scores need exactly this table. Its capitalised keys never match after lower-casing, as in
/// the official code.
const CONTRACTIONS: [(&str, &str); 120] = [
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// Newlines and tabs to spaces, then trimmed (applied to every answer, always).
pub fn clean_whitespace(s: &str) -> String {
    s.replace(['\n', '\t'], " ").trim().to_string()
}

/// `processPunctuation`.
pub fn process_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digit_comma = chars
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == ',' && w[2].is_ascii_digit());
    let mut out = text.to_string();
    for p in PUNCT {
        if text.contains(&format!("{p} ")) || text.contains(&format!(" {p}")) || digit_comma {
            out = out.replace(p, "");
        } else {
            out = out.replace(p, " ");
        }
    }
    // periodStrip `(?!<=\d)(\.)(?!\d)`: its first group is a lookahead that never fails here,
    // so every period not followed by a digit goes.
    let c: Vec<char> = out.chars().collect();
    c.iter()
        .enumerate()
        .filter(|&(i, &ch)| ch != '.' || c.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
        .map(|(_, &ch)| ch)
        .collect()
}

/// `processDigitArticle`.
pub fn process_digit_article(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<String> = lower
        .split_whitespace()
        .map(|w| {
            MANUAL
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w.to_string(), |(_, v)| v.to_string())
        })
        .filter(|w| !ARTICLES.contains(&w.as_str()))
        .map(|w| {
            CONTRACTIONS
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w.clone(), |(_, v)| v.to_string())
        })
        .collect();
    words.join(" ")
}

/// Accuracy in [0, 1] of `prediction` against the ten human `answers`.
pub fn vqa_accuracy(prediction: &str, answers: &[String]) -> f64 {
    let mut gts: Vec<String> = answers.iter().map(|a| clean_whitespace(a)).collect();
    let mut res = clean_whitespace(prediction);
    let all_same = gts.windows(2).all(|w| w[0] == w[1]);
    if !all_same {
        gts = gts
            .iter()
            .map(|g| process_digit_article(&process_punctuation(g)))
            .collect();
        res = process_digit_article(&process_punctuation(&res));
    }
    if gts.is_empty() {
        return 0.0;
    }
    let total: f64 = (0..gts.len())
        .map(|j| {
            let matches = gts
                .iter()
                .enumerate()
                .filter(|&(l, g)| l != j && *g == res)
                .count();
            (matches as f64 / 3.0).min(1.0)
        })
        .sum();
    total / gts.len() as f64
}

/// The official rounding: `round(100·x, 2)`.
pub fn percent2(x: f64) -> f64 {
    (100.0 * x * 100.0).round() / 100.0
}
