//! HF GPT-2 directories: `config.json` + `model.safetensors` in `GPT2LMHeadModel` /
//! `GPT2Model` naming (with or without the `transformer.` prefix). Conv1D weights are already
//! `[in, out]`, burn's Linear layout, so only LayerNorm `weight/bias` are renamed
//! (`gamma/beta`); the tied `lm_head.weight` and the old causal-mask buffers are ignored.

use std::path::Path;

use burn::tensor::Device;
use burn_store::{KeyRemapper, ModuleSnapshot, SafetensorsStore};

use super::{Gpt2Config, Gpt2Model};
use crate::bert::{read_header_pub, store_err_pub};
use crate::ModelError;

fn expected(c: &Gpt2Config) -> Vec<(String, Vec<usize>)> {
    let d = c.n_embd;
    let mut v = vec![
        ("wte.weight".to_string(), vec![c.vocab_size, d]),
        ("wpe.weight".to_string(), vec![c.n_positions, d]),
        ("ln_f.weight".to_string(), vec![d]),
    ];
    for l in 0..c.n_layer {
        let p = format!("h.{l}.");
        v.push((format!("{p}attn.c_attn.weight"), vec![d, 3 * d]));
        v.push((format!("{p}attn.c_proj.weight"), vec![d, d]));
        v.push((format!("{p}mlp.c_fc.weight"), vec![d, c.inner()]));
        v.push((format!("{p}mlp.c_proj.weight"), vec![c.inner(), d]));
    }
    v
}

/// Loads a GPT-2 checkpoint, checking every tensor's shape against config.json first.
pub fn load_gpt2(dir: &Path, device: &Device) -> Result<(Gpt2Model, Gpt2Config), ModelError> {
    let config = Gpt2Config::from_file(&dir.join("config.json"))?;
    let weights = dir.join("model.safetensors");
    let tensors = read_header_pub(&weights)?;
    let prefixed = tensors.keys().any(|k| k.starts_with("transformer."));
    let pre = if prefixed { "transformer." } else { "" };
    for (name, shape) in expected(&config) {
        let full = format!("{pre}{name}");
        match tensors.get(&full) {
            None => {
                return Err(ModelError::MissingTensor {
                    path: weights,
                    tensor: full,
                    hint: "is this a GPT-2 checkpoint in HuggingFace naming?".into(),
                })
            }
            Some(found) if *found != shape => {
                return Err(ModelError::ShapeMismatch {
                    path: weights,
                    tensor: full,
                    expected: shape,
                    found: found.clone(),
                })
            }
            _ => {}
        }
    }
    let remap = KeyRemapper::from_patterns(vec![
        (r"^transformer\.", ""),
        (r"(ln_1|ln_2|ln_f)\.weight$", "$1.gamma"),
        (r"(ln_1|ln_2|ln_f)\.bias$", "$1.beta"),
    ])
    .expect("static patterns are valid regexes");
    let mut model = Gpt2Model::zeroed(&config, device);
    let mut store = SafetensorsStore::from_file(&weights)
        .remap(remap)
        .allow_partial(true);
    let res = model
        .load_from(&mut store)
        .map_err(|e| store_err_pub(&weights, e))?;
    if let Some(e) = res.errors.first() {
        return Err(store_err_pub(&weights, format!("{e:?}")));
    }
    if let Some((p, _)) = res.missing.first() {
        return Err(ModelError::MissingTensor {
            path: weights,
            tensor: p.clone(),
            hint: format!("{} tensors missing in all", res.missing.len()),
        });
    }
    Ok((model, config))
}
