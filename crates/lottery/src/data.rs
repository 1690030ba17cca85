//! Corpora as the experiment uses them: id pairs for training, test sources, and the test
//! references in the forms the two BLEUs read (tokenised for fairseq's BLEU, detokenised for
//! sacreBLEU).

use std::collections::HashSet;
use std::path::Path;

use kiln_data::bpe::{remove_bpe, Bpe};
use kiln_data::detok::{detokenize_line, Lang};
use kiln_data::translation::{read_lines, read_parallel, read_tsv_pairs, Dictionary};
use kiln_models::seq2seq::Pair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::LotteryError;

/// How hypotheses become text for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// Moses-tokenised, lowercased (IWSLT14): tokenized BLEU on it, sacreBLEU after Moses
    /// detokenisation.
    MosesTokenized,
    /// Raw text split at spaces (Multi30k here, synthetic): sacreBLEU directly.
    Raw,
}

pub struct Corpus {
    pub name: String,
    pub description: String,
    pub src_dict: Dictionary,
    pub tgt_dict: Dictionary,
    pub train: Vec<Pair>,
    pub test_src: Vec<Vec<u32>>,
    /// Test references after BPE removal (tokenised text for IWSLT, raw for Multi30k).
    pub test_ref: Vec<String>,
    pub text: Text,
    /// The target language, for Moses detokenisation before sacreBLEU.
    pub tgt_lang: Lang,
    /// Share of test source tokens outside the training dictionary.
    pub test_unk: f64,
    /// Pairs dropped from training for exceeding the length limit.
    pub dropped: usize,
    /// Validation sources and references (same forms as the test's), for checkpoint
    /// selection; empty when the corpus has no held-out validation split.
    pub valid_src: Vec<Vec<u32>>,
    pub valid_ref: Vec<String>,
}

impl Corpus {
    /// A hypothesis (target ids) as the text scored against `test_ref`.
    pub fn hyp_text(&self, ids: &[u32]) -> String {
        remove_bpe(&self.tgt_dict.decode(ids))
    }

    /// Adds a validation split (BPE'd pairs, encoded with the training dictionaries).
    fn with_valid(mut self, valid_text: &[(String, String)]) -> Self {
        self.valid_src = valid_text
            .iter()
            .map(|p| self.src_dict.encode_line(&p.0, false))
            .collect();
        self.valid_ref = valid_text.iter().map(|p| remove_bpe(&p.1)).collect();
        self
    }

    fn with_tgt_lang(mut self, lang: Lang) -> Self {
        self.tgt_lang = lang;
        self
    }

    /// What sacreBLEU reads (detokenised when the corpus is tokenised).
    pub fn detok(&self, s: &str) -> String {
        match self.text {
            Text::MosesTokenized => detokenize_line(s, self.tgt_lang),
            Text::Raw => s.to_string(),
        }
    }
}

/// How the dictionaries are built (fairseq-preprocess's options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DictOptions {
    /// Tokens seen fewer times in training become <unk> (`--thresholdsrc/--thresholdtgt`).
    pub threshold: u64,
    /// One dictionary counted over both languages (`--joined-dictionary`, WMT14).
    pub joined: bool,
}

fn encode_pairs(
    src: &Dictionary,
    tgt: &Dictionary,
    pairs: &[(String, String)],
    max_len: usize,
) -> (Vec<Pair>, usize) {
    let mut out = Vec::with_capacity(pairs.len());
    let mut dropped = 0;
    for (s, t) in pairs {
        let p = Pair {
            src: src.encode_line(s, false),
            tgt: tgt.encode_line(t, false),
        };
        if p.src.is_empty() || p.tgt.is_empty() || p.src.len() > max_len || p.tgt.len() > max_len {
            dropped += 1;
            continue;
        }
        out.push(p);
    }
    (out, dropped)
}

fn unk_share(dict: &Dictionary, ids: &[Vec<u32>]) -> f64 {
    let n: usize = ids.iter().map(|x| x.len()).sum();
    let u = ids
        .iter()
        .flatten()
        .filter(|&&x| x == kiln_data::translation::UNK)
        .count();
    u as f64 / n.max(1) as f64 * if dict.is_empty() { 0.0 } else { 1.0 }
}

