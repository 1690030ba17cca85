//! VQA inputs for the CLIP-ViL reproduction (direct fine-tuning of VQA heads on CLIP grid
//! features): the `vqa2_yesno` question lists, question and answer vocabularies, images as
//! plain CHW `f32` with CLIP's normalisation, and seeded synthetic scenes. These feed the
//! mini profile (real questions and images from `shared/data/vqa2_yesno`, see its MANIFEST.md
//! section) and the seconds-long smoke profile (the synthetic scenes). As elsewhere in
//! kiln-data nothing here depends on burn: outputs are row-major `Vec<f32>` / `Vec<u32>` that
//! the model crates turn into tensors.
//!
//! # How `vqa2_yesno` differs from the official VQA v2 data
//!
//! * **Yes/no questions only**, 7,846 train / 1,952 dev / 2,022 test over 8,127 COCO val2014
//!   images (a course repository's subset, not the official train2014/val2014 split).
//! * **One answer per question** (the multiple-choice answer), not ten annotators. The official
//!   accuracy's leave-one-annotator-out mean is undefined with a single answer (the official
//!   code would score every prediction 0), so on this subset accuracy is exact match and the
//!   training target is one-hot: [`soft_scores`] returns the one-hot vector for a single answer
//!   and the official 0.3 / 0.6 / 0.9 / 1.0 soft scores only when given several answers.
//! * **Images resized twice** before they reach us: COCO → 224×224 (the source repository,
//!   aspect ratio not kept; the manifest does not say whether squashed or cropped) → 112×112 (Lanczos, JPEG quality 90, to fit `shared/data`); the
//!   experiment resizes them a third time to the CLIP input size with [`load_rgb`].
//! * **Question ids are synthesised.** The files carry `COCO_val2014_<image id>.jpg#<k>`, where
//!   `k` numbers the questions of one image *within this subset* (it is contiguous 0..n−1 per
//!   image over the three files, so it is almost surely not VQA's own index). [`VqaQuestion::question_id`]
//!   gives `image_id · 1000 + k`, the official numbering scheme, so a results file
//!   `[{"question_id", "answer"}]` can be written; the ids are not the real VQA ids, and they are
//!   **not unique**: the dev and test lists contain paraphrases ("Could this be X ?" for
//!   "Is this a X ?", "Are there any any X ?") that share the image and `k` of another question
//!   (88 ids twice in dev, 120 in test) or of a train question (811 dev and 819 test questions,
//!   41.5% and 40.5%, have the image and `k` of a train question, always with the same answer:
//!   a paraphrase of a train question on the same image; report scores on the rest too). Key
//!   results by line, not by question id.
//! * **Templated wording**: train questions start "Is this a …", "Are there any …",
//!   "Is this man/person/woman …"; dev and test add the paraphrases above and synonyms
//!   ("gentleman", "guy", "lady").

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::vqa_eval::{clean_whitespace, process_digit_article, process_punctuation, vqa_accuracy};
use crate::DataError;

/// Where the shared copy lives, for error hints.
const DATA_HINT: &str =
    "check the data folder (shared/data/vqa2_yesno, see MANIFEST.md section vqa2_yesno)";

// ------------------------------------------------------------------------------------------
// Question lists
// ------------------------------------------------------------------------------------------

/// One line of a `vaq2.0.*Images.txt` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VqaQuestion {
    /// Image file name, e.g. `COCO_val2014_000000393225.jpg`.
    pub image: String,
    /// The COCO image id (the 12 digits of the name).
    pub image_id: u64,
    /// `k` after the `#`: the question's index among this image's questions (in this subset).
    pub index_in_image: u32,
    /// The question without its answer, e.g. `Is this a creamy soup ?`.
    pub question: String,
    /// `yes` or `no`.
    pub answer: String,
    /// The list file this question came from (shared by all its questions).
    pub source: Arc<Path>,
    /// 1-based line number in `source`.
    pub line: usize,
}

impl VqaQuestion {
    /// `image_id · 1000 + k`, VQA's numbering scheme; synthesised (see the module doc: the ids
    /// are not VQA's own and repeat within the dev and test lists).
    pub fn question_id(&self) -> u64 {
        self.image_id * 1000 + u64::from(self.index_in_image)
    }

