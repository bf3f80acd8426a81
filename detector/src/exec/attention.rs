//! The non-GEMM parts of the windowed attention block (maths in `tools/train/model.py`):
//! the window order of the map's cells, LayerNorm, per-window multi-head softmax
//! attention, and the residual add. The executors run the `qkv` and `proj` projections
//! as linear layers on the window-ordered rows between these steps.

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
    let d = channels / heads;
    let scale = (d as f32).powf(-0.5);
    let mut parts = Vec::with_capacity(order.offsets.len());
    let mut rest = out;
    for w in order.offsets.windows(2) {
        let (head, tail) = rest.split_at_mut((w[1] - w[0]) * channels);
        parts.push((w[0], w[1], head));
        rest = tail;
    }
    parts
        .into_par_iter()
        .for_each_init(Vec::new, |logits: &mut Vec<f32>, (start, end, out)| {
            let n = end - start;
            let rows = &qkv[start * 3 * channels..end * 3 * channels];
            logits.resize(n, 0.0);
            for h in 0..heads {
                for i in 0..n {
                    let q = &rows[i * 3 * channels + h * d..][..d];
                    for (j, l) in logits.iter_mut().enumerate() {
                        let k = &rows[j * 3 * channels + channels + h * d..][..d];
                        *l = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                    }
                    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let mut sum = 0.0;
                    for l in logits.iter_mut() {
                        *l = (*l - max).exp();
                        sum += *l;
                    }
                    let o = &mut out[i * channels + h * d..][..d];
                    o.fill(0.0);
                    for (j, &p) in logits.iter().enumerate() {
                        let v = &rows[j * 3 * channels + 2 * channels + h * d..][..d];
                        for (o, &v) in o.iter_mut().zip(v) {
                            *o += p * v;
                        }
                    }
                    for o in o.iter_mut() {
                        *o /= sum;
                    }
                }
            }
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

    #[test]
    fn attention_of_two_tokens_by_hand() {
        // One window of 2 tokens, 1 head of 1 channel: q = [1, 0], k = [0, 2], v = [3, 5].
        let qkv = [1.0, 0.0, 3.0, 0.0, 2.0, 5.0];
        let order = WindowOrder::new(1, 2, 2);
        let mut out = [0.0; 2];
        window_attention(&qkv, &order, 1, 1, &mut out);
        // Token 0: logits [0, 2] → weights 1/(1+e²), e²/(1+e²).
        let e2 = 2f32.exp();
        assert!((out[0] - (3.0 + 5.0 * e2) / (1.0 + e2)).abs() < 1e-5);
        // Token 1: logits [0, 0] → mean of v.
        assert!((out[1] - 4.0).abs() < 1e-6);
    }
}
