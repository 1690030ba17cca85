//! Machine-translation BLEU, two ways, because papers report both and they are not comparable:
//!
//! - [`corpus_bleu`]: sacreBLEU 2.4.3's corpus BLEU with its defaults (13a tokenisation, mixed
//!   case, exponential smoothing, 4-grams), on detokenised text. It is the reproducible number
//!   (Post 2018, "A Call for Clarity in Reporting BLEU Scores") and carries a
//!   [`BleuScore::signature`] saying how it was computed.
//! - [`tokenized_bleu`]: what `fairseq-generate` prints as `BLEU4 = ...` (fairseq 0.12.2's
//!   `bleu.Scorer`, i.e. multi-bleu.perl without smoothing) on whitespace-tokenised text, the
//!   number most IWSLT14 de-en papers quote. It is not sacreBLEU's: on the tests' corrupted
//!   IWSLT14 sample it reads 56.64 where sacreBLEU on the detokenised text reads 55.69.
//!
//! Both reproduce the reference implementations to the last bit on the tests' corpora
//! (`tests/bleu.rs`, values from `tests/fixtures/mt_eval_expected.py`): same statistics, and
//! the score through the same floating-point operations in the same order. Exceptions, each
//! documented where it applies: sacreBLEU's add-k smoothing reports its counts with `k` added
//! (here the counts stay raw), and fairseq's C counter compares n-grams by a weak hash (here
//! [`tokenized_bleu`] compares them exactly; [`FairseqBleu::add_ids`] reproduces the hash).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

use crate::detok::py_split;
use crate::error::DataError;

/// The sacreBLEU release whose algorithm this module reproduces, and so the `version:` that
/// [`BleuScore::signature`] prints: the signature names the implementation that defines the
/// number, and for these settings kiln computes exactly what that release computes.
pub const SACREBLEU_VERSION: &str = "2.4.3";

/// sacreBLEU's default maximum n-gram order.
pub const MAX_NGRAM_ORDER: usize = 4;

/// How text is split into words before n-grams are counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tokenize {
    /// sacreBLEU's `13a`, the mteval-v13a.pl normalisation WMT uses ([`tokenize_13a`]).
    #[default]
    Mteval13a,
    /// sacreBLEU's `none`: the text is already tokenised; split on whitespace only.
    None,
}

impl Tokenize {
    /// The name in the signature (`tok:13a`).
    pub fn name(self) -> &'static str {
        match self {
            Tokenize::Mteval13a => "13a",
            Tokenize::None => "none",
        }
    }
}

/// sacreBLEU's smoothing methods (Chen & Cherry 2014): they only matter when some n-gram order
/// has no match, which at corpus level is rare but at sentence level common.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Smooth {
    /// No smoothing: a zero precision makes BLEU zero.
    None,
    /// A zero match count counts as this value (sacreBLEU's default 0.1: [`Smooth::floor`]).
    Floor(f64),
    /// This value added to matches and totals of orders 2 and up (default 1: [`Smooth::add_k`]).
    AddK(f64),
    /// mteval-v13a's: the k-th order without matches gets precision `1 / (2^k · total)`.
    #[default]
    Exp,
}

impl Smooth {
    /// `floor` with sacreBLEU's default value.
    pub fn floor() -> Self {
        Smooth::Floor(0.1)
    }

    /// `add-k` with sacreBLEU's default value.
    pub fn add_k() -> Self {
        Smooth::AddK(1.0)
    }

    fn signature(self) -> String {
        match self {
            Smooth::None => "none".into(),
            Smooth::Floor(v) => format!("floor[{v:.2}]"),
            Smooth::AddK(v) => format!("add-k[{v:.2}]"),
            Smooth::Exp => "exp".into(),
        }
    }
}

/// sacreBLEU's `BLEU(...)` arguments; `Default` is sacreBLEU's default (its `force` only
/// silences a warning and has no counterpart).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BleuConfig {
    pub lowercase: bool,
    pub tokenize: Tokenize,
    pub smooth: Smooth,
    pub max_ngram_order: usize,
    /// Average only over the orders the hypotheses have n-grams of (sentence BLEU); off for
    /// corpus BLEU, where a corpus without 4-grams scores 0.
    pub effective_order: bool,
}

