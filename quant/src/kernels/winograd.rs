//! Winograd F(2×2, 3×3) for 3×3, stride-1, padding-1 convolutions: 16 multiplies per
//! 2×2 output tile and channel pair instead of 36 (2.25× less arithmetic).
//!
//! Per tile, the 4×4 input patch `d` (padding taps zero) becomes `V = Bᵀ d B`, each 3×3
//! filter `g` becomes `U = G' g G'ᵀ` with `G' = 2G` (integer entries), and the tile is
//! `Y = ¼ · Aᵀ [Σ_ic U ⊙ V] A`. The 16 sums over input channels are 16 GEMMs of
//! (tiles × in_c)·(in_c × out_c) run by the same micro-kernels as every other layer; the
//! transforms are additions and subtractions only.
//!
//! * int8: activations with the zero point subtracted (|x| ≤ 255) transform to |V| ≤ 1020
//!   and int8 weights (−128 included) to |U| ≤ 9·128 = 1152, both i16, so every step is integer and `4·Y` is
//!   exactly the direct convolution's accumulator (i32 sums wrap, and the result fits):
//!   the same bits as the im2col kernel.
//! * fp32: `¼` is exact; the transforms add rounding, bounded by the magnitudes of the
//!   transformed inputs and filters (a small weight's output can carry the rounding of its
//!   filter's large ones; the tests bound it so). An input that
//!   is one vector over a whole patch gives a `V` whose only non-zero term is the centre
//!   one (`4x`, exact), so every such tile yields the same bits in all four pixels — what
//!   the empty-cell skipping relies on.
//!
//! Tasks are tile rows (two output rows, rayon), each split into blocks of tiles whose
//! transformed inputs and 16 GEMM results stay in L2.

use super::cpu::{self, Isa};
use super::gemm::{Epilogue, Family, MR, NR, Operands, PackedB, Rows};
use super::micro::{F32, I16};
use super::shape::ConvShape;
use rayon::prelude::*;

/// Tile side (outputs) and patch side (inputs).
const TILE: usize = 2;
const PATCH: usize = 4;
/// Largest tile block: bounds the per-task list of tile positions.
const MAX_BLOCK: usize = 16 * MR;

/// Addition and subtraction for the transforms: exact wrap-around for integers.
pub(crate) trait Ring: Copy {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
}

impl Ring for f32 {
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn sub(self, o: Self) -> Self {
        self - o
    }
}

impl Ring for i16 {
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
}

impl Ring for i32 {
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
}

/// A family whose operands and accumulators the transforms can combine.
pub(crate) trait WinogradFamily: Family<A: Ring, B: Ring, Acc: Ring> {
    /// `acc / 4`, exact: the `G' = 2G` scaling undone.
    fn quarter(acc: Self::Acc) -> Self::Acc;
}

impl WinogradFamily for F32 {
    fn quarter(acc: f32) -> f32 {
        acc * 0.25
    }
}

impl WinogradFamily for I16 {
    fn quarter(acc: i32) -> i32 {
        acc >> 2
    }
}

/// `[2a, a+b+c, a−b+c, 2c]`: the rows of `G'` applied to one filter column or row.
fn filter_1d<T: Ring>([a, b, c]: [T; 3]) -> [T; 4] {
    [a.add(a), a.add(b).add(c), a.sub(b).add(c), c.add(c)]
}

/// `U = G' g G'ᵀ` of one 3×3 filter (row-major), row-major 4×4.
fn filter_2d<T: Ring>(g: [T; 9]) -> [T; 16] {
    let cols: [[T; 4]; 3] = std::array::from_fn(|x| filter_1d([g[x], g[3 + x], g[6 + x]]));
    let rows: [[T; 4]; 4] =
        std::array::from_fn(|i| filter_1d([cols[0][i], cols[1][i], cols[2][i]]));
    std::array::from_fn(|k| rows[k / PATCH][k % PATCH])
}

/// The 16 transformed weight matrices, each packed as a `in_c`×`out_c` GEMM operand.
#[derive(Debug, Clone)]
pub(crate) struct WinogradB<A> {
    xi: Vec<PackedB<A>>,
}