    /// `path:line`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.source.display(), self.line)
    }
}

/// Reads a yes/no question list: one question a line,
/// `COCO_val2014_<12 digits>.jpg#<k><TAB><question words> <yes|no>`. Strict: a line without a
/// tab, without `#k`, with a bad image name or `k`, an empty question, or a last word other
/// than `yes`/`no` is an error naming the file and line. A trailing `\r` is tolerated.
pub fn read_yesno(path: &Path) -> Result<Vec<VqaQuestion>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                hint: DATA_HINT.into(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    // A BOM would glue an invisible U+FEFF to the first image name (crate::textfile).
    let text = crate::textfile::strip_bom_string(text);
    let source: Arc<Path> = Arc::from(path);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let bad = |msg: String| DataError::Malformed {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.trim().is_empty() {
            return Err(bad(
                "empty line; every line must be `<image>.jpg#<k><TAB><question> <yes|no>`".into(),
            ));
        }
        let Some((key, qa)) = l.split_once('\t') else {
            return Err(bad(format!(
                "no tab between `<image>#<k>` and the question in `{l}`"
            )));
        };
        if qa.contains('\t') {
            return Err(bad(format!("more than one tab in `{l}`")));
        }
        let Some((image, k)) = key.split_once('#') else {
            return Err(bad(format!("no `#<k>` after the image name in `{key}`")));
        };
        let image_id = parse_image_id(image).map_err(|m| bad(format!("`{image}`: {m}")))?;
        let index_in_image: u32 = k
            .parse()
            .ok()
            .filter(|&k| k < 1000)
            .ok_or_else(|| bad(format!("`#{k}`: the question index must be 0..999")))?;
        let qa = qa.trim();
        let Some((question, answer)) = qa.rsplit_once(char::is_whitespace) else {
            return Err(bad(format!(
                "empty question (only `{qa}`); expected `<question> <yes|no>`"
            )));
        };
        let question = question.trim();
        if question.is_empty() {
            return Err(bad(format!("empty question before the answer `{answer}`")));
        }
        if answer != "yes" && answer != "no" {
            return Err(bad(format!(
                "answer `{answer}` (the last word) is not `yes` or `no`"
            )));
        }
        out.push(VqaQuestion {
            image: image.to_string(),
            image_id,
            index_in_image,
            question: question.to_string(),
            answer: answer.to_string(),
            source: source.clone(),
            line,
        });
    }
    if out.is_empty() {
        return Err(DataError::Layout {
            path: path.to_path_buf(),
            msg: format!("no questions; {DATA_HINT}"),
        });
    }
    Ok(out)
}

/// `COCO_<split>_<12 digits>.jpg` → the image id.
fn parse_image_id(name: &str) -> Result<u64, String> {
    let stem = name
        .strip_suffix(".jpg")
        .ok_or("the image name must end in .jpg")?;
    let digits = stem
        .rsplit_once('_')
        .map(|(_, d)| d)
        .ok_or("the image name must be COCO_<split>_<12 digits>.jpg")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the image name must end in _<12 digits>.jpg".into());
    }
    digits.parse().map_err(|e| format!("image id: {e}"))
}

// ------------------------------------------------------------------------------------------
// Question vocabulary
// ------------------------------------------------------------------------------------------

/// MCAN's maximum question length (`MAX_TOKEN = 14`).
pub const DEFAULT_MAX_LEN: usize = 14;
/// Keep every train word.
pub const DEFAULT_MIN_COUNT: usize = 1;

