//! One resolver for data and checkpoints, used by every experiment:
//! explicit flag (`--data-dir`, `--model`) → environment (`KILN_DATA`, `KILN_MODELS`) →
//! the cache (`datasets/cache` or `--cache`) → the shared real data (`../shared/data`, or
//! `KILN_SHARED_DATA`) → a download where the registry names a source → an error that says what
//! to put where.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use kiln_data::{GlueTask, Split};

use crate::{hub, RunArgs};

/// A resolved path and how it was found (printed, and recorded in run.json).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: PathBuf,
    pub how: String,
}

impl Resolved {
    fn new(path: PathBuf, how: &str) -> Self {
        Self {
            path,
            how: how.into(),
        }
    }
}

/// Train and dev files of a task.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    pub train: PathBuf,
    pub dev: PathBuf,
    pub how: String,
}

/// Where a run looks for its inputs.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub data_dir: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub download: bool,
    pub cache: PathBuf,
}

fn is_model_dir(p: &Path) -> bool {
    p.join("config.json").exists() && p.join("model.safetensors").exists()
}

impl Resolver {
    pub fn from_args(a: &RunArgs) -> Self {
        Self {
            data_dir: a.data_dir.clone(),
            model: a.model.clone(),
            download: a.download(),
            cache: a.cache_root(),
        }
    }

    /// A resolver with no flags and no downloads over `cache` (benchmarks, tests).
    pub fn offline(cache: &Path) -> Self {
        Self {
            data_dir: None,
            model: None,
            download: false,
            cache: cache.to_path_buf(),
        }
    }

    /// Data roots in resolution order (`--data-dir`, `KILN_DATA`, cache, shared data).
    pub fn data_roots(&self) -> Vec<Resolved> {
        let mut v = Vec::new();
        if let Some(f) = &self.data_dir {
            v.push(Resolved::new(f.clone(), "--data-dir"));
        }
        if let Some(env) = std::env::var_os("KILN_DATA") {
            v.push(Resolved::new(PathBuf::from(env), "KILN_DATA"));
        }
        v.push(Resolved::new(self.cache.clone(), "datasets/cache"));
        if let Some(s) = kiln_core::paths::shared_data() {
            v.push(Resolved::new(s, "../shared/data"));
        }
        v
    }

    /// Model `name` found locally (no download).
    pub fn find_model(&self, name: &str) -> Option<Resolved> {
        if let Some(f) = &self.model {
            return Some(Resolved::new(f.clone(), "--model"));
        }
        if let Some(env) = std::env::var_os("KILN_MODELS") {
            let p = PathBuf::from(env).join(name);
            if is_model_dir(&p) {
                return Some(Resolved::new(p, "KILN_MODELS"));
            }
        }
        let p = self.cache.join(name);
        is_model_dir(&p).then(|| Resolved::new(p, "datasets/cache"))
    }

    /// Model `name`, downloaded from its registry source if allowed.
    pub fn model(&self, name: &str) -> Result<Resolved> {
        if let Some(r) = self.find_model(name) {
            return Ok(r);
        }
        let dest = self.cache.join(name);
        if self.download {
            match hub::fetch_registered(name, &self.cache) {
                Ok(Some(path)) => return Ok(Resolved::new(path, "downloaded")),
                Ok(None) => {}
                Err(e) => eprintln!("download of {name} failed: {e:#}"),
            }
        }
        bail!(
            "model `{name}` not found. Put a HuggingFace directory (config.json, model.safetensors, tokenizer.json) at {}, \
             pass --model DIR, or set KILN_MODELS to a folder containing `{name}/`{}",
            dest.display(),
            if name == "all-MiniLM-L6-v2" { " (or run `just fetch all-MiniLM-L6-v2`)" } else { "" }
        )
    }

    /// A folder `name` (e.g. `wikitext-2`) holding every file of `files`: `--data-dir` itself or
    /// its `name/`, then `name/` under `KILN_DATA`, the cache and the shared data.
    pub fn find_folder(&self, name: &str, files: &[&str]) -> Option<Resolved> {
        let has = |d: &Path| files.iter().all(|f| d.join(f).exists());
        let mut cands = Vec::new();
        if let Some(f) = &self.data_dir {
            cands.push(Resolved::new(f.clone(), "--data-dir"));
        }
        for r in self.data_roots() {
            cands.push(Resolved::new(r.path.join(name), &r.how));
        }
        cands.into_iter().find(|r| has(&r.path))
    }

    /// [`Resolver::find_folder`], or an error naming the files and where they may go.
    pub fn folder(&self, name: &str, files: &[&str]) -> Result<Resolved> {
        if let Some(r) = self.find_folder(name, files) {
            return Ok(r);
        }
        bail!(
            "{name} not found: a folder with {} is needed; pass it with --data-dir, or put it at {} (looked in: {})",
            files.join(", "),
            self.cache.join(name).display(),
            self.tried(name)
        )
    }