fn build(
    name: &str,
    description: String,
    train_text: Vec<(String, String)>,
    test_text: Vec<(String, String)>,
    text: Text,
    max_len: usize,
    dict: DictOptions,
) -> Corpus {
    // fairseq-preprocess: separate dictionaries padded to a multiple of 8; tokens seen fewer
    // than `threshold` times become <unk> (its --thresholdsrc/--thresholdtgt, default 0).
    let DictOptions { threshold, joined } = dict;
    let (src_dict, tgt_dict) = if joined {
        // fairseq-preprocess --joined-dictionary: one dictionary counted over both sides.
        let both = train_text.iter().flat_map(|p| [p.0.as_str(), p.1.as_str()]);
        let d = Dictionary::build(both, threshold, 8);
        (d.clone(), d)
    } else {
        (
            Dictionary::build(train_text.iter().map(|p| p.0.as_str()), threshold, 8),
            Dictionary::build(train_text.iter().map(|p| p.1.as_str()), threshold, 8),
        )
    };
    let (train, dropped) = encode_pairs(&src_dict, &tgt_dict, &train_text, max_len);
    let test_src: Vec<Vec<u32>> = test_text
        .iter()
        .map(|p| src_dict.encode_line(&p.0, false))
        .collect();
    let test_ref = test_text.iter().map(|p| remove_bpe(&p.1)).collect();
    Corpus {
        name: name.into(),
        description,
        test_unk: unk_share(&src_dict, &test_src),
        src_dict,
        tgt_dict,
        train,
        test_src,
        test_ref,
        text,
        tgt_lang: Lang::En,
        dropped,
        valid_src: Vec::new(),
        valid_ref: Vec::new(),
    }
}

/// Multi30k de→en from the raw (untokenised, cased) files: joint BPE with `merges` merges
/// learnt on the training text of both sides, applied to train and test. No Moses
/// tokenisation, so hypotheses are scored as they come out (punctuation attached to words is
/// left to BPE). Test: test_2016_flickr.
pub fn multi30k(
    dir: &Path,
    merges: usize,
    max_train: usize,
    max_len: usize,
    threshold: u64,
) -> Result<Corpus, LotteryError> {
    let train = read_parallel(&dir.join("train.de.gz"), &dir.join("train.en.gz"))?;
    let test = read_parallel(
        &dir.join("test_2016_flickr.de.gz"),
        &dir.join("test_2016_flickr.en.gz"),
    )?;
    let valid = read_parallel(&dir.join("val.de.gz"), &dir.join("val.en.gz"))?;
    let train: Vec<(String, String)> = train
        .into_iter()
        .take(if max_train == 0 {
            usize::MAX
        } else {
            max_train
        })
        .collect();
    let bpe = Bpe::learn_lines(
        train
            .iter()
            .map(|p| p.0.as_str())
            .chain(train.iter().map(|p| p.1.as_str())),
        merges,
        2,
    )?;
    let apply = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(s, t)| (bpe.apply_line(s), bpe.apply_line(t)))
            .collect()
    };
    let (tr, te) = (apply(&train), apply(&test));
    let description = format!(
        "Multi30k de→en ({}): {} train pairs (raw, cased), joint BPE with {} merges learnt on them; val {} pairs; test_2016_flickr {} pairs",
        dir.display(),
        tr.len(),
        bpe.merges().len(),
        valid.len(),
        te.len()
    );
    // References are the raw test lines (BPE removal restores them exactly).
    let mut c = build(
        "multi30k",
        description,
        tr,
        te,
        Text::Raw,
        max_len,
        DictOptions {
            threshold,
            joined: false,
        },
    );
    c.test_ref = test.into_iter().map(|p| p.1).collect();
    let mut c = c.with_valid(&apply(&valid));
    c.valid_ref = valid.into_iter().map(|p| p.1).collect();
    Ok(c)
}

/// "IWSLT14-mini": the ~8,750 real IWSLT14 train pairs sampled in `train_samples` plus the
/// 7,283-pair valid split (itself drawn from train), deduplicated, for training; the real
/// 6,750-pair test set for scoring. All already tokenised, lowercased and BPE'd with
/// fairseq's `code` (10,000 joint merges).
pub fn iwslt14_mini(iwslt: &Path, max_len: usize, threshold: u64) -> Result<Corpus, LotteryError> {
    let prepared = iwslt.join("iwslt14.tokenized.de-en");
    let samples = iwslt.join("train_samples");
    let mut train = read_parallel(&samples.join("first.de"), &samples.join("first.en"))?;
    train.extend(read_tsv_pairs(&samples.join("sample.de+en"))?);
    train.extend(read_parallel(
        &prepared.join("valid.de"),
        &prepared.join("valid.en"),
    )?);
    let mut seen = HashSet::new();
    train.retain(|p| seen.insert(p.clone()));
    let test = read_parallel(&prepared.join("test.de"), &prepared.join("test.en"))?;
    let description = format!(
        "IWSLT14-mini de→en ({}): {} distinct real train pairs (train_samples + valid), BPE'd with fairseq's codes; test {} pairs (the real IWSLT14 test set)",
        iwslt.display(),
        train.len(),
        test.len()
    );
    Ok(build(
        "iwslt14-mini",
        description,
        train,
        test,
        Text::MosesTokenized,
        max_len,
        DictOptions {
            threshold,
            joined: false,
        },
    ))
}

