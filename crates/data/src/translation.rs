//! Text side of fairseq's machine-translation pipeline: line-aligned parallel files and
//! fairseq's `Dictionary` (`fairseq/data/dictionary.py`, fairseq 0.12.2), so that a model
//! trained here sees the ids `fairseq-preprocess` would have given it and can load or write
//! fairseq's `dict.<lang>.txt` files.
//!
//! The IWSLT14 de-en recipe (`examples/translation/prepare-iwslt14.sh`, then
//! `fairseq-preprocess --source-lang de --target-lang en` without `--joined-dictionary`) is:
//! Moses tokenisation and lowercasing, joint BPE ([`crate::bpe`]), then one dictionary per
//! language built on that language's training text with the defaults `--thresholdsrc 0`
//! (keep every token) and `--padding-factor 8`; every sentence becomes its tokens' ids followed
//! by `</s>`, a token outside the dictionary becoming `<unk>`.
//!
//! Readers are strict where fairseq would go on silently: two sides with different line
//! counts would pair sentences with the wrong translations, and an empty sentence becomes an
//! input of just `</s>` (fairseq's prepare scripts remove such pairs with Moses'
//! `clean-corpus-n.perl` before training). Both are errors naming the file and line.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::bpe::py_isspace;
use crate::DataError;

/// `<s>`: fairseq's beginning of sentence, id 0.
pub const BOS: u32 = 0;
/// `<pad>`, id 1: fairseq pads with 1, not 0, which matters for any model loading its weights.
pub const PAD: u32 = 1;
/// `</s>`, id 2: appended to every sentence, and what a decoder's generation starts from.
pub const EOS: u32 = 2;
/// `<unk>`, id 3.
pub const UNK: u32 = 3;
pub const BOS_WORD: &str = "<s>";
pub const PAD_WORD: &str = "<pad>";
pub const EOS_WORD: &str = "</s>";
pub const UNK_WORD: &str = "<unk>";
/// `fairseq-preprocess --padding-factor`: dictionary sizes a multiple of 8 keep the embedding
/// and output-projection matrices aligned for tensor cores.
pub const DEFAULT_PADDING_FACTOR: usize = 8;

const DATA_HINT: &str = "check the data folder (shared/data/iwslt14 or shared/data/multi30k, \
see MANIFEST.md sections iwslt14, iwslt14/train_samples and multi30k)";
const DICT_HINT: &str = "fairseq-preprocess writes dict.<lang>.txt into its --destdir; build one \
with Dictionary::build on the training text";
/// A gzip stream starts with these bytes; no UTF-8 text can (0x8B is a continuation byte).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

// ---------------------------------------------------------------------------------------------
// Files

/// The lines of a UTF-8 text file, gunzipped first if it is gzip (recognised by its first two
/// bytes, so `train.de.gz` and a decompressed `train.de` read alike). A final newline does not
/// start another line and a `\r` before a newline is dropped, as Python's text mode does. Empty
/// lines are kept (see [`read_parallel`] for the check). Invalid UTF-8 is an error naming the
/// line.
pub fn read_lines(path: &Path) -> Result<Vec<String>, DataError> {
    read_lines_hinted(path, DATA_HINT)
}

fn read_lines_hinted(path: &Path, hint: &str) -> Result<Vec<String>, DataError> {
    let raw = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                hint: hint.into(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    let bytes = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::Layout {
                path: path.to_path_buf(),
                msg: format!(
                    "starts like gzip but cannot be gunzipped ({e}): the file is truncated or \
                     corrupt; fetch it again ({hint})"
                ),
            })?;
        out
    } else {
        raw
    };
    let bytes = crate::textfile::strip_bom_vec(bytes);
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let mut lines = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|e| DataError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!(
                "not valid UTF-8 (byte {} of the line); fairseq reads text as UTF-8: re-encode \
                 the file (e.g. `iconv -f latin1 -t utf-8`) or drop the line from both sides",
                e.valid_up_to() + 1
            ),
        })?;
        lines.push(text.to_string());
    }
    Ok(lines)
}

