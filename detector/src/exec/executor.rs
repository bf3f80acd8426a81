//! The executor of a [`Graph`] with one precision per layer.
//!
//! Every tensor lives in one of two domains: f32, or int8 with the tensor's activation
//! parameters (affine, per tensor). A layer reads its inputs and writes its output in the
//! domain of its precision:
//!
//! | layer | int8 (static) | int8 (dynamic) | fp16 / fp32 |
//! |---|---|---|---|
//! | PFN | i8 linear, fused requantize + ReLU, max over points in i8 | f32 in, per-frame quantized GEMM, f32 out | f32 |
//! | scatter | i8 map, empty cells hold the zero point | f32 | f32 |
//! | conv / deconv | i8 → i8, fused requantize + ReLU | as PFN | f32 |
//! | head conv | i8 → dequantized f32 | as PFN | f32 |
//! | concat | i8, inputs requantized to the output's parameters | f32 | f32 |
//! | attention | (not supported) | (not supported) | f32 |
//!
//! Wherever a tensor is produced in one domain and read in the other, a quantize or
//! dequantize step runs right after its producer (the "boundary"). fp16 layers compute in
//! f32 on f16-rounded weights, round their input on entry and their output on exit.
//! All inner loops of int8 layers are integer-only; every value is computed by one task in
//! a fixed order, so outputs are bit-identical whatever the thread count.

use lidarq_quant::fp16::round_slice_to_f16;
use lidarq_quant::kernels::{
    ConvShape, OutputStage, PackedConvF32, PackedConvI8, Quantizer, cpu, quantize_i8,
};
use lidarq_quant::{
    Dequantizer, Precision, QuantDtype, QuantParams, Requantizer, Scheme, quantize_bias,
};
use rayon::prelude::*;

use super::attention::{WindowOrder, layer_norm_windowed, residual_from_windows, window_attention};
use super::pillars::{PillarInput, PillarRows, scatter};
use super::plan::BufferPlan;
use super::sparse::{self, EmptyCells};
use crate::error::{DetectorError, Result};
use crate::graph::{Graph, HeadTensors, LN_EPS, Op, TensorId, Weights};
use crate::post::HeadView;

/// Values per rayon task of the element-wise conversions.
const CONVERT_CHUNK: usize = 1 << 15;

/// The int8 form of one layer's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Weights {
    /// Symmetric int8 weights in the layer's PyTorch layout (OIHW; IOHW for a transposed
    /// convolution; `[O, I]` for a linear layer).
    pub weights: Vec<i8>,
    /// One scale per output channel.
    pub scales: Vec<f32>,
    /// The bias.
    pub bias: Int8Bias,
}

/// Bias of an int8 layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Int8Bias {
    /// Static quantization: `round(b / (s_in · s_w[c]))`, fixed by the calibrated input scale.
    Fixed(Vec<i32>),
    /// Dynamic quantization: the float bias, quantized per frame with that frame's input scale.
    Float(Vec<f32>),
}

/// What the executor needs besides the graph: per-layer precision, int8 weights of int8
/// layers, activation parameters of every tensor an int8 layer reads or writes (static
/// mode), and whether int8 layers quantize their inputs per frame (dynamic mode).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecSetup {
    /// One per graph layer.
    pub precisions: Vec<Precision>,
    /// One per graph layer; `Some` for int8 layers with weights.
    pub int8: Vec<Option<Int8Weights>>,
    /// One per graph tensor.
    pub activations: Vec<Option<QuantParams>>,
    /// Per-channel affine parameters of the graph input (decorated point features, whose
    /// channels span metres to centimetres), when its first reader is a static int8 layer.
    /// Their scales and zero points are folded into that layer's int8 weights and bias
    /// ([`unit_input`]), so its kernel sees integers of scale 1 and zero point 0.
    pub input_channels: Option<Vec<QuantParams>>,
    /// Dynamic-range quantization (activations quantized per frame, f32 between layers).
    pub dynamic: bool,
}

impl ExecSetup {
    /// Everything in fp32.
    pub fn fp32(graph: &Graph) -> Self {
        Self {
            precisions: vec![Precision::Fp32; graph.layers.len()],
            int8: vec![None; graph.layers.len()],
            activations: vec![None; graph.tensors.len()],
            input_channels: None,
            dynamic: false,
        }
    }
}

/// One layer's output as the executor holds it.
#[derive(Debug, Clone, Copy)]
pub enum Activation<'a> {
    /// Float values.
    F32(&'a [f32]),
    /// int8 values and their parameters.
    I8 {
        /// The integers.
        values: &'a [i8],
        /// `real = scale · (q − zero_point)`.
        params: QuantParams,
    },
}

