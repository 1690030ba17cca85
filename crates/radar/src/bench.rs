//! `kiln bench --only radar-cdc`: RODNet-CDC training throughput (frames per second: windows ×
//! T per second) through [`crate::train`]'s step (forward, MSE, backward, Adam), against a
//! PyTorch CDC of the same shape in the same run.

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use kiln_experiment::bench::{interleaved, write_table, BenchArgs, Interleaved};
use kiln_report::{Cell, Table};

use crate::nets::{Arch, NetConfig, RadarDetector};

/// The shape timed: the mini's window on its grid would say little about the paper's cost, so
/// the sensor's 16 × 128 × 128 window at a width a CPU can train (1/8: 8-16-32 channels).
const SHAPE: (usize, usize, usize, usize) = (2, 16, 128, 128);
const WIDTH: f64 = 0.125;
const N_OUT: usize = 4;

pub fn cdc_train(a: &BenchArgs) -> Result<()> {
    let (batch, t, r, w) = SHAPE;
    let iters = a.iters.clamp(3, 10);
    let mut table = Table::new(
        format!(
            "RODNet-CDC training throughput: input {batch}×2×{t}×{r}×{w}, channels ×{WIDTH} \
             (8-16-32), {N_OUT} output maps, MSE, Adam, fp32"
        ),
        &[
            "backend",
            "frames/s",
            "s/step",
            "vs PyTorch [range over rounds]",
        ],
    );
    let args = [
        batch.to_string(),
        t.to_string(),
        r.to_string(),
        w.to_string(),
        WIDTH.to_string(),
        N_OUT.to_string(),
        iters.to_string(),
    ];
    println!(
        "bench: RODNet-CDC training step ({iters} timed steps, {} rounds)...",
        a.rounds
    );
    let res = interleaved(
        a,
        |choice| {
            let device: Device = choice.device()?;
            let ad = device.clone().autodiff();
            let net = NetConfig::new(Arch::Cdc, N_OUT)
                .with_width(WIDTH)
                .init(&device)?;
            let mut model = Some(net.to_device(&ad).train());
            let mut optim = AdamConfig::new().init();
            device.seed(0);
            let x = Tensor::<5>::random([batch, 2, t, r, w], Distribution::Normal(0.0, 1.0), &ad);
            let y = Tensor::<5>::random(
                [batch, N_OUT, t, r, w],
                Distribution::Uniform(0.0, 1.0),
                &ad,
            );
            let mut failed = None;
            let tm = kiln_core::timing::time_it(&device, 3, iters, || {
                let m = model.take().expect("model");
                let step = m
                    .forward(x.clone())
                    .and_then(|outs| m.loss(outs, y.clone()));
                match step {
                    Ok(loss) => {
                        let grads = GradientsParams::from_grads(loss.backward(), &m);
                        model = Some(optim.step(1e-4, m, grads));
                    }
                    Err(e) => {
                        failed = Some(e);
                        model = Some(m);
                    }
                }
            });
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(tm.median_s),
            }
        },
        Some(("peer_radar_cdc.py", &args[..])),
    )?;
    for (name, times) in res.kiln.iter().chain(res.peer.iter()) {
        let m = Interleaved::seconds(times);
        let is_peer = res.peer.as_ref().is_some_and(|p| &p.0 == name);
        table.push(vec![
            Cell::text(name),
            Cell::num((batch * t) as f64 / m, 1),
            Cell::num(m, 3),
            Cell::text(if is_peer {
                "1.00".to_string()
            } else {
                res.ratio_text(times)
            }),
        ]);
    }
    table.note(format!(
        "one step = forward + MSE + backward + Adam, BatchNorm in training mode; {} alternating \
         rounds (kiln devices, then PyTorch), each the median of {iters} steps after 3 warm-up \
         steps; {}",
        a.rounds.max(1),
        BenchArgs::threads_note()
    ));
    if res.peer.is_none() {
        table.note("no PyTorch peer in this run (set KILN_PEER_PYTHON to a Python with torch)");
    } else {
        table.note(
            "PyTorch: bench/peer_radar_cdc.py, the same CDC (Conv3d + BatchNorm3d + ReLU encoder, \
             ConvTranspose3d decoder with one shared PReLU), same shapes and thread count",
        );
    }
    write_table(&a.dir(), "radar_cdc_train", &table)?;
    Ok(())
}