/// MCAN's question preprocessing (`proc_ques`): lower-case, delete `. , ' ! ? " ( ) * # : ;`,
/// turn `-` and `/` into spaces, split on whitespace. So `Is this a man's tie ?` gives
/// `[is, this, a, mans, tie]`.
pub fn tokenize_question(q: &str) -> Vec<String> {
    let cleaned: String = q
        .to_lowercase()
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '.' | ',' | '\'' | '!' | '?' | '"' | '(' | ')' | '*' | '#' | ':' | ';'
            )
        })
        .map(|c| if c == '-' || c == '/' { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().map(str::to_string).collect()
}

/// Word vocabulary for the question encoder: `<pad>` = 0, `<unk>` = 1, then the words of the
/// questions it was built from in order of first appearance.
#[derive(Debug, Clone)]
pub struct Vocab {
    words: Vec<String>,
    index: HashMap<String, u32>,
}

/// Questions as fixed-length id rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedQuestions {
    /// `[n, max_len]` row-major, padded with [`Vocab::PAD`].
    pub ids: Vec<u32>,
    /// Number of real tokens per question, `min(tokens, max_len)`.
    pub lengths: Vec<u32>,
    pub max_len: usize,
}

impl Vocab {
    pub const PAD: u32 = 0;
    pub const UNK: u32 = 1;

    /// Words seen at least `min_count` times (0 counts as 1) in `questions` (build it from the
    /// train split only).
    pub fn build<'a>(questions: impl IntoIterator<Item = &'a str>, min_count: usize) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut order = Vec::new();
        for q in questions {
            for w in tokenize_question(q) {
                let c = counts.entry(w.clone()).or_insert(0);
                if *c == 0 {
                    order.push(w);
                }
                *c += 1;
            }
        }
        let mut words = vec!["<pad>".to_string(), "<unk>".to_string()];
        words.extend(order.into_iter().filter(|w| counts[w] >= min_count.max(1)));
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Self { words, index }
    }

    /// Size including `<pad>` and `<unk>`.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> u32 {
        self.index.get(word).copied().unwrap_or(Self::UNK)
    }

    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// `max_len` ids (truncated, then padded with `<pad>`) and the number of real tokens.
    /// Unknown words become `<unk>`.
    pub fn encode(&self, question: &str, max_len: usize) -> (Vec<u32>, usize) {
        let mut ids: Vec<u32> = tokenize_question(question)
            .iter()
            .take(max_len)
            .map(|w| self.id(w))
            .collect();
        let len = ids.len();
        ids.resize(max_len, Self::PAD);
        (ids, len)
    }

    /// [`encode`](Self::encode) for many questions into one `[n, max_len]` block.
    pub fn encode_all<'a>(
        &self,
        questions: impl IntoIterator<Item = &'a str>,
        max_len: usize,
    ) -> EncodedQuestions {
        let mut ids = Vec::new();
        let mut lengths = Vec::new();
        for q in questions {
            let (row, len) = self.encode(q, max_len);
            ids.extend(row);
            lengths.push(len as u32);
        }
        EncodedQuestions {
            ids,
            lengths,
            max_len,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Answers
// ------------------------------------------------------------------------------------------

/// Answer classes: answers seen at least `min_count` times, most frequent first (ties
/// alphabetical), whitespace-cleaned as the official evaluation cleans them. For the
/// `vqa2_yesno` train split this is `[no, yes]` (4,059 vs 3,787).
#[derive(Debug, Clone)]
pub struct AnswerVocab {
    answers: Vec<String>,
    index: HashMap<String, u32>,
    /// Classes by their normalised form (punctuation, number words, articles, contractions),
    /// to find every class an answer list can give credit to.
    by_norm: HashMap<String, Vec<u32>>,
}

impl AnswerVocab {
    pub fn build<'a>(answers: impl IntoIterator<Item = &'a str>, min_count: usize) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for a in answers {
            *counts.entry(clean_whitespace(a)).or_insert(0) += 1;
        }
        let mut kept: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= min_count.max(1))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let answers: Vec<String> = kept.into_iter().map(|(a, _)| a).collect();
        let index = answers
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), i as u32))
            .collect();
        let mut by_norm: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, a) in answers.iter().enumerate() {
            by_norm
                .entry(normalise_answer(a))
                .or_default()
                .push(i as u32);
        }
        Self {
            answers,
            index,
            by_norm,
        }
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The class of an answer (exact match after whitespace cleaning).
    pub fn label(&self, answer: &str) -> Option<u32> {
        self.index.get(&clean_whitespace(answer)).copied()
    }

    pub fn answer(&self, label: u32) -> Option<&str> {
        self.answers.get(label as usize).map(String::as_str)
    }

    pub fn answers(&self) -> &[String] {
        &self.answers
    }
}