impl Activation<'_> {
    /// The real values (dequantized for int8), appended to `out` after clearing it.
    pub fn to_f32(&self, out: &mut Vec<f32>) {
        out.clear();
        match *self {
            Activation::F32(v) => out.extend_from_slice(v),
            Activation::I8 { values, params } => {
                out.resize(values.len(), 0.0);
                dequantize_into(values, &params, out);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    F32,
    I8,
}

/// A GEMM-shaped layer (PFN linear, conv, deconv, attention projection).
enum Gemm {
    F32(PackedConvF32),
    /// Static int8: i8 in, i8 (requantized) or f32 (dequantized) out.
    I8(PackedConvI8),
    Dynamic(Box<DynamicGemm>),
}

/// Dynamic int8: the input is quantized with this frame's range, the layer is packed for
/// that zero point and dequantizes to f32 (ReLU applied after).
struct DynamicGemm {
    shape: ConvShape,
    weights: Vec<i8>,
    scales: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
}

enum Kernel {
    Pfn {
        linear: Gemm,
        out: usize,
        last: bool,
    },
    Scatter {
        nx: usize,
        channels: usize,
    },
    Conv(Gemm),
    /// One of the head's 1×1 convolutions, which read one map and are run as one layer
    /// (the map is read once, and 18 + 42 + 12 output channels fill 5 micro-kernel
    /// panels instead of 6): the first head step runs `fused` (all heads' channels,
    /// `total`), and each copies out its `channels` from `at`.
    Head {
        fused: Option<Box<Gemm>>,
        at: usize,
        channels: usize,
        total: usize,
    },
    /// `requant[i]`: input `i`'s values at the output's parameters, by input byte (int8
    /// only, when the parameters differ).
    Concat {
        channels: Vec<usize>,
        requant: Vec<Option<ByteMap>>,
    },
    Attention(Box<AttentionKernel>),
}

struct AttentionKernel {
    order: WindowOrder,
    /// The order of a map of one full window (the first window's size): the map on which
    /// the block's output for empty windows is computed.
    window: WindowOrder,
    norm_weight: Vec<f32>,
    norm_bias: Vec<f32>,
    qkv: PackedConvF32,
    proj: PackedConvF32,
    heads: usize,
}

/// Intermediate rows of the attention block, in window order.
#[derive(Default)]
struct AttentionBuffers {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
}

impl AttentionKernel {
    /// `x + proj(attention(LN(x)))` of the map `x` (`[HW, C]`, cells in `order`).
    fn run(
        &self,
        order: &WindowOrder,
        x: &[f32],
        b: &mut AttentionBuffers,
        out: &mut [f32],
    ) -> std::result::Result<(), lidarq_quant::QuantError> {
        let c = self.norm_weight.len();
        let n = order.cells.len();
        b.normed.resize(n * c, 0.0);
        b.qkv.resize(n * 3 * c, 0.0);
        b.attended.resize(n * c, 0.0);
        b.projected.resize(n * c, 0.0);
        layer_norm_windowed(
            x,
            order,
            &self.norm_weight,
            &self.norm_bias,
            LN_EPS,
            &mut b.normed,
        );
        self.qkv.run_at(n, 1, &b.normed, &mut b.qkv)?;
        window_attention(&b.qkv, order, c, self.heads, &mut b.attended);
        self.proj.run_at(n, 1, &b.attended, &mut b.projected)?;
        residual_from_windows(x, &b.projected, order, c, out);
        Ok(())
    }

    /// The empty cells of the block's output: a window is empty when it is full-sized and
    /// all its cells are empty in the input (its tokens are then all the input's constant,
    /// and so are its outputs; edge windows attend over fewer tokens, a different sum).
    /// `fp16`: the step rounds its input and output to f16.
    fn empty_cells(
        &self,
        input: &EmptyCells<f32>,
        fp16: bool,
    ) -> std::result::Result<Option<EmptyCells<f32>>, lidarq_quant::QuantError> {
        if input.period != 1 {
            return Ok(None);
        }
        let c = self.norm_weight.len();
        let full = self.window.cells.len();
        let mut active = vec![false; input.active.len()];
        for win in self.order.offsets.windows(2) {
            let cells = &self.order.cells[win[0]..win[1]];
            if cells.len() != full || cells.iter().any(|&i| input.active[i]) {
                cells.iter().for_each(|&i| active[i] = true);
            }
        }
        let mut x: Vec<f32> = input.tile.iter().copied().cycle().take(full * c).collect();
        if fp16 {
            round_slice_to_f16(&mut x);
        }
        let mut y = vec![0.0; full * c];
        self.run(&self.window, &x, &mut AttentionBuffers::default(), &mut y)?;
        y.truncate(c);
        if fp16 {
            round_slice_to_f16(&mut y);
        }
        Ok(Some(EmptyCells {
            active,
            period: 1,
            tile: y,
        }))
    }
}

/// A domain change right after a tensor is produced.
#[derive(Debug, Clone)]
enum Conversion {
    Quantize(Quantizer),
    /// `[rows, C]` values, channel `j` with its own parameters.
    QuantizePerChannel(Quantizer),
    Dequantize(QuantParams),
}

/// The parameters a layer reading per-channel-quantized graph input is built with: the
/// per-channel scales and zero points live in its weights and bias.
pub fn unit_input() -> QuantParams {
    QuantParams {
        scale: 1.0,
        zero_point: 0,
        qmin: -128,
        qmax: 127,
    }
}

struct Step {
    name: String,
    inputs: Vec<TensorId>,
    output: TensorId,
    kernel: Kernel,
    /// Domain of inputs and output.
    domain: Domain,
    /// Output parameters in the int8 domain.
    out_params: Option<QuantParams>,
    fp16: bool,
    convert: Vec<Conversion>,
}

/// Per-frame scratch that is not a graph tensor.
#[derive(Default)]
struct Scratch {
    rows: PillarRows,
    /// Cells the scatter wrote last frame.
    scattered: Vec<usize>,
    linear: Vec<f32>,
    max: Vec<f32>,
    linear_i8: Vec<i8>,
    max_i8: Vec<i8>,
    dynamic_in: Vec<i8>,
    half_in: Vec<f32>,
    attention: AttentionBuffers,
    /// The fused head's output (all heads' channels) and its (computed, total) cells.
    head: Buffer,
    head_cells: (usize, usize),
    /// Per graph tensor: the empty cells of its int8 / f32 map, when known (see [`sparse`]).
    empty_i8: Vec<Option<EmptyCells<i8>>>,
    empty_f32: Vec<Option<EmptyCells<f32>>>,
    /// Per conv step of the last frame: output cells computed and in the map.
    cells: Vec<(usize, usize)>,
}

/// One reusable buffer in both domains (each sized only if used).
#[derive(Default)]
struct Buffer {
    f32: Vec<f32>,
    i8: Vec<i8>,
}

/// Runs a [`Graph`] with a precision per layer (see the module docs).
pub struct Executor {
    steps: Vec<Step>,
    plan: BufferPlan,
    buffers: Vec<Buffer>,
    scratch: Scratch,
    input: TensorId,
    input_convert: Vec<Conversion>,
    input_channels: usize,
    grid: (usize, usize),
    head: HeadTensors,
    skip_empty: bool,
}

/// The work of one convolution step in the last frame run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellWork {
    /// Layer name.
    pub layer: String,
    /// Output cells the kernel computed (the others took the layer's empty-cell constant).
    pub computed: usize,
    /// Output cells of the map.
    pub total: usize,
}

pub(crate) fn kernel_err(layer: &str) -> impl Fn(lidarq_quant::QuantError) -> DetectorError + '_ {
    move |source| DetectorError::Kernel {
        layer: layer.to_string(),
        source,
    }
}

fn setup_err(layer: &str, msg: impl Into<String>) -> DetectorError {
    DetectorError::Quantized {
        layer: layer.to_string(),
        msg: msg.into(),
    }
}

