//! subword-nmt's byte-pair encoding (Sennrich et al. 2016), the segmentation fairseq's
//! translation recipes use (`examples/translation/prepare-iwslt14.sh`: `learn_bpe.py -s 10000`
//! on the concatenated German and English training text, then `apply_bpe.py -c code` on every
//! split). A model trained on fairseq's prepared IWSLT14 sees exactly these subwords, so
//! [`Bpe::apply_line`] reproduces `apply_bpe.py` (subword-nmt 0.3.8) byte for byte rather than
//! approximating it: applying the shipped `code` to the tokenised valid and test text gives the
//! shipped `valid.*` / `test.*` files on every line (`tests/translation_data.rs`).
//!
//! # What is reproduced
//!
//! * **Codes files**: the `#version: 0.2` header (word-final symbols carry `</w>`, so a merge
//!   such as `e n</w>` only applies at the end of a word); a file without a header is read as
//!   version 0.1 (`</w>` a separate final symbol), as subword-nmt does. Duplicate merges keep
//!   the rank of their first occurrence.
//! * **Applying** (`apply_bpe.py` without `--vocabulary`, `--glossaries` or `--dropout`, which
//!   is what prepare-iwslt14.sh runs): words are separated by single spaces only (a tab or a
//!   no-break space is part of a word), empty words from repeated spaces are dropped, leading
//!   and trailing `\r`, `\n` and spaces of a line are kept as they were, a one-character word
//!   is never split, and the lowest-ranked pair present is merged everywhere (left to right,
//!   not overlapping) until none applies.
//! * **Learning** ([`Bpe::learn`], `learn_bpe.py` with its defaults: `--min-frequency 2`,
//!   version 0.2 codes, no `--total-symbols`): the same algorithm including its pruned pair
//!   statistics and their incremental updates, so that where those are not the exact pair
//!   counts (a symbol that two different merges produce, such as `abc` from `ab c` and from
//!   `a bc`, has its neighbouring pairs' counts updated incrementally, not recounted) the merges
//!   are still subword-nmt's. Ties
//!   in pair frequency go to the larger pair, comparing the left symbol and then the right one
//!   by code point, which is Python's `max(stats, key=lambda x: (stats[x], x))`. Checked
//!   against subword-nmt 0.3.8: the toy corpus in the tests (48 merges with `min_frequency`
//!   1, 17 with the default 2, ties and re-created symbols included) and 3,000 merges and the
//!   full run (25,582 merges, until no pair occurs twice) on the 17,600 de+en sentences of
//!   `iwslt14/train_samples` with the BPE removed are byte-identical codes files.
//!
//! # Where this differs from running the scripts
//!
//! * [`Bpe::apply_line`] takes one line. `apply_bpe.py` reading stdin also ends lines at a
//!   lone `\r` (Python's universal newlines); reading `--input FILE` it ends them at every
//!   Unicode line boundary (`\x0b`, `\x0c`, `\x1c`..`\x1e`, `\x85`, U+2028, U+2029). Here such
//!   characters stay inside their word. [`word_counts`], on the other hand, splits at those
//!   boundaries as `learn_bpe.py` does (it always reads through a `codecs` reader). None of
//!   these characters occurs in the IWSLT14 or Multi30k files.
//! * A codes file with a header and no merges is accepted (an empty model, what
//!   [`Bpe::write_codes`] writes for a corpus without repeated pairs); `apply_bpe.py` exits
//!   with "invalid line 2". A first line that starts with `#` but is not a `#version: 0.1` or
//!   `0.2` header is an error here; subword-nmt would read `#version 0.2` (no colon) as a merge.
//! * `learn_bpe.py` crashes on a corpus without any symbol pair (only one-character words);
//!   [`Bpe::learn`] returns a model with no merges.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::DataError;

/// Marks a subword that the next one continues (`apply_bpe.py --separator`, default `@@`).
pub const SEPARATOR: &str = "@@";
/// Ends the last symbol of a word in a version 0.2 codes file.
pub const END_OF_WORD: &str = "</w>";
/// `learn_bpe.py --min-frequency`: a pair seen once is noise, not a subword.
pub const DEFAULT_MIN_FREQUENCY: u64 = 2;
/// The per-word cache only saves time; the cap keeps a long job over an open-ended stream of
/// new words from growing it without bound (subword-nmt's never shrinks).
const CACHE_CAP: usize = 1 << 18;
/// What `process_line` strips and restores around a line.
const LINE_WS: [char; 3] = ['\r', '\n', ' '];

