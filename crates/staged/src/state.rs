//! The training state as one value: parameters and Adam moments keyed by HF GPT-2 names
//! (vectors stored as `[1, n]` rows), the step counter and the LR schedule.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Int, Tensor};
use kiln_models::gpt2::{Gpt2Config, Gpt2Model};

use crate::schedule::Schedule;
use crate::StagedError;

/// HF-named tensors; vectors are `[1, n]`.
pub type Named = BTreeMap<String, Tensor<2>>;

/// Spec §3: HF `AdamW(betas=(0.9, 0.98), eps=1e-6, correct_bias=False)`, weight decay 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainState {
    pub config: Gpt2Config,
    pub params: Named,
    /// First moments (same names and shapes as `params`).
    pub m: Named,
    /// Second moments.
    pub v: Named,
    /// Optimizer steps taken (carried unchanged by the operators; no bias correction uses it).
    pub step: usize,
    pub schedule: Schedule,
    pub adam: AdamConfig,
}

fn row(t: Tensor<1>) -> Tensor<2> {
    let n = t.dims()[0];
    t.reshape([1, n])
}

/// How a traversal reads each parameter: values, or gradients of tracked values (taken on the
/// parameter itself, before any reshape, since only the tracked tensor holds a gradient).
trait Reader {
    fn two(&self, t: Tensor<2>) -> Tensor<2>;
    fn one(&self, t: Tensor<1>) -> Tensor<1>;
}

struct Values;
impl Reader for Values {
    fn two(&self, t: Tensor<2>) -> Tensor<2> {
        t
    }
    fn one(&self, t: Tensor<1>) -> Tensor<1> {
        t
    }
}

struct Grads<'a>(&'a burn::tensor::Gradients);
impl Reader for Grads<'_> {
    fn two(&self, t: Tensor<2>) -> Tensor<2> {
        t.grad(self.0).unwrap_or_else(|| t.inner().zeros_like())
    }
    fn one(&self, t: Tensor<1>) -> Tensor<1> {
        t.grad(self.0).unwrap_or_else(|| t.inner().zeros_like())
    }
}

fn linear(out: &mut Named, r: &dyn Reader, name: &str, l: &Linear) {
    out.insert(format!("{name}.weight"), r.two(l.weight.val()));
    if let Some(b) = &l.bias {
        out.insert(format!("{name}.bias"), row(r.one(b.val())));
    }
}

fn norm(out: &mut Named, r: &dyn Reader, name: &str, l: &LayerNorm) {
    out.insert(format!("{name}.weight"), row(r.one(l.gamma.val())));
    if let Some(b) = &l.beta {
        out.insert(format!("{name}.bias"), row(r.one(b.val())));
    }
}

fn collect(model: &Gpt2Model, r: &dyn Reader) -> Named {
    let mut out = Named::new();
    out.insert("wte.weight".into(), r.two(model.wte.weight.val()));
    out.insert("wpe.weight".into(), r.two(model.wpe.weight.val()));
    for (i, b) in model.h.iter().enumerate() {
        let p = format!("h.{i}.");
        norm(&mut out, r, &format!("{p}ln_1"), &b.ln_1);
        linear(&mut out, r, &format!("{p}attn.c_attn"), &b.attn.c_attn);
        linear(&mut out, r, &format!("{p}attn.c_proj"), &b.attn.c_proj);
        norm(&mut out, r, &format!("{p}ln_2"), &b.ln_2);
        linear(&mut out, r, &format!("{p}mlp.c_fc"), &b.mlp.c_fc);
        linear(&mut out, r, &format!("{p}mlp.c_proj"), &b.mlp.c_proj);
    }
    norm(&mut out, r, "ln_f", &model.ln_f);
    out
}

/// The model's parameters by HF name.
pub fn named(model: &Gpt2Model) -> Named {
    collect(model, &Values)
}

/// Gradients of a model on an autodiff device, by HF name (zeros where none reached).
pub fn named_grads(model: &Gpt2Model, grads: &burn::tensor::Gradients) -> Named {
    collect(model, &Grads(grads))
}

