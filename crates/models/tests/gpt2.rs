//! The GPT-2 decoder: a tiny HF-format GPT-2 directory written here (Conv1D `[in, out]`
//! weights, fused QKV, `transformer.` prefix, tied head) loads, is causal, and, with
//! `KILN_PEER_PYTHON`, matches transformers' `GPT2LMHeadModel` logits; malformed directories
//! are clear errors.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_models::gpt2::{load_gpt2, Gpt2Model};

mod common;
use common::{max_diff, peer_floats, rnd, write_safetensors};

const V: usize = 50;
const D: usize = 16;
const P: usize = 32;
const L: usize = 2;

fn tensors() -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut seed = 9u64;
    let mut t = BTreeMap::new();
    let mut add = |name: String, shape: Vec<usize>, seed: &mut u64| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = if name.contains("ln_") && name.ends_with(".weight") {
            (0..n).map(|_| 1.0 + rnd(seed)).collect()
        } else {
            (0..n).map(|_| 2.0 * rnd(seed)).collect()
        };
        t.insert(name, (shape, v));
    };
    let p = "transformer.";
    add(format!("{p}wte.weight"), vec![V, D], &mut seed);
    add(format!("{p}wpe.weight"), vec![P, D], &mut seed);
    for l in 0..L {
        let h = format!("{p}h.{l}.");
        for ln in ["ln_1", "ln_2"] {
            add(format!("{h}{ln}.weight"), vec![D], &mut seed);
            add(format!("{h}{ln}.bias"), vec![D], &mut seed);
        }
        add(format!("{h}attn.c_attn.weight"), vec![D, 3 * D], &mut seed);
        add(format!("{h}attn.c_attn.bias"), vec![3 * D], &mut seed);
        add(format!("{h}attn.c_proj.weight"), vec![D, D], &mut seed);
        add(format!("{h}attn.c_proj.bias"), vec![D], &mut seed);
        add(format!("{h}mlp.c_fc.weight"), vec![D, 4 * D], &mut seed);
        add(format!("{h}mlp.c_fc.bias"), vec![4 * D], &mut seed);
        add(format!("{h}mlp.c_proj.weight"), vec![4 * D, D], &mut seed);
        add(format!("{h}mlp.c_proj.bias"), vec![D], &mut seed);
    }
    add(format!("{p}ln_f.weight"), vec![D], &mut seed);
    add(format!("{p}ln_f.bias"), vec![D], &mut seed);
    t
}

fn write_dir(dir: &Path, t: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, n_embd: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = serde_json::json!({
        "model_type": "gpt2", "vocab_size": V, "n_positions": P, "n_embd": n_embd, "n_layer": L,
        "n_head": 4, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "architectures": ["GPT2LMHeadModel"]
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    write_safetensors(&dir.join("model.safetensors"), t);
}

const ROWS: [[i64; 7]; 2] = [[3, 17, 42, 5, 9, 9, 1], [0, 1, 2, 3, 4, 5, 49]];

fn ids(rows: &[[i64; 7]], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * 7]), device)
        .reshape([rows.len(), 7])
}

fn logits(m: &Gpt2Model, rows: &[[i64; 7]]) -> Vec<f32> {
    m.logits(ids(rows, &Device::flex()))
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn gpt2_directory_loads_is_causal_and_matches_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gpt2");
    write_dir(&dir, &tensors(), D);
    let device = Device::flex();
    let (m, cfg) = load_gpt2(&dir, &device).unwrap();
    assert_eq!((cfg.n_layer, cfg.inner()), (L, 4 * D));
    let m = burn::module::Module::valid(&m);
    let base = logits(&m, &ROWS);
    // Causal: changing the last token leaves every earlier position's logits unchanged.
    let mut other = ROWS;
    other[0][6] = 30;
    let changed = logits(&m, &other);
    let per_pos = V;
    assert!(max_diff(&base[..6 * per_pos], &changed[..6 * per_pos]) == 0.0);
    assert!(
        max_diff(
            &base[6 * per_pos..7 * per_pos],
            &changed[6 * per_pos..7 * per_pos]
        ) > 0.0
    );
    // The loss is the mean next-token cross-entropy of the logits, computed here on the host.
    let loss: f32 = m.loss(ids(&ROWS, &device)).into_scalar();
    let (mut total, mut count) = (0f64, 0usize);
    for (r, row) in ROWS.iter().enumerate() {
        for p in 0..row.len() - 1 {
            let z = &base[(r * row.len() + p) * V..(r * row.len() + p + 1) * V];
            let mx = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = mx + z.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln();
            total += lse - z[row[p + 1] as usize] as f64;
            count += 1;
        }
    }
    let expected = total / count as f64;
    assert!(
        (loss as f64 - expected).abs() <= 1e-5 * expected.abs().max(1.0),
        "loss {loss} vs cross-entropy of the logits {expected}"
    );

    let script = format!(
        "import json,torch\nfrom transformers import GPT2LMHeadModel as M\nm=M.from_pretrained({:?}).eval()\nids=torch.tensor({:?})\nprint(json.dumps(m(input_ids=ids).logits.flatten().tolist()))",
        dir.display().to_string(),
        ROWS
    );
    if let Some(peer) = peer_floats(&script) {
        let diff = max_diff(&base, &peer);
        assert!(diff < 1e-4, "kiln vs transformers logits: {diff}");
    }
}

#[test]
fn malformed_gpt2_directories_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::flex();
    // Config says a wider model than the weights.
    let wide = tmp.path().join("wide");
    write_dir(&wide, &tensors(), 2 * D);
    let e = load_gpt2(&wide, &device).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("wte.weight"),
        "{e}"
    );
    // A missing block tensor.
    let mut t = tensors();
    t.remove("transformer.h.1.mlp.c_fc.weight");
    let missing = tmp.path().join("missing");
    write_dir(&missing, &t, D);
    let e = load_gpt2(&missing, &device).unwrap_err().to_string();
    assert!(e.contains("h.1.mlp.c_fc.weight"), "{e}");
    // A BERT config is another family.
    std::fs::write(
        missing.join("config.json"),
        r#"{"model_type": "bert", "vocab_size": 50, "n_positions": 32, "n_embd": 16, "n_layer": 2, "n_head": 4}"#,
    )
    .unwrap();
    let e = load_gpt2(&missing, &device).unwrap_err().to_string();
    assert!(e.contains("model_type") && e.contains("gpt2"), "{e}");
}