const CODES_HINT: &str = "BPE codes are written by subword-nmt's learn-bpe (fairseq's \
prepare-iwslt14.sh leaves them in iwslt14.tokenized.de-en/code; see shared/data MANIFEST.md \
section iwslt14)";

/// Which end-of-word convention a codes file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodesVersion {
    /// No header: `</w>` is a separate symbol after the last character.
    V0_1,
    /// `#version: 0.2`: `</w>` is glued to the last character, so merges may end in `</w>`.
    V0_2,
}

/// A set of BPE merges and the segmentation they define. Segmenting is `&self` (the word
/// cache sits behind a mutex) so one instance can serve a data loader's worker threads.
pub struct Bpe {
    source: Option<PathBuf>,
    version: CodesVersion,
    /// In file order, duplicates included, so that `write_codes` gives back the same file.
    merges: Vec<(String, String)>,
    /// Symbol strings by id: every symbol of a merge and every merge result.
    strings: Vec<String>,
    ids: HashMap<String, u32>,
    /// `(left, right)` → `(rank, merged)`. Merging on ids is merging on strings because a
    /// string has one id.
    ranks: HashMap<(u32, u32), (u32, u32)>,
    separator: String,
    cache: Mutex<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for Bpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bpe")
            .field("source", &self.source)
            .field("version", &self.version)
            .field("merges", &self.merges.len())
            .field("separator", &self.separator)
            .finish()
    }
}

