//! CLIP's tokenizer against open_clip's own: ids for 24 varied strings, `tokenize()` rows
//! (padding, truncation with EOT forced last, argmax pooling position), decoding, and the
//! vocabulary read from `shared/data/clip/bpe_simple_vocab_16e6.txt.gz`.
//!
//! The expected ids were produced by open_clip_torch 3.3.0 (`open_clip/tokenizer.py`,
//! `SimpleTokenizer()` with its bundled vocabulary, byte-identical to the shared file; ftfy
//! 6.3.1, regex 2026.11.19, Python 3.11) by loading tokenizer.py alone through importlib and
//! calling `_tokenizer.encode(s)`, `tokenize(texts, 77)`, `tokenize(texts, 5)`,
//! `.argmax(-1)` and `_tokenizer.decode(ids)`.
//!
//! Unlike the skipping real-data tests, a missing vocabulary fails here: the file is small,
//! always in shared/data, and a skipped tokenizer test would hide wrong ids from every CLIP
//! run.

use std::io::Write;
use std::path::PathBuf;

use kiln_data::clip_bpe::{
    clean, eot_position, ClipTokenizer, CONTEXT_LENGTH, EOT, SOT, VOCAB_FILE, VOCAB_SIZE,
};
use kiln_data::DataError;

fn vocab_path() -> PathBuf {
    let root = kiln_core::paths::shared_data().unwrap_or_else(|| {
        panic!(
            "shared/data not found (beside the checkout, or KILN_SHARED_DATA): CLIP's tokenizer \
             test needs shared/data/clip/{VOCAB_FILE}"
        )
    });
    let path = root.join("clip").join(VOCAB_FILE);
    assert!(
        path.is_file(),
        "{} is missing: copy open_clip's {VOCAB_FILE} (src/open_clip/) there",
        path.display()
    );
    path
}

fn tokenizer() -> ClipTokenizer {
    ClipTokenizer::from_file(vocab_path()).expect("CLIP vocabulary loads")
}

const LONG: &str = "a very long caption about a busy city street at night with many people \
walking, cars driving past tall buildings, bright neon signs reflecting on the wet pavement, a \
street vendor selling hot food from a small cart, a cyclist waiting at the red light, and a dog \
sitting patiently next to its owner on a wooden bench under a lamp post, while a street musician \
plays a saxophone for a small crowd of tourists taking photos with their phones";

