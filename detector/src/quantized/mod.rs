//! Quantized models: a graph with a precision per layer, int8 weights and activation
//! parameters, built by calibration ([`calibrate`]) and stored as one safetensors file
//! ([`QuantizedModel::save`], [`QuantizedModel::load`]).
//!
//! Modes: `static` (int8 activations with calibrated parameters), `dynamic` (int8 weights,
//! each int8 layer quantizes its f32 input with that frame's min/max and dequantizes its
//! output) and `fp16` (every layer fp16). fp16 layers hold f16-rounded weights.

mod artifact;
mod calibrate;
mod occupancy;
mod ranges;

use std::fmt;
use std::str::FromStr;

use lidarq_quant::fp16::round_slice_to_f16;
use lidarq_quant::{Precision, PrecisionPlan, QuantParams, ThresholdMethod, quantize_bias};
use serde::{Deserialize, Serialize};

pub use artifact::ARTIFACT_FORMAT;
pub use calibrate::{
    Calibrated, CalibrationOptions, CalibrationReport, Calibrator, LayerReport, Phase, calibrate,
};
pub use ranges::ActivationRanges;

use crate::config::ModelConfig;
use crate::error::{DetectorError, Result};
use crate::exec::{ExecSetup, Int8Bias, Int8Weights};
use crate::graph::{Graph, Op, Weights};
use crate::model::Model;
use crate::post::PostProcessor;

/// How int8 layers get their activation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantMode {
    /// Calibrated, fixed activation parameters; int8 between int8 layers.
    Static,
    /// int8 weights; activations quantized per frame from their min/max. The layer that
    /// reads the raw point features runs in fp16 (their channels' ranges differ by orders
    /// of magnitude; static mode quantizes them per channel instead).
    Dynamic,
    /// Every layer in fp16 (no int8).
    Fp16,
}

impl FromStr for QuantMode {
    type Err = DetectorError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "static" => Ok(Self::Static),
            "dynamic" => Ok(Self::Dynamic),
            "fp16" => Ok(Self::Fp16),
            other => Err(DetectorError::Input(format!(
                "unknown quantization mode `{other}` (static, dynamic or fp16)"
            ))),
        }
    }
}

impl fmt::Display for QuantMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
            Self::Fp16 => "fp16",
        })
    }
}

fn no_weight_clip() -> ThresholdMethod {
    ThresholdMethod::Max
}

/// How a quantized model was made (the artifact's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantMeta {
    /// Quantization mode.
    pub mode: QuantMode,
    /// Threshold method of the activation ranges.
    pub method: ThresholdMethod,
    /// Per-channel clipping of the int8 weights before their scale is set: `Max` keeps
    /// every weight in range; `Percentile` / `Mse` clip outliers (absent in older files).
    #[serde(default = "no_weight_clip")]
    pub weight_clip: ThresholdMethod,
    /// Calibration frames.
    pub frames: usize,
    /// Whether empty BEV cells were masked out of the statistics.
    pub sparse: bool,
    /// The precision plan as given.
    pub plan: PrecisionPlan,
    /// FNV-1a 64 (hex) of the source model's folded weights ([`weights_hash`]).
    pub source_hash: String,
    /// lidarq version that wrote it.
    pub lidarq_version: String,
}

/// A model ready for the quantized executor: config, graph (float weights only for fp16
/// and fp32 layers), per-layer precisions, int8 weights and activation parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedModel {
    /// The model config.
    pub config: ModelConfig,
    /// The layer graph; int8 layers' float weights are empty.
    pub graph: Graph,
    /// Precisions, int8 weights and activation parameters.
    pub setup: ExecSetup,
    /// Provenance.
    pub meta: QuantMeta,
}

/// The weight sets of a layer: `(tensor-name suffix, weights, PyTorch linear layout)`.
pub(crate) fn layer_weights(op: &Op) -> Vec<(&'static str, &Weights, bool)> {
    match op {
        Op::Pfn { linear, .. } => vec![("", linear, true)],
        Op::Conv(c) | Op::Deconv(c) => vec![("", &c.weights, false)],
        Op::Attention(a) => vec![("qkv.", &a.qkv, true), ("proj.", &a.proj, true)],
        Op::Scatter | Op::Concat => Vec::new(),
    }
}

/// Number of float parameters (weights, biases, norms) of a layer.
pub fn layer_weights_len(op: &Op) -> usize {
    let mut op = op.clone();
    layer_params_mut(&mut op).iter().map(|v| v.len()).sum()
}

