//! `kiln_data::bpe` and `kiln_data::translation` on the real IWSLT14 and Multi30k files
//! (`shared/data/iwslt14`, `shared/data/multi30k`, see MANIFEST.md): subword-nmt's BPE applied
//! to fairseq's tokenised valid/test text must give fairseq's prepared files byte for byte,
//! learned merges must be subword-nmt's, and dictionaries fairseq's. Expected values that come
//! from the Python tools (subword-nmt 0.3.8, fairseq 0.12.2's `dictionary.py`) were generated
//! once and are written in here. The real data is required: these tests fail, not skip, when it
//! is missing.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_data::bpe::{remove_bpe, word_counts, Bpe, CodesVersion, DEFAULT_MIN_FREQUENCY};
use kiln_data::translation::{
    read_lines, read_parallel, read_tsv_pairs, tokenize_line, Dictionary, BOS, EOS, PAD, UNK,
};
use kiln_data::DataError;

fn shared() -> PathBuf {
    kiln_core::paths::shared_data().expect(
        "shared/data not found (set KILN_SHARED_DATA or put shared/data beside the checkout): \
         the translation tests need the real IWSLT14 and Multi30k files",
    )
}

/// fairseq's prepared IWSLT14 de-en (codes, BPE'd valid/test, and `tmp/` before BPE).
fn iwslt() -> PathBuf {
    let dir = shared().join("iwslt14/iwslt14.tokenized.de-en");
    assert!(
        dir.join("code").is_file() && dir.join("tmp").is_dir(),
        "{} missing: see MANIFEST.md section iwslt14",
        dir.display()
    );
    dir
}

fn samples() -> PathBuf {
    let dir = shared().join("iwslt14/train_samples");
    assert!(
        dir.join("sample.de+en").is_file(),
        "{} missing: see MANIFEST.md section iwslt14/train_samples",
        dir.display()
    );
    dir
}

fn multi30k() -> PathBuf {
    let dir = shared().join("multi30k/raw");
    assert!(
        dir.join("train.de.gz").is_file(),
        "{} missing: see MANIFEST.md section multi30k",
        dir.display()
    );
    dir
}

fn lines(p: &Path) -> Vec<String> {
    read_lines(p).unwrap_or_else(|e| panic!("{e}"))
}

/// FNV-1a 64, to pin a large expected file by its hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// BPE application on the real files

const SPLITS: [(&str, usize); 4] = [
    ("valid.de", 7_283),
    ("valid.en", 7_283),
    ("test.de", 6_750),
    ("test.en", 6_750),
];

#[test]
fn applying_code_reproduces_fairseqs_prepared_valid_and_test() {
    let dir = iwslt();
    let bpe = Bpe::read_codes(dir.join("code")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bpe.version(), CodesVersion::V0_2);
    assert_eq!(bpe.merges().len(), 10_000);
    assert_eq!(bpe.merges()[0], ("e".to_string(), "n</w>".to_string()));
    for (name, n) in SPLITS {
        let raw = lines(&dir.join("tmp").join(name));
        let want = lines(&dir.join(name));
        assert_eq!((raw.len(), want.len()), (n, n), "{name}: line counts");
        let mut out = String::new();
        let mut mismatches = Vec::new();
        for (i, (r, w)) in raw.iter().zip(&want).enumerate() {
            let got = bpe.apply_line(r);
            if got != *w {
                mismatches.push(format!("{name}:{}: got `{got}`, expected `{w}`", i + 1));
            }
            out.push_str(&got);
            out.push('\n');
        }
        assert!(
            mismatches.is_empty(),
            "{} of {n} lines of {name} differ from apply_bpe.py's:\n{}",
            mismatches.len(),
            mismatches[..mismatches.len().min(20)].join("\n")
        );
        assert!(
            out.as_bytes() == std::fs::read(dir.join(name)).unwrap(),
            "{name}: not byte-identical"
        );
    }
}