fn linear_f32(w: &Weights, relu: bool, layer: &str) -> Result<PackedConvF32> {
    PackedConvF32::new(
        ConvShape::linear(1, w.in_channels, w.out_channels),
        &w.data,
        Some(&w.bias),
        relu,
    )
    .map_err(kernel_err(layer))
}

/// The head's 1×1 convolutions when two or more of them can run as one layer (same input,
/// precision, ReLU and kind of int8 bias), in layer order; otherwise none.
fn head_group(graph: &Graph, setup: &ExecSetup) -> Vec<usize> {
    let head = [Some(graph.head.cls), Some(graph.head.boxes), graph.head.dir];
    let pointwise = |op: &Op| match op {
        Op::Conv(c) => {
            c.weights.kernel == 1 && c.stride == 1 && c.pad == 0 && !c.weights.transposed
        }
        _ => false,
    };
    let members: Vec<usize> = (0..graph.layers.len())
        .filter(|&i| {
            let l = &graph.layers[i];
            head.contains(&Some(l.output)) && l.inputs.len() == 1 && pointwise(&l.op)
        })
        .collect();
    let key = |i: usize| {
        let relu = matches!(&graph.layers[i].op, Op::Conv(c) if c.relu);
        let bias = setup.int8[i]
            .as_ref()
            .map(|q| matches!(q.bias, Int8Bias::Fixed(_)));
        (graph.layers[i].inputs[0], setup.precisions[i], relu, bias)
    };
    match members.first() {
        Some(&first) if members.len() > 1 && members.iter().all(|&i| key(i) == key(first)) => {
            members
        }
        _ => Vec::new(),
    }
}

/// The one layer computing every member of `group`: weights, biases and int8 scales
/// concatenated along the output channels (the order of the group).
fn fuse_head(graph: &Graph, setup: &ExecSetup, group: &[usize]) -> Result<Option<Gemm>> {
    let Some(&first) = group.first() else {
        return Ok(None);
    };
    let convs: Vec<&crate::graph::Conv> = group
        .iter()
        .filter_map(|&i| match &graph.layers[i].op {
            Op::Conv(c) => Some(c),
            _ => None,
        })
        .collect();
    let weights = Weights {
        out_channels: convs.iter().map(|c| c.weights.out_channels).sum(),
        in_channels: convs[0].weights.in_channels,
        kernel: 1,
        transposed: false,
        data: convs
            .iter()
            .flat_map(|c| c.weights.data.iter().copied())
            .collect(),
        bias: convs
            .iter()
            .flat_map(|c| c.weights.bias.iter().copied())
            .collect(),
    };
    let int8 = group
        .iter()
        .map(|&i| setup.int8[i].as_ref())
        .collect::<Option<Vec<_>>>()
        .map(|qs| Int8Weights {
            weights: qs.iter().flat_map(|q| q.weights.iter().copied()).collect(),
            scales: qs.iter().flat_map(|q| q.scales.iter().copied()).collect(),
            bias: match qs[0].bias {
                Int8Bias::Fixed(_) => Int8Bias::Fixed(joined_bias(&qs, |b| match b {
                    Int8Bias::Fixed(v) => Some(v),
                    Int8Bias::Float(_) => None,
                })),
                Int8Bias::Float(_) => Int8Bias::Float(joined_bias(&qs, |b| match b {
                    Int8Bias::Float(v) => Some(v),
                    Int8Bias::Fixed(_) => None,
                })),
            },
        });
    let layer = &graph.layers[first];
    let (h, w, _) = graph.tensors[layer.inputs[0]].shape.hwc();
    gemm(GemmSpec {
        name: &layer.name,
        shape: conv_shape(&weights, 1, 0, h, w),
        weights: &weights,
        relu: convs[0].relu,
        precision: setup.precisions[first],
        int8: int8.as_ref(),
        input: setup.activations[layer.inputs[0]],
        output: None,
        dynamic: setup.dynamic,
    })
    .map(Some)
}

/// The biases `pick` finds, concatenated in member order (a head group shares one kind).
fn joined_bias<T: Copy>(
    qs: &[&Int8Weights],
    pick: impl Fn(&Int8Bias) -> Option<&Vec<T>>,
) -> Vec<T> {
    qs.iter()
        .filter_map(|q| pick(&q.bias))
        .flatten()
        .copied()
        .collect()
}

/// The kernel geometry of a conv/deconv layer on an `h`×`w` input.
fn conv_shape(w: &Weights, stride: usize, pad: usize, h: usize, wd: usize) -> ConvShape {
    if w.transposed {
        ConvShape::deconv(h, wd, w.in_channels, w.out_channels, stride)
    } else {
        ConvShape::conv(h, wd, w.in_channels, w.out_channels, w.kernel, stride, pad)
    }
}

struct GemmSpec<'a> {
    name: &'a str,
    shape: ConvShape,
    weights: &'a Weights,
    relu: bool,
    precision: Precision,
    int8: Option<&'a Int8Weights>,
    input: Option<QuantParams>,
    /// None: the output stays f32 (head convs).
    output: Option<QuantParams>,
    dynamic: bool,
}

fn gemm(spec: GemmSpec) -> Result<Gemm> {
    let name = spec.name;
    if spec.precision != Precision::Int8 {
        let w = spec.weights;
        return PackedConvF32::new(spec.shape, &w.data, Some(&w.bias), spec.relu)
            .map(Gemm::F32)
            .map_err(kernel_err(name));
    }
    let q = spec
        .int8
        .ok_or_else(|| setup_err(name, "int8 layer without int8 weights"))?;
    if q.weights.len() != spec.shape.weights_len() || q.scales.len() != spec.shape.out_c {
        return Err(setup_err(name, "int8 weights or scales of the wrong size"));
    }
    match (&q.bias, spec.dynamic) {
        (Int8Bias::Float(bias), true) => Ok(Gemm::Dynamic(Box::new(DynamicGemm {
            shape: spec.shape,
            weights: q.weights.clone(),
            scales: q.scales.clone(),
            bias: bias.clone(),
            relu: spec.relu,
        }))),
        (Int8Bias::Fixed(bias), false) => {
            let input = spec
                .input
                .ok_or_else(|| setup_err(name, "no activation parameters for the input"))?;
            let stage = match spec.output {
                Some(out) => OutputStage::Requantize(
                    Requantizer::from_scales(
                        input.scale,
                        &q.scales,
                        &out,
                        bias.clone(),
                        spec.relu,
                        false,
                    )
                    .map_err(kernel_err(name))?,
                ),
                None if spec.relu => {
                    return Err(setup_err(
                        name,
                        "a dequantized int8 output cannot fuse ReLU",
                    ));
                }
                None => OutputStage::Dequantize(
                    Dequantizer::new(
                        q.scales.iter().map(|&s| input.scale * s).collect(),
                        bias.clone(),
                    )
                    .map_err(kernel_err(name))?,
                ),
            };
            PackedConvI8::new(spec.shape, &q.weights, input.zero_point, stage)
                .map(Gemm::I8)
                .map_err(kernel_err(name))
        }
        _ => Err(setup_err(
            name,
            "the int8 bias does not match the quantization mode",
        )),
    }
}

