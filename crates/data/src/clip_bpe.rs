//! CLIP's text tokenizer: the byte-level BPE that OpenAI trained for CLIP (a 49,408-token
//! vocabulary: 256 byte symbols, the same 256 ending a word (`</w>`), 48,894 merges, then
//! `<start_of_text>` = 49406 and `<end_of_text>` = 49407), reproduced from open_clip 3.3.0's
//! `SimpleTokenizer` and `tokenize()` (`open_clip/tokenizer.py`, itself copied from
//! openai/CLIP) so that a text encoder loaded from CLIP weights sees the ids it was trained on.
//!
//! The pipeline is open_clip's default `clean='lower'`: `ftfy.fix_text`, `html.unescape` twice,
//! strip, collapse whitespace, lowercase; then the pre-tokenising regex
//! (`<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
//! case-insensitive), each piece's UTF-8 bytes mapped to printable characters and merged
//! lowest-rank pair first.
//!
//! **Deviation from open_clip (ftfy).** ftfy 6.3's `fix_text` does two kinds of things. Its
//! character-level fixes change ordinary, well-formed captions and are reproduced here: HTML
//! entities with semicolons (repeated to a fixed point, and not in a line once a `<` has been
//! seen, as ftfy's `unescape_html='auto'`), C1 controls read as Windows-1252, Latin ligatures
//! (`ﬁ` → `fi`), fullwidth/halfwidth forms (`ＬＯＵＤ` → `LOUD`), curly quotes (`don’t` →
//! `don't`, which splits differently), line breaks, ANSI terminal escapes, invisible control
//! characters, and NFC. Its mojibake repair (`fix_encoding`: re-decoding text such as `cafÃ©`
//! that was decoded with the wrong codec, with `restore_byte_a0`, `replace_lossy_sequences`,
//! `decode_inconsistent_utf8`) is a statistical heuristic and is **not** reproduced: text that
//! ftfy takes for mojibake tokenizes differently (mostly text that is already broken, rarely an
//! unlucky neighbourhood such as `ß”`, which ftfy re-decodes as Windows-1252 bytes). Two smaller gaps: the entity table is HTML 4's
//! (plus `&apos;` and `&TRADE;`), so HTML5-only names such as `&checkmark;` stay as written where
//! Python decodes them; and ftfy's 1,000,000-character segment limit (lines longer than that) is
//! not applied. Characters assigned in recent Unicode versions (15 and later) can split or
//! lowercase differently, as they already do between Python versions: open_clip's result
//! depends on the Unicode tables of Python's `str.lower`, `unicodedata` and the `regex` module,
//! kiln's on Rust's `std` and `regex` crate.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use regex::Regex;

use crate::DataError;

/// The vocabulary file shipped with open_clip and openai/CLIP (gzip text: a header line, then
/// one merge `a b` per line).
pub const VOCAB_FILE: &str = "bpe_simple_vocab_16e6.txt.gz";
/// 256 bytes + 256 word-final bytes + 48,894 merges + 2 special tokens.
pub const VOCAB_SIZE: usize = 49408;
/// `<start_of_text>`.
pub const SOT: u32 = 49406;
/// `<end_of_text>`; the highest id, which is why CLIP can pool at `argmax(ids)`.
pub const EOT: u32 = 49407;
/// The context every released CLIP text encoder was trained with.
pub const CONTEXT_LENGTH: usize = 77;

const N_MERGES: usize = 49152 - 256 - 2;
const SPECIAL: [&str; 2] = ["<start_of_text>", "<end_of_text>"];
/// The word-piece cache only saves time; a cap keeps a long-running job over millions of
/// distinct captions from growing it without bound (open_clip's never shrinks).
const CACHE_CAP: usize = 1 << 18;

/// CLIP's tokenizer. Encoding is `&self` (the word cache sits behind a mutex) so one instance
/// can serve a data loader's worker threads.
pub struct ClipTokenizer {
    source: PathBuf,
    /// Vocabulary strings by id, in open_clip's order (needed by `decode`).
    tokens: Vec<String>,
    /// A byte's symbol id (0..256); the same symbol ending a word is `+ 256`.
    byte_id: [u32; 256],
    /// The inverse of `bytes_to_unicode`, for `decode`.
    byte_of_char: HashMap<char, u8>,
    /// `(left id, right id)` → `(rank, merged id)`: merging on ids rather than strings is
    /// equivalent because every vocabulary string is unique (checked on load).
    merges: HashMap<(u32, u32), (u32, u32)>,
    pattern: Regex,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.tokens.len())
            .finish()
    }
}

