//! CLIP's text tower against open_clip 3.3.0's `encode_text` on a tiny model in the released
//! layout (`fixtures/clip_text_tiny.*`, written by `fixtures/make_clip_text.py`), and the
//! image-text similarity.

mod common;
use common::{fixture, json_floats};

use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_models::clip::{similarity, Activation, ClipText, StateDict, TextConfig};

#[test]
fn text_tower_matches_open_clip() {
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("clip_text_tiny.json")).unwrap())
            .unwrap();
    let c = &g["config"];
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    let config = TextConfig {
        context_length: u("context_length"),
        vocab_size: u("vocab_size"),
        width: u("width"),
        heads: u("heads"),
        layers: u("layers"),
        embed_dim: u("embed_dim"),
        activation: Activation::QuickGelu,
    };
    let device = Device::flex();
    let mut m = ClipText::new(&config, &device).unwrap();
    let mut sd = StateDict::read(&fixture("clip_text_tiny.safetensors")).unwrap();
    m.load_open_clip(&mut sd).unwrap();
    sd.finish("").unwrap();
    let ids: Vec<i64> = g["ids"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
        .collect();
    let n = ids.len() / config.context_length;
    let ids =
        Tensor::<2, Int>::from_data(TensorData::new(ids, [n, config.context_length]), &device);
    let got: Vec<f32> = m
        .embed(ids.clone())
        .unwrap()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let want = json_floats(&g["text_embeds"]);
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-4, "max |kiln − open_clip| = {worst:e}");
    let scale: f32 = m.logit_scale.val().into_scalar();
    assert!((scale - g["logit_scale"].as_f64().unwrap() as f32).abs() < 1e-6);
    // A wrong context length is refused with a message, not a shape panic.
    let short = Tensor::<2, Int>::zeros([1, 4], &device);
    assert!(m.embed(short).unwrap_err().to_string().contains("context"));
    // Similarity: exp(scale)·cosine, so a text against itself scores exp(scale).
    let t = m.embed(ids).unwrap();
    let s: Vec<f32> = similarity(t.clone(), t, m.logit_scale.val())
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    for i in 0..n {
        assert!(
            (s[i * n + i] - scale.exp()).abs() < 1e-3 * scale.exp(),
            "{}",
            s[i * n + i]
        );
    }
}