impl Gemm {
    /// Runs on `in_h`×`in_w` of the matching domain.
    fn run_f32(
        &self,
        in_h: usize,
        in_w: usize,
        x: &[f32],
        out: &mut [f32],
        scratch: &mut Vec<i8>,
    ) -> std::result::Result<(), lidarq_quant::QuantError> {
        match self {
            Gemm::F32(k) => k.run_at(in_h, in_w, x, out),
            Gemm::Dynamic(d) => d.run(in_h, in_w, x, out, scratch),
            Gemm::I8(_) => unreachable_domain(),
        }
    }

    fn run_i8<O: lidarq_quant::kernels::ConvOutI8>(
        &self,
        in_h: usize,
        in_w: usize,
        x: &[i8],
        out: &mut [O],
    ) -> std::result::Result<(), lidarq_quant::QuantError> {
        match self {
            Gemm::I8(k) => k.run_at(in_h, in_w, x, out),
            Gemm::F32(_) | Gemm::Dynamic(_) => unreachable_domain(),
        }
    }
}

/// Steps are built with kernels of their own domain; a mismatch is a construction bug, but
/// it surfaces as an error rather than a panic.
fn unreachable_domain() -> std::result::Result<(), lidarq_quant::QuantError> {
    Err(lidarq_quant::QuantError::Kernel {
        op: "executor",
        reason: "kernel run in the wrong domain".into(),
    })
}

impl DynamicGemm {
    fn run(
        &self,
        in_h: usize,
        in_w: usize,
        x: &[f32],
        out: &mut [f32],
        q: &mut Vec<i8>,
    ) -> std::result::Result<(), lidarq_quant::QuantError> {
        let (lo, hi) = x
            .par_chunks(CONVERT_CHUNK)
            .map(|c| {
                c.iter()
                    .filter(|v| v.is_finite())
                    .fold((0f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)))
            })
            .reduce(|| (0.0, 0.0), |(a, b), (c, d)| (a.min(c), b.max(d)));
        let params = activation_params(lo, hi)?;
        q.clear();
        q.resize(x.len(), 0);
        quantize_into(x, &Quantizer::new(&[params])?, q);
        let bias = quantize_bias(&self.bias, params.scale, &self.scales)?;
        let scales = self.scales.iter().map(|&s| params.scale * s).collect();
        let stage = OutputStage::Dequantize(Dequantizer::new(scales, bias)?);
        let k = PackedConvI8::new(self.shape, &self.weights, params.zero_point, stage)?;
        k.run_at(in_h, in_w, q, out)?;
        if self.relu {
            out.par_chunks_mut(CONVERT_CHUNK).for_each(|c| {
                for v in c {
                    *v = if *v > 0.0 { *v } else { 0.0 };
                }
            });
        }
        Ok(())
    }
}

/// Activation parameters of the crate's convention: affine int8 over `[lo, hi]`.
pub fn activation_params(
    lo: f32,
    hi: f32,
) -> std::result::Result<QuantParams, lidarq_quant::QuantError> {
    QuantParams::from_range(lo, hi, Scheme::Affine, QuantDtype::Int8, false)
}

/// `out[i] = quantize(x[i])`, in parallel chunks of whole periods of `q`.
pub(crate) fn quantize_into(x: &[f32], q: &Quantizer, out: &mut [i8]) {
    let isa = cpu::selected();
    let chunk = (CONVERT_CHUNK / q.period()).max(1) * q.period();
    out.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(o, x)| quantize_i8(isa, q, x, o));
}

/// `out[i] = dequantize(x[i])`, in parallel chunks.
pub(crate) fn dequantize_into(x: &[i8], p: &QuantParams, out: &mut [f32]) {
    out.par_chunks_mut(CONVERT_CHUNK)
        .zip(x.par_chunks(CONVERT_CHUNK))
        .for_each(|(o, x)| {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = p.dequantize(i32::from(x));
            }
        });
}

fn convert(c: &Conversion, buf: &mut Buffer) {
    match c {
        Conversion::Quantize(q) | Conversion::QuantizePerChannel(q) => {
            buf.i8.resize(buf.f32.len(), 0);
            quantize_into(&buf.f32, q, &mut buf.i8);
        }
        Conversion::Dequantize(p) => {
            buf.f32.resize(buf.i8.len(), 0.0);
            dequantize_into(&buf.i8, p, &mut buf.f32);
        }
    }
}

/// The empty cells of a tensor follow its domain change (the same per-value conversion).
fn convert_empty(c: &Conversion, s: &mut Scratch, t: TensorId) {
    fn map<A: Copy, B>(e: &EmptyCells<A>, f: impl Fn(A) -> B) -> EmptyCells<B> {
        EmptyCells {
            active: e.active.clone(),
            period: e.period,
            tile: e.tile.iter().map(|&v| f(v)).collect(),
        }
    }
    match c {
        Conversion::Dequantize(p) => {
            s.empty_f32[t] = s.empty_i8[t]
                .as_ref()
                .map(|e| map(e, |q| p.dequantize(i32::from(q))));
        }
        Conversion::Quantize(q) => {
            s.empty_i8[t] = s.empty_f32[t].as_ref().map(|e| {
                let mut tile = vec![0; e.tile.len()];
                quantize_i8(cpu::selected(), q, &e.tile, &mut tile);
                EmptyCells {
                    active: e.active.clone(),
                    period: e.period,
                    tile,
                }
            });
        }
        Conversion::QuantizePerChannel(_) => {}
    }
}

