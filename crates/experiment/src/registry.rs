//! The registry's contract: each paper crate exposes its experiments as values implementing
//! [`Experiment`]; `kiln list|reproduce|bench` only dispatch on them.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::file::{self, ExperimentFile, ExperimentInfo};
use crate::{BenchArgs, RunArgs, RunContext, RunRecord};

/// Profiles tried, in order, when none is requested: real data first, synthetic last. `paper`
/// is never chosen on its own: it is sized for a GPU, so it runs only when asked for.
pub const AUTO_ORDER: &[&str] = &["mini", "smoke"];

/// A paper's experiment, typed: its profile settings, what its profiles need, and its run.
pub trait Paper: Sync {
    /// One profile's settings, as `[profiles.<name>]` of the experiment file holds them.
    type Profile: DeserializeOwned + Serialize + Clone;

    /// The experiment's name: `experiments/<NAME>.toml`, `results/<NAME>/`.
    const NAME: &'static str;

    /// The cargo package that implements it (`env!("CARGO_PKG_NAME")` in the paper crate):
    /// `kiln verify` asks whether its code changed since a result's commit.
    const PACKAGE: &'static str;

    /// Whether profile `name`'s inputs resolve without running anything long: `Ok(what was
    /// found)` or `Err(what is missing and how to get it)`.
    fn inputs(
        &self,
        name: &str,
        profile: &Self::Profile,
        args: &RunArgs,
    ) -> std::result::Result<String, String>;

    /// Runs one profile and returns what it produced; the caller writes it.
    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<Self::Profile>,
        profile: &Self::Profile,
    ) -> Result<RunRecord>;

    /// Benchmarks this paper offers to `kiln bench --only` (none by default).
    fn benches(&self) -> &'static [Bench] {
        &[]
    }

    /// Checks settings that serde cannot (ranges, combinations), naming the file and field.
    /// Every profile also passes [`file::check_numbers`] (finite numbers, positive sizes).
    fn validate(&self, _profile: &Self::Profile) -> Result<()> {
        Ok(())
    }

    /// Which of the shared command-line overrides this experiment reads for `profile`. Giving
    /// one it does not read is an error: a flag that silently does nothing leaves the user
    /// believing the table measures what they asked for.
    fn flags(&self, _profile: &Self::Profile) -> Flags {
        Flags::default()
    }
}

/// The shared overrides an experiment honours (see [`Paper::flags`]). `--data-dir`, `--seed`,
/// `--device`, `--out` and `--cache` apply to every experiment.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// The names `--tasks` selects from (GLUE tasks, click-log datasets); `None`: the
    /// experiment has no such list and `--tasks` is an error.
    pub tasks: Option<Vec<String>>,
    pub epochs: bool,
    pub train_examples: bool,
    pub model: bool,
    pub lenient: bool,
    /// `--epochs` must be a whole number (the experiment trains whole epochs).
    pub whole_epochs: bool,
}

/// Refuses overrides `experiment` would ignore, and `--tasks` names outside its list.
pub fn check_flags(experiment: &str, profile: &str, flags: &Flags, args: &RunArgs) -> Result<()> {
    let unread = [
        ("--epochs", args.epochs.is_some(), flags.epochs),
        (
            "--train-examples",
            args.train_examples.is_some(),
            flags.train_examples,
        ),
        ("--model", args.model.is_some(), flags.model),
        ("--lenient", args.lenient, flags.lenient),
    ];
    for (flag, given, read) in unread {
        if given && !read {
            bail!(
                "{experiment} (profile `{profile}`) does not read {flag}; leave it out, or set the experiment file's setting instead (experiments/{experiment}.toml)"
            );
        }
    }
    if let Some(e) = args.epochs {
        if flags.whole_epochs && e.fract() != 0.0 {
            bail!("--epochs {e}: {experiment} trains whole epochs; pass a whole number");
        }
    }
    if let Some(asked) = &args.tasks {
        let Some(known) = &flags.tasks else {
            bail!(
                "{experiment} (profile `{profile}`) has no task list, so --tasks would select nothing; leave it out"
            );
        };
        let unknown: Vec<&String> = asked.iter().filter(|t| !known.contains(t)).collect();
        if !unknown.is_empty() {
            bail!(
                "--tasks: {unknown:?} not in {experiment}'s profile `{profile}`, whose tasks are {known:?}"
            );
        }
    }
    Ok(())
}