/// Mutable access to every float parameter of a layer (weights, biases, norms).
fn layer_params_mut(op: &mut Op) -> Vec<&mut Vec<f32>> {
    match op {
        Op::Pfn { linear: w, .. } => vec![&mut w.data, &mut w.bias],
        Op::Conv(c) | Op::Deconv(c) => vec![&mut c.weights.data, &mut c.weights.bias],
        Op::Attention(a) => vec![
            &mut a.norm_weight,
            &mut a.norm_bias,
            &mut a.qkv.data,
            &mut a.qkv.bias,
            &mut a.proj.data,
            &mut a.proj.bias,
        ],
        Op::Scatter | Op::Concat => Vec::new(),
    }
}

/// PyTorch shape of a weight tensor.
pub(crate) fn torch_shape(w: &Weights, linear: bool) -> Vec<usize> {
    let (o, i, k) = (w.out_channels, w.in_channels, w.kernel);
    match (linear, w.transposed) {
        (true, _) => vec![o, i],
        (false, true) => vec![i, o, k, k],
        (false, false) => vec![o, i, k, k],
    }
}

/// Stable FNV-1a 64 (hex) of every folded weight, bias and norm parameter, in layer
/// order: identifies the float model a quantized one came from.
pub fn weights_hash(graph: &Graph) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut graph = graph.clone();
    for layer in &mut graph.layers {
        for values in layer_params_mut(&mut layer.op) {
            for v in values.iter() {
                for b in v.to_bits().to_le_bytes() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
    }
    format!("{h:016x}")
}

/// Per-output-channel int8 quantization of `w` (transposed weights are permuted to
/// output-major for the scales and back to IOHW for the kernel).
fn quantize_layer_weights(
    w: &Weights,
    clip: ThresholdMethod,
    layer: &str,
) -> Result<(Vec<i8>, Vec<f32>)> {
    let (o, i, kk) = (w.out_channels, w.in_channels, w.kernel * w.kernel);
    let iohw_index = |oc: usize, ic: usize, t: usize| (ic * o + oc) * kk + t;
    let out_major: Vec<f32> = if w.transposed {
        (0..o)
            .flat_map(|oc| (0..i).flat_map(move |ic| (0..kk).map(move |t| (oc, ic, t))))
            .map(|(oc, ic, t)| w.data[iohw_index(oc, ic, t)])
            .collect()
    } else {
        w.data.clone()
    };
    let q = lidarq_quant::quantize_weights(&out_major, &[o, i * kk], clip, false)
        .map_err(crate::exec::kernel_err(layer))?;
    let scales = (0..o).map(|c| q.granularity().channel(c).scale).collect();
    let values: Vec<i8> = q.values().iter().map(|&v| v as i8).collect();
    if !w.transposed {
        return Ok((values, scales));
    }
    let mut iohw = vec![0i8; values.len()];
    for oc in 0..o {
        for ic in 0..i {
            for t in 0..kk {
                iohw[iohw_index(oc, ic, t)] = values[(oc * i + ic) * kk + t];
            }
        }
    }
    Ok((iohw, scales))
}

impl QuantizedModel {
    /// Quantizes `model` for `meta.mode` and `meta.plan`: int8 layers get per-channel
    /// int8 weights (and, in static mode, i32 biases at `s_in·s_w`), fp16 layers
    /// f16-rounded weights; `activations` holds one entry per graph tensor (required for
    /// every tensor a static int8 layer reads or writes).
    ///
    /// `input_channels` (static mode): per-channel parameters of the graph input, folded
    /// into the first layer ([`crate::exec::ExecSetup::input_channels`]).
    pub fn from_model(
        model: &Model,
        activations: Vec<Option<QuantParams>>,
        input_channels: Option<Vec<QuantParams>>,
        meta: QuantMeta,
    ) -> Result<Self> {
        let graph = &model.graph;
        let precisions = resolve_precisions(graph, &meta)?;
        let dynamic = meta.mode == QuantMode::Dynamic;
        let mut out = graph.clone();
        let mut int8 = Vec::with_capacity(graph.layers.len());
        for (layer, &precision) in out.layers.iter_mut().zip(&precisions) {
            let name = layer.name.as_str();
            let weights = layer_weights(&layer.op);
            let q = match (precision, weights.as_slice()) {
                (Precision::Int8, [(_, w, _)]) => {
                    let folded = input_channels
                        .as_deref()
                        .filter(|_| !dynamic && layer.inputs[0] == graph.input);
                    let (values, scales) = match folded {
                        Some(ps) => {
                            quantize_layer_weights(&scale_inputs(w, ps), meta.weight_clip, name)?
                        }
                        None => quantize_layer_weights(w, meta.weight_clip, name)?,
                    };
                    let bias = if dynamic {
                        Int8Bias::Float(w.bias.clone())
                    } else if let Some(ps) = folded {
                        let b = quantize_bias(&w.bias, 1.0, &scales)
                            .map_err(crate::exec::kernel_err(name))?;
                        Int8Bias::Fixed(zero_point_corrected(w, &values, ps, b))
                    } else {
                        let input = activations[layer.inputs[0]].ok_or_else(|| {
                            DetectorError::Quantized {
                                layer: name.into(),
                                msg: "no activation parameters for the input".into(),
                            }
                        })?;
                        Int8Bias::Fixed(
                            quantize_bias(&w.bias, input.scale, &scales)
                                .map_err(crate::exec::kernel_err(name))?,
                        )
                    };
                    Some(Int8Weights {
                        weights: values,
                        scales,
                        bias,
                    })
                }
                _ => None,
            };
            match precision {
                Precision::Int8 => layer_params_mut(&mut layer.op)
                    .into_iter()
                    .for_each(Vec::clear),
                Precision::Fp16 => layer_params_mut(&mut layer.op)
                    .into_iter()
                    .for_each(|v| round_slice_to_f16(v)),
                Precision::Fp32 => {}
            }
            int8.push(q);
        }
        Ok(Self {
            config: model.config.clone(),
            graph: out,
            setup: ExecSetup {
                precisions,
                int8,
                activations,
                input_channels: input_channels.filter(|_| !dynamic),
                dynamic,
            },
            meta,
        })
    }

    /// The post-processor of the config.
    pub fn post(&self) -> PostProcessor {
        PostProcessor::new(&self.config)
    }
}

/// `w` with input channel `j` scaled by `ps[j].scale` (a convolution reading
/// per-channel-quantized input: `Σ_j w_j·s_j·(q_j − zp_j)`).
fn scale_inputs(w: &Weights, ps: &[QuantParams]) -> Weights {
    let kk = w.kernel * w.kernel;
    let mut out = w.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        *v *= ps[(i / kk) % w.in_channels].scale;
    }
    out
}