fn normalise_answer(a: &str) -> String {
    process_digit_article(&process_punctuation(&clean_whitespace(a)))
}

/// Training target over `vocab` for one question's human `answers`:
///
/// * several answers (VQA v2 has ten): each class gets its official accuracy
///   [`vqa_accuracy`]`(class, answers)`, i.e. 0.3 / 0.6 / 0.9 / 1.0 for 1 / 2 / 3 / ≥4 matching
///   annotators of ten (the leave-one-annotator-out mean), normalisation included;
/// * one answer (the `vqa2_yesno` subset): one-hot on the exact (whitespace-cleaned) match,
///   since with a single annotator the leave-one-out mean is undefined (the official code gives
///   0 for everything) and accuracy on such data is exact match;
/// * no answer, or answers outside the vocabulary: all zeros.
pub fn soft_scores(answers: &[String], vocab: &AnswerVocab) -> Vec<f32> {
    let mut out = vec![0.0f32; vocab.len()];
    match answers {
        [] => {}
        [one] => {
            if let Some(l) = vocab.label(one) {
                out[l as usize] = 1.0;
            }
        }
        _ => {
            // Only classes equal to an answer (exactly, or after normalisation when the
            // answers differ) can score; vqa_accuracy decides how much.
            let mut candidates: HashSet<u32> = HashSet::new();
            for a in answers {
                candidates.extend(vocab.label(a));
                if let Some(ls) = vocab.by_norm.get(&normalise_answer(a)) {
                    candidates.extend(ls.iter().copied());
                }
            }
            for l in candidates {
                out[l as usize] = vqa_accuracy(&vocab.answers[l as usize], answers) as f32;
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Images
// ------------------------------------------------------------------------------------------

// The constants as CLIP publishes them (more digits than an f32 holds).
/// CLIP's per-channel mean (RGB, on [0, 1] pixels).
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's per-channel standard deviation.
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// An RGB image, channel-major (`[3, height, width]`), values in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRgb {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// Decodes a JPEG or PNG (format sniffed from the bytes) to RGB/255 in CHW order. With
/// `size = Some((h, w))` the image is resized **exactly** to h×w, ignoring the aspect ratio
/// (what CLIP-ViL's direct-VQA pipeline does, unlike CLIP's own shorter-side resize + centre
/// crop), with a **bicubic** filter (Catmull-Rom, a = −0.5, as PIL's `BICUBIC`; the filter is
/// widened when shrinking, as PIL does), computed in `f32` on [0, 1] values and clamped to
/// [0, 1] (PIL would round to 8 bits). Grey or alpha images become RGB.
///
/// Strict: a truncated file (a JPEG whose marker structure does not reach its end-of-image
/// marker, a PNG without its `IEND` chunk) is an error naming the file, although the `image`
/// crate alone would decode it with the missing rows grey.
pub fn load_rgb(path: &Path, size: Option<(usize, usize)>) -> Result<ImageRgb, DataError> {
    let img = decode(path, || None)?;
    Ok(to_chw(img, size))
}

/// Reads and decodes one image, strictly: the whole file is read, checked to be complete (see
/// [`check_complete`]) and only then decoded, so a file cut short is an error naming it.
fn decode(
    path: &Path,
    referenced_by: impl FnOnce() -> Option<String>,
) -> Result<image::DynamicImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            match referenced_by() {
                Some(r) => DataError::MissingImage {
                    path: path.to_path_buf(),
                    referenced_by: r,
                },
                None => DataError::Missing {
                    path: path.to_path_buf(),
                    hint: DATA_HINT.into(),
                },
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    check_complete(&bytes).map_err(|msg| DataError::Image {
        path: path.to_path_buf(),
        msg,
    })?;
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes.as_slice()))
        .with_guessed_format()
        .map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    reader.decode().map_err(|e| DataError::Image {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Checks that an image file is whole before it is decoded.
///
/// **Why:** the `image` crate's JPEG decoder (zune-jpeg, which `image` runs in non-strict
/// mode) is lenient about truncation: a JPEG cut to half its size, or missing its last 200
/// bytes, decodes without error, the missing rows filled with grey, which silently changes
/// the features and the results. zune-jpeg's strict mode is not reachable through `image`, and
/// it would also reject harmless quirks (extra bytes between segments) that every other
/// decoder accepts.
///
/// **What is checked (the choice):** the container structure, not the pixels.
/// * **JPEG** (`FF D8`): the marker segments are walked by their lengths (so an `FF D9` inside
///   an EXIF thumbnail or other APPn segment is skipped, not mistaken for the end), the
///   entropy-coded data after each start-of-scan is skipped up to the next marker (`FF 00`
///   stuffing, `RSTn` and `FF` fill bytes are not markers), and the walk must reach the
///   end-of-image marker `FF D9`. A file that ends first, or a segment whose length runs past
///   the end of the file, is truncated. Bytes after `FF D9` are allowed (some cameras append
///   data there); a file whose only defect is a missing `FF D9` is rejected too (it was cut,
///   even if no pixel is lost).
/// * **PNG** (the 8-byte signature): the chunks are walked by their lengths and the `IEND`
///   chunk must be reached before the end of the file (the `png` decoder itself checks CRCs and
///   the zlib stream).
/// * Anything else is left to the decoder, which fails on formats it does not know.
///
/// Corruption that keeps the structure intact (flipped bits inside the compressed data) cannot
/// be detected without a checksum, which JPEG does not have; it decodes to different pixels.
fn check_complete(bytes: &[u8]) -> Result<(), String> {
    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_complete(bytes)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        png_complete(bytes, PNG_SIGNATURE.len())
    } else {
        Ok(())
    }
}

fn jpeg_complete(b: &[u8]) -> Result<(), String> {
    let n = b.len();
    let cut = |what: String| {
        Err(format!(
            "truncated JPEG ({n} bytes): {what} before the end-of-image marker FF D9; the file \
             was cut short (an interrupted download or copy)"
        ))
    };
    let mut i = 2; // after SOI
    let mut in_scan = false;
    loop {
        if in_scan {
            // Entropy-coded data: runs to the next byte pair FF xx that is a marker.
            loop {
                if i + 1 >= n {
                    return cut("the compressed image data runs to the end of the file".into());
                }
                if b[i] == 0xFF {
                    match b[i + 1] {
                        0x00 | 0xD0..=0xD7 => i += 2,
                        0xFF => i += 1,
                        _ => break,
                    }
                } else {
                    i += 1;
                }
            }
            in_scan = false;
        }
        // Between segments: skip stray bytes (decoders tolerate them), then FF fill bytes.
        while i < n && b[i] != 0xFF {
            i += 1;
        }
        while i < n && b[i] == 0xFF {
            i += 1;
        }
        if i >= n {
            return cut(format!(
                "the file ends at byte {n} where a marker was expected"
            ));
        }
        let marker = b[i];
        let at = i - 1;
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            // Standalone markers: no length field.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        if i + 2 > n {
            return cut(format!(
                "the length of segment FF {marker:02X} at byte {at} is cut off"
            ));
        }
        let len = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
        if len < 2 {
            return Err(format!(
                "corrupt JPEG: segment FF {marker:02X} at byte {at} has length {len} (at least 2)"
            ));
        }
        if i + len > n {
            return cut(format!(
                "segment FF {marker:02X} at byte {at} needs {len} bytes but the file ends at byte \
                 {n}"
            ));
        }
        i += len;
        if marker == 0xDA {
            in_scan = true;
        }
    }
}

fn png_complete(b: &[u8], start: usize) -> Result<(), String> {
    let n = b.len();
    let mut i = start;
    loop {
        if i + 8 > n {
            return Err(format!(
                "truncated PNG ({n} bytes): the file ends at byte {n} inside a chunk header, \
                 before the IEND chunk; the file was cut short (an interrupted download or copy)"
            ));
        }
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let kind = &b[i + 4..i + 8];
        let end = (i + 12).saturating_add(len);
        if end > n {
            return Err(format!(
                "truncated PNG ({n} bytes): chunk `{}` at byte {i} needs {} bytes but the file \
                 ends at byte {n}, before the IEND chunk; the file was cut short",
                String::from_utf8_lossy(kind),
                len.saturating_add(12)
            ));
        }
        if kind == b"IEND" {
            return Ok(());
        }
        i = end;
    }
}

fn to_chw(img: image::DynamicImage, size: Option<(usize, usize)>) -> ImageRgb {
    let dims = (img.height() as usize, img.width() as usize);
    let (h, w) = size.unwrap_or(dims);
    let mut data = vec![0.0f32; 3 * h * w];
    let plane = h * w;
    if (h, w) == dims {
        // Exactly RGB/255.
        for (p, px) in img.into_rgb8().as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + p] = f32::from(px[c]) / 255.0;
            }
        }
    } else {
        let rgb = image::imageops::resize(
            &img.into_rgb32f(),
            w as u32,
            h as u32,
            image::imageops::FilterType::CatmullRom,
        );
        for (p, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + p] = px[c].clamp(0.0, 1.0);
            }
        }
    }
    ImageRgb {
        height: h,
        width: w,
        data,
    }
}

