//! `kiln bench --only gpt2`: GPT-2 decoder training steps through `TrainState`, against
//! PyTorch in the same run.

use anyhow::Result;
use burn::tensor::Device;
use kiln_experiment::bench::{interleaved, write_table, BenchArgs, Interleaved};
use kiln_report::{Cell, Table};
use rand::{Rng, SeedableRng};

/// GPT-2 decoder training throughput (tokens/s) for staged-training: one step = forward, LM loss,
/// backward and the spec's Adam through `crate::TrainState` (which rebuilds the model from
/// its named tensors each step, as growth needs), on each requested backend, and the same model
/// and step in PyTorch with `KILN_PEER_PYTHON`.
pub fn gpt2_train(a: &BenchArgs) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    use kiln_models::gpt2::{Gpt2Config, Gpt2Model};
    let (vocab, d, layers, heads, seq, batch) =
        (50257usize, 128usize, 4usize, 4usize, 128usize, 8usize);
    let tokens = (batch * seq) as f64;
    let iters = a.iters.max(3);
    let mut table = Table::new(
        format!("GPT-2 decoder training throughput (staged-training): vocab {vocab}, d {d}, {layers} layers, {heads} heads, seq {seq}, batch {batch}, fp32"),
        &["backend", "tokens/s", "s/step", "vs PyTorch [range over rounds]"],
    );
    let args = [vocab, d, layers, heads, seq, batch, iters].map(|x| x.to_string());
    println!(
        "bench: GPT-2 training step ({iters} timed steps, {} rounds)...",
        a.rounds
    );
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            let c = Gpt2Config::new(vocab, seq, d, layers, heads);
            device.seed(0);
            let model = Gpt2Model::new(&c, &device);
            let n = crate::schedule::non_embedding_params(layers, d);
            let mut state = crate::TrainState::new(
                c,
                &model,
                crate::schedule::Schedule::new(crate::schedule::lr_heuristic(n), 10, 1000),
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
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(t.median_s),
            }
        },
        Some(("peer_gpt2_train.py", &args[..])),
    )?;
    for (name, times) in res.kiln.iter().chain(res.peer.iter()) {
        let m = Interleaved::seconds(times);
        let is_peer = res.peer.as_ref().is_some_and(|p| &p.0 == name);
        table.push(vec![
            Cell::text(name),
            Cell::num(tokens / m, 0),
            Cell::num(m, 4),
            Cell::text(if is_peer {
                "1.00".to_string()
            } else {
                res.ratio_text(times)
            }),
        ]);
    }
    table.note(format!(
        "one step = forward + LM loss + backward + Adam (betas 0.9/0.98, eps 1e-6, no weight decay), dropout 0.1, random tokens; {} alternating rounds (kiln devices, then PyTorch), each the median of {iters} steps after 2 warm-up steps; {}",
        a.rounds.max(1),
        BenchArgs::threads_note()
    ));
    if res.peer.is_none() {
        table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch + transformers)");
    } else {
        table.note("PyTorch: HF GPT2LMHeadModel, torch.optim.AdamW (with bias correction), same shapes, same thread count");
    }
    write_table(&a.dir(), "gpt2_train", &table)?;
    Ok(())
}

/// The LM loss alone (forward + backward over the GPT-2 head's `[b·(t−1), 50,257]` logits),
/// kiln's fused cross-entropy against the same loss composed from burn's tensor ops, per
/// backend, alternating in one run: what the fused operation is worth by itself.
pub fn gpt2_loss(a: &BenchArgs) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    use kiln_models::cross_entropy::{composite, cross_entropy_rows};
    let (vocab, n) = (50257usize, 8 * 127usize);
    let iters = a.iters.max(3);
    let rounds = a.rounds.max(1);
    println!("bench: LM loss, fused vs composite ({iters} timed passes, {rounds} rounds)...");
    type Loss = fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>;
    let losses: [(&str, Loss); 2] = [("fused", cross_entropy_rows), ("composite", composite)];
    let mut table = Table::new(
        format!(
            "LM loss forward + backward over [{n}, {vocab}] logits (the GPT-2 step's head), fp32"
        ),
        &[
            "backend",
            "fused s",
            "composite s",
            "composite / fused [range over rounds]",
        ],
    );
    for choice in a.devices() {
        let device: Device = choice.device()?.autodiff();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let z: Vec<f32> = (0..n * vocab)
            .map(|_| rng.random::<f32>() * 4.0 - 2.0)
            .collect();
        let t: Vec<i64> = (0..n).map(|_| rng.random_range(0..vocab as i64)).collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [n, vocab]), &device);
        let t = Tensor::<1, Int>::from_data(TensorData::new(t, [n]), &device);
        let mut times = [Vec::new(), Vec::new()];
        for r in 0..rounds {
            for (k, (name, f)) in losses.iter().enumerate() {
                let timing = kiln_core::timing::time_it(&device, 1, iters, || {
                    // a fresh leaf each pass, as the head's output is in a step
                    let leaf = (z.clone() * 1.0).require_grad();
                    let grads = f(leaf.clone(), t.clone()).mean().backward();
                    leaf.grad(&grads).map(|g| g.dims())
                });
                println!(
                    "  round {}/{rounds} {} {name}: {:.4} s",
                    r + 1,
                    choice.label(),
                    timing.median_s
                );
                times[k].push(timing.median_s);
            }
        }
        let ratios: Vec<f64> = times[1].iter().zip(&times[0]).map(|(c, f)| c / f).collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        table.push(vec![
            Cell::text(choice.label()),
            Cell::num(Interleaved::seconds(&times[0]), 4),
            Cell::num(Interleaved::seconds(&times[1]), 4),
            Cell::text(format!(
                "{:.2} [{:.2}-{:.2}]",
                sorted[sorted.len() / 2],
                sorted[0],
                sorted[sorted.len() - 1]
            )),
        ]);
    }
    table.note(format!(
        "fused: kiln_models::cross_entropy::cross_entropy_rows (flex: rayon row kernel; tch: LibTorch log_softmax kept, backward in place; CubeCL: one custom backward over burn's primitives); composite: logsumexp(z) − z[t] from burn's tensor ops, the GPT-2 loss before the fused op; random logits in [−2, 2), the mean over rows, then backward to the logits; {rounds} alternating rounds, each the median of {iters} passes after 1 warm-up; {}",
        BenchArgs::threads_note()
    ));
    write_table(&a.dir(), "gpt2_loss", &table)?;
    Ok(())
}