/// openai/CLIP's `bytes_to_unicode`: the bytes in the order they take ids 0..256, and the
/// character each stands for. Printable Latin-1 bytes keep their own character; the rest are
/// moved to U+0100.. so that no symbol is whitespace or a control character.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut bs: Vec<u32> = (0x21..=0x7e)
        .chain(0xa1..=0xac)
        .chain(0xae..=0xff)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .map(|(b, c)| (b as u8, char::from_u32(c).expect("below U+0200")))
        .collect()
}

fn tok_err(path: &Path, msg: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

impl ClipTokenizer {
    /// Loads `bpe_simple_vocab_16e6.txt.gz`. Checks what open_clip assumes silently (enough
    /// lines, two symbols per merge, no duplicate token), so a truncated or wrong file fails here
    /// instead of producing ids a CLIP checkpoint was not trained on.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::Missing {
                    path: path.to_path_buf(),
                    hint: format!(
                        "CLIP's BPE vocabulary is `{VOCAB_FILE}` from open_clip \
                         (src/open_clip/) or openai/CLIP (clip/); put it in shared/data/clip/"
                    ),
                }
            } else {
                DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut raw)
            .map_err(|e| {
                tok_err(
                    path,
                    format!("cannot gunzip ({e}); expected open_clip's {VOCAB_FILE}"),
                )
            })?;
        let text = String::from_utf8(raw)
            .map_err(|e| tok_err(path, format!("not UTF-8 after gunzip ({e})")))?;
        Self::from_merges_text(&text, path)
    }

    /// `from_file(<data_dir>/clip/bpe_simple_vocab_16e6.txt.gz)`, the shared-data layout.
    pub fn from_shared(data_dir: impl AsRef<Path>) -> Result<Self, DataError> {
        Self::from_file(data_dir.as_ref().join("clip").join(VOCAB_FILE))
    }

    fn from_merges_text(text: &str, path: &Path) -> Result<Self, DataError> {
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < N_MERGES + 1 {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: format!(
                    "{} lines after gunzip; CLIP's BPE needs a header line and {N_MERGES} merges \
                     (a {VOCAB_SIZE}-token vocabulary): use open_clip's {VOCAB_FILE}",
                    lines.len()
                ),
            });
        }
        let mut merges = Vec::with_capacity(N_MERGES);
        for (i, line) in lines[1..=N_MERGES].iter().enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [a, b] = parts[..] else {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    line: i + 2,
                    msg: format!("a merge is two symbols separated by a space, got `{line}`"),
                });
            };
            merges.push((a, b));
        }

        let table = bytes_to_unicode();
        let mut tokens: Vec<String> = table.iter().map(|&(_, c)| c.to_string()).collect();
        tokens.extend(table.iter().map(|&(_, c)| format!("{c}</w>")));
        tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        tokens.extend(SPECIAL.iter().map(|s| s.to_string()));
        let encoder: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        if encoder.len() != VOCAB_SIZE {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                msg: format!(
                    "{} distinct tokens, CLIP's vocabulary has {VOCAB_SIZE}: duplicate merges",
                    encoder.len()
                ),
            });
        }
        // A merge whose halves are not tokens can never apply (every symbol of a word is a
        // token), so leaving it out changes nothing.
        let merge_ids = merges
            .iter()
            .enumerate()
            .filter_map(|(rank, (a, b))| {
                let merged = encoder[format!("{a}{b}").as_str()];
                Some(((*encoder.get(a)?, *encoder.get(b)?), (rank as u32, merged)))
            })
            .collect();

        let mut byte_id = [0u32; 256];
        for (i, &(b, _)) in table.iter().enumerate() {
            byte_id[b as usize] = i as u32;
        }
        let pattern = Regex::new(
            r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )
        .expect("the CLIP pre-tokenizer pattern is valid");
        Ok(Self {
            source: path.to_path_buf(),
            byte_of_char: table.iter().map(|&(b, c)| (c, b)).collect(),
            tokens,
            byte_id,
            merges: merge_ids,
            pattern,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The vocabulary string of `id` (`</w>` marks a word end), for inspecting encodings.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// open_clip's `SimpleTokenizer.encode`: cleaned, pre-tokenized, BPE ids, without
    /// `<start_of_text>`/`<end_of_text>` (a literal `<start_of_text>` in the text still yields
    /// 49406, as in open_clip).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut text = clean(text);
        // Python's `regex` with IGNORECASE matches U+0345 (a combining mark that case-folds to
        // iota) with no alternative, so `findall` skips it like whitespace; Rust's case-folded
        // `\p{L}` would take it as a letter. A space gives Python's split.
        if text.contains('\u{345}') {
            text = text.replace('\u{345}', " ");
        }
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&text) {
            match m.as_str() {
                "<start_of_text>" => ids.push(SOT),
                "<end_of_text>" => ids.push(EOT),
                piece => self.bpe_into(piece, &mut ids),
            }
        }
        ids
    }

    fn bpe_into(&self, piece: &str, out: &mut Vec<u32>) {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = lock().get(piece) {
            out.extend_from_slice(ids);
            return;
        }
        // Merged outside the lock, so threads encoding new words do not wait on each other.
        let mut word: Vec<u32> = piece.bytes().map(|b| self.byte_id[b as usize]).collect();
        if let Some(last) = word.last_mut() {
            *last += 256;
        }
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|w| self.merges.get(&(w[0], w[1])).map(|&m| (m, (w[0], w[1]))))
                .min_by_key(|&((rank, _), _)| rank);
            let Some(((_, merged), (a, b))) = best else {
                break;
            };
            // Every occurrence of the pair, left to right, not overlapping: `aaa` with
            // merge `a a` gives `aa a`, as open_clip's loop does.
            let mut next = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == a && word[i + 1] == b {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(word[i]);
                    i += 1;
                }
            }
            word = next;
        }
        out.extend_from_slice(&word);
        let mut cache = lock();
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(piece.to_string(), word);
    }

    /// open_clip's `decode`: tokens joined, bytes restored (invalid UTF-8 becomes U+FFFD),
    /// every `</w>` turned into a space, so a decoded caption ends with a space and is the
    /// cleaned (lowercased) text, not the original. Ids outside the vocabulary (open_clip
    /// raises `KeyError`) decode to U+FFFD so that a model's raw output can still be shown.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            match self.tokens.get(id as usize) {
                Some(t) => bytes.extend(t.chars().map(|c| self.byte_of_char[&c])),
                None => bytes.extend_from_slice("\u{fffd}".as_bytes()),
            }
        }
        String::from_utf8_lossy(&bytes).replace("</w>", " ")
    }

    /// open_clip's `tokenize(texts, context_length)`: per text `[SOT] + encode + [EOT]`, cut to
    /// `context_length` with the last kept position overwritten by EOT (the text encoder pools
    /// there, so a truncated caption must still end in EOT), zero-padded. Row-major
    /// `[texts.len(), context_length]`, `i64` like the rest of kiln-data's batches.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], context_length: usize) -> Vec<i64> {
        assert!(
            context_length > 0,
            "CLIP tokenize: context_length must be > 0"
        );
        let mut out = vec![0i64; texts.len() * context_length];
        for (row, text) in out.chunks_mut(context_length).zip(texts) {
            let mut ids = Vec::with_capacity(context_length + 2);
            ids.push(SOT);
            ids.extend(self.encode(text.as_ref()));
            ids.push(EOT);
            if ids.len() > context_length {
                ids.truncate(context_length);
                ids[context_length - 1] = EOT;
            }
            for (o, &id) in row.iter_mut().zip(&ids) {
                *o = i64::from(id);
            }
        }
        out
    }
}