impl Executor {
    /// Packs the weights of `graph` for the precisions of `setup` and plans its buffers.
    pub fn new(graph: &Graph, setup: &ExecSetup) -> Result<Self> {
        let n_layers = graph.layers.len();
        if setup.precisions.len() != n_layers
            || setup.int8.len() != n_layers
            || setup.activations.len() != graph.tensors.len()
        {
            return Err(setup_err(
                "<graph>",
                "the precision setup does not match the graph",
            ));
        }
        let map = |id: TensorId| graph.tensors[id].shape.hwc();
        let is_head =
            |t: TensorId| t == graph.head.cls || t == graph.head.boxes || Some(t) == graph.head.dir;
        let params = |t: TensorId| setup.activations[t];
        let head_group = head_group(graph, setup);
        let mut fused_head = fuse_head(graph, setup, &head_group)?;
        let mut steps = Vec::with_capacity(n_layers);
        let mut grid = (0, 0);
        for (li, layer) in graph.layers.iter().enumerate() {
            let name = layer.name.as_str();
            let precision = setup.precisions[li];
            let static_i8 = precision == Precision::Int8 && !setup.dynamic;
            let int8 = setup.int8[li].as_ref();
            let input = if layer.inputs[0] == graph.input && setup.input_channels.is_some() {
                Some(unit_input())
            } else {
                params(layer.inputs[0])
            };
            let head_out = is_head(layer.output);
            let out_params = (static_i8 && !head_out)
                .then(|| params(layer.output))
                .flatten();
            if static_i8 && !head_out && out_params.is_none() {
                return Err(setup_err(name, "no activation parameters for the output"));
            }
            let build = |weights: &Weights, shape, relu| {
                gemm(GemmSpec {
                    name,
                    shape,
                    weights,
                    relu,
                    precision,
                    int8,
                    input,
                    output: out_params,
                    dynamic: setup.dynamic,
                })
            };
            let kernel = match &layer.op {
                Op::Pfn { linear, last } => Kernel::Pfn {
                    linear: build(
                        linear,
                        ConvShape::linear(1, linear.in_channels, linear.out_channels),
                        true,
                    )?,
                    out: linear.out_channels,
                    last: *last,
                },
                Op::Scatter => {
                    let (h, w, c) = map(layer.output);
                    grid = (h, w);
                    if static_i8 && input != out_params {
                        return Err(setup_err(
                            name,
                            "the scatter's input and output need the same parameters",
                        ));
                    }
                    Kernel::Scatter { nx: w, channels: c }
                }
                Op::Conv(c) if head_group.contains(&li) => {
                    let before = head_group.iter().take_while(|&&i| i != li);
                    Kernel::Head {
                        fused: fused_head.take().map(Box::new),
                        at: before.map(|&i| map(graph.layers[i].output).2).sum(),
                        channels: c.weights.out_channels,
                        total: head_group
                            .iter()
                            .map(|&i| map(graph.layers[i].output).2)
                            .sum(),
                    }
                }
                Op::Conv(c) | Op::Deconv(c) => {
                    let (h, w, _) = map(layer.inputs[0]);
                    let shape = conv_shape(&c.weights, c.stride, c.pad, h, w);
                    Kernel::Conv(build(&c.weights, shape, c.relu)?)
                }
                Op::Concat => {
                    let requant = layer
                        .inputs
                        .iter()
                        .map(|&t| match (static_i8, params(t), out_params) {
                            (true, Some(p), Some(o)) if p != o => {
                                Requantizer::from_scales(p.scale, &[1.0], &o, vec![0], false, false)
                                    .map(|r| Some(byte_map(p.zero_point, &r)))
                                    .map_err(kernel_err(name))
                            }
                            (true, None, _) => Err(setup_err(
                                name,
                                "no activation parameters for a concat input",
                            )),
                            _ => Ok(None),
                        })
                        .collect::<Result<_>>()?;
                    Kernel::Concat {
                        channels: layer.inputs.iter().map(|&t| map(t).2).collect(),
                        requant,
                    }
                }
                Op::Attention(a) => {
                    if precision == Precision::Int8 {
                        return Err(setup_err(
                            name,
                            "attention runs in fp16 or fp32 only (set it in the precision plan)",
                        ));
                    }
                    let (h, w, _) = map(layer.inputs[0]);
                    let ws = a.config.window_size;
                    Kernel::Attention(Box::new(AttentionKernel {
                        order: WindowOrder::new(h, w, ws),
                        window: WindowOrder::new(h.min(ws), w.min(ws), ws),
                        norm_weight: a.norm_weight.clone(),
                        norm_bias: a.norm_bias.clone(),
                        qkv: linear_f32(&a.qkv, false, name)?,
                        proj: linear_f32(&a.proj, false, name)?,
                        heads: a.config.num_heads,
                    }))
                }
            };
            steps.push(Step {
                name: layer.name.clone(),
                inputs: layer.inputs.clone(),
                output: layer.output,
                kernel,
                domain: if static_i8 { Domain::I8 } else { Domain::F32 },
                out_params,
                fp16: precision == Precision::Fp16,
                convert: Vec::new(),
            });
        }
        // Which domains each tensor is read in.
        let n = graph.tensors.len();
        let (mut needs_f32, mut needs_i8) = (vec![false; n], vec![false; n]);
        for s in &steps {
            for &t in &s.inputs {
                match s.domain {
                    Domain::F32 => needs_f32[t] = true,
                    Domain::I8 => needs_i8[t] = true,
                }
            }
        }
        for t in [graph.head.cls, graph.head.boxes]
            .into_iter()
            .chain(graph.head.dir)
        {
            needs_f32[t] = true;
        }
        let conversions = |t: TensorId, produced_i8: bool| -> Result<Vec<Conversion>> {
            let p = params(t);
            let name = &graph.tensors[t].name;
            let missing = || setup_err(name, "no activation parameters at a precision boundary");
            Ok(match (produced_i8, needs_f32[t], needs_i8[t]) {
                (true, true, _) => vec![Conversion::Dequantize(p.ok_or_else(missing)?)],
                (false, _, true) if t == graph.input && setup.input_channels.is_some() => {
                    let params = setup.input_channels.as_deref().unwrap_or_default();
                    vec![Conversion::QuantizePerChannel(
                        Quantizer::new(params).map_err(kernel_err(name))?,
                    )]
                }
                (false, _, true) => vec![Conversion::Quantize(
                    Quantizer::new(&[p.ok_or_else(missing)?]).map_err(kernel_err(name))?,
                )],
                _ => Vec::new(),
            })
        };
        for s in &mut steps {
            s.convert = conversions(s.output, s.out_params.is_some())?;
        }
        let input_convert = conversions(graph.input, false)?;

        let plan = BufferPlan::new(graph);
        let mut buffers: Vec<Buffer> = plan.sizes.iter().map(|_| Buffer::default()).collect();
        for t in 0..n {
            let slot = plan.slot[t];
            let len = plan.sizes[slot];
            let produced_i8 = steps
                .iter()
                .find(|s| s.output == t)
                .is_some_and(|s| s.out_params.is_some());
            let buf = &mut buffers[slot];
            if (needs_f32[t] || !produced_i8) && buf.f32.len() < len {
                buf.f32.resize(len, 0.0);
            }
            if needs_i8[t] || produced_i8 {
                // Scatter maps start empty: every cell at the zero point.
                let zp = params(t).map_or(0, |p| p.zero_point as i8);
                if buf.i8.len() < len {
                    buf.i8 = vec![zp; len];
                }
            }
        }
        Ok(Self {
            steps,
            plan,
            buffers,
            scratch: Scratch::default(),
            input: graph.input,
            input_convert,
            input_channels: map(graph.input).2,
            grid,
            head: graph.head,
            skip_empty: true,
        })
    }