#[test]
fn removing_bpe_gives_back_the_tokenised_text() {
    let dir = iwslt();
    for (name, _) in SPLITS {
        let raw = lines(&dir.join("tmp").join(name));
        let bped = lines(&dir.join(name));
        for (i, (r, b)) in raw.iter().zip(&bped).enumerate() {
            assert_eq!(&remove_bpe(b), r, "{name}:{}", i + 1);
        }
    }
    assert_eq!(
        remove_bpe("it &apos;s that pyrami@@ d ."),
        "it &apos;s that pyramid ."
    );
}

// ---------------------------------------------------------------------------------------------
// BPE learning against subword-nmt

/// Ties, repeated and leading/trailing spaces, non-ASCII, one-character words, and runs of
/// `a` (overlapping pairs: `aaa` holds `a a` twice, merged once).
const TOY_CORPUS: &str = "low lower lowest low low
newer newest wider widest
new new new renew  
 a a ab ab abc x
ä ö ü äöü äö ßa ßa straße
aaa aaaa aaaaa baaab
the cat sat on the mat with the hat
";

/// `subword-nmt learn-bpe -s 40 < toy` (stops: no pair occurs twice after 17 merges).
const TOY_MERGES: &str = "a a|n e|l o|w e|ne w</w>|a t</w>|w i|t h|th e</w>|s t</w>|lo w</w>|\
a b</w>|ß a</w>|wi d|wid e|we st</w>|we r</w>|aa a</w>";

/// `subword-nmt learn-bpe -s 1000 --min-frequency 1 < toy` (48 merges).
const TOY_MERGES_MIN1: &str = "a a|n e|l o|w e|ne w</w>|a t</w>|w i|t h|th e</w>|s t</w>|\
lo w</w>|a b</w>|ß a</w>|wi d|wid e|we st</w>|we r</w>|aa a</w>|ö ü</w>|ä öü</w>|ä ö</w>|\
ß e</w>|wide st</w>|wide r</w>|wi t|wit h</w>|t r|tr a|tra ße</w>|s traße</w>|s at</w>|r e|\
re new</w>|o n</w>|ne west</w>|ne wer</w>|m at</w>|lo west</w>|lo wer</w>|h at</w>|c at</w>|\
b c</w>|b aa|baa ab</w>|aa aaa</w>|aa a|aaa a</w>|a bc</w>";

fn merges_of(spec: &str) -> Vec<(String, String)> {
    spec.split('|')
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
}

