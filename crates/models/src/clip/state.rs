//! Reading a checkpoint's tensors by name, for the CLIP loaders.
//!
//! CLIP checkpoints come in layouts that do not map one-to-one onto module paths (open_clip
//! fuses q/k/v into `in_proj_weight`, stores `proj` as `[in, out]` while every Linear is
//! `[out, in]`, and full CLIP files carry the text tower next to the image tower), so the
//! loaders pull tensors by name, check each shape against the module being filled, and at the
//! end insist that every tensor of the subtree was used. A wrong checkpoint therefore fails with
//! the tensor's name and the file, not with a silently half-initialised model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use crate::ModelError;

/// The float tensors of one safetensors file (F32, F16 and BF16 are widened to f32). Integer
/// buffers (`num_batches_tracked`, `position_ids`) are recorded by name only.
#[derive(Debug, Clone)]
pub struct StateDict {
    path: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    buffers: BTreeSet<String>,
    used: BTreeSet<String>,
}

impl StateDict {
    /// Reads every tensor of a safetensors file.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ModelError::Missing {
                    path: path.to_path_buf(),
                    what: "CLIP weights (a .safetensors file)",
                }
            } else {
                ModelError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let corrupt = |msg: String| ModelError::CorruptWeights {
            path: path.to_path_buf(),
            msg,
        };
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        let mut buffers = BTreeSet::new();
        for (name, view) in st.tensors() {
            use safetensors::Dtype;
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::F16 => data
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => data
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                _ => {
                    buffers.insert(name);
                    continue;
                }
            };
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
            buffers,
            used: BTreeSet::new(),
        })
    }

    /// Builds a state dict from named host tensors (tests, and converters writing round trips).
    pub fn from_tensors(
        path: impl Into<PathBuf>,
        tensors: impl IntoIterator<Item = (String, Vec<usize>, Vec<f32>)>,
    ) -> Self {
        Self {
            path: path.into(),
            tensors: tensors.into_iter().map(|(n, s, v)| (n, (s, v))).collect(),
            buffers: BTreeSet::new(),
            used: BTreeSet::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(s, _)| s.as_slice())
    }

    /// The tensor `name`, which must have exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        match self.tensors.get(name) {
            None => Err(ModelError::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
                hint: "the checkpoint is not in the layout this loader reads (open_clip/OpenAI \
                       `visual.*` or HF CLIPVisionModel), or belongs to another architecture"
                    .into(),
            }),
            Some((s, _)) if s.as_slice() != shape => Err(ModelError::ShapeMismatch {
                path: self.path.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: s.clone(),
            }),
            Some((_, v)) => {
                self.used.insert(name.to_string());
                Ok(v.clone())
            }
        }
    }

    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>, ModelError> {
        let v = self.take(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(v, shape), device))
    }

    /// A PyTorch `[out, in]` Linear weight (plus bias when the module has one) into burn's
    /// `[in, out]` layout.
    pub fn linear(&mut self, l: &mut Linear, prefix: &str) -> Result<(), ModelError> {
        let [i, o] = l.weight.dims();
        let w = self.take(&format!("{prefix}.weight"), &[o, i])?;
        l.weight = Param::from_tensor(transposed(&w, o, i, &l.weight.device()));
        if l.bias.is_some() {
            let b = self.tensor(&format!("{prefix}.bias"), [o], &l.weight.device())?;
            l.bias = Some(Param::from_tensor(b));
        }
        Ok(())
    }

    pub fn conv2d(&mut self, c: &mut Conv2d, prefix: &str) -> Result<(), ModelError> {
        let dims = c.weight.dims();
        let d = c.weight.device();
        c.weight = Param::from_tensor(self.tensor(&format!("{prefix}.weight"), dims, &d)?);
        if c.bias.is_some() {
            let b = self.tensor(&format!("{prefix}.bias"), [dims[0]], &d)?;
            c.bias = Some(Param::from_tensor(b));
        }
        Ok(())
    }

    pub fn layer_norm(&mut self, ln: &mut LayerNorm, prefix: &str) -> Result<(), ModelError> {
        let [n] = ln.gamma.dims();
        let d = ln.gamma.device();
        ln.gamma = Param::from_tensor(self.tensor(&format!("{prefix}.weight"), [n], &d)?);
        ln.beta = Some(Param::from_tensor(self.tensor(
            &format!("{prefix}.bias"),
            [n],
            &d,
        )?));
        Ok(())
    }

    pub fn batch_norm(&mut self, bn: &mut BatchNorm, prefix: &str) -> Result<(), ModelError> {
        use burn::module::RunningState;
        let [n] = bn.gamma.dims();
        let d = bn.gamma.device();
        bn.gamma = Param::from_tensor(self.tensor(&format!("{prefix}.weight"), [n], &d)?);
        bn.beta = Param::from_tensor(self.tensor(&format!("{prefix}.bias"), [n], &d)?);
        bn.running_mean =
            RunningState::new(self.tensor(&format!("{prefix}.running_mean"), [n], &d)?);
        bn.running_var =
            RunningState::new(self.tensor(&format!("{prefix}.running_var"), [n], &d)?);
        Ok(())
    }

    /// Errors on any float tensor under `prefix` that no loader consumed: a checkpoint with more
    /// blocks or extra modules than the config says is a different model.
    pub fn finish(&self, prefix: &str) -> Result<(), ModelError> {
        let unused: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix) && !self.used.contains(*k))
            .collect();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(ModelError::Invalid(format!(
                "{}: tensor `{first}` ({} unused in all) is not part of the configured model; \
                 the config (layers, width, patch size) does not match the checkpoint",
                self.path.display(),
                unused.len()
            ))),
        }
    }

    /// Names of integer buffers seen (ignored by the loaders).
    pub fn buffers(&self) -> impl Iterator<Item = &str> {
        self.buffers.iter().map(String::as_str)
    }
}

/// `[rows, cols]` row-major host data transposed into a `[cols, rows]` tensor.
pub(crate) fn transposed(v: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let mut t = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    Tensor::from_data(TensorData::new(t, [cols, rows]), device)
}
