//! Where kiln looks for things: the workspace, its `datasets/cache`, and the shared test data.

use std::path::{Path, PathBuf};

/// The kiln checkout: the nearest ancestor of the working directory holding the workspace
/// manifest and `experiments/`, else this crate's compile-time location two levels up, else the
/// working directory (an installed binary).
pub fn workspace_root() -> PathBuf {
    // Walk up from the working directory to the workspace manifest first: the compile-time path
    // below is wrong when a shared target directory reuses artifacts built from another checkout
    // (cargo's hashes for workspace members do not depend on where the checkout lives).
    let is_root = |d: &Path| {
        std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
            && d.join("experiments").is_dir()
    };
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(d) = cwd.ancestors().find(|d| is_root(d)) {
            return d.to_path_buf();
        }
    }
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if is_root(&compiled) {
        compiled.canonicalize().unwrap_or(compiled)
    } else {
        std::env::current_dir().unwrap_or_default()
    }
}

/// `datasets/cache` (git-ignored): downloads, unpacked wheels, fine-tuned checkpoints.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KILN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("datasets/cache"))
}

/// The shared real data used by tests and mini profiles: `KILN_SHARED_DATA`, else the first
/// `shared/data` beside the checkout or beside one of its parent folders (`../shared/data` for a
/// checkout next to it; a clone nested deeper, as CI makes, finds the same folder). `None` when
/// absent: tests skip through [`skip`].
pub fn shared_data() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KILN_SHARED_DATA") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    let root = workspace_root();
    root.ancestors()
        .skip(1)
        .map(|d| d.join("shared/data"))
        .find(|p| p.is_dir())
}

/// The one way a test skips for a missing real input: it prints a SKIP line and appends it to
/// `KILN_SKIP_LOG` (which `just test` counts and prints at the end, so no skip is silent); when
/// `KILN_REQUIRE_REAL_DATA` is set (CI) it fails instead, so a missing input cannot pass.
pub fn skip(what: &str) {
    if std::env::var_os("KILN_REQUIRE_REAL_DATA").is_some() {
        panic!("{what} is required (KILN_REQUIRE_REAL_DATA is set) but missing");
    }
    log_skip(&format!("{what} not present"));
}

/// A skip for an optional peer that CI does not install (PyTorch with `KILN_PEER_PYTHON`, a
/// Vulkan driver): logged and counted like [`skip`], never fatal.
pub fn skip_optional(what: &str) {
    log_skip(what);
}

fn log_skip(line: &str) {
    eprintln!("SKIP: {line}");
    if let Some(log) = std::env::var_os("KILN_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The all-MiniLM-L6-v2 directory (`KILN_MINILM`, else `datasets/cache/all-MiniLM-L6-v2`), if it
/// has been fetched (`just fetch all-MiniLM-L6-v2`).
pub fn minilm_dir() -> Option<PathBuf> {
    let p = std::env::var_os("KILN_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("all-MiniLM-L6-v2"));
    p.join("model.safetensors").exists().then_some(p)
}
