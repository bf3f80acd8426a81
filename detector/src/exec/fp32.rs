//! The fp32 executor: the graph's convs, deconvs and linears on `lidarq-quant`'s packed
//! fp32 kernels (fused bias + ReLU), everything else in this module's helpers. Weights are
//! packed once in [`Fp32Executor::new`]; buffers are planned once and reused by every frame.

use lidarq_quant::kernels::{ConvShape, PackedConvF32};

use super::attention::{WindowOrder, layer_norm_windowed, residual_from_windows, window_attention};
use super::pillars::{PillarInput, PillarRows, scatter};
use super::plan::BufferPlan;
use crate::error::{DetectorError, Result};
use crate::graph::{Graph, HeadTensors, LN_EPS, Op, TensorId, Weights};
use crate::post::HeadView;

enum Kernel {
    Pfn {
        linear: PackedConvF32,
        out: usize,
        last: bool,
    },
    Scatter {
        nx: usize,
        channels: usize,
    },
    Conv(PackedConvF32),
    Concat {
        channels: Vec<usize>,
    },
    Attention(Box<AttentionKernel>),
}

struct AttentionKernel {
    order: WindowOrder,
    norm_weight: Vec<f32>,
    norm_bias: Vec<f32>,
    qkv: PackedConvF32,
    proj: PackedConvF32,
    heads: usize,
}

struct Step {
    name: String,
    inputs: Vec<TensorId>,
    output: TensorId,
    kernel: Kernel,
}

/// Per-frame scratch that is not a graph tensor.
#[derive(Default)]
struct Scratch {
    rows: PillarRows,
    /// Cells the scatter wrote last frame.
    scattered: Vec<usize>,
    linear: Vec<f32>,
    max: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
}

/// Runs a [`Graph`] in fp32.
pub struct Fp32Executor {
    steps: Vec<Step>,
    plan: BufferPlan,
    buffers: Vec<Vec<f32>>,
    scratch: Scratch,
    input: TensorId,
    input_channels: usize,
    grid: (usize, usize),
    head: HeadTensors,
}

fn kernel_err(layer: &str) -> impl Fn(lidarq_quant::QuantError) -> DetectorError + '_ {
    move |source| DetectorError::Kernel {
        layer: layer.to_string(),
        source,
    }
}

fn linear(w: &Weights, relu: bool, layer: &str) -> Result<PackedConvF32> {
    PackedConvF32::new(
        ConvShape::linear(1, w.in_channels, w.out_channels),
        &w.data,
        Some(&w.bias),
        relu,
    )
    .map_err(kernel_err(layer))
}

impl Fp32Executor {
    /// Packs the weights of `graph` and plans its buffers.
    pub fn new(graph: &Graph) -> Result<Self> {
        let map = |id: TensorId| graph.tensors[id].shape.hwc();
        let mut steps = Vec::with_capacity(graph.layers.len());
        let mut grid = (0, 0);
        for layer in &graph.layers {
            let name = layer.name.as_str();
            let kernel = match &layer.op {
                Op::Pfn { linear: w, last } => Kernel::Pfn {
                    linear: linear(w, true, name)?,
                    out: w.out_channels,
                    last: *last,
                },
                Op::Scatter => {
                    let (h, w, c) = map(layer.output);
                    grid = (h, w);
                    Kernel::Scatter { nx: w, channels: c }
                }
                Op::Conv(c) | Op::Deconv(c) => {
                    let (h, w, _) = map(layer.inputs[0]);
                    let wt = &c.weights;
                    let shape = if wt.transposed {
                        ConvShape::deconv(h, w, wt.in_channels, wt.out_channels, c.stride)
                    } else {
                        ConvShape::conv(
                            h,
                            w,
                            wt.in_channels,
                            wt.out_channels,
                            wt.kernel,
                            c.stride,
                            c.pad,
                        )
                    };
                    Kernel::Conv(
                        PackedConvF32::new(shape, &wt.data, Some(&wt.bias), c.relu)
                            .map_err(kernel_err(name))?,
                    )
                }
                Op::Concat => Kernel::Concat {
                    channels: layer.inputs.iter().map(|&t| map(t).2).collect(),
                },
                Op::Attention(a) => {
                    let (h, w, _) = map(layer.inputs[0]);
                    Kernel::Attention(Box::new(AttentionKernel {
                        order: WindowOrder::new(h, w, a.config.window_size),
                        norm_weight: a.norm_weight.clone(),
                        norm_bias: a.norm_bias.clone(),
                        qkv: linear(&a.qkv, false, name)?,
                        proj: linear(&a.proj, false, name)?,
                        heads: a.config.num_heads,
                    }))
                }
            };
            steps.push(Step {
                name: layer.name.clone(),
                inputs: layer.inputs.clone(),
                output: layer.output,
                kernel,
            });
        }
        let plan = BufferPlan::new(graph);
        let buffers = plan.sizes.iter().map(|&n| vec![0.0; n]).collect();
        Ok(Self {
            steps,
            plan,
            buffers,
            scratch: Scratch::default(),
            input: graph.input,
            input_channels: map(graph.input).2,
            grid,
            head: graph.head,
        })
    }

