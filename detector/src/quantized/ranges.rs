//! Activation ranges given from outside instead of calibrated: what quantization-aware
//! training (`tools/train/qat.py`) learns and exports as `qat_ranges.json`.
//!
//! ```json
//! {"input_channels": [[min, max], ...],            // decorated point features, per channel
//!  "tensors": {"vfe.pfn_layers.0": [min, max], ...}} // output range of each layer, by name
//! ```
//!
//! Each range becomes affine int8 parameters exactly as calibration makes them from an
//! observed range (`QuantParams::from_range`), so the PyTorch fake-quant model and the int8
//! executor quantize with the same scales and zero points.

use std::collections::BTreeMap;
use std::path::Path;

use lidarq_quant::{PrecisionPlan, QuantDtype, QuantParams, Scheme, ThresholdMethod};
use serde::Deserialize;

use super::{QuantMeta, QuantMode, QuantizedModel, weights_hash};
use crate::error::{DetectorError, Result, read_text};
use crate::model::Model;

/// Ranges by layer name, and per channel of the graph input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRanges {
    /// `[min, max]` of each channel of the decorated point features.
    pub input_channels: Vec<[f32; 2]>,
    /// `[min, max]` of each layer's output, by layer name.
    pub tensors: BTreeMap<String, [f32; 2]>,
}

fn affine(range: [f32; 2], what: &str) -> Result<QuantParams> {
    QuantParams::from_range(range[0], range[1], Scheme::Affine, QuantDtype::Int8, false).map_err(
        |e| DetectorError::Quantized {
            layer: what.to_string(),
            msg: e.to_string(),
        },
    )
}

impl ActivationRanges {
    /// Reads `qat_ranges.json`.
    pub fn load(path: &Path) -> Result<Self> {
        serde_json::from_str(&read_text(path)?).map_err(|e| DetectorError::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    }
}

impl QuantizedModel {
    /// A static int8 model of `model` under `plan` with the given activation ranges. Every
    /// layer but the head's must have a range (names that are not layers are errors too),
    /// and the input one per channel.
    pub fn from_ranges(
        model: &Model,
        ranges: &ActivationRanges,
        plan: PrecisionPlan,
    ) -> Result<Self> {
        let graph = &model.graph;
        let mut activations = vec![None; graph.tensors.len()];
        let mut problems = Vec::new();
        // Head outputs are dequantized from the accumulators: they need no range.
        let head = [Some(graph.head.cls), Some(graph.head.boxes), graph.head.dir];
        for layer in &graph.layers {
            match ranges.tensors.get(&layer.name) {
                Some(&r) => activations[layer.output] = Some(affine(r, &layer.name)?),
                None if head.contains(&Some(layer.output)) => {}
                None => problems.push(format!("no range for layer `{}`", layer.name)),
            }
        }
        for name in ranges.tensors.keys() {
            if !graph.layers.iter().any(|l| &l.name == name) {
                problems.push(format!("`{name}` is not a layer of this model"));
            }
        }
        let channels = graph.tensors[graph.input].shape.hwc().2;
        if ranges.input_channels.len() != channels {
            problems.push(format!(
                "{} input channel ranges for {channels} channels",
                ranges.input_channels.len()
            ));
        }
        if !problems.is_empty() {
            return Err(DetectorError::Input(format!(
                "activation ranges: {}",
                problems.join("; ")
            )));
        }
        let input = ranges
            .input_channels
            .iter()
            .enumerate()
            .map(|(c, &r)| affine(r, &format!("input channel {c}")))
            .collect::<Result<Vec<_>>>()?;
        let meta = QuantMeta {
            mode: QuantMode::Static,
            method: ThresholdMethod::Max,
            weight_clip: ThresholdMethod::Max,
            frames: 0,
            sparse: false,
            plan,
            source_hash: weights_hash(graph),
            lidarq_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        Self::from_model(model, activations, Some(input), meta)
    }
}
