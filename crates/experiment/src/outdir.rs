//! The results folder of one run: checked and locked before any work, recovered after a kill,
//! swapped in whole at the end.
//!
//! A run holds an exclusive lock on `<out>/<experiment>/.<profile>.lock` from its start to its
//! end, so a second run writing the same folder fails at once, naming the holder, instead of
//! after all its compute (or, worse, silently replacing the other's results). The lock is an OS
//! file lock (`flock`), released by the kernel when the process dies, so a killed run never
//! leaves a stale lock behind (at most an unlocked file, reused by the next run); the file's
//! text only says who holds it, and a run that ends removes it.
//!
//! The lock is advisory and as good as the file system's `flock`: local file systems (and NFS
//! with its default lock handling) honour it across processes; a mount where `flock` is local
//! to one host (NFS with `local_lock=flock`) does not protect runs on two hosts writing one
//! folder.
//!
//! Holding the lock also makes the leftovers of an interrupted run safe to act on: any
//! `.<profile>.staging-*` folder is a dead run's unfinished output and is removed; an
//! `.<profile>.old-*` folder is a previous result moved aside by a run killed between its two
//! renames (possible only where the file system cannot exchange two folders in one step), and is
//! put back when the results folder itself is missing.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// An exclusive claim on one results folder, held for the whole run.
#[derive(Debug)]
pub struct OutLock {
    file: File,
    path: PathBuf,
    /// What the start-up recovery did (printed, and kept for tests).
    pub recovered: Vec<String>,
}

impl OutLock {
    /// Checks that `out`'s parent is (or can become) a folder, takes the lock or fails naming its
    /// holder, and cleans up after interrupted runs.
    pub fn acquire(out: &Path) -> Result<Self> {
        let (parent, leaf) = split(out);
        check_out(out)?;
        std::fs::create_dir_all(&parent).with_context(|| {
            format!(
                "{}: cannot create the results folder; pass a writable --out",
                parent.display()
            )
        })?;
        let path = parent.join(format!(".{leaf}.lock"));
        let mut file = loop {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| {
                    format!(
                        "{}: cannot open the results lock; pass a writable --out",
                        path.display()
                    )
                })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    bail!(
                        "{}: another kiln run is writing these results ({}); wait for it to finish, or pass another --out",
                        out.display(),
                        if holder.is_empty() { "holder unknown" } else { holder }
                    );
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
                }
            }
            // The holder removes the file when it ends; if that happened between our open and
            // our lock, we hold a lock on a file nobody else will see: open it again.
            if same_file(&file, &path) {
                break file;
            }
        };
        let holder = format!(
            "pid {} on {}, started at unix time {}: {}",
            std::process::id(),
            hostname(),
            kiln_core::run::unix_now(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|_| file.flush())
            .with_context(|| format!("{}: cannot write the lock holder", path.display()))?;
        let recovered = recover(&parent, &leaf, out)?;
        for r in &recovered {
            println!("{r}");
        }
        Ok(Self {
            file,
            path,
            recovered,
        })
    }

    /// The lock file (`.<profile>.lock` beside the results folder).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        // Removed while still locked: a run that opened the old file meanwhile sees, once it
        // gets the lock, that the path no longer names it, and starts over ([`same_file`]).
        let _ = self.file.set_len(0);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// Fails when `out`, or a folder above it, exists as a file: results could never be written
/// there, and finding out after the training would waste it.
pub fn check_out(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!(
            "{}: the results path exists and is a file, not a folder; pass another --out or move the file",
            out.display()
        );
    }
    for a in out.ancestors().skip(1) {
        if a.exists() && !a.is_dir() {
            bail!(
                "{}: is a file, so results cannot go under it; pass another --out (a folder)",
                a.display()
            );
        }
    }
    Ok(())
}

/// `(parent, leaf)` of a results folder path.
pub(crate) fn split(out: &Path) -> (PathBuf, String) {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let leaf = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    (parent, leaf)
}

