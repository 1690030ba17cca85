//! Issue 35, point 7: every kiln-data reader fed random mutations of real files (truncation,
//! byte flips, dropped / duplicated / swapped lines, a BOM, Latin-1 bytes, CRLF, inserted and
//! deleted ranges) must not panic, and must either parse or fail with an error naming the file.
//! See `tests/fuzz/mod.rs` for the mutations and the environment variables (`KILN_FUZZ_CASES`
//! for longer runs, `KILN_FUZZ_SEED`, `KILN_FUZZ_CASE` to reproduce one case).
//!
//! The inputs are the real files of `shared/data` (a prefix of the large ones, since every
//! case reparses the file): GLUE TSVs, Criteo and Avazu click logs and a CTR cache built from
//! them, IWSLT14 / Multi30k corpora, BPE codes and a fairseq dictionary built from them, the
//! `vqa2_yesno` lists and images (and a PNG made from one), CLIP's BPE vocabulary, WikiText-2.
//! There is no SQuAD or official VQA v2 file in `shared/data`, so those files are written in
//! the official layouts from real text (IWSLT14 German sentences for SQuAD contexts, the
//! `vqa2_yesno` questions for VQA v2). Without `shared/data` the tests skip through
//! `kiln_core::paths::skip`, which fails under `KILN_REQUIRE_REAL_DATA=1`.

mod fuzz;

use std::path::{Path, PathBuf};

use fuzz::{fuzz_file, fuzz_files, fuzz_files_checked, head_lines};
use kiln_data::ctr::{preprocess, read_avazu, read_criteo, CtrCache, CtrFormat, ReadOptions};
use kiln_data::glue::{read_glue_file, read_id_pairs, GlueTask};
use kiln_data::translation::{read_lines, read_parallel, read_tsv_pairs, Dictionary};
use serde_json::json;

fn shared() -> Option<PathBuf> {
    let p = kiln_core::paths::shared_data();
    if p.is_none() {
        kiln_core::paths::skip("../shared/data (the real files the reader fuzz tests mutate)");
    }
    p
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}; see shared/data/MANIFEST.md", p.display()))
}

fn head(p: &Path, lines: usize) -> Vec<u8> {
    head_lines(&read(p), lines)
}

// ------------------------------------------------------------------------------------------
// GLUE
// ------------------------------------------------------------------------------------------

#[test]
fn fuzz_glue_tsv() {
    let Some(root) = shared() else { return };
    let g = root.join("glue_data");
    for (task, file, lines) in [
        (GlueTask::Sst2, g.join("SST-2/dev.tsv"), 120),
        // MRPC's files start with a BOM.
        (GlueTask::Mrpc, g.join("MRPC/dev.tsv"), 80),
        (GlueTask::Stsb, g.join("STS-B/dev.tsv"), 80),
        (GlueTask::Rte, root.join("glue_derived/RTE/dev.tsv"), 40),
    ] {
        let reader = format!("glue-{}", task.name());
        fuzz_file(&reader, 250, "dev.tsv", head(&file, lines), |p| {
            read_glue_file(p, task)
        });
    }
    fuzz_file(
        "glue-dev-ids",
        250,
        "dev_ids.tsv",
        head(&g.join("MRPC/dev_ids.tsv"), 100),
        read_id_pairs,
    );
}

// ------------------------------------------------------------------------------------------
// SQuAD
// ------------------------------------------------------------------------------------------