/// CLIP's normalisation `(x − mean) / std` per channel, in place, on one CHW image or a batch
/// of them (`data.len()` a multiple of `3·h·w`).
///
/// # Panics
/// If `chw.0 != 3` or `data.len()` is not a multiple of `3·h·w`.
pub fn clip_normalize(data: &mut [f32], chw: (usize, usize, usize)) {
    let (c, h, w) = chw;
    assert_eq!(c, 3, "clip_normalize: CLIP images have 3 channels, got {c}");
    let plane = h * w;
    assert!(
        plane > 0 && data.len().is_multiple_of(3 * plane),
        "clip_normalize: {} values are not a whole number of 3×{h}×{w} images",
        data.len()
    );
    for img in data.chunks_exact_mut(3 * plane) {
        for (ch, vals) in img.chunks_exact_mut(plane).enumerate() {
            let (m, s) = (CLIP_MEAN[ch], CLIP_STD[ch]);
            for v in vals {
                *v = (*v - m) / s;
            }
        }
    }
}

/// Distinct images decoded once, stacked as `[n, 3, height, width]`.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// File names in load order (first appearance among the questions).
    pub names: Vec<String>,
    /// Name → row in `pixels`.
    pub index: HashMap<String, usize>,
    /// `[n, 3, height, width]` row-major, RGB in [0, 1] (not yet CLIP-normalised).
    pub pixels: Vec<f32>,
    pub height: usize,
    pub width: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The `i`-th image, `3·height·width` values.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = 3 * self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The image row of every question, in order.
    pub fn rows_for(&self, questions: &[VqaQuestion]) -> Result<Vec<usize>, DataError> {
        questions
            .iter()
            .map(|q| {
                self.get(&q.image).ok_or_else(|| {
                    DataError::Invalid(format!(
                        "{}: image {} is not in this image set; load the images of every split \
                         you index",
                        q.location(),
                        q.image
                    ))
                })
            })
            .collect()
    }
}