#[test]
fn learning_a_toy_corpus_gives_subword_nmts_merges() {
    let toy: Vec<&str> = TOY_CORPUS.lines().collect();
    let bpe = Bpe::learn_lines(&toy, 40, DEFAULT_MIN_FREQUENCY).unwrap();
    assert_eq!(bpe.merges(), merges_of(TOY_MERGES).as_slice());
    assert_eq!(bpe.version(), CodesVersion::V0_2);
    let bpe1 = Bpe::learn_lines(&toy, 1000, 1).unwrap();
    assert_eq!(bpe1.merges(), merges_of(TOY_MERGES_MIN1).as_slice());
    // A cap below what the corpus supports stops there.
    let five = Bpe::learn(&word_counts(&toy), 5, DEFAULT_MIN_FREQUENCY).unwrap();
    assert_eq!(five.merges(), &merges_of(TOY_MERGES)[..5]);

    // write_codes gives subword-nmt's file, and reading it back gives the same model.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("toy.codes");
    bpe1.write_codes(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let want: String = std::iter::once("#version: 0.2".to_string())
        .chain(TOY_MERGES_MIN1.split('|').map(str::to_string))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(text, want);
    let back = Bpe::read_codes(&path).unwrap();
    assert_eq!(back.merges(), bpe1.merges());
    assert_eq!(back.source(), Some(path.as_path()));

    assert!(Bpe::learn_lines(["a b c", "d"], 10, 2)
        .unwrap()
        .merges()
        .is_empty());
    let mut bad = HashMap::new();
    bad.insert("a b".to_string(), 3);
    assert!(matches!(
        Bpe::learn(&bad, 10, 2),
        Err(DataError::Invalid(_))
    ));
}

/// `(line, apply_bpe.py's BPE.process_line(line))` for the toy codes and for IWSLT's `code`.
const EDGE_LINES: [&str; 14] = [
    "",
    " ",
    "a",
    "x y",
    "  double  spaces  ",
    "trailing newline\n",
    "\r\nweird\r\n",
    "aaaaaaa baaab",
    "straße straßen",
    "lowest newest widest",
    "x</w>y a@@ b",
    "tab\tinside word",
    "ä öü äöü",
    "the cat sat on the mat",
];
const EDGE_TOY: [&str; 14] = [
    "",
    " ",
    "a",
    "x y",
    "  d@@ o@@ u@@ b@@ l@@ e s@@ p@@ a@@ c@@ e@@ s  ",
    "tra@@ i@@ l@@ i@@ n@@ g ne@@ w@@ l@@ i@@ n@@ e\n",
    "\r\nwe@@ i@@ r@@ d\r\n",
    "aa@@ aaaaa baaab",
    "straße s@@ tra@@ ß@@ e@@ n",
    "lowest newest widest",
    "x@@ <@@ /@@ w@@ >@@ y a@@ @@@ @ b",
    "t@@ a@@ b@@ \t@@ i@@ n@@ s@@ i@@ d@@ e w@@ o@@ r@@ d",
    "ä öü äöü",
    "the cat sat on the mat",
];
const EDGE_IWSLT: [&str; 14] = [
    "",
    " ",
    "a",
    "x y",
    "  double spaces  ",
    "tra@@ il@@ ing new@@ line\n",
    "\r\nweird\r\n",
    "a@@ a@@ a@@ a@@ a@@ a@@ a ba@@ a@@ ab",
    "straße straßen",
    "lo@@ west ne@@ west wi@@ dest",
    "x@@ <@@ /@@ w@@ >@@ y a@@ @@@ @ b",
    "tab@@ \t@@ inside word",
    "ä ö@@ ü ä@@ ö@@ ü",
    "the c@@ at sat on the m@@ at",
];

#[test]
fn edge_lines_segment_as_apply_bpe_does() {
    let toy = Bpe::learn_lines(TOY_CORPUS.lines(), 1000, 1).unwrap();
    let iw = Bpe::read_codes(iwslt().join("code")).unwrap();
    for (i, line) in EDGE_LINES.iter().enumerate() {
        assert_eq!(toy.apply_line(line), EDGE_TOY[i], "toy codes, {line:?}");
        assert_eq!(iw.apply_line(line), EDGE_IWSLT[i], "iwslt code, {line:?}");
        // Twice: the second answer comes from the cache.
        assert_eq!(
            iw.apply_line(line),
            EDGE_IWSLT[i],
            "iwslt code (cached), {line:?}"
        );
    }
    assert_eq!(iw.apply_word("straßen"), "straßen");
    assert_eq!(iw.apply_word("pyramid"), "pyrami@@ d");
    assert_eq!(iw.segment_word("pyramid"), vec!["pyrami", "d"]);
    assert_eq!(iw.apply_word(""), "");
    let iw = iw.with_separator("##");
    assert_eq!(iw.apply_line("that pyramid"), "that pyrami## d");
}

/// The de+en sentences of `train_samples` with the BPE removed: a real joint-BPE corpus.
fn joint_sample_corpus() -> Vec<String> {
    let dir = samples();
    let mut text = Vec::new();
    for name in ["first.de", "first.en"] {
        text.extend(lines(&dir.join(name)).iter().map(|l| remove_bpe(l)));
    }
    for (de, en) in read_tsv_pairs(&dir.join("sample.de+en")).unwrap() {
        text.push(remove_bpe(&de));
        text.push(remove_bpe(&en));
    }
    assert_eq!(text.len(), 17_600);
    text
}

#[test]
fn learning_on_real_text_gives_subword_nmts_codes_file() {
    let corpus = joint_sample_corpus();
    let counts = word_counts(&corpus);
    let tmp = tempfile::tempdir().unwrap();
    // (merges asked for, merges subword-nmt learned, FNV-1a and length of its codes file)
    for (asked, learned, hash, len) in [
        (3_000, 3_000, 0x976e_2de8_e2fc_6c4a_u64, 25_462),
        (30_000, 25_582, 0xa0ae_4d98_9690_acd6, 290_679),
    ] {
        let bpe = Bpe::learn(&counts, asked, DEFAULT_MIN_FREQUENCY).unwrap();
        assert_eq!(bpe.merges().len(), learned);
        assert_eq!(
            &bpe.merges()[..4],
            &merges_of("e n</w>|t h|e r|i n")[..],
            "first merges"
        );
        let path = tmp.path().join(format!("codes.{asked}"));
        bpe.write_codes(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            (fnv1a(&bytes), bytes.len()),
            (hash, len),
            "{asked} merges: codes differ from `subword-nmt learn-bpe -s {asked}`"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Codes-file errors

#[test]
fn codes_file_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.codes");
    let e = Bpe::read_codes(&missing).unwrap_err();
    assert!(
        matches!(&e, DataError::Missing { path, .. } if path == &missing),
        "{e}"
    );
    assert!(e.to_string().contains("learn-bpe"), "{e}");

    let cases: [(&[u8], usize, &str); 6] = [
        (
            b"#version: 0.3\na b\n",
            1,
            "unsupported codes version `0.3`",
        ),
        (b"#version 0.2\na b\n", 1, "bad header"),
        (b"#version: 0.2\na b\nc\nd e\n", 3, "exactly two symbols"),
        (b"#version: 0.2\na  b\n", 2, "exactly two symbols"),
        (b"#version: 0.2\na b\n\nc d\n", 3, "exactly two symbols"),
        (b"#version: 0.2\na b\nc\xff d\n", 3, "not valid UTF-8"),
    ];
    for (i, (text, line, needle)) in cases.into_iter().enumerate() {
        let p = write(tmp.path(), &format!("bad{i}.codes"), text);
        let e = Bpe::read_codes(&p).unwrap_err();
        match &e {
            DataError::Malformed { path, line: l, msg } => {
                assert_eq!((path, *l), (&p, line), "{e}");
                assert!(msg.contains(needle), "{e}");
            }
            other => panic!("case {i}: expected Malformed, got {other}"),
        }
        assert!(
            e.to_string().contains(&format!("bad{i}.codes:{line}:")),
            "{e}"
        );
    }

    // Accepted: version spelled 0.2.0, CRLF line ends, trailing blank lines, no merges.
    let p = write(
        tmp.path(),
        "ok.codes",
        b"#version: 0.2.0\r\na b\r\nab c</w>\r\n\n\n",
    );
    let b = Bpe::read_codes(&p).unwrap();
    assert_eq!(b.merges(), merges_of("a b|ab c</w>").as_slice());
    assert_eq!(b.apply_line("abc ab"), "abc a@@ b");
    let p = write(tmp.path(), "empty.codes", b"#version: 0.2\n");
    assert!(Bpe::read_codes(&p).unwrap().merges().is_empty());
    // No header: version 0.1, `</w>` a symbol of its own (checked with apply_bpe.py).
    let p = write(tmp.path(), "v01.codes", b"a b\nab c</w>\n");
    let b = Bpe::read_codes(&p).unwrap();
    assert_eq!(b.version(), CodesVersion::V0_1);
    assert_eq!(b.apply_line("abc abcc ab"), "ab@@ c ab@@ c@@ c ab");
}

// ---------------------------------------------------------------------------------------------
// Parallel files

#[test]
fn multi30k_gzip_splits_read_line_aligned() {
    let dir = multi30k();
    for (split, n) in [
        ("train", 29_000),
        ("val", 1_014),
        ("test_2016_flickr", 1_000),
    ] {
        let pairs = read_parallel(
            &dir.join(format!("{split}.de.gz")),
            &dir.join(format!("{split}.en.gz")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pairs.len(), n, "{split}");
    }
    let train = read_parallel(&dir.join("train.de.gz"), &dir.join("train.en.gz")).unwrap();
    assert_eq!(
        train[0],
        (
            "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.".to_string(),
            "Two young, White males are outside near many bushes.".to_string()
        )
    );
}

#[test]
fn iwslt_prepared_files_and_tsv_samples_read() {
    let dir = iwslt();
    let valid = read_parallel(&dir.join("valid.de"), &dir.join("valid.en")).unwrap();
    assert_eq!(valid.len(), 7_283);
    assert_eq!(valid[0].1, "it &apos;s that pyrami@@ d .");

    let s = samples();
    let first = read_parallel(&s.join("first.de"), &s.join("first.en")).unwrap();
    assert_eq!(first.len(), 4_600);
    let tsv = read_tsv_pairs(&s.join("sample.de+en")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tsv.len(), 4_200);
    assert!(tsv[0]
        .0
        .starts_with("sie kommen alle um diese zeit zurück ,"));
    assert!(tsv[0]
        .1
        .starts_with("they &apos;re all coming in at this time ,"));
}

#[test]
fn parallel_file_errors_name_files_and_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let de = write(t, "a.de", b"eins\nzwei\ndrei\n");
    let en = write(t, "a.en", b"one\ntwo\r\nthree");
    assert_eq!(
        read_parallel(&de, &en).unwrap()[1],
        ("zwei".to_string(), "two".to_string())
    );
    // gzip is recognised by its bytes, whatever the name.
    let gde = write(t, "a.de.gz", &gz(b"eins\nzwei\ndrei\n"));
    let gen = write(t, "b.en", &gz(b"one\ntwo\nthree\n"));
    assert_eq!(read_parallel(&gde, &gen).unwrap()[2].1, "three");

    let missing = t.join("missing.en");
    let e = read_parallel(&de, &missing).unwrap_err();
    assert!(
        matches!(&e, DataError::Missing { path, .. } if path == &missing),
        "{e}"
    );

    let short = write(t, "short.en", b"one\ntwo\n");
    let e = read_parallel(&de, &short).unwrap_err().to_string();
    for needle in ["a.de", "3 lines", "short.en", "2 lines"] {
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    }

    let hole = write(t, "hole.en", b"one\n \t \nthree\n");
    let e = read_parallel(&de, &hole).unwrap_err();
    match &e {
        DataError::Malformed { path, line, msg } => {
            assert_eq!((path, *line), (&hole, 2));
            assert!(
                msg.contains("empty sentence") && msg.contains("clean"),
                "{e}"
            );
        }
        other => panic!("expected Malformed, got {other}"),
    }
    let hole_gz = write(t, "hole.de.gz", &gz(b"eins\nzwei\n\n"));
    let e = read_parallel(&hole_gz, &de).unwrap_err();
    assert!(e.to_string().contains("hole.de.gz:3:"), "{e}");

    let latin1 = write(t, "latin1.en", b"one\ntwo\ncaf\xe9\n");
    let e = read_parallel(&de, &latin1).unwrap_err();
    assert!(matches!(&e, DataError::Malformed { line: 3, .. }), "{e}");
    assert!(
        e.to_string().contains("latin1.en:3: not valid UTF-8"),
        "{e}"
    );

    let broken_gz = write(t, "broken.gz", &gz(b"eins\nzwei\ndrei\n")[..20]);
    let e = read_parallel(&broken_gz, &en).unwrap_err();
    assert!(matches!(&e, DataError::Layout { .. }), "{e}");
    assert!(e.to_string().contains("gunzip"), "{e}");

    let empty_a = write(t, "empty.de", b"");
    let empty_b = write(t, "empty.en", b"");
    assert!(matches!(
        read_parallel(&empty_a, &empty_b),
        Err(DataError::Layout { .. })
    ));
}

#[test]
fn tsv_errors_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (i, (text, line, needle)) in [
        (&b"a\tb\nno tab here\n"[..], 2, "found 0 tabs"),
        (&b"a\tb\nc\td\te\n"[..], 2, "found 2 tabs"),
        (&b"a\t \n"[..], 1, "empty sentence on the target side"),
        (&b"\tb\n"[..], 1, "empty sentence on the source side"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = write(t, &format!("p{i}.tsv"), text);
        let e = read_tsv_pairs(&p).unwrap_err();
        assert!(
            matches!(&e, DataError::Malformed { line: l, .. } if *l == line),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains(&format!("p{i}.tsv:{line}:")), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Dictionary

fn sample_side(lang_col: usize) -> Vec<String> {
    let s = samples();
    let name = ["first.de", "first.en"][lang_col];
    let mut text = lines(&s.join(name));
    for (de, en) in read_tsv_pairs(&s.join("sample.de+en")).unwrap() {
        text.push(if lang_col == 0 { de } else { en });
    }
    text
}

#[test]
fn dictionary_on_train_samples_is_fairseqs() {
    let tmp = tempfile::tempdir().unwrap();
    // Sizes and `dict.<lang>.txt` hashes from fairseq 0.12.2's Dictionary
    // (add_file_to_dictionary over first.<lang> and the sample's <lang> column, then
    // finalize(threshold=0, nwords=-1, padding_factor=8) and save).
    for (col, lang, size, hash, bytes, madeup) in [
        (0, "de", 13_720, 0x4f7b_a220_b927_d354_u64, 139_194, 7),
        (1, "en", 10_640, 0xe4bc_acf4_150f_674f, 100_340, 4),
    ] {
        let text = sample_side(col);
        assert_eq!(text.len(), 8_800);
        let d = Dictionary::build(&text, 0, 8);
        assert_eq!(d.len(), size, "{lang}");
        assert_eq!(d.len() % 8, 0);
        assert_eq!(&d.symbols()[..4], ["<s>", "<pad>", "</s>", "<unk>"]);
        assert_eq!(
            (d.index("<s>"), d.index("<pad>"), d.index("</s>")),
            (BOS, PAD, EOS)
        );
        assert_eq!(d.index("<unk>"), UNK);
        assert_eq!(
            d.count(EOS),
            Some(8_801),
            "one </s> a line, plus fairseq's initial 1"
        );
        // Counts descend; equal counts are in code-point order; padding at the end.
        let body = &d.symbols()[4..d.len() - madeup];
        for w in body.windows(2) {
            let (a, b) = (d.index(&w[0]), d.index(&w[1]));
            let (ca, cb) = (d.count(a).unwrap(), d.count(b).unwrap());
            assert!(
                ca > cb || (ca == cb && w[0] < w[1]),
                "{lang}: {w:?} {ca} {cb}"
            );
        }
        for (k, s) in d.symbols()[d.len() - madeup..].iter().enumerate() {
            assert_eq!(s, &format!("madeupword{k:04}"));
        }

        let path = tmp.path().join(format!("dict.{lang}.txt"));
        d.write(&path).unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(
            (fnv1a(&written), written.len()),
            (hash, bytes),
            "{lang}: dict.{lang}.txt differs from fairseq's"
        );
        let back = Dictionary::read(&path).unwrap();
        assert_eq!(back.symbols(), d.symbols());
        for id in 4..d.len() as u32 {
            assert_eq!(back.count(id), d.count(id));
        }
    }

    // Every token of valid.en is in the English dictionary or maps to <unk>.
    let d = Dictionary::build(sample_side(1), 0, 8);
    let valid = lines(&iwslt().join("valid.en"));
    let (mut tokens, mut unknown) = (0, 0);
    for line in &valid {
        let ids = d.encode_line(line, true);
        let words: Vec<&str> = tokenize_line(line).collect();
        assert_eq!(ids.len(), words.len() + 1);
        assert_eq!(*ids.last().unwrap(), EOS);
        for (w, &id) in words.iter().zip(&ids) {
            tokens += 1;
            if d.contains(w) {
                assert_eq!(d.symbol(id), *w);
            } else {
                assert_eq!(id, UNK, "{w}");
                unknown += 1;
            }
        }
    }
    assert_eq!(
        (tokens, unknown),
        (171_339, 791),
        "valid.en tokens, and those fairseq's dict.en.txt lacks"
    );
}

#[test]
fn dictionary_threshold_padding_encode_decode() {
    let d = Dictionary::build(["b a c a", "a  b\tz", "<unk> z"], 2, 8);
    // a:3, b:2, z:2 (ties in code-point order), c:1 dropped; </s> counts 3 lines + 1.
    assert_eq!(
        d.symbols(),
        [
            "<s>",
            "<pad>",
            "</s>",
            "<unk>",
            "a",
            "b",
            "z",
            "madeupword0000"
        ]
    );
    assert_eq!(d.count(EOS), Some(4));
    assert_eq!(d.count(UNK), Some(2));
    assert_eq!(d.count(7), Some(0));
    assert_eq!(d.encode_line(" a c\u{a0}b ", true), vec![4, UNK, 5, EOS]);
    assert_eq!(d.encode_line("a", false), vec![4]);
    assert_eq!(d.decode(&[BOS, 4, UNK, 5, EOS, PAD, PAD]), "a <unk> b");
    assert_eq!(d.decode(&[4, 99]), "a <unk>");
    assert_eq!(d.symbol(99), "<unk>");
    assert_eq!(Dictionary::build(["x"], 0, 1).len(), 5);
    assert_eq!(Dictionary::build(["x"], 0, 0).len(), 5);
    assert_eq!(Dictionary::build(["x y"], 0, 3).len(), 6);
    // A madeupword already in the text is counted, not added twice.
    let d = Dictionary::build(["madeupword0000 madeupword0001 q"], 0, 8);
    assert_eq!(d.len(), 8);
    assert_eq!(
        &d.symbols()[4..],
        ["madeupword0000", "madeupword0001", "q", "madeupword0002"]
    );

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("train.en");
    let d = Dictionary::build(["a b"], 0, 8);
    assert_eq!(
        d.encode_line_strict("b a", true, &src, 7).unwrap(),
        vec![5, 4, EOS]
    );
    let e = d.encode_line_strict("a qq b", false, &src, 7).unwrap_err();
    match &e {
        DataError::Malformed { path, line, msg } => {
            assert_eq!((path, *line), (&src, 7));
            assert!(msg.contains("`qq` (word 2)"), "{e}");
        }
        other => panic!("expected Malformed, got {other}"),
    }
    assert!(e.to_string().starts_with(&format!("{}:7:", src.display())));
}

#[test]
fn dictionary_file_errors_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let missing = t.join("dict.xx.txt");
    let e = Dictionary::read(&missing).unwrap_err();
    assert!(
        matches!(&e, DataError::Missing { path, .. } if path == &missing),
        "{e}"
    );
    assert!(e.to_string().contains("fairseq-preprocess"), "{e}");

    for (i, (text, line, needle)) in [
        (&b"the 10\nof\n"[..], 2, "expected `<token> <count>"),
        (&b"the 10\nof ten\n"[..], 2, "count `ten` of `of`"),
        (&b"the 10\nof -1\n"[..], 2, "count `-1`"),
        (&b"the 10\nof 3\nthe 2\n"[..], 3, "duplicate token `the`"),
        (&b"<unk> 5\n"[..], 1, "duplicate token `<unk>`"),
        (&b"the 10\n\nof 3\n"[..], 2, "expected `<token> <count>"),
        (&b"the 10\nof 3 #fairseq:overwrite\n"[..], 0, ""),
    ]
    .into_iter()
    .enumerate()
    {
        let p = write(t, &format!("d{i}.txt"), text);
        let r = Dictionary::read(&p);
        if line == 0 {
            let d = r.unwrap();
            assert_eq!(d.len(), 6);
            continue;
        }
        let e = r.unwrap_err();
        assert!(
            matches!(&e, DataError::Malformed { line: l, .. } if *l == line),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains(&format!("d{i}.txt:{line}:")), "{e}");
    }

    // Tokens may contain spaces (everything before the last one), overwrite re-points a token,
    // and trailing whitespace / CRLF are ignored.
    let p = write(
        t,
        "dict.ok.txt",
        b"a b 4\r\nc 3  \n<unk> 2 #fairseq:overwrite\n",
    );
    let d = Dictionary::read(&p).unwrap();
    assert_eq!(&d.symbols()[4..], ["a b", "c", "<unk>"]);
    assert_eq!((d.index("a b"), d.index("c"), d.count(5)), (4, 5, Some(3)));
    assert_eq!(d.get("<unk>"), Some(6));
}
