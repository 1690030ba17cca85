//! `kiln bench --only encoder`: encoder forward throughput (sequences/s) of all-MiniLM-L6-v2,
//! batch 32, sequence length 128, fp32, on each requested backend; with `KILN_PEER_PYTHON` set,
//! the same model in PyTorch (transformers) in the same run, and the ratio.

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;
use kiln_core::{DeviceChoice, RunMeta};
use kiln_experiment::bench::{interleaved, write_table, BenchArgs, Interleaved};
use kiln_models::{BertConfig, BertModel, EncoderInput};
use kiln_report::{Cell, Table};
use rand::{Rng, SeedableRng};

/// Forward FLOPs of a BERT encoder (multiply-add = 2 FLOPs), for GFLOP/s reporting.
pub fn encoder_flops(c: &BertConfig, batch: usize, seq: usize) -> f64 {
    let (h, i, l) = (
        c.hidden_size as f64,
        c.intermediate_size as f64,
        c.num_hidden_layers as f64,
    );
    let t = (batch * seq) as f64;
    let per_layer =
        2.0 * t * (4.0 * h * h + 2.0 * h * i) + 2.0 * 2.0 * batch as f64 * (seq * seq) as f64 * h;
    l * per_layer
}

/// `--model`, else the fetched all-MiniLM-L6-v2 in the cache, if any.
fn minilm_dir(a: &BenchArgs) -> Option<std::path::PathBuf> {
    a.model.clone().or_else(|| {
        let d = a.cache_root().join("all-MiniLM-L6-v2");
        d.join("model.safetensors").exists().then_some(d)
    })
}