/// `(text, open_clip SimpleTokenizer().encode(text))`.
const CASES: &[(&str, &[u32])] = &[
    // plain English, final punctuation
    ("a photo of a cat.", &[320, 1125, 539, 320, 2368, 269]),
    // uppercase (lowered), runs of punctuation kept as one piece
    ("Hello, World!!! How are you?", &[3306, 267, 1002, 995, 829, 631, 592, 286]),
    // 'm 'll 've 't 'd split off by the pre-tokenizer
    ("I'm sure they'll say we've done it; don't you think he'd've?", &[328, 880, 1650, 889, 1342, 1451, 649, 1200, 1700, 585, 282, 847, 713, 592, 1331, 797, 1896, 1200, 286]),
    // digits are single tokens; '.' and ',' separate
    ("It costs 3.5 dollars, or 10,000 yen in 2024.", &[585, 7628, 274, 269, 276, 10669, 267, 541, 272, 271, 267, 271, 271, 271, 17960, 530, 273, 271, 273, 275, 269]),
    // Latin letters with accents (multi-byte UTF-8)
    ("caf\u{e9} na\u{ef}ve r\u{e9}sum\u{e9} Z\u{fc}rich", &[15304, 1097, 35689, 563, 29106, 7054, 4166, 89, 6522, 4021]),
    // CJK and kana: byte-level pieces
    ("\u{6771}\u{4eac}\u{30bf}\u{30ef}\u{30fc}\u{306e}\u{5199}\u{771f}", &[48338, 21078, 105, 34941, 2429, 107, 13457, 21575, 44653, 33440, 509]),
    // emoji and a variation selector (non-letter run)
    ("a dog \u{1f436} playing with a ball \u{26bd}\u{fe0f}", &[320, 1929, 10631, 1629, 593, 320, 1069, 6768]),
    // HTML entities: named, numeric, hex
    ("a &amp; b &lt;3 &quot;quoted&quot; &#39;x&#39; &#x263A; &eacute;", &[320, 261, 321, 283, 274, 257, 27706, 257, 262, 343, 262, 8703, 4166]),
    // leading/trailing/inner whitespace, tab, newlines
    ("   lots \u{9} of\u{a}\u{a}  whitespace   ", &[2958, 539, 4699, 2138]),
    // all caps
    ("A PHOTO OF THE EIFFEL TOWER AT NIGHT", &[320, 1125, 539, 518, 29720, 4730, 536, 930]),
    // empty string
    ("", &[]),
    // ftfy: curly quotes uncurled (don't splits as don + 't), ligature fi
    ("don\u{2019}t \u{201c}curly\u{201d} quotes \u{2014} \u{fb01}ne", &[847, 713, 257, 20795, 257, 5808, 2005, 3797]),
    // ftfy: fullwidth letters and ideographic space
    ("\u{ff2c}\u{ff2f}\u{ff35}\u{ff24}\u{3000}\u{ff2e}\u{ff2f}\u{ff29}\u{ff33}\u{ff25}\u{ff33}", &[7464, 31575]),
    // ftfy: NFC (e + combining acute = é)
    ("cafe\u{301}", &[15304]),
    // special-token names in the text (case-insensitive after lowering)
    ("<start_of_text>hi<END_OF_TEXT>", &[49406, 1883, 49407]),
    // ftfy unescapes to a fixed point, then html.unescape twice; &amp without ;
    ("&amp;amp;amp; &ampfoo", &[261, 261, 23435]),
    // a '<' turns ftfy's unescaping off for the line: only html.unescape's two passes
    ("x<y &amp;amp;amp; z", &[343, 283, 344, 261, 6259, 282, 345]),
    // Cyrillic, Greek final sigma on lowering, Devanagari combining marks
    ("\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442} \u{43c}\u{438}\u{440} \u{39f}\u{394}\u{39f}\u{3a3} \u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}", &[26302, 16370, 29503, 110, 22176, 141, 480, 38018, 16701, 141, 478, 138, 123, 138, 112, 138, 123, 139, 480, 3124, 101, 48254, 28505, 19389, 27263, 25130]),
    // ftfy: NUL and U+001C removed, C1 quotes as Windows-1252, ANSI escapes; U+200B kept
    ("tab\u{0}null\u{200b}zwsp\u{1c}fs \u{93}c1\u{94} \u{1b}[1mbold\u{1b}[0m", &[2648, 47376, 9844, 89, 86, 588, 3854, 257, 322, 272, 257, 8911]),
    // Turkish dotted/dotless i: İ lowers to i + U+0307
    ("\u{130}stanbul'da \u{131}l\u{131}k bir g\u{fc}n; \u{15e}EH\u{130}R \u{e7}ok g\u{fc}zel.", &[328, 16384, 11231, 1896, 320, 18562, 75, 18562, 330, 16284, 31907, 333, 282, 21254, 68, 1883, 16384, 337, 10067, 2481, 31907, 12027, 269]),
    // French: curly apostrophes, guillemets, ellipsis
    ("L\u{2019}\u{e9}t\u{e9} dernier, nous sommes all\u{e9}s \u{e0} Paris\u{2026} c\u{2019}\u{e9}tait \u{ab} magnifique \u{bb} !", &[331, 262, 3459, 39694, 839, 13014, 267, 29485, 734, 3029, 813, 20507, 21259, 3445, 959, 322, 262, 3459, 45325, 14434, 24297, 701, 2319, 7599, 256]),
    // entities that decode to markup; &amp;nbsp; decoded twice to U+00A0 (whitespace)
    ("&lt;b&gt;bold&lt;/b&gt; and &amp;nbsp; entities &copy; 2024 &trade;", &[283, 321, 285, 8911, 34308, 321, 285, 537, 38134, 5811, 273, 271, 273, 275, 11675]),
    // U+0345: Python's case-insensitive regex matches it with nothing
    ("a\u{345}b .\u{345}.", &[320, 321, 269, 269]),
    // > 77 tokens: truncation keeps 76 and forces EOT last
    (LONG, &[320, 1070, 1538, 11327, 781, 320, 4354, 1305, 2012, 536, 930, 593, 1346, 1047, 3941, 267, 3346, 4161, 2729, 7771, 8866, 267, 4852, 13919, 4659, 19700, 525, 518, 6682, 27669, 267, 320, 2012, 21261, 4396, 2069, 1559, 633, 320, 2442, 13065, 267, 320, 20686, 2680, 536, 518, 736, 1395, 267, 537, 320, 1929, 4919, 22980, 1131, 531, 902, 5019, 525, 320, 9057, 8771, 1798, 320, 10725, 1549, 267, 1519, 320, 2012, 11179, 5134, 320, 32296, 556, 320, 2442, 4570, 539, 15546, 2019, 2479, 593, 911, 6351]),
];

