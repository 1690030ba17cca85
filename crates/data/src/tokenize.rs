//! Tokenization through the `tokenizers` crate, from a `tokenizer.json` (offline).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{DataError, Encoded};

/// A token's byte span `(start, end)` in the text it came from.
pub type Span = (usize, usize);

/// A BERT-style tokenizer: `[CLS] a [SEP] (b [SEP])`, token types 0/1, truncation to
/// `max_len` (longest-first, as HF's default for pairs), no padding (batches pad themselves).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without truncation, for span tasks that window long texts themselves.
    plain: Tokenizer,
    pub pad_id: u32,
    pub max_len: usize,
    pub source: Option<PathBuf>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("source", &self.source)
            .field("max_len", &self.max_len)
            .finish()
    }
}

fn tok_err(path: &Path, msg: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`. Any padding/truncation stored in the file (all-MiniLM-L6-v2's pads
    /// and truncates to 128) is replaced by kiln's: no padding, truncation to `max_len`.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, DataError> {
        if !path.exists() {
            return Err(DataError::Missing {
                path: path.to_path_buf(),
                hint: "the model directory needs a tokenizer.json (HF fast-tokenizer format)"
                    .into(),
            });
        }
        let inner = Tokenizer::from_file(path).map_err(|e| tok_err(path, e))?;
        // BERT WordPiece pads with [PAD], RoBERTa/GPT-2 BPE vocabularies with <pad>.
        let pad_id = inner
            .token_to_id("[PAD]")
            .or_else(|| inner.token_to_id("<pad>"))
            .unwrap_or(0);
        Self::configure(inner, pad_id, max_len, Some(path.to_path_buf()))
    }

    fn configure(
        mut inner: Tokenizer,
        pad_id: u32,
        max_len: usize,
        source: Option<PathBuf>,
    ) -> Result<Self, DataError> {
        let p = source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built-in>"));
        inner.with_padding(None);
        let mut plain = inner.clone();
        plain.with_truncation(None).map_err(|e| tok_err(&p, e))?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| tok_err(&p, e))?;
        Ok(Self {
            inner,
            plain,
            pad_id,
            max_len,
            source,
        })
    }

    /// A whitespace word-level tokenizer over `words` (ids: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP],
    /// then the words), used by the synthetic tasks so the smoke profile needs no files.
    pub fn word_level(words: &[String], max_len: usize) -> Result<Self, DataError> {
        let p = PathBuf::from("<word-level>");
        let mut vocab: HashMap<String, u32> = HashMap::new();
        for (i, s) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
            vocab.insert(s.to_string(), i as u32);
        }
        for w in words {
            let n = vocab.len() as u32;
            vocab.entry(w.clone()).or_insert(n);
        }
        let model = WordLevel::builder()
            .vocab(vocab.into_iter().collect())
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| tok_err(&p, e))?;
        let post = TemplateProcessing::builder()
            .try_single("[CLS] $A [SEP]")
            .map_err(|e| tok_err(&p, e))?
            .try_pair("[CLS] $A [SEP] $B:1 [SEP]:1")
            .map_err(|e| tok_err(&p, e))?
            .special_tokens(vec![("[CLS]", 2), ("[SEP]", 3)])
            .build()
            .map_err(|e| tok_err(&p, e))?;
        let mut inner = Tokenizer::new(model);
        inner.with_pre_tokenizer(Some(WhitespaceSplit));
        inner.with_post_processor(Some(post));
        Self::configure(inner, 0, max_len, None)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encodes one sentence or a pair, with special tokens.
    pub fn encode(&self, a: &str, b: Option<&str>) -> Result<Encoded, DataError> {
        let p = self
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built-in>"));
        let enc = match b {
            Some(b) => self.inner.encode((a, b), true),
            None => self.inner.encode(a, true),
        }
        .map_err(|e| tok_err(&p, e))?;
        Ok(Encoded {
            ids: enc.get_ids().iter().map(|&x| x as i64).collect(),
            type_ids: enc.get_type_ids().iter().map(|&x| x as i64).collect(),
        })
    }

    /// Token ids of `text` with the byte span each token covers in `text`, without special
    /// tokens or truncation (SQuAD windows long contexts itself and maps answers back to text).
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<i64>, Vec<Span>), DataError> {
        let p = self
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built-in>"));
        let enc = self.plain.encode(text, false).map_err(|e| tok_err(&p, e))?;
        Ok((
            enc.get_ids().iter().map(|&x| x as i64).collect(),
            enc.get_offsets().to_vec(),
        ))
    }

    /// The id of a (special) token, e.g. `[CLS]`.
    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(|x| x as i64)
    }

    /// sha256 (hex) of the tokenizer as [`Self::encode_with_offsets`] uses it (its serialised
    /// form, without truncation): equal fingerprints give equal ids, so caches of token ids key
    /// on it.
    pub fn fingerprint(&self) -> Result<String, DataError> {
        let p = self
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built-in>"));
        let json = self.plain.to_string(false).map_err(|e| tok_err(&p, e))?;
        Ok(crate::corpus::sha256_hex(json.as_bytes()))
    }

    /// Writes the tokenizer as `tokenizer.json` (so saved models carry their tokenizer).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        self.inner.save(path, false).map_err(|e| tok_err(path, e))
    }
}

#[cfg(test)]
mod gpt2_tests {
    use super::*;

    #[test]
    fn gpt2_bpe_matches_the_reference_ids() {
        let Some(dir) = kiln_core::paths::shared_data() else {
            kiln_core::paths::skip("../shared/data (GPT-2 tokenizer)");
            return;
        };
        let path = dir.join("tokenizers/gpt2/tokenizer.json");
        let tok = TextTokenizer::from_file(&path, 1024).unwrap();
        let (ids, offsets) = tok
            .encode_with_offsets("Hello world, it's a test.")
            .unwrap();
        assert_eq!(ids, vec![15496, 995, 11, 340, 338, 257, 1332, 13]);
        assert_eq!(offsets[1], (5, 11), "' world' keeps its leading space");
        assert_eq!(tok.vocab_size(), 50257);
    }
}