impl Clone for Bpe {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            version: self.version,
            merges: self.merges.clone(),
            strings: self.strings.clone(),
            ids: self.ids.clone(),
            ranks: self.ranks.clone(),
            separator: self.separator.clone(),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

fn intern(strings: &mut Vec<String>, ids: &mut HashMap<String, u32>, s: &str) -> u32 {
    if let Some(&id) = ids.get(s) {
        return id;
    }
    let id = strings.len() as u32;
    strings.push(s.to_string());
    ids.insert(s.to_string(), id);
    id
}

impl Bpe {
    fn from_merges(
        version: CodesVersion,
        merges: Vec<(String, String)>,
        source: Option<PathBuf>,
    ) -> Self {
        let mut strings = Vec::new();
        let mut ids = HashMap::new();
        let mut ranks = HashMap::new();
        for (rank, (a, b)) in merges.iter().enumerate() {
            let ia = intern(&mut strings, &mut ids, a);
            let ib = intern(&mut strings, &mut ids, b);
            let m = intern(&mut strings, &mut ids, &format!("{a}{b}"));
            ranks.entry((ia, ib)).or_insert((rank as u32, m));
        }
        Self {
            source,
            version,
            merges,
            strings,
            ids,
            ranks,
            separator: SEPARATOR.to_string(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads a subword-nmt codes file (`#version: 0.2` header, then one `left right` merge a
    /// line, highest priority first). Strict where a wrong file would otherwise segment
    /// silently differently: a line that is not exactly two symbols separated by one space is an
    /// error naming the line, and so is invalid UTF-8.
    pub fn read_codes(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::Missing {
                    path: path.to_path_buf(),
                    hint: CODES_HINT.into(),
                }
            } else {
                DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let bytes = crate::textfile::strip_bom_vec(bytes);
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            DataError::Malformed {
                path: path.to_path_buf(),
                line,
                msg: format!(
                    "not valid UTF-8 (byte {at} of the file); subword-nmt codes are UTF-8 text"
                ),
            }
        })?;
        Self::parse_codes(&text, path)
    }

    fn parse_codes(text: &str, path: &Path) -> Result<Self, DataError> {
        let bad = |line: usize, msg: String| DataError::Malformed {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let first = text.split('\n').next().unwrap_or("");
        let (version, rest, offset) = if first.starts_with("#version:") {
            let word = first.split_whitespace().last().unwrap_or("");
            let mut v = word;
            while let Some(cut) = v.rfind('.') {
                if v.len() > cut + 1 && v[cut + 1..].bytes().all(|b| b == b'0') {
                    v = &v[..cut];
                } else {
                    break;
                }
            }
            let version = match v {
                "0.1" => CodesVersion::V0_1,
                "0.2" => CodesVersion::V0_2,
                _ => {
                    return Err(bad(
                        1,
                        format!(
                            "unsupported codes version `{word}`: subword-nmt's apply_bpe reads \
                             version 0.1 and 0.2 (learn_bpe writes `#version: 0.2`)"
                        ),
                    ))
                }
            };
            let rest = text.split_once('\n').map_or("", |(_, r)| r);
            (version, rest, 2)
        } else if first.starts_with('#') {
            return Err(bad(
                1,
                format!(
                    "bad header `{}`: a codes file starts with `#version: 0.2` (or has no \
                     header at all); {CODES_HINT}",
                    first.trim_end()
                ),
            ));
        } else {
            (CodesVersion::V0_1, text, 1)
        };

        let mut merges = Vec::new();
        let body = rest.trim_end_matches('\n');
        if !body.is_empty() {
            for (i, item) in body.split('\n').enumerate() {
                let parts: Vec<&str> = item.trim_matches(LINE_WS).split(' ').collect();
                let [a, b] = parts[..] else {
                    return Err(bad(
                        i + offset,
                        format!(
                            "a merge is exactly two symbols separated by one space, got `{}`; \
                             {CODES_HINT}",
                            item.trim_end_matches('\r')
                        ),
                    ));
                };
                merges.push((a.to_string(), b.to_string()));
            }
        }
        Ok(Self::from_merges(version, merges, Some(path.to_path_buf())))
    }

    /// Writes the codes in subword-nmt's format (`learn_bpe.py`'s output: the header for
    /// version 0.2, then `left right` a line), so that `apply_bpe.py -c` can read them too.
    pub fn write_codes(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        let mut out = String::new();
        if self.version == CodesVersion::V0_2 {
            out.push_str("#version: 0.2\n");
        }
        for (a, b) in &self.merges {
            out.push_str(a);
            out.push(' ');
            out.push_str(b);
            out.push('\n');
        }
        std::fs::write(path, out).map_err(|e| DataError::Layout {
            path: path.to_path_buf(),
            msg: format!("cannot write BPE codes ({e}); check the folder exists and is writable"),
        })
    }

    /// The file the codes were read from (`None` for learned codes).
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    pub fn version(&self) -> CodesVersion {
        self.version
    }

    /// The merges in priority order, as in the codes file.
    pub fn merges(&self) -> &[(String, String)] {
        &self.merges
    }

    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// `apply_bpe.py --separator`; `@@` unless changed. fairseq's `--remove-bpe` only knows
    /// `@@ `, so translation data should keep the default.
    pub fn with_separator(mut self, separator: &str) -> Self {
        self.separator = separator.to_string();
        self
    }

    /// `BPE.process_line`: the line segmented word by word, each non-final subword followed by
    /// the separator, with the line's leading and trailing `\r`/`\n`/spaces kept (so a line
    /// read with its newline comes back with it) and runs of spaces inside it collapsed.
    pub fn apply_line(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len() + line.len() / 4);
        let body = line.trim_start_matches(LINE_WS);
        out.push_str(&line[..line.len() - body.len()]);
        let mut first = true;
        for word in line.trim_matches(LINE_WS).split(' ') {
            if word.is_empty() {
                continue;
            }
            if !first {
                out.push(' ');
            }
            first = false;
            self.push_word(word, &mut out);
        }
        let trailing = line.len() - line.trim_end_matches(LINE_WS).len();
        if trailing != 0 && trailing != line.len() {
            out.push_str(&line[line.len() - trailing..]);
        }
        out
    }

    /// One word as it appears in [`apply_line`](Self::apply_line)'s output (`sub@@ word`).
    /// The word should not contain spaces: it is segmented as a whole. An empty word gives an
    /// empty string.
    pub fn apply_word(&self, word: &str) -> String {
        let mut out = String::with_capacity(word.len() + 8);
        self.push_word(word, &mut out);
        out
    }

    fn push_word(&self, word: &str, out: &mut String) {
        let pieces = self.segment_word(word);
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(p);
            if i + 1 < pieces.len() {
                out.push_str(&self.separator);
            }
        }
    }

    /// The subwords of one word without separators (`apply_bpe.encode`), cached per word.
    pub fn segment_word(&self, word: &str) -> Vec<String> {
        let mut chars = word.chars();
        match (chars.next(), chars.next()) {
            (None, _) => return Vec::new(),
            // `encode` returns a one-character word before looking at the codes or the cache.
            (Some(_), None) => return vec![word.to_string()],
            _ => {}
        }
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pieces) = lock().get(word) {
            return pieces.clone();
        }
        let pieces = self.encode(word);
        let mut cache = lock();
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(word.to_string(), pieces.clone());
        pieces
    }

