//! The CTR readers on the shared real samples (../shared/data/criteo, avazu); skipped when
//! absent.

use std::path::PathBuf;

use kiln_data::ctr::{preprocess, read_avazu, read_criteo, CtrData, CtrFormat, ReadOptions};
use kiln_data::DataError;

fn shared() -> Option<PathBuf> {
    let p = kiln_core::paths::shared_data();
    if p.is_none() {
        kiln_core::paths::skip("../shared/data (criteo, avazu samples)");
    }
    p
}

fn check_invariants(d: &CtrData) {
    assert_eq!(d.dense.len(), d.len() * d.n_dense);
    assert_eq!(d.cats.len(), d.len() * d.n_cat);
    assert_eq!(d.counts.len(), d.n_cat);
    assert_eq!(d.cat_names.len(), d.n_cat);
    assert!(d.dense.iter().all(|x| x.is_finite() && *x >= 0.0));
    assert!(d.labels.iter().all(|&y| y == 0.0 || y == 1.0));
    for r in 0..d.len() {
        for (f, &id) in d.cat_row(r).iter().enumerate() {
            assert!((id as usize) < d.counts[f], "row {r} feature {f}");
        }
    }
    // ids are contiguous: every id below the count occurs
    for f in 0..d.n_cat {
        let mut seen = vec![false; d.counts[f]];
        for r in 0..d.len() {
            seen[d.cat_row(r)[f] as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "feature {f} has gaps");
    }
}

/// Renumbers every feature's ids in first-appearance order, so two reads whose dictionaries
/// saw different rows can be compared value for value.
fn renumber(d: &CtrData) -> Vec<u32> {
    let mut maps = vec![std::collections::HashMap::new(); d.n_cat];
    let mut out = Vec::with_capacity(d.cats.len());
    for r in 0..d.len() {
        for (f, &id) in d.cat_row(r).iter().enumerate() {
            let next = maps[f].len() as u32;
            out.push(*maps[f].entry(id).or_insert(next));
        }
    }
    out
}

#[test]
fn criteo_dac10k_reads_with_known_counts() {
    let Some(root) = shared() else { return };
    let p = root.join("criteo/dac10k/train.txt");
    let (d, rep) = read_criteo(&p, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.len(), 10_000);
    assert_eq!((rep.rows, rep.skipped), (10_000, 0));
    assert_eq!(d.labels.iter().filter(|&&y| y == 1.0).count(), 2_182);
    assert_eq!((d.n_dense, d.n_cat), (13, 26));
    assert_eq!(d.name, "criteo");
    check_invariants(&d);
    // Some I2 values are negative in this sample: they clamp to ln(1 + 0) = 0.
    assert!(d.dense.chunks(13).any(|r| r[1] == 0.0));
    eprintln!("{}", d.stats());

    let (h, _) = read_criteo(&p, &ReadOptions::modulo(100)).unwrap();
    assert!(h.counts.iter().all(|&c| c <= 100), "{:?}", h.counts);
    // a high-cardinality feature really is folded
    assert!(d.counts.iter().any(|&c| c > 100));
    assert_eq!(h.labels, d.labels);
    assert_eq!(h.dense, d.dense);
    check_invariants(&h);
}

#[test]
fn criteo_dac_with_stripped_fields_is_rejected_or_skipped() {
    let Some(root) = shared() else { return };
    let p = root.join("criteo/dac/train.txt");
    let e = read_criteo(&p, &ReadOptions::default()).unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("criteo/dac/train.txt:3:"), "{shown}");
    match e {
        DataError::Malformed { path, line, msg } => {
            assert_eq!((path, line), (p.clone(), 3));
            assert!(
                msg.contains("expected 40") && msg.contains("lenient"),
                "{msg}"
            );
        }
        other => panic!("{other}"),
    }

    let (d, rep) = read_criteo(&p, &ReadOptions::default().lenient(true)).unwrap();
    assert_eq!(rep.skipped, 29 + 469);
    assert_eq!(rep.rows, 502);
    assert_eq!(d.len(), 502);
    assert_eq!(rep.first_bad[0].0, 3);
    check_invariants(&d);

    // The kept rows are exactly dac10k's rows at the same line numbers.
    let (full, _) = read_criteo(
        &root.join("criteo/dac10k/train.txt"),
        &ReadOptions::default().limit(Some(1000)),
    )
    .unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let kept: Vec<usize> = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| l.split('\t').count() == 40)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(kept.len(), 502);
    let same = full.subset(&kept);
    assert_eq!(d.labels, same.labels);
    assert_eq!(d.dense, same.dense);
    assert_eq!(renumber(&d), renumber(&same));
}

#[test]
fn avazu_10k_reads() {
    let Some(root) = shared() else { return };
    let p = root.join("avazu/train-10k.csv");
    let (d, rep) = read_avazu(&p, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.len(), 9_999);
    assert_eq!(rep.skipped, 0);
    assert_eq!((d.n_dense, d.n_cat), (1, 22));
    check_invariants(&d);
    // positive rate from the click column, read independently
    let text = std::fs::read_to_string(&p).unwrap();
    let clicks: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    let pos = clicks.iter().filter(|&&c| c == "1").count();
    assert_eq!(clicks.len(), 9_999);
    assert!((d.positive_rate() - pos as f64 / 9_999.0).abs() < 1e-12);
    // the sample spans the single hour 14102100
    assert_eq!(d.counts[21], 1);
    assert!(d.dense.iter().all(|&x| x == 0.0));
    assert_eq!(d.cat_names[21], "hour_of_day");
    eprintln!("{}", d.stats());
    let (h, _) = read_avazu(&p, &ReadOptions::modulo(50)).unwrap();
    assert!(h.counts.iter().all(|&c| c <= 50));
}

#[test]
fn real_samples_through_the_cache_equal_the_in_memory_read() {
    let Some(root) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "criteo/dac10k/train.txt",
            CtrFormat::Criteo,
            ReadOptions::default(),
        ),
        (
            "criteo/dac10k/train.txt",
            CtrFormat::Criteo,
            ReadOptions::modulo(1000),
        ),
        (
            "criteo/dac/train.txt",
            CtrFormat::Criteo,
            ReadOptions::default().lenient(true),
        ),
        (
            "avazu/train-10k.csv",
            CtrFormat::Avazu,
            ReadOptions::default(),
        ),
    ];
    for (k, (rel, format, opts)) in cases.into_iter().enumerate() {
        let src = root.join(rel);
        let (mem, rep) = match format {
            CtrFormat::Criteo => read_criteo(&src, &opts),
            CtrFormat::Avazu => read_avazu(&src, &opts),
        }
        .unwrap();
        let cache = dir.path().join(format!("c{k}.bin"));
        let mut c = preprocess(&src, format, &opts, &cache, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.report(), &rep, "{rel}");
        assert_eq!(c.read_rows(0, c.len()).unwrap(), mem, "{rel}");
        let idx: Vec<usize> = (0..mem.len()).rev().step_by(7).collect();
        assert_eq!(c.read_indices(&idx).unwrap(), mem.subset(&idx), "{rel}");
    }
}