fn take(map: &Named, name: &str) -> Result<Tensor<2>, StagedError> {
    map.get(name)
        .cloned()
        .ok_or_else(|| StagedError::State(format!("tensor `{name}` missing from the state")))
}

fn set_linear(l: &mut Linear, map: &Named, name: &str) -> Result<(), StagedError> {
    let w = take(map, &format!("{name}.weight"))?;
    if w.dims() != l.weight.dims() {
        return Err(StagedError::State(format!(
            "`{name}.weight` has shape {:?}, the model expects {:?}",
            w.dims(),
            l.weight.dims()
        )));
    }
    l.weight = Param::from_tensor(w);
    if l.bias.is_some() {
        let b = take(map, &format!("{name}.bias"))?;
        let n = b.dims()[1];
        l.bias = Some(Param::from_tensor(b.reshape([n])));
    }
    Ok(())
}

fn set_norm(l: &mut LayerNorm, map: &Named, name: &str) -> Result<(), StagedError> {
    let g = take(map, &format!("{name}.weight"))?;
    let n = g.dims()[1];
    l.gamma = Param::from_tensor(g.reshape([n]));
    if l.beta.is_some() {
        let b = take(map, &format!("{name}.bias"))?;
        l.beta = Some(Param::from_tensor(b.reshape([n])));
    }
    Ok(())
}

fn set_embedding(e: &mut Embedding, map: &Named, name: &str) -> Result<(), StagedError> {
    let w = take(map, name)?;
    if w.dims() != e.weight.dims() {
        return Err(StagedError::State(format!(
            "`{name}` has shape {:?}, the model expects {:?}",
            w.dims(),
            e.weight.dims()
        )));
    }
    e.weight = Param::from_tensor(w);
    Ok(())
}

/// A model of `config` holding `params`.
pub fn model_from(
    config: &Gpt2Config,
    params: &Named,
    device: &Device,
) -> Result<Gpt2Model, StagedError> {
    let mut m = Gpt2Model::zeroed(config, device);
    set_embedding(&mut m.wte, params, "wte.weight")?;
    set_embedding(&mut m.wpe, params, "wpe.weight")?;
    for (i, b) in m.h.iter_mut().enumerate() {
        let p = format!("h.{i}.");
        set_norm(&mut b.ln_1, params, &format!("{p}ln_1"))?;
        set_linear(&mut b.attn.c_attn, params, &format!("{p}attn.c_attn"))?;
        set_linear(&mut b.attn.c_proj, params, &format!("{p}attn.c_proj"))?;
        set_norm(&mut b.ln_2, params, &format!("{p}ln_2"))?;
        set_linear(&mut b.mlp.c_fc, params, &format!("{p}mlp.c_fc"))?;
        set_linear(&mut b.mlp.c_proj, params, &format!("{p}mlp.c_proj"))?;
    }
    set_norm(&mut m.ln_f, params, "ln_f")?;
    Ok(m)
}

impl TrainState {
    /// A fresh state: `model`'s parameters, zero moments, step 0.
    pub fn new(config: Gpt2Config, model: &Gpt2Model, schedule: Schedule) -> Self {
        let params = named(model);
        let zeros: Named = params
            .iter()
            .map(|(k, t)| (k.clone(), t.zeros_like()))
            .collect();
        Self {
            config,
            m: zeros.clone(),
            v: zeros,
            params,
            step: 0,
            schedule,
            adam: AdamConfig::default(),
        }
    }

    /// The model these parameters define (dropout as configured; call `.valid()` to evaluate).
    pub fn model(&self, device: &Device) -> Result<Gpt2Model, StagedError> {
        model_from(&self.config, &self.params, device)
    }

    /// Non-embedding parameters `N = 12 L d²` (the convention of spec §2).
    pub fn non_embedding_params(&self) -> usize {
        12 * self.config.n_layer * self.config.n_embd * self.config.n_embd
    }

