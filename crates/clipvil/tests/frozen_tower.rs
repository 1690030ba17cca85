//! CLIP-ViL's direct fine-tuning: a released tower loaded and frozen, images decoded per batch
//! from files (the paper profile's path), only the head learning.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use kiln_clipvil::heads::{HeadConfig, HeadKind};
use kiln_clipvil::train::{train, Images, Split, TrainConfig};
use kiln_clipvil::VqaNet;
use kiln_models::clip::{ClipVisual, GridPositions, ResNetConfig, StateDict, VisualConfig};

fn floats<M: Module>(m: &M) -> Vec<f32> {
    // Every float parameter, in module order.
    let mut out = Vec::new();
    struct V<'a>(&'a mut Vec<f32>);
    impl burn::module::ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            p: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.0.extend(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    m.visit(&mut V(&mut out));
    out
}

#[test]
fn a_frozen_loaded_tower_stays_fixed_while_the_head_trains_on_file_images() {
    let Some(root) = kiln_core::paths::shared_data() else {
        kiln_core::paths::skip("shared data (reference/clip)");
        return;
    };
    let weights = root.join("reference/clip/rn_tiny.safetensors");
    if !weights.exists() {
        kiln_core::paths::skip("reference/clip/rn_tiny.safetensors");
        return;
    }
    let device = Device::flex();
    device.seed(7);
    // Four images on disk, decoded and resized exactly to 64×96 per batch.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for k in 0..4u8 {
        let img = image::RgbImage::from_fn(50, 70, |x, y| {
            image::Rgb([k * 60, (x * 3) as u8, (y * 2) as u8])
        });
        let p = dir.path().join(format!("img{k}.png"));
        img.save(&p).unwrap();
        paths.push(p);
    }
    let images = Images::Files {
        paths: Arc::new(paths),
        h: 64,
        w: 96,
    };
    let n = 8;
    let split = Split {
        name: "train".into(),
        images,
        image_of: (0..n).map(|i| i % 4).collect(),
        ids: (0..n).flat_map(|i| [2 + (i as i64 % 3), 5, 0, 0]).collect(),
        max_len: 4,
        targets: (0..n).map(|i| vec![((i % 4) as u32 % 3, 1.0)]).collect(),
        answers: 3,
        gt: (0..n)
            .map(|i| vec![["a", "b", "c"][i % 4 % 3].to_string(); 10])
            .collect(),
        question_ids: (0..n as u64).collect(),
        questions: vec!["q".into(); n],
        answer_types: vec!["other".into(); n],
        novel: vec![true; n],
    };
    let visual = VisualConfig::ResNet(ResNetConfig {
        layers: [1, 1, 1, 1],
        width: 16,
        heads: 2,
        output_dim: 32,
        image_size: 64,
    });
    let head = HeadConfig {
        kind: HeadKind::Pythia,
        vocab: 8,
        answers: 3,
        word_dim: 8,
        lstm: 8,
        hidden: 16,
        text_hidden: 8,
        d: 8,
        layers: 1,
        heads: 2,
        fused: 8,
        dropout: 0.0,
    };
    let mut model = VqaNet::new(
        Some(&visual),
        0,
        &head,
        GridPositions::Interpolated,
        &device,
    )
    .unwrap();
    let enc = model.encoder.as_mut().unwrap();
    enc.load_open_clip(&mut StateDict::read(&weights).unwrap())
        .unwrap();
    let tower_before = floats(model.encoder.as_ref().unwrap());
    let stats = |m: &VqaNet| -> Vec<f32> {
        let Some(ClipVisual::ResNet(r)) = &m.encoder else {
            panic!("a ResNet tower")
        };
        let mut v = r
            .bn1
            .running_mean
            .value()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        v.extend(
            r.layer4[0]
                .bn3
                .running_var
                .value()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap(),
        );
        v
    };
    let stats_before = stats(&model);
    let head_before = floats(&model.head);
    let tc = TrainConfig {
        epochs: 2,
        batch_size: 4,
        lr: 0.01,
        warmup: 0.0,
        warmup_factor: 1.0,
        decay_at: vec![],
        decay: 1.0,
        clip: 1.0,
        eval_batch: 8,
    };
    let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let trained = train(
        model,
        true,
        &split,
        &split,
        &names,
        &tc,
        3,
        &device,
        |_, _, _| {},
    )
    .unwrap();
    let tower_after = floats(trained.model.encoder.as_ref().unwrap());
    assert_eq!(tower_before.len(), tower_after.len());
    let moved = tower_before
        .iter()
        .zip(&tower_after)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert_eq!(
        moved, 0.0,
        "the frozen tower changed (weights or BatchNorm statistics)"
    );
    assert_eq!(
        stats(&trained.model),
        stats_before,
        "BatchNorm statistics moved in a frozen tower"
    );
    let head_after = floats(&trained.model.head);
    let learned = head_before
        .iter()
        .zip(&head_after)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(learned > 1e-4, "the head did not train");
    // The grid the head saw is the C5 map of a 64×96 input: 2×3 cells.
    assert_eq!(trained.curve.len(), 2);
}
