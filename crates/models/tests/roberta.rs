//! RoBERTa checkpoints: a tiny HF-format RoBERTa directory written here (HF names, RoBERTa's
//! position offset, one token type, the dense/out_proj classification head) loads in kiln and
//! computes what the same weights give through the BERT path with the position table shifted;
//! with `KILN_PEER_PYTHON` (torch + transformers) it also matches transformers' logits.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use kiln_data::Encoded;
use kiln_models::bert::{load_classifier, save_classifier};
use kiln_models::EncoderInput;

mod common;
use common::{max_diff, peer_floats, rnd, write_safetensors};

const V: usize = 40;
const H: usize = 16;
const I: usize = 32;
const P: usize = 24;
const LAYERS: usize = 2;
const PAD: usize = 1;

/// HF tensors (name -> shape, values) of a tiny RoBERTa classifier.
fn tensors() -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut seed = 42u64;
    let mut t = BTreeMap::new();
    let mut add = |name: String, shape: Vec<usize>, seed: &mut u64| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = if name.ends_with("LayerNorm.weight") {
            (0..n).map(|_| 1.0 + rnd(seed)).collect()
        } else {
            (0..n).map(|_| rnd(seed)).collect()
        };
        t.insert(name, (shape, v));
    };
    let e = "roberta.embeddings.";
    add(format!("{e}word_embeddings.weight"), vec![V, H], &mut seed);
    add(
        format!("{e}position_embeddings.weight"),
        vec![P, H],
        &mut seed,
    );
    add(
        format!("{e}token_type_embeddings.weight"),
        vec![1, H],
        &mut seed,
    );
    add(format!("{e}LayerNorm.weight"), vec![H], &mut seed);
    add(format!("{e}LayerNorm.bias"), vec![H], &mut seed);
    for l in 0..LAYERS {
        let p = format!("roberta.encoder.layer.{l}.");
        for q in ["query", "key", "value"] {
            add(
                format!("{p}attention.self.{q}.weight"),
                vec![H, H],
                &mut seed,
            );
            add(format!("{p}attention.self.{q}.bias"), vec![H], &mut seed);
        }
        add(
            format!("{p}attention.output.dense.weight"),
            vec![H, H],
            &mut seed,
        );
        add(
            format!("{p}attention.output.dense.bias"),
            vec![H],
            &mut seed,
        );
        add(
            format!("{p}attention.output.LayerNorm.weight"),
            vec![H],
            &mut seed,
        );
        add(
            format!("{p}attention.output.LayerNorm.bias"),
            vec![H],
            &mut seed,
        );
        add(
            format!("{p}intermediate.dense.weight"),
            vec![I, H],
            &mut seed,
        );
        add(format!("{p}intermediate.dense.bias"), vec![I], &mut seed);
        add(format!("{p}output.dense.weight"), vec![H, I], &mut seed);
        add(format!("{p}output.dense.bias"), vec![H], &mut seed);
        add(format!("{p}output.LayerNorm.weight"), vec![H], &mut seed);
        add(format!("{p}output.LayerNorm.bias"), vec![H], &mut seed);
    }
    add("classifier.dense.weight".into(), vec![H, H], &mut seed);
    add("classifier.dense.bias".into(), vec![H], &mut seed);
    add("classifier.out_proj.weight".into(), vec![2, H], &mut seed);
    add("classifier.out_proj.bias".into(), vec![2], &mut seed);
    t
}

fn config(model_type: &str, max_pos: usize) -> serde_json::Value {
    serde_json::json!({
        "model_type": model_type, "vocab_size": V, "hidden_size": H, "num_hidden_layers": LAYERS,
        "num_attention_heads": 4, "intermediate_size": I, "hidden_act": "gelu",
        "max_position_embeddings": max_pos, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
        "pad_token_id": PAD, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}
    })
}

