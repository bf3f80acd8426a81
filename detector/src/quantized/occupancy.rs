//! Which BEV cells carry information, per graph tensor, for sparsity-aware calibration.
//!
//! The rule: a cell of a map is **counted** when its receptive field holds at least one
//! pillar. The scatter map is occupied exactly at the pillars' cells; a k×k convolution
//! (stride s, padding p) marks output cells whose input window holds a counted cell; a
//! transposed convolution copies its input cell's flag to its s×s block; a concat ORs
//! its inputs; attention marks every cell of a window holding a counted cell. Every
//! other cell holds the layer's per-channel *empty-cell constant* (with BatchNorm folded,
//! a conv of all-zero or all-constant input is a constant per channel): counting those
//! cells would pile the same few values into the histograms frame after frame. One
//! empty cell per map (the first) is counted too, so that the constant stays inside the
//! calibrated range. Per-pillar tensors count every row.

use crate::exec::sparse::{dilate, expand_blocks, pillar_cells};
use crate::graph::{Graph, Op, TensorShape};

/// Counted cells per tensor (`None` for per-pillar tensors, which count everything).
pub(crate) fn counted_cells(graph: &Graph, coords: &[[i32; 3]]) -> Vec<Option<Vec<bool>>> {
    let mut masks: Vec<Option<Vec<bool>>> = vec![None; graph.tensors.len()];
    let hw = |t: usize| {
        let (h, w, _) = graph.tensors[t].shape.hwc();
        (h, w)
    };
    for layer in &graph.layers {
        let (oh, ow) = hw(layer.output);
        if !matches!(graph.tensors[layer.output].shape, TensorShape::Map { .. }) {
            continue;
        }
        let input = |i: usize| masks[layer.inputs[i]].as_deref();
        let mask = match &layer.op {
            Op::Scatter => pillar_cells(coords, oh, ow),
            Op::Conv(c) | Op::Deconv(c) => {
                let (ih, iw) = hw(layer.inputs[0]);
                let Some(src) = input(0) else { continue };
                if c.weights.transposed {
                    expand_blocks(src, iw, oh, ow, c.stride)
                } else {
                    dilate(src, ih, iw, oh, ow, c.weights.kernel, c.stride, c.pad)
                }
            }
            Op::Concat => {
                let mut m = vec![false; oh * ow];
                for i in 0..layer.inputs.len() {
                    if let Some(src) = input(i) {
                        m.iter_mut().zip(src).for_each(|(m, &s)| *m |= s);
                    }
                }
                m
            }
            Op::Attention(a) => {
                let Some(src) = input(0) else { continue };
                let ws = a.config.window_size;
                let mut m = vec![false; oh * ow];
                for wy in (0..oh).step_by(ws) {
                    for wx in (0..ow).step_by(ws) {
                        let cells = || {
                            (wy..(wy + ws).min(oh))
                                .flat_map(move |y| (wx..(wx + ws).min(ow)).map(move |x| y * ow + x))
                        };
                        if cells().any(|i| src[i]) {
                            cells().for_each(|i| m[i] = true);
                        }
                    }
                }
                m
            }
            Op::Pfn { .. } => continue,
        };
        masks[layer.output] = Some(mask);
    }
    for m in masks.iter_mut().flatten() {
        if let Some(first_empty) = m.iter_mut().find(|v| !**v) {
            *first_empty = true;
        }
    }
    masks
}
