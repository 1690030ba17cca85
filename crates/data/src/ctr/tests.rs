use std::path::{Path, PathBuf};

use super::*;

/// A Criteo line: the given ints and cats, padded with empty fields to 13 / 26.
fn crow(label: &str, ints: &[&str], cats: &[&str]) -> String {
    let mut f = vec![label.to_string()];
    f.extend((0..13).map(|i| ints.get(i).unwrap_or(&"").to_string()));
    f.extend((0..26).map(|i| cats.get(i).unwrap_or(&"").to_string()));
    f.join("\t")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn malformed(e: DataError) -> (PathBuf, usize, String) {
    match e {
        DataError::Malformed { path, line, msg } => (path, line, msg),
        other => panic!("expected Malformed, got {other}"),
    }
}

#[test]
fn day_split_matches_dlrm_kaggle_numbers() {
    let n = 45_840_617;
    let d = day_sizes(n);
    assert_eq!(d.iter().filter(|&&s| s == 6_548_660).count(), 4);
    assert_eq!(d.iter().filter(|&&s| s == 6_548_659).count(), 3);
    assert_eq!(&d[..4], &[6_548_660; 4]);
    let s = dlrm_split(n);
    assert_eq!(s.train, 0..39_291_958);
    assert_eq!(s.test.len(), 3_274_330);
    assert_eq!(s.val.len(), 3_274_329);
    // test is the FIRST half of day 6
    assert_eq!(s.test.start, s.train.end);
    assert_eq!(s.val.start, s.test.end);
    assert_eq!(s.val.end, n);
}

#[test]
fn day_sizes_sum_to_n_and_differ_by_at_most_one() {
    for n in (0..300).chain([1_000_003, 45_840_617]) {
        let d = day_sizes(n);
        assert_eq!(d.iter().sum::<usize>(), n, "n={n}");
        let (lo, hi) = (d.iter().min().unwrap(), d.iter().max().unwrap());
        assert!(hi - lo <= 1, "n={n}: {d:?}");
        // the longer parts come first
        assert!(d.windows(2).all(|w| w[0] >= w[1]), "n={n}: {d:?}");
        let s = dlrm_split(n);
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), n);
        assert_eq!(s.test.len(), d[6].div_ceil(2));
    }
}

#[test]
fn negative_and_empty_ints_become_zero_before_log1p() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        crow("1", &["-3", "", "0", "1", "7"], &["a"]),
        crow("0", &["2", "-1"], &["b"]),
    ]
    .join("\n");
    let p = write(dir.path(), "t.txt", &text);
    let (d, rep) = read_criteo(&p, &ReadOptions::default()).unwrap();
    assert_eq!(rep.rows, 2);
    assert_eq!(d.len(), 2);
    assert_eq!(d.labels, vec![1.0, 0.0]);
    let r0 = d.dense_row(0);
    assert_eq!(r0[0], 0.0); // -3 -> 0 -> ln 1
    assert_eq!(r0[1], 0.0); // empty -> 0
    assert_eq!(r0[2], 0.0);
    assert_eq!(r0[3], 2f64.ln() as f32);
    assert_eq!(r0[4], 8f64.ln() as f32);
    assert_eq!(d.dense_row(1)[..2], [3f64.ln() as f32, 0.0]);
    assert!(d.dense.iter().all(|x| x.is_finite() && *x >= 0.0));
}

#[test]
fn ids_are_contiguous_in_first_seen_order_and_empty_is_value_zero() {
    let dir = tempfile::tempdir().unwrap();
    // C1: ff, 0a, ff, "" (= 0), 00000000 (= 0), 0a
    let text = ["ff", "0a", "ff", "", "00000000", "0A"]
        .iter()
        .map(|c| crow("0", &[], &[c]))
        .collect::<Vec<_>>()
        .join("\n");
    let p = write(dir.path(), "t.txt", &text);
    let (d, _) = read_criteo(&p, &ReadOptions::default()).unwrap();
    let c1: Vec<u32> = (0..d.len()).map(|r| d.cat_row(r)[0]).collect();
    assert_eq!(c1, vec![0, 1, 0, 2, 2, 1]);
    assert_eq!(d.counts[0], 3);
    // every other feature is always empty: one value
    assert!(d.counts[1..].iter().all(|&c| c == 1));
    assert!(d.cats[1..26].iter().all(|&c| c == 0));
    assert_eq!(d.cat_names[0], "C1");
    assert_eq!(d.cat_names[25], "C26");
}