    /// Runs one frame; the returned head maps borrow the executor's buffers.
    pub fn run(&mut self, input: &PillarInput) -> Result<HeadView<'_>> {
        self.run_observed(input, &mut |_, _| {})
    }

    /// As [`Self::run`], calling `observer(layer name, output)` after every layer (stage
    /// timing, calibration statistics).
    pub fn run_observed(
        &mut self,
        input: &PillarInput,
        observer: &mut dyn FnMut(&str, &[f32]),
    ) -> Result<HeadView<'_>> {
        input.validate(self.input_channels, self.grid)?;
        let s = &mut self.scratch;
        s.rows.plan(input);
        let in_slot = self.plan.slot[self.input];
        s.rows
            .gather(input, self.input_channels, &mut self.buffers[in_slot]);
        for step in &self.steps {
            let out_slot = self.plan.slot[step.output];
            let mut out = std::mem::take(&mut self.buffers[out_slot]);
            let x = &self.buffers[self.plan.slot[step.inputs[0]]];
            let err = kernel_err(&step.name);
            match &step.kernel {
                Kernel::Pfn {
                    linear,
                    out: c,
                    last,
                } => {
                    let rows = s.rows.rows();
                    s.linear.resize(rows * c, 0.0);
                    if rows > 0 {
                        linear.run_at(rows, 1, x, &mut s.linear).map_err(err)?;
                    }
                    if *last {
                        s.rows.max(&s.linear, *c, &mut out);
                    } else {
                        s.rows.max(&s.linear, *c, &mut s.max);
                        s.rows.concat_max(&s.linear, &s.max, *c, &mut out);
                    }
                }
                Kernel::Scatter { nx, channels } => {
                    scatter(x, input.coords, *nx, *channels, &mut out, &mut s.scattered)
                }
                Kernel::Conv(k) => k.run(x, &mut out).map_err(err)?,
                Kernel::Concat { channels } => {
                    let total: usize = channels.iter().sum();
                    let mut at = 0;
                    for (&t, &c) in step.inputs.iter().zip(channels) {
                        let src = &self.buffers[self.plan.slot[t]];
                        concat_into(src, c, at, total, &mut out);
                        at += c;
                    }
                }
                Kernel::Attention(a) => {
                    let AttentionKernel {
                        order,
                        norm_weight,
                        norm_bias,
                        qkv,
                        proj,
                        heads,
                    } = a.as_ref();
                    let c = norm_weight.len();
                    let n = order.cells.len();
                    s.normed.resize(n * c, 0.0);
                    s.qkv.resize(n * 3 * c, 0.0);
                    s.attended.resize(n * c, 0.0);
                    s.projected.resize(n * c, 0.0);
                    layer_norm_windowed(x, order, norm_weight, norm_bias, LN_EPS, &mut s.normed);
                    qkv.run_at(n, 1, &s.normed, &mut s.qkv).map_err(&err)?;
                    window_attention(&s.qkv, order, c, *heads, &mut s.attended);
                    proj.run_at(n, 1, &s.attended, &mut s.projected)
                        .map_err(&err)?;
                    residual_from_windows(x, &s.projected, order, c, &mut out);
                }
            }
            observer(&step.name, &out);
            self.buffers[out_slot] = out;
        }
        let b = |t: TensorId| self.buffers[self.plan.slot[t]].as_slice();
        Ok(HeadView {
            cls: b(self.head.cls),
            boxes: b(self.head.boxes),
            dir: self.head.dir.map(b),
        })
    }
}

/// Copies `src` (`[HW, c]`) into channels `at .. at + c` of `out` (`[HW, total]`).
fn concat_into(src: &[f32], c: usize, at: usize, total: usize, out: &mut [f32]) {
    use rayon::prelude::*;
    const CELLS_PER_TASK: usize = 1024;
    out.par_chunks_mut(total * CELLS_PER_TASK)
        .zip(src.par_chunks(c * CELLS_PER_TASK))
        .for_each(|(o, s)| {
            for (o, s) in o.chunks_exact_mut(total).zip(s.chunks_exact(c)) {
                o[at..at + c].copy_from_slice(s);
            }
        });
}