/// Where CLIP's text encoder pools a tokenized row: `argmax(ids)`, the first EOT (EOT is the
/// largest id; torch's argmax returns the first maximum, so a literal `<end_of_text>` inside
/// the text moves the pooling point there, as in CLIP). 0 for an empty row.
pub fn eot_position(row: &[i64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Text cleaning: open_clip's `whitespace_clean(basic_clean(text)).lower()`.

/// open_clip's default cleaning (`clean='lower'`), with the ftfy subset described in the
/// module documentation. Public so that a caption's cleaned form can be inspected or cached.
pub fn clean(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = html_unescape(&html_unescape(&fixed));
    // `" ".join(text.split())` then `.strip()`: split on Python's whitespace, drop empties.
    let words: Vec<&str> = unescaped
        .split(py_isspace)
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ").to_lowercase()
}

/// Python's `str.isspace`, which `split()`/`strip()` use: Unicode White_Space plus the
/// information separators U+001C..U+001F.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// ftfy 6.3 `fix_text` without `fix_encoding`: per line (ftfy's segments), each fix in ftfy's
/// order, repeated until nothing changes. Once a line contains `<` the text is taken to be
/// HTML and entity decoding stops for it and every later line, as ftfy's `'auto'` does.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    for segment in text.split_inclusive('\n') {
        if segment.contains('<') {
            unescape = false;
        }
        let mut t = segment.to_string();
        loop {
            if is_plain(&t) {
                break;
            }
            let before = t.clone();
            if unescape {
                t = ftfy_unescape_html(&t);
            }
            t = t.chars().map(c1_to_windows_1252).collect();
            t = fix_latin_ligatures(&t);
            t = fix_character_width(&t);
            t = t.chars().map(uncurl_quote).collect();
            t = t
                .replace("\r\n", "\n")
                .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
            t = terminal_escape_re().replace_all(&t, "").into_owned();
            t.retain(|c| !is_removed_control(c));
            if !t.is_ascii() {
                let mut n = tokenizers::NormalizedString::from(t.as_str());
                n.nfc();
                t = n.get().to_string();
            }
            if t == before {
                break;
            }
        }
        out.push_str(&t);
    }
    out
}