/// The folder of a `kiln-<x>` paper crate inside the workspace, when it is there.
pub fn crate_dir(package: &str) -> Option<String> {
    // kiln-clipvil lives in crates/clipvil, kiln-prune in crates/prune: the folder is the
    // package name without its prefix.
    let rel = format!("crates/{}", package.strip_prefix("kiln-")?);
    let root = kiln_core::paths::workspace_root();
    root.join(&rel).join("src/lib.rs").is_file().then_some(rel)
}

/// What the CLI sees of an experiment.
pub trait Experiment: Sync {
    fn name(&self) -> &'static str;
    /// The cargo package implementing the experiment ([`Paper::PACKAGE`]).
    fn package(&self) -> &'static str;
    /// The experiment file as `kiln list` prints it.
    fn list(&self) -> Result<ExperimentInfo>;
    /// Chooses the profile, runs it and writes `results/<name>/<profile>/`.
    fn reproduce(&self, args: &RunArgs) -> Result<PathBuf>;
    /// Reads the experiment file strictly and checks every profile as `reproduce` would
    /// (unknown keys, number ranges, the paper's own checks), without running anything.
    fn check_file(&self) -> Result<()>;
    fn benches(&self) -> &'static [Bench];
}

/// A benchmark: its `kiln bench --only` name and the function that runs it (writing under
/// `<out>/bench/`).
pub type Bench = (&'static str, fn(&BenchArgs) -> Result<()>);

impl<T: Paper> Experiment for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn package(&self) -> &'static str {
        T::PACKAGE
    }

    fn list(&self) -> Result<ExperimentInfo> {
        file::load_info(T::NAME)
    }

    fn reproduce(&self, args: &RunArgs) -> Result<PathBuf> {
        args.check()?;
        crate::outdir::check_out(&args.out.join(T::NAME))?;
        let file: ExperimentFile<T::Profile> = file::load(T::NAME)?;
        if let Some(p) = args.profile.as_deref().and_then(|n| file.profiles.get(n)) {
            // A requested profile is checked before choosing, whose input checks may download.
            let name = args.profile.as_deref().unwrap_or_default();
            self.validate(p)?;
            file::check_numbers(T::NAME, name)?;
            check_flags(T::NAME, name, &self.flags(p), args)?;
        }
        if let Some(asked) = &args.tasks {
            // A name no profile knows is a typo, whichever profile would be chosen; caught
            // before the choice, which would otherwise pass over `mini` for it.
            let lists: Vec<Vec<String>> = file
                .profiles
                .values()
                .filter_map(|p| self.flags(p).tasks)
                .collect();
            if lists.is_empty() {
                bail!(
                    "{} has no task list in any profile, so --tasks would select nothing; leave it out",
                    T::NAME
                );
            }
            let known: Vec<String> = lists.into_iter().flatten().collect();
            let unknown: Vec<&String> = asked.iter().filter(|t| !known.contains(t)).collect();
            if !unknown.is_empty() {
                let mut known = known.clone();
                known.sort();
                known.dedup();
                bail!(
                    "--tasks: {unknown:?} is not a task of {} (its profiles know {known:?})",
                    T::NAME
                );
            }
        }
        let choice = choose_profile(T::NAME, &file, args.profile.as_deref(), |name, p| {
            self.inputs(name, p, args)
        })?;
        println!("{}: profile `{}` ({})", T::NAME, choice.name, choice.why);
        let Some(profile) = file.profiles.get(&choice.name) else {
            bail!("profile `{}` vanished from the file", choice.name);
        };
        self.validate(profile)?;
        file::check_numbers(T::NAME, &choice.name)?;
        check_flags(T::NAME, &choice.name, &self.flags(profile), args)?;
        let ctx = RunContext::new(T::NAME, &choice.name, &choice.why, args)?;
        let mut record = self.run(&ctx, &file, profile)?;
        record
            .paper(&file.paper)
            .setting("profile", profile)
            .setting("profile_choice", &choice.why)
            .setting("overrides", args.overrides());
        let out = record.finish(&ctx)?;
        // The experiment's result page, rendered again with this run in it.
        let info = crate::pages::PageInfo {
            name: T::NAME,
            title: &file.title,
            reference: &file.reference,
            crate_dir: crate_dir(T::PACKAGE),
        };
        crate::pages::write(&args.out.join(T::NAME), &info)?;
        Ok(out)
    }

    fn check_file(&self) -> Result<()> {
        let file: ExperimentFile<T::Profile> = file::load(T::NAME)?;
        for (name, p) in &file.profiles {
            self.validate(p)
                .with_context(|| format!("{}: profile `{name}`", T::NAME))?;
            file::check_numbers(T::NAME, name)?;
        }
        Ok(())
    }

    fn benches(&self) -> &'static [Bench] {
        Paper::benches(self)
    }
}

