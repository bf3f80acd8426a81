//! The quantized-model artifact: one safetensors file.
//!
//! Tensors, per layer `L` (OpenPCDet module path):
//! * int8 layers: `L.weight` (I8, PyTorch layout), `L.weight_scale` (F32 `[O]`, per output
//!   channel) and `L.bias` (I32 `[O]` at scale `s_in·s_w` in static mode; F32 in dynamic
//!   mode, where the input scale changes per frame);
//! * fp16 layers: `L.weight`, `L.bias` (and for attention `L.norm.weight`, `L.norm.bias`,
//!   `L.qkv.weight`, `L.qkv.bias`, `L.proj.weight`, `L.proj.bias`) as F16;
//! * fp32 layers: the same names as F32.
//!
//! Header metadata (JSON strings): `format` ([`ARTIFACT_FORMAT`]), `meta` (mode, method,
//! frames, sparse, precision plan, source weights hash, lidarq version), `config` (the
//! model config), `precisions` (layer → precision) and `activations` (tensor →
//! `{scale, zero_point, qmin, qmax}`, static mode) and `input_activations` (per-channel
//! parameters of the decorated point features, folded into the first PFN layer, or null).
//! Loading rebuilds the graph from the
//! config and fills it from the file alone: no float weights of int8 layers are needed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::f16;
use lidarq_quant::{Precision, QuantParams};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::{QuantMeta, QuantizedModel, layer_params_mut, torch_shape};
use crate::config::ModelConfig;
use crate::error::{DetectorError, Result, read_file};
use crate::exec::{ExecSetup, Int8Bias, Int8Weights};
use crate::graph::{Graph, Op};
use crate::weights::WeightStore;

/// The `format` metadata value this version writes and reads.
pub const ARTIFACT_FORMAT: &str = "lidarq-quantized/1";

/// Names and shapes of a layer's float parameters, in [`layer_params_mut`]'s order.
fn param_names(op: &Op) -> Vec<(&'static str, Vec<usize>)> {
    match op {
        Op::Pfn { linear: w, .. } => vec![
            ("weight", torch_shape(w, true)),
            ("bias", vec![w.out_channels]),
        ],
        Op::Conv(c) | Op::Deconv(c) => vec![
            ("weight", torch_shape(&c.weights, false)),
            ("bias", vec![c.weights.out_channels]),
        ],
        Op::Attention(a) => {
            let c = a.norm_weight.len();
            vec![
                ("norm.weight", vec![c]),
                ("norm.bias", vec![c]),
                ("qkv.weight", torch_shape(&a.qkv, true)),
                ("qkv.bias", vec![a.qkv.out_channels]),
                ("proj.weight", torch_shape(&a.proj, true)),
                ("proj.bias", vec![a.proj.out_channels]),
            ]
        }
        Op::Scatter | Op::Concat => Vec::new(),
    }
}

struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn entry<T: Copy, const N: usize>(
    dtype: Dtype,
    shape: Vec<usize>,
    values: &[T],
    to_le: fn(T) -> [u8; N],
) -> Entry {
    Entry {
        dtype,
        shape,
        bytes: values.iter().flat_map(|&v| to_le(v)).collect(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DetectorError::Quantized {
        layer: "<artifact>".into(),
        msg: format!("cannot encode metadata: {e}"),
    })
}

impl QuantizedModel {
    /// The artifact's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: BTreeMap<String, Entry> = BTreeMap::new();
        for (li, layer) in self.graph.layers.iter().enumerate() {
            let name = &layer.name;
            match (self.setup.precisions[li], &self.setup.int8[li]) {
                (Precision::Int8, Some(q)) => {
                    let [(_, shape), _] = &param_names(&layer.op)[..] else {
                        continue;
                    };
                    let o = q.scales.len();
                    tensors.insert(
                        format!("{name}.weight"),
                        entry(Dtype::I8, shape.clone(), &q.weights, i8::to_le_bytes),
                    );
                    tensors.insert(
                        format!("{name}.weight_scale"),
                        entry(Dtype::F32, vec![o], &q.scales, f32::to_le_bytes),
                    );
                    let bias = match &q.bias {
                        Int8Bias::Fixed(b) => entry(Dtype::I32, vec![o], b, i32::to_le_bytes),
                        Int8Bias::Float(b) => entry(Dtype::F32, vec![o], b, f32::to_le_bytes),
                    };
                    tensors.insert(format!("{name}.bias"), bias);
                }
                (Precision::Int8, None) => {}
                (precision, _) => {
                    let mut op = layer.op.clone();
                    for ((suffix, shape), values) in param_names(&layer.op)
                        .into_iter()
                        .zip(layer_params_mut(&mut op))
                    {
                        let e = if precision == Precision::Fp16 {
                            let h: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
                            entry(Dtype::F16, shape, &h, f16::to_le_bytes)
                        } else {
                            entry(Dtype::F32, shape, values, f32::to_le_bytes)
                        };
                        tensors.insert(format!("{name}.{suffix}"), e);
                    }
                }
            }
        }
        let precisions: BTreeMap<&str, Precision> = self
            .graph
            .layers
            .iter()
            .zip(&self.setup.precisions)
            .map(|(l, &p)| (l.name.as_str(), p))
            .collect();
        let activations: BTreeMap<&str, QuantParams> = self
            .graph
            .tensors
            .iter()
            .zip(&self.setup.activations)
            .filter_map(|(t, p)| p.map(|p| (t.name.as_str(), p)))
            .collect();
        let metadata = HashMap::from([
            ("format".to_string(), ARTIFACT_FORMAT.to_string()),
            ("meta".to_string(), json(&self.meta)?),
            ("config".to_string(), json(&self.config)?),
            ("precisions".to_string(), json(&precisions)?),
            ("activations".to_string(), json(&activations)?),
            (
                "input_activations".to_string(),
                json(&self.setup.input_channels)?,
            ),
        ]);
        let views = tensors
            .iter()
            .map(|(k, e)| {
                TensorView::new(e.dtype, e.shape.clone(), &e.bytes).map(|v| (k.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| DetectorError::Quantized {
                layer: "<artifact>".into(),
                msg: format!("bad tensor: {e}"),
            })?;
        safetensors::serialize(views, Some(metadata)).map_err(|e| DetectorError::Quantized {
            layer: "<artifact>".into(),
            msg: format!("cannot serialize: {e}"),
        })
    }

    /// Writes the artifact to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()?).map_err(|source| DetectorError::Io {
            path: path.into(),
            source,
        })
    }

    /// Reads an artifact written by [`Self::save`].
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_bytes(path, &read_file(path)?)
    }

    /// Parses artifact bytes; `path` is only used in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |msg: String| DetectorError::Artifact {
            path: path.into(),
            msg,
        };
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let empty = HashMap::new();
        let md = header.metadata().as_ref().unwrap_or(&empty);
        let field = |key: &str| {
            md.get(key)
                .ok_or_else(|| bad(format!("metadata `{key}` missing")))
        };
        let format = field("format")?;
        if format != ARTIFACT_FORMAT {
            return Err(bad(format!(
                "format `{format}`, expected `{ARTIFACT_FORMAT}`"
            )));
        }
        fn parse<T: serde::de::DeserializeOwned>(
            text: &str,
            key: &str,
            bad: &dyn Fn(String) -> DetectorError,
        ) -> Result<T> {
            serde_json::from_str(text).map_err(|e| bad(format!("metadata `{key}`: {e}")))
        }
        let meta: QuantMeta = parse(field("meta")?, "meta", &bad)?;
        let config: ModelConfig = parse(field("config")?, "config", &bad)?;
        config
            .validate()
            .map_err(|e| bad(format!("metadata `config`: {e}")))?;
        let precisions: BTreeMap<String, Precision> =
            parse(field("precisions")?, "precisions", &bad)?;
        let activations: BTreeMap<String, QuantParams> =
            parse(field("activations")?, "activations", &bad)?;

        let mut graph = Graph::build(&config, &mut WeightStore::from_tensors(path, []));
        let tensor = |name: &str, dtype: Dtype, shape: &[usize]| {
            let view = st
                .tensor(name)
                .map_err(|_| bad(format!("tensor `{name}` missing")))?;
            if view.dtype() != dtype || view.shape() != shape {
                return Err(bad(format!(
                    "tensor `{name}`: expected {dtype:?} {shape:?}, got {:?} {:?}",
                    view.dtype(),
                    view.shape()
                )));
            }
            Ok(view.data().to_vec())
        };
        let words = |b: Vec<u8>| -> Vec<[u8; 4]> {
            b.chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        };
        let mut setup = ExecSetup {
            precisions: Vec::with_capacity(graph.layers.len()),
            int8: Vec::with_capacity(graph.layers.len()),
            activations: graph
                .tensors
                .iter()
                .map(|t| activations.get(&t.name).copied())
                .collect(),
            input_channels: parse(field("input_activations")?, "input_activations", &bad)?,
            dynamic: meta.mode == super::QuantMode::Dynamic,
        };
        for layer in &mut graph.layers {
            let name = layer.name.clone();
            let precision = *precisions
                .get(&name)
                .ok_or_else(|| bad(format!("no precision for layer `{name}`")))?;
            let names = param_names(&layer.op);
            let int8 = match (precision, &names[..]) {
                (Precision::Int8, [(_, shape), _]) => {
                    let o = layer_out_channels(&layer.op);
                    let weights = tensor(&format!("{name}.weight"), Dtype::I8, shape)?
                        .into_iter()
                        .map(|b| b as i8)
                        .collect();
                    let scales = words(tensor(&format!("{name}.weight_scale"), Dtype::F32, &[o])?)
                        .into_iter()
                        .map(f32::from_le_bytes)
                        .collect();
                    let bias_name = format!("{name}.bias");
                    let bias = if setup.dynamic {
                        Int8Bias::Float(
                            words(tensor(&bias_name, Dtype::F32, &[o])?)
                                .into_iter()
                                .map(f32::from_le_bytes)
                                .collect(),
                        )
                    } else {
                        Int8Bias::Fixed(
                            words(tensor(&bias_name, Dtype::I32, &[o])?)
                                .into_iter()
                                .map(i32::from_le_bytes)
                                .collect(),
                        )
                    };
                    layer_params_mut(&mut layer.op)
                        .into_iter()
                        .for_each(Vec::clear);
                    Some(Int8Weights {
                        weights,
                        scales,
                        bias,
                    })
                }
                _ => {
                    for ((suffix, shape), values) in
                        names.into_iter().zip(layer_params_mut(&mut layer.op))
                    {
                        let tname = format!("{name}.{suffix}");
                        *values = if precision == Precision::Fp16 {
                            tensor(&tname, Dtype::F16, &shape)?
                                .chunks_exact(2)
                                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                                .collect()
                        } else {
                            words(tensor(&tname, Dtype::F32, &shape)?)
                                .into_iter()
                                .map(f32::from_le_bytes)
                                .collect()
                        };
                    }
                    None
                }
            };
            setup.precisions.push(precision);
            setup.int8.push(int8);
        }
        Ok(Self {
            config,
            graph,
            setup,
            meta,
        })
    }
}

fn layer_out_channels(op: &Op) -> usize {
    match op {
        Op::Pfn { linear, .. } => linear.out_channels,
        Op::Conv(c) | Op::Deconv(c) => c.weights.out_channels,
        Op::Attention(a) => a.proj.out_channels,
        Op::Scatter | Op::Concat => 0,
    }
}
