//! Issue 35, point 2: images decode strictly and text readers handle a UTF-8 byte-order mark.
//!
//! * A real `vqa2_yesno` JPEG cut to half its size, or missing its last 200 bytes, used to
//!   decode without error (the `image` crate fills the missing rows with grey); now it is an
//!   error naming the file, through `load_rgb` and through `load_images`. A PNG without its
//!   `IEND` chunk likewise. Whole files (also with bytes after the JPEG end marker) still decode
//!   to the same pixels.
//! * A list or annotation file starting with a BOM reads exactly as without it, for every text
//!   reader (the VQA list used to give "image not found" for a name with an invisible U+FEFF).
//!
//! The real files come from `shared/data` (see MANIFEST.md); without it these tests skip
//! through `kiln_core::paths::skip`, which fails under `KILN_REQUIRE_REAL_DATA=1`.

use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_data::vqa::{load_images, load_rgb, read_yesno};
use kiln_data::DataError;

fn shared() -> Option<PathBuf> {
    let p = kiln_core::paths::shared_data();
    if p.is_none() {
        kiln_core::paths::skip(
            "../shared/data (vqa2_yesno images and lists, GLUE, criteo, avazu, iwslt14)",
        );
    }
    p
}

const IMAGE: &str = "COCO_val2014_000000393225.jpg";

fn real_jpeg() -> Option<Vec<u8>> {
    let p = shared()?.join("vqa2_yesno/images_112").join(IMAGE);
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn with_bom(bytes: &[u8]) -> Vec<u8> {
    let mut v = b"\xEF\xBB\xBF".to_vec();
    v.extend_from_slice(bytes);
    v
}

fn assert_truncation_error(err: DataError, path: &Path) {
    let msg = err.to_string();
    assert!(
        matches!(err, DataError::Image { .. })
            && msg.contains(&path.display().to_string())
            && msg.contains("truncated"),
        "expected a truncation error naming {}, got: {msg}",
        path.display()
    );
}

// ------------------------------------------------------------------------------------------
// Images
// ------------------------------------------------------------------------------------------

#[test]
fn jpeg_cut_to_half_is_an_error_naming_the_file() {
    let Some(bytes) = real_jpeg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), IMAGE, &bytes[..bytes.len() / 2]);
    assert_truncation_error(load_rgb(&p, None).unwrap_err(), &p);
    assert_truncation_error(load_rgb(&p, Some((224, 224))).unwrap_err(), &p);
}

#[test]
fn jpeg_missing_its_last_200_bytes_is_an_error_naming_the_file() {
    let Some(bytes) = real_jpeg() else { return };
    assert!(bytes.len() > 400, "{IMAGE} is only {} bytes", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), IMAGE, &bytes[..bytes.len() - 200]);
    assert_truncation_error(load_rgb(&p, None).unwrap_err(), &p);
    // The set loader the experiment uses fails the same way.
    let err = load_images(dir.path(), &[IMAGE], None, None).unwrap_err();
    assert_truncation_error(err, &p);
}

#[test]
fn jpeg_missing_only_its_end_marker_is_an_error() {
    let Some(bytes) = real_jpeg() else { return };
    assert_eq!(&bytes[bytes.len() - 2..], [0xFF, 0xD9]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), IMAGE, &bytes[..bytes.len() - 2]);
    assert_truncation_error(load_rgb(&p, None).unwrap_err(), &p);
}

#[test]
fn whole_jpeg_and_bytes_after_the_end_marker_still_decode() {
    let Some(bytes) = real_jpeg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let whole = load_rgb(&write(dir.path(), "a.jpg", &bytes), None).unwrap();
    assert_eq!((whole.height, whole.width), (112, 112));
    // Some cameras append data after FF D9; decoders ignore it and so do we.
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"\0\0trailing data\xFF\xD8");
    let t = load_rgb(&write(dir.path(), "b.jpg", &trailing), None).unwrap();
    assert_eq!(t, whole);
    // An FF D9 inside an APPn segment (an EXIF thumbnail's end) is not the end of the image.
    let mut app = bytes[..2].to_vec();
    app.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x08, b'x', 0xFF, 0xD9, 0xFF, 0xD9, b'y']);
    app.extend_from_slice(&bytes[2..]);
    let a = load_rgb(&write(dir.path(), "c.jpg", &app), None).unwrap();
    assert_eq!(a, whole);
    let mut app_cut = app.clone();
    app_cut.truncate(app.len() / 2);
    let p = write(dir.path(), "d.jpg", &app_cut);
    assert_truncation_error(load_rgb(&p, None).unwrap_err(), &p);
}

