//! The FLOPs (MAC) cost model of the official `efficiency/mac.py` (spec §4.1): only the
//! per-head attention work and the per-neuron FFN work are counted; embeddings, biases,
//! LayerNorm, softmax, GELU, pooler and classifier are constants outside the constraint.

use kiln_models::BertConfig;

use crate::Masks;

/// Average dev-set sequence lengths (BERT WordPiece, uncased) used as the cost model's `s`, from
/// the official code. MiniLM shares bert-base-uncased's tokenizer, so the same values apply.
pub fn task_seq_len(task: &str) -> Option<f64> {
    Some(match task {
        "mnli" | "mnli-mm" => 39.05,
        "qqp" => 30.55,
        "qnli" => 50.97,
        "sst2" => 25.16,
        "stsb" => 31.47,
        "mrpc" => 53.24,
        "rte" => 64.59,
        "cola" => 11.67,
        "squad" | "squad_v2" => 170.0,
        _ => return None,
    })
}

/// MAC counts of one encoder at sequence length `seq_len`.
#[derive(Debug, Clone, PartialEq)]
pub struct MacModel {
    pub layers: usize,
    pub heads: usize,
    pub neurons: usize,
    pub hidden: usize,
    pub head_dim: usize,
    pub seq_len: f64,
}

impl MacModel {
    pub fn from_config(c: &BertConfig, seq_len: f64) -> Self {
        Self {
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            neurons: c.intermediate_size,
            hidden: c.hidden_size,
            head_dim: c.head_dim(),
            seq_len,
        }
    }

    /// Q, K, V projections, QK^T and PV, and the head's slice of the output projection:
    /// `4 s d d_h + 2 s² d_h`.
    pub fn head_cost(&self) -> f64 {
        let (s, d, dh) = (self.seq_len, self.hidden as f64, self.head_dim as f64);
        4.0 * s * d * dh + 2.0 * s * s * dh
    }

    /// One column of W_1 and one row of W_2: `2 s d`.
    pub fn neuron_cost(&self) -> f64 {
        2.0 * self.seq_len * self.hidden as f64
    }

    /// Counted MACs of the unpruned model.
    pub fn full(&self) -> f64 {
        self.layers as f64
            * (self.heads as f64 * self.head_cost() + self.neurons as f64 * self.neuron_cost())
    }

    /// Counted MACs of a mask (a unit counts iff its mask value is non-zero).
    pub fn cost(&self, m: &Masks) -> f64 {
        let h: usize = m.kept_heads().iter().sum();
        let n: usize = m.kept_neurons().iter().sum();
        h as f64 * self.head_cost() + n as f64 * self.neuron_cost()
    }

    pub fn ratio(&self, m: &Masks) -> f64 {
        self.cost(m) / self.full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bert_base(s: f64, layers: usize) -> MacModel {
        MacModel {
            layers,
            heads: 12,
            neurons: 3072,
            hidden: 768,
            head_dim: 64,
            seq_len: s,
        }
    }

    #[test]
    #[allow(clippy::inconsistent_digit_grouping)] // values copied from the spec's table
    fn matches_the_spec_table() {
        // (task, MAC/head, MAC/neuron, full 12 layers, full 6 layers) from spec §4.1.
        let rows = [
            (
                "mnli",
                7_872_729.92,
                59_980.8,
                3_344_805_319.68,
                1_672_402_659.84,
            ),
            (
                "qqp",
                6_125_837.12,
                46_924.8,
                2_611_956_372.48,
                1_305_978_186.24,
            ),
            (
                "qnli",
                10_353_646.1952,
                78_289.92,
                4_377_004_662.9888,
                2_188_502_331.4944,
            ),
            (
                "sst2",
                5_027_684.5568,
                38_645.76,
                2_148_623_872.8192,
                1_074_311_936.4096,
            ),
            (
                "stsb",
                6_314_019.9552,
                48_337.92,
                2_691_147_956.4288,
                1_345_573_978.2144,
            ),
            (
                "mrpc",
                10_830_225.6128,
                81_776.64,
                4_574_166_545.2032,
                2_287_083_272.6016,
            ),
            (
                "squad",
                37_122_560.0,
                261_120.0,
                14_971_576_320.0,
                7_485_788_160.0,
            ),
        ];
        for (task, head, neuron, full12, full6) in rows {
            let m = bert_base(task_seq_len(task).unwrap(), 12);
            assert!(
                (m.head_cost() - head).abs() < 1e-3,
                "{task} head {}",
                m.head_cost()
            );
            assert!((m.neuron_cost() - neuron).abs() < 1e-3, "{task} neuron");
            assert!((m.full() - full12).abs() < 1e-3, "{task} full {}", m.full());
            assert!(
                (bert_base(m.seq_len, 6).full() - full6).abs() < 1e-3,
                "{task} full6"
            );
        }
        let m = bert_base(128.0, 12);
        assert_eq!(m.head_cost(), 27_262_976.0);
        assert_eq!(m.neuron_cost(), 196_608.0);
        assert_eq!(m.full(), 11_173_625_856.0);
    }
}