/// The profile a run uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub why: String,
}

/// `requested` if given (an error listing the profiles if the file lacks it), else the first of
/// [`AUTO_ORDER`] the file has whose inputs resolve; the reason says what was found and, for
/// each better profile passed over, what it lacked.
pub fn choose_profile<P>(
    experiment: &str,
    file: &ExperimentFile<P>,
    requested: Option<&str>,
    ready: impl Fn(&str, &P) -> std::result::Result<String, String>,
) -> Result<Choice> {
    let names: Vec<&String> = file.profiles.keys().collect();
    if let Some(r) = requested {
        if file.profiles.contains_key(r) {
            return Ok(Choice {
                name: r.to_string(),
                why: "requested with --profile".into(),
            });
        }
        bail!("profile `{r}` not in experiments/{experiment}.toml; choose one of {names:?}");
    }
    let mut passed = Vec::new();
    for &name in AUTO_ORDER {
        let Some(p) = file.profiles.get(name) else {
            continue;
        };
        match ready(name, p) {
            Ok(found) => {
                let why = if passed.is_empty() {
                    found
                } else {
                    format!("{}; {found}", passed.join("; "))
                };
                return Ok(Choice {
                    name: name.to_string(),
                    why,
                });
            }
            Err(missing) => passed.push(format!("not {name}: {missing}")),
        }
    }
    bail!(
        "experiments/{experiment}.toml: no profile among {AUTO_ORDER:?} has its inputs ({}); pass --profile",
        passed.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn file(profiles: &[&str]) -> ExperimentFile<u8> {
        ExperimentFile {
            name: "x".into(),
            title: "t".into(),
            reference: "r".into(),
            paper: Default::default(),
            profiles: profiles
                .iter()
                .map(|p| (p.to_string(), 0u8))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn requested_profile_wins_and_unknown_is_an_error() {
        let f = file(&["smoke", "mini", "paper"]);
        let c = choose_profile("x", &f, Some("paper"), |_, _| Err("no".into())).unwrap();
        assert_eq!(c.name, "paper");
        let e = choose_profile("x", &f, Some("huge"), |_, _| Ok(String::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("huge") && e.contains("smoke"), "{e}");
    }

    #[test]
    fn best_ready_profile_with_the_reason() {
        let f = file(&["smoke", "mini", "paper"]);
        let c = choose_profile("x", &f, None, |n, _| {
            if n == "mini" {
                Err("no checkpoint".into())
            } else {
                Ok("synthetic".into())
            }
        })
        .unwrap();
        assert_eq!(c.name, "smoke");
        assert!(c.why.contains("not mini: no checkpoint"), "{}", c.why);
        let c = choose_profile("x", &f, None, |_, _| Ok("found".into())).unwrap();
        assert_eq!((c.name.as_str(), c.why.as_str()), ("mini", "found"));
    }

    #[test]
    fn a_missing_profile_is_an_error_not_a_panic() {
        // No mini, no smoke: nothing to choose automatically.
        let f = file(&["paper"]);
        let e = choose_profile("x", &f, None, |_, _| Ok("found".into())).unwrap_err();
        assert!(e.to_string().contains("--profile"), "{e}");
    }
}
