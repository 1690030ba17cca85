//! HuggingFace model directories: `config.json` + `model.safetensors` (+ `tokenizer.json`).
//!
//! Name mapping (HF -> kiln module path), applied by burn-store's `KeyRemapper`; the
//! `PyTorchToBurnAdapter` transposes Linear weights (`[out, in]` -> `[in, out]`) and renames
//! LayerNorm `weight/bias` -> `gamma/beta`:
//!
//! | HF                                   | kiln                                  |
//! |--------------------------------------|---------------------------------------|
//! | `bert.` prefix (optional)            | `bert.` (classifier) / none (encoder) |
//! | `.attention.self.`                   | `.attention.self_attn.`               |
//! | `LayerNorm`                          | `layer_norm`                          |
//! | `classifier.*`                       | `classifier.*`                        |
//! | `qa_outputs.*`                       | `qa_outputs.*`                        |
//!
//! Before handing the file to burn-store, the safetensors header is read and every tensor's
//! shape is checked against config.json, so a truncated file or a config from another model
//! gives an error that names the file and the tensor instead of a panic deep in a backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn_store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};

use burn::module::Module;

use super::{BertConfig, BertForQuestionAnswering, BertForSequenceClassification, BertModel};
use crate::ModelError;

/// A checkpoint directory whose header has been checked against its config.
#[derive(Debug, Clone)]
pub struct HfCheckpoint {
    pub dir: PathBuf,
    pub config: BertConfig,
    pub weights: PathBuf,
    /// Tensor name -> shape, as stored.
    pub tensors: BTreeMap<String, Vec<usize>>,
    /// Whether names carry the `bert.` prefix (task checkpoints do, bare encoders do not).
    pub prefixed: bool,
}

impl HfCheckpoint {
    pub fn has_classifier(&self) -> bool {
        self.tensors.contains_key("classifier.weight")
            || self.tensors.contains_key("classifier.out_proj.weight")
    }
    pub fn has_pooler(&self) -> bool {
        let p = if self.prefixed {
            self.config.hf_prefix()
        } else {
            ""
        };
        self.tensors
            .contains_key(&format!("{p}pooler.dense.weight"))
    }
    pub fn tokenizer(&self) -> Option<PathBuf> {
        let t = self.dir.join("tokenizer.json");
        t.exists().then_some(t)
    }
}

/// Reads the safetensors header (8-byte little-endian length + JSON) without loading weights.
pub(crate) fn read_header(path: &Path) -> Result<BTreeMap<String, Vec<usize>>, ModelError> {
    use std::io::Read;
    let corrupt = |msg: String| ModelError::CorruptWeights {
        path: path.to_path_buf(),
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::Missing {
                path: path.to_path_buf(),
                what: "model.safetensors",
            }
        } else {
            ModelError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let file_len = f
        .metadata()
        .map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut len8 = [0u8; 8];
    f.read_exact(&mut len8)
        .map_err(|_| corrupt(format!("only {file_len} bytes, no header")))?;
    let n = u64::from_le_bytes(len8);
    if n > 100_000_000 || 8 + n > file_len {
        return Err(corrupt(format!(
            "header claims {n} bytes but the file has {file_len}"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| corrupt(format!("reading header: {e}")))?;
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| corrupt(format!("header is not valid JSON: {e}")))?;
    let mut out = BTreeMap::new();
    let mut max_end = 0u64;
    // Float tensors in another precision than F32: burn-store would load them as they are and
    // the model would fail later, far from the tensor; name the first one here.
    let mut not_f32: Vec<(String, String)> = Vec::new();
    for (name, info) in json {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        if dtype != "F32" && (dtype.starts_with('F') || dtype.starts_with("BF")) {
            not_f32.push((name.clone(), dtype.to_string()));
        }
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .ok_or_else(|| corrupt(format!("tensor `{name}` has no valid shape")))?;
        let end = info
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|e| e.as_u64())
            .ok_or_else(|| corrupt(format!("tensor `{name}` has no data_offsets")))?;
        max_end = max_end.max(end);
        out.insert(name, shape);
    }
    if 8 + n + max_end > file_len {
        return Err(corrupt(format!(
            "tensor data needs {} bytes but the file has {file_len} (truncated download?)",
            8 + n + max_end
        )));
    }
    if let Some((tensor, found)) = not_f32.first() {
        let more = not_f32.len() - 1;
        return Err(ModelError::Dtype {
            path: path.to_path_buf(),
            tensor: tensor.clone(),
            found: found.clone(),
            others: if more > 0 {
                format!(", like {more} more tensors")
            } else {
                String::new()
            },
        });
    }
    Ok(out)
}

/// Expected HF tensor shapes (PyTorch layout) for a config, without prefix.
fn expected_shapes(c: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let h = c.hidden_size;
    let mut v = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![c.vocab_size, h],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![c.max_position_embeddings, h],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![c.type_vocab_size, h],
        ),
    ];
    for l in 0..c.num_hidden_layers {
        let w = c.kept_heads(l).len() * c.head_dim();
        let i = c.intermediate_size_of(l);
        let p = format!("encoder.layer.{l}.");
        for qkv in ["query", "key", "value"] {
            v.push((format!("{p}attention.self.{qkv}.weight"), vec![w, h]));
            v.push((format!("{p}attention.self.{qkv}.bias"), vec![w]));
        }
        v.push((format!("{p}attention.output.dense.weight"), vec![h, w]));
        v.push((format!("{p}intermediate.dense.weight"), vec![i, h]));
        v.push((format!("{p}intermediate.dense.bias"), vec![i]));
        v.push((format!("{p}output.dense.weight"), vec![h, i]));
    }
    v
}