    /// A file at `rel` under a data root (`tokenizers/gpt2/tokenizer.json`).
    pub fn find_file(&self, rel: &str) -> Option<Resolved> {
        self.data_roots()
            .into_iter()
            .map(|r| Resolved::new(r.path.join(rel), &r.how))
            .find(|r| r.path.is_file())
    }

    /// [`Resolver::find_file`], or an error naming where it may go.
    pub fn file(&self, rel: &str) -> Result<Resolved> {
        if let Some(r) = self.find_file(rel) {
            return Ok(r);
        }
        bail!(
            "{rel} not found; put it at {} (looked in: {})",
            self.cache.join(rel).display(),
            self.tried(rel)
        )
    }

    fn tried(&self, rel: &str) -> String {
        self.data_roots()
            .iter()
            .map(|r| r.path.join(rel).display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// GLUE roots: each data root itself, its `glue_data/` and `glue/` (the cache's download
    /// folder), and the shared data's `glue_derived/` (tasks derived from the originals).
    pub fn glue_roots(&self) -> Vec<Resolved> {
        let mut v = Vec::new();
        for r in self.data_roots() {
            for sub in ["", "glue_data", "glue", "glue_derived"] {
                let p = if sub.is_empty() {
                    r.path.clone()
                } else {
                    r.path.join(sub)
                };
                v.push(Resolved::new(p, &r.how));
            }
        }
        v
    }

    /// A GLUE task's files found locally.
    pub fn find_task(&self, task: GlueTask) -> Option<TaskFiles> {
        self.glue_roots().into_iter().find_map(|r| {
            task_files_in(&r.path, task).map(|(train, dev)| TaskFiles {
                train,
                dev,
                how: r.how.clone(),
            })
        })
    }

    /// A GLUE task's files, downloading the hub's parquet files if allowed.
    pub fn task(&self, task: GlueTask) -> Result<TaskFiles> {
        if let Some(t) = self.find_task(task) {
            return Ok(t);
        }
        let cache = self.cache.join("glue");
        if self.download {
            match hub::fetch_glue_task(task, &cache, &self.cache) {
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

    /// SQuAD JSON files (`train-v1.1.json`/`dev-v1.1.json`, or `-v2.0`) in a `squad/` folder of
    /// any GLUE root, or directly in `--data-dir`. Not downloaded: the official files come from
    /// the SQuAD site.
    pub fn squad(&self, version_2: bool) -> Result<TaskFiles> {
        let v = if version_2 { "v2.0" } else { "v1.1" };
        let (train, dev) = (format!("train-{v}.json"), format!("dev-{v}.json"));
        let mut tried = Vec::new();
        for r in self.glue_roots() {
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
            "SQuAD {v}: {train} and {dev} not found (looked in {}); put the official files (https://rajpurkar.github.io/SQuAD-explorer/) in {}/glue/squad/ or pass --data-dir",
            tried.join(", "),
            self.cache.display()
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(data_dir: Option<&Path>, cache: &Path) -> Resolver {
        Resolver {
            data_dir: data_dir.map(Path::to_path_buf),
            ..Resolver::offline(cache)
        }
    }

    #[test]
    fn missing_inputs_say_what_to_put_where() {
        let c = tempfile::tempdir().unwrap();
        let r = resolver(Some(&c.path().join("missing")), c.path());
        let e = r.model("bert-large-nonexistent").unwrap_err().to_string();
        assert!(
            e.contains("--model") && e.contains("KILN_MODELS") && e.contains("config.json"),
            "{e}"
        );
        let e = r.task(GlueTask::Qqp).unwrap_err().to_string();
        assert!(
            e.contains("QQP/train.tsv") && e.contains("--data-dir"),
            "{e}"
        );
        let e = r
            .folder("wikitext-x", &["valid.txt"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("valid.txt") && e.contains("--data-dir"), "{e}");
    }

    #[test]
    fn flag_wins_over_cache() {
        let d = tempfile::tempdir().unwrap();
        let mut r = resolver(None, d.path());
        r.model = Some(d.path().to_path_buf());
        let m = r.find_model("all-MiniLM-L6-v2").unwrap();
        assert_eq!((m.path.as_path(), m.how.as_str()), (d.path(), "--model"));
        let root = d.path().join("glue");
        std::fs::create_dir_all(root.join("QQP")).unwrap();
        let header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n";
        std::fs::write(root.join("QQP/train.tsv"), header).unwrap();
        std::fs::write(root.join("QQP/dev.tsv"), header).unwrap();
        let r = resolver(Some(&root), d.path());
        assert_eq!(r.find_task(GlueTask::Qqp).unwrap().how, "--data-dir");
        // A folder given by flag is used as it is.
        std::fs::write(d.path().join("valid.txt"), "x").unwrap();
        let r = resolver(Some(d.path()), &d.path().join("no-cache"));
        let f = r.find_folder("wikitext-2", &["valid.txt"]).unwrap();
        assert_eq!(f.path, d.path());
    }
}