#[test]
fn png_without_its_end_chunk_is_an_error_naming_the_file() {
    let Some(bytes) = real_jpeg() else { return };
    let img = image::load_from_memory(&bytes).unwrap();
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let whole = load_rgb(&write(dir.path(), "whole.png", &png), None).unwrap();
    let jpeg = load_rgb(&write(dir.path(), "whole.jpg", &bytes), None).unwrap();
    assert_eq!(whole, jpeg, "the PNG holds the JPEG's decoded pixels");
    // IEND is the last 12 bytes.
    assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
    for (name, cut) in [
        ("no_iend.png", png.len() - 12),
        ("half.png", png.len() / 2),
        ("minus200.png", png.len() - 200),
    ] {
        let p = write(dir.path(), name, &png[..cut]);
        assert_truncation_error(load_rgb(&p, None).unwrap_err(), &p);
    }
}

// ------------------------------------------------------------------------------------------
// Byte-order marks
// ------------------------------------------------------------------------------------------

#[test]
fn vqa_list_with_a_bom_reads_as_without() {
    let Some(root) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = root.join("vqa2_yesno/vaq2.0.DevImages.txt");
    let text = std::fs::read(&src).unwrap();
    let head: Vec<u8> = text
        .split_inclusive(|&b| b == b'\n')
        .take(20)
        .flatten()
        .copied()
        .collect();
    let plain = read_yesno(&write(dir.path(), "plain.txt", &head)).unwrap();
    let bom = read_yesno(&write(dir.path(), "bom.txt", &with_bom(&head))).unwrap();
    let key = |v: &[kiln_data::vqa::VqaQuestion]| {
        v.iter()
            .map(|q| {
                (
                    q.image.clone(),
                    q.question.clone(),
                    q.answer.clone(),
                    q.line,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&bom), key(&plain));
    assert!(!bom[0].image.starts_with('\u{feff}'), "{:?}", bom[0].image);
    // And the first image is found.
    let first = [bom[0].image.as_str()];
    load_images(&root.join("vqa2_yesno/images_112"), &first, None, None).unwrap();
}

#[test]
fn vqa_v2_json_files_with_a_bom_read_as_without() {
    use kiln_data::vqa_v2::{read_annotations, read_questions, read_results, AnswerTable};
    let dir = tempfile::tempdir().unwrap();
    let q = br#"{"questions": [{"image_id": 42, "question": "Is it?", "question_id": 42000}]}"#;
    let a = br#"{"annotations": [{"question_id": 42000, "image_id": 42, "question_type": "is it",
        "answer_type": "yes/no", "multiple_choice_answer": "yes",
        "answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": 1}]}]}"#;
    let l = br#"["yes", "no", "2"]"#;
    let r = br#"[{"question_id": 42000, "answer": "yes"}]"#;
    let qp = read_questions(&write(dir.path(), "q.json", q)).unwrap();
    let qb = read_questions(&write(dir.path(), "qb.json", &with_bom(q))).unwrap();
    assert_eq!(qb, qp);
    let ap = read_annotations(&write(dir.path(), "a.json", a)).unwrap();
    let ab = read_annotations(&write(dir.path(), "ab.json", &with_bom(a))).unwrap();
    assert_eq!(ab, ap);
    let lp = AnswerTable::from_label2ans_json(&write(dir.path(), "l.json", l)).unwrap();
    let lb = AnswerTable::from_label2ans_json(&write(dir.path(), "lb.json", &with_bom(l))).unwrap();
    assert_eq!(lb.answers(), lp.answers());
    let rp = read_results(&write(dir.path(), "r.json", r)).unwrap();
    let rb = read_results(&write(dir.path(), "rb.json", &with_bom(r))).unwrap();
    assert_eq!(rb, rp);
}

#[test]
fn squad_json_with_a_bom_reads_as_without() {
    let dir = tempfile::tempdir().unwrap();
    let text = br#"{"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "Caf\u00e9 opened in 1887.",
        "qas": [{"id": "a", "question": "When?", "answers": [{"text": "1887", "answer_start": 15}]}]}]}]}"#;
    let plain = kiln_data::squad::read_squad(&write(dir.path(), "p.json", text)).unwrap();
    let bom = kiln_data::squad::read_squad(&write(dir.path(), "b.json", &with_bom(text))).unwrap();
    assert_eq!(bom, plain);
}

#[test]
fn glue_files_with_a_bom_read_as_without() {
    use kiln_data::glue::{read_glue_file, read_id_pairs, GlueTask};
    let Some(root) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sst = std::fs::read(root.join("glue_data/SST-2/dev.tsv")).unwrap();
    let plain = read_glue_file(&write(dir.path(), "p.tsv", &sst), GlueTask::Sst2).unwrap();
    let bom = read_glue_file(&write(dir.path(), "b.tsv", &with_bom(&sst)), GlueTask::Sst2).unwrap();
    assert_eq!(bom, plain);
    let ids = std::fs::read(root.join("glue_data/MRPC/dev_ids.tsv")).unwrap();
    let plain = read_id_pairs(&write(dir.path(), "ids.tsv", &ids)).unwrap();
    let bom = read_id_pairs(&write(dir.path(), "idsb.tsv", &with_bom(&ids))).unwrap();
    assert_eq!(bom, plain);
}