impl Default for BleuConfig {
    fn default() -> Self {
        BleuConfig {
            lowercase: false,
            tokenize: Tokenize::Mteval13a,
            smooth: Smooth::Exp,
            max_ngram_order: MAX_NGRAM_ORDER,
            effective_order: false,
        }
    }
}

impl BleuConfig {
    /// sacreBLEU's `sentence_bleu` settings: the defaults with effective order.
    pub fn sentence() -> Self {
        BleuConfig {
            effective_order: true,
            ..Self::default()
        }
    }
}

/// A BLEU score with its sufficient statistics, as sacreBLEU's `BLEUScore`.
#[derive(Clone, Debug, PartialEq)]
pub struct BleuScore {
    /// BLEU in [0, 100].
    pub score: f64,
    /// Clipped n-gram matches per order (raw: sacreBLEU's add-k reports them with `k` added).
    pub counts: Vec<u64>,
    /// Hypothesis n-grams per order (raw, like `counts`).
    pub totals: Vec<u64>,
    /// Smoothed n-gram precisions per order, in percent.
    pub precisions: Vec<f64>,
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis words.
    pub sys_len: u64,
    /// Reference words (per segment, the reference length closest to the hypothesis's).
    pub ref_len: u64,
    /// References per segment.
    pub nrefs: usize,
    pub config: BleuConfig,
}

impl BleuScore {
    /// `sys_len / ref_len` (0 without reference words).
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }

    /// sacreBLEU's reproducibility signature, e.g.
    /// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3`. The version is
    /// [`SACREBLEU_VERSION`], the release whose algorithm this reproduces.
    pub fn signature(&self) -> String {
        let c = &self.config;
        format!(
            "nrefs:{}|case:{}|eff:{}|tok:{}|smooth:{}|version:{SACREBLEU_VERSION}",
            self.nrefs,
            if c.lowercase { "lc" } else { "mixed" },
            if c.effective_order { "yes" } else { "no" },
            c.tokenize.name(),
            c.smooth.signature(),
        )
    }
}

/// sacreBLEU's one-line summary:
/// `BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)`.
impl fmt::Display for BleuScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precisions: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        write!(
            f,
            "BLEU = {:.2} {} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            precisions.join("/"),
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// The mteval-v13a tokenisation as sacreBLEU's `Tokenizer13a` does it: drop `<skipped>` and
/// line-break hyphenation, unescape `&quot; &amp; &lt; &gt;` (not `&apos;`), split off every
/// ASCII symbol but `' , - .`, split `.` and `,` unless between digits, split `-` after a digit,
/// and normalise whitespace. sacreBLEU right-strips the line before calling it.
pub fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    // The padding matters: a leading `.` or `,` is then after a non-digit, a trailing one before.
    let mut padded = String::with_capacity(s.len() * 2 + 2);
    padded.push(' ');
    for c in s.chars() {
        if is_13a_symbol(c) {
            padded.push(' ');
            padded.push(c);
            padded.push(' ');
        } else {
            padded.push(c);
        }
    }
    padded.push(' ');
    let [after_non_digit, before_non_digit, dash_after_digit] = rules_13a();
    // Each rule is a single left-to-right pass whose matches consume two characters, as
    // Python's `re.sub`: in `a..b` only the first `.` is split by the first rule.
    let s = after_non_digit.replace_all(&padded, "${1} ${2} ");
    let s = before_non_digit.replace_all(&s, " ${1} ${2}");
    let s = dash_after_digit.replace_all(&s, "${1} ${2} ");
    py_split(&s).collect::<Vec<_>>().join(" ")
}

/// The symbols 13a always splits off: ASCII space to `&`, `(` to `+`, `/`, `:` to `@`, `[` to
/// `` ` ``, `{` to `~`.
fn is_13a_symbol(c: char) -> bool {
    matches!(c, ' '..='&' | '('..='+' | '/' | ':'..='@' | '['..='`' | '{'..='~')
}

