//! The spec's machine-checkable properties (§10, M1-M13) on small models.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use kiln_lottery::*;
use kiln_models::seq2seq::batch::tensors;
use kiln_models::seq2seq::{
    label_smoothed_loss, Kind, Pair, Projection, Seq2SeqConfig, Side, TokenTable,
};

fn dev() -> Device {
    Device::flex()
}

fn tiny_cfg() -> Seq2SeqConfig {
    let mut c = Seq2SeqConfig::iwslt_de_en(24, 20);
    c.d_model = 16;
    c.ffn = 32;
    c.heads = 2;
    c.encoder_layers = 3;
    c.decoder_layers = 3;
    c.dropout = 0.0;
    masked_shape(c)
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn pairs() -> Vec<Pair> {
    vec![
        Pair {
            src: vec![4, 5, 6, 7],
            tgt: vec![8, 9, 10],
        },
        Pair {
            src: vec![11, 12],
            tgt: vec![13, 14, 15, 16],
        },
        Pair {
            src: vec![17, 18, 19],
            tgt: vec![5, 6],
        },
    ]
}

/// (name, scores, mask, weight, effective weight)
type Masked = (String, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// Every masked tensor of the model: (name, scores, mask, weight, effective weight).
fn masked_tensors(m: &model::MaskedTransformer) -> Vec<Masked> {
    let mut out = Vec::new();
    for (site, p) in m.projections() {
        out.push((
            format!("{site:?}"),
            host(p.scores.val()),
            host(p.mask()),
            host(p.weight.val()),
            host(Projection::weight(p)),
        ));
    }
    for (name, t) in [
        ("enc embed", &m.encoder.embed),
        ("dec embed", m.target_table()),
    ] {
        out.push((
            name.into(),
            host(t.scores.as_ref().unwrap().val()),
            host(t.mask().unwrap()),
            host(t.weight.val()),
            host(t.table()),
        ));
    }
    out
}

fn check_masks(m: &model::MaskedTransformer, keep: f64) {
    for (name, s, mask, w, eff) in masked_tensors(m) {
        let n = s.len();
        // M1: exactly n − ⌊(1−k)n⌋ ones.
        let ones = mask.iter().filter(|&&x| x == 1.0).count();
        assert_eq!(
            ones,
            n - ((1.0 - keep) * n as f64).floor() as usize,
            "{name}"
        );
        // M3: binary, and W_eff is W or exactly 0.
        assert!(mask.iter().all(|&x| x == 0.0 || x == 1.0), "{name}");
        for i in 0..n {
            assert_eq!(
                eff[i],
                if mask[i] == 1.0 { w[i] } else { 0.0 },
                "{name}[{i}]"
            );
        }
        // M2: every kept |S| ≥ every dropped |S|.
        let min_kept = (0..n)
            .filter(|&i| mask[i] == 1.0)
            .map(|i| s[i].abs())
            .fold(f32::INFINITY, f32::min);
        let max_dropped = (0..n)
            .filter(|&i| mask[i] == 0.0)
            .map(|i| s[i].abs())
            .fold(0.0, f32::max);
        assert!(
            min_kept >= max_dropped,
            "{name}: {min_kept} < {max_dropped}"
        );
    }
}

fn train_steps(m: model::MaskedTransformer, steps: usize, wd: f64) -> model::MaskedTransformer {
    let mut tc = TrainConfig::iwslt_masked();
    tc.max_updates = steps;
    tc.lr.warmup = 1;
    tc.lr.peak = 0.5; // large, so masks move within a few steps
    tc.weight_decay = wd;
    tc.checkpoint = Checkpoint::Last;
    train(m, &pairs(), &tc, 3, &dev(), None, |_, _, _| {})
        .unwrap()
        .model
}

#[test]
fn masks_have_exact_cardinality_selection_and_binary_values_before_and_after_training() {
    for keep in [0.5, 0.3] {
        let lc = LotteryConfig {
            keep,
            ..LotteryConfig::default()
        };
        let m = build(&tiny_cfg(), &lc, &Embeddings::RandomMasked, 7, &dev()).unwrap();
        check_masks(&m, keep);
        let before: Vec<Vec<f32>> = masked_tensors(&m).into_iter().map(|t| t.2).collect();
        let m = train_steps(m, 6, 1e-4);
        check_masks(&m, keep);
        let after: Vec<Vec<f32>> = masked_tensors(&m).into_iter().map(|t| t.2).collect();
        assert_ne!(before, after, "masks never changed in training");
    }
}

#[test]
fn random_weights_stay_bit_identical_and_only_scores_train() {
    let m = build(
        &tiny_cfg(),
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        7,
        &dev(),
    )
    .unwrap();
    let weights = |m: &model::MaskedTransformer| -> Vec<Vec<f32>> {
        let mut v: Vec<Vec<f32>> = m
            .projections()
            .iter()
            .map(|(_, p)| host(p.weight.val()))
            .collect();
        v.push(host(m.encoder.embed.weight.val()));
        v.push(host(m.target_table().weight.val()));
        v
    };
    let scores = |m: &model::MaskedTransformer| -> Vec<Vec<f32>> {
        m.projections()
            .iter()
            .map(|(_, p)| host(p.scores.val()))
            .collect()
    };
    let (w0, s0) = (weights(&m), scores(&m));
    // M4 with weight decay on: decay must never reach W.
    let m = train_steps(m, 4, 0.1);
    assert_eq!(w0, weights(&m), "a frozen weight changed");
    assert_ne!(s0, scores(&m), "scores did not train");

    // M8: the parameters that get gradients are exactly the score tensors.
    let m = build(
        &tiny_cfg(),
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        7,
        &dev(),
    )
    .unwrap();
    let ad = dev().autodiff();
    let m = m.to_device(&ad).train();
    let batch = tensors(&pairs(), &[0, 1, 2], &ad);
    let (loss, _, _) = label_smoothed_loss(m.forward(&batch), batch.target.clone(), 0.1);
    let grads = GradientsParams::from_grads(loss.backward(), &m);
    let mut score_ids = Vec::new();
    for (_, p) in m.projections() {
        assert!(
            grads.get::<2>(p.weight.id).is_none(),
            "a random weight got a gradient"
        );
        score_ids.push(p.scores.id);
    }
    for t in [&m.encoder.embed, m.target_table()] {
        assert!(grads.get::<2>(t.weight.id).is_none());
        score_ids.push(t.scores.as_ref().unwrap().id);
    }
    assert_eq!(
        grads.len(),
        score_ids.len(),
        "gradients outside the score tensors"
    );
    assert!(score_ids.iter().all(|&id| grads.get::<2>(id).is_some()));
    // No LayerNorm or bias parameters exist at all.
    assert!(m
        .encoder
        .layers
        .iter()
        .all(|l| l.attn_norm.gamma.is_none() && l.ffn_norm.beta.is_none()));
    // Count: one score per weight entry per layer plus the embedding tables.
    let c = tiny_cfg();
    let (d, f) = (c.d_model, c.ffn);
    let expect =
        3 * (4 * d * d + 2 * d * f) + 3 * (8 * d * d + 2 * d * f) + (c.src_vocab + c.tgt_vocab) * d;
    assert_eq!(counts(&m.valid()).1, expect);
}

#[test]
fn one_layer_sharing_is_by_reference_with_distinct_scores() {
    let m = build(
        &tiny_cfg(),
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        7,
        &dev(),
    )
    .unwrap();
    let by_site = m.projections();
    for side in [Side::Encoder, Side::Decoder] {
        for kind in [
            Kind::SelfQ,
            Kind::SelfK,
            Kind::SelfV,
            Kind::SelfOut,
            Kind::Fc1,
            Kind::Fc2,
        ] {
            let same: Vec<_> = by_site
                .iter()
                .filter(|(s, _)| s.side == side && s.kind == kind)
                .collect();
            assert_eq!(same.len(), 3);
            for (_, p) in &same[1..] {
                assert_eq!(
                    p.weight.id, same[0].1.weight.id,
                    "{side:?} {kind:?} not shared"
                );
                assert_eq!(host(p.weight.val()), host(same[0].1.weight.val()));
                assert_ne!(p.scores.id, same[0].1.scores.id);
                assert_ne!(
                    host(p.mask()),
                    host(same[0].1.mask()),
                    "{side:?} {kind:?}: identical initial masks"
                );
            }
        }
    }
    let enc_fc1 = by_site
        .iter()
        .find(|(s, _)| s.side == Side::Encoder && s.kind == Kind::Fc1)
        .unwrap()
        .1;
    let dec_fc1 = by_site
        .iter()
        .find(|(s, _)| s.side == Side::Decoder && s.kind == Kind::Fc1)
        .unwrap()
        .1;
    assert_ne!(
        host(enc_fc1.weight.val()),
        host(dec_fc1.weight.val()),
        "encoder and decoder share weights"
    );
    // M10: the one-layer random weights of the IWSLT small shape (5,242,880).
    let mut big = masked_shape(Seq2SeqConfig::iwslt_de_en(8, 8));
    big.d_model = 512;
    let m = build(
        &big,
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        1,
        &dev(),
    )
    .unwrap();
    let (weights, scores) = counts(&m);
    assert_eq!(weights, 5_242_880);
    assert_eq!(scores - 2 * 8 * 512, 31_457_280);
    // Without sharing every layer draws its own weights: 31,457,280 (a full 6+6 model).
    let lc = LotteryConfig {
        share: Share::None,
        ..LotteryConfig::default()
    };
    let m = build(&big, &lc, &Embeddings::RandomMasked, 1, &dev()).unwrap();
    assert_eq!(counts(&m).0, 31_457_280);
}

#[test]
fn straight_through_gradient_is_sign_times_weight_times_upstream() {
    // M6 on one masked matrix: L = Σ G ⊙ (x·W_eff) for fixed x and G.
    let ad = dev().autodiff();
    ad.seed(5);
    let w = Tensor::<2>::random([6, 5], Distribution::Uniform(-1.0, 1.0), &ad);
    let s = Tensor::<2>::random([6, 5], Distribution::Uniform(-1.0, 1.0), &ad);
    let p = MaskedProj {
        weight: Param::from_tensor(w.clone()).set_require_grad(false),
        scores: Param::from_tensor(s.clone()),
        keep: 0.5,
    };
    let x = Tensor::<2>::random([4, 6], Distribution::Uniform(-1.0, 1.0), &ad);
    let g = Tensor::<2>::random([4, 5], Distribution::Uniform(-1.0, 1.0), &ad);
    let y = x.clone().matmul(Projection::weight(&p));
    let grads = (y * g.clone()).sum().backward();
    let got = host(p.scores.val().grad(&grads).unwrap());
    // dL/dW_eff = xᵀG; expected dL/dS = sign(S) ⊙ W ⊙ xᵀG, for kept and dropped entries.
    let upstream = host(x.inner().transpose().matmul(g.inner()));
    let (sv, wv, mask) = (host(s.inner()), host(w.inner()), host(p.mask().inner()));
    let mut dropped_nonzero = 0;
    for i in 0..30 {
        let want = sv[i].signum() * wv[i] * upstream[i];
        assert!(
            (got[i] - want).abs() < 1e-5,
            "entry {i}: {} vs {want}",
            got[i]
        );
        if mask[i] == 0.0 && got[i] != 0.0 {
            dropped_nonzero += 1;
        }
    }
    assert!(dropped_nonzero > 0, "masked-out entries got no gradient");
}

#[test]
fn tied_output_uses_the_decoder_table_and_its_mask() {
    // M7: logits = h · (W_dec ⊙ M_dec)ᵀ; perturbing the decoder table's scores changes them.
    let m = build(
        &tiny_cfg(),
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        7,
        &dev(),
    )
    .unwrap();
    assert!(m.decoder.output.is_none());
    let batch = tensors(&pairs(), &[0, 1, 2], &dev());
    let dense = materialize(&m);
    let a = host(m.forward(&batch).reshape([3 * 5, 20]));
    let b = host(dense.forward(&batch).reshape([3 * 5, 20]));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5);
    }
    let table = host(m.target_table().table());
    assert_eq!(host(dense.target_table().weight.val()), table);
}

