//! `kiln bench --only pruning`: the physically pruned vs the dense fine-tuned MiniLM, and the
//! wall time of one full 2048-sample pruning run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::Device;
use kiln_experiment::bench::{write_table, BenchArgs};
use kiln_experiment::Resolver;
use kiln_report::{Cell, Table};

use crate::StageTimes;

/// Dense vs physically pruned (constraint 0.5) fine-tuned MiniLM, when glue-pruning has written
/// the pruned checkpoints: batch 32, padded to 64 tokens (SST-2) and 128 (MRPC), as the pruning
/// issue's target. PyTorch running the official code's pruned MiniLM on this CPU measured
/// 1.86x (SST-2) and 2.07x (MRPC); the paper reports 1.56x on a GPU.
pub fn pruned_vs_dense(a: &BenchArgs) -> Result<()> {
    let cache = &a.cache_root();
    let device = a.first_device()?;
    let mut table = Table::new(
        "Physically pruned vs dense encoder (glue-pruning, constraint 0.5), batch 32",
        &[
            "task",
            "padded length",
            "dense s/batch",
            "pruned s/batch",
            "speedup",
            "PyTorch official code (CPU, reference)",
            "prune: gradients s",
            "search+rearrange s",
            "tuning s",
            "prune total s",
        ],
    );
    let mut any = false;
    for (task, seq, peer) in [("sst2", 64usize, 1.86), ("mrpc", 128, 2.07)] {
        let Some((dense_dir, pruned_dir)) = dense_and_pruned(cache, task) else {
            println!("bench: no dense/pruned {task} checkpoints (run glue-finetune and glue-pruning, mini); skipping the pruning speedup for {task}");
            continue;
        };
        any = true;
        let (dense, _) = kiln_models::bert::load_classifier(&dense_dir, 2, &device)?;
        let (pruned, _) = kiln_models::bert::load_classifier(&pruned_dir, 2, &device)?;
        let pairs = a.iters.max(5);
        let sp = crate::latency::interleaved_speedup(
            &dense.bert,
            &pruned.bert,
            32,
            seq,
            2,
            pairs,
            &device,
        );
        let (td, tp) = (sp.dense_median_s, sp.pruned_median_s);
        println!(
            "  {task}: dense {td:.3} s, pruned {tp:.3} s per batch -> {:.2}x [{:.2}-{:.2}]",
            sp.median, sp.q25, sp.q75
        );
        // One full 2048-sample pruning run is timed on SST-2 only (MRPC's longer sequences make
        // it several minutes on 2 cores); the glue-pruning tables time every run they make.
        let times = if task == "sst2" {
            Some(prune_time(&dense_dir, task, cache, &device)?)
        } else {
            None
        };
        table.push(vec![
            Cell::text(task),
            Cell::num(seq as f64, 0),
            Cell::num(td, 4),
            Cell::num(tp, 4),
            Cell::text(format!("{:.2}x [{:.2}-{:.2}]", sp.median, sp.q25, sp.q75)),
            Cell::text(format!("{peer:.2}x")),
            Cell::opt(times.as_ref().map(|t| t.gradients_s), 1),
            Cell::opt(times.as_ref().map(|t| t.search_s + t.rearrange_s), 2),
            Cell::opt(times.as_ref().map(|t| t.tuning_s), 1),
            Cell::opt(times.as_ref().map(|t| t.total()), 1),
        ]);
    }
    if any {
        table.note("target (pruning issue): >= 1.9x at constraint 0.5, not trailing the official PyTorch code's 1.86x / 2.07x measured on this CPU; the paper reports 1.56x on a GPU.");
        table.note(format!(
            "dense and pruned interleaved in the same process on the same input, 2 warm-up runs each then {} alternating pairs; median of the per-pair ratios [quartiles]; {}",
            a.iters.max(5),
            BenchArgs::threads_note()
        ));
        write_table(&a.dir(), "pruning", &table)?;
    }
    Ok(())
}

/// The fine-tuned MiniLM glue-pruning mini prunes (checked as that profile checks it) and a
/// constraint-0.5 model glue-pruning pruned from it (its `kiln-pruned.json` names the dense
/// weights' sha256).
fn dense_and_pruned(cache: &Path, task: &str) -> Option<(PathBuf, PathBuf)> {
    let wanted = kiln_glue::checkpoints::Wanted {
        by: "the pruning bench".into(),
        profiles: vec!["quick".into(), "mini".into()],
    };
    let dense = kiln_glue::checkpoints::finetuned_for(
        &Resolver::offline(cache),
        "all-MiniLM-L6-v2",
        task,
        &wanted,
        true,
    )
    .map_err(|e| println!("bench: {task}: {e:#}"))
    .ok()?
    .dir;
    let weights = format!(
        "sha256:{}",
        kiln_glue::checkpoints::file_sha256(&dense.join("model.safetensors")).ok()?
    );
    let mut runs: Vec<PathBuf> =
        std::fs::read_dir(cache.join("pruned/all-MiniLM-L6-v2").join(task))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("c0.5")))
            .filter(|d| {
                std::fs::read_to_string(d.join("kiln-pruned.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .is_some_and(|v| v["source_weights"] == weights.as_str())
                    && d.join("model.safetensors").exists()
            })
            .collect();
    runs.sort();
    Some((dense, runs.pop()?))
}

/// Wall time of one full pruning run (2048 samples drawn with replacement, batch 32, all three
/// stages, constraint 0.5) of the fine-tuned MiniLM on `task`, as the pruning issue's target.
fn prune_time(dir: &Path, task: &str, cache: &Path, device: &Device) -> Result<StageTimes> {
    let t = kiln_data::GlueTask::parse(task)?;
    let resolver = Resolver::offline(cache);
    let files = resolver.task(t)?;
    let (model, ck) = kiln_models::bert::load_classifier(dir, t.num_labels(), device)?;
    let max_len = if task == "sst2" { 64 } else { 128 };
    let tok = kiln_data::TextTokenizer::from_file(&dir.join("tokenizer.json"), max_len)?;
    let ex = kiln_data::read_glue_file(&files.train, t)?;
    let mut enc = Vec::with_capacity(ex.len());
    for e in &ex {
        enc.push(tok.encode(&e.text_a, e.text_b.as_deref())?);
    }
    let labels: Vec<Option<f32>> = ex.iter().map(|e| e.label).collect();
    let samples = crate::sample_batches(&enc, &labels, 2048, 32, tok.pad_id as i64, 0)?;
    let opts = crate::PruneOptions {
        constraint: 0.5,
        criterion: crate::Criterion::Fisher,
        seq_len: crate::cost::task_seq_len(task).unwrap_or(64.0),
        rearrange: true,
        tune: true,
        teacher: crate::Teacher::SqrtConstraint,
        solver: Default::default(),
        latency: None,
    };
    let _ = ck;
    println!("bench: timing one full pruning run of {task} (2048 samples, constraint 0.5)...");
    let out = crate::prune(&model, &samples, None, &opts, device)?;
    println!(
        "  {task}: pruning took {:.1} s (gradients {:.1}, tuning {:.1})",
        out.times.total(),
        out.times.gradients_s,
        out.times.tuning_s
    );
    Ok(out.times)
}