fn rules_13a() -> &'static [Regex; 3] {
    static RE: OnceLock<[Regex; 3]> = OnceLock::new();
    RE.get_or_init(|| {
        [
            Regex::new(r"([^0-9])([.,])").expect("valid"),
            Regex::new(r"([.,])([^0-9])").expect("valid"),
            Regex::new(r"([0-9])(-)").expect("valid"),
        ]
    })
}

/// Corpus BLEU with sacreBLEU's defaults. `refs` holds reference *streams*, as sacreBLEU's
/// `corpus_score`: `refs[k][i]` is the k-th reference of hypothesis `i`, and every stream is as
/// long as `hyps`.
pub fn corpus_bleu<H, V, R>(hyps: &[H], refs: &[V]) -> Result<BleuScore, DataError>
where
    H: AsRef<str>,
    V: AsRef<[R]>,
    R: AsRef<str>,
{
    corpus_bleu_with(hyps, refs, &BleuConfig::default())
}

/// [`corpus_bleu`] with other settings.
pub fn corpus_bleu_with<H, V, R>(
    hyps: &[H],
    refs: &[V],
    config: &BleuConfig,
) -> Result<BleuScore, DataError>
where
    H: AsRef<str>,
    V: AsRef<[R]>,
    R: AsRef<str>,
{
    if hyps.is_empty() {
        return Err(DataError::Invalid("BLEU: no hypotheses".into()));
    }
    if refs.is_empty() {
        return Err(DataError::Invalid("BLEU: no reference stream".into()));
    }
    for (k, stream) in refs.iter().enumerate() {
        let n = stream.as_ref().len();
        if n != hyps.len() {
            return Err(DataError::Invalid(format!(
                "BLEU: {} hypotheses but reference stream {k} has {n} segments; \
                 every stream needs one reference per hypothesis",
                hyps.len()
            )));
        }
    }
    check_config(config)?;
    let mut stats = Stats::new(config.max_ngram_order);
    for (i, hyp) in hyps.iter().enumerate() {
        let seg_refs: Vec<&str> = refs.iter().map(|s| s.as_ref()[i].as_ref()).collect();
        stats.add_segment(hyp.as_ref(), &seg_refs, config);
    }
    Ok(stats.score(refs.len(), config))
}

/// Sentence BLEU as sacreBLEU's `sentence_bleu`: one hypothesis, its references, effective
/// order and exponential smoothing.
pub fn sentence_bleu<R: AsRef<str>>(hyp: &str, refs: &[R]) -> Result<BleuScore, DataError> {
    sentence_bleu_with(hyp, refs, &BleuConfig::sentence())
}

/// [`sentence_bleu`] with other settings.
pub fn sentence_bleu_with<R: AsRef<str>>(
    hyp: &str,
    refs: &[R],
    config: &BleuConfig,
) -> Result<BleuScore, DataError> {
    if refs.is_empty() {
        return Err(DataError::Invalid("sentence BLEU: no reference".into()));
    }
    check_config(config)?;
    let mut stats = Stats::new(config.max_ngram_order);
    let refs: Vec<&str> = refs.iter().map(AsRef::as_ref).collect();
    stats.add_segment(hyp, &refs, config);
    Ok(stats.score(refs.len(), config))
}