    /// Whether static int8 and fp32 convolutions skip the cells whose receptive field holds no
    /// pillar (on by default; the outputs are bit-identical either way).
    pub fn set_skip_empty(&mut self, skip: bool) {
        self.skip_empty = skip;
    }

    /// Cells computed per convolution (and deconvolution, and head) step in the last frame.
    pub fn cell_work(&self) -> Vec<CellWork> {
        self.steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::Conv(_) | Kernel::Head { .. }))
            .zip(&self.scratch.cells)
            .map(|(s, &(computed, total))| CellWork {
                layer: s.name.clone(),
                computed,
                total,
            })
            .collect()
    }

    /// Runs one frame; the returned head maps borrow the executor's buffers.
    pub fn run(&mut self, input: &PillarInput) -> Result<HeadView<'_>> {
        self.run_observed(input, &mut |_, _| {})
    }

    /// As [`Self::run`], calling `observer(layer name, output)` after every layer with the
    /// output in the domain the layer wrote it.
    pub fn run_observed(
        &mut self,
        input: &PillarInput,
        observer: &mut dyn FnMut(&str, Activation<'_>),
    ) -> Result<HeadView<'_>> {
        input.validate(self.input_channels, self.grid)?;
        let s = &mut self.scratch;
        let tensors = self.plan.slot.len();
        s.empty_i8.clear();
        s.empty_i8.resize_with(tensors, || None);
        s.empty_f32.clear();
        s.empty_f32.resize_with(tensors, || None);
        s.cells.clear();
        s.rows.plan(input);
        let in_slot = self.plan.slot[self.input];
        let buf = &mut self.buffers[in_slot];
        s.rows.gather(input, self.input_channels, &mut buf.f32);
        for c in &self.input_convert {
            convert(c, buf);
        }
        for step in &self.steps {
            let out_slot = self.plan.slot[step.output];
            let mut out = std::mem::take(&mut self.buffers[out_slot]);
            run_step(
                step,
                &self.buffers,
                &self.plan,
                input,
                s,
                self.skip_empty,
                &mut out,
            )?;
            match step.out_params {
                Some(params) => observer(
                    &step.name,
                    Activation::I8 {
                        values: &out.i8,
                        params,
                    },
                ),
                None => observer(&step.name, Activation::F32(&out.f32)),
            }
            for c in &step.convert {
                convert(c, &mut out);
                convert_empty(c, s, step.output);
            }
            self.buffers[out_slot] = out;
        }
        let b = |t: TensorId| self.buffers[self.plan.slot[t]].f32.as_slice();
        Ok(HeadView {
            cls: b(self.head.cls),
            boxes: b(self.head.boxes),
            dir: self.head.dir.map(b),
        })
    }
}

