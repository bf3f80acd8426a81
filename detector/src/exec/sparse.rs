//! Skipping the BEV cells whose receptive field holds no pillar (static int8 and fp32
//! layers).
//!
//! An empty scatter cell holds 0 (the zero point in int8), and with BatchNorm folded a convolution of
//! an input that is one vector everywhere in its window gives one output vector: every
//! cell whose receptive field holds no pillar carries a per-layer constant. The executor
//! computes only the other cells (the *active* ones) and fills the rest with that
//! constant, which the layer's own kernel computes on a small input made of the input's
//! constant, so the output is bit-identical to a dense run.
//!
//! The constant is a `period`×`period` tile aligned to the map's origin: a transposed
//! convolution of stride s turns one constant vector into an s×s pattern, and a concat of
//! deblocks has the least common multiple of their periods. A cell whose window reaches
//! the zero padding is always active (padding is real 0, not the constant). The attention
//! block runs dense and passes on its full-sized windows whose cells are all empty (their
//! output is its output for a window of constants; the executor computes that). Layers
//! this cannot describe (fp16 and dynamic convolutions, a k×k convolution of a periodic
//! input) run dense and end the skipping downstream.

use lidarq_quant::QuantError;
use lidarq_quant::kernels::{ConvOutI8, ConvShape, PackedConvF32, PackedConvI8};
use rayon::prelude::*;

/// The empty cells of a map `[h][w][c]` of `T` (i8 or f32).
#[derive(Debug, Clone)]
pub(crate) struct EmptyCells<T> {
    /// `false`: the cell holds `tile[(y % period)·period + x % period]`.
    pub active: Vec<bool>,
    pub period: usize,
    /// `period²` vectors of `c` values.
    pub tile: Vec<T>,
}

/// A packed convolution that computes listed output rows exactly as a full run does: the
/// int8 kernel (i8 in, i8 or f32 out) and the f32 one.
pub(crate) trait RowKernel<T, O> {
    fn shape(&self) -> &ConvShape;
    /// Side of the output blocks the kernel computes together (origin-aligned).
    fn output_tile(&self) -> usize;
    fn run_rows(&self, input: &[T], rows: &[u32], output: &mut [O]) -> Result<(), QuantError>;
    fn run_at(&self, h: usize, w: usize, input: &[T], output: &mut [O]) -> Result<(), QuantError>;
}

impl<O: ConvOutI8> RowKernel<i8, O> for PackedConvI8 {
    fn shape(&self) -> &ConvShape {
        PackedConvI8::shape(self)
    }
    fn output_tile(&self) -> usize {
        self.algorithm().output_tile()
    }
    fn run_rows(&self, input: &[i8], rows: &[u32], output: &mut [O]) -> Result<(), QuantError> {
        PackedConvI8::run_rows(self, input, rows, output)
    }
    fn run_at(&self, h: usize, w: usize, input: &[i8], output: &mut [O]) -> Result<(), QuantError> {
        PackedConvI8::run_at(self, h, w, input, output)
    }
}