/// Text no ftfy fix can change: printable ASCII (and tab, newline, form feed) without `&`.
fn is_plain(t: &str) -> bool {
    t.bytes()
        .all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\x0c') && b != b'&')
}

fn terminal_escape_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\x1b\[((?:\d|;)*)([a-zA-Z])").expect("valid"))
}

/// Windows-1252 for bytes 0x80..0x9F (undefined ones keep their code point, as ftfy's
/// "sloppy" codec and `html.unescape` both do).
const WINDOWS_1252_C1: [u32; 32] = [
    0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039,
    0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc,
    0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

fn windows_1252_c1(c: u32) -> char {
    char::from_u32(WINDOWS_1252_C1[(c - 0x80) as usize]).expect("valid code point")
}

fn c1_to_windows_1252(c: char) -> char {
    if ('\u{80}'..='\u{9f}').contains(&c) {
        windows_1252_c1(c as u32)
    } else {
        c
    }
}

fn fix_latin_ligatures(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            'Ĳ' => out.push_str("IJ"),
            'ĳ' => out.push_str("ij"),
            'ŉ' => out.push_str("ʼn"),
            'Ǳ' => out.push_str("DZ"),
            'ǲ' => out.push_str("Dz"),
            'ǳ' => out.push_str("dz"),
            'Ǆ' => out.push_str("DŽ"),
            'ǅ' => out.push_str("Dž"),
            'ǆ' => out.push_str("dž"),
            'Ǉ' => out.push_str("LJ"),
            'ǈ' => out.push_str("Lj"),
            'ǉ' => out.push_str("lj"),
            'Ǌ' => out.push_str("NJ"),
            'ǋ' => out.push_str("Nj"),
            'ǌ' => out.push_str("nj"),
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            'ﬅ' => out.push_str("ſt"),
            'ﬆ' => out.push_str("st"),
            _ => out.push(c),
        }
    }
    out
}

/// ftfy's width map: U+3000 → space, and every U+FF01..U+FFEF that NFKC changes to its NFKC
/// form (fullwidth ASCII, halfwidth katakana and Hangul, fullwidth symbols).
fn fix_character_width(t: &str) -> String {
    if t.is_ascii() {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ffef}' => {
                let mut n = tokenizers::NormalizedString::from(c.to_string());
                n.nfkc();
                out.push_str(n.get());
            }
            _ => out.push(c),
        }
    }
    out
}

fn uncurl_quote(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// ftfy's `remove_control_chars`: C0 controls other than tab/newline/form feed/CR, DEL, the
/// deprecated Arabic format controls, interlinear annotation marks, U+FFFC and the BOM.
fn is_removed_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}'
        | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
}

