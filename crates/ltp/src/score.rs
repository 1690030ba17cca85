//! The token importance score of spec §3.

use burn::tensor::Tensor;

/// `s(i) = 1/(H·N) Σ_h Σ_j A_h[j, i]` over live query rows `j`, for attention probabilities
/// `probs: [b, H, n, n]` and `live: [b, n]` (1 live, 0 padding or pruned). `norm_len` is the
/// fixed N (the reference's max_seq_length, 128), so a live token's average score is 1/N
/// whatever the real or padded length. Returns `[b, n]`.
pub fn token_scores(probs: Tensor<4>, live: Tensor<2>, norm_len: usize) -> Tensor<2> {
    let [b, h, n, _] = probs.dims();
    let rows = probs * live.reshape([b, 1, n, 1]);
    rows.sum_dim(1).sum_dim(2).reshape([b, n]) / (h * norm_len) as f64
}

/// Stage-1 soft mask `sigmoid((s - θ) / T)`, elementwise over `[b, n]` scores.
pub fn soft_mask(scores: Tensor<2>, theta: Tensor<2>, temperature: f64) -> Tensor<2> {
    burn::tensor::activation::sigmoid((scores - theta) / temperature)
}

/// One layer's regulariser term: the mean soft mask over `batch × norm_len` positions (positions
/// past the padded length count as masked, as under the reference's pad-to-128).
pub fn regulariser_term(mask: Tensor<2>, norm_len: usize) -> Tensor<1> {
    let [b, _] = mask.dims();
    mask.sum() / (b * norm_len) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn worked_vector_of_the_spec() {
        let d = Device::flex();
        let rows = [
            0.5f32, 0.3, 0.2, 0.0, 0.6, 0.2, 0.2, 0.0, 0.7, 0.1, 0.2, 0.0, 0.25, 0.25, 0.25, 0.25,
        ];
        let probs = Tensor::<4>::from_data(TensorData::new(rows.to_vec(), [1, 1, 4, 4]), &d);
        let live = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0, 0.0], [1, 4]), &d);
        let s: Vec<f32> = token_scores(probs, live, 4)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want = [0.45, 0.15, 0.15, 0.0];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{s:?}");
        }
        let kept: Vec<usize> = (0..4).filter(|&i| s[i] >= 0.2f32.max(1e-5)).collect();
        assert_eq!(kept, vec![0]);
        // Property 9: (1 + 2 * 0.0067 + ~0) / 4 = 0.2534 with θ = 0.2, T = 0.01, N = 4.
        let sc = Tensor::<2>::from_data(TensorData::new(s.clone(), [1, 4]), &d);
        let th = Tensor::<2>::from_data(TensorData::new(vec![0.2f32], [1, 1]), &d);
        let m = soft_mask(sc, th, 0.01);
        let r: f32 = regulariser_term(m, 4).into_scalar();
        assert!((r - 0.2534).abs() < 1e-4, "{r}");
    }
}