#[test]
fn keep_one_is_the_dense_random_network() {
    // M9: k = 1 keeps every entry: the masked model equals the unmasked random one.
    let lc = LotteryConfig {
        keep: 1.0,
        ..LotteryConfig::default()
    };
    let m = build(&tiny_cfg(), &lc, &Embeddings::RandomMasked, 7, &dev()).unwrap();
    for (_, p) in m.projections() {
        assert_eq!(host(Projection::weight(p)), host(p.weight.val()));
    }
    let batch = tensors(&pairs(), &[0, 1, 2], &dev());
    let unmasked = m.convert(
        |_, p: &MaskedProj| kiln_models::seq2seq::DenseProj {
            weight: p.weight.clone(),
            bias: None,
        },
        |_, t: &MaskedTable| kiln_models::seq2seq::DenseTable {
            weight: t.weight.clone(),
        },
    );
    assert_eq!(
        host(m.forward(&batch).reshape([15, 20])),
        host(unmasked.forward(&batch).reshape([15, 20]))
    );
}

#[test]
fn init_schemes_follow_their_formulas_and_attention_ignores_them() {
    // M11: empirical bounds/std of the FFN matrix per scheme; q/k/v/out stay Xavier-uniform.
    let mut c = masked_shape(Seq2SeqConfig::iwslt_de_en(8, 8));
    c.d_model = 64;
    c.ffn = 128;
    c.heads = 4;
    c.encoder_layers = 1;
    c.decoder_layers = 1;
    let stats = |v: &[f32]| {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let sd = (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let max = v.iter().fold(0f32, |a, &x| a.max(x.abs())) as f64;
        (sd, max)
    };
    let fan: f64 = 64.0; // fc1 is [d_in = 64, d_out = 128]
    for init in [
        Init::KaimingUniform,
        Init::KaimingNormal,
        Init::SignedConstant,
        Init::UnsignedConstant,
        Init::XavierNormal,
        Init::Standard,
    ] {
        let lc = LotteryConfig {
            init,
            ..LotteryConfig::default()
        };
        let m = build(&c, &lc, &Embeddings::RandomMasked, 3, &dev()).unwrap();
        let ps = m.projections();
        let fc1 = host(
            ps.iter()
                .find(|(s, _)| s.kind == Kind::Fc1)
                .unwrap()
                .1
                .weight
                .val(),
        );
        let (sd, max) = stats(&fc1);
        let scaled = fan * 0.5; // scale_fan at keep 0.5
        match init {
            Init::KaimingUniform => {
                let b = (6.0 / fan).sqrt(); // scale_fan ignored
                assert!(max <= b && max > 0.97 * b, "{max} vs {b}");
            }
            Init::KaimingNormal => assert!(
                (sd - (2.0 / scaled).sqrt()).abs() < 0.03 * (2.0 / scaled).sqrt(),
                "{sd}"
            ),
            Init::SignedConstant => {
                let s = (2.0 / scaled).sqrt();
                assert!(fc1.iter().all(|x| ((x.abs() as f64) - s).abs() < 1e-6));
                assert!(fc1.iter().any(|&x| x < 0.0) && fc1.iter().any(|&x| x > 0.0));
            }
            Init::UnsignedConstant => assert!(fc1
                .iter()
                .all(|&x| ((x as f64) - (2.0 / scaled).sqrt()).abs() < 1e-6)),
            Init::XavierNormal => assert!(
                (sd - (2.0 / 192.0f64).sqrt()).abs() < 0.03 * (2.0 / 192.0f64).sqrt(),
                "{sd}"
            ),
            Init::Standard => {
                let b = 1.0 / fan.sqrt();
                assert!(max <= b && max > 0.97 * b);
            }
            Init::XavierConstant => {}
        }
        for (s, p) in &ps {
            let (_, max) = stats(&host(p.weight.val()));
            let bound = match s.kind {
                Kind::SelfQ
                | Kind::SelfK
                | Kind::SelfV
                | Kind::CrossQ
                | Kind::CrossK
                | Kind::CrossV => (3.0 / (2.0 * 64.0f64)).sqrt(),
                Kind::SelfOut | Kind::CrossOut => (3.0 / 64.0f64).sqrt(),
                _ => continue,
            };
            assert!(
                max <= bound && max > 0.95 * bound,
                "{init:?} {s:?}: {max} vs {bound}"
            );
        }
    }
}

#[test]
fn eval_masks_equal_the_last_training_masks() {
    // M12: masks are a function of the scores only; a model moved to inference keeps them.
    let m = build(
        &tiny_cfg(),
        &LotteryConfig::default(),
        &Embeddings::RandomMasked,
        7,
        &dev(),
    )
    .unwrap();
    let m = train_steps(m, 3, 0.0);
    let ad = dev().autodiff();
    let on_ad = m.clone().to_device(&ad).train();
    let train_masks: Vec<Vec<f32>> = on_ad
        .projections()
        .iter()
        .map(|(_, p)| host(p.mask().inner()))
        .collect();
    let eval_masks: Vec<Vec<f32>> = m
        .projections()
        .iter()
        .map(|(_, p)| host(p.mask()))
        .collect();
    assert_eq!(train_masks, eval_masks);
}

#[test]
fn fixed_embeddings_are_scaled_then_masked_or_used_as_given() {
    let c = tiny_cfg();
    let enc: Vec<f32> = (0..c.src_vocab * c.d_model)
        .map(|i| (i % 7) as f32 - 3.0)
        .collect();
    let dec: Vec<f32> = (0..c.tgt_vocab * c.d_model)
        .map(|i| (i % 5) as f32 - 2.0)
        .collect();
    let fixed = |masked| Embeddings::Fixed {
        encoder: enc.clone(),
        decoder: dec.clone(),
        masked,
    };
    let m = build(&c, &LotteryConfig::default(), &fixed(true), 7, &dev()).unwrap();
    let w = host(m.encoder.embed.weight.val());
    assert!(
        (w[1] - enc[1] * 2f32.sqrt()).abs() < 1e-6,
        "the √2 scaling of spec §5"
    );
    let m = build(&c, &LotteryConfig::default(), &fixed(false), 7, &dev()).unwrap();
    assert!(m.encoder.embed.scores.is_none());
    assert_eq!(host(m.encoder.embed.table()), enc);
    let bad = Embeddings::Fixed {
        encoder: vec![0.0; 3],
        decoder: dec.clone(),
        masked: true,
    };
    let err = build(&c, &LotteryConfig::default(), &bad, 7, &dev())
        .unwrap_err()
        .to_string();
    assert!(err.contains("encoder embedding has 3 values"), "{err}");
    let _ = TensorData::new(vec![0f32], [1]);
}
