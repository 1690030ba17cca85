//! kiln's BLEU against the reference implementations: sacreBLEU 2.4.3 (corpus and sentence BLEU,
//! its 13a tokenizer, every smoothing) and fairseq 0.12.2's tokenized BLEU (`bleu.Scorer`, its
//! C counter `libbleu.cpp` compiled and called through ctypes). Every expected value was printed
//! by `tests/fixtures/mt_eval_expected.py` (sacrebleu 2.4.3, sacremoses 0.2.0, Python 3.11);
//! rerun it to regenerate. Statistics must match exactly, scores to 1e-9 (they agree to the
//! last bit on x86-64 Linux). The IWSLT14 case needs `shared/data/iwslt14` and fails without it.

use std::collections::HashMap;
use std::path::PathBuf;

use kiln_data::bleu::{
    corpus_bleu, corpus_bleu_with, sentence_bleu, tokenize_13a, tokenized_bleu, BleuConfig,
    BleuScore, FairseqBleu, FairseqSpecials, Smooth, Tokenize, SACREBLEU_VERSION,
};
use kiln_data::detok::{detokenize, Lang};
use kiln_data::DataError;

/// sacreBLEU's numbers for one corpus score.
struct Want {
    score: f64,
    counts: &'static [u64],
    totals: &'static [u64],
    precisions: &'static [f64],
    bp: f64,
    sys_len: u64,
    ref_len: u64,
}

/// fairseq's numbers: `bleu.Scorer`'s statistics and `result_string()`.
struct Fq {
    score: f64,
    matches: [u64; 4],
    counts: [u64; 4],
    precisions: [f64; 4],
    bp: f64,
    sys_len: u64,
    ref_len: u64,
    line: &'static str,
}

const TOL: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL
}

/// `add_k`: sacreBLEU's add-k smoothing reports counts and totals of orders >= 2 with `k`
/// added; kiln reports them raw.
fn check(name: &str, got: &BleuScore, want: &Want, add_k: u64) {
    let shift = |v: &[u64]| -> Vec<u64> {
        v.iter()
            .enumerate()
            .map(|(i, &c)| if i == 0 { c } else { c + add_k })
            .collect()
    };
    assert_eq!(shift(&got.counts), want.counts, "{name}: counts");
    assert_eq!(shift(&got.totals), want.totals, "{name}: totals");
    assert_eq!(
        (got.sys_len, got.ref_len),
        (want.sys_len, want.ref_len),
        "{name}: lengths"
    );
    assert_eq!(got.precisions.len(), want.precisions.len(), "{name}");
    for (n, (g, w)) in got.precisions.iter().zip(want.precisions).enumerate() {
        assert!(close(*g, *w), "{name}: precision {}: {g} vs {w}", n + 1);
    }
    assert!(
        close(got.bp, want.bp),
        "{name}: bp {} vs {}",
        got.bp,
        want.bp
    );
    assert!(
        close(got.score, want.score),
        "{name}: BLEU {} vs sacreBLEU {}",
        got.score,
        want.score
    );
}

fn check_fq(name: &str, got: &kiln_data::bleu::TokenizedBleu, want: &Fq) {
    assert_eq!(got.matches, want.matches, "{name}: matches");
    assert_eq!(got.counts, want.counts, "{name}: counts");
    assert_eq!(
        (got.sys_len, got.ref_len),
        (want.sys_len, want.ref_len),
        "{name}: lengths"
    );
    for n in 0..4 {
        assert!(
            close(got.precisions[n], want.precisions[n]),
            "{name}: precision {}",
            n + 1
        );
    }
    assert!(close(got.bp, want.bp), "{name}: bp");
    assert!(
        close(got.score, want.score),
        "{name}: BLEU4 {} vs fairseq {}",
        got.score,
        want.score
    );
    assert_eq!(got.result_string(), want.line, "{name}");
}

/// The fixture script's toy corpus (hypothesis, reference).
const TOY: [(&str, &str); 13] = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    (
        "He said, \"It's 3.5 times bigger than in 1990-2000!\"",
        "He said: \"It's 3.5 times larger than in 1990-2000!\"",
    ),
    ("", "Nothing was translated here."),
    (
        "Prices rose by 1,000 dollars (about 5%) in Q3.",
        "Prices rose by $1,000 (about 5 %) in Q3.",
    ),
    ("green ideas sleep furiously", "colorless green ideas sleep"),
    (
        "She isn't here &amp; he &quot;left&quot; at 10:30 a.m.",
        "She is not here & he \"left\" at 10:30 a.m.",
    ),
    ("NEW YORK is a Big City", "New York is a big city"),
    (
        "E-mail me at foo@bar.com or call +1 (555) 010-9999.",
        "Email me at foo@bar.com or call +1 (555) 010-9999.",
    ),
    (
        "<skipped> the results were good , really good .",
        "The results were good, really good.",
    ),
    ("It costs €5.99 — cheap!", "It costs €5.99 - cheap!"),
    (
        "A line with trailing space \t ",
        "A line with  trailing space",
    ),
    (
        "a self-\ncontained unit, 2.-3. place",
        "a selfcontained unit, 2.- 3. place",
    ),
    ("ΟΔΟΣ Athens &lt;b&gt;", "οδος athens <b>"),
];
/// A second reference stream.
const REF2: [&str; 13] = [
    "A cat sat on the mat.",
    "He said: \"It is 3.5 times bigger than in 1990-2000!\"",
    "Nothing got translated.",
    "Prices went up by 1,000 dollars (about 5%) in Q3.",
    "green ideas sleep furiously",
    "She isn't here and he left at 10:30 a.m.",
    "NEW YORK is a big city",
    "E-mail me at foo@bar.com or call +1 (555) 010-9999.",
    "the results were good, really good.",
    "It costs €5.99, cheap!",
    "A line with trailing space",
    "a self-contained unit, 2.-3. place",
    "ΟΔΟΣ Athens <b>",
];