    fn encode(&self, word: &str) -> Vec<String> {
        // Symbols the codes never mention cannot take part in a merge; they get ids past the
        // table so that the loop below can treat every symbol alike.
        let base = self.strings.len() as u32;
        let mut extra: Vec<String> = Vec::new();
        let mut sym = |s: &str| -> u32 {
            match self.ids.get(s) {
                Some(&id) => id,
                None => {
                    extra.push(s.to_string());
                    base + extra.len() as u32 - 1
                }
            }
        };
        let mut buf = [0u8; 4];
        let chars: Vec<char> = word.chars().collect();
        let mut syms: Vec<u32> = Vec::with_capacity(chars.len() + 1);
        match self.version {
            CodesVersion::V0_1 => {
                for c in &chars {
                    syms.push(sym(c.encode_utf8(&mut buf)));
                }
                syms.push(sym(END_OF_WORD));
            }
            CodesVersion::V0_2 => {
                let (last, init) = chars.split_last().expect("at least two characters");
                for c in init {
                    syms.push(sym(c.encode_utf8(&mut buf)));
                }
                syms.push(sym(&format!("{last}{END_OF_WORD}")));
            }
        }

        while syms.len() > 1 {
            let best = syms
                .windows(2)
                .filter_map(|w| self.ranks.get(&(w[0], w[1])).map(|&r| (r, (w[0], w[1]))))
                .min_by_key(|&((rank, _), _)| rank);
            let Some(((_, merged), (a, b))) = best else {
                break;
            };
            let mut next = Vec::with_capacity(syms.len());
            let mut i = 0;
            while i < syms.len() {
                if i + 1 < syms.len() && syms[i] == a && syms[i + 1] == b {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(syms[i]);
                    i += 1;
                }
            }
            syms = next;
        }

        let text = |id: u32| -> &str {
            if id < base {
                &self.strings[id as usize]
            } else {
                &extra[(id - base) as usize]
            }
        };
        let mut pieces: Vec<String> = syms.iter().map(|&id| text(id).to_string()).collect();
        if let Some(last) = pieces.last_mut() {
            if last == END_OF_WORD {
                pieces.pop();
            } else if let Some(stem) = last.strip_suffix(END_OF_WORD) {
                *last = stem.to_string();
            }
        }
        pieces
    }

    /// `learn_bpe.py` on whitespace-tokenised lines: [`word_counts`] then [`Bpe::learn`]. For
    /// joint BPE pass both languages' training text (fairseq's prepare-iwslt14.sh learns on
    /// `train.de` followed by `train.en`).
    pub fn learn_lines<I, S>(
        lines: I,
        num_merges: usize,
        min_frequency: u64,
    ) -> Result<Self, DataError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::learn(&word_counts(lines), num_merges, min_frequency)
    }

    /// `learn_bpe.py -s num_merges --min-frequency min_frequency` on a word-frequency table
    /// (what `--dict-input` reads): at most `num_merges` merges, stopping early when no pair
    /// occurs `min_frequency` times. Version 0.2 codes. The merges are subword-nmt's, ties and
    /// all (see the module documentation). Words must be non-empty and contain no space, `\r`
    /// or `\n` (they could not be written to a codes file); words with a zero count are
    /// ignored.
    pub fn learn(
        counts: &HashMap<String, u64>,
        num_merges: usize,
        min_frequency: u64,
    ) -> Result<Self, DataError> {
        let mut words: Vec<(&str, u64)> = Vec::with_capacity(counts.len());
        for (w, &c) in counts {
            if w.is_empty() || w.contains([' ', '\r', '\n']) {
                return Err(DataError::Invalid(format!(
                    "BPE learning: word {w:?} is empty or contains a space or line break; words \
                     are the space-separated tokens of a line (use bpe::word_counts)"
                )));
            }
            if c > 0 {
                words.push((w, c));
            }
        }
        // Any order gives the same merges (every update is a sum); sorting like learn_bpe.py
        // only makes runs reproducible.
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let merges = Learner::new(&words).run(num_merges, min_frequency as i64);
        Ok(Self::from_merges(CodesVersion::V0_2, merges, None))
    }
}