/// open_clip `tokenize(LONG, 77)[0]`: 86 BPE ids cut to 75, then EOT.
const LONG_ROW: [i64; 77] = [
    49406, 320, 1070, 1538, 11327, 781, 320, 4354, 1305, 2012, 536, 930, 593, 1346, 1047, 3941,
    267, 3346, 4161, 2729, 7771, 8866, 267, 4852, 13919, 4659, 19700, 525, 518, 6682, 27669, 267,
    320, 2012, 21261, 4396, 2069, 1559, 633, 320, 2442, 13065, 267, 320, 20686, 2680, 536, 518,
    736, 1395, 267, 537, 320, 1929, 4919, 22980, 1131, 531, 902, 5019, 525, 320, 9057, 8771, 1798,
    320, 10725, 1549, 267, 1519, 320, 2012, 11179, 5134, 320, 32296, 49407,
];

/// open_clip `tokenize([c for c in CASES], 77).argmax(-1)`.
const ARGMAX: [usize; 24] = [
    7, 9, 20, 22, 11, 12, 9, 14, 5, 9, 1, 9, 3, 2, 3, 4, 8, 27, 13, 24, 26, 16, 5, 76,
];

#[test]
fn vocabulary_has_clips_49408_tokens() {
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), VOCAB_SIZE);
    assert_eq!(VOCAB_SIZE, 49408);
    assert_eq!((SOT, EOT), (49406, 49407));
    assert_eq!(tok.token(SOT), Some("<start_of_text>"));
    assert_eq!(tok.token(EOT), Some("<end_of_text>"));
    // open_clip's decoder at a few ids: bytes in bytes_to_unicode order, then word-final
    // bytes, then merges in file order.
    for (id, want) in [
        (0, "!"),
        (255, "\u{143}"),
        (256, "!</w>"),
        (511, "\u{143}</w>"),
        (512, "in"),
        (49405, "jekyll</w>"),
    ] {
        assert_eq!(tok.token(id), Some(want), "id {id}");
    }
    assert_eq!(tok.token(49408), None);
}

#[test]
fn encode_matches_open_clip() {
    let tok = tokenizer();
    assert_eq!(CASES.len(), 24);
    for &(text, want) in CASES {
        assert_eq!(
            tok.encode(text),
            want,
            "{text:?} (cleaned: {:?})",
            clean(text)
        );
    }
    // The cache must not change a second pass.
    for &(text, want) in CASES {
        assert_eq!(tok.encode(text), want, "{text:?}, second pass");
    }
}

