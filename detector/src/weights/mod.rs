//! Weights from safetensors files whose tensor names are OpenPCDet's state_dict names.
//!
//! Every lookup states the shape it expects. A failed lookup is recorded and answered with
//! zeros, so that building the whole graph visits every tensor and [`WeightStore::finish`]
//! reports all missing, mis-shaped, wrongly typed and unused tensors in one error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{DetectorError, Result, read_file};

/// State-dict entries that carry no weights and are allowed to go unused
/// (BatchNorm's step counter, OpenPCDet's global step buffer).
const IGNORED_SUFFIXES: [&str; 2] = ["num_batches_tracked", "global_step"];

/// One f32 tensor read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Named tensors plus the bookkeeping of which were used and what went wrong.
#[derive(Debug)]
pub struct WeightStore {
    path: PathBuf,
    tensors: BTreeMap<String, std::result::Result<Tensor, String>>,
    used: BTreeSet<String>,
    problems: Vec<String>,
}

impl WeightStore {
    /// Reads every tensor of a safetensors file (f32; f16/bf16/f64 are widened or narrowed
    /// to f32, anything else is reported as a problem when looked up).
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_bytes(path, &read_file(path)?)
    }

    /// Parses safetensors bytes; `path` is only used in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| DetectorError::WeightsFile {
            path: path.into(),
            msg: format!("not a safetensors file: {e}"),
        })?;
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let t = to_f32(view.dtype(), view.data()).map(|data| Tensor {
                    shape: view.shape().to_vec(),
                    data,
                });
                (name, t)
            })
            .collect();
        Ok(Self {
            path: path.into(),
            tensors,
            used: BTreeSet::new(),
            problems: Vec::new(),
        })
    }

    /// A store over in-memory tensors (tests, converters).
    pub fn from_tensors(path: &Path, tensors: impl IntoIterator<Item = (String, Tensor)>) -> Self {
        let tensors = tensors.into_iter().map(|(k, v)| (k, Ok(v))).collect();
        Self {
            path: path.into(),
            tensors,
            used: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    /// The values of `name`, which must have exactly `shape`. On any mismatch the problem
    /// is recorded and zeros of `shape` are returned.
    pub fn get(&mut self, name: &str, shape: &[usize]) -> Vec<f32> {
        self.used.insert(name.to_string());
        let problem = match self.tensors.get(name) {
            None => format!("{name}: missing (expected shape {shape:?})"),
            Some(Err(msg)) => format!("{name}: {msg}"),
            Some(Ok(t)) if t.shape != shape => {
                format!("{name}: expected shape {shape:?}, got {:?}", t.shape)
            }
            Some(Ok(t)) => return t.data.clone(),
        };
        self.problems.push(problem);
        vec![0.0; shape.iter().product()]
    }

    /// A BatchNorm's tensors under `prefix`, each of `channels` values, in the order
    /// `weight` (γ), `bias` (β), `running_mean`, `running_var`.
    pub fn batch_norm(&mut self, prefix: &str, channels: usize) -> [Vec<f32>; 4] {
        ["weight", "bias", "running_mean", "running_var"]
            .map(|what| self.get(&format!("{prefix}.{what}"), &[channels]))
    }

    /// Records a problem found while using tensor `name` (e.g. a negative variance).
    pub fn report(&mut self, name: &str, msg: &str) {
        self.problems.push(format!("{name}: {msg}"));
    }

    /// Ends loading: an error listing every problem and every tensor nobody asked for.
    pub fn finish(self) -> Result<()> {
        let mut problems = self.problems;
        for name in self.tensors.keys() {
            if !self.used.contains(name) && !IGNORED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                problems.push(format!(
                    "{name}: unexpected tensor (not part of this model)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DetectorError::Weights {
                path: self.path,
                problems,
            })
        }
    }
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let words = |n: usize| bytes.chunks_exact(n);
    Ok(match dtype {
        Dtype::F32 => words(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => words(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::F16 => words(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => words(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => return Err(format!("dtype {other:?} is not a float type")),
    })
}
