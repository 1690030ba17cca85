//! The ImageNet ResNet (CLIP-ViL's baseline grid backbone) against torchvision 0.24.0: a tiny
//! network built from torchvision's own `Bottleneck` and `ResNet._make_layer`, random weights and
//! BN statistics (`fixtures/make_torchvision_resnet.py`). A loader and forward that match it load
//! and run torchvision's and timm's ResNet-50 checkpoints.

mod common;
use common::{fixture, json_floats, json_shape, max_diff};

use burn::tensor::{Device, Tensor, TensorData};
use kiln_models::clip::{CLIP_MEAN, CLIP_STD};
use kiln_models::resnet::{
    clip_to_imagenet, imagenet_normalize, load_torchvision_resnet, TorchResNetConfig,
};
use kiln_models::ModelError;

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("torchvision_resnet_tiny.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn config(g: &serde_json::Value) -> TorchResNetConfig {
    TorchResNetConfig {
        layers: json_shape(&g["config"]["layers"]),
        width: g["config"]["width"].as_u64().unwrap() as usize,
        num_classes: g["config"]["num_classes"].as_u64().unwrap() as usize,
    }
}

/// The fixture's input: `((i · 7919) mod 257) / 64 − 2` at flat index i.
fn input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n as i64)
        .map(|i| ((i * 7919) % 257) as f32 / 64.0 - 2.0)
        .collect();
    Tensor::from_data(TensorData::new(x, shape), device)
}

fn worst<const D: usize>(got: Tensor<D>, want: &[f32]) -> f32 {
    max_diff(&got.into_data().try_into_vec::<f32>().unwrap(), want)
}

#[test]
fn c5_grid_and_logits_match_torchvision() {
    let device = Device::flex();
    let g = golden();
    let m = load_torchvision_resnet(
        &fixture("torchvision_resnet_tiny.safetensors"),
        &config(&g),
        &device,
    )
    .unwrap();
    let x = input(json_shape(&g["input_shape"]), &device);
    let grid = m.grid(x.clone());
    let want: [usize; 4] = json_shape(&g["grid_shape"]);
    assert_eq!(grid.dims(), want, "grid shape [b, h, w, c]");
    assert_eq!(
        [want[1], want[2]],
        [
            TorchResNetConfig::grid_side(96),
            TorchResNetConfig::grid_side(160)
        ],
        "⌈side/32⌉ cells"
    );
    let e = worst(grid, &json_floats(&g["grid"]));
    assert!(e <= 1e-4, "C5 grid: max |kiln − torchvision| = {e:e}");
    let e = worst(m.logits(x), &json_floats(&g["logits"]));
    assert!(e <= 1e-4, "logits: max |kiln − torchvision| = {e:e}");
}

#[test]
fn clip_normalised_images_convert_to_imagenet_normalisation() {
    let device = Device::flex();
    let raw = Tensor::<4>::from_data(
        TensorData::new(
            (0..48).map(|i| i as f32 / 47.0).collect::<Vec<_>>(),
            [1, 3, 4, 4],
        ),
        &device,
    );
    let mean = Tensor::<1>::from_data(TensorData::new(CLIP_MEAN.to_vec(), [3]), &device);
    let std = Tensor::<1>::from_data(TensorData::new(CLIP_STD.to_vec(), [3]), &device);
    let clip = (raw.clone() - mean.reshape([1, 3, 1, 1])) / std.reshape([1, 3, 1, 1]);
    let want: Vec<f32> = imagenet_normalize(raw).into_data().try_into_vec().unwrap();
    let e = worst(clip_to_imagenet(clip), &want);
    assert!(e <= 1e-5, "max difference {e:e}");
}

#[test]
fn a_checkpoint_of_another_shape_fails_naming_the_tensor_and_file() {
    let device = Device::flex();
    let g = golden();
    let path = fixture("torchvision_resnet_tiny.safetensors");
    // One block too few in stage 2: layer2.1.* is left over.
    let mut c = config(&g);
    c.layers[1] -= 1;
    let e = load_torchvision_resnet(&path, &c, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer2.1.") && e.contains("torchvision_resnet_tiny"),
        "{e}"
    );
    // A wider network: the first convolution's shape is wrong.
    let mut c = config(&g);
    c.width *= 2;
    let e = load_torchvision_resnet(&path, &c, &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv1.weight"), "{e}");
    // Not a ResNet file at all.
    let e =
        load_torchvision_resnet(&fixture("clip_text_tiny.safetensors"), &c, &device).unwrap_err();
    assert!(
        matches!(e, ModelError::Invalid(_)) && e.to_string().contains("conv1.weight"),
        "{e}"
    );
}
