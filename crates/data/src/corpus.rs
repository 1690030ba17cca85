//! Token corpora for language modelling: plain text files -> token ids -> a flat little-endian
//! `uint16` cache file (the staged-training code's `train.bin` format, which it memory-maps),
//! cut into fixed-length blocks. kiln reads the cache into memory instead of mapping it: the
//! workspace forbids `unsafe`, and the corpora kiln runs on CPU are a few MB. A JSON sidecar records what the cache was built from, so a stale or
//! truncated cache is detected instead of silently read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{DataError, TextTokenizer};

/// What a cache holds (written next to it as `<cache>.json`). A cache is reused only when
/// what it was built from has the same content: the sources' bytes (`source_sha256`), the
/// tokenizer ([`TextTokenizer::fingerprint`]) and kiln's tokenisation rules (`builder`); names,
/// sizes and modification times decide nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheInfo {
    pub sources: Vec<String>,
    pub source_bytes: u64,
    /// sha256 of each source file, in order (absent in caches written before kiln keyed them).
    #[serde(default)]
    pub source_sha256: Vec<String>,
    /// [`TextTokenizer::fingerprint`] of the tokenizer that produced the ids.
    #[serde(default)]
    pub tokenizer_sha256: String,
    /// [`BUILDER`] when the cache was written.
    #[serde(default)]
    pub builder: u32,
    pub tokens: usize,
    pub vocab_size: usize,
}

/// Version of kiln's text-to-ids rules (reading, BOM handling, line-wise tokenisation, id
/// width): a cache built under other rules is rebuilt. 2: content-keyed caches, BOM dropped.
pub const BUILDER: u32 = 2;

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `uint16` token cache, loaded.
pub struct TokenCorpus {
    ids: Vec<u16>,
    pub info: CacheInfo,
    pub path: PathBuf,
}

impl std::fmt::Debug for TokenCorpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCorpus")
            .field("path", &self.path)
            .field("tokens", &self.info.tokens)
            .finish()
    }
}

