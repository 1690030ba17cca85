use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ModelError;

fn d_gelu() -> String {
    "gelu".into()
}
fn d_eps() -> f64 {
    1e-12
}
fn d_drop() -> f64 {
    0.1
}
fn d_types() -> usize {
    2
}
fn d_model_type() -> String {
    "bert".into()
}

/// HF `BertConfig`, deserialized from `config.json` with HF's key names. Keys kiln does not use
/// are kept in `extra` and written back on save, so a round trip loses nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BertConfig {
    #[serde(default = "d_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "d_gelu")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "d_types")]
    pub type_vocab_size: usize,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_drop")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "d_drop")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    /// HF: label index -> name; its length is `num_labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// HF: layer index -> heads removed (original numbering). HF prunes these at load time, so a
    /// physically pruned checkpoint loads in transformers unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pruned_heads: BTreeMap<String, Vec<usize>>,
    /// kiln extension: per-layer FFN width after neuron pruning. HF's BertConfig has a single
    /// `intermediate_size`, so checkpoints with uneven widths load in kiln (and in HF only with
    /// a custom module); absent when every layer has `intermediate_size` neurons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kiln_intermediate_sizes: Option<Vec<usize>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    /// Reads `config.json`, naming the file in every error.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ModelError::Missing {
                    path: path.to_path_buf(),
                    what: "config.json",
                }
            } else {
                ModelError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        cfg.validate().map_err(|msg| ModelError::Config {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(cfg)
    }

    /// RoBERTa: same encoder, positions offset past the padding index, a single token type.
    pub fn is_roberta(&self) -> bool {
        self.model_type == "roberta"
    }

    /// Position id of the first token: RoBERTa numbers real tokens from `pad_token_id + 1` (HF
    /// `create_position_ids_from_input_ids`), BERT from 0.
    pub fn position_offset(&self) -> usize {
        if self.is_roberta() {
            self.pad_token_id + 1
        } else {
            0
        }
    }

    /// The weight-name prefix of the encoder inside a task model (`bert.` / `roberta.`).
    pub fn hf_prefix(&self) -> &'static str {
        if self.is_roberta() {
            "roberta."
        } else {
            "bert."
        }
    }

    /// A small BERT for tests and the smoke profile.
    pub fn tiny(vocab_size: usize, num_labels: usize) -> Self {
        let mut c = Self {
            model_type: "bert".into(),
            vocab_size,
            hidden_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 128,
            hidden_act: "gelu".into(),
            max_position_embeddings: 128,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            pad_token_id: 0,
            id2label: None,
            label2id: None,
            problem_type: None,
            pruned_heads: BTreeMap::new(),
            kiln_intermediate_sizes: None,
            extra: Default::default(),
        };
        c.set_num_labels(num_labels);
        c
    }

    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.model_type.as_str(), "bert" | "roberta") {
            return Err(format!(
                "model_type is `{}`, but this loader reads BERT-family checkpoints (model_type `bert` or `roberta`)",
                self.model_type
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "relu" | "gelu_new" | "gelu_pytorch_tanh"
        ) {
            return Err(format!("unsupported hidden_act `{}`", self.hidden_act));
        }
        // burn's Dropout panics outside [0, 1); say which key instead.
        for (key, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{key} {p} is not a probability in [0, 1)"));
            }
        }
        if let Some(sizes) = &self.kiln_intermediate_sizes {
            if sizes.len() != self.num_hidden_layers {
                return Err(format!(
                    "kiln_intermediate_sizes has {} entries for {} layers",
                    sizes.len(),
                    self.num_hidden_layers
                ));
            }
        }
        for (layer, heads) in &self.pruned_heads {
            let l: usize = layer
                .parse()
                .map_err(|_| format!("pruned_heads key `{layer}` is not a layer index"))?;
            if l >= self.num_hidden_layers || heads.iter().any(|&h| h >= self.num_attention_heads) {
                return Err(format!(
                    "pruned_heads entry {layer}: {heads:?} is out of range"
                ));
            }
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn num_labels(&self) -> usize {
        self.id2label.as_ref().map(|m| m.len()).unwrap_or(2)
    }

    pub fn set_num_labels(&mut self, n: usize) {
        let labels: BTreeMap<String, String> = (0..n)
            .map(|i| (i.to_string(), format!("LABEL_{i}")))
            .collect();
        self.label2id = Some(
            labels
                .iter()
                .map(|(k, v)| (v.clone(), k.parse().unwrap_or(0)))
                .collect(),
        );
        self.id2label = Some(labels);
        self.problem_type = Some(if n == 1 {
            "regression".into()
        } else {
            "single_label_classification".into()
        });
    }

    /// Heads physically present in layer `l` (original indices), in order.
    pub fn kept_heads(&self, l: usize) -> Vec<usize> {
        let pruned = self.pruned_heads.get(&l.to_string());
        (0..self.num_attention_heads)
            .filter(|h| pruned.is_none_or(|p| !p.contains(h)))
            .collect()
    }

    pub fn intermediate_size_of(&self, l: usize) -> usize {
        self.kiln_intermediate_sizes
            .as_ref()
            .map(|s| s[l])
            .unwrap_or(self.intermediate_size)
    }
}