impl RowKernel<f32, f32> for PackedConvF32 {
    fn shape(&self) -> &ConvShape {
        PackedConvF32::shape(self)
    }
    fn output_tile(&self) -> usize {
        self.algorithm().output_tile()
    }
    fn run_rows(&self, input: &[f32], rows: &[u32], output: &mut [f32]) -> Result<(), QuantError> {
        PackedConvF32::run_rows(self, input, rows, output)
    }
    fn run_at(
        &self,
        h: usize,
        w: usize,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<(), QuantError> {
        PackedConvF32::run_at(self, h, w, input, output)
    }
}

/// How one convolution runs sparsely.
pub(crate) struct SparseConv {
    /// Output cells that the kernel computes (`true`) or that get the tile.
    pub active: Vec<bool>,
    /// The GEMM rows to compute: output pixels, or input pixels of a transposed convolution.
    pub rows: Vec<u32>,
    pub period: usize,
}

/// The scatter map: active at the pillars' cells, `empty` (zero) elsewhere.
pub(crate) fn scattered<T: Copy>(
    coords: &[[i32; 3]],
    h: usize,
    w: usize,
    c: usize,
    empty: T,
) -> EmptyCells<T> {
    EmptyCells {
        active: pillar_cells(coords, h, w),
        period: 1,
        tile: vec![empty; c],
    }
}

/// The cells of an `h`×`w` map that hold a pillar (coords `(z, y, x)`).
pub(crate) fn pillar_cells(coords: &[[i32; 3]], h: usize, w: usize) -> Vec<bool> {
    let mut cells = vec![false; h * w];
    for &[_, y, x] in coords {
        cells[y as usize * w + x as usize] = true;
    }
    cells
}

/// The cells of an `oh`×`ow` transposed-convolution output (kernel = stride `s`) whose
/// input cell (input width `iw`) is flagged in `src`.
pub(crate) fn expand_blocks(src: &[bool], iw: usize, oh: usize, ow: usize, s: usize) -> Vec<bool> {
    (0..oh * ow)
        .map(|i| src[(i / ow / s) * iw + (i % ow) / s])
        .collect()
}

/// The sparse plan of a kernel of `shape` that computes `tile`×`tile` output blocks, on an
/// input with `empty` cells, or `None` when the input's constant is not one this layer
/// maps to a constant tile, or when so few cells would be skipped that listing them costs
/// more than it saves (the layer runs dense and the skipping ends there).
pub(crate) fn plan<T>(shape: &ConvShape, tile: usize, empty: &EmptyCells<T>) -> Option<SparseConv> {
    let plan = sparse_plan(shape, tile, empty)?;
    (plan.active.iter().filter(|&&a| !a).count() * MIN_SKIPPED.1
        >= plan.active.len() * MIN_SKIPPED.0)
        .then_some(plan)
}

/// Skip only when at least this fraction (numerator, denominator) of the cells is empty:
/// on the KITTI-size head 0.4 % could be skipped, and the sparse run took 24 % longer.
const MIN_SKIPPED: (usize, usize) = (1, 20);

/// A kernel computing `tile`×`tile` output blocks computes a block when any of its
/// outputs is needed, and a block's values depend on the block's whole input patch (for
/// Winograd's, even where an output's own window is constant, rounding differs), so
/// activity is decided per block: the block's patch is a window of `(tile−1)·s + k` at
/// stride `tile·s`.
fn sparse_plan<T>(shape: &ConvShape, tile: usize, empty: &EmptyCells<T>) -> Option<SparseConv> {
    let (oh, ow) = (shape.out_h(), shape.out_w());
    if shape.transposed {
        if empty.period != 1 {
            return None;
        }
        return Some(SparseConv {
            active: expand_blocks(&empty.active, shape.in_w, oh, ow, shape.stride),
            rows: listed(&empty.active),
            period: shape.stride,
        });
    }
    let pointwise = shape.kernel == 1 && shape.stride == 1 && shape.pad == 0;
    if empty.period != 1 && !pointwise {
        return None;
    }
    let (s, p) = (shape.stride * tile, shape.pad);
    let k = (tile - 1) * shape.stride + shape.kernel;
    let (th, tw) = (oh.div_ceil(tile), ow.div_ceil(tile));
    let mut blocks = dilate(&empty.active, shape.in_h, shape.in_w, th, tw, k, s, p);
    let reaches_padding = |o: usize, n: usize| o * s < p || o * s + k > n + p;
    for (i, a) in blocks.iter_mut().enumerate() {
        *a |= reaches_padding(i / tw, shape.in_h) || reaches_padding(i % tw, shape.in_w);
    }
    let active = expand_blocks(&blocks, tw, oh, ow, tile);
    Some(SparseConv {
        rows: listed(&active),
        active,
        period: empty.period,
    })
}

fn listed(active: &[bool]) -> Vec<u32> {
    active
        .iter()
        .enumerate()
        .filter(|(_, a)| **a)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Runs `kernel` on the planned cells only and fills the others with its output for the
/// input's constant; returns the output's empty cells and (cells computed, cells).
pub(crate) fn run<T: Copy, O: Copy + Default + Send + Sync>(
    kernel: &impl RowKernel<T, O>,
    plan: SparseConv,
    empty: &EmptyCells<T>,
    input: &[T],
    output: &mut [O],
) -> Result<(EmptyCells<O>, (usize, usize)), QuantError> {
    let shape = kernel.shape();
    kernel.run_rows(input, &plan.rows, output)?;
    let tile = constant_tile(kernel, empty)?;
    fill(
        output,
        &plan.active,
        shape.out_w(),
        shape.out_c,
        plan.period,
        &tile,
    );
    let work = (
        plan.active.iter().filter(|&&a| a).count(),
        plan.active.len(),
    );
    let cells = EmptyCells {
        active: plan.active,
        period: plan.period,
        tile,
    };
    Ok((cells, work))
}

/// The layer's output for an input holding `empty`'s tile everywhere, as a tile.
fn constant_tile<T: Copy, O: Copy + Default>(
    kernel: &impl RowKernel<T, O>,
    empty: &EmptyCells<T>,
) -> Result<Vec<O>, QuantError> {
    let shape = kernel.shape();
    let (c, oc, pe) = (shape.in_c, shape.out_c, empty.period);
    if shape.transposed || pe > 1 {
        // A 1×1 input (transposed) gives the s×s pattern; a pointwise conv maps the tile.
        let mut out = vec![O::default(); pe * pe * shape.stride * shape.stride * oc];
        kernel.run_at(pe, pe, &empty.tile, &mut out)?;
        return Ok(out);
    }
    // Output cell (o, o) of an n×n input whose block's patch lies inside the input.
    let (k, s, p, t) = (shape.kernel, shape.stride, shape.pad, kernel.output_tile());
    let o = p.div_ceil(s).next_multiple_of(t);
    let n = (o + t - 1) * s + k - p;
    let input: Vec<T> = empty.tile.iter().copied().cycle().take(n * n * c).collect();
    let small = shape.with_input(n, n);
    let mut out = vec![O::default(); small.out_h() * small.out_w() * oc];
    kernel.run_at(n, n, &input, &mut out)?;
    let at = (o * small.out_w() + o) * oc;
    Ok(out[at..at + oc].to_vec())
}

/// Writes the tile into every inactive cell of `out` (`[h][w][c]`).
pub(crate) fn fill<O: Copy + Send + Sync>(
    out: &mut [O],
    active: &[bool],
    w: usize,
    c: usize,
    period: usize,
    tile: &[O],
) {
    out.par_chunks_mut(w * c)
        .zip(active.par_chunks(w))
        .enumerate()
        .for_each(|(y, (row, active))| {
            let tile_row = &tile[(y % period) * period * c..][..period * c];
            for (x, (cell, _)) in row
                .chunks_exact_mut(c)
                .zip(active)
                .enumerate()
                .filter(|(_, (_, a))| !**a)
            {
                cell.copy_from_slice(&tile_row[(x % period) * c..][..c]);
            }
        });
}

/// The empty cells of a channel concat, `convert(i, v)` mapping input `i`'s values to the
/// output's (int8 inputs may be requantized), or `None` if an input has none.
pub(crate) fn concat<T: Copy>(
    inputs: &[Option<&EmptyCells<T>>],
    channels: &[usize],
    convert: impl Fn(usize, T) -> T,
) -> Option<EmptyCells<T>> {
    let inputs: Vec<&EmptyCells<T>> = inputs.iter().copied().collect::<Option<_>>()?;
    let period = inputs.iter().fold(1, |l, e| lcm(l, e.period));
    let mut active = vec![false; inputs.first()?.active.len()];
    for e in &inputs {
        active.iter_mut().zip(&e.active).for_each(|(a, &b)| *a |= b);
    }
    let mut tile = Vec::with_capacity(period * period * channels.iter().sum::<usize>());
    for ty in 0..period {
        for tx in 0..period {
            for (i, (e, &c)) in inputs.iter().zip(channels).enumerate() {
                let at = ((ty % e.period) * e.period + tx % e.period) * c;
                tile.extend(e.tile[at..at + c].iter().map(|&v| convert(i, v)));
            }
        }
    }
    Some(EmptyCells {
        active,
        period,
        tile,
    })
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}

/// Output cells of a k×k convolution whose input window holds a flagged cell.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dilate(
    src: &[bool],
    ih: usize,
    iw: usize,
    oh: usize,
    ow: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Vec<bool> {
    let span = |o: usize, n: usize| {
        let lo = (o * stride).saturating_sub(pad);
        let hi = (o * stride + k).saturating_sub(pad).min(n);
        lo..hi
    };
    // Rows first (any flagged cell in the row window), then columns.
    let mut rows = vec![false; oh * iw];
    for oy in 0..oh {
        for iy in span(oy, ih) {
            for x in 0..iw {
                rows[oy * iw + x] |= src[iy * iw + x];
            }
        }
    }
    (0..oh * ow)
        .map(|i| {
            let (oy, ox) = (i / ow, i % ow);
            span(ox, iw).any(|ix| rows[oy * iw + ix])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reaching_the_padding_are_always_computed() {
        // 6×6 input, one pillar at (2, 2); 3×3, stride 1, padding 1.
        let mut active = vec![false; 36];
        active[2 * 6 + 2] = true;
        let empty = EmptyCells {
            active,
            period: 1,
            tile: vec![0i8; 4],
        };
        let conv = plan(&ConvShape::conv(6, 6, 4, 4, 3, 1, 1), 1, &empty).unwrap();
        let on = |y: usize, x: usize| conv.active[y * 6 + x];
        assert!(
            on(1, 1) && on(3, 3) && on(2, 2),
            "the pillar's neighbourhood"
        );
        assert!(on(0, 4) && on(5, 5) && on(4, 0), "the border ring");
        assert!(
            !on(4, 4) && !on(1, 4) && !on(4, 2),
            "interior cells away from the pillar"
        );
        assert_eq!(conv.rows.len(), 9 + 20);
        // A stride-2 deconv of that map: the pillar cell's 2×2 block, period 2.
        let deconv = plan(&ConvShape::deconv(6, 6, 4, 4, 2), 1, &empty).unwrap();
        assert_eq!((deconv.period, deconv.rows), (2, vec![14]));
        let block = |y: usize, x: usize| deconv.active[y * 12 + x];
        assert!(block(4, 4) && block(5, 5) && !block(4, 6) && !block(0, 0));
    }

    #[test]
    fn two_by_two_blocks_are_active_when_their_patch_is() {
        // 10×10, one pillar at (2, 2); 3×3 stride 1 padding 1 in 2×2 blocks: block (by, bx)
        // reads input rows and columns 2b−1 ..= 2b+2, so only blocks 1..=3 avoid the
        // padding, and of those only (1, 1) sees the pillar.
        let mut active = vec![false; 100];
        active[2 * 10 + 2] = true;
        let empty = EmptyCells {
            active,
            period: 1,
            tile: vec![0f32; 2],
        };
        let shape = ConvShape::conv(10, 10, 2, 2, 3, 1, 1);
        let blocks = plan(&shape, 2, &empty).unwrap();
        let idle: Vec<(usize, usize)> = (0..100)
            .filter(|&i| !blocks.active[i])
            .map(|i| (i / 10, i % 10))
            .collect();
        let want: Vec<(usize, usize)> = (2..8)
            .flat_map(|y| (2..8).map(move |x| (y, x)))
            .filter(|&(y, x)| y >= 4 || x >= 4)
            .collect();
        assert_eq!(idle, want);
        // Cell by cell: the 3×3 around the pillar and the border ring are computed.
        let cells = plan(&shape, 1, &empty).unwrap();
        assert_eq!(cells.active.iter().filter(|&&a| !a).count(), 55);
        // A pillar at (4, 4) is outside cell (2, 2)'s window but inside its block's patch.
        let mut far = empty;
        far.active.fill(false);
        far.active[4 * 10 + 4] = true;
        assert!(!plan(&shape, 1, &far).unwrap().active[2 * 10 + 2]);
        assert!(plan(&shape, 2, &far).unwrap().active[2 * 10 + 2]);
    }

    #[test]
    fn almost_full_maps_run_dense() {
        let mut active = vec![true; 100];
        active[..4].fill(false);
        let empty = EmptyCells {
            active,
            period: 1,
            tile: vec![0i8; 1],
        };
        let pointwise = ConvShape::conv(10, 10, 1, 1, 1, 1, 0);
        assert!(plan(&pointwise, 1, &empty).is_none(), "4 % skippable");
        let mut half = empty;
        half.active[..50].fill(false);
        assert!(plan(&pointwise, 1, &half).is_some());
    }

    #[test]
    fn concat_tiles_repeat_each_input_over_the_common_period() {
        let a = EmptyCells {
            active: vec![false; 16],
            period: 1,
            tile: vec![7i8],
        };
        let b = EmptyCells {
            active: vec![false; 16],
            period: 2,
            tile: vec![1i8, 2, 3, 4],
        };
        let c = concat(&[Some(&a), Some(&b)], &[1, 1], |i, v| {
            if i == 1 { v * 10 } else { v }
        })
        .unwrap();
        assert_eq!(c.period, 2);
        assert_eq!(c.tile, vec![7, 10, 7, 20, 7, 30, 7, 40]);
        assert!(concat(&[Some(&a), None], &[1, 1], |_, v| v).is_none());
    }

    #[test]
    fn a_3x3_stride_2_window_by_hand() {
        // 4×4 input, one flagged cell at (1, 2); 3×3, stride 2, padding 1 → 2×2 output.
        let mut src = vec![false; 16];
        src[4 + 2] = true;
        // Output (oy, ox) sees input rows 2oy−1 ..= 2oy+1 and the same columns.
        assert_eq!(
            dilate(&src, 4, 4, 2, 2, 3, 2, 1),
            vec![false, true, false, true]
        );
        // 1×1 stride 1: the identity.
        assert_eq!(dilate(&src, 4, 4, 4, 4, 1, 1, 0), src);
    }
}