#[test]
fn hashing_happens_before_the_dictionary_per_feature() {
    let dir = tempfile::tempdir().unwrap();
    // C1 values 5, 15, 25, 6 and C2 values 5, 15, 25, 6: mod 10 on C1 leaves {5, 6}; mod 100 on
    // C2 keeps all four.
    let vals = ["5", "f", "19", "6"];
    let text = vals
        .iter()
        .map(|c| crow("1", &[], &[c, c]))
        .collect::<Vec<_>>()
        .join("\n");
    let p = write(dir.path(), "t.txt", &text);
    let mut moduli = vec![100u32; 26];
    moduli[0] = 10;
    let (d, _) = read_criteo(&p, &ReadOptions::per_feature(moduli)).unwrap();
    let c1: Vec<u32> = (0..4).map(|r| d.cat_row(r)[0]).collect();
    let c2: Vec<u32> = (0..4).map(|r| d.cat_row(r)[1]).collect();
    assert_eq!(c1, vec![0, 0, 0, 1]);
    assert_eq!(c2, vec![0, 1, 2, 3]);
    assert_eq!(&d.counts[..2], &[2, 4]);

    // Many distinct values: at most m ids per feature.
    let text = (0..500u32)
        .map(|i| {
            crow(
                "0",
                &[],
                &[&format!("{:08x}", i.wrapping_mul(2_654_435_761))],
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = write(dir.path(), "many.txt", &text);
    let (d, _) = read_criteo(&p, &ReadOptions::modulo(37)).unwrap();
    assert!(d.counts.iter().all(|&c| c <= 37), "{:?}", d.counts);
    assert_eq!(d.counts[0], 37);
    assert!(d
        .cats
        .chunks(26)
        .all(|r| r.iter().zip(&d.counts).all(|(&i, &c)| (i as usize) < c)));
    let (d, _) = read_criteo(&p, &ReadOptions::default()).unwrap();
    assert_eq!(d.counts[0], 500);

    assert!(matches!(
        read_criteo(&p, &ReadOptions::modulo(0)),
        Err(DataError::Invalid(m)) if m.contains("modulus 0")
    ));
    assert!(matches!(
        read_criteo(&p, &ReadOptions::per_feature(vec![10; 3])),
        Err(DataError::Invalid(m)) if m.contains("3 per-feature moduli")
    ));
}

#[test]
fn wrong_field_count_names_file_line_and_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let short = crow("0", &[], &[]);
    let short = &short[..short.len() - 2]; // drop two trailing empty fields
    let text = [
        crow("0", &["1"], &["aa"]),
        short.to_string(),
        crow("1", &[], &[]),
    ]
    .join("\n");
    let p = write(dir.path(), "short.txt", &text);
    let e = read_criteo(&p, &ReadOptions::default()).unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("short.txt:2:"), "{shown}");
    let (path, line, msg) = malformed(e);
    assert_eq!((path, line), (p.clone(), 2));
    assert!(
        msg.contains("38 tab-separated fields, expected 40"),
        "{msg}"
    );
    assert!(msg.contains("lenient"), "{msg}");
    // Issue 35: the hint named only the library option; the CLI flag is `--lenient`.
    assert_lenient_hint(&msg);

    let (d, rep) = read_criteo(&p, &ReadOptions::default().lenient(true)).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(rep.rows, 2);
    assert_eq!(rep.skipped, 1);
    assert_eq!(rep.first_bad.len(), 1);
    assert_eq!(rep.first_bad[0].0, 2);
    assert!(rep.to_string().contains("line 2:"), "{rep}");
}

#[test]
fn bad_integer_hex_and_label_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            crow("0", &["1", "2", "3", "abc"], &[]),
            "field 5 (I4) = `abc`: not an integer",
        ),
        (
            crow("0", &["1.5"], &[]),
            "field 2 (I1) = `1.5`: not an integer",
        ),
        (
            crow("2", &[], &[]),
            "field 1 (label) = `2`: the label must be 0 or 1",
        ),
        (
            crow("", &[], &[]),
            "field 1 (label) = ``: the label must be 0 or 1",
        ),
        (
            crow("1", &[], &["", "zz12"]),
            "field 16 (C2) = `zz12`: not a hexadecimal",
        ),
        (
            crow("1", &[], &["123456789"]),
            "field 15 (C1) = `123456789`: not a hexadecimal",
        ),
    ];
    for (k, (bad, want)) in cases.iter().enumerate() {
        let text = [crow("1", &["4"], &["aa"]), bad.clone()].join("\r\n") + "\r\n";
        let name = format!("bad{k}.txt");
        let p = write(dir.path(), &name, &text);
        let e = read_criteo(&p, &ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains(&format!("{name}:2:")), "{e}");
        let (path, line, msg) = malformed(e);
        assert_eq!((path, line), (p.clone(), 2));
        assert!(msg.contains(want), "{msg} does not contain {want}");
        let (d, rep) = read_criteo(&p, &ReadOptions::default().lenient(true)).unwrap();
        assert_eq!((d.len(), rep.skipped), (1, 1));
        assert!(rep.first_bad[0].1.contains(want));
    }
}