/// A SQuAD v2.0 file in the official layout from real German sentences (multi-byte characters,
/// so the character → byte offset conversion is exercised): the answer is a word of the context
/// at its character offset; every fifth question is unanswerable.
fn squad_file(root: &Path) -> Vec<u8> {
    let text = String::from_utf8(head(&root.join("iwslt14/train_samples/first.de"), 60)).unwrap();
    let mut paragraphs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let context = line.replace("@@ ", "");
        let words: Vec<(usize, &str)> = context
            .split(' ')
            .scan(0usize, |chars, w| {
                let at = *chars;
                *chars += w.chars().count() + 1;
                Some((at, w))
            })
            .filter(|(_, w)| w.chars().count() > 3)
            .collect();
        let Some(&(start, word)) = words.get(i % words.len().max(1)) else {
            continue;
        };
        let qa = if i % 5 == 4 {
            json!({"id": format!("q{i}"), "question": "Wer hat es gesagt?", "answers": [],
                   "is_impossible": true})
        } else {
            json!({"id": format!("q{i}"), "question": format!("Welches Wort steht an Stelle {start}?"),
                   "answers": [{"text": word, "answer_start": start}], "is_impossible": false})
        };
        paragraphs.push(json!({"context": context, "qas": [qa]}));
    }
    let file = json!({"version": "v2.0", "data": [{"title": "iwslt14", "paragraphs": paragraphs}]});
    serde_json::to_vec_pretty(&file).unwrap()
}

#[test]
fn fuzz_squad_json() {
    let Some(root) = shared() else { return };
    let original = squad_file(&root);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dev-v2.0.json");
    std::fs::write(&p, &original).unwrap();
    let whole = kiln_data::squad::read_squad(&p).unwrap();
    assert!(whole.len() >= 50, "{} questions", whole.len());
    fuzz_file(
        "squad",
        300,
        "dev-v2.0.json",
        original,
        kiln_data::squad::read_squad,
    );
}

// ------------------------------------------------------------------------------------------
// Click logs
// ------------------------------------------------------------------------------------------

#[test]
fn fuzz_click_logs() {
    let Some(root) = shared() else { return };
    let criteo = head(&root.join("criteo/dac10k/train.txt"), 150);
    let avazu = head(&root.join("avazu/train-10k.csv"), 150);
    for lenient in [false, true] {
        let opts = ReadOptions::default().lenient(lenient);
        fuzz_file(
            &format!("criteo-lenient-{lenient}"),
            200,
            "train.txt",
            criteo.clone(),
            |p| read_criteo(p, &opts),
        );
        let opts = ReadOptions::modulo(1000).lenient(lenient);
        fuzz_file(
            &format!("avazu-lenient-{lenient}"),
            200,
            "train.csv",
            avazu.clone(),
            |p| read_avazu(p, &opts),
        );
    }
    // The two-pass cache builder on a mutated source.
    let opts = ReadOptions::default().lenient(true);
    fuzz_files("criteo-preprocess", 100, &[("train.txt", criteo)], |dir| {
        let cache = dir.join("train.cache");
        let _ = std::fs::remove_file(&cache);
        let mut c = preprocess(
            &dir.join("train.txt"),
            CtrFormat::Criteo,
            &opts,
            &cache,
            &mut |_, _| {},
        )?;
        let n = c.len();
        c.read_rows(0, n)
    });
}

#[test]
fn fuzz_ctr_cache() {
    let Some(root) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("train.csv");
    std::fs::write(&src, head(&root.join("avazu/train-10k.csv"), 120)).unwrap();
    let cache = dir.path().join("built.cache");
    preprocess(
        &src,
        CtrFormat::Avazu,
        &ReadOptions::modulo(500),
        &cache,
        &mut |_, _| {},
    )
    .unwrap();
    fuzz_file("ctr-cache", 300, "train.cache", read(&cache), |p| {
        let mut c = CtrCache::open(p)?;
        let n = c.len();
        let all = c.read_rows(0, n)?;
        let some: Vec<usize> = (0..n).step_by(7).collect();
        c.read_indices(&some).map(|s| (all, s))
    });
}

// ------------------------------------------------------------------------------------------
// Translation corpora, dictionaries, BPE codes, LM text
// ------------------------------------------------------------------------------------------

