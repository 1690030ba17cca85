//! Data and checkpoint resolution (DESIGN.md): explicit flag -> environment (`KILN_DATA`,
//! `KILN_MODELS`) -> `datasets/cache` -> download -> a clear error saying what to put where.
//! The shared real-data folder (`../shared/data`) is consulted after the cache, so a
//! development machine runs the real-data profiles without downloads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use kiln_data::{GlueTask, Split};

/// A resolved path and how it was found (printed, and recorded in run.json).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: PathBuf,
    pub how: String,
}

/// Hub repo for a model name kiln knows.
fn hub_repo(name: &str) -> Option<&'static str> {
    match name {
        "bert-base-uncased" => Some("google-bert/bert-base-uncased"),
        "roberta-base" => Some("FacebookAI/roberta-base"),
        _ => None,
    }
}

fn is_model_dir(p: &Path) -> bool {
    p.join("config.json").exists() && p.join("model.safetensors").exists()
}

/// Finds model `name` locally (no download).
pub fn find_model(name: &str, flag: Option<&Path>) -> Option<Resolved> {
    if let Some(f) = flag {
        return Some(Resolved {
            path: f.to_path_buf(),
            how: "--model".into(),
        });
    }
    if let Some(env) = std::env::var_os("KILN_MODELS") {
        let p = PathBuf::from(env).join(name);
        if is_model_dir(&p) {
            return Some(Resolved {
                path: p,
                how: "KILN_MODELS".into(),
            });
        }
    }
    let p = kiln_core::paths::cache_dir().join(name);
    if is_model_dir(&p) {
        return Some(Resolved {
            path: p,
            how: "datasets/cache".into(),
        });
    }
    None
}

/// Finds model `name`, downloading it if allowed.
pub fn resolve_model(name: &str, flag: Option<&Path>, download: bool) -> Result<Resolved> {
    if let Some(r) = find_model(name, flag) {
        return Ok(r);
    }
    let dest = kiln_core::paths::cache_dir().join(name);
    if download {
        let attempt = if name == "all-MiniLM-L6-v2" {
            Some(crate::hub::fetch_minilm(&dest))
        } else {
            hub_repo(name).map(|repo| crate::hub::fetch_model(repo, &dest))
        };
        match attempt {
            Some(Ok(())) => {
                return Ok(Resolved {
                    path: dest,
                    how: "downloaded".into(),
                })
            }
            Some(Err(e)) => eprintln!("download of {name} failed: {e:#}"),
            None => {}
        }
    }
    bail!(
        "model `{name}` not found. Put a HuggingFace directory (config.json, model.safetensors, tokenizer.json) at {}, \
         pass --model DIR, or set KILN_MODELS to a folder containing `{name}/`{}",
        dest.display(),
        if name == "all-MiniLM-L6-v2" { " (or run `just fetch-minilm`)" } else { "" }
    )
}

/// Candidate GLUE roots in resolution order.
pub fn glue_roots(flag: Option<&Path>) -> Vec<Resolved> {
    let mut v = Vec::new();
    if let Some(f) = flag {
        v.push(Resolved {
            path: f.to_path_buf(),
            how: "--data-dir".into(),
        });
    }
    if let Some(env) = std::env::var_os("KILN_DATA") {
        let p = PathBuf::from(env);
        v.push(Resolved {
            path: p.join("glue_data"),
            how: "KILN_DATA".into(),
        });
        v.push(Resolved {
            path: p.clone(),
            how: "KILN_DATA".into(),
        });
    }
    v.push(Resolved {
        path: kiln_core::paths::cache_dir().join("glue"),
        how: "datasets/cache".into(),
    });
    if let Some(s) = kiln_core::paths::shared_data() {
        v.push(Resolved {
            path: s.join("glue_data"),
            how: "../shared/data".into(),
        });
        v.push(Resolved {
            path: s.join("glue_derived"),
            how: "../shared/data".into(),
        });
    }
    v
}

/// Train and dev files of a task.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    pub train: PathBuf,
    pub dev: PathBuf,
    pub how: String,
}

fn task_files_in(root: &Path, task: GlueTask) -> Option<(PathBuf, PathBuf)> {
    let dir = root.join(task.dir_name());
    let tsv_train = task.locate(root, Split::Train);
    let tsv_dev = task.locate(root, Split::Dev);
    if tsv_train.exists() && tsv_dev.exists() {
        return Some((tsv_train, tsv_dev));
    }
    let dev_pq = tsv_dev.with_extension("parquet");
    let dev_pq = if dev_pq.exists() {
        dev_pq
    } else {
        dir.join("dev.parquet")
    };
    let train_pq = dir.join("train.parquet");
    (train_pq.exists() && dev_pq.exists()).then_some((train_pq, dev_pq))
}

/// Finds a task's files locally.
pub fn find_task(task: GlueTask, flag: Option<&Path>) -> Option<TaskFiles> {
    glue_roots(flag).into_iter().find_map(|r| {
        task_files_in(&r.path, task).map(|(train, dev)| TaskFiles {
            train,
            dev,
            how: r.how.clone(),
        })
    })
}

/// SQuAD JSON files (`train-v1.1.json`/`dev-v1.1.json`, or `-v2.0` with `version_2`) in a
/// `squad/` folder of any GLUE root (`--data-dir`, KILN_DATA, datasets/cache, ../shared/data)
/// or directly in `--data-dir`. Not downloaded: the official files come from the SQuAD site.
pub fn resolve_squad(version_2: bool, flag: Option<&Path>) -> Result<TaskFiles> {
    let v = if version_2 { "v2.0" } else { "v1.1" };
    let (train, dev) = (format!("train-{v}.json"), format!("dev-{v}.json"));
    let mut tried = Vec::new();
    for r in glue_roots(flag) {
        for dir in [r.path.join("squad"), r.path.clone()] {
            if dir.join(&train).exists() && dir.join(&dev).exists() {
                return Ok(TaskFiles {
                    train: dir.join(&train),
                    dev: dir.join(&dev),
                    how: r.how.clone(),
                });
            }
            tried.push(dir.display().to_string());
        }
    }
    bail!(
        "SQuAD {v}: {train} and {dev} not found (looked in {}); put the official files (https://rajpurkar.github.io/SQuAD-explorer/) in datasets/cache/glue/squad/ or pass --data-dir",
        tried.join(", ")
    )
}

/// Finds a task's files, downloading the hub's parquet files if allowed.
pub fn resolve_task(task: GlueTask, flag: Option<&Path>, download: bool) -> Result<TaskFiles> {
    if let Some(t) = find_task(task, flag) {
        return Ok(t);
    }
    let cache = kiln_core::paths::cache_dir().join("glue");
    if download {
        match crate::hub::fetch_glue_task(task, &cache) {
            Ok(_) => {
                if let Some((train, dev)) = task_files_in(&cache, task) {
                    return Ok(TaskFiles {
                        train,
                        dev,
                        how: "downloaded".into(),
                    });
                }
            }
            Err(e) => eprintln!("download of GLUE {} failed: {e:#}", task.name()),
        }
    }
    bail!(
        "GLUE {} not found. Put {}/train.tsv and {} under a GLUE folder and pass it with --data-dir (or KILN_DATA), \
         or put the hub's parquet files at {}/{}/{{train,dev}}.parquet",
        task.name(),
        task.dir_name(),
        task.split_file(Split::Dev),
        cache.display(),
        task.dir_name()
    )
}