/// Progress callback: `(images done, images in all)`.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Decodes every distinct image the `questions` reference (from `dir`) once, in order of first
/// reference, single-threaded, resizing as [`load_rgb`] does. Without `size` every image must
/// have the first one's size. A missing file is an error naming the file and the first
/// question line that references it; an undecodable or truncated one (checked as in
/// [`load_rgb`]) names the file.
///
/// Memory: `n·3·h·w` floats, 1.2 GB for all 8,127 `vqa2_yesno` images at 112×112 (4.9 GB at
/// 224×224). Time (release, one busy core): 2–4 s for the 8,127 at 112×112, ~18 s resized to
/// 224×224 (the bicubic resize dominates; resize once and keep the set).
pub fn load_split_images(
    dir: &Path,
    questions: &[VqaQuestion],
    size: Option<(usize, usize)>,
    progress: Option<Progress<'_>>,
) -> Result<ImageSet, DataError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut wanted: Vec<(&str, usize)> = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        if !seen.contains_key(q.image.as_str()) {
            seen.insert(&q.image, wanted.len());
            wanted.push((&q.image, i));
        }
    }
    load_inner(dir, &wanted, size, progress, |i| questions[i].location())
}

/// [`load_split_images`] for bare file names (duplicates are loaded once); a missing file's
/// error has no question line to name.
pub fn load_images(
    dir: &Path,
    names: &[&str],
    size: Option<(usize, usize)>,
    progress: Option<Progress<'_>>,
) -> Result<ImageSet, DataError> {
    let mut seen = HashSet::new();
    let wanted: Vec<(&str, usize)> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| seen.insert(**n))
        .map(|(i, n)| (*n, i))
        .collect();
    load_inner(dir, &wanted, size, progress, |i| {
        format!("file name #{i} of the list passed to load_images")
    })
}

