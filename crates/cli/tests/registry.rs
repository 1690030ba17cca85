//! The registry and the experiment files agree: every registered experiment lists its profiles,
//! and every `experiments/*.toml` is registered (adding a paper is one crate, one TOML, one line
//! in `crates/cli/src/registry.rs`).

#[test]
fn every_registered_experiment_lists_its_profiles() {
    for e in kiln_cli::registry::EXPERIMENTS {
        let info = e.list().unwrap();
        assert_eq!(info.name, e.name());
        assert!(
            info.profiles.contains_key("smoke"),
            "{} has no smoke profile",
            e.name()
        );
        for (name, p) in &info.profiles {
            assert!(
                !p.inputs().is_empty() && !p.description.is_empty(),
                "{}: profile {name} names no inputs or description",
                e.name()
            );
        }
    }
}

/// Every profile of every experiment file reads strictly (no key that no setting reads) and
/// passes the checks `reproduce` makes before running.
#[test]
fn every_experiment_file_passes_its_checks() {
    for e in kiln_cli::registry::EXPERIMENTS {
        e.check_file()
            .unwrap_or_else(|err| panic!("{}: {err:#}", e.name()));
    }
}

#[test]
fn every_experiment_file_is_registered() {
    let names = kiln_cli::registry::names();
    for f in kiln_experiment::file::all_names().unwrap() {
        assert!(
            names.contains(&f.as_str()),
            "experiments/{f}.toml is not registered in crates/cli/src/registry.rs"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        names.len(),
        "an experiment is registered twice"
    );
}

#[test]
fn benchmark_names_are_unique() {
    let b = kiln_cli::registry::benches();
    let mut names: Vec<&str> = b.iter().map(|(n, _)| *n).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(n, names.len());
    assert!(n >= 4, "encoder, pruning, ltp, gpt2");
}

/// The committed result pages are what `kiln pages` renders from the committed run records: a
/// page edited by hand, or left behind when a run changed, fails here (`kiln pages` fixes it).
#[test]
fn committed_result_pages_are_current() {
    let results = kiln_core::paths::workspace_root().join("results");
    let pages = kiln_cli::verify::render_pages(&results).unwrap();
    assert!(
        !pages.is_empty(),
        "no result folders under {}",
        results.display()
    );
    for (path, page) in pages {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == page,
            "{} is not what `kiln pages` renders from the run records; run `kiln pages`",
            path.display()
        );
    }
}

/// `kiln verify` over the committed results: every number a committed table cites prediction
/// files for recomputes from them. (Folders from before checks.json are reported by
/// `kiln verify`, not failed here, until they are regenerated; `kiln verify --strict` fails on
/// them.)
#[test]
fn committed_results_recompute_from_their_prediction_files() {
    let root = kiln_core::paths::workspace_root();
    let findings = kiln_cli::verify::verify(&root.join("results"), &root).unwrap();
    assert!(!findings.is_empty());
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| !f.failures.is_empty())
        .map(|f| f.describe())
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
