//! Golden test: kiln's BERT on the real all-MiniLM-L6-v2 weights against HF transformers'
//! outputs in ../shared/data/reference/minilm-golden.json (4 inputs, one a sentence pair,
//! with padding).

use burn::tensor::{Device, Tensor};
use kiln_data::{make_batches, TextTokenizer};
use kiln_models::bert::{load_bert, mean_pool};
use kiln_models::EncoderInput;

#[derive(serde::Deserialize)]
struct Golden {
    texts: Vec<Vec<String>>,
    input_ids: Vec<Vec<i64>>,
    token_type_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    last_hidden_state: Vec<Vec<Vec<f32>>>,
    pooler_output: Vec<Vec<f32>>,
    mean_pooled_normalized: Vec<Vec<f32>>,
}

fn inputs() -> Option<(std::path::PathBuf, Golden)> {
    let Some(model) = kiln_core::paths::minilm_dir() else {
        kiln_core::paths::skip("all-MiniLM-L6-v2 (run `just fetch all-MiniLM-L6-v2`)");
        return None;
    };
    let Some(shared) = kiln_core::paths::shared_data() else {
        kiln_core::paths::skip("../shared/data");
        return None;
    };
    let golden = shared.join("reference/minilm-golden.json");
    let Ok(text) = std::fs::read_to_string(&golden) else {
        kiln_core::paths::skip(&golden.display().to_string());
        return None;
    };
    Some((
        model,
        serde_json::from_str(&text).expect("golden json parses"),
    ))
}

#[test]
fn minilm_matches_huggingface() {
    let Some((dir, g)) = inputs() else { return };
    let device = Device::flex();
    let (model, ck) = load_bert(&dir, &device).expect("MiniLM loads");
    let tok = TextTokenizer::from_file(&ck.tokenizer().unwrap(), 512).unwrap();

    // Token ids equal HF's.
    let enc: Vec<_> = g
        .texts
        .iter()
        .map(|t| tok.encode(&t[0], t.get(1).map(|s| s.as_str())).unwrap())
        .collect();
    let labels = vec![None; enc.len()];
    let batch = &make_batches(&enc, &labels, enc.len(), 0, None)[0];
    let seq = g.input_ids[0].len();
    assert_eq!(batch.seq, seq, "padded length");
    for r in 0..enc.len() {
        assert_eq!(
            &batch.ids[r * seq..(r + 1) * seq],
            &g.input_ids[r][..],
            "input_ids row {r}"
        );
        assert_eq!(
            &batch.type_ids[r * seq..(r + 1) * seq],
            &g.token_type_ids[r][..],
            "token types row {r}"
        );
        assert_eq!(
            &batch.mask[r * seq..(r + 1) * seq],
            &g.attention_mask[r][..],
            "mask row {r}"
        );
    }

    let input = EncoderInput::from_rows(
        batch.ids.clone(),
        batch.type_ids.clone(),
        batch.mask.clone(),
        batch.batch,
        seq,
        &device,
    );
    let out = model.forward(&input, None);
    let hidden: Vec<f32> = out
        .last_hidden_state
        .clone()
        .into_data()
        .try_to_vec()
        .unwrap();
    let h = model.embeddings.word_embeddings.weight.dims()[1];
    let mut max_diff = 0f32;
    for r in 0..enc.len() {
        for t in 0..seq {
            if g.attention_mask[r][t] == 0 {
                continue;
            }
            for k in 0..h {
                let d = (hidden[(r * seq + t) * h + k] - g.last_hidden_state[r][t][k]).abs();
                max_diff = max_diff.max(d);
            }
        }
    }
    eprintln!("last_hidden_state max |diff| = {max_diff:e}");
    assert!(max_diff <= 1e-4, "last_hidden_state max diff {max_diff}");

    let pooled: Vec<f32> = out.pooler_output.unwrap().into_data().try_to_vec().unwrap();
    let pmax = (0..enc.len())
        .flat_map(|r| (0..h).map(move |k| (r, k)))
        .map(|(r, k)| (pooled[r * h + k] - g.pooler_output[r][k]).abs())
        .fold(0f32, f32::max);
    eprintln!("pooler_output max |diff| = {pmax:e}");
    assert!(pmax <= 1e-4, "pooler diff {pmax}");

    let mean: Tensor<2> = mean_pool(out.last_hidden_state, input.attention_mask.clone());
    let mean: Vec<f32> = mean.into_data().try_to_vec().unwrap();
    for r in 0..enc.len() {
        let a = &mean[r * h..(r + 1) * h];
        let b = &g.mean_pooled_normalized[r];
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos = dot / (na * nb);
        eprintln!("row {r}: mean-pooled cosine {cos}");
        assert!(cos >= 0.99999, "row {r} cosine {cos}");
    }
}
