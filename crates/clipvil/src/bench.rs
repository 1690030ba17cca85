//! `kiln bench --only clip-grid`: grid-feature extraction throughput of the RN50 and ViT-B/32
//! towers (random weights, the released shapes), against open_clip's modules of the same shape
//! in the same run.

use anyhow::Result;
use burn::tensor::{Device, Distribution, Tensor};
use kiln_experiment::bench::{interleaved, write_table, BenchArgs, Interleaved};
use kiln_models::clip::{ClipVisual, GridPositions, VisualConfig};
use kiln_report::{Cell, Table};

/// Images/s of `grid` (no gradients) for batch 4 at 224×224: the RN50 C5 map (7×7×2048) and
/// the ViT-B/32 penultimate-block patch grid (7×7×768).
pub fn grid_features(a: &BenchArgs) -> Result<()> {
    let (batch, size) = (4usize, 224usize);
    let iters = a.iters.clamp(3, 20);
    let mut table = Table::new(
        format!("CLIP grid-feature extraction (random weights, released shapes), batch {batch} at {size}×{size}, fp32, no gradients"),
        &["tower", "backend", "images/s", "s/batch", "vs PyTorch [range over rounds]"],
    );
    for name in ["RN50", "ViT-B-32"] {
        let cfg = VisualConfig::named(name).expect("a released architecture");
        println!(
            "bench: {name} grid features ({iters} timed batches, {} rounds)...",
            a.rounds
        );
        let args = [
            name.to_string(),
            batch.to_string(),
            size.to_string(),
            iters.to_string(),
        ];
        let res = interleaved(
            a,
            |choice| {
                let device: Device = choice.device()?;
                device.seed(0);
                let m = ClipVisual::new(&cfg, &device)?;
                let x = Tensor::<4>::random(
                    [batch, 3, size, size],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                );
                let t = kiln_core::timing::time_it(&device, 2, iters, || {
                    let g = m.grid(x.clone(), GridPositions::Interpolated);
                    let _ = g.sum().into_scalar::<f32>();
                });
                Ok(t.median_s)
            },
            Some(("peer_clip_grid.py", &args[..])),
        )?;
        for (backend, times) in res.kiln.iter().chain(res.peer.iter()) {
            let m = Interleaved::seconds(times);
            let is_peer = res.peer.as_ref().is_some_and(|p| &p.0 == backend);
            table.push(vec![
                Cell::text(name),
                Cell::text(backend),
                Cell::num(batch as f64 / m, 2),
                Cell::num(m, 4),
                Cell::text(if is_peer {
                    "1.00".to_string()
                } else {
                    res.ratio_text(times)
                }),
            ]);
        }
        if res.peer.is_none() {
            table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch and open_clip_torch)");
        }
    }
    table.note(format!(
        "{} alternating rounds (kiln devices, then PyTorch), each the median of {iters} batches after 2 warm-up batches; PyTorch: open_clip 3.3.0's ModifiedResNet / VisionTransformer (QuickGELU) in eval mode under torch.no_grad(), grid taken the same way (stem + layer1-4; ln_pre + the first 11 blocks); {}",
        a.rounds.max(1),
        BenchArgs::threads_note()
    ));
    write_table(&a.dir(), "clip_grid", &table)?;
    Ok(())
}
