//! `kiln`: reproduce paper tables with one command. Parses arguments and dispatches on the
//! registry; every experiment lives in its paper's crate.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use kiln_cli::registry;
use kiln_experiment::{hub, BenchArgs, RunArgs};

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Reproduce ML papers on burn: one command per table, any backend",
    long_about = "kiln reruns the tables of the papers it reproduces. Each experiment has profiles: \
`smoke` (synthetic data, tiny model, about a minute), `mini` (real data and a small pretrained \
model, about 10 minutes on a laptop CPU) and `paper` (the paper's setting, for a GPU). Results go \
to results/<experiment>/<profile>/ as table.md, table.csv, run.json, plots (SVG + PNG) and \
predictions/ (per-example outputs in the field's format)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List experiments, their profiles and what each profile needs.
    List,
    /// Run an experiment and write its tables, plots, predictions and run.json.
    Reproduce {
        /// Experiment name (see `kiln list`), e.g. glue-pruning.
        experiment: String,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Throughput benchmarks, each beside PyTorch with KILN_PEER_PYTHON (the full list, by
    /// experiment, is under --help).
    Bench {
        #[command(flatten)]
        args: BenchArgs,
    },
    /// Recompute every table number that cites prediction files from those files, and say where
    /// each result came from: its commit, whether the tree had uncommitted changes, and whether
    /// the experiment's code (its crate, the crates it uses, its experiment file, Cargo.lock)
    /// changed since. Fails on any disagreement beyond the table's rounding.
    Verify {
        /// Folders holding run folders (each with a run.json), searched recursively.
        #[arg(default_value = "results")]
        folders: Vec<PathBuf>,
        /// Also fail on results from uncommitted or since-changed code, on folders without
        /// checks.json, and on seed statistics that cite no prediction files.
        #[arg(long)]
        strict: bool,
    },
    /// Render every experiment's result page, results/<experiment>/README.md, from the run
    /// records in its folder (each run also renders its own experiment's page when it finishes).
    Pages {
        /// The results folder.
        #[arg(default_value = "results")]
        results: PathBuf,
    },
    /// Download a model or dataset into the cache (sources and sha256 from datasets/registry.toml).
    Fetch {
        /// all-MiniLM-L6-v2 | bert-base-uncased | roberta-base | glue
        what: String,
        /// For glue: the tasks to fetch (default: all).
        #[arg(long, value_delimiter = ',')]
        tasks: Option<Vec<String>>,
        /// Cache root (default: KILN_CACHE, else datasets/cache).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    use clap::{CommandFactory, FromArgMatches};
    // The benchmark list comes from the registry, so --help names every one.
    let listing: String = registry::EXPERIMENTS
        .iter()
        .filter(|e| !e.benches().is_empty())
        .map(|e| {
            let names: Vec<&str> = e.benches().iter().map(|(b, _)| *b).collect();
            format!("  {:<18} {}\n", e.name(), names.join(", "))
        })
        .collect();
    let cmd = Cli::command().mut_subcommand("bench", |c| {
        c.after_help(format!(
            "Benchmarks (`--only` names), by experiment:\n{listing}Results go to <out>/bench/ as Markdown and CSV."
        ))
    });
    let cli = Cli::from_arg_matches(&cmd.get_matches())?;
    match cli.cmd {
        Cmd::List => {
            for e in registry::EXPERIMENTS {
                let info = e.list()?;
                println!("{}\n  {}", info.name, info.title);
                for (name, p) in &info.profiles {
                    println!("  --profile {name:<6} {} [{}]", p.description, p.inputs());
                }
            }
        }
        Cmd::Reproduce { experiment, args } => {
            registry::find(&experiment)?.reproduce(&args)?;
        }
        Cmd::Bench { args: a } => {
            let all = registry::benches();
            if let Some(bad) = a
                .only
                .iter()
                .flatten()
                .find(|x| !all.iter().any(|(b, _)| b == x))
            {
                let names: Vec<&str> = all.iter().map(|(b, _)| *b).collect();
                bail!("unknown benchmark `{bad}` for --only; choose from {names:?}");
            }
            for (name, run) in all {
                if a.wants(name) {
                    run(&a)?;
                }
            }
        }
        Cmd::Verify { folders, strict } => {
            let root = kiln_core::paths::workspace_root();
            let mut findings = Vec::new();
            for f in &folders {
                findings.extend(kiln_cli::verify::verify(f, &root)?);
            }
            for f in &findings {
                println!("{}", f.describe());
            }
            let disagree = findings.iter().filter(|f| !f.failures.is_empty()).count();
            let not_strict = findings.iter().filter(|f| !f.is_strictly_ok()).count();
            println!(
                "kiln verify: {} run folder(s); {disagree} with numbers that disagree with their prediction files; {not_strict} not fully checked or not from current committed code",
                findings.len()
            );
            if findings.is_empty() {
                bail!("no run folders (folders holding run.json) under {folders:?}");
            }
            if disagree > 0 {
                bail!("{disagree} run folder(s) report numbers their prediction files do not give");
            }
            if strict && not_strict > 0 {
                bail!("--strict: {not_strict} run folder(s) are not fully checked or not from current committed code");
            }
        }
        Cmd::Pages { results } => {
            for (path, page) in kiln_cli::verify::render_pages(&results)? {
                kiln_core::atomic_write(&path, page.as_bytes())?;
                println!("wrote {}", path.display());
            }
        }
        Cmd::Fetch { what, tasks, cache } => {
            let cache = cache.unwrap_or_else(kiln_core::paths::cache_dir);
            fetch(&what, tasks, &cache)?;
        }
    }
    Ok(())
}

fn fetch(what: &str, tasks: Option<Vec<String>>, cache: &std::path::Path) -> Result<()> {
    if what == "glue" {
        let names = tasks.unwrap_or_else(|| {
            kiln_data::GlueTask::ALL
                .iter()
                .map(|t| t.name().to_string())
                .collect()
        });
        for n in names {
            let t = kiln_data::GlueTask::parse(&n)?;
            let dir = hub::fetch_glue_task(t, &cache.join("glue"), cache)?;
            println!("GLUE {} -> {}", t.name(), dir.display());
        }
        return Ok(());
    }
    let name = if what == "minilm" {
        "all-MiniLM-L6-v2"
    } else {
        what
    };
    let entry = hub::entry(name)?;
    let dest = cache.join(&entry.cache);
    if dest.join("model.safetensors").exists() && hub::verify(&entry, &dest).is_ok() {
        println!("{name} already present at {}", dest.display());
        return Ok(());
    }
    match hub::fetch_registered(name, cache)? {
        Some(d) => println!("{name} -> {}", d.display()),
        None => bail!("datasets/registry.toml names no download source for `{name}`"),
    }
    Ok(())
}