/// Removes dead runs' staging folders; puts back a previous result moved aside by a run killed
/// between its renames. Only called with the lock held.
fn recover(parent: &Path, leaf: &str, out: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let staging = format!(".{leaf}.staging-");
    let old = format!(".{leaf}.old-");
    let mut olds = Vec::new();
    let entries =
        std::fs::read_dir(parent).with_context(|| format!("{}: cannot list", parent.display()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&staging) {
            std::fs::remove_dir_all(e.path()).with_context(|| {
                format!(
                    "{}: cannot remove an interrupted run's staging folder",
                    e.path().display()
                )
            })?;
            done.push(format!(
                "removed {}, the unfinished output of an interrupted run",
                e.path().display()
            ));
        } else if name.starts_with(&old) {
            olds.push(e.path());
        }
    }
    olds.sort();
    for o in olds {
        if !out.exists() {
            std::fs::rename(&o, out).with_context(|| {
                format!(
                    "{}: cannot restore the previous results to {}",
                    o.display(),
                    out.display()
                )
            })?;
            done.push(format!(
                "restored {} from {}, moved aside by a run interrupted while writing",
                out.display(),
                o.display()
            ));
        } else {
            std::fs::remove_dir_all(&o)
                .with_context(|| format!("{}: cannot remove superseded results", o.display()))?;
            done.push(format!(
                "removed {}, results already superseded",
                o.display()
            ));
        }
    }
    Ok(done)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "this machine".into())
}

/// Moves `staging` into place at `out`: one exchange where the file system can, else two
/// renames (a kill between them leaves `.<leaf>.old-*`, which the next run's [`OutLock`] puts
/// back). The previous results are removed last.
pub(crate) fn swap_in(staging: &Path, out: &Path) -> Result<()> {
    let (parent, leaf) = split(out);
    if out.exists() {
        if kiln_core::exchange_paths(staging, out)
            .with_context(|| format!("{}: cannot swap in the new results", out.display()))?
        {
            // `staging` now holds the previous results.
            let _ = std::fs::remove_dir_all(staging);
            return Ok(());
        }
        let old = parent.join(format!(".{leaf}.old-{}", std::process::id()));
        std::fs::rename(out, &old).with_context(|| {
            format!("{}: cannot move the previous results aside", out.display())
        })?;
        if let Err(e) = std::fs::rename(staging, out) {
            let _ = std::fs::rename(&old, out);
            let _ = std::fs::remove_dir_all(staging);
            return Err(e).with_context(|| format!("{}: cannot write results", out.display()));
        }
        let _ = std::fs::remove_dir_all(&old);
        return Ok(());
    }
    std::fs::rename(staging, out)
        .with_context(|| format!("{}: cannot write results", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_fails_at_once_naming_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("exp/smoke");
        let first = OutLock::acquire(&out).unwrap();
        let e = OutLock::acquire(&out).unwrap_err().to_string();
        assert!(e.contains("another kiln run"), "{e}");
        assert!(
            e.contains(&format!("pid {}", std::process::id())),
            "the message names the holder: {e}"
        );
        let lock_file = first.path().to_path_buf();
        drop(first);
        assert!(!lock_file.exists(), "a run that ends removes its lock file");
        OutLock::acquire(&out).expect("free again once the first run ends");
    }

    #[test]
    fn leftovers_of_a_killed_run_are_recovered() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("exp/smoke");
        let parent = out.parent().unwrap();
        // A run killed between its two renames: results moved aside, none in place; another
        // killed while writing its staging folder.
        std::fs::create_dir_all(parent.join(".smoke.old-99999")).unwrap();
        std::fs::write(parent.join(".smoke.old-99999/table.md"), "previous").unwrap();
        std::fs::create_dir_all(parent.join(".smoke.staging-99998")).unwrap();
        let lock = OutLock::acquire(&out).unwrap();
        assert_eq!(lock.recovered.len(), 2, "{:?}", lock.recovered);
        assert_eq!(
            std::fs::read_to_string(out.join("table.md")).unwrap(),
            "previous"
        );
        let hidden: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".smoke.") && !n.ends_with(".lock"))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }

    #[test]
    fn an_out_path_that_is_a_file_fails_before_any_work() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        let e = OutLock::acquire(&f.join("exp/smoke"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a file") && e.contains("--out"), "{e}");
    }

    #[test]
    fn swap_in_replaces_whole_folders() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("exp/smoke");
        let staging = d.path().join("exp/.smoke.staging-1");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("old-only"), "o").unwrap();
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("table.md"), "new").unwrap();
        swap_in(&staging, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("table.md")).unwrap(),
            "new"
        );
        assert!(!out.join("old-only").exists());
        assert!(!staging.exists());
    }
}
