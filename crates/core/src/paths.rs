//! Where kiln looks for things: the workspace, its `datasets/cache`, and the shared test data.

use std::path::PathBuf;

/// The kiln checkout (compile-time location of this crate, two levels up), falling back to the
/// current directory for an installed binary.
pub fn workspace_root() -> PathBuf {
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if compiled.join("Cargo.toml").exists() {
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

/// The shared real data used by tests (`../shared/data` next to the checkout, or
/// `KILN_SHARED_DATA`). `None` when absent: tests skip with a message.
pub fn shared_data() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KILN_SHARED_DATA") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    [
        workspace_root().join("../shared/data"),
        PathBuf::from("/work/shared/data"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// For tests that need real inputs: prints a SKIP line and returns, or, when
/// `KILN_REQUIRE_REAL_DATA` is set (CI), fails, so a missing input cannot pass silently.
pub fn skip(what: &str) {
    if std::env::var_os("KILN_REQUIRE_REAL_DATA").is_some() {
        panic!("{what} is required (KILN_REQUIRE_REAL_DATA is set) but missing");
    }
    eprintln!("SKIP: {what} not present");
}

/// The all-MiniLM-L6-v2 directory (`KILN_MINILM`, else `datasets/cache/all-MiniLM-L6-v2`), if it
/// has been fetched (`just fetch-minilm`).
pub fn minilm_dir() -> Option<PathBuf> {
    let p = std::env::var_os("KILN_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("all-MiniLM-L6-v2"));
    p.join("model.safetensors").exists().then_some(p)
}