#[test]
fn line_endings_final_newline_and_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [crow("1", &["3"], &["aa"]), crow("0", &["-1"], &["bb"])];
    let base = read_criteo(
        &write(dir.path(), "lf.txt", &(rows.join("\n") + "\n")),
        &ReadOptions::default(),
    )
    .unwrap()
    .0;
    assert_eq!(base.len(), 2);
    for (name, text) in [
        ("crlf.txt", rows.join("\r\n") + "\r\n"),
        ("nofinal.txt", rows.join("\n")),
        ("crlf-nofinal.txt", rows.join("\r\n")),
        ("trailing-blank.txt", rows.join("\n") + "\n\n"),
        (
            "trailing-blanks-crlf.txt",
            rows.join("\r\n") + "\r\n\r\n\r\n",
        ),
    ] {
        let (d, rep) = read_criteo(&write(dir.path(), name, &text), &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d, base, "{name}");
        assert_eq!(rep.skipped, 0, "{name}");
    }
    // A blank line between rows is malformed.
    let p = write(dir.path(), "mid-blank.txt", &rows.join("\n\n"));
    let (path, line, msg) = malformed(read_criteo(&p, &ReadOptions::default()).unwrap_err());
    assert_eq!((path, line), (p.clone(), 2));
    assert!(msg.contains("blank line"), "{msg}");
    assert_lenient_hint(&msg);
    let (d, rep) = read_criteo(&p, &ReadOptions::default().lenient(true)).unwrap();
    assert_eq!((d, rep.skipped), (base, 1));
}

#[test]
fn limit_counts_kept_rows() {
    let dir = tempfile::tempdir().unwrap();
    let text = (0..10)
        .map(|i| {
            if i == 1 {
                "garbage".to_string()
            } else {
                crow("0", &[&i.to_string()], &[])
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = write(dir.path(), "t.txt", &text);
    let opts = ReadOptions::default().lenient(true).limit(Some(4));
    let (d, rep) = read_criteo(&p, &opts).unwrap();
    assert_eq!((d.len(), rep.rows, rep.skipped), (4, 4, 1));
    assert_eq!(d.dense_row(3)[0], 4f64.ln_1p() as f32);
    // the garbage row fails strict mode even with a limit past it
    assert!(read_criteo(&p, &ReadOptions::default().limit(Some(4))).is_err());
    let (d, _) = read_criteo(&p, &ReadOptions::default().limit(Some(1))).unwrap();
    assert_eq!(d.len(), 1);
}

#[test]
fn missing_file_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent/train.txt");
    let e = read_criteo(&missing, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("Criteo"),
        "{e}"
    );
}

const AVAZU_HEADER: &str = "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21";

fn arow(id: u64, click: &str, hour: &str, site: &str) -> String {
    format!("{id},{click},{hour},1005,0,{site},f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79")
}

#[test]
fn avazu_rows_header_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        AVAZU_HEADER.to_string(),
        arow(1, "0", "14102100", "s1"),
        arow(2, "1", "14102107", "s2"),
        arow(3, "1", "14102107", "s1"),
    ]
    .join("\r\n")
        + "\r\n";
    let p = write(dir.path(), "a.csv", &text);
    let (d, rep) = read_avazu(&p, &ReadOptions::default()).unwrap();
    assert_eq!((d.len(), rep.rows), (3, 3));
    assert_eq!((d.n_dense, d.n_cat), (1, 22));
    assert_eq!(d.name, "avazu");
    assert_eq!(d.labels, vec![0.0, 1.0, 1.0]);
    assert_eq!(d.dense, vec![0.0, 8f64.ln() as f32, 8f64.ln() as f32]);
    assert_eq!(d.cat_names[0], "C1");
    assert_eq!(d.cat_names[2], "site_id");
    assert_eq!(d.cat_names[20], "C21");
    assert_eq!(d.cat_names[21], "hour_of_day");
    // site_id: s1, s2, s1; hour_of_day: 00, 07, 07
    assert_eq!(
        (0..3).map(|r| d.cat_row(r)[2]).collect::<Vec<_>>(),
        [0, 1, 0]
    );
    assert_eq!(
        (0..3).map(|r| d.cat_row(r)[21]).collect::<Vec<_>>(),
        [0, 1, 1]
    );
    assert_eq!(d.counts[0], 1);
    assert_eq!(d.counts[21], 2);

    let p = write(
        dir.path(),
        "short-header.csv",
        &AVAZU_HEADER[..AVAZU_HEADER.len() - 4],
    );
    let (path, line, msg) = malformed(read_avazu(&p, &ReadOptions::default()).unwrap_err());
    assert_eq!((path, line), (p.clone(), 1));
    assert!(msg.contains("header has 23 columns"), "{msg}");

    let p = write(dir.path(), "noheader.csv", &arow(1, "0", "14102100", "s"));
    let e = read_avazu(&p, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("noheader.csv") && e.contains("id,click,hour"),
        "{e}"
    );

    let bad_rows = [
        (arow(1, "0", "141021", "s"), "field 3 (hour)"),
        (arow(1, "0", "14102124", "s"), "field 3 (hour)"),
        (arow(1, "x", "14102100", "s"), "field 2 (click)"),
        (
            arow(1, "0", "14102100", "s,extra"),
            "25 comma-separated fields, expected 24",
        ),
    ];
    for (k, (row, want)) in bad_rows.iter().enumerate() {
        let name = format!("bad{k}.csv");
        let text = [
            AVAZU_HEADER.to_string(),
            arow(0, "0", "14102100", "s"),
            row.clone(),
        ]
        .join("\n");
        let p = write(dir.path(), &name, &text);
        let e = read_avazu(&p, &ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains(&format!("{name}:3:")), "{e}");
        let (_, line, msg) = malformed(e);
        assert_eq!(line, 3);
        assert!(msg.contains(want), "{msg}");
        assert_lenient_hint(&msg);
    }
}

