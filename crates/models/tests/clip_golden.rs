//! CLIP image towers against open_clip 3.3.0 and transformers 4.57.1
//! (`reference/clip/clip-golden.json`): tiny random models in exactly the released layouts, so
//! a loader and forward that match them load and run the real checkpoints.

use std::path::{Path, PathBuf};

mod common;
use common::{json_floats, json_shape, max_diff};

use burn::tensor::{Device, Tensor, TensorData};
use kiln_models::clip::{
    load_hf_vision, load_open_clip_visual, Activation, ClipVisual, GridPositions, ResNetConfig,
    StateDict, VisualConfig, VitConfig,
};

fn reference() -> Option<(PathBuf, serde_json::Value)> {
    let Some(root) = kiln_core::paths::shared_data() else {
        kiln_core::paths::skip("shared data (reference/clip)");
        return None;
    };
    let dir = root.join("reference/clip");
    let path = dir.join("clip-golden.json");
    if !path.exists() {
        kiln_core::paths::skip("reference/clip/clip-golden.json");
        return None;
    }
    let g = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    Some((dir, g))
}

fn input(case: &serde_json::Value, key: &str, device: &Device) -> Tensor<4> {
    let s: [usize; 4] = json_shape(&case[format!("{key}_shape")]);
    Tensor::from_data(TensorData::new(json_floats(&case[key]), s), device)
}

fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: &[f32], dims: [usize; D]) {
    assert_eq!(got.dims(), dims, "{what}: shape");
    let worst = max_diff(&got.into_data().try_into_vec::<f32>().unwrap(), want);
    assert!(worst <= 1e-4, "{what}: max |kiln − reference| = {worst:e}");
}

fn rn_config(case: &serde_json::Value) -> VisualConfig {
    let c = &case["config"];
    VisualConfig::ResNet(ResNetConfig {
        layers: json_shape(&c["layers"]),
        width: c["width"].as_u64().unwrap() as usize,
        heads: c["heads"].as_u64().unwrap() as usize,
        output_dim: c["output_dim"].as_u64().unwrap() as usize,
        image_size: c["image_size"].as_u64().unwrap() as usize,
    })
}

fn vit_config(case: &serde_json::Value) -> VisualConfig {
    let c = &case["config"];
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    VisualConfig::Vit(VitConfig {
        image_size: u("image_size"),
        patch_size: u("patch_size"),
        width: u("width"),
        layers: u("layers"),
        heads: u("heads"),
        mlp_width: (c["mlp_ratio"].as_f64().unwrap() * u("width") as f64) as usize,
        output_dim: u("output_dim"),
        activation: Activation::QuickGelu,
    })
}

fn check_tower(
    dir: &Path,
    case: &serde_json::Value,
    config: VisualConfig,
    grid_key: &str,
    device: &Device,
) {
    let device = device.clone();
    let weights = dir.join(case["weights"].as_str().unwrap());
    let m = load_open_clip_visual(&weights, &config, &device).unwrap();
    let emb = m.embed(input(case, "embed_input", &device)).unwrap();
    assert_close(
        "pooled embedding",
        emb,
        &json_floats(&case["embed_output"]),
        json_shape(&case["embed_output_shape"]),
    );
    let grid = m.grid(
        input(case, "grid_input", &device),
        GridPositions::Interpolated,
    );
    let want = json_floats(&case[grid_key]);
    let dims: [usize; 4] =
        json_shape(&case[format!("{}_shape_{}", &grid_key[..11], &grid_key[12..])]);
    let grid = if grid_key.ends_with("nchw") {
        grid.permute([0, 3, 1, 2])
    } else {
        grid
    };
    assert_close("grid features", grid, &want, dims);
}

#[test]
fn modified_resnet_matches_open_clip() {
    let Some((dir, g)) = reference() else { return };
    let case = &g["cases"]["rn_tiny"];
    check_tower(
        &dir,
        case,
        rn_config(case),
        "grid_output_nchw",
        &Device::flex(),
    );
}

#[test]
fn vit_matches_open_clip_with_an_interpolated_grid() {
    let Some((dir, g)) = reference() else { return };
    let case = &g["cases"]["vit_tiny"];
    check_tower(
        &dir,
        case,
        vit_config(case),
        "grid_output_nhwc",
        &Device::flex(),
    );
}

/// The same goldens through LibTorch (`tch`, in `just test`'s build).
#[test]
fn towers_match_the_goldens_on_libtorch() {
    let Some((dir, g)) = reference() else { return };
    let Some(tch) = kiln_core::tch_parity_device() else {
        return;
    };
    let rn = &g["cases"]["rn_tiny"];
    check_tower(&dir, rn, rn_config(rn), "grid_output_nchw", &tch);
    let vit = &g["cases"]["vit_tiny"];
    check_tower(&dir, vit, vit_config(vit), "grid_output_nhwc", &tch);
    check_hf(&dir, &g, &tch);
}

#[test]
fn hf_vision_model_matches_transformers() {
    let Some((dir, g)) = reference() else { return };
    check_hf(&dir, &g, &Device::flex());
}

