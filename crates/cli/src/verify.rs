//! `kiln verify`: recompute the committed numbers from their prediction files and say where
//! each result came from (see `kiln_experiment::verify`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use kiln_experiment::verify::{check_run, provenance, read_meta, run_folders, Provenance};

/// What `kiln verify` found in one run folder.
#[derive(Debug)]
pub struct Finding {
    pub folder: PathBuf,
    pub experiment: String,
    pub provenance: Option<Provenance>,
    pub agreed: usize,
    pub failures: Vec<String>,
    pub unsourced: usize,
    pub has_checks: bool,
}

impl Finding {
    /// One line for a person, then a line per disagreement.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({}):", self.folder.display(), self.experiment);
        match &self.provenance {
            None => s += " experiment not in this kiln's registry;",
            Some(p) => {
                s += &format!(" commit {}", p.commit);
                match &p.uncommitted {
                    Some(u) if u.is_empty() => s += ", tree clean",
                    Some(u) => s += &format!(", {} uncommitted file(s): {}", u.len(), u.join(" ")),
                    None => s += ", uncommitted files not recorded",
                }
                match &p.code_changed {
                    Ok(c) if c.is_empty() => s += ", code unchanged since;",
                    Ok(c) => {
                        s += &format!(", code changed since in {} file(s): {};", c.len(), list(c))
                    }
                    Err(e) => s += &format!(", code changes unknown ({e});"),
                }
            }
        }
        if self.has_checks {
            s += &format!(
                " {}/{} cited number(s) agree with their prediction files",
                self.agreed,
                self.agreed + self.failures.len()
            );
            if self.unsourced > 0 {
                s += &format!(
                    ", {} seed statistic(s) cite no prediction files",
                    self.unsourced
                );
            }
        } else {
            s += " no checks.json (written before kiln recorded where numbers come from)";
        }
        for f in &self.failures {
            s += &format!("\n  DISAGREES: {f}");
        }
        s
    }

    /// Everything a strict check asks: numbers checked and agreeing, none without files, from
    /// committed code that has not changed since.
    pub fn is_strictly_ok(&self) -> bool {
        self.failures.is_empty()
            && self.has_checks
            && self.unsourced == 0
            && self.provenance.as_ref().is_some_and(Provenance::is_current)
    }
}

fn list(files: &[String]) -> String {
    let mut s = files.iter().take(5).cloned().collect::<Vec<_>>().join(" ");
    if files.len() > 5 {
        s += &format!(" (+{} more)", files.len() - 5);
    }
    s
}

/// Checks every run folder under `folder`; `root` is the workspace root (for git and cargo).
pub fn verify(folder: &Path, root: &Path) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for dir in run_folders(folder)? {
        let meta = read_meta(&dir)?;
        let prov = crate::registry::find(&meta.experiment)
            .ok()
            .map(|e| provenance(&meta, e.package(), root));
        let c = check_run(&dir)?;
        out.push(Finding {
            folder: dir,
            experiment: meta.experiment,
            provenance: prov,
            agreed: c.agreed,
            failures: c.failures,
            unsourced: c.unsourced,
            has_checks: c.has_checks,
        });
    }
    Ok(out)
}

/// Renders `results/<experiment>/README.md` for every registered experiment with a folder under
/// `results`; returns `(path, rendered page)` pairs without writing them.
pub fn render_pages(results: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for e in crate::registry::EXPERIMENTS {
        let dir = results.join(e.name());
        if !dir.is_dir() {
            continue;
        }
        let file = e.list()?;
        let info = kiln_experiment::pages::PageInfo {
            name: e.name(),
            title: &file.title,
            reference: &file.reference,
            crate_dir: kiln_experiment::crate_dir(e.package()),
        };
        let page = kiln_experiment::pages::render(&dir, &info)?;
        out.push((dir.join(kiln_experiment::pages::PAGE), page));
    }
    Ok(out)
}
