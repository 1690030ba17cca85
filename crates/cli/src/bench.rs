//! `kiln bench`: encoder forward throughput (sequences/s) of all-MiniLM-L6-v2, batch 32,
//! sequence length 128, fp32, on each requested backend; with `KILN_PEER_PYTHON` set, the same
//! model in PyTorch (transformers) in the same run, and the ratio.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use kiln_core::DeviceChoice;
use kiln_models::{BertConfig, BertModel, EncoderInput};
use kiln_report::{Cell, RunMeta, Table};
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// `None`: every benchmark; else names from [`BENCHES`].
    pub only: Option<Vec<String>>,
    pub devices: Vec<DeviceChoice>,
    pub model: Option<PathBuf>,
    pub batch: usize,
    pub seq: usize,
    pub iters: usize,
    pub out: PathBuf,
}

/// Writes `<stem>.md` and `<stem>.csv` under `out`.
fn write_table(out: &std::path::Path, stem: &str, table: &Table) -> Result<()> {
    kiln_core::atomic_write(
        &out.join(format!("{stem}.md")),
        table.to_markdown().as_bytes(),
    )?;
    kiln_core::atomic_write(&out.join(format!("{stem}.csv")), table.to_csv().as_bytes())?;
    Ok(())
}

/// The benchmarks `kiln bench --only` can pick.
pub const BENCHES: [&str; 4] = ["encoder", "pruning", "ltp", "gpt2"];

impl BenchArgs {
    /// The device the single-device benchmarks run on: the first requested, else flex.
    fn first_device(&self) -> Result<Device> {
        Ok(self
            .devices
            .first()
            .cloned()
            .unwrap_or(DeviceChoice::Flex)
            .device()?)
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == name))
    }
}

struct Row {
    backend: String,
    seqs_per_s: f64,
    median_s: f64,
    gflops: f64,
}

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

fn bench_device(
    model_dir: Option<&PathBuf>,
    choice: &DeviceChoice,
    a: &BenchArgs,
) -> Result<(Row, BertConfig, String)> {
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
    let flops = encoder_flops(&config, a.batch, a.seq);
    Ok((
        Row {
            backend: choice.label(),
            seqs_per_s: a.batch as f64 / t.median_s,
            median_s: t.median_s,
            gflops: flops / t.median_s / 1e9,
        },
        config,
        what,
    ))
}

/// Runs a PyTorch peer script under `KILN_PEER_PYTHON` (`None` when unset) with `args` and the
/// thread count kiln uses, and returns its JSON, which must carry `median_s`.
fn run_peer(script: &str, args: &[String]) -> Result<Option<(f64, serde_json::Value)>> {
    let Some(py) = std::env::var_os("KILN_PEER_PYTHON") else {
        return Ok(None);
    };
    let script = kiln_core::paths::workspace_root()
        .join("bench")
        .join(script);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "1".into())
    });
    let out = std::process::Command::new(&py)
        .arg(&script)
        .args(args)
        .arg(threads)
        .output()
        .with_context(|| format!("cannot run KILN_PEER_PYTHON={}", py.to_string_lossy()))?;
    if !out.status.success() {
        anyhow::bail!(
            "PyTorch peer {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} did not print JSON", script.display()))?;
    let median = v["median_s"]
        .as_f64()
        .with_context(|| format!("{}'s JSON lacks median_s", script.display()))?;
    Ok(Some((median, v)))
}

fn peer(model_dir: &std::path::Path, a: &BenchArgs) -> Result<Option<Row>> {
    let args = [
        model_dir.display().to_string(),
        a.batch.to_string(),
        a.seq.to_string(),
        a.iters.to_string(),
    ];
    Ok(run_peer("peer_bert.py", &args)?.map(|(median, v)| Row {
        backend: format!("pytorch {}", v["torch"].as_str().unwrap_or("")),
        seqs_per_s: a.batch as f64 / median,
        median_s: median,
        gflops: 0.0,
    }))
}