impl<A: Copy + Default> WinogradB<A> {
    /// Transforms and packs OIHW 3×3 weights: `widen` to the exact transform type, `narrow`
    /// to the packed operand.
    pub(crate) fn pack<W: Copy, T: Ring>(
        shape: &ConvShape,
        weights: &[W],
        kstep: usize,
        widen: impl Fn(W) -> T,
        narrow: impl Fn(T) -> A,
    ) -> Self {
        let (ic, oc) = (shape.in_c, shape.out_c);
        let mut u: Vec<Vec<A>> = (0..PATCH * PATCH)
            .map(|_| Vec::with_capacity(ic * oc))
            .collect();
        for filter in weights.chunks_exact(9) {
            let t = filter_2d(std::array::from_fn(|k| widen(filter[k])));
            for (dst, v) in u.iter_mut().zip(t) {
                dst.push(narrow(v));
            }
        }
        // `u[ξ]` is now `[oc][ic]`: the weight layout of a linear layer.
        let gemm = ConvShape::linear(1, ic, oc);
        Self {
            xi: u
                .iter()
                .map(|m| PackedB::pack(&gemm, m, kstep, kstep, |v| v))
                .collect(),
        }
    }
}

/// Whether Winograd F(2×2, 3×3) computes this layer.
pub(crate) fn applies(shape: &ConvShape) -> bool {
    !shape.transposed && shape.kernel == 3 && shape.stride == 1 && shape.pad == 1
}

/// Runs a Winograd layer: same contract as [`super::gemm::run`] (listed rows are output
/// pixels; every other output value is left untouched).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<F: WinogradFamily, In: Sync, O: Send, E: Epilogue<F::Acc, O>>(
    isa: Isa,
    shape: &ConvShape,
    b: &WinogradB<F::B>,
    input: &[In],
    ops: &impl Operands<In, F::A>,
    epilogue: &E,
    rows: Rows<'_>,
    output: &mut [O],
) {
    let (oh, ow, oc) = (shape.out_h(), shape.out_w(), shape.out_c);
    if oh == 0 || ow == 0 || output.is_empty() {
        return;
    }
    let k_pad = b.xi[0].k_pad();
    let n_pad = b.xi[0].n_pad(1);
    let per_tile = PATCH * PATCH * (k_pad * size_of::<F::A>() + n_pad * size_of::<F::Acc>());
    // A tile block's transformed inputs and GEMM results take half of L2, leaving the rest
    // to the weights streaming through: the larger the block, the more rows reuse each
    // weight panel while it is in L1 (2 MiB L2 against 512 KiB: int8 128→128 at 124×108
    // 6.1 → 5.3 ms, fp32 13.0 → 10.8 ms). Only the tiling changes, never a result.
    let block = (cpu::l2_bytes() / 2 / per_tile / MR * MR).clamp(MR, MAX_BLOCK);
    output
        .par_chunks_mut(TILE * ow * oc)
        .enumerate()
        .for_each(|(ty, chunk)| {
            let first_pixel = ty * TILE * ow;
            let listed = match rows {
                Rows::All(_) => None,
                Rows::Listed(list) => {
                    let lo = list.partition_point(|&p| (p as usize) < first_pixel);
                    let hi = list.partition_point(|&p| (p as usize) < first_pixel + TILE * ow);
                    if lo == hi {
                        return;
                    }
                    Some(&list[lo..hi])
                }
            };
            let mut tiles = TileColumns::new(listed, first_pixel, ow);
            F::scratch().with(|s| {
                let (a_buf, c_buf) = &mut *s.borrow_mut();
                let mut xs = [0usize; MAX_BLOCK];
                loop {
                    let mut n = 0;
                    for tx in tiles.by_ref().take(block) {
                        xs[n] = tx;
                        n += 1;
                    }
                    if n == 0 {
                        break;
                    }
                    let tile = Tiles {
                        ty,
                        xs: &xs[..n],
                        rows_pad: n.div_ceil(MR) * MR,
                        k_pad,
                        n_pad,
                    };
                    transform_inputs::<F, In>(shape, &tile, input, ops, a_buf);
                    multiply::<F>(isa, b, &tile, a_buf, c_buf);
                    transform_outputs::<F, O, E>(isa, shape, &tile, epilogue, listed, c_buf, chunk);
                }
            });
        });
}

/// The ascending tile columns of a tile row that hold a listed pixel (every column when
/// nothing is listed). Each of the two output rows' listed pixels is ascending; merging
/// their columns and dropping repeats needs no allocation.
struct TileColumns<'a> {
    /// Unlisted: the next column and the count.
    next: usize,
    count: usize,
    /// Listed: the pixels of the top and bottom output rows, and the row's first pixel.
    top: &'a [u32],
    bottom: &'a [u32],
    first_pixel: usize,
    ow: usize,
    last: Option<usize>,
}

impl<'a> TileColumns<'a> {
    fn new(listed: Option<&'a [u32]>, first_pixel: usize, ow: usize) -> Self {
        let list = listed.unwrap_or(&[]);
        let split = list.partition_point(|&p| (p as usize) < first_pixel + ow);
        Self {
            next: 0,
            count: if listed.is_some() {
                0
            } else {
                ow.div_ceil(TILE)
            },
            top: &list[..split],
            bottom: &list[split..],
            first_pixel,
            ow,
            last: None,
        }
    }