fn check_hf(dir: &Path, g: &serde_json::Value, device: &Device) {
    let case = &g["cases"]["hf_clip_vision_tiny"];
    let device = device.clone();
    let (m, config, projected) = load_hf_vision(&dir.join("hf_clip_vision_tiny"), &device).unwrap();
    assert!(projected);
    assert_eq!(
        (config.width, config.layers, config.output_dim),
        (32, 3, 24)
    );
    let x = input(case, "input", &device);
    assert_close(
        "image_embeds",
        m.embed(x.clone()),
        &json_floats(&case["image_embeds"]),
        json_shape(&case["image_embeds_shape"]),
    );
    assert_close(
        "last_hidden_state",
        m.hidden(x),
        &json_floats(&case["last_hidden_state"]),
        json_shape(&case["last_hidden_state_shape"]),
    );
}

#[test]
fn wrong_checkpoints_name_the_tensor_and_file() {
    let Some((dir, g)) = reference() else { return };
    let device = Device::flex();
    let rn = dir.join("rn_tiny.safetensors");
    // A wider config than the file: shape mismatch on the first conv.
    let mut wide = rn_config(&g["cases"]["rn_tiny"]);
    if let VisualConfig::ResNet(c) = &mut wide {
        c.width = 32;
        c.heads = 4;
    }
    let e = load_open_clip_visual(&rn, &wide, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv1.weight") && e.contains("rn_tiny.safetensors"),
        "{e}"
    );
    // More blocks than the file holds: the first absent tensor is named.
    let mut deep = rn_config(&g["cases"]["rn_tiny"]);
    if let VisualConfig::ResNet(c) = &mut deep {
        c.layers = [2, 1, 1, 1];
    }
    let e = load_open_clip_visual(&rn, &deep, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer1.1.conv1.weight") && e.contains("rn_tiny.safetensors"),
        "{e}"
    );
    // Fewer blocks than the file holds: the unused tensors are an error, not silently dropped.
    let vit = dir.join("vit_tiny.safetensors");
    let mut shallow = vit_config(&g["cases"]["vit_tiny"]);
    if let VisualConfig::Vit(c) = &mut shallow {
        c.layers = 2;
    }
    let e = load_open_clip_visual(&vit, &shallow, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("resblocks.2") && e.contains("vit_tiny.safetensors"),
        "{e}"
    );
    // A ViT config on a ResNet file: the first tensor they share disagrees in shape.
    let e = load_open_clip_visual(&rn, &shallow, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv1.weight") && e.contains("rn_tiny.safetensors"),
        "{e}"
    );
    // A state dict without a tensor the model needs: named.
    let mut sd = StateDict::read(&vit).unwrap();
    let mut sd2 = StateDict::from_tensors(
        "partial.safetensors",
        sd.names()
            .filter(|n| *n != "ln_post.weight")
            .map(String::from)
            .collect::<Vec<_>>()
            .into_iter()
            .map(|n| {
                let s = sd.shape(&n).unwrap().to_vec();
                let v = sd.take(&n, &s).unwrap();
                (n, s, v)
            }),
    );
    let mut m = ClipVisual::new(&vit_config(&g["cases"]["vit_tiny"]), &device).unwrap();
    let e = m.load_open_clip(&mut sd2).unwrap_err().to_string();
    assert!(
        e.contains("ln_post.weight") && e.contains("partial.safetensors"),
        "{e}"
    );
    // A truncated file and a missing one.
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.safetensors");
    let bytes = std::fs::read(&vit).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = StateDict::read(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.safetensors"), "{e}");
    let e = StateDict::read(&tmp.path().join("none.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.safetensors"), "{e}");
}

#[test]
fn grid_geometry_of_the_released_shapes() {
    // Spec property 4: 600×1000 gives 18×31 for every tower; 384×640 gives 12×20.
    for name in ["RN50", "RN101", "RN50x4", "ViT-B-32"] {
        let c = VisualConfig::named(name).unwrap();
        assert_eq!((c.grid_side(600), c.grid_side(1000)), (18, 31), "{name}");
        if name.starts_with("RN") {
            assert_eq!((c.grid_side(384), c.grid_side(640)), (12, 20), "{name}");
        }
    }
    assert_eq!(VisualConfig::named("RN50x4").unwrap().grid_dim(), 2560);
    // And the real forward agrees with the arithmetic on a tiny tower at an odd size.
    let device = Device::flex();
    let tiny = VisualConfig::ResNet(ResNetConfig {
        layers: [1, 1, 1, 1],
        width: 8,
        heads: 2,
        output_dim: 8,
        image_size: 64,
    });
    let m = ClipVisual::new(&tiny, &device).unwrap();
    let x = Tensor::<4>::zeros([1, 3, 75, 125], &device);
    let g = m.grid(x, GridPositions::Interpolated);
    assert_eq!(g.dims(), [1, tiny.grid_side(75), tiny.grid_side(125), 256]);
}