fn check_config(config: &BleuConfig) -> Result<(), DataError> {
    if config.max_ngram_order == 0 {
        return Err(DataError::Invalid(
            "BLEU: max_ngram_order must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Corpus sufficient statistics: summed over segments, then scored once.
struct Stats {
    sys_len: u64,
    ref_len: u64,
    correct: Vec<u64>,
    total: Vec<u64>,
}

impl Stats {
    fn new(order: usize) -> Self {
        Stats {
            sys_len: 0,
            ref_len: 0,
            correct: vec![0; order],
            total: vec![0; order],
        }
    }

    fn add_segment(&mut self, hyp: &str, refs: &[&str], config: &BleuConfig) {
        let order = config.max_ngram_order;
        let ref_texts: Vec<String> = refs.iter().map(|r| preprocess(r, config)).collect();
        let ref_tokens: Vec<Vec<&str>> = ref_texts.iter().map(|r| py_split(r).collect()).collect();
        // A hypothesis n-gram is clipped by its largest count in any one reference.
        let mut ref_ngrams: HashMap<&[&str], u64> = HashMap::new();
        for toks in &ref_tokens {
            for (gram, count) in ngram_counts(toks, order) {
                let best = ref_ngrams.entry(gram).or_insert(0);
                *best = (*best).max(count);
            }
        }
        let hyp_text = preprocess(hyp, config);
        let hyp_tokens: Vec<&str> = py_split(&hyp_text).collect();
        for (gram, count) in ngram_counts(&hyp_tokens, order) {
            let n = gram.len() - 1;
            self.total[n] += count;
            if let Some(&r) = ref_ngrams.get(gram) {
                self.correct[n] += count.min(r);
            }
        }
        let hyp_len = hyp_tokens.len() as u64;
        self.sys_len += hyp_len;
        self.ref_len += closest_ref_len(hyp_len, ref_tokens.iter().map(|t| t.len() as u64));
    }

    /// sacreBLEU's `compute_bleu`, operation for operation so the float result is identical.
    fn score(self, nrefs: usize, config: &BleuConfig) -> BleuScore {
        let order = config.max_ngram_order;
        let (sys_len, ref_len) = (self.sys_len, self.ref_len);
        let bp = if sys_len < ref_len {
            if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut precisions = vec![0.0; order];
        let mut score = 0.0;
        // No match of any order: 0, whatever the smoothing (sacreBLEU #141).
        if self.correct.iter().any(|&c| c > 0) {
            let mut smooth_mteval = 1.0;
            let mut eff_order = order;
            for n in 1..=order {
                let mut correct = self.correct[n - 1] as f64;
                let mut total = self.total[n - 1] as f64;
                if let Smooth::AddK(k) = config.smooth {
                    if n > 1 {
                        correct += k;
                        total += k;
                    }
                }
                if total == 0.0 {
                    break;
                }
                if config.effective_order {
                    eff_order = n;
                }
                if correct == 0.0 {
                    match config.smooth {
                        Smooth::Exp => {
                            smooth_mteval *= 2.0;
                            precisions[n - 1] = 100.0 / (smooth_mteval * total);
                        }
                        Smooth::Floor(v) => precisions[n - 1] = 100.0 * v / total,
                        Smooth::None | Smooth::AddK(_) => {}
                    }
                } else {
                    precisions[n - 1] = 100.0 * correct / total;
                }
            }
            let log_sum = precisions[..eff_order]
                .iter()
                .fold(0.0, |acc, &p| acc + floored_log(p));
            score = bp * (log_sum / eff_order as f64).exp();
        }
        BleuScore {
            score,
            counts: self.correct,
            totals: self.total,
            precisions,
            bp,
            sys_len,
            ref_len,
            nrefs,
            config: *config,
        }
    }
}

/// sacreBLEU's `my_log`: log 0 is a large negative number, so the score underflows to 0
/// instead of raising.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

fn preprocess(text: &str, config: &BleuConfig) -> String {
    let lowered;
    let text = if config.lowercase {
        lowered = text.to_lowercase();
        &lowered
    } else {
        text
    };
    let text = text.trim_end_matches(crate::detok::is_py_space);
    match config.tokenize {
        Tokenize::Mteval13a => tokenize_13a(text),
        Tokenize::None => text.to_string(),
    }
}

/// Counts of all n-grams of orders 1..=max.
fn ngram_counts<T: Eq + std::hash::Hash>(tokens: &[T], max_order: usize) -> HashMap<&[T], u64> {
    let mut counts = HashMap::new();
    for n in 1..=max_order.min(tokens.len()) {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// The reference length closest to the hypothesis length, the shorter one on a tie.
fn closest_ref_len(hyp_len: u64, ref_lens: impl Iterator<Item = u64>) -> u64 {
    let mut best: Option<(u64, u64)> = None;
    for r in ref_lens {
        let diff = hyp_len.abs_diff(r);
        best = match best {
            Some((d, l)) if diff > d || (diff == d && r >= l) => Some((d, l)),
            _ => Some((diff, r)),
        };
    }
    best.map_or(0, |(_, l)| l)
}

/// fairseq's BLEU statistics (`BleuStat`), accumulated sentence by sentence as
/// `fairseq-generate` does: whitespace tokens, 4-grams, clipped matches, one reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FairseqBleu {
    pub ref_len: u64,
    pub sys_len: u64,
    pub matches: [u64; 4],
    pub counts: [u64; 4],
}

/// fairseq's `Dictionary` special ids, which its scorer treats specially: leading `pad` and
/// trailing `eos`/`pad` are trimmed, `unk` in the reference never matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FairseqSpecials {
    pub pad: i32,
    pub eos: i32,
    pub unk: i32,
}

impl Default for FairseqSpecials {
    /// fairseq's defaults (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3).
    fn default() -> Self {
        FairseqSpecials {
            pad: 1,
            eos: 2,
            unk: 3,
        }
    }
}

/// The reference id fairseq's scorer writes over `unk`, which no hypothesis id equals.
const REF_UNK: i32 = -999;

impl FairseqBleu {
    /// Adds one sentence pair given as fairseq dictionary ids (what `bleu.Scorer.add` takes,
    /// `</s>` included), bit-exact: n-grams are compared by libbleu's 64-bit FNV hash of their
    /// bytes, with bytes sign-extended as x86-64's signed `char` does. That hash collides more
    /// than it should (`(180, 74)` and `(74, 180)` hash alike), so fairseq occasionally counts a
    /// match that is not one; 2 extra bigram matches on the first 500 lines of IWSLT14 with
    /// swapped words in the tests. Use it to reproduce fairseq's number from fairseq's ids.
    pub fn add_ids(&mut self, ref_ids: &[i32], hyp_ids: &[i32], specials: FairseqSpecials) {
        let r: Vec<i32> = ref_ids
            .iter()
            .map(|&t| if t == specials.unk { REF_UNK } else { t })
            .collect();
        let r = trim(&r, specials);
        let h = trim(hyp_ids, specials);
        self.add_trimmed(r, h, libbleu_hash);
    }

    fn add_trimmed<K: Eq + std::hash::Hash>(
        &mut self,
        r: &[i32],
        h: &[i32],
        key: impl Fn(&[i32]) -> K,
    ) {
        self.ref_len += r.len() as u64;
        self.sys_len += h.len() as u64;
        for n in 1..=4 {
            if h.len() < n {
                continue;
            }
            self.counts[n - 1] += (h.len() - n + 1) as u64;
            if r.len() < n {
                continue;
            }
            let mut hyp_grams: HashMap<K, u64> = HashMap::new();
            for g in h.windows(n) {
                *hyp_grams.entry(key(g)).or_insert(0) += 1;
            }
            for g in r.windows(n) {
                if let Some(c) = hyp_grams.get_mut(&key(g)) {
                    if *c > 0 {
                        self.matches[n - 1] += 1;
                        *c -= 1;
                    }
                }
            }
        }
    }

    /// The score and what `fairseq-generate` prints; an error when nothing was added (fairseq
    /// divides by zero there).
    pub fn result(&self) -> Result<TokenizedBleu, DataError> {
        if self.sys_len == 0 {
            return Err(DataError::Invalid(
                "tokenized BLEU: no hypothesis tokens (empty corpus)".into(),
            ));
        }
        let mut precisions = [0.0; 4];
        for n in 0..4 {
            if self.counts[n] > 0 {
                precisions[n] = self.matches[n] as f64 / self.counts[n] as f64;
            }
        }
        let log_sum = precisions.iter().fold(0.0, |acc, &p| {
            acc + if p > 0.0 { p.ln() } else { f64::NEG_INFINITY }
        });
        let bp = (1.0 - self.ref_len as f64 / self.sys_len as f64)
            .exp()
            .min(1.0);
        Ok(TokenizedBleu {
            score: bp * (log_sum / 4.0).exp() * 100.0,
            precisions,
            bp,
            matches: self.matches,
            counts: self.counts,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
        })
    }
}

/// fairseq's `bleu_trim`: leading pads off, then trailing eos/pads off, always keeping the
/// first token, so an empty sentence (just `</s>`) keeps its `</s>` and has length 1.
fn trim(ids: &[i32], s: FairseqSpecials) -> &[i32] {
    let start = ids.iter().position(|&t| t != s.pad).unwrap_or(ids.len());
    let ids = &ids[start..];
    let mut end = ids.len().saturating_sub(1);
    while end > 0 && (ids[end] == s.eos || ids[end] == s.pad) {
        end -= 1;
    }
    &ids[..ids.len().min(end + 1)]
}

/// libbleu's `bleu_hash` on a little-endian machine with signed `char`.
fn libbleu_hash(gram: &[i32]) -> u64 {
    let mut h: u64 = 14_695_981_039_346_656_037;
    for id in gram {
        for b in id.to_le_bytes() {
            h ^= b as i8 as i64 as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// fairseq's tokenized BLEU-4 with its sufficient statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenizedBleu {
    /// BLEU in [0, 100].
    pub score: f64,
    /// n-gram precisions as fractions in [0, 1] (fairseq's `precision()`).
    pub precisions: [f64; 4],
    pub bp: f64,
    pub matches: [u64; 4],
    pub counts: [u64; 4],
    pub sys_len: u64,
    pub ref_len: u64,
}

impl TokenizedBleu {
    /// The line `fairseq-generate` ends with (after `Generate test with beam=5: `):
    /// `BLEU4 = 52.86, 90.9/77.8/57.1/40.0 (BP=0.834, ratio=0.846, syslen=11, reflen=13)`.
    pub fn result_string(&self) -> String {
        let p = self.precisions.map(|p| p * 100.0);
        format!(
            "BLEU4 = {:2.2}, {:2.1}/{:2.1}/{:2.1}/{:2.1} (BP={:.3}, ratio={:.3}, syslen={}, reflen={})",
            self.score,
            p[0],
            p[1],
            p[2],
            p[3],
            self.bp,
            self.sys_len as f64 / self.ref_len as f64,
            self.sys_len,
            self.ref_len
        )
    }
}

/// fairseq-generate's `BLEU4` on whitespace-tokenised text (for IWSLT14: lowercased Moses
/// tokens after `--remove-bpe`), one reference per hypothesis. Each line goes through
/// fairseq's `encode_line`: whitespace split, `</s>` appended, and the literal tokens `<pad>`,
/// `</s>`, `<unk>` become those special ids, so an empty line counts as the one token `</s>`
/// (which matches an empty reference) and a reference `<unk>` never matches. n-grams are
/// compared exactly, so a hash collision in fairseq's C counter (see
/// [`FairseqBleu::add_ids`]) is not reproduced; everything else is. With no empty line, no
/// special token and no zero precision it equals sacreBLEU with `tokenize: none` up to rounding.
pub fn tokenized_bleu<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    refs: &[R],
) -> Result<TokenizedBleu, DataError> {
    if hyps.len() != refs.len() {
        return Err(DataError::Invalid(format!(
            "tokenized BLEU: {} hypotheses but {} references; one reference per hypothesis",
            hyps.len(),
            refs.len()
        )));
    }
    let specials = FairseqSpecials::default();
    let mut vocab: HashMap<&str, i32> = HashMap::from([
        ("<s>", 0),
        ("<pad>", specials.pad),
        ("</s>", specials.eos),
        ("<unk>", specials.unk),
    ]);
    let mut stats = FairseqBleu::default();
    for (h, r) in hyps.iter().zip(refs) {
        // The reference first, as fairseq-generate encodes the target before the hypothesis.
        let r_ids: Vec<i32> = encode_line(&mut vocab, r.as_ref(), specials)
            .into_iter()
            .map(|t| if t == specials.unk { REF_UNK } else { t })
            .collect();
        let h_ids = encode_line(&mut vocab, h.as_ref(), specials);
        stats.add_trimmed(trim(&r_ids, specials), trim(&h_ids, specials), |g| {
            g.to_vec()
        });
    }
    stats.result()
}

/// fairseq's `Dictionary.encode_line(add_if_not_exist=True)`: a new word gets the next id.
fn encode_line<'a>(
    vocab: &mut HashMap<&'a str, i32>,
    line: &'a str,
    specials: FairseqSpecials,
) -> Vec<i32> {
    let mut ids: Vec<i32> = py_split(line)
        .map(|w| {
            let next = vocab.len() as i32;
            *vocab.entry(w).or_insert(next)
        })
        .collect();
    ids.push(specials.eos);
    ids
}