fn sidecar(cache: &Path) -> PathBuf {
    let mut s = cache.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Reads a text file, naming the file and the byte offset when it is not UTF-8. A leading
/// byte-order mark is dropped ([`crate::textfile`]).
pub fn read_utf8(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = crate::textfile::strip_bom_vec(bytes);
    String::from_utf8(bytes).map_err(|e| DataError::Layout {
        path: path.to_path_buf(),
        msg: format!(
            "not UTF-8 text (invalid byte at offset {}); convert it to UTF-8 first",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Tokenizes `sources` (concatenated without separators, as the reference does with C4
/// documents) into a `uint16` cache at `cache`, unless the cache there was built from sources
/// with the same content (sha256 of each file, in order), by the same tokenizer
/// ([`TextTokenizer::fingerprint`]) under the same rules ([`BUILDER`]). Hashing reads every
/// source once per call, which is cheap beside tokenising it.
pub fn build_token_cache(
    sources: &[PathBuf],
    tok: &TextTokenizer,
    cache: &Path,
) -> Result<TokenCorpus, DataError> {
    let source_bytes: u64 = sources
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| DataError::io(p, e))
        })
        .sum::<Result<u64, _>>()?;
    let want_sources: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
    let source_sha256 = sources
        .iter()
        .map(|p| kiln_core::sha256_file(p).map_err(|e| DataError::Invalid(e.to_string())))
        .collect::<Result<Vec<String>, _>>()?;
    let tokenizer_sha256 = tok.fingerprint()?;
    if let Ok(c) = open_token_cache(cache) {
        if c.info.source_sha256 == source_sha256
            && c.info.tokenizer_sha256 == tokenizer_sha256
            && c.info.builder == BUILDER
            && c.info.vocab_size == tok.vocab_size()
        {
            return Ok(c);
        }
    }
    if tok.vocab_size() >= u16::MAX as usize {
        return Err(DataError::Invalid(format!(
            "a {}-token vocabulary does not fit a uint16 cache",
            tok.vocab_size()
        )));
    }
    let mut ids: Vec<u16> = Vec::new();
    for p in sources {
        let text = read_utf8(p)?;
        // Tokenize line by line (keeping the newline) so memory stays bounded on large files.
        for line in text.split_inclusive('\n') {
            let (line_ids, _) = tok.encode_with_offsets(line)?;
            ids.extend(line_ids.into_iter().map(|x| x as u16));
        }
    }
    let bytes: Vec<u8> = ids.iter().flat_map(|x| x.to_le_bytes()).collect();
    let werr = |e: kiln_core::CoreError| DataError::Invalid(e.to_string());
    // The sidecar goes first and comes back last: a kill in between leaves ids without a
    // record, which are rebuilt, never new ids under the old text's hash.
    match std::fs::remove_file(sidecar(cache)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DataError::io(&sidecar(cache), e)),
    }
    kiln_core::atomic_write(cache, &bytes).map_err(werr)?;
    let info = CacheInfo {
        sources: want_sources,
        source_bytes,
        source_sha256,
        tokenizer_sha256,
        builder: BUILDER,
        tokens: ids.len(),
        vocab_size: tok.vocab_size(),
    };
    let json = serde_json::to_vec_pretty(&info).map_err(|e| DataError::Invalid(e.to_string()))?;
    kiln_core::atomic_write(&sidecar(cache), &json).map_err(werr)?;
    open_token_cache(cache)
}

/// Opens a cache, checking its size against the sidecar and every id against the vocabulary.
pub fn open_token_cache(cache: &Path) -> Result<TokenCorpus, DataError> {
    let side = sidecar(cache);
    let info: CacheInfo =
        serde_json::from_slice(&std::fs::read(&side).map_err(|e| DataError::io(&side, e))?)
            .map_err(|e| DataError::Layout {
                path: side.clone(),
                msg: format!("not a token-cache description: {e}"),
            })?;
    let map = std::fs::read(cache).map_err(|e| DataError::io(cache, e))?;
    if map.len() != 2 * info.tokens {
        return Err(DataError::Layout {
            path: cache.to_path_buf(),
            msg: format!(
                "corrupt token cache: {} bytes, but {} holds {} tokens ({} bytes); delete both files to rebuild",
                map.len(),
                side.display(),
                info.tokens,
                2 * info.tokens
            ),
        });
    }
    let c = TokenCorpus {
        ids: map
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect(),
        info,
        path: cache.to_path_buf(),
    };
    if let Some(i) = (0..c.len()).find(|&i| c.get(i) as usize >= c.info.vocab_size) {
        return Err(DataError::Layout {
            path: cache.to_path_buf(),
            msg: format!(
                "corrupt token cache: id {} at position {i} is outside the {}-token vocabulary; delete it to rebuild",
                c.get(i),
                c.info.vocab_size
            ),
        });
    }
    Ok(c)
}

impl TokenCorpus {
    pub fn len(&self) -> usize {
        self.info.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.info.tokens == 0
    }

    pub fn get(&self, i: usize) -> u16 {
        self.ids[i]
    }

    /// Non-overlapping blocks of `seq` tokens (WikiText-style evaluation; the ragged tail is
    /// dropped).
    pub fn blocks(&self, seq: usize) -> usize {
        self.len() / seq.max(1)
    }

    /// Block `i` of [`Self::blocks`].
    pub fn block(&self, i: usize, seq: usize) -> Vec<i64> {
        (i * seq..(i + 1) * seq)
            .map(|j| self.get(j) as i64)
            .collect()
    }
}

/// The token types that occur in some corpora, renumbered `0..size` in id order. Tiny language
/// models on a GPT-2-tokenised corpus spend most of their compute in the 50,257-way output layer;
/// a corpus of a few hundred thousand tokens uses a fraction of those types, so training over the
/// observed ones only is several times faster with the same tokenisation and targets.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactVocab {
    map: Vec<u32>,
    size: usize,
}

impl CompactVocab {
    pub fn of(corpora: &[&TokenCorpus]) -> Self {
        let mut seen = vec![false; 1 << 16];
        for c in corpora {
            for &id in &c.ids {
                seen[id as usize] = true;
            }
        }
        let mut map = vec![u32::MAX; 1 << 16];
        let mut size = 0;
        for (id, _) in seen.iter().enumerate().filter(|x| *x.1) {
            map[id] = size as u32;
            size += 1;
        }
        Self { map, size }
    }

    /// Number of types kept.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The compact id of an original id (`None` for a type the corpora never use).
    pub fn get(&self, id: u16) -> Option<u32> {
        Some(self.map[id as usize]).filter(|&x| x != u32::MAX)
    }

    /// Block `i` of `c` (see [`TokenCorpus::block`]) in compact ids.
    pub fn block(&self, c: &TokenCorpus, i: usize, seq: usize) -> Vec<i64> {
        (i * seq..(i + 1) * seq)
            .map(|j| self.map[c.get(j) as usize] as i64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> TextTokenizer {
        TextTokenizer::word_level(&crate::synthetic::lm_vocabulary(), 1024).unwrap()
    }

    #[test]
    fn cache_round_trip_blocks_and_reuse() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a.txt");
        std::fs::write(&src, crate::synthetic::lm_corpus(2000, 1)).unwrap();
        let cache = d.path().join("a.bin");
        let c = build_token_cache(std::slice::from_ref(&src), &tok(), &cache).unwrap();
        assert!(c.len() > 1500);
        assert_eq!(c.blocks(64), c.len() / 64);
        assert_eq!(c.block(1, 64).len(), 64);
        assert_eq!(c.block(1, 64)[0], c.get(64) as i64);
        // A second build reuses the cache (same sources, same sizes).
        let before = std::fs::metadata(&cache).unwrap().modified().unwrap();
        let c2 = build_token_cache(&[src], &tok(), &cache).unwrap();
        assert_eq!(c2.len(), c.len());
        assert_eq!(
            std::fs::metadata(&cache).unwrap().modified().unwrap(),
            before
        );
    }

    /// Issue 35.3: the cache was keyed by file names and sizes, so new text of the same size
    /// (or the same text under another tokenizer) read the old ids.
    #[test]
    fn same_size_new_text_or_another_tokenizer_is_tokenised_again() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a.txt");
        let cache = d.path().join("a.bin");
        std::fs::write(&src, "the ( was ) the .").unwrap();
        let ids = |c: &TokenCorpus| (0..c.len()).map(|i| c.get(i)).collect::<Vec<u16>>();
        let first = ids(&build_token_cache(std::slice::from_ref(&src), &tok(), &cache).unwrap());
        // Same name, same size, other words.
        std::fs::write(&src, "was ( the ) was .").unwrap();
        let fresh_cache = d.path().join("fresh.bin");
        let want =
            ids(&build_token_cache(std::slice::from_ref(&src), &tok(), &fresh_cache).unwrap());
        assert_ne!(first, want);
        let got = ids(&build_token_cache(std::slice::from_ref(&src), &tok(), &cache).unwrap());
        assert_eq!(got, want, "stale token ids reused for same-size new text");
        // Same text, a tokenizer with other ids: tokenised again.
        let mut words = crate::synthetic::lm_vocabulary();
        words.reverse();
        let other = TextTokenizer::word_level(&words, 1024).unwrap();
        assert_ne!(other.fingerprint().unwrap(), tok().fingerprint().unwrap());
        let c = build_token_cache(std::slice::from_ref(&src), &other, &cache).unwrap();
        assert_eq!(c.info.tokenizer_sha256, other.fingerprint().unwrap());
        assert_ne!(ids(&c), want);
        // The fingerprint is a property of the tokenizer, not of one instance (the word-level
        // vocabulary is a hash map inside).
        assert_eq!(tok().fingerprint().unwrap(), tok().fingerprint().unwrap());
    }

    #[test]
    fn corrupt_cache_and_non_utf8_text_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a.txt");
        std::fs::write(&src, crate::synthetic::lm_corpus(300, 2)).unwrap();
        let cache = d.path().join("a.bin");
        build_token_cache(&[src], &tok(), &cache).unwrap();
        let mut bytes = std::fs::read(&cache).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&cache, &bytes).unwrap();
        let e = open_token_cache(&cache).unwrap_err().to_string();
        assert!(
            e.contains("a.bin") && e.contains("corrupt token cache"),
            "{e}"
        );
        let bad = d.path().join("latin1.txt");
        std::fs::write(&bad, b"caf\xe9 au lait").unwrap();
        let e = build_token_cache(&[bad], &tok(), &d.path().join("b.bin"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("latin1.txt") && e.contains("UTF-8") && e.contains("offset 3"),
            "{e}"
        );
    }

    #[test]
    fn compact_vocabulary_renumbers_used_types_in_order() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a.txt");
        std::fs::write(&src, "the ( was ) the .").unwrap();
        let c =
            build_token_cache(std::slice::from_ref(&src), &tok(), &d.path().join("a.bin")).unwrap();
        let v = CompactVocab::of(&[&c]);
        assert_eq!(v.size(), 5);
        let b = v.block(&c, 0, c.len());
        assert_eq!(b[0], b[4], "same type, same compact id");
        let mut sorted: Vec<i64> = b.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        // Order-preserving: a smaller original id gets a smaller compact id.
        let orig: Vec<u16> = (0..c.len()).map(|i| c.get(i)).collect();
        for (i, j) in [(0, 1), (1, 2), (2, 3)] {
            assert_eq!(orig[i] < orig[j], b[i] < b[j]);
        }
        let unused = (0..u16::MAX).find(|&x| !orig.contains(&x)).unwrap();
        assert_eq!(v.get(unused), None);
    }
}