/// A strict read's malformed-row error names the CLI flag, the profile key and the library
/// option that skip such rows.
fn assert_lenient_hint(msg: &str) {
    assert!(
        msg.contains("`--lenient`")
            && msg.contains("`lenient = true`")
            && msg.contains("ReadOptions::lenient(true)"),
        "{msg}"
    );
}

#[test]
fn fnv1a64_known_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

fn sample_text(n: usize) -> String {
    (0..n)
        .map(|i| {
            let c = format!("{:08x}", (i as u32 % 17).wrapping_mul(2_654_435_761));
            let c2 = format!("{:x}", i % 5);
            crow(
                if i % 3 == 0 { "1" } else { "0" },
                &[&(i as i64 - 3).to_string(), "", &(i * i).to_string()],
                &[&c, &c2, "", &c],
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn cache_round_trips_and_equals_the_in_memory_reader() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "src.txt", &sample_text(57));
    for opts in [ReadOptions::default(), ReadOptions::modulo(3)] {
        let cache = dir.path().join("sub/cache.bin");
        let _ = std::fs::remove_file(&cache);
        let (mem, rep) = read_criteo(&src, &opts).unwrap();
        let mut last = (0, 0);
        let mut c = preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |d, t| {
            assert!(d >= last.0 && d <= t);
            last = (d, t);
        })
        .unwrap();
        let size = std::fs::metadata(&src).unwrap().len();
        assert_eq!(last, (2 * size, 2 * size));
        assert_eq!(c.len(), 57);
        assert_eq!((c.n_dense(), c.n_cat()), (13, 26));
        assert_eq!(c.counts(), &mem.counts[..]);
        assert_eq!(c.report(), &rep);
        assert_eq!(c.read_rows(0, c.len()).unwrap(), mem);
        assert_eq!(
            c.read_rows(10, 20).unwrap(),
            mem.subset(&(10..20).collect::<Vec<_>>())
        );
        assert_eq!(c.read_rows(5, 5).unwrap().len(), 0);
        let idx = [56, 3, 4, 5, 0, 0, 30];
        assert_eq!(c.read_indices(&idx).unwrap(), mem.subset(&idx));
        assert!(matches!(c.read_rows(50, 58), Err(DataError::Invalid(_))));
        assert!(matches!(c.read_indices(&[57]), Err(DataError::Invalid(_))));
        // no temp file left behind
        let names: Vec<_> = std::fs::read_dir(cache.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cache.bin")]);
    }
}

#[test]
fn cache_is_reused_only_when_source_and_options_match() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "src.txt", &sample_text(20));
    let cache = dir.path().join("c.bin");
    let opts = ReadOptions::modulo(4);
    let mut calls = 0;
    preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |_, _| {
        calls += 1
    })
    .unwrap();
    assert!(calls >= 3, "{calls}");
    // Reused: progress jumps straight to the end, and the file is untouched.
    let before = std::fs::read(&cache).unwrap();
    let mut calls = 0;
    preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |_, _| {
        calls += 1
    })
    .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(std::fs::read(&cache).unwrap(), before);
    // Other options: rebuilt.
    let c = preprocess(
        &src,
        CtrFormat::Criteo,
        &ReadOptions::default(),
        &cache,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(c.header().options, ReadOptions::default());
    assert_eq!(c.counts()[0], 17);
    // Changed source (different size): rebuilt.
    std::fs::write(&src, sample_text(25)).unwrap();
    let c = preprocess(
        &src,
        CtrFormat::Criteo,
        &ReadOptions::default(),
        &cache,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(c.len(), 25);
}

/// Issue 35.3: the cache was keyed by the source's size and modification time, so another file
/// of the same size and time (a copy with `cp -p`, `rsync -t`, an archive extracted again) read
/// the old rows.
#[test]
fn same_size_same_mtime_new_content_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let text = sample_text(20);
    let src = write(dir.path(), "src.txt", &text);
    let cache = dir.path().join("c.bin");
    let opts = ReadOptions::default();
    let old = preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |_, _| {}).unwrap();
    assert!(!old.header().source_sha256.is_empty());
    let mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
    // Every label flipped: same size, same time, other data.
    let flipped: String = text
        .lines()
        .map(|l| {
            let (label, rest) = l.split_at(1);
            format!("{}{rest}", if label == "1" { "0" } else { "1" })
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(flipped.len(), text.len());
    std::fs::write(&src, &flipped).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&src).unwrap().modified().unwrap(), mtime);
    let (mem, _) = read_criteo(&src, &opts).unwrap();
    let mut c = preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |_, _| {}).unwrap();
    assert_eq!(
        c.read_rows(0, c.len()).unwrap(),
        mem,
        "stale rows reused for a same-size, same-time source"
    );
    // Touching the file (same content) keeps the cache.
    let before = std::fs::read(&cache).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let mut calls = 0;
    preprocess(&src, CtrFormat::Criteo, &opts, &cache, &mut |_, _| {
        calls += 1
    })
    .unwrap();
    assert_eq!((calls, std::fs::read(&cache).unwrap()), (1, before));
}

