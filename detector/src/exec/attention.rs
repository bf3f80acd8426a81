//! The non-GEMM parts of the windowed attention block (maths in `tools/train/model.py`):
//! the window order of the map's cells, LayerNorm, per-window multi-head softmax
//! attention, and the residual add. The executors run the `qkv` and `proj` projections
//! as linear layers on the window-ordered rows between these steps.

use lidarq_quant::kernels::{AttentionScratch, attend, cpu};
use rayon::prelude::*;

/// Cells in window order: window (wy, wx) row-major, then the window's cells row-major.
/// Edge windows are smaller when the window size does not divide the map.
#[derive(Debug, Clone)]
pub struct WindowOrder {
    /// Window-order position → cell index `y·W + x`.
    pub cells: Vec<usize>,
    /// `windows + 1` offsets into `cells`.
    pub offsets: Vec<usize>,
}

impl WindowOrder {
    /// The order of an `h`×`w` map with `ws`×`ws` windows.
    pub fn new(h: usize, w: usize, ws: usize) -> Self {
        let mut cells = Vec::with_capacity(h * w);
        let mut offsets = vec![0];
        for wy in (0..h).step_by(ws) {
            for wx in (0..w).step_by(ws) {
                for y in wy..(wy + ws).min(h) {
                    cells.extend((wx..(wx + ws).min(w)).map(|x| y * w + x));
                }
                offsets.push(cells.len());
            }
        }
        Self { cells, offsets }
    }
}

/// LayerNorm of each cell of `map` (`[HW, C]`) into `out`, rows in window order.
pub fn layer_norm_windowed(
    map: &[f32],
    order: &WindowOrder,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    let c = weight.len();
    out.par_chunks_mut(c)
        .zip(order.cells.par_iter())
        .for_each(|(o, &cell)| {
            let x = &map[cell * c..(cell + 1) * c];
            let mean = x.iter().sum::<f32>() / c as f32;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for (((o, &v), &w), &b) in o.iter_mut().zip(x).zip(weight).zip(bias) {
                *o = (v - mean) * inv * w + b;
            }
        });
}

/// Multi-head softmax attention within each window: `qkv` rows (`[N, 3C]`, q | k | v,
/// window order) → `out` rows (`[N, C]`).
pub fn window_attention(
    qkv: &[f32],
    order: &WindowOrder,
    channels: usize,
    heads: usize,
    out: &mut [f32],
) {
    let isa = cpu::selected();
    let mut parts = Vec::with_capacity(order.offsets.len());
    let mut rest = out;
    for w in order.offsets.windows(2) {
        let (head, tail) = rest.split_at_mut((w[1] - w[0]) * channels);
        parts.push((&qkv[w[0] * 3 * channels..w[1] * 3 * channels], head));
        rest = tail;
    }
    parts
        .into_par_iter()
        .for_each_init(AttentionScratch::default, |scratch, (rows, out)| {
            attend(isa, rows, channels, heads, out, scratch)
        });
}

/// `out[cell] = map[cell] + proj[window position of cell]`.
pub fn residual_from_windows(
    map: &[f32],
    proj: &[f32],
    order: &WindowOrder,
    channels: usize,
    out: &mut [f32],
) {
    out.copy_from_slice(map);
    for (pos, &cell) in order.cells.iter().enumerate() {
        for (o, &p) in out[cell * channels..(cell + 1) * channels]
            .iter_mut()
            .zip(&proj[pos * channels..(pos + 1) * channels])
        {
            *o += p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_order_covers_the_map_once() {
        let o = WindowOrder::new(3, 5, 2);
        assert_eq!(o.offsets, vec![0, 4, 8, 10, 12, 14, 15]);
        assert_eq!(&o.cells[..4], &[0, 1, 5, 6]);
        assert_eq!(&o.cells[8..10], &[4, 9]);
        let mut seen = o.cells.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..15).collect::<Vec<_>>());
    }
}