/// The i32 bias of a layer reading per-channel-quantized input with zero points
/// `ps[j].zero_point` through a kernel built for zero point 0:
/// `b[o] − Σ_j q_w[o, j]·zp_j`, exact in integers (saturated to i32).
fn zero_point_corrected(w: &Weights, q: &[i8], ps: &[QuantParams], bias: Vec<i32>) -> Vec<i32> {
    let per_out = w.in_channels * w.kernel * w.kernel;
    let kk = w.kernel * w.kernel;
    bias.iter()
        .zip(q.chunks_exact(per_out))
        .map(|(&b, row)| {
            let shift: i64 = row
                .iter()
                .enumerate()
                .map(|(i, &qw)| i64::from(qw) * i64::from(ps[i / kk].zero_point))
                .sum();
            (i64::from(b) - shift).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
        })
        .collect()
}

/// Layer precisions of `meta.plan` (all fp16 in fp16 mode).
fn resolve_precisions(graph: &Graph, meta: &QuantMeta) -> Result<Vec<Precision>> {
    if meta.mode == QuantMode::Fp16 {
        return Ok(vec![Precision::Fp16; graph.layers.len()]);
    }
    let names: Vec<&str> = graph.layers.iter().map(|l| l.name.as_str()).collect();
    let precisions = meta
        .plan
        .resolve(&names)
        .map_err(|e| DetectorError::Quantized {
            layer: "<plan>".into(),
            msg: e.to_string(),
        })?;
    let mut precisions = precisions;
    for (layer, p) in graph.layers.iter().zip(precisions.iter_mut()) {
        // A per-frame, per-tensor range cannot serve the raw point features (metres beside
        // centimetre offsets: -2.3 mAP on the demo model); static mode folds per-channel
        // scales into the first layer instead, dynamic mode runs it in fp16.
        if meta.mode == QuantMode::Dynamic
            && layer.inputs.contains(&graph.input)
            && *p == Precision::Int8
        {
            *p = Precision::Fp16;
        }
        if matches!(layer.op, Op::Attention(_)) && *p == Precision::Int8 {
            return Err(DetectorError::Quantized {
                layer: layer.name.clone(),
                msg: "attention runs in fp16 or fp32 only (set it in the precision plan)".into(),
            });
        }
    }
    Ok(precisions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lidarq_quant::kernels::{ConvShape, OutputStage, PackedConvF32, PackedConvI8};
    use lidarq_quant::{Requantizer, compare};

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i.wrapping_add(seed)).wrapping_mul(2_654_435_761) >> 8;
                (h % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn weight_clipping_narrows_the_scale_of_a_channel_with_an_outlier() {
        // Two output channels of 1000 weights in [-1, 1); channel 1 has one weight of 20.
        let mut data = values(2000, 3);
        data[1500] = 20.0;
        let weights = Weights {
            out_channels: 2,
            in_channels: 1000,
            kernel: 1,
            transposed: false,
            data,
            bias: vec![0.0; 2],
        };
        let (_, full) = quantize_layer_weights(&weights, ThresholdMethod::Max, "fc").unwrap();
        assert_eq!(full[1], 20.0 / 127.0);
        let (q, clipped) =
            quantize_layer_weights(&weights, ThresholdMethod::Percentile(99.0), "fc").unwrap();
        // The outlier saturates; the other 999 weights get a scale near 1/127.
        assert!(clipped[1] < 1.1 / 127.0, "{}", clipped[1]);
        assert_eq!(q[1500], 127);
        assert!(clipped[0] <= full[0]);
        // MSE keeps a lone outlier this large (clipping it costs 19² against the rounding
        // error of 999 weights at a 20/127 step, ≈ 2), and never widens a scale.
        let (_, mse) = quantize_layer_weights(&weights, ThresholdMethod::Mse, "fc").unwrap();
        assert!(mse[1] > 19.0 / 127.0 && mse[1] <= full[1], "{}", mse[1]);
    }

    #[test]
    fn int8_deconv_matches_the_float_deconv() {
        // ConvTranspose2d 5 → 3 channels, kernel = stride = 2, on a 3×4 map, IOHW weights.
        let (ic, oc, s, h, w) = (5, 3, 2, 3, 4);
        let weights = Weights {
            out_channels: oc,
            in_channels: ic,
            kernel: s,
            transposed: true,
            data: values(ic * oc * s * s, 1),
            bias: vec![0.1, -0.05, 0.2],
        };
        let (qw, scales) =
            quantize_layer_weights(&weights, ThresholdMethod::Max, "deconv").unwrap();
        // The per-channel scales follow the output channel of the IOHW layout: each weight
        // dequantizes to within half a step of its own channel's scale.
        let dequantized: Vec<f32> = (0..qw.len())
            .map(|i| {
                let o = (i / (s * s)) % oc;
                f32::from(qw[i]) * scales[o]
            })
            .collect();
        for (i, (&d, &f)) in dequantized.iter().zip(&weights.data).enumerate() {
            let o = (i / (s * s)) % oc;
            assert!((d - f).abs() <= scales[o] * 0.5 + 1e-7, "weight {i}");
        }
        let x: Vec<f32> = values(h * w * ic, 7)
            .iter()
            .map(|v| v.abs() * 2.0)
            .collect();
        let xp = crate::exec::activation_params(0.0, 2.0).unwrap();
        let qx: Vec<i8> = x.iter().map(|&v| xp.quantize(v) as i8).collect();
        let fake_x: Vec<f32> = qx.iter().map(|&q| xp.dequantize(i32::from(q))).collect();
        let shape = ConvShape::deconv(h, w, ic, oc, s);
        // Float deconv of the same (fake-quantized) values.
        let float = PackedConvF32::new(shape, &dequantized, Some(&weights.bias), true).unwrap();
        let mut want = vec![0.0; shape.output_len()];
        float.run(&fake_x, &mut want).unwrap();
        let yp = crate::exec::activation_params(0.0, 4.0).unwrap();
        let bias = quantize_bias(&weights.bias, xp.scale, &scales).unwrap();
        let r = Requantizer::from_scales(xp.scale, &scales, &yp, bias, true, false).unwrap();
        let int8 =
            PackedConvI8::new(shape, &qw, xp.zero_point, OutputStage::Requantize(r)).unwrap();
        let mut got = vec![0i8; shape.output_len()];
        int8.run(&qx, &mut got).unwrap();
        // Exact integer accumulation: only the output rounding (half a step) and the bias
        // rounding (half of s_x·s_w, far smaller) separate the two.
        for (i, (&g, &f)) in got.iter().zip(&want).enumerate() {
            let g = yp.dequantize(i32::from(g));
            assert!(
                (g - f).abs() <= yp.scale * 0.5 + 1e-4,
                "output {i}: {g} vs {f}"
            );
        }
        // And against the float deconv of the float values: 8-bit noise, no layout error.
        let exact = PackedConvF32::new(shape, &weights.data, Some(&weights.bias), true).unwrap();
        let mut reference = vec![0.0; shape.output_len()];
        exact.run(&x, &mut reference).unwrap();
        let deq: Vec<f32> = got.iter().map(|&q| yp.dequantize(i32::from(q))).collect();
        let m = compare(&reference, &deq).unwrap();
        assert!(m.sqnr_db > 30.0, "SQNR {} dB", m.sqnr_db);
    }
}