/// fairseq's `tokenize_line`: `re.sub(r"\s+", " ", line).strip().split()`, i.e. the
/// non-empty runs between Unicode whitespace (Python's definition). Tokenised, BPE'd text is
/// split this way by `fairseq-preprocess`.
pub fn tokenize_line(line: &str) -> impl Iterator<Item = &str> {
    line.split(py_isspace).filter(|w| !w.is_empty())
}

fn empty_sentence(path: &Path, line: usize, what: &str) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        line,
        msg: format!(
            "empty sentence{what}: fairseq's prepare scripts drop such pairs (Moses \
             clean-corpus-n.perl keeps 1..175 tokens a side) and fairseq would train on an input \
             of just </s>; clean the corpus (remove the pair from both sides) first"
        ),
    }
}

/// A line-aligned parallel corpus (`train.de` / `train.en`, plain or `.gz`): pair `i` is line
/// `i` of each file. Errors: a missing file, the two files having different line counts, an
/// empty (or whitespace-only) sentence on either side, invalid UTF-8.
pub fn read_parallel(src: &Path, tgt: &Path) -> Result<Vec<(String, String)>, DataError> {
    let s = read_lines(src)?;
    let t = read_lines(tgt)?;
    if s.len() != t.len() {
        return Err(DataError::Layout {
            path: src.to_path_buf(),
            msg: format!(
                "{} lines, but the other side {} has {} lines; a parallel corpus is \
                 line-aligned (line i of one file translates line i of the other): check both \
                 files are the same split and neither is truncated",
                s.len(),
                tgt.display(),
                t.len()
            ),
        });
    }
    if s.is_empty() {
        return Err(DataError::Layout {
            path: src.to_path_buf(),
            msg: format!(
                "no lines (and none in {}); expected one sentence a line",
                tgt.display()
            ),
        });
    }
    for (path, lines) in [(src, &s), (tgt, &t)] {
        if let Some(i) = lines.iter().position(|l| tokenize_line(l).next().is_none()) {
            return Err(empty_sentence(path, i + 1, ""));
        }
    }
    Ok(s.into_iter().zip(t).collect())
}

