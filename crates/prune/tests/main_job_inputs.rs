//! The main job runs the real thing: on a machine with the GLUE data and the base model but no
//! fine-tuned checkpoints, glue-pruning's automatic profile choice picks `mini` (which fine-tunes
//! them as its first stage), not the synthetic smoke profile.

use kiln_experiment::{choose_profile, file, Paper, RunArgs};
use kiln_prune::experiment::{GluePruning, Profile};

#[test]
fn mini_is_chosen_without_checkpoints_when_it_can_fine_tune_them() {
    let minilm = kiln_core::paths::workspace_root().join("datasets/cache/all-MiniLM-L6-v2");
    if !minilm.join("config.json").exists() {
        kiln_core::paths::skip("all-MiniLM-L6-v2 in datasets/cache (just fetch all-MiniLM-L6-v2)");
        return;
    }
    if kiln_core::paths::shared_data().is_none() {
        kiln_core::paths::skip("shared/data (GLUE)");
        return;
    }
    // A fresh cache holding only the base model: no fine-tuned checkpoint anywhere.
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&minilm, cache.join("all-MiniLM-L6-v2")).unwrap();
    let args = RunArgs::new("", &tmp.path().join("out"), &cache);
    let f = file::load::<Profile>("glue-pruning").unwrap();
    let found = GluePruning
        .inputs("mini", &f.profiles["mini"], &args)
        .unwrap_or_else(|e| panic!("mini should run by fine-tuning first: {e}"));
    assert!(found.contains("fine-tunes them first"), "{found}");
    let c = choose_profile("glue-pruning", &f, None, |name, p| {
        GluePruning.inputs(name, p, &args)
    })
    .unwrap();
    assert_eq!(c.name, "mini", "{}", c.why);
}
