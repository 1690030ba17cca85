//! Atomic writes and hashing: an interrupted run must never leave half a result file.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::CoreError;

/// Writes `bytes` to `path` by writing a sibling temp file and renaming it over the target.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), CoreError> {
    let werr = |source| CoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

/// Swaps two existing paths (folders or files) in one step, so that a reader, or a kill at any
/// instant, sees either both old names or both new ones: Linux's `renameat2(RENAME_EXCHANGE)`.
/// `Ok(false)` where the platform or file system cannot (not Linux, or a file system without
/// exchange support, such as some network and FUSE mounts: EINVAL, ENOSYS, EOPNOTSUPP): the caller then falls back to two renames.
pub fn exchange_paths(a: &Path, b: &Path) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => Ok(true),
            Err(e)
                if [
                    rustix::io::Errno::INVAL,
                    rustix::io::Errno::NOSYS,
                    rustix::io::Errno::OPNOTSUPP,
                    rustix::io::Errno::NOTSUP,
                ]
                .contains(&e) =>
            {
                Ok(false)
            }
            Err(e) => Err(std::io::Error::from(e)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, CoreError> {
    let rerr = |source| CoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(rerr)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(rerr)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("kiln-core-aw-{}", std::process::id()));
        let p = dir.join("sub/a.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .collect();
        assert!(leftovers.is_empty());
        // sha256("two")
        assert_eq!(
            sha256_file(&p).unwrap(),
            "3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn exchange_swaps_two_folders() {
        let d = tempfile_dir("ex");
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("f"), "A").unwrap();
        std::fs::write(b.join("f"), "B").unwrap();
        let swapped = exchange_paths(&a, &b).unwrap();
        if cfg!(target_os = "linux") {
            assert!(
                swapped,
                "RENAME_EXCHANGE should work on a local Linux file system"
            );
        }
        if swapped {
            assert_eq!(std::fs::read_to_string(a.join("f")).unwrap(), "B");
            assert_eq!(std::fs::read_to_string(b.join("f")).unwrap(), "A");
        }
        // A missing side is an error, not a silent rename.
        assert!(exchange_paths(&a, &d.join("missing")).is_err() || !swapped);
        std::fs::remove_dir_all(d).unwrap();
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kiln-core-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
