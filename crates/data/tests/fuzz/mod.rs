//! A small seeded mutation fuzzer for file readers, shared by the fuzz tests of kiln-data
//! (`tests/fuzz_readers.rs`), kiln-models (`tests/fuzz_safetensors.rs`) and kiln-experiment
//! (`tests/fuzz_toml.rs`, which include this file by path).
//!
//! Each case takes real files, applies one to three random mutations to one of them
//! (truncation, byte flips, interesting bytes, dropped / duplicated / swapped lines, a BOM,
//! Latin-1 bytes, CRLF line ends, deleted or inserted ranges, numbers replaced by edge cases
//! such as `18446744073709551616`, `-1` or `nan`, an empty file), writes them to a
//! temporary folder and calls the reader under `catch_unwind`. A case passes when the reader
//! returns (no panic) and either succeeds or fails with an error whose message names the
//! mutated file by its full path. Every failing case is listed at the end with its mutations.
//!
//! Reproducible: case `i` of reader `r` uses a ChaCha8 stream seeded from (`KILN_FUZZ_SEED`,
//! `r`, `i`) only, so it is the same whatever the number of cases. Environment:
//! * `KILN_FUZZ_CASES=n`: run `n` cases per reader instead of the default (kept to a few
//!   seconds per test in release);
//! * `KILN_FUZZ_SEED=s`: another base seed (default 0);
//! * `KILN_FUZZ_CASE=i`: run only case `i` (to reproduce a failure).

// Each test binary uses a subset of the helpers.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a non-negative integer"),
    }
}

/// The cases to run for a reader with `default` cases.
pub fn case_numbers(default: usize) -> Vec<u64> {
    if let Some(i) = env_u64("KILN_FUZZ_CASE") {
        return vec![i];
    }
    let n = env_u64("KILN_FUZZ_CASES").unwrap_or(default as u64);
    (0..n).collect()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The RNG of case `case` of `reader`.
pub fn case_rng(reader: &str, case: u64) -> ChaCha8Rng {
    let seed = env_u64("KILN_FUZZ_SEED").unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(reader));
    rng.set_stream(case);
    rng
}

/// Bytes worth writing over others: separators, quotes, brackets, a UTF-8 lead byte without
/// its continuation, a lone continuation byte, NUL, 0xFF (a JPEG marker prefix), digits, signs.
const INTERESTING: &[u8] = &[
    b'\t', b'\n', b'\r', b' ', b',', b'"', b'{', b'}', b'[', b']', b':', b'#', b'-', b'.', b'0',
    b'9', b'e', 0x00, 0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xEF, 0xFF,
];

/// Numbers at the edges of the integer and float types, and non-numbers that parse as floats.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "1e400",
    "-1e400",
    "0.5",
    "nan",
    "NaN",
    "inf",
    "-inf",
];

/// Line boundaries of `b` (each range includes its `\n`).
fn line_ranges(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push((start, b.len()));
    }
    out
}

