//! Issue 35, point 7: the experiment-file parser fed random mutations of the real
//! `experiments/*.toml` (truncation, byte flips, dropped / duplicated / swapped lines, a BOM,
//! Latin-1 bytes, CRLF, ...) must not panic, and must either parse or fail with an error naming
//! the file. The mutation fuzzer is kiln-data's (`crates/data/tests/fuzz/mod.rs`;
//! `KILN_FUZZ_CASES`, `KILN_FUZZ_SEED`, `KILN_FUZZ_CASE`).

#[path = "../../data/tests/fuzz/mod.rs"]
mod fuzz;

use kiln_experiment::file::{check_numbers_in, experiments_dir, load_from, parse_strict};
use kiln_experiment::ExperimentInfo;

#[test]
fn fuzz_experiment_files() {
    let dir = experiments_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "experiment files in {}: {files:?}",
        dir.display()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let original = std::fs::read(&path).unwrap();
        // As `kiln list` reads it, and as a plain TOML document.
        fuzz::fuzz_file(&format!("toml-{name}"), 150, &name, original, |p| {
            let info: ExperimentInfo = load_from(p)?;
            let doc: toml::Value = load_from(p)?;
            // As `reproduce` reads it: strictly (serde_ignored) and with every profile's
            // numbers checked. Both may refuse a mutation; neither may panic, and a refusal
            // names the file (the `?` hands it to the fuzzer, which checks that).
            let text = std::fs::read_to_string(p)?;
            let _strict: ExperimentInfo = match parse_strict(&text, p) {
                Ok(v) => v,
                // ProfileInfo reads a subset of each profile's keys: unknown keys are expected.
                Err(e) if e.to_string().contains("unknown setting") => info.clone(),
                Err(e) => return Err(e),
            };
            for name in info.profiles.keys() {
                check_numbers_in(&text, p, name)?;
            }
            Ok::<_, anyhow::Error>((info.profiles.len(), doc.as_table().map_or(0, |t| t.len())))
        });
    }
}