    fn column(&self, p: u32) -> usize {
        (p as usize - self.first_pixel) % self.ow / TILE
    }
}

impl Iterator for TileColumns<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.next < self.count {
            self.next += 1;
            return Some(self.next - 1);
        }
        loop {
            let from_top = match (self.top.first(), self.bottom.first()) {
                (Some(&a), Some(&b)) => self.column(a) <= self.column(b),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let side = if from_top {
                &mut self.top
            } else {
                &mut self.bottom
            };
            let (&p, rest) = side.split_first()?;
            *side = rest;
            let column = self.column(p);
            if self.last != Some(column) {
                self.last = Some(column);
                return self.last;
            }
        }
    }
}

/// A block of tiles of one tile row and its buffer geometry.
struct Tiles<'a> {
    ty: usize,
    xs: &'a [usize],
    /// Tiles rounded up to whole micro-kernel rows.
    rows_pad: usize,
    k_pad: usize,
    n_pad: usize,
}

/// Fills `a_buf` with `[ξ][rows_pad][k_pad]` transformed inputs (`V`), zero in the padded
/// rows and depth, followed by scratch for one patch and its row transform.
fn transform_inputs<F: WinogradFamily, In>(
    shape: &ConvShape,
    t: &Tiles,
    input: &[In],
    ops: &impl Operands<In, F::A>,
    a_buf: &mut Vec<F::A>,
) {
    let (k_pad, in_c) = (t.k_pad, shape.in_c);
    let plane = t.rows_pad * k_pad;
    let patch_at = PATCH * PATCH * plane;
    let need = patch_at + 2 * PATCH * PATCH * k_pad;
    if a_buf.len() < need {
        a_buf.resize(need, F::A::default());
    }
    let (v, patch) = a_buf[..need].split_at_mut(patch_at);
    for xi in 0..PATCH * PATCH {
        v[xi * plane + t.xs.len() * k_pad..(xi + 1) * plane].fill(F::A::default());
    }
    // fp32 taps are read in place; others are converted into the patch scratch.
    let in_place = ops.view(input).filter(|_| k_pad == in_c);
    for (i, &tx) in t.xs.iter().enumerate() {
        let pixel = |tap: usize| {
            let iy = (t.ty * TILE + tap / PATCH).wrapping_sub(1);
            let ix = (tx * TILE + tap % PATCH).wrapping_sub(1);
            (iy < shape.in_h && ix < shape.in_w).then(|| iy * shape.in_w + ix)
        };
        for (tap, dst) in patch[..PATCH * PATCH * k_pad]
            .chunks_exact_mut(k_pad)
            .enumerate()
        {
            match pixel(tap) {
                Some(_) if in_place.is_some() => {}
                Some(px) => {
                    ops.convert(&input[px * in_c..][..in_c], &mut dst[..in_c]);
                    dst[in_c..].fill(F::A::default());
                }
                None => dst.fill(F::A::default()),
            }
        }
        // Bᵀ on each patch row (into `rows`), then on each transformed column.
        let (taps, rows) = patch.split_at_mut(PATCH * PATCH * k_pad);
        let taps: &[F::A] = taps;
        let tap: [&[F::A]; PATCH * PATCH] =
            std::array::from_fn(|tap| match (pixel(tap), in_place) {
                (Some(px), Some(x)) => &x[px * in_c..][..in_c],
                _ => &taps[tap * k_pad..][..k_pad],
            });
        for r in 0..PATCH {
            let d = [
                tap[r * PATCH],
                tap[r * PATCH + 1],
                tap[r * PATCH + 2],
                tap[r * PATCH + 3],
            ];
            for j in 0..PATCH {
                bt_into(&mut rows[(r * PATCH + j) * k_pad..][..k_pad], d, j);
            }
        }
        for j in 0..PATCH {
            let col = |r: usize| &rows[(r * PATCH + j) * k_pad..][..k_pad];
            for r in 0..PATCH {
                let dst = &mut v[(r * PATCH + j) * plane + i * k_pad..][..k_pad];
                bt_into(dst, [col(0), col(1), col(2), col(3)], r);
            }
        }
    }
}

/// Row `r` of `Bᵀ` applied lane-wise: `[d0−d2, d1+d2, d2−d1, d1−d3][r]`.
fn bt_into<T: Ring>(dst: &mut [T], [d0, d1, d2, d3]: [&[T]; 4], r: usize) {
    let (a, b, add) = match r {
        0 => (d0, d2, false),
        1 => (d1, d2, true),
        2 => (d2, d1, false),
        _ => (d1, d3, false),
    };
    let lanes = dst.iter_mut().zip(a).zip(b);
    if add {
        lanes.for_each(|((o, &x), &y)| *o = x.add(y));
    } else {
        lanes.for_each(|((o, &x), &y)| *o = x.sub(y));
    }
}

