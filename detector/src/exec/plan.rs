//! Buffer plan: which reusable buffer holds each tensor. Dense maps share buffers by
//! liveness (a buffer is free again once the last layer reading its tensor has run), so a
//! KITTI-size backbone needs a handful of maps instead of one per layer; graph outputs
//! and the scatter's map
//! keep their own. Per-pillar tensors vary in size per frame and get dedicated buffers.

use crate::graph::{Graph, Op, TensorShape};

/// `slot[tensor]` indexes the buffer of each tensor; `sizes[slot]` is its fixed length
/// (0 for buffers resized per frame).
#[derive(Debug, Clone)]
pub struct BufferPlan {
    /// Buffer of each tensor.
    pub slot: Vec<usize>,
    /// Length of each buffer.
    pub sizes: Vec<usize>,
}

impl BufferPlan {
    /// Plans the buffers of `graph`.
    pub fn new(graph: &Graph) -> Self {
        let n = graph.tensors.len();
        let mut last_use = vec![None; n];
        for (li, layer) in graph.layers.iter().enumerate() {
            for &t in &layer.inputs {
                last_use[t] = Some(li);
            }
        }
        // Graph outputs, and scatter outputs (which stay zero outside the cells the last
        // frame wrote, so that a frame only clears those), keep their own buffers.
        let mut dedicated = vec![Some(graph.head.cls), Some(graph.head.boxes), graph.head.dir];
        dedicated.extend(
            graph
                .layers
                .iter()
                .filter(|l| matches!(l.op, Op::Scatter))
                .map(|l| Some(l.output)),
        );
        let mut slot = vec![usize::MAX; n];
        let mut sizes: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut assign = |t: usize, len: usize, slot: &mut Vec<usize>, free: &mut Vec<usize>| {
            let shared = len > 0 && !dedicated.contains(&Some(t));
            let reuse = if shared {
                free.iter().position(|&s| sizes[s] == len)
            } else {
                None
            };
            slot[t] = match reuse {
                Some(i) => free.swap_remove(i),
                None => {
                    sizes.push(len);
                    sizes.len() - 1
                }
            };
        };
        assign(graph.input, 0, &mut slot, &mut free);
        for (li, layer) in graph.layers.iter().enumerate() {
            let len = match graph.tensors[layer.output].shape {
                TensorShape::Map {
                    height,
                    width,
                    channels,
                } => height * width * channels,
                TensorShape::Points { .. } | TensorShape::Pillars { .. } => 0,
            };
            assign(layer.output, len, &mut slot, &mut free);
            for &t in &layer.inputs {
                let map = matches!(graph.tensors[t].shape, TensorShape::Map { .. });
                if map
                    && last_use[t] == Some(li)
                    && !dedicated.contains(&Some(t))
                    && !free.contains(&slot[t])
                {
                    free.push(slot[t]);
                }
            }
        }
        Self { slot, sizes }
    }
}