fn load_inner(
    dir: &Path,
    wanted: &[(&str, usize)],
    size: Option<(usize, usize)>,
    mut progress: Option<Progress<'_>>,
    referrer: impl Fn(usize) -> String,
) -> Result<ImageSet, DataError> {
    let total = wanted.len();
    let mut pixels = Vec::new();
    let mut names = Vec::with_capacity(total);
    let mut index = HashMap::with_capacity(total);
    let mut hw: Option<(usize, usize)> = size;
    for (done, &(name, first_ref)) in wanted.iter().enumerate() {
        let path: PathBuf = dir.join(name);
        let img = to_chw(decode(&path, || Some(referrer(first_ref)))?, size);
        match hw {
            None => {
                hw = Some((img.height, img.width));
                pixels.reserve_exact(total * img.data.len());
            }
            Some((h, w)) if (h, w) != (img.height, img.width) => {
                return Err(DataError::Layout {
                    path,
                    msg: format!(
                        "image is {}×{} but the earlier ones are {h}×{w}; pass a size to resize \
                         them all",
                        img.height, img.width
                    ),
                });
            }
            Some(_) => {
                if pixels.is_empty() {
                    pixels.reserve_exact(total * img.data.len());
                }
            }
        }
        pixels.extend_from_slice(&img.data);
        index.insert(name.to_string(), names.len());
        names.push(name.to_string());
        if let Some(p) = progress.as_mut() {
            p(done + 1, total);
        }
    }
    let (height, width) = hw.unwrap_or((0, 0));
    Ok(ImageSet {
        names,
        index,
        pixels,
        height,
        width,
    })
}

// ------------------------------------------------------------------------------------------
// Synthetic scenes
// ------------------------------------------------------------------------------------------

/// Colours of the synthetic shapes (pure, so a test can find them by exact pixel value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SceneColour {
    Red,
    Green,
    Blue,
    Yellow,
}

/// Shapes of the synthetic scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SceneShape {
    Square,
    Circle,
    /// Isosceles, apex up, base as wide as it is tall.
    Triangle,
}

impl SceneColour {
    pub const ALL: [SceneColour; 4] = [Self::Red, Self::Green, Self::Blue, Self::Yellow];

    pub fn name(self) -> &'static str {
        match self {
            Self::Red => "red",
            Self::Green => "green",
            Self::Blue => "blue",
            Self::Yellow => "yellow",
        }
    }

    pub fn rgb(self) -> [f32; 3] {
        match self {
            Self::Red => [1.0, 0.0, 0.0],
            Self::Green => [0.0, 1.0, 0.0],
            Self::Blue => [0.0, 0.0, 1.0],
            Self::Yellow => [1.0, 1.0, 0.0],
        }
    }
}

impl SceneShape {
    pub const ALL: [SceneShape; 3] = [Self::Square, Self::Circle, Self::Triangle];

    pub fn name(self) -> &'static str {
        match self {
            Self::Square => "square",
            Self::Circle => "circle",
            Self::Triangle => "triangle",
        }
    }
}

/// Background values of the synthetic scenes: grey or black.
pub const SCENE_BACKGROUNDS: [f32; 2] = [0.5, 0.0];

