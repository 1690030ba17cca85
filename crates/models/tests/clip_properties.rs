//! The CLIP-ViL spec's machine-checkable properties of the image towers (§8: 4-10) that do not
//! need reference outputs.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use kiln_models::clip::{
    load_hf_vision, normalize, vit::bilinear_matrix, ClipVisual, ClipVit, GridPositions,
    ResNetConfig, VisualConfig, VitConfig, CLIP_MEAN,
};

mod common;

#[test]
fn position_interpolation_is_the_identity_at_the_table_size_and_keeps_cls() {
    let device = Device::flex();
    device.seed(3);
    let c = VitConfig {
        width: 16,
        heads: 2,
        mlp_width: 32,
        layers: 2,
        output_dim: 8,
        ..VitConfig::vit_b32()
    };
    let m = ClipVit::new(&c, &device).unwrap();
    let table = m.positional_embedding.val();
    let same = m.positions(7, 7);
    assert_eq!((table.clone() - same).abs().max().into_scalar::<f32>(), 0.0);
    // The matrices reproduce it too (7 → 7 is exactly the identity in PyTorch's formula).
    let eye = bilinear_matrix(7, 7);
    for i in 0..7 {
        for j in 0..7 {
            assert_eq!(eye[i * 7 + j], if i == j { 1.0 } else { 0.0 });
        }
    }
    let big = m.positions(18, 31);
    assert_eq!(big.dims(), [1 + 18 * 31, 16]);
    let cls_diff = (big.narrow(0, 0, 1) - table.narrow(0, 0, 1))
        .abs()
        .max()
        .into_scalar::<f32>();
    assert_eq!(cls_diff, 0.0);
    // Each interpolation row is a convex combination.
    for (o, i) in [(18, 7), (31, 7), (3, 5)] {
        let m = bilinear_matrix(o, i);
        for r in 0..o {
            let s: f32 = m[r * i..(r + 1) * i].iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
    }
}

#[test]
fn vit_grid_at_600x1000_is_18x31_and_omitted_positions_drop_the_table() {
    let device = Device::flex();
    device.seed(4);
    let c = VitConfig {
        width: 16,
        heads: 2,
        mlp_width: 32,
        layers: 3,
        output_dim: 8,
        ..VitConfig::vit_b32()
    };
    let mut m = ClipVit::new(&c, &device).unwrap();
    let x = Tensor::<4>::random([1, 3, 600, 1000], Distribution::Default, &device);
    let g = m.grid(x.clone(), GridPositions::Interpolated);
    assert_eq!(g.dims(), [1, 18, 31, 16]);
    let omitted = m.grid(x.clone(), GridPositions::Omitted);
    let differs = (g - omitted.clone()).abs().max().into_scalar::<f32>();
    assert!(differs > 1e-3, "positions had no effect: {differs}");
    // Omitted is exactly "a zero table".
    let n = m.positional_embedding.dims();
    m.positional_embedding = Param::from_tensor(Tensor::zeros(n, &device));
    let zeroed = m.grid(x, GridPositions::Interpolated);
    assert_eq!((zeroed - omitted).abs().max().into_scalar::<f32>(), 0.0);
}

#[test]
fn encode_image_shapes_and_hf_vit_b32_parameter_count() {
    let device = Device::flex();
    device.seed(5);
    // §8.6: RN50 → 1024 at 224 (the other released towers are checked by their configs, since a
    // forward of RN50x4 at 288 takes tens of seconds here).
    let rn50 = ClipVisual::new(&VisualConfig::named("RN50").unwrap(), &device).unwrap();
    let e = rn50
        .embed(Tensor::zeros([1, 3, 224, 224], &device))
        .unwrap();
    assert_eq!(e.dims(), [1, 1024]);
    for (name, d) in [("RN101", 512), ("RN50x4", 640), ("ViT-B-32", 512)] {
        assert_eq!(VisualConfig::named(name).unwrap().output_dim(), d, "{name}");
    }
    let vit = ClipVisual::new(&VisualConfig::named("ViT-B-32").unwrap(), &device).unwrap();
    assert_eq!(
        vit.embed(Tensor::zeros([1, 3, 224, 224], &device))
            .unwrap()
            .dims(),
        [1, 512]
    );
    // §8.7: 87,849,216 parameters with the projection, 87,456,000 without.
    assert_eq!(vit.num_params(), 87_849_216);
    assert_eq!(vit.num_params() - 768 * 512, 87_456_000);
    // The attention pool refuses a resolution its table does not cover, with a clear error.
    let e = rn50
        .embed(Tensor::zeros([1, 3, 256, 256], &device))
        .unwrap_err()
        .to_string();
    assert!(e.contains("training resolution"), "{e}");
}

#[test]
fn hf_layout_round_trip_and_extra_keys() {
    // §8.8: a synthetic HF checkpoint loads tensor for tensor; extra keys (other than integer
    // buffers such as position_ids) are an error.
    let (w, layers, mlp, proj, img, patch) = (8usize, 2usize, 16usize, 4usize, 32usize, 16usize);
    let mut t: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    let mut seed = 11u64;
    let mut put = |name: &str, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| common::rnd(&mut seed)).collect();
        t.insert(name.to_string(), (shape, v));
    };
    let p = "vision_model.";
    put(&format!("{p}embeddings.class_embedding"), vec![w]);
    put(
        &format!("{p}embeddings.patch_embedding.weight"),
        vec![w, 3, patch, patch],
    );
    put(
        &format!("{p}embeddings.position_embedding.weight"),
        vec![5, w],
    );
    for ln in ["pre_layrnorm", "post_layernorm"] {
        put(&format!("{p}{ln}.weight"), vec![w]);
        put(&format!("{p}{ln}.bias"), vec![w]);
    }
    for l in 0..layers {
        let q = format!("{p}encoder.layers.{l}.");
        for a in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            put(&format!("{q}self_attn.{a}.weight"), vec![w, w]);
            put(&format!("{q}self_attn.{a}.bias"), vec![w]);
        }
        for ln in ["layer_norm1", "layer_norm2"] {
            put(&format!("{q}{ln}.weight"), vec![w]);
            put(&format!("{q}{ln}.bias"), vec![w]);
        }
        put(&format!("{q}mlp.fc1.weight"), vec![mlp, w]);
        put(&format!("{q}mlp.fc1.bias"), vec![mlp]);
        put(&format!("{q}mlp.fc2.weight"), vec![w, mlp]);
        put(&format!("{q}mlp.fc2.bias"), vec![w]);
    }
    put("visual_projection.weight", vec![proj, w]);
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "hidden_size": w, "intermediate_size": mlp, "num_hidden_layers": layers,
        "num_attention_heads": 2, "image_size": img, "patch_size": patch, "projection_dim": proj,
        "hidden_act": "quick_gelu"
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    common::write_safetensors(&dir.path().join("model.safetensors"), &t);
    let device = Device::flex();
    let (m, _, projected) = load_hf_vision(dir.path(), &device).unwrap();
    assert!(projected);
    let same = |got: Tensor<2>, name: &str, transpose: bool| {
        let (shape, v) = &t[name];
        let want =
            Tensor::<2>::from_data(TensorData::new(v.clone(), [shape[0], shape[1]]), &device);
        let want = if transpose { want.transpose() } else { want };
        assert_eq!((got - want).abs().max().into_scalar::<f32>(), 0.0, "{name}");
    };
    same(
        m.positional_embedding.val(),
        "vision_model.embeddings.position_embedding.weight",
        false,
    );
    same(
        m.blocks[1].attn.k.weight.val(),
        "vision_model.encoder.layers.1.self_attn.k_proj.weight",
        true,
    );
    same(
        m.blocks[0].c_proj.weight.val(),
        "vision_model.encoder.layers.0.mlp.fc2.weight",
        true,
    );
    same(m.proj.val(), "visual_projection.weight", true);
    // An extra float tensor under vision_model.* is refused, naming it.
    t.insert(
        format!("{p}encoder.layers.2.layer_norm1.weight"),
        (vec![w], vec![0.0; w]),
    );
    common::write_safetensors(&dir.path().join("model.safetensors"), &t);
    let e = load_hf_vision(dir.path(), &device).unwrap_err().to_string();
    assert!(e.contains("encoder.layers.2.layer_norm1.weight"), "{e}");
}

#[test]
fn the_clip_mean_image_normalises_to_zero() {
    let device = Device::flex();
    let mut v = Vec::new();
    for c in CLIP_MEAN {
        v.extend(std::iter::repeat_n(c, 4 * 5));
    }
    let x = Tensor::<4>::from_data(TensorData::new(v, [1, 3, 4, 5]), &device);
    assert!(normalize(x).abs().max().into_scalar::<f32>() < 1e-6);
    // The ResNet config arithmetic refuses what it cannot build.
    let bad = ResNetConfig {
        width: 7,
        ..ResNetConfig::rn50()
    };
    assert!(ClipVisual::new(&VisualConfig::ResNet(bad), &device).is_err());
}