#[test]
fn tokenize_matches_open_clip() {
    let tok = tokenizer();
    let texts: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    let rows = tok.tokenize(&texts, CONTEXT_LENGTH);
    assert_eq!(rows.len(), texts.len() * CONTEXT_LENGTH);
    for (i, (row, &(text, ids))) in rows.chunks(CONTEXT_LENGTH).zip(CASES).enumerate() {
        let mut want: Vec<i64> = std::iter::once(SOT)
            .chain(ids.iter().copied())
            .chain(std::iter::once(EOT))
            .map(i64::from)
            .collect();
        if want.len() > CONTEXT_LENGTH {
            want = LONG_ROW.to_vec();
        }
        want.resize(CONTEXT_LENGTH, 0);
        assert_eq!(row, &want[..], "{text:?}");
        assert_eq!(eot_position(row), ARGMAX[i], "{text:?}");
    }
    let long = tok.tokenize(&[LONG], CONTEXT_LENGTH);
    assert_eq!(long, LONG_ROW);
    assert_eq!(long[CONTEXT_LENGTH - 1], i64::from(EOT));
    assert_eq!(eot_position(&long), CONTEXT_LENGTH - 1);
}

#[test]
fn short_context_truncates_like_open_clip() {
    let tok = tokenizer();
    // open_clip tokenize(["a photo of a cat.", "hi"], context_length=5)
    assert_eq!(
        tok.tokenize(&["a photo of a cat.", "hi"], 5),
        [49406, 320, 1125, 539, 49407, 49406, 1883, 49407, 0, 0]
    );
    assert_eq!(tok.tokenize(&["a photo"], 1), [49407]);
    assert!(tok.tokenize::<&str>(&[], 77).is_empty());
}

#[test]
fn decode_matches_open_clip_and_round_trips() {
    let tok = tokenizer();
    let ids = |name: &str| -> &[u32] { CASES.iter().find(|c| c.0.starts_with(name)).unwrap().1 };
    // open_clip _tokenizer.decode(...)
    assert_eq!(
        tok.decode(ids("I'm sure")),
        "i 'm sure they 'll say we 've done it ; don 't you think he 'd 've ? "
    );
    assert_eq!(
        tok.decode(ids("caf\u{e9}")),
        "caf\u{e9} na\u{ef}ve r\u{e9}sum\u{e9} z\u{fc}rich "
    );
    assert_eq!(
        tok.decode(ids("a dog")),
        "a dog \u{1f436} playing with a ball \u{26bd}\u{fe0f} "
    );
    assert_eq!(tok.decode(ids("<start")), "<start_of_text>hi <end_of_text>");
    let row: Vec<u32> = tok.tokenize(&["a photo of a cat."], 77)[..9]
        .iter()
        .map(|&v| v as u32)
        .collect();
    assert_eq!(
        tok.decode(&row),
        "<start_of_text>a photo of a cat . <end_of_text>!"
    );
    // Bytes that are not UTF-8 on their own: U+FFFD, as Python's errors="replace".
    assert_eq!(
        tok.decode(&[49406, 0, 255, 256, 511, 49407]),
        "<start_of_text>!\u{fffd}! \u{fffd} <end_of_text>"
    );
    assert_eq!(tok.decode(&[163, 164]), "\u{fffd}\u{fffd}");
    // Decoding gives the cleaned text split into pieces, which encodes to the same ids.
    for &(text, want) in CASES {
        assert_eq!(tok.encode(&tok.decode(want)), want, "{text:?}");
    }
}

#[test]
fn bad_vocabulary_files_say_which_file_and_why() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join(VOCAB_FILE);
    let err = ClipTokenizer::from_file(&missing).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, "#version: 0.2\ni n\n").unwrap();
    let err = ClipTokenizer::from_file(&plain).unwrap_err();
    assert!(err.to_string().contains("plain.txt"), "{err}");
    assert!(err.to_string().contains("gunzip"), "{err}");

    let short = dir.path().join("short.txt.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&short).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(b"#version: 0.2\ni n\nt h\n").unwrap();
    gz.finish().unwrap();
    let err = ClipTokenizer::from_file(&short).unwrap_err();
    assert!(matches!(err, DataError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("short.txt.gz"), "{err}");
    assert!(err.to_string().contains("48894 merges"), "{err}");

    let shared = ClipTokenizer::from_shared(vocab_path().parent().unwrap().parent().unwrap());
    assert_eq!(shared.unwrap().vocab_size(), VOCAB_SIZE);
}