#[test]
fn fuzz_translation_corpora() {
    let Some(root) = shared() else { return };
    let iw = root.join("iwslt14/iwslt14.tokenized.de-en");
    let files = [
        ("valid.de", head(&iw.join("valid.de"), 120)),
        ("valid.en", head(&iw.join("valid.en"), 120)),
    ];
    fuzz_files("translation-parallel", 250, &files, |dir| {
        read_parallel(&dir.join("valid.de"), &dir.join("valid.en"))
    });
    fuzz_file(
        "translation-tsv-pairs",
        250,
        "sample.de+en",
        head(&root.join("iwslt14/train_samples/sample.de+en"), 120),
        read_tsv_pairs,
    );
    // gzip: the mutations hit the compressed bytes.
    fuzz_file(
        "translation-gz",
        150,
        "val.de.gz",
        read(&root.join("multi30k/raw/val.de.gz")),
        read_lines,
    );
}

#[test]
fn fuzz_fairseq_dictionary_and_bpe_codes() {
    let Some(root) = shared() else { return };
    let iw = root.join("iwslt14/iwslt14.tokenized.de-en");
    let text = String::from_utf8(head(&iw.join("valid.de"), 300)).unwrap();
    let dict = Dictionary::build(text.lines(), 0, 8);
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path().join("dict.de.txt");
    dict.write(&dp).unwrap();
    fuzz_file(
        "fairseq-dictionary",
        250,
        "dict.de.txt",
        read(&dp),
        Dictionary::read,
    );
    fuzz_file("bpe-codes", 250, "code", head(&iw.join("code"), 400), |p| {
        kiln_data::bpe::Bpe::read_codes(p)
    });
    fuzz_file(
        "lm-corpus-text",
        200,
        "valid.txt",
        head(&root.join("wikitext-2/valid.txt"), 200),
        kiln_data::corpus::read_utf8,
    );
}

#[test]
fn fuzz_clip_bpe_vocabulary() {
    let Some(root) = shared() else { return };
    // The whole gzip file (1.3 MB, 49k merges) per case: few cases by default.
    fuzz_file(
        "clip-bpe-vocab",
        12,
        "bpe_simple_vocab_16e6.txt.gz",
        read(&root.join("clip/bpe_simple_vocab_16e6.txt.gz")),
        |p| kiln_data::clip_bpe::ClipTokenizer::from_file(p),
    );
}

// ------------------------------------------------------------------------------------------
// VQA lists, VQA v2 JSON, images
// ------------------------------------------------------------------------------------------

#[test]
fn fuzz_vqa_yesno_list() {
    let Some(root) = shared() else { return };
    fuzz_file(
        "vqa-yesno-list",
        300,
        "vaq2.0.DevImages.txt",
        head(&root.join("vqa2_yesno/vaq2.0.DevImages.txt"), 150),
        kiln_data::vqa::read_yesno,
    );
}