/// Runs one step into `out` (its output buffer, taken out of `buffers`).
fn run_step(
    step: &Step,
    buffers: &[Buffer],
    plan: &BufferPlan,
    input: &PillarInput,
    s: &mut Scratch,
    skip_empty: bool,
    out: &mut Buffer,
) -> Result<()> {
    let err = kernel_err(&step.name);
    let x = &buffers[plan.slot[step.inputs[0]]];
    match (&step.kernel, step.domain) {
        (
            Kernel::Pfn {
                linear,
                out: c,
                last,
            },
            Domain::I8,
        ) => {
            // The last PFN layer's max over points commutes with its requantization
            // (non-decreasing), so only one row per pillar is requantized.
            if let (true, Gemm::I8(k)) = (*last, linear)
                && k.max_commutes::<i8>()
            {
                out.i8.resize((s.rows.offsets.len() - 1) * c, 0);
                return k
                    .run_max_groups(&x.i8, &s.rows.offsets, &mut out.i8)
                    .map_err(&err);
            }
            let rows = s.rows.rows();
            s.linear_i8.resize(rows * c, 0);
            if rows > 0 {
                linear
                    .run_i8(rows, 1, &x.i8, &mut s.linear_i8)
                    .map_err(&err)?;
            }
            if *last {
                s.rows.max(&s.linear_i8, *c, &mut out.i8);
            } else {
                s.rows.max(&s.linear_i8, *c, &mut s.max_i8);
                s.rows.concat_max(&s.linear_i8, &s.max_i8, *c, &mut out.i8);
            }
        }
        (
            Kernel::Pfn {
                linear,
                out: c,
                last,
            },
            Domain::F32,
        ) => {
            let rows = s.rows.rows();
            s.linear.resize(rows * c, 0.0);
            if rows > 0 {
                let x_f32 = float_input(step, &x.f32, &mut s.half_in);
                linear
                    .run_f32(rows, 1, x_f32, &mut s.linear, &mut s.dynamic_in)
                    .map_err(&err)?;
            }
            if *last {
                s.rows.max(&s.linear, *c, &mut out.f32);
            } else {
                s.rows.max(&s.linear, *c, &mut s.max);
                s.rows.concat_max(&s.linear, &s.max, *c, &mut out.f32);
            }
        }
        (Kernel::Scatter { nx, channels }, Domain::I8) => {
            let zp = step.out_params.map_or(0, |p| p.zero_point as i8);
            scatter(
                &x.i8,
                input.coords,
                *nx,
                *channels,
                &mut out.i8,
                &mut s.scattered,
                zp,
            );
            if skip_empty {
                let ny = out.i8.len() / (nx * channels);
                s.empty_i8[step.output] =
                    Some(sparse::scattered(input.coords, ny, *nx, *channels, zp));
            }
        }
        (Kernel::Scatter { nx, channels }, Domain::F32) => {
            scatter(
                float_input(step, &x.f32, &mut s.half_in),
                input.coords,
                *nx,
                *channels,
                &mut out.f32,
                &mut s.scattered,
                0.0,
            );
            if skip_empty {
                let ny = out.f32.len() / (nx * channels);
                s.empty_f32[step.output] =
                    Some(sparse::scattered(input.coords, ny, *nx, *channels, 0.0));
            }
        }
        (Kernel::Conv(k), domain) => {
            let work = conv(k, domain, step, x, s, skip_empty, out, Some(step.output))?;
            s.cells.push(work);
        }
        (
            Kernel::Head {
                fused,
                at,
                channels,
                total,
            },
            domain,
        ) => {
            if let Some(k) = fused {
                let mut all = std::mem::take(&mut s.head);
                all.f32.resize(gemm_shape(k).output_len(), 0.0);
                let work = conv(k, domain, step, x, s, skip_empty, &mut all, None);
                s.head = all;
                s.head_cells = work?;
            }
            copy_channels(
                &s.head.f32,
                (*at, *total),
                &mut out.f32,
                (0, *channels),
                *channels,
            );
            s.cells.push(s.head_cells);
        }
        (Kernel::Concat { channels, requant }, domain) => {
            let total: usize = channels.iter().sum();
            let mut at = 0;
            for ((&t, &c), rq) in step.inputs.iter().zip(channels).zip(requant) {
                let src = &buffers[plan.slot[t]];
                match (domain, rq) {
                    (Domain::I8, Some(map)) => {
                        for_each_cell(&src.i8, (0, c), &mut out.i8, (at, total), c, |o, x| {
                            o.iter_mut().zip(x).for_each(|(o, &x)| *o = map.get(x));
                        });
                    }
                    (Domain::I8, None) => concat_into(&src.i8, c, at, total, &mut out.i8),
                    (Domain::F32, _) if step.fp16 => {
                        let rounded = f16_rounded(&src.f32, &mut s.half_in);
                        concat_into(rounded, c, at, total, &mut out.f32);
                    }
                    (Domain::F32, _) => concat_into(&src.f32, c, at, total, &mut out.f32),
                }
                at += c;
            }
            if skip_empty && domain == Domain::I8 {
                let inputs: Vec<_> = step
                    .inputs
                    .iter()
                    .map(|&t| s.empty_i8[t].as_ref())
                    .collect();
                let empty = sparse::concat(&inputs, channels, |i, q| match &requant[i] {
                    Some(map) => map.get(q),
                    None => q,
                });
                s.empty_i8[step.output] = empty;
            } else if skip_empty && !step.fp16 {
                let inputs: Vec<_> = step
                    .inputs
                    .iter()
                    .map(|&t| s.empty_f32[t].as_ref())
                    .collect();
                let empty = sparse::concat(&inputs, channels, |_, v| v);
                s.empty_f32[step.output] = empty;
            }
        }
        (Kernel::Attention(a), _) => {
            let x_f32 = float_input(step, &x.f32, &mut s.half_in);
            a.run(&a.order, x_f32, &mut s.attention, &mut out.f32)
                .map_err(&err)?;
            if let (true, Some(empty)) = (skip_empty, &s.empty_f32[step.inputs[0]]) {
                let empty = a.empty_cells(empty, step.fp16).map_err(&err)?;
                s.empty_f32[step.output] = empty;
            }
        }
    }
    if step.fp16 {
        round_slice_to_f16(&mut out.f32);
    }
    Ok(())
}

/// A float step's input as the step reads it: rounded to f16 (into `buf`) in an fp16 step.
fn float_input<'a>(step: &Step, x: &'a [f32], buf: &'a mut Vec<f32>) -> &'a [f32] {
    if step.fp16 { f16_rounded(x, buf) } else { x }
}

/// `x` rounded to f16 values, in `buf`.
fn f16_rounded<'a>(x: &[f32], buf: &'a mut Vec<f32>) -> &'a [f32] {
    buf.clear();
    buf.extend_from_slice(x);
    round_slice_to_f16(buf);
    buf
}

/// Runs a convolution step's kernel into `out`, sparsely when its input's empty cells are
/// known; records the output's empty cells under `record`; returns (computed, total) cells.
#[allow(clippy::too_many_arguments)]
fn conv(
    k: &Gemm,
    domain: Domain,
    step: &Step,
    x: &Buffer,
    s: &mut Scratch,
    skip_empty: bool,
    out: &mut Buffer,
    record: Option<TensorId>,
) -> Result<(usize, usize)> {
    let err = kernel_err(&step.name);
    let i8_out = step.out_params.is_some();
    let input = step.inputs[0];
    if domain == Domain::I8 {
        let (h, w) = map_hw(k, x.i8.len());
        let sparse_run = match (k, &s.empty_i8[input]) {
            (Gemm::I8(packed), Some(empty)) if skip_empty => {
                sparse::plan(packed.shape(), packed.algorithm().output_tile(), empty)
                    .map(|plan| (packed, empty, plan))
            }
            _ => None,
        };
        return match sparse_run {
            Some((packed, empty, plan)) if i8_out => {
                let (cells, work) =
                    sparse::run(packed, plan, empty, &x.i8, &mut out.i8).map_err(&err)?;
                if let Some(t) = record {
                    s.empty_i8[t] = Some(cells);
                }
                Ok(work)
            }
            Some((packed, empty, plan)) => {
                let (_, work) =
                    sparse::run(packed, plan, empty, &x.i8, &mut out.f32).map_err(&err)?;
                Ok(work)
            }
            None => {
                if i8_out {
                    k.run_i8(h, w, &x.i8, &mut out.i8).map_err(&err)?;
                } else {
                    k.run_i8(h, w, &x.i8, &mut out.f32).map_err(&err)?;
                }
                Ok(dense_cells(k))
            }
        };
    }
    let x_f32 = float_input(step, &x.f32, &mut s.half_in);
    let (h, w) = map_hw(k, x_f32.len());
    // fp16 layers round on entry and exit, which the constant would have to follow.
    let sparse_run = match (k, &s.empty_f32[input]) {
        (Gemm::F32(packed), Some(empty)) if skip_empty && !step.fp16 => {
            sparse::plan(packed.shape(), packed.algorithm().output_tile(), empty)
                .map(|plan| (packed, empty, plan))
        }
        _ => None,
    };
    match sparse_run {
        Some((packed, empty, plan)) => {
            let (cells, work) =
                sparse::run(packed, plan, empty, x_f32, &mut out.f32).map_err(&err)?;
            if let Some(t) = record {
                s.empty_f32[t] = Some(cells);
            }
            Ok(work)
        }
        None => {
            k.run_f32(h, w, x_f32, &mut out.f32, &mut s.dynamic_in)
                .map_err(&err)?;
            Ok(dense_cells(k))
        }
    }
}

