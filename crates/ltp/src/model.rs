//! A sequence classifier with learned per-layer token thresholds, run in any pruning mode as the
//! reference's masked simulation (pruned tokens stay in the tensors but are masked as keys).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use kiln_models::{BertForSequenceClassification, EncoderInput};

use crate::error::check_range;
use crate::flops::LiveCounts;
use crate::score::{regulariser_term, soft_mask, token_scores};
use crate::topk::kept_count;
use crate::LtpError;

/// Masked key positions get this additive score (probability exactly 0 in f32).
const MASKED: f64 = -1.0e9;
/// The decision floor: a token below max(1e-5, θ) is pruned, so padding always is.
const FLOOR: f64 = 1e-5;

/// One threshold per layer: `θ_l = θ_final · l / L + δ_l` (0-based `l`), only `δ` trained.
#[derive(Module, Debug)]
pub struct Thresholds {
    /// Trainable offsets, initialised to 0.
    pub delta: Param<Tensor<1>>,
    /// θ_final; the base of layer l is recomputed from it, never stored (as the reference).
    pub final_threshold: f64,
}

impl Thresholds {
    pub fn new(layers: usize, final_threshold: f64, device: &Device) -> Result<Self, LtpError> {
        check_range(
            "final_token_threshold",
            final_threshold,
            0.0,
            1.0,
            true,
            "thresholds compare with scores that average 1/128; the reference default is 0.01",
        )?;
        Ok(Self {
            delta: Param::from_tensor(Tensor::zeros([layers], device)),
            final_threshold,
        })
    }

    pub fn layers(&self) -> usize {
        self.delta.dims()[0]
    }

    /// The linear initialisation `θ_final · l / L`.
    pub fn base(&self) -> Vec<f64> {
        let n = self.layers();
        (0..n)
            .map(|l| self.final_threshold * l as f64 / n as f64)
            .collect()
    }

    /// Current thresholds on the host.
    pub fn values(&self) -> Vec<f64> {
        let d: Vec<f32> = self
            .delta
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.base()
            .iter()
            .zip(d)
            .map(|(b, d)| b + d as f64)
            .collect()
    }

    /// Current thresholds as a tensor (differentiable in `delta`).
    pub fn tensor(&self) -> Tensor<1> {
        let base: Vec<f32> = self.base().iter().map(|&x| x as f32).collect();
        let device = self.delta.val().device();
        let n = base.len();
        Tensor::<1>::from_data(TensorData::new(base, [n]), &device) + self.delta.val()
    }
}

/// How tokens are pruned in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// No pruning: the plain classifier.
    Off,
    /// Stage 1: each layer's output rows are scaled by `sigmoid((s - θ)/T)`; only padding is
    /// masked; the regulariser is returned.
    Soft { temperature: f64 },
    /// Threshold pruning (stage 2, the manual-threshold baseline, and every evaluation).
    Hard,
    /// The top-k cascade with final keep rate `rate` (§8).
    TopK { rate: f64 },
}

impl Mode {
    pub fn check(self) -> Result<(), LtpError> {
        match self {
            Mode::Soft { temperature } => check_range(
                "temperature",
                temperature,
                0.0,
                1.0,
                false,
                "a positive soft-mask temperature, e.g. 1e-3 (reference values 1e-5 .. 2e-3)",
            ),
            Mode::TopK { rate } => check_range(
                "token_keep_rate",
                rate,
                -10.0,
                1.0,
                true,
                "the last layer's keep rate, below 1 (rates are clipped at 0.01 per layer)",
            ),
            _ => Ok(()),
        }
    }
}

/// Logits, the soft-mask regulariser (soft mode), and live-token counts per layer.
#[derive(Debug, Clone)]
pub struct LtpOutput {
    pub logits: Tensor<2>,
    pub regulariser: Option<Tensor<1>>,
    pub counts: LiveCounts,
    /// Whether position 0 ([CLS]) survived every layer, per example (real removal always keeps
    /// it, so it matches the simulation exactly on these rows).
    pub first_kept: Vec<bool>,
}

#[derive(Module, Debug)]
pub struct LtpModel {
    pub classifier: BertForSequenceClassification,
    pub thresholds: Thresholds,
    /// N of the score normalisation (the reference's max_seq_length, 128).
    pub norm_len: usize,
}

