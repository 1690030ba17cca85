//! Synthetic click logs with a planted interaction structure, for the smoke profile: a few
//! feature pairs interact through latent vectors (what the dot interaction can learn), two
//! dense features carry a linear signal, and the other categorical features are pure noise
//! (what the embedding searches can shrink). Ids are Zipf-like, as in real click logs.

use kiln_data::ctr::CtrData;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kiln_models::dlrm::normal_vec;

/// `n` rows; features 0-1, 2-3 and 1-4 interact, the rest are noise.
pub fn planted_clicks(n: usize, seed: u64) -> CtrData {
    let counts = [10usize, 15, 8, 20, 6, 30, 12, 18];
    let n_dense = 4;
    let k = 4;
    let pairs = [(0usize, 1usize), (2, 3), (1, 4)];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let latent: Vec<Vec<f32>> = counts
        .iter()
        .map(|&c| normal_vec(&mut rng, c * k, 1.0))
        .collect();
    let mut dense = Vec::with_capacity(n * n_dense);
    let mut cats = Vec::with_capacity(n * counts.len());
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<u32> = counts
            .iter()
            .map(|&c| {
                // Zipf-like: u^2 concentrates mass on small ids.
                let u: f64 = rng.random();
                ((u * u * c as f64) as usize).min(c - 1) as u32
            })
            .collect();
        let x: Vec<f32> = (0..n_dense)
            .map(|_| (1.0 + rng.random_range(0.0..20.0f64)).ln() as f32)
            .collect();
        let mut logit = -1.3 + 0.6 * (x[0] as f64 - 2.0) - 0.4 * (x[1] as f64 - 2.0);
        for &(f, g) in &pairs {
            let (a, b) = (row[f] as usize, row[g] as usize);
            let dot: f32 = (0..k)
                .map(|j| latent[f][a * k + j] * latent[g][b * k + j])
                .sum();
            logit += 1.2 * dot as f64;
        }
        let p = 1.0 / (1.0 + (-logit).exp());
        labels.push(f32::from(u8::from(rng.random::<f64>() < p)));
        dense.extend(x);
        cats.extend(row);
    }
    CtrData {
        name: "synthetic".into(),
        n_dense,
        n_cat: counts.len(),
        dense,
        cats,
        labels,
        counts: counts.to_vec(),
        cat_names: (1..=counts.len()).map(|i| format!("S{i}")).collect(),
    }
}