/// Reads config.json and checks model.safetensors against it (no weights loaded).
pub fn validate_checkpoint(dir: &Path) -> Result<HfCheckpoint, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::Missing {
            path: dir.to_path_buf(),
            what: "model directory",
        });
    }
    let config_path = dir.join("config.json");
    let config = BertConfig::from_file(&config_path)?;
    let weights = dir.join("model.safetensors");
    let tensors = read_header(&weights)?;
    // A config claiming more layers than the file holds fails here, naming both files, before
    // the expected tensors of (say) 2^64 − 1 layers are listed.
    let layers_in_file = tensors
        .keys()
        .filter_map(|k| {
            let rest = k.split_once("encoder.layer.")?.1;
            rest.split('.').next()?.parse::<usize>().ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    if config.num_hidden_layers > layers_in_file {
        return Err(ModelError::Config {
            path: config_path,
            msg: format!(
                "num_hidden_layers is {} but {} has weights for {layers_in_file} layers; the \
                 config and weights belong to different models",
                config.num_hidden_layers,
                weights.display()
            ),
        });
    }
    let prefixed = tensors.keys().any(|k| k.starts_with(config.hf_prefix()));
    let pre = if prefixed { config.hf_prefix() } else { "" };
    for (name, shape) in expected_shapes(&config) {
        let full = format!("{pre}{name}");
        match tensors.get(&full) {
            None => {
                return Err(ModelError::MissingTensor {
                    path: weights,
                    tensor: full,
                    hint: format!(
                        "{} asks for it: is this a {} checkpoint in HuggingFace naming, and \
                         are config.json and the weights of the same model?",
                        config_path.display(),
                        if config.is_roberta() {
                            "RoBERTa"
                        } else {
                            "BERT"
                        }
                    ),
                })
            }
            Some(found) if *found != shape => {
                // Two files disagree: name both (either may be the one that was changed).
                let mismatch = ModelError::ShapeMismatch {
                    path: weights,
                    tensor: full,
                    expected: shape,
                    found: found.clone(),
                };
                return Err(ModelError::Config {
                    path: dir.join("config.json"),
                    msg: format!("does not match the weights: {mismatch}"),
                });
            }
            _ => {}
        }
    }
    Ok(HfCheckpoint {
        dir: dir.to_path_buf(),
        config,
        weights,
        tensors,
        prefixed,
    })
}

fn load_remapper(target_prefix: &str, file_prefixed: bool, roberta: bool) -> KeyRemapper {
    let mut pats: Vec<(String, String)> = vec![
        (
            r"\.attention\.self\.".into(),
            ".attention.self_attn.".into(),
        ),
        ("LayerNorm".into(), "layer_norm".into()),
    ];
    if roberta {
        // RobertaClassificationHead (dense -> tanh -> out_proj on <s>) is BERT's pooler and
        // classifier under other names; dropout placement differs only in training.
        pats.push((r"^roberta\.".into(), "bert.".into()));
        pats.push((r"^classifier\.dense\.".into(), "bert.pooler.dense.".into()));
        pats.push((r"^classifier\.out_proj\.".into(), "classifier.".into()));
    }
    match (file_prefixed, target_prefix.is_empty()) {
        (true, true) => pats.push((r"^bert\.".into(), String::new())),
        (false, false) => pats.push((
            r"^(embeddings|encoder|pooler)\.".into(),
            format!("{target_prefix}$1."),
        )),
        _ => {}
    }
    KeyRemapper::from_patterns(pats).expect("static patterns are valid regexes")
}

pub(crate) fn store_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Store {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

/// Loads a bare encoder (`BertModel`) from an HF directory.
pub fn load_bert(dir: &Path, device: &Device) -> Result<(BertModel, HfCheckpoint), ModelError> {
    let ck = validate_checkpoint(dir)?;
    let mut model = BertModel::new(&ck.config, ck.has_pooler(), device);
    let mut store = SafetensorsStore::from_file(&ck.weights)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(load_remapper("", ck.prefixed, ck.config.is_roberta()))
        .allow_partial(true);
    let res = model
        .load_from(&mut store)
        .map_err(|e| store_err(&ck.weights, e))?;
    check_applied(&ck.weights, &res.missing, &res.errors)?;
    Ok((model, ck))
}

/// Loads `BertForSequenceClassification`. A checkpoint without a classifier (a pretrained
/// encoder) gets a fresh head with `num_labels` outputs.
pub fn load_classifier(
    dir: &Path,
    num_labels: usize,
    device: &Device,
) -> Result<(BertForSequenceClassification, HfCheckpoint), ModelError> {
    let mut ck = validate_checkpoint(dir)?;
    let head = if ck.config.is_roberta() {
        "classifier.out_proj.weight"
    } else {
        "classifier.weight"
    };
    if let Some(shape) = ck.tensors.get(head) {
        if shape[0] != num_labels {
            return Err(ModelError::ShapeMismatch {
                path: ck.weights.clone(),
                tensor: head.into(),
                expected: vec![num_labels, ck.config.hidden_size],
                found: shape.clone(),
            });
        }
    }
    ck.config.set_num_labels(num_labels);
    let mut model = BertForSequenceClassification::new(&ck.config, device);
    let mut store = SafetensorsStore::from_file(&ck.weights)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(load_remapper("bert.", ck.prefixed, ck.config.is_roberta()))
        .allow_partial(true);
    let res = model
        .load_from(&mut store)
        .map_err(|e| store_err(&ck.weights, e))?;
    // A pretrained encoder without a pooler or classifier keeps their fresh init.
    let missing: Vec<(String, String)> = res
        .missing
        .into_iter()
        .filter(|(p, _)| !p.starts_with("classifier.") && !p.starts_with("bert.pooler."))
        .collect();
    check_applied(&ck.weights, &missing, &res.errors)?;
    Ok((model, ck))
}

/// Loads `BertForQuestionAnswering`. A checkpoint without `qa_outputs` (a pretrained encoder)
/// gets a fresh span head; a pooler in the file is ignored (HF's QA model has none).
pub fn load_qa(
    dir: &Path,
    device: &Device,
) -> Result<(BertForQuestionAnswering, HfCheckpoint), ModelError> {
    let ck = validate_checkpoint(dir)?;
    if let Some(shape) = ck.tensors.get("qa_outputs.weight") {
        if shape[0] != 2 {
            return Err(ModelError::ShapeMismatch {
                path: ck.weights.clone(),
                tensor: "qa_outputs.weight".into(),
                expected: vec![2, ck.config.hidden_size],
                found: shape.clone(),
            });
        }
    }
    let mut model = BertForQuestionAnswering::new(&ck.config, device);
    let mut store = SafetensorsStore::from_file(&ck.weights)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(load_remapper("bert.", ck.prefixed, ck.config.is_roberta()))
        .allow_partial(true);
    let res = model
        .load_from(&mut store)
        .map_err(|e| store_err(&ck.weights, e))?;
    let missing: Vec<(String, String)> = res
        .missing
        .into_iter()
        .filter(|(p, _)| !p.starts_with("qa_outputs."))
        .collect();
    check_applied(&ck.weights, &missing, &res.errors)?;
    Ok((model, ck))
}

fn check_applied(
    path: &Path,
    missing: &[(String, String)],
    errors: &[burn_store::ApplyError],
) -> Result<(), ModelError> {
    if let Some(e) = errors.first() {
        return Err(store_err(path, format!("{e:?}")));
    }
    if let Some((p, _)) = missing.first() {
        return Err(ModelError::MissingTensor {
            path: path.to_path_buf(),
            tensor: p.clone(),
            hint: format!("{} tensors missing in all", missing.len()),
        });
    }
    Ok(())
}

/// Saves a classifier as an HF directory (config.json, model.safetensors in HF names and
/// `[out, in]` layout, tokenizer.json if given) that `transformers` loads with
/// `AutoModelForSequenceClassification.from_pretrained`. Files are written to a temporary
/// sibling directory and renamed into place, so an interrupted save leaves no half directory.
pub fn save_classifier(
    model: &BertForSequenceClassification,
    config: &BertConfig,
    tokenizer: Option<&Path>,
    dir: &Path,
) -> Result<(), ModelError> {
    let mut config = config.clone();
    config.set_num_labels(model.num_labels());
    let arch = if config.is_roberta() {
        "RobertaForSequenceClassification"
    } else {
        "BertForSequenceClassification"
    };
    save_hf(model, config, arch, tokenizer, dir)
}

/// Saves a span-prediction model as an HF directory (`AutoModelForQuestionAnswering` loads it).
pub fn save_qa(
    model: &BertForQuestionAnswering,
    config: &BertConfig,
    tokenizer: Option<&Path>,
    dir: &Path,
) -> Result<(), ModelError> {
    let arch = if config.is_roberta() {
        "RobertaForQuestionAnswering"
    } else {
        "BertForQuestionAnswering"
    };
    save_hf(model, config.clone(), arch, tokenizer, dir)
}

fn save_hf<M: Module>(
    model: &M,
    mut config: BertConfig,
    architecture: &str,
    tokenizer: Option<&Path>,
    dir: &Path,
) -> Result<(), ModelError> {
    config
        .extra
        .insert("architectures".into(), serde_json::json!([architecture]));
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| ModelError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = parent.join(format!(".{name}.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let cfg_json =
        serde_json::to_string_pretty(&config).map_err(|e| ModelError::Invalid(e.to_string()))?;
    std::fs::write(tmp.join("config.json"), cfg_json).map_err(io(&tmp))?;
    let weights = tmp.join("model.safetensors");
    let mut pats = vec![
        (r"\.attention\.self_attn\.", ".attention.self."),
        ("layer_norm", "LayerNorm"),
    ];
    if config.is_roberta() {
        // Back to RobertaForSequenceClassification's names (see `load_remapper`).
        pats.push((r"^classifier\.", "classifier.out_proj."));
        pats.push((r"^bert\.pooler\.dense\.", "classifier.dense."));
        pats.push((r"^bert\.", "roberta."));
    }
    let remap = KeyRemapper::from_patterns(pats).expect("static patterns are valid regexes");
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remap)
        .metadata("format", "pt");
    model
        .save_into(&mut store)
        .map_err(|e| store_err(&weights, e))?;
    if let Some(t) = tokenizer {
        std::fs::copy(t, tmp.join("tokenizer.json")).map_err(io(t))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    Ok(())
}