fn write_dir(
    dir: &Path,
    model_type: &str,
    t: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    max_pos: usize,
) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        config(model_type, max_pos).to_string(),
    )
    .unwrap();
    write_safetensors(&dir.join("model.safetensors"), t);
}

/// `<s> ... </s>` rows of different lengths (right-padded with id 1), with pair-style type ids
/// that a one-type model must ignore.
fn inputs() -> Vec<Encoded> {
    let rows: Vec<Vec<i64>> = vec![
        vec![0, 5, 9, 13, 2, 2, 7, 8, 2],
        vec![0, 11, 3, 2],
        vec![0, 20, 21, 22, 23, 24, 2],
    ];
    rows.into_iter()
        .map(|ids| {
            let n = ids.len();
            Encoded {
                type_ids: (0..n).map(|i| (i >= n / 2) as i64).collect(),
                ids,
            }
        })
        .collect()
}

fn logits(dir: &Path) -> Vec<f32> {
    let device = Device::flex();
    let (m, _) = load_classifier(dir, 2, &device).unwrap();
    let enc = inputs();
    let items: Vec<(&Encoded, Option<f32>)> = enc.iter().map(|e| (e, None)).collect();
    let b = kiln_data::batch::pad(&items, (0..enc.len()).collect(), PAD as i64, None);
    m.forward(&EncoderInput::from_batch(&b, &device), None)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn roberta_directory_loads_with_offset_positions_and_its_head() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tensors();
    let rob = tmp.path().join("roberta");
    write_dir(&rob, "roberta", &t, P);
    let got = logits(&rob);

    // The same weights through the BERT path: position row j of BERT = row j + offset of
    // RoBERTa (real tokens start at pad + 1 = 2), head renamed to pooler + classifier.
    let off = PAD + 1;
    let mut bt = BTreeMap::new();
    for (name, (shape, v)) in &t {
        let (name, shape, v) = if name.ends_with("position_embeddings.weight") {
            (name.clone(), vec![P - off, H], v[off * H..].to_vec())
        } else {
            (name.clone(), shape.clone(), v.clone())
        };
        let name = name
            .replace("roberta.", "bert.")
            .replace("classifier.dense.", "bert.pooler.dense.")
            .replace("classifier.out_proj.", "classifier.");
        bt.insert(name, (shape, v));
    }
    let bert = tmp.path().join("bert");
    write_dir(&bert, "bert", &bt, P - off);
    let want = logits(&bert);
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff < 1e-5,
        "roberta vs shifted-bert logits differ by {diff}: {got:?} vs {want:?}"
    );

    // Saving writes RoBERTa names back, and the directory reloads to the same logits.
    let device = Device::flex();
    let (m, ck) = load_classifier(&rob, 2, &device).unwrap();
    let again = tmp.path().join("saved");
    save_classifier(&m, &ck.config, None, &again).unwrap();
    let cfg = std::fs::read_to_string(again.join("config.json")).unwrap();
    assert!(cfg.contains("RobertaForSequenceClassification"));
    assert_eq!(logits(&again), got);

    // transformers, when a peer Python is given.
    let rows: Vec<Vec<i64>> = inputs().into_iter().map(|e| e.ids).collect();
    let script = format!(
        "import json,torch\nfrom transformers import RobertaForSequenceClassification as M\nm=M.from_pretrained({:?}).eval()\nrows={:?}\nn=max(map(len,rows))\nids=torch.tensor([r+[{PAD}]*(n-len(r)) for r in rows])\nmask=(ids!={PAD}).long()\nprint(json.dumps(m(input_ids=ids,attention_mask=mask).logits.flatten().tolist()))",
        rob.display().to_string(),
        rows
    );
    if let Some(peer) = peer_floats(&script) {
        let diff = max_diff(&got, &peer);
        assert!(
            diff < 1e-4,
            "kiln vs transformers: {diff}: {got:?} vs {peer:?}"
        );
    }
}