fn bench_device(
    model_dir: Option<&std::path::PathBuf>,
    choice: &DeviceChoice,
    a: &BenchArgs,
) -> Result<(f64, BertConfig, String)> {
    let device: Device = choice.device()?;
    let (model, config, what) = match model_dir {
        Some(d) => {
            let (m, ck) = kiln_models::bert::load_bert(d, &device)?;
            (
                m,
                ck.config,
                format!("all-MiniLM-L6-v2 weights from {}", d.display()),
            )
        }
        None => {
            let mut c = BertConfig::tiny(30522, 2);
            (
                c.hidden_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.intermediate_size,
            ) = (384, 6, 12, 1536);
            c.max_position_embeddings = 512;
            device.seed(0);
            (
                BertModel::new(&c, true, &device),
                c,
                "random weights in all-MiniLM-L6-v2's shape (model not fetched)".into(),
            )
        }
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = a.batch * a.seq;
    let ids: Vec<i64> = (0..n).map(|_| rng.random_range(1000..30000)).collect();
    let input = EncoderInput::from_rows(ids, vec![0; n], vec![1; n], a.batch, a.seq, &device);
    let t = kiln_core::timing::time_it(&device, 2, a.iters, || {
        let out = model.forward(&input, None);
        out.last_hidden_state.into_data()
    });
    Ok((t.median_s, config, what))
}

/// Encoder forward throughput of all-MiniLM-L6-v2 on each device, and PyTorch's, in alternating
/// rounds.
pub fn encoder(a: &BenchArgs) -> Result<()> {
    let out = a.dir();
    let model_dir = minilm_dir(a);
    let mut config = None;
    let mut what = String::new();
    let peer_args: Vec<String> = match &model_dir {
        Some(m) => vec![
            m.display().to_string(),
            a.batch.to_string(),
            a.seq.to_string(),
            a.iters.to_string(),
        ],
        None => Vec::new(),
    };
    println!(
        "bench: encoder forward (batch {}, seq {}, {} timed runs, {} rounds)...",
        a.batch, a.seq, a.iters, a.rounds
    );
    let res = interleaved(
        a,
        |d| {
            let (s, c, w) = bench_device(model_dir.as_ref(), d, a)?;
            config = Some(c);
            what = w;
            Ok(s)
        },
        model_dir.as_ref().map(|_| ("peer_bert.py", &peer_args[..])),
    )?;
    let flops = config
        .as_ref()
        .map(|c| encoder_flops(c, a.batch, a.seq))
        .unwrap_or(f64::NAN);
    let mut table = Table::new(
        format!(
            "Encoder forward throughput, all-MiniLM-L6-v2, batch {}, seq {}, fp32",
            a.batch, a.seq
        ),
        &[
            "backend",
            "sequences/s",
            "s/batch",
            "GFLOP/s",
            "vs PyTorch [range over rounds]",
        ],
    );
    let mut metrics = std::collections::BTreeMap::new();
    for (name, times) in res.kiln.iter().chain(res.peer.iter()) {
        let s = Interleaved::seconds(times);
        let is_peer = res.peer.as_ref().is_some_and(|p| &p.0 == name);
        table.push(vec![
            Cell::text(name),
            Cell::num(a.batch as f64 / s, 1),
            Cell::num(s, 4),
            if is_peer {
                Cell::opt(None, 1)
            } else {
                Cell::num(flops / s / 1e9, 1)
            },
            Cell::text(if is_peer {
                "1.00".to_string()
            } else {
                res.ratio_text(times)
            }),
        ]);
        metrics.insert(
            format!("{}.seqs_per_s", name.replace(' ', "_")),
            a.batch as f64 / s,
        );
        if let Some((m, lo, hi)) = res.ratio(times).filter(|_| !is_peer) {
            metrics.insert(format!("{}.vs_pytorch", name.replace(' ', "_")), m);
            metrics.insert(format!("{}.vs_pytorch_min", name.replace(' ', "_")), lo);
            metrics.insert(format!("{}.vs_pytorch_max", name.replace(' ', "_")), hi);
        }
    }
    match &res.peer {
        Some(_) => {
            let (name, times) = &res.kiln[0];
            let msg = format!(
                "kiln ({name}) / PyTorch throughput = {} (median of {} alternating rounds, each the median of {} runs after 2 warm-up runs)",
                res.ratio_text(times),
                times.len(),
                a.iters
            );
            println!("{msg}");
            table.note(msg);
        }
        None => table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch + transformers)"),
    }
    table.note(format!(
        "model: {what}; threads: RAYON_NUM_THREADS={} (tch: OMP_NUM_THREADS, set to the same by scripts/with-torch)",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset (all cores)".into())
    ));
    if let Some(c) = &config {
        table.note(format!(
            "FLOPs per batch: {:.2} GFLOP (2 per multiply-add)",
            encoder_flops(c, a.batch, a.seq) / 1e9
        ));
    }
    let tree = kiln_core::run::tree_state();
    let meta = RunMeta {
        experiment: "bench-encoder".into(),
        profile: "bench".into(),
        backend: a
            .devices()
            .iter()
            .map(|d| d.label())
            .collect::<Vec<_>>()
            .join(","),
        device: a.devices().first().map(|d| d.label()).unwrap_or_default(),
        commit: tree.commit,
        seed: 0,
        wall_time_s: 0.0,
        synthetic: false,
        started_at_unix: kiln_core::run::unix_now(),
        kiln_version: env!("CARGO_PKG_VERSION").into(),
        metrics,
        settings: serde_json::json!({"batch": a.batch, "seq": a.seq, "iters": a.iters, "model": what}),
        profile_choice: String::new(),
        paper: serde_json::Value::Null,
        files: vec!["encoder.md".into(), "encoder.csv".into()],
        uncommitted: Some(tree.uncommitted),
    };
    write_table(&out, "encoder", &table)?;
    kiln_core::atomic_write(
        &out.join("encoder.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    Ok(())
}

/// `kiln bench --only finetune`: fine-tuning step throughput of all-MiniLM-L6-v2 with a
/// two-way classification head (what glue-finetune and glue-pruning's first stage run), batch
/// `--batch`, length `--seq`: forward, cross-entropy, backward, per-tensor norm clipping and
/// AdamW through [`kiln_models::finetune::train_step`], dropout on; beside the same step in
/// PyTorch (HF `BertForSequenceClassification`, `torch.optim.AdamW`, `clip_grad_norm_`) in the
/// same run.
pub fn finetune_step(a: &BenchArgs) -> Result<()> {
    use kiln_models::finetune::{optimizer, train_step, FinetuneConfig};
    let Some(model_dir) = minilm_dir(a) else {
        anyhow::bail!("the finetune benchmark needs all-MiniLM-L6-v2: run `just fetch all-MiniLM-L6-v2` or pass --model");
    };
    let iters = a.iters.max(3);
    let cfg = FinetuneConfig {
        epochs: 1.0,
        batch_size: a.batch,
        learning_rate: 2e-5,
        warmup_ratio: 0.0,
        weight_decay: 0.01,
        max_grad_norm: 1.0,
        seed: 0,
        evals: 1,
        group_by_length: false,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = a.batch * a.seq;
    let batch = kiln_data::Batch {
        ids: (0..n).map(|_| rng.random_range(1000..30000)).collect(),
        type_ids: vec![0; n],
        mask: vec![1; n],
        labels: (0..a.batch).map(|i| (i % 2) as f32).collect(),
        batch: a.batch,
        seq: a.seq,
        index: (0..a.batch).collect(),
        spans: Vec::new(),
    };
    let peer_args = [
        model_dir.display().to_string(),
        a.batch.to_string(),
        a.seq.to_string(),
        iters.to_string(),
    ];
    println!(
        "bench: fine-tuning step (batch {}, seq {}, {iters} timed steps, {} rounds)...",
        a.batch, a.seq, a.rounds
    );
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            device.seed(0);
            let (model, _) = kiln_models::bert::load_classifier(&model_dir, 2, &device)?;
            let ad = device.clone().autodiff();
            let mut model = Some(model.to_device(&ad).train());
            let mut optim = optimizer(&cfg);
            let mut failed = None;
            let t = kiln_core::timing::time_it(&device, 2, iters, || {
                let Some(m) = model.take() else { return };
                match train_step(m, &mut optim, &batch, 2e-5, &ad) {
                    Ok((m, _)) => model = Some(m),
                    Err(e) => failed = Some(e),
                }
            });
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(t.median_s),
            }
        },
        Some(("peer_bert_train.py", &peer_args[..])),
    )?;
    let mut table = Table::new(
        format!(
            "Fine-tuning step throughput, all-MiniLM-L6-v2 + classification head, batch {}, seq {}, fp32",
            a.batch, a.seq
        ),
        &["backend", "sequences/s", "s/step", "vs PyTorch [range over rounds]"],
    );
    for (name, times) in res.kiln.iter().chain(res.peer.iter()) {
        let s = Interleaved::seconds(times);
        let is_peer = res.peer.as_ref().is_some_and(|p| &p.0 == name);
        table.push(vec![
            Cell::text(name),
            Cell::num(a.batch as f64 / s, 1),
            Cell::num(s, 4),
            Cell::text(if is_peer {
                "1.00".to_string()
            } else {
                res.ratio_text(times)
            }),
        ]);
    }
    table.note(format!(
        "one step = forward (dropout 0.1) + cross-entropy + backward + clipping + AdamW (eps 1e-8, weight decay 0.01), loss read back to the host; {} alternating rounds (kiln devices, then PyTorch), each the median of {iters} steps after 2 warm-up steps; {}",
        a.rounds.max(1),
        BenchArgs::threads_note()
    ));
    match &res.peer {
        Some(_) => table.note("PyTorch: HF BertForSequenceClassification (eager attention), torch.optim.AdamW, clip_grad_norm_(1.0) (global norm; kiln clips each tensor, as burn does), same weights, shapes and thread count"),
        None => table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch + transformers)"),
    }
    write_table(&a.dir(), "finetune_step", &table)?;
    Ok(())
}