/// A fairseq-prepared corpus folder (`train/valid/test.{src,tgt}`, BPE applied), e.g.
/// prepare-iwslt14.sh's output or a WMT14 folder in the same layout (paper profiles).
/// `dict.joined`: one dictionary over both languages (WMT14's `--joined-dictionary`). Moses
/// detokenisation follows the target language (German rules for `de`, English otherwise).
pub fn prepared(
    dir: &Path,
    name: &str,
    src: &str,
    tgt: &str,
    text: Text,
    max_len: usize,
    dict: DictOptions,
) -> Result<Corpus, LotteryError> {
    let f = |split: &str, lang: &str| dir.join(format!("{split}.{lang}"));
    let train = read_parallel(&f("train", src), &f("train", tgt))?;
    let test = read_parallel(&f("test", src), &f("test", tgt))?;
    // prepare-iwslt14.sh and the WMT scripts write a valid split; checkpoint selection needs it.
    let valid = if f("valid", src).exists() {
        read_parallel(&f("valid", src), &f("valid", tgt))?
    } else {
        Vec::new()
    };
    let description = format!(
        "{name} ({}): {} train pairs, valid {} pairs, test {} pairs",
        dir.display(),
        train.len(),
        valid.len(),
        test.len()
    );
    Ok(build(name, description, train, test, text, max_len, dict)
        .with_valid(&valid)
        .with_tgt_lang(if tgt == "de" { Lang::De } else { Lang::En }))
}

/// SYNTHETIC: a reversible token mapping. Source sentences of 3-10 words from `vocab` words;
/// the target is the sentence reversed with each word renamed by a fixed permutation.
pub fn synthetic(n_train: usize, n_test: usize, vocab: usize, seed: u64) -> Corpus {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sent = |rng: &mut ChaCha8Rng| -> (String, String) {
        let n = rng.random_range(3..=10);
        let w: Vec<usize> = (0..n).map(|_| rng.random_range(0..vocab)).collect();
        let src: Vec<String> = w.iter().map(|i| format!("s{i}")).collect();
        let tgt: Vec<String> = w
            .iter()
            .rev()
            .map(|i| format!("t{}", (7 * i + 3) % vocab))
            .collect();
        (src.join(" "), tgt.join(" "))
    };
    let train: Vec<(String, String)> = (0..n_train).map(|_| sent(&mut rng)).collect();
    let test: Vec<(String, String)> = (0..n_test).map(|_| sent(&mut rng)).collect();
    let description = format!("SYNTHETIC: {n_train} train / {n_test} test sentence pairs of 3-10 words over {vocab} words; target = source reversed with every word renamed (seed {seed})");
    build(
        "synthetic",
        description,
        train,
        test,
        Text::Raw,
        1024,
        DictOptions::default(),
    )
}

/// Reads an embedding file in the reference's text format (a header line, then `token v_1 …
/// v_d` per line) into a `[vocab, d]` table for `dict`, tokens missing from the file keeping
/// `fallback`'s rows.
pub fn read_embeddings(
    path: &Path,
    dict: &Dictionary,
    d: usize,
    fallback: &[f32],
) -> Result<Vec<f32>, LotteryError> {
    let lines = read_lines(path)?;
    let mut table = fallback.to_vec();
    for (i, line) in lines.iter().enumerate().skip(1) {
        let mut parts = line.split(' ');
        let Some(tok) = parts.next() else { continue };
        let v: Result<Vec<f32>, _> = parts.map(|x| x.parse::<f32>()).collect();
        let v = v.map_err(|e| kiln_data::DataError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!("not a number: {e}"),
        })?;
        if v.len() != d {
            return Err(kiln_data::DataError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                msg: format!("{} values, the model's embedding width is {d}", v.len()),
            }
            .into());
        }
        if let Some(id) = dict.get(tok) {
            table[id as usize * d..(id as usize + 1) * d].copy_from_slice(&v);
        }
    }
    Ok(table)
}