// ---------------------------------------------------------------------------------------------
// HTML entities.

/// HTML 4's named entities (`name:code point`), plus `apos` and `TRADE` (the one HTML5
/// uppercase alias whose lowercase is here, so that ftfy's all-caps rule skips it as Python
/// does), plus the HTML5 legacy all-caps aliases `AMP COPY GT LT QUOT REG`.
const ENTITIES: &str = "\
AElig:c6 AMP:26 Aacute:c1 Acirc:c2 Agrave:c0 Alpha:391 Aring:c5 Atilde:c3 Auml:c4 Beta:392 \
COPY:a9 Ccedil:c7 Chi:3a7 Dagger:2021 Delta:394 ETH:d0 Eacute:c9 Ecirc:ca Egrave:c8 \
Epsilon:395 Eta:397 Euml:cb GT:3e Gamma:393 Iacute:cd Icirc:ce Igrave:cc Iota:399 Iuml:cf \
Kappa:39a LT:3c Lambda:39b Mu:39c Ntilde:d1 Nu:39d OElig:152 Oacute:d3 Ocirc:d4 Ograve:d2 \
Omega:3a9 Omicron:39f Oslash:d8 Otilde:d5 Ouml:d6 Phi:3a6 Pi:3a0 Prime:2033 Psi:3a8 QUOT:22 \
REG:ae Rho:3a1 Scaron:160 Sigma:3a3 THORN:de TRADE:2122 Tau:3a4 Theta:398 Uacute:da Ucirc:db \
Ugrave:d9 Upsilon:3a5 Uuml:dc Xi:39e Yacute:dd Yuml:178 Zeta:396 aacute:e1 acirc:e2 acute:b4 \
aelig:e6 agrave:e0 alefsym:2135 alpha:3b1 amp:26 and:2227 ang:2220 apos:27 aring:e5 \
asymp:2248 atilde:e3 auml:e4 bdquo:201e beta:3b2 brvbar:a6 bull:2022 cap:2229 ccedil:e7 \
cedil:b8 cent:a2 chi:3c7 circ:2c6 clubs:2663 cong:2245 copy:a9 crarr:21b5 cup:222a \
curren:a4 dArr:21d3 dagger:2020 darr:2193 deg:b0 delta:3b4 diams:2666 divide:f7 eacute:e9 \
ecirc:ea egrave:e8 empty:2205 emsp:2003 ensp:2002 epsilon:3b5 equiv:2261 eta:3b7 eth:f0 \
euml:eb euro:20ac exist:2203 fnof:192 forall:2200 frac12:bd frac14:bc frac34:be frasl:2044 \
gamma:3b3 ge:2265 gt:3e hArr:21d4 harr:2194 hearts:2665 hellip:2026 iacute:ed icirc:ee \
iexcl:a1 igrave:ec image:2111 infin:221e int:222b iota:3b9 iquest:bf isin:2208 iuml:ef \
kappa:3ba lArr:21d0 lambda:3bb lang:27e8 laquo:ab larr:2190 lceil:2308 ldquo:201c le:2264 \
lfloor:230a lowast:2217 loz:25ca lrm:200e lsaquo:2039 lsquo:2018 lt:3c macr:af mdash:2014 \
micro:b5 middot:b7 minus:2212 mu:3bc nabla:2207 nbsp:a0 ndash:2013 ne:2260 ni:220b not:ac \
notin:2209 nsub:2284 ntilde:f1 nu:3bd oacute:f3 ocirc:f4 oelig:153 ograve:f2 oline:203e \
omega:3c9 omicron:3bf oplus:2295 or:2228 ordf:aa ordm:ba oslash:f8 otilde:f5 otimes:2297 \
ouml:f6 para:b6 part:2202 permil:2030 perp:22a5 phi:3c6 pi:3c0 piv:3d6 plusmn:b1 pound:a3 \
prime:2032 prod:220f prop:221d psi:3c8 quot:22 rArr:21d2 radic:221a rang:27e9 raquo:bb \
rarr:2192 rceil:2309 rdquo:201d real:211c reg:ae rfloor:230b rho:3c1 rlm:200f rsaquo:203a \
rsquo:2019 sbquo:201a scaron:161 sdot:22c5 sect:a7 shy:ad sigma:3c3 sigmaf:3c2 sim:223c \
spades:2660 sub:2282 sube:2286 sum:2211 sup:2283 sup1:b9 sup2:b2 sup3:b3 supe:2287 szlig:df \
tau:3c4 there4:2234 theta:3b8 thetasym:3d1 thinsp:2009 thorn:fe tilde:2dc times:d7 \
trade:2122 uArr:21d1 uacute:fa uarr:2191 ucirc:fb ugrave:f9 uml:a8 upsih:3d2 upsilon:3c5 \
uuml:fc weierp:2118 xi:3be yacute:fd yen:a5 yuml:ff zeta:3b6 zwj:200d zwnj:200c";