/// One synthetic question (one per image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneQuestion {
    /// Row of the image in the returned `[n, 3, size, size]` block.
    pub image: usize,
    /// `is there a <colour> <shape> ?`
    pub question: String,
    /// `yes` or `no`.
    pub answer: String,
    pub colour: SceneColour,
    pub shape: SceneShape,
}

/// `n` seeded scenes for the smoke profile, `[n, 3, size, size]` in [0, 1], and one templated
/// question each. A scene is a grey or black background with 1–3 shapes (square / circle /
/// triangle, in red / green / blue / yellow) in distinct cells of a 2×2 grid (so they never
/// touch), each 1/2 to nearly the full cell wide. Exactly ⌊n/2⌋ answers are `yes` (shuffled):
/// a yes question asks about one of the drawn shapes, a no question about a colour–shape pair
/// that is absent, chosen uniformly, so every pair is about as likely under both answers and
/// the question alone is worth ~50%. Deterministic given `seed`.
///
/// # Panics
/// If `size < 32` (shapes would be too small to tell apart).
pub fn synthetic_scenes(n: usize, size: usize, seed: u64) -> (Vec<f32>, Vec<SceneQuestion>) {
    assert!(size >= 32, "synthetic_scenes: size {size} < 32");
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5651_4153_4345_4e45);
    let mut yes: Vec<bool> = (0..n).map(|i| i < n / 2).collect();
    yes.shuffle(&mut rng);
    let cell = size / 2;
    let plane = size * size;
    let mut pixels = vec![0.0f32; n * 3 * plane];
    let mut questions = Vec::with_capacity(n);
    for (i, &is_yes) in yes.iter().enumerate() {
        let img = &mut pixels[i * 3 * plane..(i + 1) * 3 * plane];
        let bg = SCENE_BACKGROUNDS[rng.random_range(0..SCENE_BACKGROUNDS.len())];
        img.fill(bg);
        let mut cells = [0usize, 1, 2, 3];
        cells.shuffle(&mut rng);
        let k = rng.random_range(1..=3);
        let mut present = Vec::with_capacity(k);
        for &c in &cells[..k] {
            let colour = SceneColour::ALL[rng.random_range(0..4)];
            let shape = SceneShape::ALL[rng.random_range(0..3)];
            let s = rng.random_range(cell / 2..=cell - 2);
            let x0 = (c % 2) * cell + 1 + rng.random_range(0..=cell - 2 - s);
            let y0 = (c / 2) * cell + 1 + rng.random_range(0..=cell - 2 - s);
            draw_shape(img, size, shape, colour.rgb(), x0, y0, s);
            present.push((colour, shape));
        }
        let (colour, shape) = if is_yes {
            present[rng.random_range(0..present.len())]
        } else {
            let absent: Vec<(SceneColour, SceneShape)> = SceneColour::ALL
                .iter()
                .flat_map(|&c| SceneShape::ALL.iter().map(move |&s| (c, s)))
                .filter(|p| !present.contains(p))
                .collect();
            absent[rng.random_range(0..absent.len())]
        };
        questions.push(SceneQuestion {
            image: i,
            question: format!("is there a {} {} ?", colour.name(), shape.name()),
            answer: if is_yes { "yes" } else { "no" }.to_string(),
            colour,
            shape,
        });
    }
    (pixels, questions)
}

/// Fills the pixels whose centres fall inside the shape with bounding box `(x0, y0, s, s)`.
fn draw_shape(
    img: &mut [f32],
    size: usize,
    shape: SceneShape,
    rgb: [f32; 3],
    x0: usize,
    y0: usize,
    s: usize,
) {
    let plane = size * size;
    let sf = s as f32;
    let (cx, cy) = (x0 as f32 + sf / 2.0, y0 as f32 + sf / 2.0);
    for y in y0..y0 + s {
        for x in x0..x0 + s {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let inside = match shape {
                SceneShape::Square => true,
                SceneShape::Circle => (px - cx).powi(2) + (py - cy).powi(2) <= (sf / 2.0).powi(2),
                SceneShape::Triangle => (px - cx).abs() <= (py - y0 as f32) / 2.0,
            };
            if inside {
                for c in 0..3 {
                    img[c * plane + y * size + x] = rgb[c];
                }
            }
        }
    }
}