/// Pairs stored one a line as `source<TAB>target` (`iwslt14/train_samples/sample.de+en`).
/// A line without exactly one tab, or with an empty side, is an error naming the line.
pub fn read_tsv_pairs(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let lines = read_lines(path)?;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        let tabs = line.matches('\t').count();
        let Some((a, b)) = line.split_once('\t').filter(|_| tabs == 1) else {
            return Err(DataError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                msg: format!(
                    "expected `source<TAB>target` (exactly one tab), found {tabs} tabs; a tab \
                     inside a sentence must be replaced by a space"
                ),
            });
        };
        for (side, text) in [("source", a), ("target", b)] {
            if tokenize_line(text).next().is_none() {
                return Err(empty_sentence(path, i + 1, &format!(" on the {side} side")));
            }
        }
        out.push((a.to_string(), b.to_string()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Dictionary

/// fairseq's `Dictionary`: `<s>`, `<pad>`, `</s>`, `<unk>` at ids 0..3, then tokens by
/// descending count. Equal counts are in code-point order of the token (fairseq sorts the
/// symbols before `Counter.most_common`, whose sort is stable), and `madeupword0000`,
/// `madeupword0001`, ... with count 0 pad the size to a multiple of the padding factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    symbols: Vec<String>,
    counts: Vec<u64>,
    indices: HashMap<String, u32>,
    nspecial: usize,
}

impl Default for Dictionary {
    fn default() -> Self {
        Self::new()
    }
}

impl Dictionary {
    /// The four special symbols only, each with count 1 (as fairseq's constructor).
    pub fn new() -> Self {
        let mut d = Self {
            symbols: Vec::new(),
            counts: Vec::new(),
            indices: HashMap::new(),
            nspecial: 0,
        };
        for w in [BOS_WORD, PAD_WORD, EOS_WORD, UNK_WORD] {
            d.add_symbol(w, 1, false);
        }
        d.nspecial = d.symbols.len();
        d
    }

    /// `add_symbol`: an existing symbol gains `n` unless `overwrite`, which appends a second
    /// entry and points the symbol at it (`#fairseq:overwrite` in a dictionary file).
    fn add_symbol(&mut self, word: &str, n: u64, overwrite: bool) -> u32 {
        if !overwrite {
            if let Some(&idx) = self.indices.get(word) {
                self.counts[idx as usize] += n;
                return idx;
            }
        }
        let idx = self.symbols.len() as u32;
        self.indices.insert(word.to_string(), idx);
        self.symbols.push(word.to_string());
        self.counts.push(n);
        idx
    }

    /// `fairseq-preprocess`'s dictionary for one side: every line split by [`tokenize_line`]
    /// and counted, plus one `</s>` per line; then `finalize(threshold, nwords=-1,
    /// padding_factor)`: tokens seen fewer than `threshold` times are dropped (0 or 1 keeps
    /// all, fairseq's default `--thresholdsrc 0`) and the size is padded to a multiple of
    /// `pad_to_multiple` (0 or 1: no padding). A literal `<unk>` or `</s>` in the text counts
    /// towards the special symbol, as in fairseq. For a joined dictionary pass both sides.
    pub fn build<I, S>(texts: I, threshold: u64, pad_to_multiple: usize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut counter: HashMap<String, u64> = HashMap::new();
        for text in texts {
            for w in tokenize_line(text.as_ref()) {
                match counter.get_mut(w) {
                    Some(c) => *c += 1,
                    None => {
                        counter.insert(w.to_string(), 1);
                    }
                }
            }
            *counter.entry(EOS_WORD.to_string()).or_insert(0) += 1;
        }
        let mut items: Vec<(String, u64)> = counter.into_iter().collect();
        items.sort();
        let mut d = Self::new();
        for (w, c) in &items {
            d.add_symbol(w, *c, false);
        }
        d.finalize(threshold, pad_to_multiple);
        d
    }

    fn finalize(&mut self, threshold: u64, padding_factor: usize) {
        let ns = self.nspecial;
        let mut rest: Vec<(String, u64)> = self.symbols[ns..]
            .iter()
            .cloned()
            .zip(self.counts[ns..].iter().copied())
            .collect();
        // Stable: equal counts keep the code-point order of the first sort.
        rest.sort();
        rest.sort_by_key(|&(_, c)| std::cmp::Reverse(c));
        let mut symbols: Vec<String> = self.symbols[..ns].to_vec();
        let mut counts: Vec<u64> = self.counts[..ns].to_vec();
        for (s, c) in rest {
            if c < threshold {
                break;
            }
            symbols.push(s);
            counts.push(c);
        }
        self.indices = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        self.symbols = symbols;
        self.counts = counts;
        if padding_factor > 1 {
            let mut i = 0;
            while !self.symbols.len().is_multiple_of(padding_factor) {
                self.add_symbol(&format!("madeupword{i:04}"), 0, false);
                i += 1;
            }
        }
    }

    /// Loads a fairseq `dict.<lang>.txt`: `<token> <count>` a line (the token is everything
    /// before the last space), optionally followed by ` #fairseq:overwrite`, after the four
    /// special symbols, which the file does not list. As in fairseq, a token listed twice (or
    /// a special symbol listed) without the overwrite flag is an error. No padding is added:
    /// a dictionary written by [`write`](Self::write) already contains its `madeupword`s.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let lines = read_lines_hinted(path, DICT_HINT)?;
        let mut d = Self::new();
        for (i, raw) in lines.iter().enumerate() {
            let bad = |msg: String| DataError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                msg,
            };
            let format_err = || {
                bad(format!(
                    "expected `<token> <count> [#fairseq:overwrite]` (fairseq's \
                     dict.<lang>.txt), got `{raw}`"
                ))
            };
            let line = raw.trim_end_matches(py_isspace);
            let Some((mut word, mut field)) = line.rsplit_once(' ') else {
                return Err(format_err());
            };
            let overwrite = field == "#fairseq:overwrite";
            if overwrite {
                let Some((w, f)) = word.rsplit_once(' ') else {
                    return Err(format_err());
                };
                (word, field) = (w, f);
            }
            let Ok(count) = field.parse::<u64>() else {
                return Err(bad(format!(
                    "count `{field}` of `{word}` is not a non-negative integer; expected \
                     `<token> <count>`"
                )));
            };
            if word.is_empty() {
                return Err(bad("empty token before the count".into()));
            }
            if d.indices.contains_key(word) && !overwrite {
                return Err(bad(format!(
                    "duplicate token `{word}` (listed earlier, or one of the special symbols \
                     <s> <pad> </s> <unk> that the file must not list); fairseq refuses \
                     duplicates unless the line ends with `#fairseq:overwrite`"
                )));
            }
            d.add_symbol(word, count, overwrite);
        }
        Ok(d)
    }

    /// Writes fairseq's `dict.<lang>.txt`: `<token> <count>` for every symbol after the
    /// specials, in id order, so that fairseq (or [`read`](Self::read)) gives back the same
    /// ids. Creates the parent folder, as fairseq does.
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let fail = |e: std::io::Error| DataError::Layout {
            path: path.to_path_buf(),
            msg: format!("cannot write the dictionary ({e}); check the folder is writable"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut out = String::new();
        for (s, c) in self.symbols[self.nspecial..]
            .iter()
            .zip(&self.counts[self.nspecial..])
        {
            out.push_str(s);
            out.push(' ');
            out.push_str(&c.to_string());
            out.push('\n');
        }
        std::fs::write(path, out).map_err(fail)
    }

    /// Number of ids, specials and padding included (the embedding table's rows).
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Never true: the special symbols are always there.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The number of special symbols (4).
    pub fn nspecial(&self) -> usize {
        self.nspecial
    }

    /// Symbols by id.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// The id of `token`, `<unk>` if it is not in the dictionary (fairseq's `index`).
    pub fn index(&self, token: &str) -> u32 {
        self.get(token).unwrap_or(UNK)
    }

    /// The id of `token`, if it is in the dictionary.
    pub fn get(&self, token: &str) -> Option<u32> {
        self.indices.get(token).copied()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.indices.contains_key(token)
    }

    /// The symbol of `id`; `<unk>` past the end, as fairseq's `__getitem__`.
    pub fn symbol(&self, id: u32) -> &str {
        self.symbols
            .get(id as usize)
            .map_or(UNK_WORD, String::as_str)
    }

    /// The training-text count of `id` (1 for the specials other than `</s>`, which counts
    /// lines; 0 for padding); `None` past the end.
    pub fn count(&self, id: u32) -> Option<u64> {
        self.counts.get(id as usize).copied()
    }

    /// fairseq's `encode_line(line, add_if_not_exist=False, append_eos)`, what
    /// `fairseq-preprocess` binarises: the ids of [`tokenize_line`]'s tokens, unknown ones as
    /// `<unk>`, then `</s>` if `append_eos`.
    pub fn encode_line(&self, line: &str, append_eos: bool) -> Vec<u32> {
        let mut ids: Vec<u32> = tokenize_line(line).map(|w| self.index(w)).collect();
        if append_eos {
            ids.push(EOS);
        }
        ids
    }

    /// [`encode_line`](Self::encode_line), but a token outside the dictionary is an error
    /// naming it, at `path:line_no` (the caller's file and 1-based line): for text that must
    /// have been prepared with this dictionary's BPE, where an `<unk>` means a mismatch.
    pub fn encode_line_strict(
        &self,
        line: &str,
        append_eos: bool,
        path: &Path,
        line_no: usize,
    ) -> Result<Vec<u32>, DataError> {
        let mut ids = Vec::new();
        for (k, w) in tokenize_line(line).enumerate() {
            let Some(id) = self.get(w) else {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    line: line_no,
                    msg: format!(
                        "token `{w}` (word {}) is not in the dictionary ({} symbols); the text \
                         was not prepared with the BPE codes this dictionary was built from: \
                         apply the same codes, or rebuild the dictionary",
                        k + 1,
                        self.len()
                    ),
                });
            };
            ids.push(id);
        }
        if append_eos {
            ids.push(EOS);
        }
        Ok(ids)
    }

    /// fairseq's `string(ids)`: symbols joined by spaces, `<s>` and `</s>` left out, and
    /// `<pad>` left out too (fairseq's callers strip padding with `utils.strip_pad` before
    /// calling `string`, which would otherwise print it). `<unk>` stays `<unk>`, and so does an
    /// id past the end. BPE is kept: pass the result to [`crate::bpe::remove_bpe`] for
    /// `--remove-bpe`.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter(|&&id| !matches!(id, BOS | PAD | EOS))
            .map(|&id| self.symbol(id))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