/// Pairs without any 4-gram match between them.
const NO4: [usize; 2] = [4, 6];

/// Hypotheses under four tokens.
const SHORT: [(&str, &str); 2] = [("Hello there!", "Hello there, friend!"), ("Yes.", "Yes.")];

/// Repeated words (hypothesis, reference 1, reference 2).
const REPEATS: [(&str, &str, &str); 2] = [
    (
        "the the the cat sat",
        "the cat sat down",
        "the dog sat on it now",
    ),
    ("a a b b", "a b", "b a b"),
];

/// Line-final hyphens (hypothesis, reference).
const RSTRIP: [(&str, &str); 2] = [
    ("it is self-\n", "it is self"),
    ("trailing dash -\n", "trailing dash"),
];

fn toy_hyps() -> Vec<&'static str> {
    TOY.iter().map(|p| p.0).collect()
}

fn toy_refs() -> Vec<&'static str> {
    TOY.iter().map(|p| p.1).collect()
}

fn toy(config: &BleuConfig) -> BleuScore {
    corpus_bleu_with(&toy_hyps(), &[toy_refs()], config).unwrap()
}

// default: BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const DEFAULT: Want = Want {
    score: 69.60443281073647,
    counts: &[98, 79, 62, 49],
    totals: &[113, 101, 89, 77],
    precisions: &[
        86.72566371681415,
        78.21782178217822,
        69.66292134831461,
        63.63636363636363,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// smooth_none: BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:none|version:2.4.3
const SMOOTH_NONE: Want = Want {
    score: 69.60443281073647,
    counts: &[98, 79, 62, 49],
    totals: &[113, 101, 89, 77],
    precisions: &[
        86.72566371681415,
        78.21782178217822,
        69.66292134831461,
        63.63636363636363,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// smooth_floor: BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:2.4.3
const SMOOTH_FLOOR: Want = Want {
    score: 69.60443281073647,
    counts: &[98, 79, 62, 49],
    totals: &[113, 101, 89, 77],
    precisions: &[
        86.72566371681415,
        78.21782178217822,
        69.66292134831461,
        63.63636363636363,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// smooth_floor_0_5: BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.50]|version:2.4.3
const SMOOTH_FLOOR_0_5: Want = Want {
    score: 69.60443281073647,
    counts: &[98, 79, 62, 49],
    totals: &[113, 101, 89, 77],
    precisions: &[
        86.72566371681415,
        78.21782178217822,
        69.66292134831461,
        63.63636363636363,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// smooth_add_k: BLEU = 69.86 86.7/78.4/70.0/64.1 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[1.00]|version:2.4.3
const SMOOTH_ADD_K: Want = Want {
    score: 69.8633689394125,
    counts: &[98, 80, 63, 50],
    totals: &[113, 102, 90, 78],
    precisions: &[86.72566371681415, 78.43137254901961, 70.0, 64.1025641025641],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// smooth_add_k_2: BLEU = 70.12 86.7/78.6/70.3/64.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[2.00]|version:2.4.3
const SMOOTH_ADD_K_2: Want = Want {
    score: 70.11582932722114,
    counts: &[98, 81, 64, 51],
    totals: &[113, 103, 91, 79],
    precisions: &[
        86.72566371681415,
        78.64077669902913,
        70.32967032967034,
        64.55696202531645,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// lowercase: BLEU = 76.47 92.9/85.1/77.5/71.4 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:2.4.3
const LOWERCASE: Want = Want {
    score: 76.47184130907183,
    counts: &[105, 86, 69, 55],
    totals: &[113, 101, 89, 77],
    precisions: &[
        92.92035398230088,
        85.14851485148515,
        77.52808988764045,
        71.42857142857143,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// tok_none: BLEU = 38.10 66.2/45.6/33.9/22.7 (BP = 0.975 ratio = 0.976 hyp_len = 80 ref_len = 82)
//   signature: nrefs:1|case:mixed|eff:no|tok:none|smooth:exp|version:2.4.3
const TOK_NONE: Want = Want {
    score: 38.100487122244836,
    counts: &[53, 31, 19, 10],
    totals: &[80, 68, 56, 44],
    precisions: &[
        66.25,
        45.588235294117645,
        33.92857142857143,
        22.727272727272727,
    ],
    bp: 0.9753099120283327,
    sys_len: 80,
    ref_len: 82,
};
// effective_order: BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.4.3
const EFFECTIVE_ORDER: Want = Want {
    score: 69.60443281073647,
    counts: &[98, 79, 62, 49],
    totals: &[113, 101, 89, 77],
    precisions: &[
        86.72566371681415,
        78.21782178217822,
        69.66292134831461,
        63.63636363636363,
    ],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// order_2: BLEU = 77.41 86.7/78.2 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const ORDER_2: Want = Want {
    score: 77.41470743815265,
    counts: &[98, 79],
    totals: &[113, 101],
    precisions: &[86.72566371681415, 78.21782178217822],
    bp: 0.9399327934020557,
    sys_len: 113,
    ref_len: 120,
};
// two_refs: BLEU = 86.54 96.5/94.1/88.8/83.1 (BP = 0.957 ratio = 0.958 hyp_len = 113 ref_len = 118)
//   signature: nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const TWO_REFS: Want = Want {
    score: 86.53714935098253,
    counts: &[109, 95, 79, 64],
    totals: &[113, 101, 89, 77],
    precisions: &[
        96.46017699115045,
        94.05940594059406,
        88.76404494382022,
        83.11688311688312,
    ],
    bp: 0.9567168655138897,
    sys_len: 113,
    ref_len: 118,
};
// no4_exp: BLEU = 25.00 50.0/37.5/16.7/12.5 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const NO4_EXP: Want = Want {
    score: 25.000000000000007,
    counts: &[5, 3, 1, 0],
    totals: &[10, 8, 6, 4],
    precisions: &[50.0, 37.5, 16.666666666666668, 12.5],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// no4_none: BLEU = 0.00 50.0/37.5/16.7/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:none|version:2.4.3
const NO4_NONE: Want = Want {
    score: 0.0,
    counts: &[5, 3, 1, 0],
    totals: &[10, 8, 6, 4],
    precisions: &[50.0, 37.5, 16.666666666666668, 0.0],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// no4_floor: BLEU = 16.72 50.0/37.5/16.7/2.5 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:2.4.3
const NO4_FLOOR: Want = Want {
    score: 16.71850762441056,
    counts: &[5, 3, 1, 0],
    totals: &[10, 8, 6, 4],
    precisions: &[50.0, 37.5, 16.666666666666668, 2.5],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// no4_add_k: BLEU = 33.57 50.0/44.4/28.6/20.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[1.00]|version:2.4.3
const NO4_ADD_K: Want = Want {
    score: 33.56891925037239,
    counts: &[5, 4, 2, 1],
    totals: &[10, 9, 7, 5],
    precisions: &[50.0, 44.44444444444444, 28.571428571428573, 20.0],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// no4_floor_0_3: BLEU = 22.00 50.0/37.5/16.7/7.5 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.30]|version:2.4.3
const NO4_FLOOR_0_3: Want = Want {
    score: 22.00279341983484,
    counts: &[5, 3, 1, 0],
    totals: &[10, 8, 6, 4],
    precisions: &[50.0, 37.5, 16.666666666666668, 7.5],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// no4_add_k_3: BLEU = 47.74 50.0/54.5/44.4/42.9 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[3.00]|version:2.4.3
const NO4_ADD_K_3: Want = Want {
    score: 47.74108847934616,
    counts: &[5, 6, 4, 3],
    totals: &[10, 11, 9, 7],
    precisions: &[
        50.0,
        54.54545454545455,
        44.44444444444444,
        42.857142857142854,
    ],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// no4_effective: BLEU = 25.00 50.0/37.5/16.7/12.5 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
//   signature: nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.4.3
const NO4_EFFECTIVE: Want = Want {
    score: 25.000000000000007,
    counts: &[5, 3, 1, 0],
    totals: &[10, 8, 6, 4],
    precisions: &[50.0, 37.5, 16.666666666666668, 12.5],
    bp: 1.0,
    sys_len: 10,
    ref_len: 10,
};
// repeats_want: BLEU = 31.24 66.7/42.9/20.0/16.7 (BP = 1.000 ratio = 1.286 hyp_len = 9 ref_len = 7)
//   signature: nrefs:2|case:mixed|eff:no|tok:none|smooth:exp|version:2.4.3
const REPEATS_WANT: Want = Want {
    score: 31.239399369202552,
    counts: &[6, 3, 1, 0],
    totals: &[9, 7, 5, 3],
    precisions: &[
        66.66666666666667,
        42.857142857142854,
        20.0,
        16.666666666666668,
    ],
    bp: 1.0,
    sys_len: 9,
    ref_len: 7,
};
// rstrip_want: BLEU = 0.00 66.7/50.0/25.0/0.0 (BP = 1.000 ratio = 1.200 hyp_len = 6 ref_len = 5)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const RSTRIP_WANT: Want = Want {
    score: 0.0,
    counts: &[4, 2, 0, 0],
    totals: &[6, 4, 2, 0],
    precisions: &[66.66666666666667, 50.0, 25.0, 0.0],
    bp: 1.0,
    sys_len: 6,
    ref_len: 5,
};
// short_not_effective: BLEU = 0.00 100.0/66.7/50.0/0.0 (BP = 0.670 ratio = 0.714 hyp_len = 5 ref_len = 7)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const SHORT_NOT_EFFECTIVE: Want = Want {
    score: 0.0,
    counts: &[5, 2, 0, 0],
    totals: &[5, 3, 1, 0],
    precisions: &[100.0, 66.66666666666667, 50.0, 0.0],
    bp: 0.6703200460356393,
    sys_len: 5,
    ref_len: 7,
};
// short_effective: BLEU = 46.48 100.0/66.7/50.0/0.0 (BP = 0.670 ratio = 0.714 hyp_len = 5 ref_len = 7)
//   signature: nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.4.3
const SHORT_EFFECTIVE: Want = Want {
    score: 46.47739613420471,
    counts: &[5, 2, 0, 0],
    totals: &[5, 3, 1, 0],
    precisions: &[100.0, 66.66666666666667, 50.0, 0.0],
    bp: 0.6703200460356393,
    sys_len: 5,
    ref_len: 7,
};
// fq_toy: BLEU4 = 38.47, 65.4/45.6/33.9/22.7 (BP=0.988, ratio=0.988, syslen=81, reflen=82)
const FQ_TOY: Fq = Fq {
    score: 38.466039395609535,
    matches: [53, 31, 19, 10],
    counts: [81, 68, 56, 44],
    precisions: [
        0.654320987654321,
        0.45588235294117646,
        0.3392857142857143,
        0.22727272727272727,
    ],
    bp: 0.9877302162356105,
    sys_len: 81,
    ref_len: 82,
    line: "BLEU4 = 38.47, 65.4/45.6/33.9/22.7 (BP=0.988, ratio=0.988, syslen=81, reflen=82)",
};
// toy_sacrebleu_none: BLEU = 38.10 66.2/45.6/33.9/22.7 (BP = 0.975 ratio = 0.976 hyp_len = 80 ref_len = 82)
//   signature: nrefs:1|case:mixed|eff:no|tok:none|smooth:exp|version:2.4.3
const TOY_SACREBLEU_NONE: Want = Want {
    score: 38.100487122244836,
    counts: &[53, 31, 19, 10],
    totals: &[80, 68, 56, 44],
    precisions: &[
        66.25,
        45.588235294117645,
        33.92857142857143,
        22.727272727272727,
    ],
    bp: 0.9753099120283327,
    sys_len: 80,
    ref_len: 82,
};
// fq_toy_nonempty: BLEU4 = 39.07, 66.2/45.6/33.9/22.7 (BP=1.000, ratio=1.026, syslen=80, reflen=78)
const FQ_TOY_NONEMPTY: Fq = Fq {
    score: 39.06500554578392,
    matches: [53, 31, 19, 10],
    counts: [80, 68, 56, 44],
    precisions: [
        0.6625,
        0.45588235294117646,
        0.3392857142857143,
        0.22727272727272727,
    ],
    bp: 1.0,
    sys_len: 80,
    ref_len: 78,
    line: "BLEU4 = 39.07, 66.2/45.6/33.9/22.7 (BP=1.000, ratio=1.026, syslen=80, reflen=78)",
};
// toy_nonempty_sacrebleu_none: BLEU = 39.07 66.2/45.6/33.9/22.7 (BP = 1.000 ratio = 1.026 hyp_len = 80 ref_len = 78)
//   signature: nrefs:1|case:mixed|eff:no|tok:none|smooth:exp|version:2.4.3
const TOY_NONEMPTY_SACREBLEU_NONE: Want = Want {
    score: 39.06500554578391,
    counts: &[53, 31, 19, 10],
    totals: &[80, 68, 56, 44],
    precisions: &[
        66.25,
        45.588235294117645,
        33.92857142857143,
        22.727272727272727,
    ],
    bp: 1.0,
    sys_len: 80,
    ref_len: 78,
};
// fq_specials: BLEU4 = 0.00, 90.9/66.7/0.0/0.0 (BP=0.913, ratio=0.917, syslen=11, reflen=12)
const FQ_SPECIALS: Fq = Fq {
    score: 0.0,
    matches: [10, 4, 0, 0],
    counts: [11, 6, 2, 1],
    precisions: [0.9090909090909091, 0.6666666666666666, 0.0, 0.0],
    bp: 0.9131007162822624,
    sys_len: 11,
    ref_len: 12,
    line: "BLEU4 = 0.00, 90.9/66.7/0.0/0.0 (BP=0.913, ratio=0.917, syslen=11, reflen=12)",
};
// iwslt500: BLEU = 55.69 98.9/69.7/56.8/43.4 (BP = 0.867 ratio = 0.875 hyp_len = 10484 ref_len = 11978)
//   signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3
const IWSLT500: Want = Want {
    score: 55.694523235144395,
    counts: &[10373, 6954, 5391, 3902],
    totals: &[10484, 9984, 9484, 8984],
    precisions: &[
        98.94124380007631,
        69.6514423076923,
        56.8431041754534,
        43.43276936776491,
    ],
    bp: 0.8671850728358064,
    sys_len: 10484,
    ref_len: 11978,
};
// fq_iwslt500_tok: BLEU4 = 56.64, 100.0/70.4/57.9/44.8 (BP=0.867, ratio=0.875, syslen=10683, reflen=12211)
const FQ_IWSLT500_TOK: Fq = Fq {
    score: 56.64418029150159,
    matches: [10683, 7166, 5603, 4114],
    counts: [10683, 10183, 9683, 9183],
    precisions: [
        1.0,
        0.7037218894235491,
        0.5786429825467314,
        0.44800174234999457,
    ],
    bp: 0.8667272139715638,
    sys_len: 10683,
    ref_len: 12211,
    line: "BLEU4 = 56.64, 100.0/70.4/57.9/44.8 (BP=0.867, ratio=0.875, syslen=10683, reflen=12211)",
};
// iwslt500_tok_sacrebleu_none: BLEU = 56.64 100.0/70.4/57.9/44.8 (BP = 0.867 ratio = 0.875 hyp_len = 10683 ref_len = 12211)
//   signature: nrefs:1|case:mixed|eff:no|tok:none|smooth:exp|version:2.4.3
const IWSLT500_TOK_SACREBLEU_NONE: Want = Want {
    score: 56.64022759057448,
    counts: &[10683, 7164, 5603, 4114],
    totals: &[10683, 10183, 9683, 9183],
    precisions: &[
        100.0,
        70.35254836492193,
        57.86429825467314,
        44.80017423499945,
    ],
    bp: 0.8667272139715638,
    sys_len: 10683,
    ref_len: 12211,
};

/// `sacrebleu.sentence_bleu(hyp, [ref]).score` for each toy pair.
const SENTENCE: [f64; 13] = [
    100.00000000000004,
    61.04735835807847,
    0.0,
    68.50836912969523,
    59.460355750136046,
    82.30724650381231,
    16.233395773754953,
    94.2615147681512,
    84.08964152537145,
    37.99178428257963,
    100.00000000000004,
    59.11602603314155,
    39.76353643835252,
];

/// sacreBLEU's signatures for the configurations of `signatures_match_sacrebleu`.
const SIGNATURES: [&str; 4] = [
    "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3",
    "nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:2.4.3",
    "nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[2.00]|version:2.4.3",
    "nrefs:1|case:lc|eff:yes|tok:none|smooth:exp|version:2.4.3",
];

#[test]
fn toy_corpus_default_matches_sacrebleu() {
    let got = corpus_bleu(&toy_hyps(), &[toy_refs()]).unwrap();
    check("default", &got, &DEFAULT, 0);
    assert_eq!(
        got.signature(),
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3"
    );
    assert_eq!(SACREBLEU_VERSION, "2.4.3");
    assert_eq!(
        got.to_string(),
        "BLEU = 69.60 86.7/78.2/69.7/63.6 (BP = 0.940 ratio = 0.942 hyp_len = 113 ref_len = 120)"
    );
}

#[test]
fn toy_corpus_other_settings_match_sacrebleu() {
    let d = BleuConfig::default();
    let cases: [(&str, BleuConfig, &Want, u64); 9] = [
        (
            "none",
            BleuConfig {
                smooth: Smooth::None,
                ..d
            },
            &SMOOTH_NONE,
            0,
        ),
        (
            "floor",
            BleuConfig {
                smooth: Smooth::floor(),
                ..d
            },
            &SMOOTH_FLOOR,
            0,
        ),
        (
            "floor 0.5",
            BleuConfig {
                smooth: Smooth::Floor(0.5),
                ..d
            },
            &SMOOTH_FLOOR_0_5,
            0,
        ),
        (
            "add-k",
            BleuConfig {
                smooth: Smooth::add_k(),
                ..d
            },
            &SMOOTH_ADD_K,
            1,
        ),
        (
            "add-k 2",
            BleuConfig {
                smooth: Smooth::AddK(2.0),
                ..d
            },
            &SMOOTH_ADD_K_2,
            2,
        ),
        (
            "lowercase",
            BleuConfig {
                lowercase: true,
                ..d
            },
            &LOWERCASE,
            0,
        ),
        (
            "tok none",
            BleuConfig {
                tokenize: Tokenize::None,
                ..d
            },
            &TOK_NONE,
            0,
        ),
        (
            "eff",
            BleuConfig {
                effective_order: true,
                ..d
            },
            &EFFECTIVE_ORDER,
            0,
        ),
        (
            "order 2",
            BleuConfig {
                max_ngram_order: 2,
                ..d
            },
            &ORDER_2,
            0,
        ),
    ];
    for (name, config, want, k) in cases {
        check(name, &toy(&config), want, k);
    }
}

#[test]
fn two_reference_streams_match_sacrebleu() {
    let got = corpus_bleu(&toy_hyps(), &[toy_refs(), REF2.to_vec()]).unwrap();
    check("two refs", &got, &TWO_REFS, 0);
    assert_eq!(
        got.signature(),
        "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3"
    );
}

#[test]
fn smoothing_decides_when_no_4gram_matches() {
    let hyps: Vec<&str> = NO4.iter().map(|&i| TOY[i].0).collect();
    let refs: Vec<&str> = NO4.iter().map(|&i| TOY[i].1).collect();
    let d = BleuConfig::default();
    let cases: [(&str, BleuConfig, &Want, u64); 7] = [
        ("exp", d, &NO4_EXP, 0),
        (
            "none",
            BleuConfig {
                smooth: Smooth::None,
                ..d
            },
            &NO4_NONE,
            0,
        ),
        (
            "floor",
            BleuConfig {
                smooth: Smooth::floor(),
                ..d
            },
            &NO4_FLOOR,
            0,
        ),
        (
            "add-k",
            BleuConfig {
                smooth: Smooth::add_k(),
                ..d
            },
            &NO4_ADD_K,
            1,
        ),
        (
            "eff",
            BleuConfig {
                effective_order: true,
                ..d
            },
            &NO4_EFFECTIVE,
            0,
        ),
        (
            "floor 0.3",
            BleuConfig {
                smooth: Smooth::Floor(0.3),
                ..d
            },
            &NO4_FLOOR_0_3,
            0,
        ),
        (
            "add-k 3",
            BleuConfig {
                smooth: Smooth::AddK(3.0),
                ..d
            },
            &NO4_ADD_K_3,
            3,
        ),
    ];
    for (name, config, want, k) in cases {
        check(
            name,
            &corpus_bleu_with(&hyps, &[&refs], &config).unwrap(),
            want,
            k,
        );
    }
}

/// Clipping by the largest count in one reference, not the sum over references; the shorter
/// reference length on a tie.
#[test]
fn repeated_words_and_length_ties_match_sacrebleu() {
    let hyps: Vec<&str> = REPEATS.iter().map(|p| p.0).collect();
    let refs1: Vec<&str> = REPEATS.iter().map(|p| p.1).collect();
    let refs2: Vec<&str> = REPEATS.iter().map(|p| p.2).collect();
    let none = BleuConfig {
        tokenize: Tokenize::None,
        ..BleuConfig::default()
    };
    check(
        "repeats",
        &corpus_bleu_with(&hyps, &[refs1, refs2], &none).unwrap(),
        &REPEATS_WANT,
        0,
    );
}

/// sacreBLEU right-strips before 13a, so a line-final `-\n` is not line-break hyphenation.
#[test]
fn trailing_newline_is_stripped_before_13a() {
    let hyps: Vec<&str> = RSTRIP.iter().map(|p| p.0).collect();
    let refs: Vec<&str> = RSTRIP.iter().map(|p| p.1).collect();
    check(
        "rstrip",
        &corpus_bleu(&hyps, &[refs]).unwrap(),
        &RSTRIP_WANT,
        0,
    );
}

/// With hypotheses under four tokens corpus BLEU is 0 unless the order is effective.
#[test]
fn effective_order_matches_sacrebleu_on_short_hypotheses() {
    let hyps: Vec<&str> = SHORT.iter().map(|p| p.0).collect();
    let refs: Vec<&str> = SHORT.iter().map(|p| p.1).collect();
    let d = BleuConfig::default();
    check(
        "short",
        &corpus_bleu_with(&hyps, &[&refs], &d).unwrap(),
        &SHORT_NOT_EFFECTIVE,
        0,
    );
    let eff = BleuConfig {
        effective_order: true,
        ..d
    };
    check(
        "short eff",
        &corpus_bleu_with(&hyps, &[&refs], &eff).unwrap(),
        &SHORT_EFFECTIVE,
        0,
    );
}

#[test]
fn sentence_bleu_matches_sacrebleu() {
    for (i, ((h, r), want)) in TOY.iter().zip(SENTENCE).enumerate() {
        let got = sentence_bleu(h, &[r]).unwrap();
        assert!(close(got.score, want), "pair {i}: {} vs {want}", got.score);
    }
    let s = sentence_bleu("a b", &["a b"]).unwrap();
    assert_eq!(
        s.signature(),
        "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.4.3"
    );
}

#[test]
fn signatures_match_sacrebleu() {
    let d = BleuConfig::default();
    let configs = [
        d,
        BleuConfig {
            smooth: Smooth::floor(),
            ..d
        },
        BleuConfig {
            smooth: Smooth::AddK(2.0),
            ..d
        },
        BleuConfig {
            lowercase: true,
            tokenize: Tokenize::None,
            effective_order: true,
            ..d
        },
    ];
    for (config, want) in configs.iter().zip(SIGNATURES) {
        assert_eq!(toy(config).signature(), want);
    }
}

/// sacreBLEU's `Tokenizer13a()(line)`.
const TOKENIZE_13A: [(&str, &str); 12] = [
    (".5 starts and ends with 5,", ". 5 starts and ends with 5 ,"),
    (",leading comma-", ", leading comma-"),
    ("Hello, world!", "Hello , world !"),
    ("He said \"hi\" (twice) [really] {ok} <x> a/b a\\b a|b a~b a^b a_b a`b", "He said \" hi \" ( twice ) [ really ] { ok } < x > a / b a \\ b a | b a ~ b a ^ b a _ b a ` b"),
    ("1,000.50 and 3.14, and 3 .5 and .5 and 5. and x,y and x.y", "1,000.50 and 3.14 , and 3 . 5 and . 5 and 5 . and x , y and x . y"),
    ("1990-2000 a-b 3- -3 -- 2--3", "1990 - 2000 a-b 3 - -3 -- 2 - -3"),
    ("&quot;&amp;&lt;&gt;&apos; &amp;quot; &#39;", "\" & < > & apos ; & quot ; & # 39 ;"),
    ("line<skipped>text -\nnext\nline\tx", "linetext next line x"),
    ("it's @home #1 $5 %20 ^ * + = ; : ? !", "it's @ home # 1 $ 5 % 20 ^ * + = ; : ? !"),
    ("   leading and trailing   ", "leading and trailing"),
    ("€5 — “quoted” ‘x’ … ", "€5 — “quoted” ‘x’ …"),
    ("a\u{3000}b\u{a0}c\u{2028}d\u{1c}e", "a b c d e"),
];

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    for (line, want) in TOKENIZE_13A {
        assert_eq!(tokenize_13a(line), want, "13a of {line:?}");
    }
}

#[test]
fn mismatched_or_empty_inputs_are_errors() {
    let is_invalid = |r: Result<BleuScore, DataError>| matches!(r, Err(DataError::Invalid(_)));
    assert!(is_invalid(corpus_bleu(&["a", "b"], &[vec!["a"]])));
    assert!(is_invalid(corpus_bleu(
        &["a"],
        &[vec!["a"], vec!["a", "b"]]
    )));
    assert!(is_invalid(corpus_bleu(&["a"], &[] as &[Vec<&str>])));
    assert!(is_invalid(corpus_bleu(
        &[] as &[&str],
        &[Vec::<&str>::new()]
    )));
    assert!(is_invalid(sentence_bleu("a", &[] as &[&str])));
    let zero_order = BleuConfig {
        max_ngram_order: 0,
        ..BleuConfig::default()
    };
    assert!(is_invalid(corpus_bleu_with(&["a"], &[["a"]], &zero_order)));
    let err = corpus_bleu(&["a", "b"], &[vec!["a"]])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 hypotheses") && err.contains("stream 0 has 1"),
        "{err}"
    );

    assert!(matches!(
        tokenized_bleu(&["a", "b"], &["a"]),
        Err(DataError::Invalid(_))
    ));
    assert!(matches!(
        tokenized_bleu(&[] as &[&str], &[] as &[&str]),
        Err(DataError::Invalid(_))
    ));
    assert!(FairseqBleu::default().result().is_err());
}

/// multi-bleu.perl by hand. Pair 1: `the cat sat on the mat` against `the cat is on the mat`
/// matches 5/6 unigrams (both `the`, `cat`, `on`, `mat`), 3/5 bigrams (`the cat`, `on the`,
/// `the mat`), 1/4 trigrams (`on the mat`), 0/3 4-grams. Pair 2: `a b c d e` against
/// `a b c d e f g` matches everything: 5/5, 4/4, 3/3, 2/2. Corpus: 10/11, 7/9, 4/7, 2/5, so
/// the precision product is 560/3465 = 16/99; 11 hypothesis and 13 reference words give
/// BP = exp(1 - 13/11). BLEU = 100 · exp(-2/11) · (16/99)^(1/4) = 52.86.
#[test]
fn tokenized_bleu_matches_multi_bleu_by_hand() {
    let got = tokenized_bleu(
        &["the cat sat on the mat", "a b c d e"],
        &["the cat is on the mat", "a b c d e f g"],
    )
    .unwrap();
    assert_eq!(got.matches, [10, 7, 4, 2]);
    assert_eq!(got.counts, [11, 9, 7, 5]);
    assert_eq!((got.sys_len, got.ref_len), (11, 13));
    let want = 100.0 * (-2.0f64 / 11.0).exp() * (16.0f64 / 99.0).powf(0.25);
    assert!(close(got.score, want), "{} vs {want}", got.score);
    assert_eq!(
        got.result_string(),
        "BLEU4 = 52.86, 90.9/77.8/57.1/40.0 (BP=0.834, ratio=0.846, syslen=11, reflen=13)"
    );
    // Clipping: four `the` against one.
    let clipped = tokenized_bleu(&["the the the the"], &["the cat"]).unwrap();
    assert_eq!(clipped.matches, [1, 0, 0, 0]);
    assert_eq!(clipped.score, 0.0);
}

/// Lines with fairseq's special tokens (hypothesis, reference).
const SPECIALS: [(&str, &str); 5] = [
    ("a b <unk> c", "a b <unk> c"),
    ("", ""),
    ("x y </s> </s>", "x y z"),
    ("<pad> <pad> p q", "p q <pad>"),
    ("<<unk>> w", "<<unk>> w"),
];

#[test]
fn tokenized_bleu_matches_fairseq_on_the_toy_corpus() {
    check_fq(
        "toy",
        &tokenized_bleu(&toy_hyps(), &toy_refs()).unwrap(),
        &FQ_TOY,
    );
    // fairseq's `</s>` quirk: the empty hypothesis counts as one unigram (81 against
    // sacreBLEU's 80), hence BP and BLEU differ from sacreBLEU's `tokenize: none`.
    let none = BleuConfig {
        tokenize: Tokenize::None,
        ..BleuConfig::default()
    };
    check("toy none", &toy(&none), &TOY_SACREBLEU_NONE, 0);

    // Without empty lines (and no zero precision) the two agree.
    let keep: Vec<usize> = (0..TOY.len())
        .filter(|&i| !TOY[i].0.trim().is_empty() && !TOY[i].1.trim().is_empty())
        .collect();
    let hyps: Vec<&str> = keep.iter().map(|&i| TOY[i].0).collect();
    let refs: Vec<&str> = keep.iter().map(|&i| TOY[i].1).collect();
    let fq = tokenized_bleu(&hyps, &refs).unwrap();
    check_fq("toy nonempty", &fq, &FQ_TOY_NONEMPTY);
    let sb = corpus_bleu_with(&hyps, &[&refs], &none).unwrap();
    check("toy nonempty none", &sb, &TOY_NONEMPTY_SACREBLEU_NONE, 0);
    assert!(close(fq.score, sb.score), "{} vs {}", fq.score, sb.score);
    assert_eq!(fq.matches.to_vec(), sb.counts);
    assert_eq!(fq.counts.to_vec(), sb.totals);
}

/// Literal `<unk>`, `</s>`, `<pad>` become fairseq's special ids: a reference `<unk>` never
/// matches, trailing `</s>`/`<pad>` are trimmed, leading `<pad>` too, and two empty lines match
/// on their `</s>`.
#[test]
fn tokenized_bleu_special_tokens_match_fairseq() {
    let hyps: Vec<&str> = SPECIALS.iter().map(|p| p.0).collect();
    let refs: Vec<&str> = SPECIALS.iter().map(|p| p.1).collect();
    check_fq(
        "specials",
        &tokenized_bleu(&hyps, &refs).unwrap(),
        &FQ_SPECIALS,
    );
}

/// libbleu's n-gram hash sign-extends bytes, so a bigram and its reverse can collide.
#[test]
fn fairseq_hash_collisions_are_reproduced_from_ids() {
    let mut exact = FairseqBleu::default();
    // `we can` against `can we` with fairseq's ids 74 and 180 (+ `</s>` = 2).
    exact.add_ids(&[74, 180, 2], &[180, 74, 2], FairseqSpecials::default());
    assert_eq!(
        exact.matches,
        [2, 1, 0, 0],
        "the hash makes (180, 74) match (74, 180)"
    );
    let strings = tokenized_bleu(&["can we"], &["we can"]).unwrap();
    assert_eq!(strings.matches, [2, 0, 0, 0]);
}

fn iwslt_test_en() -> Vec<String> {
    let root: PathBuf = kiln_core::paths::shared_data().expect(
        "shared/data not found (set KILN_SHARED_DATA or put shared/data beside the checkout): \
         the BLEU tests need iwslt14",
    );
    let path = root.join("iwslt14/iwslt14.tokenized.de-en/tmp/test.en");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; see MANIFEST.md section iwslt14", path.display()));
    text.lines().map(str::to_string).collect()
}

/// The fixture script's corruption: drop every 7th token; on every 5th line also swap each
/// adjacent pair.
fn corrupt(i: usize, line: &str) -> Vec<String> {
    let mut kept: Vec<String> = line
        .split_whitespace()
        .enumerate()
        .filter(|(j, _)| j % 7 != 6)
        .map(|(_, t)| t.to_string())
        .collect();
    if i % 5 == 4 {
        for j in (0..kept.len().saturating_sub(1)).step_by(2) {
            kept.swap(j, j + 1);
        }
    }
    kept
}

/// fairseq's `Dictionary.encode_line`: unseen words get the next id, `</s>` (2) appended.
fn encode_line<'a>(vocab: &mut HashMap<&'a str, i32>, line: &'a str) -> Vec<i32> {
    let mut ids: Vec<i32> = line
        .split_whitespace()
        .map(|w| {
            let next = vocab.len() as i32;
            *vocab.entry(w).or_insert(next)
        })
        .collect();
    ids.push(2);
    ids
}

#[test]
fn iwslt14_corrupted_hypotheses_match_sacrebleu_and_fairseq() {
    let lines: Vec<String> = iwslt_test_en().into_iter().take(500).collect();
    assert_eq!(lines.len(), 500);
    let refs: Vec<String> = lines
        .iter()
        .map(|l| kiln_data::detok::detokenize_line(l, Lang::En))
        .collect();
    let hyp_tokens: Vec<Vec<String>> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| corrupt(i, l))
        .collect();
    let hyps: Vec<String> = hyp_tokens.iter().map(|t| detokenize(t, Lang::En)).collect();
    let got = corpus_bleu(&hyps, &[&refs]).unwrap();
    check("iwslt500", &got, &IWSLT500, 0);

    // Tokenized BLEU on the tokenised text: exact n-grams give sacreBLEU `none`'s statistics.
    let tok_hyps: Vec<String> = hyp_tokens.iter().map(|t| t.join(" ")).collect();
    let tb = tokenized_bleu(&tok_hyps, &lines).unwrap();
    let none = BleuConfig {
        tokenize: Tokenize::None,
        ..BleuConfig::default()
    };
    let sb = corpus_bleu_with(&tok_hyps, &[&lines], &none).unwrap();
    check("iwslt500 none", &sb, &IWSLT500_TOK_SACREBLEU_NONE, 0);
    assert_eq!(tb.matches.to_vec(), sb.counts);
    assert_eq!(tb.counts.to_vec(), sb.totals);
    assert!(close(tb.score, sb.score), "{} vs {}", tb.score, sb.score);

    // fairseq itself, through its ids (a fresh dictionary: reference words, then hypothesis
    // words, get the next id), counts two spurious bigram matches from hash collisions.
    let mut vocab: HashMap<&str, i32> =
        [("<s>", 0), ("<pad>", 1), ("</s>", 2), ("<unk>", 3)].into();
    let mut fq = FairseqBleu::default();
    for (h, r) in tok_hyps.iter().zip(&lines) {
        let r_ids = encode_line(&mut vocab, r);
        let h_ids = encode_line(&mut vocab, h);
        fq.add_ids(&r_ids, &h_ids, FairseqSpecials::default());
    }
    check_fq(
        "iwslt500 fairseq ids",
        &fq.result().unwrap(),
        &FQ_IWSLT500_TOK,
    );
}