/// UTF-8 two-byte sequences (U+0080..U+00FF) re-encoded as their single Latin-1 byte.
fn to_latin1(b: &[u8], max: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut done = 0;
    while i < b.len() {
        if done < max
            && i + 1 < b.len()
            && (b[i] == 0xC2 || b[i] == 0xC3)
            && b[i + 1] & 0xC0 == 0x80
        {
            out.push(((b[i] & 0x03) << 6) | (b[i + 1] & 0x3F));
            i += 2;
            done += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    (out, done)
}

/// Applies one random mutation to `b`, returning its description.
pub fn mutate_once(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) -> String {
    let n = b.len();
    let kind = rng.random_range(0..17u32);
    match kind {
        0 | 1 => {
            let at = if n == 0 { 0 } else { rng.random_range(0..n) };
            b.truncate(at);
            format!("truncated to {at} bytes")
        }
        2 | 3 if n > 0 => {
            let k = rng.random_range(1..=4);
            let mut at = Vec::new();
            for _ in 0..k {
                let i = rng.random_range(0..n);
                b[i] ^= 1 << rng.random_range(0..8);
                at.push(i);
            }
            format!("bit flips at {at:?}")
        }
        4 if n > 0 => {
            let i = rng.random_range(0..n);
            let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
            b[i] = v;
            format!("byte {i} set to 0x{v:02X}")
        }
        5 | 6 => {
            let lines = line_ranges(b);
            if lines.is_empty() {
                b.clear();
                return "emptied".into();
            }
            let k = rng.random_range(0..lines.len());
            let (s, e) = lines[k];
            b.drain(s..e);
            format!("dropped line {}", k + 1)
        }
        7 => {
            let lines = line_ranges(b);
            if lines.is_empty() {
                return "nothing (empty file)".into();
            }
            let k = rng.random_range(0..lines.len());
            let (s, e) = lines[k];
            let line = b[s..e].to_vec();
            let at = lines[rng.random_range(0..lines.len())].0;
            b.splice(at..at, line);
            format!("line {} duplicated at byte {at}", k + 1)
        }
        8 => {
            let lines = line_ranges(b);
            if lines.len() < 2 {
                return "nothing (fewer than 2 lines)".into();
            }
            let k = rng.random_range(0..lines.len() - 1);
            let (s, m) = lines[k];
            let (_, e) = lines[k + 1];
            let mut first = b[s..m].to_vec();
            let mut second = b[m..e].to_vec();
            if second.last() != Some(&b'\n') {
                second.push(b'\n');
                first.pop();
            }
            second.extend(first);
            b.splice(s..e, second);
            format!("lines {} and {} swapped", k + 1, k + 2)
        }
        9 => {
            b.splice(0..0, [0xEF, 0xBB, 0xBF]);
            "UTF-8 BOM prepended".into()
        }
        10 => {
            let (out, done) = to_latin1(b, usize::MAX);
            if done > 0 {
                *b = out;
                format!("re-encoded as Latin-1 ({done} characters)")
            } else if n > 0 {
                let i = rng.random_range(0..n);
                b.insert(i, 0xE9);
                format!("Latin-1 é (0xE9) inserted at byte {i}")
            } else {
                b.push(0xE9);
                "Latin-1 é (0xE9) as the only byte".into()
            }
        }
        11 => {
            let mut out = Vec::with_capacity(n + n / 20);
            for &c in b.iter() {
                if c == b'\n' {
                    out.push(b'\r');
                }
                out.push(c);
            }
            *b = out;
            "CRLF line ends".into()
        }
        12 if n > 0 => {
            let s = rng.random_range(0..n);
            let len = rng.random_range(1..=(n - s).min(64));
            b.drain(s..s + len);
            format!("deleted bytes {s}..{}", s + len)
        }
        13 => {
            let at = if n == 0 { 0 } else { rng.random_range(0..=n) };
            let len = rng.random_range(1..=16);
            let ins: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        INTERESTING[rng.random_range(0..INTERESTING.len())]
                    } else {
                        rng.random()
                    }
                })
                .collect();
            b.splice(at..at, ins);
            format!("{len} bytes inserted at {at}")
        }
        14 => {
            // A separator swapped for another, as a re-saving spreadsheet would do.
            let pairs: [(u8, u8); 4] = [(b'\t', b','), (b',', b'\t'), (b'\t', b' '), (b' ', b'\t')];
            let (from, to) = pairs[rng.random_range(0..pairs.len())];
            let hits: Vec<usize> = (0..n).filter(|&i| b[i] == from).collect();
            if hits.is_empty() {
                return "nothing (no separator to swap)".into();
            }
            let i = hits[rng.random_range(0..hits.len())];
            b[i] = to;
            format!("byte {i} 0x{from:02X} -> 0x{to:02X}")
        }
        16 => {
            // A number replaced by an edge case: overflow, negative, float forms, NaN.
            let runs: Vec<(usize, usize)> = {
                let mut v = Vec::new();
                let mut i = 0;
                while i < n {
                    if b[i].is_ascii_digit() {
                        let s = i;
                        while i < n && b[i].is_ascii_digit() {
                            i += 1;
                        }
                        v.push((s, i));
                    } else {
                        i += 1;
                    }
                }
                v
            };
            if runs.is_empty() {
                return "nothing (no number)".into();
            }
            let (s, e) = runs[rng.random_range(0..runs.len())];
            let with = EDGE_NUMBERS[rng.random_range(0..EDGE_NUMBERS.len())];
            b.splice(s..e, with.bytes());
            format!("number at {s}..{e} replaced by {with}")
        }
        15 if rng.random_bool(0.2) => {
            b.clear();
            "emptied".into()
        }
        _ => {
            let at = if n == 0 { 0 } else { rng.random_range(0..n) };
            b.truncate(at);
            format!("truncated to {at} bytes")
        }
    }
}

/// One to three mutations.
pub fn mutate(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) -> Vec<String> {
    let k = rng.random_range(1..=3);
    (0..k).map(|_| mutate_once(rng, b)).collect()
}

