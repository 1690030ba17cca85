//! Latency measurement that waits for the device, so GPU timings are not just launch times.

use std::time::Instant;

use burn::tensor::Device;

/// Summary of repeated timings, in seconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
    pub mean_s: f64,
    pub runs: usize,
}

/// Runs `f` `warmup` times untimed, then `runs` times timed, syncing the device after each.
pub fn time_it<T>(device: &Device, warmup: usize, runs: usize, mut f: impl FnMut() -> T) -> Timing {
    for _ in 0..warmup {
        std::hint::black_box(f());
        let _ = device.sync();
    }
    let mut samples = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        std::hint::black_box(f());
        let _ = device.sync();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    Timing {
        median_s: samples[samples.len() / 2],
        min_s: samples[0],
        mean_s: samples.iter().sum::<f64>() / samples.len() as f64,
        runs: samples.len(),
    }
}