#[test]
fn truncated_cache_names_the_file_and_says_delete() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "src.txt", &sample_text(10));
    let cache = dir.path().join("trunc.bin");
    preprocess(
        &src,
        CtrFormat::Criteo,
        &ReadOptions::default(),
        &cache,
        &mut |_, _| {},
    )
    .unwrap();
    let bytes = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &bytes[..bytes.len() - 7]).unwrap();
    let e = CtrCache::open(&cache).unwrap_err().to_string();
    assert!(
        e.contains("trunc.bin") && e.contains("truncated") && e.contains("delete"),
        "{e}"
    );
    // header cut in the middle
    std::fs::write(&cache, &bytes[..30]).unwrap();
    let e = CtrCache::open(&cache).unwrap_err().to_string();
    assert!(e.contains("trunc.bin") && e.contains("delete"), "{e}");
    // preprocess rebuilds a damaged cache of ours
    let c = preprocess(
        &src,
        CtrFormat::Criteo,
        &ReadOptions::default(),
        &cache,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(c.len(), 10);
    // a corrupted id is caught on read, with the row
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&cache, &bad).unwrap();
    let e = CtrCache::open(&cache)
        .unwrap()
        .read_rows(0, 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("trunc.bin") && e.contains("row 9") && e.contains("C26"),
        "{e}"
    );
    // so is a label other than 0/1
    let mut bad = bytes.clone();
    let rec = 4 * (1 + 13 + 26);
    let at = bytes.len() - 3 * rec;
    bad[at..at + 4].copy_from_slice(&0.5f32.to_le_bytes());
    std::fs::write(&cache, &bad).unwrap();
    let e = CtrCache::open(&cache)
        .unwrap()
        .read_rows(0, 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("trunc.bin") && e.contains("label 0.5 at row 7"),
        "{e}"
    );
}

