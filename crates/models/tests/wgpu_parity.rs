//! The encoder gives the same outputs on flex and wgpu (Mesa's software Vulkan on a CPU-only
//! machine), tolerance 1e-4. Compiled only with `--features kiln-models/wgpu`.
#![cfg(feature = "wgpu")]

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use kiln_models::{BertConfig, BertModel, EncoderInput};

fn wgpu_device() -> Option<Device> {
    if std::env::var_os("KILN_SKIP_WGPU").is_some() {
        kiln_core::paths::skip_optional(
            "wgpu parity (KILN_SKIP_WGPU: no Vulkan driver on this machine)",
        );
        return None;
    }
    Some(kiln_core::parse_device("wgpu").expect("wgpu compiled in"))
}

fn compare(
    model: &BertModel,
    ids: Vec<i64>,
    mask: Vec<i64>,
    b: usize,
    l: usize,
    wgpu: &Device,
) -> f32 {
    let flex = Device::flex();
    let x = EncoderInput::from_rows(ids.clone(), vec![0; b * l], mask.clone(), b, l, &flex);
    let a = model.forward(&x, None).last_hidden_state;
    let mw = model.clone().to_device(wgpu);
    let xw = EncoderInput::from_rows(ids, vec![0; b * l], mask, b, l, wgpu);
    let w = mw.forward(&xw, None).last_hidden_state;
    let w: Tensor<3> = Tensor::from_data(w.into_data(), &flex);
    (a - w).abs().max().into_scalar::<f32>()
}

#[test]
fn tiny_encoder_matches_on_flex_and_wgpu() {
    let Some(wgpu) = wgpu_device() else { return };
    let flex = Device::flex();
    flex.seed(3);
    let cfg = BertConfig::tiny(50, 2);
    let model = BertModel::new(&cfg, true, &flex);
    let ids: Vec<i64> = (0..24).map(|i| (i * 7 % 50) as i64).collect();
    let mut mask = vec![1; 24];
    mask[20..].iter_mut().for_each(|m| *m = 0);
    let d = compare(&model, ids, mask, 2, 12, &wgpu);
    eprintln!("tiny: max |flex - wgpu| = {d:e}");
    assert!(d <= 1e-4, "{d}");
}

#[test]
fn minilm_matches_on_flex_and_wgpu() {
    let Some(wgpu) = wgpu_device() else { return };
    let Some(dir) = kiln_core::paths::minilm_dir() else {
        kiln_core::paths::skip("all-MiniLM-L6-v2 (run `just fetch all-MiniLM-L6-v2`)");
        return;
    };
    let (model, _) = kiln_models::bert::load_bert(&dir, &Device::flex()).unwrap();
    let ids: Vec<i64> = (0..64).map(|i| 1000 + (i * 37 % 2000) as i64).collect();
    let d = compare(&model, ids, vec![1; 64], 2, 32, &wgpu);
    eprintln!("MiniLM: max |flex - wgpu| = {d:e}");
    assert!(d <= 1e-4, "{d}");
}