/// `learn_bpe.get_vocabulary`: how often each space-separated word occurs. Each item is split
/// further at Unicode line boundaries, as learn_bpe's `codecs` reader splits its input, then
/// stripped of `\r`, `\n` and spaces; empty words are skipped.
pub fn word_counts<I, S>(lines: I) -> HashMap<String, u64>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut counts: HashMap<String, u64> = HashMap::new();
    for line in lines {
        for piece in split_lines_keepends(line.as_ref()) {
            for word in piece.trim_matches(LINE_WS).split(' ') {
                if word.is_empty() {
                    continue;
                }
                match counts.get_mut(word) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(word.to_string(), 1);
                    }
                }
            }
        }
    }
    counts
}

/// Python's `str.splitlines(keepends=True)`.
fn split_lines_keepends(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let end = match c {
            '\r' => {
                if let Some(&(_, '\n')) = it.peek() {
                    it.next();
                    i + 2
                } else {
                    i + 1
                }
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => i + c.len_utf8(),
            _ => continue,
        };
        out.push(&s[start..end]);
        start = end;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// fairseq's `--remove-bpe` (`post_process(sentence, "@@ ")`):
/// `(sentence + " ").replace("@@ ", "").rstrip()`. A trailing `@@` (a hypothesis cut off
/// mid-word) is removed too; trailing whitespace of any kind is stripped.
pub fn remove_bpe(sentence: &str) -> String {
    let mut s = String::with_capacity(sentence.len() + 1);
    s.push_str(sentence);
    s.push(' ');
    let joined = s.replace("@@ ", "");
    joined.trim_end_matches(py_isspace).to_string()
}

/// Python's `str.isspace` (and `\s` in `re`): Unicode White_Space plus the information
/// separators U+001C..U+001F.
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

// ---------------------------------------------------------------------------------------------
// learn_bpe.py, transliterated. Its pruned statistics are not always the exact pair counts
// (see the module documentation), so they are kept as they are rather than replaced by an
// exact priority queue, which could pick a different merge where the two disagree.

type Pair = (u32, u32);

struct Learner {
    strings: Vec<String>,
    ids: HashMap<String, u32>,
    /// Per symbol id: whether the string contains (Python) whitespace; only words with such a
    /// symbol need `replace_pair`'s regex semantics spelled out (see `replace_in_word`).
    has_ws: Vec<bool>,
    vocab: Vec<(Vec<u32>, i64)>,
    stats: HashMap<Pair, i64>,
    big_stats: HashMap<Pair, i64>,
    indices: HashMap<Pair, HashMap<usize, i64>>,
}

impl Learner {
    fn new(words: &[(&str, u64)]) -> Self {
        let mut l = Self {
            strings: Vec::new(),
            ids: HashMap::new(),
            has_ws: Vec::new(),
            vocab: Vec::with_capacity(words.len()),
            stats: HashMap::new(),
            big_stats: HashMap::new(),
            indices: HashMap::new(),
        };
        let mut buf = [0u8; 4];
        for &(w, c) in words {
            let chars: Vec<char> = w.chars().collect();
            let (last, init) = chars.split_last().expect("non-empty word");
            let mut syms: Vec<u32> = init.iter().map(|c| l.id(c.encode_utf8(&mut buf))).collect();
            syms.push(l.id(&format!("{last}{END_OF_WORD}")));
            l.vocab.push((syms, c as i64));
        }
        // get_pair_statistics
        for (j, (word, freq)) in l.vocab.iter().enumerate() {
            for w in word.windows(2) {
                let p = (w[0], w[1]);
                *l.stats.entry(p).or_insert(0) += freq;
                *l.indices.entry(p).or_default().entry(j).or_insert(0) += 1;
            }
        }
        l.big_stats = l.stats.clone();
        l
    }

    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = intern(&mut self.strings, &mut self.ids, s);
        self.has_ws.push(s.chars().any(py_isspace));
        id
    }

    /// `max(stats, key=lambda x: (stats[x], x))`.
    fn most_frequent(&self) -> Option<Pair> {
        let mut best: Option<(Pair, i64)> = None;
        for (&p, &c) in &self.stats {
            let better = match best {
                None => true,
                Some((bp, bc)) => {
                    c > bc
                        || (c == bc
                            && (
                                self.strings[p.0 as usize].as_str(),
                                self.strings[p.1 as usize].as_str(),
                            ) > (
                                self.strings[bp.0 as usize].as_str(),
                                self.strings[bp.1 as usize].as_str(),
                            ))
                }
            };
            if better {
                best = Some((p, c));
            }
        }
        best.map(|(p, _)| p)
    }

    /// `stats[pair]` on Python's `defaultdict(int)`: reading a missing pair inserts a zero.
    fn stat(&mut self, p: Pair) -> i64 {
        *self.stats.entry(p).or_insert(0)
    }

    fn prune_stats(&mut self, threshold: f64) {
        let big = &mut self.big_stats;
        self.stats.retain(|&p, &mut freq| {
            if (freq as f64) < threshold {
                if freq < 0 {
                    *big.entry(p).or_insert(0) += freq;
                } else {
                    big.insert(p, freq);
                }
                false
            } else {
                true
            }
        });
    }

    fn run(mut self, num_symbols: usize, min_frequency: i64) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(&max) = self.stats.values().max() else {
            return out;
        };
        let mut threshold = max as f64 / 10.0;
        let mut most_frequent: Option<Pair> = None;
        for i in 0..num_symbols {
            if !self.stats.is_empty() {
                most_frequent = self.most_frequent();
            }
            let stale = match most_frequent {
                Some(mf) if !self.stats.is_empty() => i > 0 && (self.stat(mf) as f64) < threshold,
                _ => true,
            };
            if stale {
                self.prune_stats(threshold);
                self.stats = self.big_stats.clone();
                // Python's `max` of an empty dict raises; nothing is left to merge.
                let Some(mf) = self.most_frequent() else {
                    break;
                };
                most_frequent = Some(mf);
                threshold = (self.stat(mf) * i as i64) as f64 / (i as f64 + 10000.0);
                self.prune_stats(threshold);
            }
            let mf = most_frequent.expect("set above");
            if self.stat(mf) < min_frequency {
                break;
            }
            out.push((
                self.strings[mf.0 as usize].clone(),
                self.strings[mf.1 as usize].clone(),
            ));
            let changes = self.replace_pair(mf);
            self.update_pair_statistics(mf, &changes);
            self.stats.insert(mf, 0);
            if i % 100 == 0 {
                self.prune_stats(threshold);
            }
        }
        out
    }

    /// `replace_pair`: every word the index lists for `pair` (with a positive count) is
    /// rewritten, whether or not it still contains the pair, as subword-nmt does.
    fn replace_pair(&mut self, pair: Pair) -> Vec<(usize, Vec<u32>, Vec<u32>, i64)> {
        let merged = format!(
            "{}{}",
            self.strings[pair.0 as usize], self.strings[pair.1 as usize]
        );
        let merged = self.id(&merged);
        let mut js: Vec<usize> = self
            .indices
            .entry(pair)
            .or_default()
            .iter()
            .filter(|&(_, &f)| f >= 1)
            .map(|(&j, _)| j)
            .collect();
        js.sort_unstable();
        let mut changes = Vec::with_capacity(js.len());
        for j in js {
            let (word, freq) = self.vocab[j].clone();
            let new_word = self.replace_in_word(&word, pair, merged);
            self.vocab[j] = (new_word.clone(), freq);
            changes.push((j, new_word, word, freq));
        }
        changes
    }

    /// `re.sub(r'(?<!\S)' + re.escape(first + ' ' + second) + r'(?!\S)', first + second,
    /// ' '.join(word)).split(' ')`. When no symbol contains whitespace this is replacing each
    /// adjacent `(first, second)`, left to right, without overlap; otherwise the pattern can
    /// also match inside a symbol after a tab or no-break space, and the string is rewritten as
    /// Python rewrites it.
    fn replace_in_word(&mut self, word: &[u32], pair: Pair, merged: u32) -> Vec<u32> {
        if !word.iter().any(|&s| self.has_ws[s as usize]) {
            let mut out = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == pair.0 && word[i + 1] == pair.1 {
                    out.push(merged);
                    i += 2;
                } else {
                    out.push(word[i]);
                    i += 1;
                }
            }
            return out;
        }
        let joined = word
            .iter()
            .map(|&s| self.strings[s as usize].as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let pattern = format!(
            "{} {}",
            self.strings[pair.0 as usize], self.strings[pair.1 as usize]
        );
        let replacement = self.strings[merged as usize].clone();
        let mut result = String::with_capacity(joined.len());
        let mut copied = 0;
        let mut from = 0;
        while let Some(found) = joined[from..].find(&pattern) {
            let start = from + found;
            let end = start + pattern.len();
            let before_ok = joined[..start].chars().next_back().is_none_or(py_isspace);
            let after_ok = joined[end..].chars().next().is_none_or(py_isspace);
            if before_ok && after_ok {
                result.push_str(&joined[copied..start]);
                result.push_str(&replacement);
                copied = end;
                from = end;
            } else {
                from = start + joined[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        result.push_str(&joined[copied..]);
        result.split(' ').map(|s| self.id(s)).collect()
    }

    /// `stats[p] += freq; indices[p][j] += n`.
    fn bump(&mut self, p: Pair, j: usize, freq: i64, n: i64) {
        *self.stats.entry(p).or_insert(0) += freq;
        *self.indices.entry(p).or_default().entry(j).or_insert(0) += n;
    }

    fn update_pair_statistics(&mut self, pair: Pair, changed: &[(usize, Vec<u32>, Vec<u32>, i64)]) {
        self.stats.insert(pair, 0);
        self.indices.insert(pair, HashMap::new());
        let (first, second) = pair;
        let new_pair = self.ids[&format!(
            "{}{}",
            self.strings[first as usize], self.strings[second as usize]
        )];
        for (j, word, old_word, freq) in changed {
            let (j, freq) = (*j, *freq);
            let n = old_word.len();
            let mut i = 0;
            while let Some(k) = old_word[i.min(n)..].iter().position(|&s| s == first) {
                i += k;
                if i + 1 < n && old_word[i + 1] == second {
                    if i > 0 {
                        let prev = (old_word[i - 1], old_word[i]);
                        self.bump(prev, j, -freq, -1);
                    }
                    if i + 2 < n
                        && (old_word[i + 2] != first || i + 3 >= n || old_word[i + 3] != second)
                    {
                        let nex = (old_word[i + 1], old_word[i + 2]);
                        self.bump(nex, j, -freq, -1);
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }

            let n = word.len();
            let mut i = 0;
            while let Some(k) = word[i.min(n)..].iter().position(|&s| s == new_pair) {
                i += k;
                if i > 0 {
                    let prev = (word[i - 1], word[i]);
                    self.bump(prev, j, freq, 1);
                }
                if i + 1 < n && word[i + 1] != new_pair {
                    let nex = (word[i], word[i + 1]);
                    self.bump(nex, j, freq, 1);
                }
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_keepends_matches_python() {
        assert_eq!(
            split_lines_keepends("a b\x0cc d\u{2028}e\rf\r\ng\n"),
            vec!["a b\x0c", "c d\u{2028}", "e\r", "f\r\n", "g\n"]
        );
        assert_eq!(split_lines_keepends("x"), vec!["x"]);
        assert!(split_lines_keepends("").is_empty());
    }

    #[test]
    fn remove_bpe_is_fairseqs() {
        assert_eq!(remove_bpe("ab@@ c d@@ e"), "abc de");
        assert_eq!(remove_bpe("cut@@"), "cut");
        assert_eq!(remove_bpe("a  b \t"), "a  b");
        assert_eq!(remove_bpe(""), "");
    }

    #[test]
    fn regex_replacement_matches_inside_a_symbol_after_a_tab() {
        // Python: re.sub(r'(?<!\S)x z(?!\S)', 'xz', 'a \tx z') == 'a \txz'.
        let mut l = Learner::new(&[("a\tx", 1)]);
        let word: Vec<u32> = ["a", "\tx", "z"].iter().map(|s| l.id(s)).collect();
        let x = l.id("x");
        let z = l.id("z");
        let xz = l.id("xz");
        let out = l.replace_in_word(&word, (x, z), xz);
        let strs: Vec<&str> = out
            .iter()
            .map(|&s| l.strings[s as usize].as_str())
            .collect();
        assert_eq!(strs, vec!["a", "\txz"]);
    }

    #[test]
    fn version_header_variants() {
        let p = Path::new("codes");
        let b = Bpe::parse_codes("#version: 0.2.0\na b\n", p).unwrap();
        assert_eq!(b.version(), CodesVersion::V0_2);
        let b = Bpe::parse_codes("a b\nab c</w>\n", p).unwrap();
        assert_eq!(b.version(), CodesVersion::V0_1);
        assert_eq!(b.merges().len(), 2);
        assert_eq!(b.apply_line("abc abcc ab"), "ab@@ c ab@@ c@@ c ab");
    }
}