/// The first `n` lines of a file (the fuzzers reparse the file for every case, so they work on a
/// prefix of large files).
pub fn head_lines(bytes: &[u8], n: usize) -> Vec<u8> {
    match line_ranges(bytes).get(n.saturating_sub(1)) {
        Some(&(_, e)) if n > 0 => bytes[..e].to_vec(),
        _ => bytes.to_vec(),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// What one fuzz run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub cases: usize,
    pub parsed: usize,
    pub errors: usize,
    /// `(case, description)` of every failing case.
    pub failures: Vec<(u64, String)>,
}

/// Fuzzes `read` on `files` (name, original bytes), written into one temporary folder. Each
/// case mutates one of the files (chosen at random) and calls `read(folder)`; `check_ok`
/// (if any) may reject a clean parse of a mutated input (return `Err(why)`) after it returned
/// `Ok`. Panics at the end, listing every failing case, if any case panicked or returned an
/// error that does not name the mutated file.
pub fn fuzz_files<T, E: std::fmt::Display>(
    reader: &str,
    default_cases: usize,
    files: &[(&str, Vec<u8>)],
    read: impl Fn(&Path) -> Result<T, E>,
) -> Outcome {
    fuzz_files_checked(reader, default_cases, files, read, |_, _, _| Ok(()))
}

/// [`fuzz_files`] with a check of successful parses: `check_ok(mutated file, its mutations,
/// the value)` returns `Err(why)` for a parse that should have failed.
pub fn fuzz_files_checked<T, E: std::fmt::Display>(
    reader: &str,
    default_cases: usize,
    files: &[(&str, Vec<u8>)],
    read: impl Fn(&Path) -> Result<T, E>,
    check_ok: impl Fn(&str, &[String], &T) -> Result<(), String>,
) -> Outcome {
    assert!(!files.is_empty());
    let dir = tempfile::tempdir().expect("temporary folder");
    let start = Instant::now();
    let mut out = Outcome::default();
    for case in case_numbers(default_cases) {
        let mut rng = case_rng(reader, case);
        let target = rng.random_range(0..files.len());
        let mut mutations = Vec::new();
        for (k, (name, bytes)) in files.iter().enumerate() {
            let mut b = bytes.clone();
            if k == target {
                mutations = mutate(&mut rng, &mut b);
            }
            std::fs::write(dir.path().join(name), &b).expect("write a fuzz input");
        }
        let name = files[target].0;
        let path: PathBuf = dir.path().join(name);
        out.cases += 1;
        let result = catch_unwind(AssertUnwindSafe(|| read(dir.path())));
        let what = || format!("{name} after [{}]", mutations.join("; "));
        match result {
            Err(p) => out.failures.push((
                case,
                format!("PANIC on {}: {}", what(), panic_text(p.as_ref())),
            )),
            Ok(Ok(v)) => match catch_unwind(AssertUnwindSafe(|| check_ok(name, &mutations, &v))) {
                Ok(Ok(())) => out.parsed += 1,
                Ok(Err(why)) => out
                    .failures
                    .push((case, format!("parsed but should not: {} ({why})", what()))),
                Err(p) => out.failures.push((
                    case,
                    format!(
                        "PANIC using the parse of {}: {}",
                        what(),
                        panic_text(p.as_ref())
                    ),
                )),
            },
            Ok(Err(e)) => {
                out.errors += 1;
                let msg = e.to_string();
                // The full path: a bare name such as `questions.json` or `code` could be
                // matched by a hint that merely mentions such files.
                let full = path.display().to_string();
                if !msg.contains(&full) {
                    out.failures.push((
                        case,
                        format!("error does not name {full}: {} gave `{msg}`", what()),
                    ));
                }
            }
        }
    }
    eprintln!(
        "fuzz {reader}: {} cases ({} parsed, {} errors) in {:.2?}; KILN_FUZZ_CASES / \
         KILN_FUZZ_SEED / KILN_FUZZ_CASE to change",
        out.cases,
        out.parsed,
        out.errors,
        start.elapsed()
    );
    if !out.failures.is_empty() {
        let list: Vec<String> = out
            .failures
            .iter()
            .take(20)
            .map(|(c, m)| format!("  case {c}: {m}"))
            .collect();
        panic!(
            "fuzz {reader}: {} of {} cases failed (reproduce one with KILN_FUZZ_CASE=<case>):\n{}",
            out.failures.len(),
            out.cases,
            list.join("\n")
        );
    }
    out
}

/// [`fuzz_files`] for a reader of one file.
pub fn fuzz_file<T, E: std::fmt::Display>(
    reader: &str,
    default_cases: usize,
    name: &str,
    original: Vec<u8>,
    read: impl Fn(&Path) -> Result<T, E>,
) -> Outcome {
    let files = [(name, original)];
    fuzz_files(reader, default_cases, &files, |dir| read(&dir.join(name)))
}