/// Dense vs physically pruned (constraint 0.5) fine-tuned MiniLM, when glue-pruning has written
/// the pruned checkpoints: batch 32, padded to 64 tokens (SST-2) and 128 (MRPC), as the pruning
/// issue's target. PyTorch running the official code's pruned MiniLM on this CPU measured
/// 1.86x (SST-2) and 2.07x (MRPC); the paper reports 1.56x on a GPU.
fn bench_pruned(a: &BenchArgs, out: &std::path::Path) -> Result<()> {
    let cache = kiln_core::paths::cache_dir();
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
        let dense_dir = cache.join("finetuned/all-MiniLM-L6-v2").join(task);
        let pruned_dir = cache
            .join("pruned/all-MiniLM-L6-v2")
            .join(task)
            .join("c0.5");
        if !dense_dir.join("model.safetensors").exists()
            || !pruned_dir.join("model.safetensors").exists()
        {
            println!("bench: no dense/pruned {task} checkpoints (run glue-finetune and glue-pruning, mini); skipping the pruning speedup for {task}");
            continue;
        }
        any = true;
        let (dense, _) = kiln_models::bert::load_classifier(&dense_dir, 2, &device)?;
        let (pruned, _) = kiln_models::bert::load_classifier(&pruned_dir, 2, &device)?;
        let runs = a.iters.max(3);
        let td = kiln_prune::latency::encoder_latency(&dense.bert, 32, seq, runs, &device);
        let tp = kiln_prune::latency::encoder_latency(&pruned.bert, 32, seq, runs, &device);
        println!(
            "  {task}: dense {td:.3} s, pruned {tp:.3} s per batch -> {:.2}x",
            td / tp
        );
        // One full 2048-sample pruning run is timed on SST-2 only (MRPC's longer sequences make
        // it several minutes on 2 cores); the glue-pruning tables time every run they make.
        let times = if task == "sst2" {
            Some(prune_time(&dense_dir, task, &device)?)
        } else {
            None
        };
        table.push(vec![
            Cell::text(task),
            Cell::num(seq as f64, 0),
            Cell::num(td, 4),
            Cell::num(tp, 4),
            Cell::text(format!("{:.2}x", td / tp)),
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
            "median of {} runs each, dense and pruned in the same process; RAYON_NUM_THREADS={}",
            a.iters.max(3),
            std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
        ));
        write_table(out, "pruning", &table)?;
        println!("\n{}", table.to_markdown());
    }
    Ok(())
}

/// Wall time of one full pruning run (2048 samples drawn with replacement, batch 32, all three
/// stages, constraint 0.5) of the fine-tuned MiniLM on `task`, as the pruning issue's target.
fn prune_time(
    dir: &std::path::Path,
    task: &str,
    device: &Device,
) -> Result<kiln_prune::StageTimes> {
    let t = kiln_data::GlueTask::parse(task)?;
    let files = crate::resolve::resolve_task(t, None, false)?;
    let (model, ck) = kiln_models::bert::load_classifier(dir, t.num_labels(), device)?;
    let max_len = if task == "sst2" { 64 } else { 128 };
    let tok = kiln_data::TextTokenizer::from_file(&dir.join("tokenizer.json"), max_len)?;
    let ex = kiln_data::read_glue_file(&files.train, t)?;
    let mut enc = Vec::with_capacity(ex.len());
    for e in &ex {
        enc.push(tok.encode(&e.text_a, e.text_b.as_deref())?);
    }
    let labels: Vec<Option<f32>> = ex.iter().map(|e| e.label).collect();
    let samples = kiln_prune::sample_batches(&enc, &labels, 2048, 32, tok.pad_id as i64, 0)?;
    let opts = kiln_prune::PruneOptions {
        constraint: 0.5,
        criterion: kiln_prune::Criterion::Fisher,
        seq_len: kiln_prune::cost::task_seq_len(task).unwrap_or(64.0),
        rearrange: true,
        tune: true,
        teacher: kiln_prune::Teacher::SqrtConstraint,
        solver: Default::default(),
    };
    let _ = ck;
    println!("bench: timing one full pruning run of {task} (2048 samples, constraint 0.5)...");
    let out = kiln_prune::prune(&model, &samples, None, &opts, device)?;
    println!(
        "  {task}: pruning took {:.1} s (gradients {:.1}, tuning {:.1})",
        out.times.total(),
        out.times.gradients_s,
        out.times.tuning_s
    );
    Ok(out.times)
}