#[test]
fn click_logs_with_a_bom_read_as_without() {
    use kiln_data::ctr::{read_avazu, read_criteo, ReadOptions};
    let Some(root) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let head = |p: PathBuf| -> Vec<u8> {
        let t = std::fs::read(p).unwrap();
        t.split_inclusive(|&b| b == b'\n')
            .take(50)
            .flatten()
            .copied()
            .collect()
    };
    let opts = ReadOptions::default();
    let c = head(root.join("criteo/dac10k/train.txt"));
    let plain = read_criteo(&write(dir.path(), "c.txt", &c), &opts).unwrap();
    let bom = read_criteo(&write(dir.path(), "cb.txt", &with_bom(&c)), &opts).unwrap();
    assert_eq!(bom, plain);
    let a = head(root.join("avazu/train-10k.csv"));
    let plain = read_avazu(&write(dir.path(), "a.csv", &a), &opts).unwrap();
    let bom = read_avazu(&write(dir.path(), "ab.csv", &with_bom(&a)), &opts).unwrap();
    assert_eq!(bom, plain);
}

#[test]
fn translation_files_with_a_bom_read_as_without() {
    use kiln_data::bpe::Bpe;
    use kiln_data::translation::{read_lines, read_parallel, read_tsv_pairs, Dictionary};
    let Some(root) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let iw = root.join("iwslt14/iwslt14.tokenized.de-en");
    let head = |p: PathBuf, n: usize| -> Vec<u8> {
        let t = std::fs::read(p).unwrap();
        t.split_inclusive(|&b| b == b'\n')
            .take(n)
            .flatten()
            .copied()
            .collect()
    };
    let de = head(iw.join("valid.de"), 30);
    let en = head(iw.join("valid.en"), 30);
    let plain = read_parallel(
        &write(dir.path(), "v.de", &de),
        &write(dir.path(), "v.en", &en),
    )
    .unwrap();
    let bom = read_parallel(
        &write(dir.path(), "vb.de", &with_bom(&de)),
        &write(dir.path(), "vb.en", &with_bom(&en)),
    )
    .unwrap();
    assert_eq!(bom, plain);

    let pairs = head(root.join("iwslt14/train_samples/sample.de+en"), 30);
    let plain = read_tsv_pairs(&write(dir.path(), "s.tsv", &pairs)).unwrap();
    let bom = read_tsv_pairs(&write(dir.path(), "sb.tsv", &with_bom(&pairs))).unwrap();
    assert_eq!(bom, plain);

    // A BOM inside a gzip stream (a BOM'd file gzipped).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&with_bom(&de)).unwrap();
    let gz = gz.finish().unwrap();
    let lines = read_lines(&write(dir.path(), "v.de.gz", &gz)).unwrap();
    assert_eq!(lines, read_lines(&dir.path().join("v.de")).unwrap());

    let dict = Dictionary::build(plain.iter().map(|p| p.1.as_str()), 0, 8);
    let dp = dir.path().join("dict.en.txt");
    dict.write(&dp).unwrap();
    let dict_bytes = std::fs::read(&dp).unwrap();
    let plain = Dictionary::read(&dp).unwrap();
    let bom = Dictionary::read(&write(dir.path(), "dictb.txt", &with_bom(&dict_bytes))).unwrap();
    assert_eq!(bom, plain);
    assert_eq!(bom.symbols(), dict.symbols());

    let codes = head(iw.join("code"), 200);
    let plain = Bpe::read_codes(write(dir.path(), "code", &codes)).unwrap();
    let bom = Bpe::read_codes(write(dir.path(), "codeb", &with_bom(&codes))).unwrap();
    assert_eq!(bom.version(), plain.version());
    assert_eq!(bom.merges(), plain.merges());
}

#[test]
fn lm_corpus_text_with_a_bom_reads_as_without() {
    let dir = tempfile::tempdir().unwrap();
    let text = " = Valkyria Chronicles III = \n Senjō no Valkyria 3 .\n".as_bytes();
    let plain = kiln_data::corpus::read_utf8(&write(dir.path(), "p.txt", text)).unwrap();
    let bom = kiln_data::corpus::read_utf8(&write(dir.path(), "b.txt", &with_bom(text))).unwrap();
    assert_eq!(bom, plain);
}