/// Official-layout VQA v2 questions, annotations, label2ans and results files from the real
/// `vqa2_yesno` dev questions (ids deduplicated, ten identical human answers).
fn vqa_v2_files(root: &Path) -> [(&'static str, Vec<u8>); 4] {
    let list = root.join("vqa2_yesno/vaq2.0.DevImages.txt");
    let qs = kiln_data::vqa::read_yesno(&list).unwrap();
    let mut seen = std::collections::HashSet::new();
    let qs: Vec<_> = qs
        .into_iter()
        .filter(|q| seen.insert(q.question_id()))
        .take(60)
        .collect();
    let questions = json!({
        "info": {"description": "from vqa2_yesno"}, "data_subtype": "val2014",
        "questions": qs.iter().map(|q| json!({
            "image_id": q.image_id, "question": q.question, "question_id": q.question_id()
        })).collect::<Vec<_>>()
    });
    let annotations = json!({
        "data_subtype": "val2014",
        "annotations": qs.iter().map(|q| json!({
            "question_id": q.question_id(), "image_id": q.image_id,
            "question_type": "is this", "answer_type": "yes/no",
            "multiple_choice_answer": q.answer,
            "answers": (1..=10).map(|i| json!({
                "answer": q.answer, "answer_confidence": "yes", "answer_id": i
            })).collect::<Vec<_>>()
        })).collect::<Vec<_>>()
    });
    let mut words: Vec<String> = vec!["yes".into(), "no".into()];
    for q in &qs {
        for w in kiln_data::vqa::tokenize_question(&q.question) {
            if !words.contains(&w) {
                words.push(w);
            }
        }
    }
    let results: Vec<_> = qs
        .iter()
        .map(|q| json!({"question_id": q.question_id(), "answer": q.answer}))
        .collect();
    let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap();
    [
        ("questions.json", pretty(&questions)),
        ("annotations.json", pretty(&annotations)),
        ("label2ans.json", pretty(&json!(words))),
        ("results.json", pretty(&json!(results))),
    ]
}

#[test]
fn fuzz_vqa_v2_json() {
    use kiln_data::vqa_v2::{read_results, read_split, AnswerTable};
    let Some(root) = shared() else { return };
    let [q, a, l, r] = vqa_v2_files(&root);
    fuzz_files("vqa-v2-split", 300, &[q, a], |dir| {
        read_split(
            &dir.join("questions.json"),
            Some(&dir.join("annotations.json")),
        )
    });
    fuzz_file("vqa-v2-label2ans", 200, l.0, l.1, |p| {
        AnswerTable::from_label2ans_json(p).map(|t| t.answers().to_vec())
    });
    fuzz_file("vqa-v2-results", 200, r.0, r.1, read_results);
}

/// Found by `fuzz_vqa_v2_json`: a flipped digit in a question id of the questions file made the
/// join fail with an error naming only the annotations file.
#[test]
fn vqa_v2_join_mismatch_names_the_questions_file_too() {
    use kiln_data::vqa_v2::read_split;
    let dir = tempfile::tempdir().unwrap();
    let q = dir
        .path()
        .join("v2_OpenEnded_mscoco_val2014_questions.json");
    let a = dir.path().join("v2_mscoco_val2014_annotations.json");
    std::fs::write(
        &q,
        r#"{"questions": [{"image_id": 42, "question": "Is it?", "question_id": 42001}]}"#,
    )
    .unwrap();
    std::fs::write(
        &a,
        r#"{"annotations": [{"question_id": 42000, "image_id": 42, "question_type": "is it",
            "answer_type": "yes/no", "multiple_choice_answer": "yes",
            "answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": 1}]}]}"#,
    )
    .unwrap();
    let err = read_split(&q, Some(&a)).unwrap_err().to_string();
    assert!(
        err.contains(&a.display().to_string())
            && err.contains(&q.display().to_string())
            && err.contains("42001"),
        "{err}"
    );
}

/// Only truncations: the image must not decode (issue 35, point 2).
fn truncated_must_fail(
    _name: &str,
    mutations: &[String],
    _img: &kiln_data::vqa::ImageRgb,
) -> Result<(), String> {
    if mutations.iter().all(|m| m.starts_with("truncated")) {
        Err("a truncated image decoded".into())
    } else {
        Ok(())
    }
}

#[test]
fn fuzz_images() {
    let Some(root) = shared() else { return };
    let dir = root.join("vqa2_yesno/images_112");
    let names = [
        "COCO_val2014_000000393225.jpg",
        "COCO_val2014_000000000133.jpg",
        "COCO_val2014_000000356708.jpg",
    ];
    let mut originals: Vec<(String, Vec<u8>)> = Vec::new();
    for n in names {
        originals.push((n.to_string(), read(&dir.join(n))));
    }
    // A PNG with the first image's pixels.
    let img = image::load_from_memory(&originals[0].1).unwrap();
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    originals.push(("image.png".into(), png));
    for (name, bytes) in &originals {
        let files = [(name.as_str(), bytes.clone())];
        fuzz_files_checked(
            &format!("image-{name}"),
            150,
            &files,
            |d| kiln_data::vqa::load_rgb(&d.join(name), None),
            truncated_must_fail,
        );
    }
    // Through the set loader (resizing), on the first image.
    let (name, bytes) = &originals[0];
    let files = [(name.as_str(), bytes.clone())];
    fuzz_files("image-set", 100, &files, |d| {
        kiln_data::vqa::load_images(d, &[name.as_str()], Some((32, 32)), None)
    });
}