    /// One optimiser step on the LM loss of `ids` at the schedule's LR for the current step;
    /// returns the loss before the step. Dropout follows the config (it breaks the symmetry of
    /// width growth, spec §4.5).
    pub fn train_step(&mut self, ids: Tensor<2, Int>, device: &Device) -> Result<f64, StagedError> {
        let lr = self.schedule.lr(self.step);
        self.train_step_at(ids, lr, device)
    }

    /// [`Self::train_step`] at an explicit learning rate.
    pub fn train_step_at(
        &mut self,
        ids: Tensor<2, Int>,
        lr: f64,
        device: &Device,
    ) -> Result<f64, StagedError> {
        let (lv, g) = self.gradients(ids, device)?;
        self.adam_step(&g, lr);
        Ok(lv)
    }

    /// [`Self::train_step`] with gradient accumulation: the batch is processed `micro` rows at a
    /// time and the per-row-weighted mean gradient takes one optimiser step, so the paper's
    /// 512-sequence batches fit a device (the official runs accumulate 32 micro-batches).
    pub fn train_step_accumulated(
        &mut self,
        ids: Tensor<2, Int>,
        micro: usize,
        device: &Device,
    ) -> Result<f64, StagedError> {
        let [b, _] = ids.dims();
        let micro = micro.clamp(1, b.max(1));
        if micro >= b {
            return self.train_step(ids, device);
        }
        let mut total: Option<Named> = None;
        let mut loss = 0.0;
        for start in (0..b).step_by(micro) {
            let n = micro.min(b - start);
            let (l, g) = self.gradients(ids.clone().narrow(0, start, n), device)?;
            let w = n as f64 / b as f64;
            loss += l * w;
            total = Some(match total {
                None => g.into_iter().map(|(k, t)| (k, t * w)).collect(),
                Some(mut acc) => {
                    for (k, t) in g {
                        let sum = acc[&k].clone() + t * w;
                        acc.insert(k, sum);
                    }
                    acc
                }
            });
        }
        let lr = self.schedule.lr(self.step);
        self.adam_step(&total.unwrap_or_default(), lr);
        Ok(loss)
    }

    /// The LM loss of `ids` (train mode: dropout as configured) and the gradient of every
    /// parameter, by HF name, without changing the state. A non-finite loss is an error naming
    /// the step, so a diverged run stops instead of writing NaN parameters.
    pub fn gradients(
        &self,
        ids: Tensor<2, Int>,
        device: &Device,
    ) -> Result<(f64, Named), StagedError> {
        let ad = device.clone().autodiff();
        let model = self.model(device)?.to_device(&ad).train();
        let loss = model.loss(ids.to_device(&ad));
        let lv = loss.clone().into_scalar::<f32>() as f64;
        if !lv.is_finite() {
            return Err(StagedError::State(format!(
                "loss became {lv} at step {}: lower the learning rate or check the data",
                self.step
            )));
        }
        let grads = loss.backward();
        Ok((lv, named_grads(&model, &grads)))
    }

    /// Spec §3, per element: `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; p -= lr m / (√v + eps)`.
    pub fn adam_step(&mut self, grads: &Named, lr: f64) {
        let AdamConfig { beta1, beta2, eps } = self.adam;
        for (k, g) in grads {
            let m = self.m[k].clone() * beta1 + g.clone() * (1.0 - beta1);
            let v = self.v[k].clone() * beta2 + g.clone().powf_scalar(2.0) * (1.0 - beta2);
            let p = self.params[k].clone() - m.clone() / (v.clone().sqrt() + eps) * lr;
            self.m.insert(k.clone(), m);
            self.v.insert(k.clone(), v);
            self.params.insert(k.clone(), p);
        }
        self.step += 1;
    }

    /// Mean LM loss of `ids` in eval mode (dropout off).
    pub fn eval_loss(&self, ids: Tensor<2, Int>, device: &Device) -> Result<f64, StagedError> {
        let m = self.model(device)?;
        Ok(m.valid().loss(ids).into_scalar::<f32>() as f64)
    }
}