pub fn run(a: &BenchArgs) -> Result<PathBuf> {
    if let Some(bad) = a
        .only
        .iter()
        .flatten()
        .find(|x| !BENCHES.contains(&x.as_str()))
    {
        anyhow::bail!("unknown benchmark `{bad}` for --only; choose from {BENCHES:?}");
    }
    let out = a.out.join("bench");
    if a.wants("encoder") {
        bench_encoder(a, &out)?;
    }
    if a.wants("pruning") {
        bench_pruned(a, &out)?;
    }
    if a.wants("ltp") {
        bench_ltp(a, &out)?;
    }
    if a.wants("gpt2") {
        bench_gpt2_train(a, &out)?;
    }
    Ok(out)
}

/// Encoder forward throughput of all-MiniLM-L6-v2 on each device, and PyTorch's.
fn bench_encoder(a: &BenchArgs, out: &std::path::Path) -> Result<()> {
    let model_dir = a.model.clone().or_else(kiln_core::paths::minilm_dir);
    let mut rows = Vec::new();
    let mut config = None;
    let mut what = String::new();
    for d in &a.devices {
        println!(
            "bench: encoder forward on {} (batch {}, seq {}, {} timed runs)...",
            d.label(),
            a.batch,
            a.seq,
            a.iters
        );
        let (r, c, w) = bench_device(model_dir.as_ref(), d, a)?;
        println!(
            "  {}: {:.1} sequences/s ({:.3} s per batch, {:.1} GFLOP/s)",
            r.backend, r.seqs_per_s, r.median_s, r.gflops
        );
        rows.push(r);
        config = Some(c);
        what = w;
    }
    let peer_row = match &model_dir {
        Some(m) => peer(m, a)?,
        None => None,
    };
    let base = rows.first().map(|r| r.seqs_per_s).unwrap_or(f64::NAN);
    let mut table = Table::new(
        format!(
            "Encoder forward throughput, all-MiniLM-L6-v2, batch {}, seq {}, fp32",
            a.batch, a.seq
        ),
        &["backend", "sequences/s", "s/batch", "GFLOP/s", "vs PyTorch"],
    );
    let mut metrics = std::collections::BTreeMap::new();
    for r in rows.iter().chain(peer_row.iter()) {
        let ratio = peer_row.as_ref().map(|p| r.seqs_per_s / p.seqs_per_s);
        table.push(vec![
            Cell::text(&r.backend),
            Cell::num(r.seqs_per_s, 1),
            Cell::num(r.median_s, 4),
            if r.gflops > 0.0 {
                Cell::num(r.gflops, 1)
            } else {
                Cell::opt(None, 1)
            },
            Cell::opt(ratio, 2),
        ]);
        metrics.insert(
            format!("{}.seqs_per_s", r.backend.replace(' ', "_")),
            r.seqs_per_s,
        );
    }
    match &peer_row {
        Some(p) => {
            let msg = format!("kiln ({}) / PyTorch throughput = {:.2}x", rows[0].backend, base / p.seqs_per_s);
            println!("{msg}");
            table.note(msg);
        }
        None => table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch + transformers)"),
    }
    table.note(format!(
        "model: {what}; threads: RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset (all cores)".into())
    ));
    if let Some(c) = &config {
        table.note(format!(
            "FLOPs per batch: {:.2} GFLOP (2 per multiply-add)",
            encoder_flops(c, a.batch, a.seq) / 1e9
        ));
    }
    let meta = RunMeta {
        experiment: "bench-encoder".into(),
        profile: "bench".into(),
        backend: a
            .devices
            .iter()
            .map(|d| d.label())
            .collect::<Vec<_>>()
            .join(","),
        device: a.devices.first().map(|d| d.label()).unwrap_or_default(),
        commit: kiln_core::run::git_commit(),
        seed: 0,
        wall_time_s: 0.0,
        synthetic: false,
        started_at_unix: kiln_core::run::unix_now(),
        kiln_version: env!("CARGO_PKG_VERSION").into(),
        metrics,
        settings: serde_json::json!({"batch": a.batch, "seq": a.seq, "iters": a.iters, "model": what}),
    };
    write_table(out, "encoder", &table)?;
    kiln_core::atomic_write(
        &out.join("encoder.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    println!("\n{}", table.to_markdown());
    Ok(())
}

/// GPT-2 decoder training throughput (tokens/s) for staged-training: one step = forward, LM loss,
/// backward and the spec's Adam through `kiln_staged::TrainState` (which rebuilds the model from
/// its named tensors each step, as growth needs), on each requested backend, and the same model
/// and step in PyTorch with `KILN_PEER_PYTHON`.
fn bench_gpt2_train(a: &BenchArgs, out: &std::path::Path) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
    let (vocab, d, layers, heads, seq, batch) =
        (50257usize, 128usize, 4usize, 4usize, 128usize, 8usize);
    let tokens = (batch * seq) as f64;
    let iters = a.iters.max(3);
    let mut table = Table::new(
        format!("GPT-2 decoder training throughput (staged-training): vocab {vocab}, d {d}, {layers} layers, {heads} heads, seq {seq}, batch {batch}, fp32"),
        &["backend", "tokens/s", "s/step", "vs PyTorch"],
    );
    let mut rows: Vec<(String, f64)> = Vec::new();
    for choice in &a.devices {
        let device: Device = choice.device()?;
        println!("bench: GPT-2 training step on {}...", choice.label());
        let c = Gpt2Config::new(vocab, seq, d, layers, heads);
        device.seed(0);
        let model = Gpt2Model::new(&c, &device);
        let n = kiln_staged::schedule::non_embedding_params(layers, d);
        let mut state = kiln_staged::TrainState::new(
            c,
            &model,
            kiln_staged::schedule::Schedule::new(kiln_staged::schedule::lr_heuristic(n), 10, 1000),
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let flat: Vec<i64> = (0..batch * seq)
            .map(|_| rng.random_range(0..vocab as i64))
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(flat, [batch * seq]), &device)
            .reshape([batch, seq]);
        let mut failed = None;
        let t = kiln_core::timing::time_it(&device, 2, iters, || {
            if let Err(e) = state.train_step(ids.clone(), &device) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        println!(
            "  {}: {:.0} tokens/s ({:.3} s per step)",
            choice.label(),
            tokens / t.median_s,
            t.median_s
        );
        rows.push((choice.label(), t.median_s));
    }
    let args = [vocab, d, layers, heads, seq, batch, iters].map(|x| x.to_string());
    let peer = run_peer("peer_gpt2_train.py", &args)?.map(|(m, v)| {
        println!("  pytorch: {:.0} tokens/s ({m:.3} s per step)", tokens / m);
        (format!("pytorch {}", v["torch"].as_str().unwrap_or("")), m)
    });
    for (name, m) in rows.iter().chain(peer.iter()) {
        table.push(vec![
            Cell::text(name),
            Cell::num(tokens / m, 0),
            Cell::num(*m, 4),
            Cell::opt(peer.as_ref().map(|p| p.1 / m), 2),
        ]);
    }
    table.note(format!(
        "one step = forward + LM loss + backward + Adam (betas 0.9/0.98, eps 1e-6, no weight decay), dropout 0.1, random tokens; median of {iters} steps after 2 warm-up steps; RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    ));
    if peer.is_none() {
        table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch + transformers)");
    } else {
        table.note("PyTorch: HF GPT2LMHeadModel, torch.optim.AdamW (with bias correction), same shapes, same thread count");
    }
    write_table(out, "gpt2_train", &table)?;
    println!("\n{}", table.to_markdown());
    Ok(())
}

/// Real token removal (ltp) vs the dense classifier on the fine-tuned MiniLM's dev sets: manual
/// (linearly rising) thresholds, the one whose relative FLOPs is nearest 0.5, throughput of both
/// paths over the same batches in this process. Throughput depends on how many tokens are
/// removed, not on how the thresholds were learnt, so no training is needed here; the accuracy of
/// learned thresholds is ltp-glue's job.
fn bench_ltp(a: &BenchArgs, out: &std::path::Path) -> Result<()> {
    let cache = kiln_core::paths::cache_dir();
    let device = a.first_device()?;
    let mut table = Table::new(
        "Learned token pruning: real token removal vs the dense model (MiniLM, dev sets)",
        &[
            "task",
            "θ_final (manual)",
            "relative FLOPs",
            "dense examples/s",
            "removal examples/s",
            "speedup",
        ],
    );
    let mut any = false;
    for (task, max_len) in [("sst2", 64usize), ("mrpc", 128)] {
        let dir = cache.join("finetuned/all-MiniLM-L6-v2").join(task);
        let t = kiln_data::GlueTask::parse(task)?;
        let Ok(files) = crate::resolve::resolve_task(t, None, false) else {
            println!("bench: no {task} data; skipping the token-removal benchmark for {task}");
            continue;
        };
        if !dir.join("model.safetensors").exists() {
            println!("bench: no fine-tuned {task} checkpoint (run glue-finetune, mini); skipping the token-removal benchmark for {task}");
            continue;
        }
        any = true;
        let (model, _) = kiln_models::bert::load_classifier(&dir, t.num_labels(), &device)?;
        let tok = kiln_data::TextTokenizer::from_file(&dir.join("tokenizer.json"), max_len)?;
        let ex = kiln_data::read_glue_file(&files.dev, t)?;
        let mut dev = Vec::with_capacity(ex.len());
        for e in &ex {
            dev.push(tok.encode(&e.text_a, e.text_b.as_deref())?);
        }
        let labels: Vec<Option<f32>> = ex.iter().map(|e| e.label).collect();
        let names = vec!["accuracy".to_string()];
        let split = kiln_ltp::train::TaskSplit {
            train: &dev,
            train_labels: &labels,
            dev: &dev,
            dev_labels: &labels,
            metric_names: &names,
            main_metric: "accuracy",
            pad_id: tok.pad_id as i64,
        };
        let mut best: Option<(f64, f64, kiln_ltp::LtpModel)> = None;
        for theta in [0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.03] {
            let m = kiln_ltp::LtpModel::new(model.clone(), theta, 128)?;
            let rel = kiln_ltp::train::evaluate(&m, &split, kiln_ltp::Mode::Hard, &device)
                .flops
                .relative();
            if best
                .as_ref()
                .is_none_or(|(_, r, _)| (rel - 0.5).abs() < (r - 0.5).abs())
            {
                best = Some((theta, rel, m));
            }
        }
        let (theta, rel, m) = best.expect("at least one threshold");
        let (dense, removed) = kiln_ltp::physical::measure_throughput(
            &m,
            &dev,
            tok.pad_id as i64,
            32,
            a.iters.max(3),
            &device,
        );
        println!(
            "  {task}: θ_final {theta}: {rel:.3} relative FLOPs, removal {removed:.1} vs dense {dense:.1} examples/s = {:.2}x",
            removed / dense
        );
        table.push(vec![
            Cell::text(task),
            Cell::num(theta, 4),
            Cell::num(rel, 3),
            Cell::num(dense, 1),
            Cell::num(removed, 1),
            Cell::text(format!("{:.2}x", removed / dense)),
        ]);
    }
    if any {
        table.note("target (ltp issue): >= 1.5x at ~0.5 relative FLOPs on this CPU; the paper reports 1.9x on a Haswell CPU; the official code only masks tokens (no speedup).");
        table.note(format!(
            "batch 32, length-grouped dev batches, median of {} passes, both paths in the same process; RAYON_NUM_THREADS={}",
            a.iters.max(3),
            std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
        ));
        write_table(out, "ltp", &table)?;
        println!("\n{}", table.to_markdown());
    }
    Ok(())
}