fn host_f32(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

fn counts_of(live: &[f32], b: usize, n: usize) -> Vec<usize> {
    (0..b)
        .map(|r| {
            live[r * n..(r + 1) * n]
                .iter()
                .filter(|&&v| v > 0.5)
                .count()
        })
        .collect()
}

impl LtpModel {
    pub fn new(
        classifier: BertForSequenceClassification,
        final_threshold: f64,
        norm_len: usize,
    ) -> Result<Self, LtpError> {
        if norm_len == 0 {
            return Err(LtpError::Invalid(
                "norm_len must be positive (the reference normalises scores by 128)".into(),
            ));
        }
        let device = classifier.classifier.weight.val().device();
        let layers = classifier.bert.num_layers();
        Ok(Self {
            thresholds: Thresholds::new(layers, final_threshold, &device)?,
            classifier,
            norm_len,
        })
    }

    /// The masked simulation of spec §5/§6 (eval mode is the caller's choice of [`Mode::Hard`]).
    pub fn forward(&self, input: &EncoderInput, mode: Mode) -> LtpOutput {
        let bert = &self.classifier.bert;
        let mut x = bert.embed(input);
        let [b, n, _] = x.dims();
        let device = x.device();
        let pad_live = input.attention_mask.clone().float();
        let pad_host = host_f32(pad_live.clone());
        let lengths = counts_of(&pad_host, b, n);
        let layers = bert.num_layers();
        let theta = self.thresholds.values();
        let theta_t = (matches!(mode, Mode::Soft { .. })).then(|| self.thresholds.tensor());
        let mut live = pad_live.clone();
        let mut live_host = pad_host;
        let mut reg: Option<Tensor<1>> = None;
        let mut counts = LiveCounts {
            lengths: lengths.clone(),
            ..LiveCounts::default()
        };
        for (l, layer) in bert.encoder.layer.iter().enumerate() {
            let mask = match mode {
                Mode::Soft { .. } => pad_live.clone(),
                _ => live.clone(),
            };
            counts.attn.push(counts_of(&live_host, b, n));
            let bias = (mask.clone().neg() + 1.0).reshape([b, 1, 1, n]) * MASKED;
            let sa = &layer.attention.self_attn;
            let (probs, v) = sa.probs_and_values(x.clone(), bias);
            // Rows of masked queries are zeroed before scoring (and, as in the reference,
            // before the context, which only changes masked tokens' own outputs).
            let probs = probs * mask.clone().reshape([b, 1, n, 1]);
            let s = token_scores(probs.clone(), mask, self.norm_len);
            let attn = layer.attend(x.clone(), Some(probs.matmul(v)), None);
            let active = theta[l] != 0.0;
            let mut soft = None;
            match mode {
                Mode::Off => {}
                Mode::Hard if active => {
                    let keep = s.greater_equal_elem(theta[l].max(FLOOR)).float();
                    live = live * keep;
                    live_host = host_f32(live.clone());
                }
                Mode::Hard => {}
                Mode::TopK { rate } => {
                    let sh = host_f32(s);
                    let mut next = vec![0.0f32; b * n];
                    for r in 0..b {
                        let k = kept_count(lengths[r], l, layers, rate);
                        let mut idx: Vec<usize> =
                            (0..n).filter(|&j| live_host[r * n + j] > 0.5).collect();
                        idx.sort_by(|&i, &j| {
                            sh[r * n + j].total_cmp(&sh[r * n + i]).then(i.cmp(&j))
                        });
                        for &j in idx.iter().take(k) {
                            next[r * n + j] = 1.0;
                        }
                    }
                    live = Tensor::<1>::from_data(TensorData::new(next.clone(), [b * n]), &device)
                        .reshape([b, n]);
                    live_host = next;
                }
                Mode::Soft { temperature } if active => {
                    let th = theta_t
                        .as_ref()
                        .expect("soft mode has the threshold tensor")
                        .clone()
                        .narrow(0, l, 1)
                        .reshape([1, 1]);
                    let m = soft_mask(s, th, temperature);
                    let term = regulariser_term(m.clone(), self.norm_len);
                    reg = Some(match reg {
                        Some(r) => r + term,
                        None => term,
                    });
                    soft = Some(m);
                }
                Mode::Soft { .. } => {}
            }
            let act = layer.ffn_activation(attn.clone());
            let out = layer.ffn_output(act, None, attn);
            x = match soft {
                Some(m) => out * m.reshape([b, n, 1]),
                None => out,
            };
            counts.ffn.push(counts_of(&live_host, b, n));
        }
        LtpOutput {
            logits: self.classifier.head(x),
            regulariser: reg,
            counts,
            first_kept: (0..b).map(|r| live_host[r * n] > 0.5).collect(),
        }
    }
}