/// The names HTML5 also accepts without a semicolon (`&amp`, `&eacute`): `html.unescape`
/// decodes them, and decodes the longest of them that prefixes an unknown name (`&ampx`).
const LEGACY: &str = "AElig AMP Aacute Acirc Agrave Aring Atilde Auml COPY Ccedil ETH Eacute \
Ecirc Egrave Euml GT Iacute Icirc Igrave Iuml LT Ntilde Oacute Ocirc Ograve Oslash Otilde \
Ouml QUOT REG THORN Uacute Ucirc Ugrave Uuml Yacute aacute acirc acute aelig agrave amp aring \
atilde auml brvbar ccedil cedil cent copy curren deg divide eacute ecirc egrave eth euml \
frac12 frac14 frac34 gt iacute icirc iexcl igrave iquest iuml laquo lt macr micro middot nbsp \
not ntilde oacute ocirc ograve ordf ordm oslash otilde ouml para plusmn pound quot raquo reg \
sect shy sup1 sup2 sup3 szlig thorn times uacute ucirc ugrave uml uuml yacute yen yuml";

struct EntityTables {
    named: HashMap<&'static str, char>,
    legacy: HashSet<&'static str>,
    /// ftfy's table: the named entities, plus all-caps spellings of the lowercase ones that
    /// are not entities themselves (`&EACUTE;` → `É`).
    ftfy: HashMap<String, String>,
}

fn entities() -> &'static EntityTables {
    static T: OnceLock<EntityTables> = OnceLock::new();
    T.get_or_init(|| {
        let named: HashMap<&'static str, char> = ENTITIES
            .split_whitespace()
            .map(|e| {
                let (name, hex) = e.split_once(':').expect("name:hex");
                let cp = u32::from_str_radix(hex, 16).expect("hex code point");
                (name, char::from_u32(cp).expect("valid code point"))
            })
            .collect();
        let mut ftfy: HashMap<String, String> = named
            .iter()
            .map(|(&n, &c)| (n.to_string(), c.to_string()))
            .collect();
        for (&n, &c) in &named {
            let upper = n.to_uppercase();
            if n.to_lowercase() == n && !named.contains_key(upper.as_str()) {
                ftfy.insert(upper, c.to_uppercase().collect());
            }
        }
        EntityTables {
            legacy: LEGACY.split_whitespace().collect(),
            named,
            ftfy,
        }
    })
}

/// ftfy's `unescape_html`: only `&name;` / `&#..;` forms with the semicolon (so "this&not that"
/// is left alone), numeric ones only when Python's decoder consumes the whole reference.
fn ftfy_unescape_html(t: &str) -> String {
    if !t.contains('&') {
        return t.to_string();
    }
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").expect("valid"));
    re.replace_all(t, |c: &regex::Captures| {
        let m = &c[0];
        if let Some(v) = entities().ftfy.get(&m[1..m.len() - 1]) {
            return v.clone();
        }
        if m.starts_with("&#") {
            let u = html_unescape(m);
            if !u.contains(';') {
                return u;
            }
        }
        m.to_string()
    })
    .into_owned()
}