/// `c_buf[ξ][rows_pad][n_pad] = V_ξ · U_ξ` for the 16 positions, followed by room for the
/// output transform (four pixels and eight row sums).
fn multiply<F: WinogradFamily>(
    isa: Isa,
    b: &WinogradB<F::B>,
    t: &Tiles,
    a_buf: &[F::A],
    c_buf: &mut Vec<F::Acc>,
) {
    let (k_pad, n_pad) = (t.k_pad, t.n_pad);
    let (a_plane, c_plane) = (t.rows_pad * k_pad, t.rows_pad * n_pad);
    let need = PATCH * PATCH * c_plane + 3 * TILE * TILE * n_pad;
    if c_buf.len() < need {
        c_buf.resize(need, F::Acc::default());
    }
    for (xi, packed) in b.xi.iter().enumerate() {
        let a = &a_buf[xi * a_plane..][..a_plane];
        let c = &mut c_buf[xi * c_plane..][..c_plane];
        for k0 in (0..k_pad).step_by(F::KC) {
            let kc = F::KC.min(k_pad - k0);
            let panels = n_pad / NR;
            for p in (0..panels).step_by(2) {
                let (b0, b1) = packed.panel_pair(p, panels, k0, kc);
                for u in 0..t.rows_pad / MR {
                    F::micro_panels(
                        isa,
                        kc,
                        &a[u * MR * k_pad + k0..],
                        k_pad,
                        b0,
                        b1,
                        &mut c[u * MR * n_pad + p * NR..],
                        n_pad,
                        k0 == 0,
                    );
                }
            }
        }
    }
}

/// `Y = ¼ Aᵀ M A` per tile, then the epilogue into the listed (or all) in-range pixels of
/// the tile row's output `chunk`.
#[allow(clippy::too_many_arguments)]
fn transform_outputs<F: WinogradFamily, O, E: Epilogue<F::Acc, O>>(
    isa: Isa,
    shape: &ConvShape,
    t: &Tiles,
    epilogue: &E,
    listed: Option<&[u32]>,
    c_buf: &mut [F::Acc],
    chunk: &mut [O],
) {
    let (oh, ow, oc, n_pad) = (shape.out_h(), shape.out_w(), shape.out_c, t.n_pad);
    let c_plane = t.rows_pad * n_pad;
    let first_pixel = t.ty * TILE * ow;
    let (m, rest) = c_buf.split_at_mut(PATCH * PATCH * c_plane);
    let (y, sums) = rest.split_at_mut(TILE * TILE * n_pad);
    for (i, &tx) in t.xs.iter().enumerate() {
        // Aᵀ on each row of M (into `sums`), then on each of the two columns.
        for r in 0..PATCH {
            let at = |x: usize| &m[(r * PATCH + x) * c_plane + i * n_pad..][..oc];
            for dx in 0..TILE {
                let dst = &mut sums[(r * TILE + dx) * n_pad..][..oc];
                at_into(dst, [at(0), at(1), at(2), at(3)], dx);
            }
        }
        for dx in 0..TILE {
            let col = |r: usize| &sums[(r * TILE + dx) * n_pad..][..oc];
            for dy in 0..TILE {
                let dst = &mut y[(dy * TILE + dx) * n_pad..][..oc];
                at_into(dst, [col(0), col(1), col(2), col(3)], dy);
                dst.iter_mut().for_each(|v| *v = F::quarter(*v));
            }
        }
        for q in 0..TILE * TILE {
            let (dy, x) = (q / TILE, tx * TILE + q % TILE);
            let (oy, pixel) = (t.ty * TILE + dy, dy * ow + x);
            if oy >= oh || x >= ow {
                continue;
            }
            if listed.is_some_and(|l| l.binary_search(&((first_pixel + pixel) as u32)).is_err()) {
                continue;
            }
            epilogue.row(isa, &y[q * n_pad..][..oc], &mut chunk[pixel * oc..][..oc]);
        }
    }
}

/// Row `r` of `Aᵀ` applied lane-wise: `[m0+m1+m2, m1−m2−m3][r]`.
fn at_into<T: Ring>(dst: &mut [T], [m0, m1, m2, m3]: [&[T]; 4], r: usize) {
    let lanes = dst.iter_mut().zip(m1).zip(m2);
    if r == 0 {
        for (((o, &b), &c), &a) in lanes.zip(m0) {
            *o = a.add(b).add(c);
        }
    } else {
        for (((o, &b), &c), &d) in lanes.zip(m3) {
            *o = b.sub(c).sub(d);
        }
    }
}
