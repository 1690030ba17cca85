//! `kiln bench --only dlrm`: DLRM training throughput on the mini profile's configuration,
//! against a PyTorch DLRM of the same shape in the same run.

use anyhow::Result;
use burn::module::Module;
use burn::optim::SgdConfig;
use burn::tensor::Device;
use kiln_experiment::bench::{interleaved, write_table, BenchArgs, Interleaved};
use kiln_models::dlrm::{CtrRows, Dlrm, DlrmConfig, Interaction};
use kiln_report::{Cell, Table};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Examples/s of one SGD step (forward, BCE, backward, global clipping, update) through
/// [`crate::retrain::train_step`]: 13 dense features, 26 tables of `rows` rows, d 16, bottom
/// 13-64-16, top 367-64-1 (the mini profile's baseline), batch 128, random ids.
pub fn dlrm_train(a: &BenchArgs) -> Result<()> {
    let (n_dense, n_cat, rows, d, hidden, batch) =
        (13usize, 26usize, 10_000usize, 16usize, 64usize, 128usize);
    let iters = a.iters.max(10);
    let cfg = DlrmConfig::uniform(
        vec![n_dense, hidden, d],
        vec![hidden],
        vec![rows; n_cat],
        Interaction::Dot,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let dense: Vec<f32> = (0..batch * n_dense)
        .map(|_| (1.0 + rng.random_range(0.0..100.0f64)).ln() as f32)
        .collect();
    let cats: Vec<u32> = (0..batch * n_cat)
        .map(|_| rng.random_range(0..rows as u32))
        .collect();
    let labels: Vec<f32> = (0..batch)
        .map(|_| f32::from(u8::from(rng.random::<f64>() < 0.25)))
        .collect();
    let b = CtrRows {
        dense: &dense,
        cats: &cats,
        labels: &labels,
        n_dense,
        n_cat,
    };
    let mut table = Table::new(
        format!("DLRM training throughput (dnas-dlrm mini baseline): bottom 13-{hidden}-{d}, 26 tables × {rows} rows × {d}, dot interaction, top {}-{hidden}-1, batch {batch}, SGD + global clip 100, fp32", cfg.top_sizes()[0]),
        &["backend", "examples/s", "s/step", "vs PyTorch [range over rounds]"],
    );
    let args = [n_dense, n_cat, rows, d, hidden, batch, iters].map(|x| x.to_string());
    println!(
        "bench: DLRM training step ({iters} timed steps, {} rounds)...",
        a.rounds
    );
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            let ad = device.clone().autodiff();
            let model = Dlrm::new(&cfg, &mut ChaCha8Rng::seed_from_u64(1), &device)?;
            let mut model = Some(model.to_device(&ad).train());
            let mut optim = SgdConfig::new().init();
            let mut failed = None;
            let t = kiln_core::timing::time_it(&device, 3, iters, || {
                let m = model.take().expect("model");
                match crate::retrain::train_step(m.clone(), &mut optim, &b, 0.1, 100.0, &ad) {
                    Ok((m, _)) => model = Some(m),
                    Err(e) => {
                        failed = Some(e);
                        model = Some(m);
                    }
                }
            });
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(t.median_s),
            }
        },
        Some(("peer_dlrm_train.py", &args[..])),
    )?;
    for (name, times) in res.kiln.iter().chain(res.peer.iter()) {
        let m = Interleaved::seconds(times);
        let is_peer = res.peer.as_ref().is_some_and(|p| &p.0 == name);
        table.push(vec![
            Cell::text(name),
            Cell::num(batch as f64 / m, 0),
            Cell::num(m, 5),
            Cell::text(if is_peer {
                "1.00".to_string()
            } else {
                res.ratio_text(times)
            }),
        ]);
    }
    table.note(format!(
        "one step = forward + BCE + backward + global grad-norm clip + SGD; lookups are row gathers (burn `select`, backward a scatter-add), never one-hot matmuls; {} alternating rounds (kiln devices, then PyTorch), each the median of {iters} steps after 3 warm-up steps; {}",
        a.rounds.max(1),
        BenchArgs::threads_note()
    ));
    if res.peer.is_none() {
        table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch)");
    } else {
        table.note("PyTorch: the reference DLRM's structure (nn.EmbeddingBag(mode=sum) per table, bmm dot interaction, BCELoss, clip_grad_norm_(100), SGD), same shapes and thread count");
    }
    write_table(&a.dir(), "dlrm_train", &table)?;
    Ok(())
}
