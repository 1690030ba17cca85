//! The whole method in one call: gradients -> search -> rearrangement -> tuning, with the
//! per-stage timings the paper reports (gradient collection to the end of tuning).

use std::time::Instant;

use burn::tensor::Device;
use kiln_data::{Batch, Encoded};
use kiln_models::EncoderTask;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::importance::{collect_mask_grads, importance};
use crate::rearrange::rearrange;
use crate::search::{check_constraint, search_latency, search_mac, LatencyLut};
use crate::tuning::{tune_masks, Solver, Teacher, TuneReport};
use crate::{Criterion, MacModel, MaskGrads, Masks, PruneError};

/// Settings of one pruning run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneOptions {
    /// Fraction of the counted MACs to keep, in (0, 1).
    pub constraint: f64,
    pub criterion: Criterion,
    /// Sequence length of the cost model (the task's average dev length).
    pub seq_len: f64,
    pub rearrange: bool,
    pub tune: bool,
    pub teacher: Teacher,
    /// Solver of the tuning systems (default: the reference's LSMR).
    #[serde(default)]
    pub solver: Solver,
    /// Search under a latency constraint with these lookup tables (§4.3): `constraint` is then
    /// the fraction of the unpruned model's estimated latency; `None` = the FLOPs search (§4.2).
    #[serde(default)]
    pub latency: Option<LatencyLut>,
}

/// Seconds per stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageTimes {
    pub gradients_s: f64,
    pub search_s: f64,
    pub rearrange_s: f64,
    pub tuning_s: f64,
}

impl StageTimes {
    pub fn total(&self) -> f64 {
        self.gradients_s + self.search_s + self.rearrange_s + self.tuning_s
    }
}

/// Masks after each stage and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneOutcome {
    pub search: Masks,
    pub rearranged: Masks,
    pub tuned: Masks,
    /// Counted-MAC ratio of the final mask (≤ constraint under a FLOPs constraint).
    pub mac_ratio: f64,
    pub times: StageTimes,
    pub tuning: TuneReport,
}

/// The official sample set: `n` training indices drawn uniformly *with replacement* (seeded),
/// batched in draw order (no shuffling) with dynamic padding.
pub fn sample_batches(
    encoded: &[Encoded],
    labels: &[Option<f32>],
    n: usize,
    batch_size: usize,
    pad_id: i64,
    seed: u64,
) -> Result<Vec<Batch>, PruneError> {
    let usable: Vec<usize> = (0..encoded.len())
        .filter(|&i| labels[i].is_some())
        .collect();
    if usable.is_empty() || n == 0 {
        return Err(PruneError::EmptySamples);
    }
    let picks = sample_indices(&usable, n, seed);
    batches_at(encoded, labels, &picks, batch_size, pad_id)
}

/// The sample set made of the given training indices, in order (e.g. another implementation's
/// draws, so both prune from identical samples); an index past the data or of an unlabelled
/// example is an error.
pub fn batches_at(
    encoded: &[Encoded],
    labels: &[Option<f32>],
    picks: &[usize],
    batch_size: usize,
    pad_id: i64,
) -> Result<Vec<Batch>, PruneError> {
    if picks.is_empty() {
        return Err(PruneError::EmptySamples);
    }
    if let Some(&bad) = picks
        .iter()
        .find(|&&i| i >= encoded.len() || labels.get(i).is_none_or(|l| l.is_none()))
    {
        return Err(PruneError::Invalid(format!(
            "sample index {bad} is not a labelled training example (there are {})",
            encoded.len()
        )));
    }
    Ok(picks
        .chunks(batch_size.max(1))
        .map(|c| {
            let items: Vec<(&Encoded, Option<f32>)> =
                c.iter().map(|&i| (&encoded[i], labels[i])).collect();
            kiln_data::batch::pad(&items, c.to_vec(), pad_id, None)
        })
        .collect())
}

/// `n` draws from `pool`, uniformly with replacement (seeded): the official sample set, for
/// any kind of example (GLUE rows, SQuAD features).
pub fn sample_indices(pool: &[usize], n: usize, seed: u64) -> Vec<usize> {
    if pool.is_empty() {
        return Vec::new();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect()
}

/// Prunes `model` under `opts.constraint`. Pass `grads` to reuse gradients across constraints
/// (they do not depend on the constraint); their collection time is then reported as 0.
pub fn prune<M: EncoderTask>(
    model: &M,
    samples: &[Batch],
    grads: Option<&MaskGrads>,
    opts: &PruneOptions,
    device: &Device,
) -> Result<PruneOutcome, PruneError> {
    check_constraint(opts.constraint)?;
    if samples.is_empty() {
        return Err(PruneError::EmptySamples);
    }
    let model = model.valid();
    let mut times = StageTimes::default();
    let t = Instant::now();
    let owned;
    let grads = match grads {
        Some(g) => g,
        None => {
            owned = collect_mask_grads(&model, samples, device)?;
            times.gradients_s = t.elapsed().as_secs_f64();
            &owned
        }
    };
    let t = Instant::now();
    let bert = model.encoder();
    let cfg_cost = MacModel {
        layers: bert.num_layers(),
        heads: bert.heads_per_layer()[0],
        neurons: bert.neurons_per_layer()[0],
        hidden: bert.embeddings.word_embeddings.weight.dims()[1],
        head_dim: bert.encoder.layer[0].attention.self_attn.head_dim,
        seq_len: opts.seq_len,
    };
    let imp = importance(bert, grads, opts.criterion);
    let search = |c: f64| -> Result<Masks, PruneError> {
        Ok(match &opts.latency {
            Some(lut) => search_latency(&imp, lut, c)?,
            None => search_mac(&imp, &cfg_cost, c)?.masks,
        })
    };
    let searched = search(opts.constraint)?;
    times.search_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let rearranged = if opts.rearrange && opts.criterion != Criterion::Magnitude {
        rearrange(&searched, grads)
    } else {
        searched.clone()
    };
    times.rearrange_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (tuned, tuning) = if opts.tune {
        let teacher = match opts.teacher {
            Teacher::Original => Masks::ones_for(bert),
            Teacher::SqrtConstraint => search(opts.constraint.sqrt())?,
        };
        tune_masks(
            bert,
            samples,
            &rearranged,
            &teacher,
            model.reads_first_token_only(),
            opts.solver,
            device,
        )?
    } else {
        (rearranged.clone(), TuneReport::default())
    };
    times.tuning_s = t.elapsed().as_secs_f64();
    Ok(PruneOutcome {
        mac_ratio: cfg_cost.ratio(&tuned),
        search: searched,
        rearranged,
        tuned,
        times,
        tuning,
    })
}