/// Python's `html.unescape` (HTML5 rules: optional semicolons for legacy names and numeric
/// references, Windows-1252 for C1 numbers, U+FFFD for impossible code points, nothing for
/// non-characters), over the entity table above.
pub(crate) fn html_unescape(t: &str) -> String {
    if !t.contains('&') {
        return t.to_string();
    }
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0c <&#;]{1,32};?)").expect("valid")
    });
    re.replace_all(t, |c: &regex::Captures| {
        let s = &c[1];
        if let Some(num) = s.strip_prefix('#') {
            let (digits, radix) = match num.strip_prefix(['x', 'X']) {
                Some(h) => (h, 16),
                None => (num, 10),
            };
            let digits = digits.trim_end_matches(';');
            // Saturates: anything past U+10FFFF is replaced all the same.
            let n = digits.chars().fold(0u64, |acc, d| {
                (acc * radix as u64 + d.to_digit(radix).unwrap_or(0) as u64).min(u64::MAX / 32)
            });
            return numeric_reference(n);
        }
        let t = entities();
        if let Some(name) = s.strip_suffix(';') {
            if let Some(ch) = t.named.get(name) {
                return ch.to_string();
            }
        } else if t.legacy.contains(s) {
            return t.named[s].to_string();
        }
        // The longest legacy name that is a proper prefix (at least two characters).
        let cuts: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(2).collect();
        for &cut in cuts.iter().rev() {
            if t.legacy.contains(&s[..cut]) {
                return format!("{}{}", t.named[&s[..cut]], &s[cut..]);
            }
        }
        format!("&{s}")
    })
    .into_owned()
}

fn numeric_reference(n: u64) -> String {
    match n {
        0 => "\u{fffd}".into(),
        0x0d => "\r".into(),
        0x80..=0x9f => windows_1252_c1(n as u32).to_string(),
        0xd800..=0xdfff => "\u{fffd}".into(),
        n if n > 0x10ffff => "\u{fffd}".into(),
        0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f | 0xfdd0..=0xfdef => String::new(),
        n if n & 0xfffe == 0xfffe => String::new(),
        n => char::from_u32(n as u32)
            .map(String::from)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_unicode_is_a_bijection_with_printable_bytes_first() {
        let t = bytes_to_unicode();
        assert_eq!(t.len(), 256);
        assert_eq!(t[0], (b'!', '!'));
        assert_eq!(t[188], (0, '\u{100}'));
        let chars: HashSet<char> = t.iter().map(|&(_, c)| c).collect();
        assert_eq!(chars.len(), 256);
        assert!(chars.iter().all(|c| !c.is_whitespace() && !c.is_control()));
    }

    #[test]
    fn html_unescape_follows_python() {
        assert_eq!(html_unescape("a &amp; b"), "a & b");
        assert_eq!(html_unescape("&amp;amp;"), "&amp;");
        assert_eq!(html_unescape("&ampx &notin; &notit;"), "&x ∉ ¬it;");
        assert_eq!(
            html_unescape("&#39;&#x41;&#X42&#128;&#0;&#1;&#xD800;"),
            "'AB€\u{fffd}\u{fffd}"
        );
        assert_eq!(
            html_unescape("&#99999999999999999999; &bogus;"),
            "\u{fffd} &bogus;"
        );
    }

    #[test]
    fn ftfy_unescape_needs_semicolons_and_knows_all_caps() {
        assert_eq!(ftfy_unescape_html("this&not that"), "this&not that");
        assert_eq!(
            ftfy_unescape_html("P&EACUTE;REZ BUNDESSTRA&SZLIG;E &nTILDE;"),
            "PÉREZ BUNDESSTRASSE &nTILDE;"
        );
        assert_eq!(ftfy_unescape_html("&#59; &#65a;"), "&#59; &#65a;");
    }

    #[test]
    fn fix_text_subset() {
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("ﬂuﬃeﬆ “here’s”"), "fluffiest \"here's\"");
        assert_eq!(fix_text("\u{1b}[36;44mblue\u{1b}[0m\u{feff}"), "blue");
        assert_eq!(fix_text("cafe\u{301}"), "café");
        assert_eq!(fix_text("&amp;amp;amp;"), "&");
        assert_eq!(fix_text("a<b &amp;\n&amp;"), "a<b &amp;\n&amp;");
        assert_eq!(fix_text("&amp;\na<b"), "&\na<b");
    }

    #[test]
    fn eot_position_is_the_first_maximum() {
        assert_eq!(eot_position(&[49406, 320, 49407, 0]), 2);
        assert_eq!(eot_position(&[49406, 49407, 49407]), 1);
        assert_eq!(eot_position(&[]), 0);
    }
}
