//! `kiln`: reproduce paper tables with one command.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use kiln_cli::bench::{self, BenchArgs};
use kiln_cli::experiments::{self, RunArgs};
use kiln_core::DeviceChoice;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Reproduce ML papers on burn: one command per table, any backend",
    long_about = "kiln reruns the tables of the papers it reproduces. Each experiment has profiles: \
`smoke` (synthetic data, tiny model, about a minute), `mini` (real data and a small pretrained \
model, about 10 minutes on a laptop CPU) and `paper` (the paper's setting, for a GPU). Results go \
to results/<experiment>/<profile>/ as table.md, table.csv, run.json and plots."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List experiments, their profiles and what each profile needs.
    List,
    /// Run an experiment and write its table, plots and run.json.
    Reproduce {
        /// Experiment name (see `kiln list`), e.g. glue-finetune.
        experiment: String,
        /// smoke | mini | paper. Default: the best profile whose inputs resolve (it says which).
        #[arg(long)]
        profile: Option<String>,
        /// Backend device: flex (CPU, default), ndarray, wgpu, vulkan, cuda, cuda:N. Non-flex
        /// backends need the matching cargo feature (`just backend=wgpu ...`).
        #[arg(long, default_value = "flex", env = "KILN_DEVICE")]
        device: String,
        /// Folder with GLUE data (e.g. glue_data/ from download_glue_data.py). Else KILN_DATA,
        /// datasets/cache/glue, ../shared/data, then a hub download.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HuggingFace model directory (config.json, model.safetensors, tokenizer.json). Else
        /// KILN_MODELS/<name>, datasets/cache/<name>, then a download.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Comma-separated subset of the profile's tasks (e.g. sst2,mrpc).
        #[arg(long, value_delimiter = ',')]
        tasks: Option<Vec<String>>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Never try to download missing inputs.
        #[arg(long)]
        no_download: bool,
        /// Override the training-subset size of every task (quick trials; recorded in run.json).
        #[arg(long)]
        train_examples: Option<usize>,
        /// Override the number of epochs of every task.
        #[arg(long)]
        epochs: Option<f64>,
    },
    /// Throughput benchmarks, each beside PyTorch with KILN_PEER_PYTHON: encoder forward,
    /// pruned vs dense encoder, token removal vs dense, GPT-2 training steps.
    Bench {
        /// Only these benchmarks, comma-separated: encoder, pruning, ltp, gpt2 (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
        /// Devices to measure, comma-separated (default: flex, plus ndarray when compiled in).
        #[arg(long, value_delimiter = ',')]
        devices: Option<Vec<String>>,
        /// Model directory (default: the fetched all-MiniLM-L6-v2).
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        seq: usize,
        /// Timed runs (median reported).
        #[arg(long, default_value_t = 5)]
        iters: usize,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Download a model or dataset into datasets/cache (see datasets/registry.toml).
    Fetch {
        /// all-MiniLM-L6-v2 | bert-base-uncased | glue
        what: String,
        /// For glue: the tasks to fetch (default: all).
        #[arg(long, value_delimiter = ',')]
        tasks: Option<Vec<String>>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::List => {
            for e in kiln_cli::settings::all()? {
                let status = if experiments::IMPLEMENTED.contains(&e.name.as_str()) {
                    ""
                } else {
                    " (not implemented yet)"
                };
                println!("{}{status}\n  {}", e.name, e.title);
                for (name, p) in &e.profiles {
                    println!("  --profile {name:<6} {} [{}]", p.description, p.inputs());
                }
            }
        }
        Cmd::Reproduce {
            experiment,
            profile,
            device,
            data_dir,
            model,
            out,
            tasks,
            seed,
            no_download,
            train_examples,
            epochs,
        } => {
            let args = RunArgs {
                profile,
                device: DeviceChoice::parse(&device)?,
                data_dir,
                model,
                out,
                tasks,
                seed,
                download: !no_download,
                train_examples,
                epochs,
            };
            experiments::run(&experiment, &args)?;
        }
        Cmd::Bench {
            only,
            devices,
            model,
            batch,
            seq,
            iters,
            out,
        } => {
            let devices = match devices {
                Some(d) => d
                    .iter()
                    .map(|s| DeviceChoice::parse(s))
                    .collect::<Result<Vec<_>, _>>()?,
                None => {
                    let mut v = vec![DeviceChoice::Flex];
                    if DeviceChoice::NdArray.device().is_ok() {
                        v.push(DeviceChoice::NdArray);
                    }
                    v
                }
            };
            bench::run(&BenchArgs {
                only,
                devices,
                model,
                batch,
                seq,
                iters,
                out,
            })?;
        }
        Cmd::Fetch { what, tasks } => {
            let cache = kiln_core::paths::cache_dir();
            match what.as_str() {
                "minilm" | "all-MiniLM-L6-v2" => {
                    let dest = cache.join("all-MiniLM-L6-v2");
                    kiln_cli::hub::fetch_minilm(&dest)?;
                    println!("all-MiniLM-L6-v2 -> {}", dest.display());
                }
                "bert-base-uncased" => {
                    let dest = cache.join("bert-base-uncased");
                    kiln_cli::hub::fetch_model("google-bert/bert-base-uncased", &dest)?;
                    println!("bert-base-uncased -> {}", dest.display());
                }
                "glue" => {
                    let names = tasks.unwrap_or_else(|| kiln_data::GlueTask::ALL.iter().map(|t| t.name().to_string()).collect());
                    for n in names {
                        let t = kiln_data::GlueTask::parse(&n)?;
                        let dir = kiln_cli::hub::fetch_glue_task(t, &cache.join("glue"))?;
                        println!("GLUE {} -> {}", t.name(), dir.display());
                    }
                }
                other => anyhow::bail!("unknown fetch target `{other}`; expected all-MiniLM-L6-v2, bert-base-uncased or glue"),
            }
        }
    }
    Ok(())
}