/// An i8 → i8 function as a table of its 256 values.
#[derive(Debug, Clone)]
struct ByteMap(Box<[i8; 256]>);

impl ByteMap {
    fn get(&self, q: i8) -> i8 {
        self.0[usize::from(q as u8)]
    }
}

/// A concat input's values at the output's parameters (input zero point `zp`, requantizer
/// `r`): one requantization per possible byte, so the copy is a lookup.
fn byte_map(zp: i32, r: &Requantizer) -> ByteMap {
    ByteMap(Box::new(std::array::from_fn(|b| {
        r.requantize(0, i32::from(b as u8 as i8) - zp)
    })))
}

/// (computed, total) output cells of a dense conv step.
fn dense_cells(k: &Gemm) -> (usize, usize) {
    let shape = gemm_shape(k);
    let cells = shape.out_h() * shape.out_w();
    (cells, cells)
}

fn gemm_shape(k: &Gemm) -> ConvShape {
    match k {
        Gemm::F32(k) => *k.shape(),
        Gemm::I8(k) => *k.shape(),
        Gemm::Dynamic(d) => d.shape,
    }
}

/// The input height and width of a conv step: the kernels are built for the graph's map
/// size, which every frame has.
fn map_hw(k: &Gemm, len: usize) -> (usize, usize) {
    let shape = gemm_shape(k);
    debug_assert_eq!(len, shape.input_len());
    (shape.in_h, shape.in_w)
}

/// Copies `c` channels per cell from `src` (`[HW, from.1]`, starting at channel `from.0`)
/// into `out` (`[HW, to.1]`, starting at `to.0`).
fn copy_channels<T: Copy + Send + Sync>(
    src: &[T],
    from: (usize, usize),
    out: &mut [T],
    to: (usize, usize),
    c: usize,
) {
    for_each_cell(src, from, out, to, c, <[T]>::copy_from_slice);
}

/// Runs `f(out channels, src channels)` on the `c` channels of every cell, as
/// [`copy_channels`] lays them out.
fn for_each_cell<T: Copy + Send + Sync>(
    src: &[T],
    from: (usize, usize),
    out: &mut [T],
    to: (usize, usize),
    c: usize,
    f: impl Fn(&mut [T], &[T]) + Sync,
) {
    const CELLS_PER_TASK: usize = 1024;
    out.par_chunks_mut(to.1 * CELLS_PER_TASK)
        .zip(src.par_chunks(from.1 * CELLS_PER_TASK))
        .for_each(|(o, s)| {
            for (o, s) in o.chunks_exact_mut(to.1).zip(s.chunks_exact(from.1)) {
                f(&mut o[to.0..to.0 + c], &s[from.0..from.0 + c]);
            }
        });
}

/// Copies `src` (`[HW, c]`) into channels `at .. at + c` of `out` (`[HW, total]`).
fn concat_into<T: Copy + Send + Sync>(src: &[T], c: usize, at: usize, total: usize, out: &mut [T]) {
    copy_channels(src, (0, c), out, (at, total), c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;

    fn golden() -> Model {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
        Model::load(&dir).unwrap()
    }

    fn names(graph: &Graph, group: &[usize]) -> Vec<String> {
        group
            .iter()
            .map(|&i| graph.layers[i].name.clone())
            .collect()
    }

    #[test]
    fn a_concat_byte_map_holds_every_bytes_requantized_value() {
        use lidarq_quant::{QuantDtype, Scheme};
        let out =
            QuantParams::from_range(-2.0, 6.0, Scheme::Affine, QuantDtype::Int8, false).unwrap();
        // Input: scale 0.05, zero point 3 (range ≈ -6.55 … 6.2): both ends saturate.
        let r = Requantizer::from_scales(0.05, &[1.0], &out, vec![0], false, false).unwrap();
        let map = byte_map(3, &r);
        for q in i8::MIN..=i8::MAX {
            let want = r.requantize(0, i32::from(q) - 3);
            assert_eq!(map.get(q), want, "byte {q}");
            let real = (f32::from(q) - 3.0) * 0.05;
            let float = out.quantize(real);
            assert!(
                (i32::from(map.get(q)) - float).abs() <= 1,
                "{q}: {want} vs {float}"
            );
        }
        assert_eq!(map.get(i8::MIN), out.qmin as i8);
        assert_eq!(map.get(i8::MAX), out.qmax as i8);
    }

    #[test]
    fn the_head_convolutions_run_as_one_layer_when_they_share_a_precision() {
        let model = golden();
        let graph = &model.graph;
        let mut setup = ExecSetup::fp32(graph);
        let heads = [
            "dense_head.conv_cls",
            "dense_head.conv_box",
            "dense_head.conv_dir_cls",
        ];
        assert_eq!(names(graph, &head_group(graph, &setup)), heads);
        let steps = |setup: &ExecSetup| {
            let x = Executor::new(graph, setup).unwrap();
            x.steps
                .iter()
                .filter(|s| matches!(s.kernel, Kernel::Head { .. }))
                .count()
        };
        assert_eq!(steps(&setup), 3);
        // One head layer in fp16: the others would need another precision, so none fuse.
        let box_layer = graph
            .layers
            .iter()
            .position(|l| l.name == heads[1])
            .unwrap();
        setup.precisions[box_layer] = Precision::Fp16;
        assert!(head_group(graph, &setup).is_empty());
        assert_eq!(steps(&setup), 0);
    }
}
