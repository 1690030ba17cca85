//! DLRM backbone: the dot interaction's values and order, PyTorch BCELoss semantics, the
//! reference initialisation, id modulo table size, and shape errors.

use burn::tensor::{Device, Tensor, TensorData};
use kiln_models::dlrm::{bce, CtrRows, Dlrm, DlrmConfig, Interaction};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn dev() -> Device {
    Device::flex()
}

fn t2(v: Vec<f32>, s: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, s), &dev())
}

#[test]
fn dot_interaction_is_the_lower_triangle_of_pairwise_dots_after_z0() {
    // One example, d = 2: z0 = (1, 2), e1 = (3, 4), e2 = (5, 6).
    let z0 = t2(vec![1.0, 2.0], [1, 2]);
    let e1 = t2(vec![3.0, 4.0], [1, 2]);
    let e2 = t2(vec![5.0, 6.0], [1, 2]);
    let out = Interaction::Dot
        .apply(z0.clone(), vec![e1.clone(), e2.clone()])
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    // z0, then (1,0) = e1·z0 = 11, (2,0) = e2·z0 = 17, (2,1) = e2·e1 = 39.
    assert_eq!(out, vec![1.0, 2.0, 11.0, 17.0, 39.0]);
    let own = Interaction::DotSelf
        .apply(z0.clone(), vec![e1.clone(), e2.clone()])
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    assert_eq!(own, vec![1.0, 2.0, 5.0, 11.0, 25.0, 17.0, 39.0, 61.0]);
    let cat = Interaction::Cat
        .apply(z0, vec![e1, e2])
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    assert_eq!(cat, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn bce_matches_pytorch_bceloss_including_the_log_clamp() {
    let p = Tensor::<1>::from_data(TensorData::new(vec![0.9f32, 0.2], [2]), &dev());
    let y = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 0.0], [2]), &dev());
    let v = bce(p, y).into_scalar::<f32>() as f64;
    let want = -(0.9f64.ln() + 0.8f64.ln()) / 2.0;
    assert!((v - want).abs() < 1e-6, "{v} vs {want}");
    // torch.nn.BCELoss()(tensor([1.0]), tensor([0.0])) == 100 (log clamped at -100).
    let p = Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &dev());
    let y = Tensor::<1>::from_data(TensorData::new(vec![0.0f32], [1]), &dev());
    assert_eq!(bce(p, y).into_scalar::<f32>(), 100.0);
}

#[test]
fn initialisation_follows_the_reference_dlrm() {
    let cfg = DlrmConfig::uniform(
        vec![13, 512, 16],
        vec![256],
        vec![1000, 50],
        Interaction::Dot,
    );
    let m = Dlrm::new(&cfg, &mut ChaCha8Rng::seed_from_u64(0), &dev()).unwrap();
    let w = m.bottom.layers[0]
        .weight
        .val()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let std = (w.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    let want = (2.0 / (13.0 + 512.0f64)).sqrt();
    assert!((std / want - 1.0).abs() < 0.05, "W std {std} vs {want}");
    let b = m.bottom.layers[0]
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let bstd = (b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / b.len() as f64).sqrt();
    assert!(
        (bstd / (1.0 / 512.0f64).sqrt() - 1.0).abs() < 0.15,
        "b std {bstd}"
    );
    let e = m.tables[0].val().into_data().try_into_vec::<f32>().unwrap();
    let k = (1.0 / 1000.0f64).sqrt() as f32;
    assert!(e.iter().all(|x| x.abs() <= k));
    assert!(e.iter().any(|x| x.abs() > 0.9 * k));
    assert_eq!(m.config(), cfg);
    assert_eq!(cfg.top_sizes(), vec![16 + 3, 256, 1]);
    // params: MLP weights + biases + tables.
    let mlp = 13 * 512 + 512 + 512 * 16 + 16 + 19 * 256 + 256 + 256 + 1;
    assert_eq!(cfg.params(), (mlp + 1000 * 16 + 50 * 16) as f64);
}

#[test]
fn ids_wrap_modulo_the_table_and_bad_batches_are_named() {
    let cfg = DlrmConfig::uniform(vec![1, 4], vec![4], vec![3], Interaction::Dot);
    let m = Dlrm::new(&cfg, &mut ChaCha8Rng::seed_from_u64(0), &dev()).unwrap();
    let run = |id: u32| {
        let rows = CtrRows {
            dense: &[0.5],
            cats: &[id],
            labels: &[1.0],
            n_dense: 1,
            n_cat: 1,
        };
        m.forward(&rows, &dev()).into_scalar::<f32>()
    };
    assert_eq!(run(1), run(4), "id 4 of a 3-row table is row 1");
    let bad = CtrRows {
        dense: &[0.5, 0.1],
        cats: &[0],
        labels: &[1.0],
        n_dense: 2,
        n_cat: 1,
    };
    let e = m.check(&bad).unwrap_err().to_string();
    assert!(e.contains("2 dense") && e.contains("expects 1"), "{e}");
    let e = DlrmConfig::uniform(vec![1, 4], vec![], vec![0], Interaction::Dot)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("0 rows"), "{e}");
}