#[test]
fn preprocess_never_overwrites_a_file_that_is_not_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "src.txt", &sample_text(5));
    let e = preprocess(
        &src,
        CtrFormat::Criteo,
        &ReadOptions::default(),
        &src,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a kiln CTR cache"), "{e}");
    assert_eq!(std::fs::read_to_string(&src).unwrap(), sample_text(5));
}

#[test]
fn random_split_is_seeded_disjoint_and_sized() {
    let a = random_split(100, &[80, 10, 5], 7).unwrap();
    assert_eq!(a, random_split(100, &[80, 10, 5], 7).unwrap());
    assert_ne!(a, random_split(100, &[80, 10, 5], 8).unwrap());
    assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), [80, 10, 5]);
    let mut all: Vec<usize> = a.concat();
    assert!(a.iter().all(|p| p.windows(2).all(|w| w[0] < w[1])));
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 95);
    assert!(all.iter().all(|&i| i < 100));
    // the held-out parts are not just the tail
    assert!(a[1].iter().any(|&i| i < 80));
    let full = random_split(10, &[10], 1).unwrap();
    assert_eq!(full[0], (0..10).collect::<Vec<_>>());
    let e = random_split(10, &[8, 3], 1).unwrap_err().to_string();
    assert!(e.contains("11") && e.contains("10"), "{e}");
    assert_eq!(
        random_split(0, &[0, 0], 1).unwrap(),
        vec![Vec::<usize>::new(); 2]
    );
}

#[test]
fn weights_arch_split_is_seeded_bernoulli_and_keeps_order() {
    let rows: Vec<usize> = (0..20_000).map(|i| i * 3).collect();
    let (w, a) = weights_arch_split(&rows, 0.8, 42);
    assert_eq!((w.clone(), a.clone()), weights_arch_split(&rows, 0.8, 42));
    assert_ne!(w, weights_arch_split(&rows, 0.8, 43).0);
    assert_eq!(w.len() + a.len(), rows.len());
    assert!(w.windows(2).all(|x| x[0] < x[1]) && a.windows(2).all(|x| x[0] < x[1]));
    let mut both = [w.clone(), a].concat();
    both.sort_unstable();
    assert_eq!(both, rows);
    // Binomial(20000, 0.8): sd ≈ 57
    let k = w.len() as f64;
    assert!((k - 16_000.0).abs() < 4.0 * 57.0, "{k}");
    assert_eq!(weights_arch_split(&rows, 1.0, 1).0, rows);
    assert_eq!(weights_arch_split(&rows, 0.0, 1).1, rows);
}

#[test]
fn subset_stats_and_positive_rate() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.txt", &sample_text(9));
    let (d, _) = read_criteo(&p, &ReadOptions::default()).unwrap();
    assert!((d.positive_rate() - 3.0 / 9.0).abs() < 1e-12);
    let s = d.subset(&[8, 0]);
    assert_eq!(s.len(), 2);
    assert_eq!(s.counts, d.counts);
    assert_eq!(s.labels, vec![d.labels[8], d.labels[0]]);
    assert_eq!(s.cat_row(0), d.cat_row(8));
    assert_eq!(s.dense_row(1), d.dense_row(0));
    let st = d.stats();
    assert!(st.contains("9 rows") && st.contains("3 positive"), "{st}");
    assert!(
        st.contains("C1=9") && st.contains("C2=5") && st.contains("C26=1"),
        "{st}"
    );
    assert!(d.subset(&[]).positive_rate().is_nan());
}

#[test]
fn empty_input_still_gives_every_feature_one_id() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.txt", "");
    let (d, rep) = read_criteo(&p, &ReadOptions::default()).unwrap();
    assert_eq!((d.len(), rep.rows), (0, 0));
    assert_eq!(d.counts, vec![1; 26]);
    let cache = dir.path().join("empty.bin");
    let mut c = preprocess(
        &p,
        CtrFormat::Criteo,
        &ReadOptions::default(),
        &cache,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(c.is_empty());
    assert_eq!(c.read_rows(0, 0).unwrap(), d);
    let p = write(
        dir.path(),
        "header-only.csv",
        &(AVAZU_HEADER.to_string() + "\n"),
    );
    let (d, _) = read_avazu(&p, &ReadOptions::default()).unwrap();
    assert_eq!((d.len(), d.counts.clone()), (0, vec![1; 22]));
}
