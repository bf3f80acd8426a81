//! The blocked GEMM driver shared by every convolution: weight packing, activation packing
//! (implicit im2col), cache blocking, rayon over row tiles, and the epilogue hand-off.
//!
//! Blocking: rows (output pixels) go in tasks of [`MC`] rows; depth in blocks of
//! [`Family::KC`]; columns in panels of [`NR`] output channels, each packed once at
//! construction as `[panel][k][NR]` (pairs of `k` interleaved for i16, quads for u8, see
//! [`Family::KSTEP`]). For each depth block the task packs its rows `[MC][kc]` and runs the
//! micro-kernel (`MR`×`NR`, or 32 rows × two panels of AMX tiles) over every panel,
//! accumulating into a task-local
//! `[MC][n_pad]` buffer; the epilogue runs once per row after the last depth block.
//! Every output value is accumulated over `k` in increasing order by one task, so results
//! do not depend on the number of threads.

use std::cell::RefCell;
use std::thread::LocalKey;

use rayon::prelude::*;

use super::cpu::Isa;
use super::shape::ConvShape;

/// Rows of the micro-kernel tile.
pub(crate) const MR: usize = 6;
/// Columns (output channels) of the micro-kernel tile.
pub(crate) const NR: usize = 16;
/// Rows per packing block: a multiple of every family's tile height ([`Family::tile_rows`]:
/// `MR`, or 32 for AMX).
const MC: usize = 16 * MR;

/// Per-thread packing and accumulator buffers of one [`Family`]; they only grow, so a
/// thread allocates nothing after its first call at a given size.
pub(crate) type Scratch<A, Acc> = RefCell<(Vec<A>, Vec<Acc>)>;

/// Bytes of a cache line. A 512-bit load or an AMX tile row is one line when it starts on a
/// boundary and two otherwise, and large allocations start 16 bytes past a page (glibc):
/// the buffers the kernels stream start on a line by hand (the AMX path's 128-channel 3×3
/// layer took 2.3–2.4 ms misaligned, 1.2–1.3 ms aligned).
const LINE: usize = 64;

/// Where the first cache-line boundary of `buf` lies, in elements (0 where it cannot be
/// reached, which only costs speed).
fn line_start<T>(buf: &[T]) -> usize {
    let slack = LINE / size_of::<T>();
    let start = buf.as_ptr().align_offset(LINE);
    if start < slack { start } else { 0 }
}

/// `len` elements of `buf` (grown as needed) from its first cache-line boundary.
fn aligned<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    let slack = LINE / size_of::<T>();
    if buf.len() < len + slack {
        buf.resize(len + slack, T::default());
    }
    let start = line_start(buf);
    &mut buf[start..start + len]
}

/// An arithmetic family: packed operand types, accumulator type and micro-kernels.
pub(crate) trait Family: 'static {
    /// Packed activation element.
    type A: Copy + Default + Send + Sync + 'static;
    /// Packed weight element.
    type B: Copy + Default + Send + Sync + 'static;
    /// Accumulator element.
    type Acc: Copy + Default + Send + Sync + 'static;
    /// Depth values interleaved per packed step (2 for `vpmaddwd` pairs, 4 for `vpdpbusd`
    /// quads).
    const KSTEP: usize;
    /// Depth block: one `KC`×`NR` weight micro-panel stays in L1.
    const KC: usize;
    /// Rows of the kernels' tile on path `isa` (a divisor of the packing block).
    fn tile_rows(_isa: Isa) -> usize {
        MR
    }
    /// `c[r·ldc + j] (+)= Σ_k a[r·lda + k] · B[k][j]` for `r < tile_rows(isa)`, `j < NR`, `B` the packed
    /// `kc`×`NR` micro-panel `b`; `first` starts from zero instead of `c`.
    #[allow(clippy::too_many_arguments)]
    fn micro(
        isa: Isa,
        kc: usize,
        a: &[Self::A],
        lda: usize,
        b: &[Self::B],
        c: &mut [Self::Acc],
        ldc: usize,
        first: bool,
    );
    /// [`Family::micro`] for panel `b0` into columns `0..NR` of `c` and, when given, the
    /// next panel `b1` into columns `NR..2·NR`: the same results as one call per panel (a
    /// path may share the loads of `a` between the two).
    #[allow(clippy::too_many_arguments)]
    fn micro_panels(
        isa: Isa,
        kc: usize,
        a: &[Self::A],
        lda: usize,
        b0: &[Self::B],
        b1: Option<&[Self::B]>,
        c: &mut [Self::Acc],
        ldc: usize,
        first: bool,
    ) {
        panel_by_panel::<Self>(isa, kc, a, lda, b0, b1, c, ldc, first);
    }
    /// This thread's scratch buffers.
    fn scratch() -> &'static LocalKey<Scratch<Self::A, Self::Acc>>;
}

/// [`Family::micro_panels`] as one [`Family::micro`] call per panel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn panel_by_panel<F: Family + ?Sized>(
    isa: Isa,
    kc: usize,
    a: &[F::A],
    lda: usize,
    b0: &[F::B],
    b1: Option<&[F::B]>,
    c: &mut [F::Acc],
    ldc: usize,
    first: bool,
) {
    F::micro(isa, kc, a, lda, b0, c, ldc, first);
    if let Some(b1) = b1 {
        F::micro(isa, kc, a, lda, b1, &mut c[NR..], ldc, first);
    }
}

/// How input values become packed operands.
pub(crate) trait Operands<In, A: Default>: Sync {
    /// Converts a contiguous run of input values.
    fn convert(&self, src: &[In], dst: &mut [A]);
    /// The run itself when input values already are operands (fp32, raw u8): read in place.
    fn view<'a>(&self, src: &'a [In]) -> Option<&'a [A]>;
    /// The operand of a padding tap: the zero point (`A::default()`, zero, once the zero
    /// point is subtracted while converting).
    fn padding(&self) -> A {
        A::default()
    }
}

/// Inputs that are the operands themselves (fp32; int8 widened ahead of a layer).
pub(crate) struct InPlace;

impl<T: Copy + Default + Sync> Operands<T, T> for InPlace {
    fn convert(&self, src: &[T], dst: &mut [T]) {
        dst.copy_from_slice(src);
    }
    fn view<'a>(&self, src: &'a [T]) -> Option<&'a [T]> {
        Some(src)
    }
}

/// Writes one output row from its accumulators (`acc.len() == out.len() == out_c`).
pub(crate) trait Epilogue<Acc, O>: Sync {
    fn row(&self, isa: Isa, acc: &[Acc], out: &mut [O]);
}

/// Weights packed for the micro-kernel: `groups` GEMMs of `K`×`out_c`, each split into
/// panels of `NR` columns laid out `[panel][k_pad][NR]` (for `KSTEP = 2`:
/// `[panel][k_pad/2][NR][2]`), zero-padded in depth and columns, from the first cache-line
/// boundary of `data` (`start`).
#[derive(Debug)]
pub(crate) struct PackedB<A> {
    data: Vec<A>,
    start: usize,
    k_pad: usize,
    panels_per_group: usize,
}

impl<A: Clone> Clone for PackedB<A> {
    /// A copy whose weights start on a cache line of its own allocation.
    fn clone(&self) -> Self {
        let mut data = self.data.clone();
        let start = line_start(&data);
        // The slack around the weights is padding, so rotating it through the ends is free.
        if start > self.start {
            data.rotate_right(start - self.start);
        } else {
            data.rotate_left(self.start - start);
        }
        Self {
            data,
            start,
            ..*self
        }
    }
}

impl<A: Copy + Default> PackedB<A> {
    /// Packs caller weights (layout per [`ConvShape::weight_index`]) in steps of `kstep`,
    /// the depth zero-padded to a multiple of `k_align` (itself a multiple of `kstep`).
    pub(crate) fn pack<W: Copy>(
        shape: &ConvShape,
        weights: &[W],
        kstep: usize,
        k_align: usize,
        convert: impl Fn(W) -> A,
    ) -> Self {
        debug_assert!(k_align.is_multiple_of(kstep));
        let k = shape.gemm_k();
        let k_pad = k.div_ceil(k_align) * k_align;
        let panels_per_group = shape.out_c.div_ceil(NR);
        let panels = shape.groups() * panels_per_group;
        let mut data = Vec::new();
        let packed = aligned(&mut data, panels * k_pad * NR);
        for g in 0..shape.groups() {
            for p in 0..panels_per_group {
                let panel = &mut packed[(g * panels_per_group + p) * k_pad * NR..][..k_pad * NR];
                for kk in 0..k {
                    for j in 0..NR.min(shape.out_c - p * NR) {
                        let w = weights[shape.weight_index(g, kk, p * NR + j)];
                        panel[(kk / kstep) * NR * kstep + j * kstep + kk % kstep] = convert(w);
                    }
                }
            }
        }
        Self {
            start: line_start(&data),
            data,
            k_pad,
            panels_per_group,
        }
    }

    /// Padded columns of `groups` GEMMs.
    pub(crate) fn n_pad(&self, groups: usize) -> usize {
        groups * self.panels_per_group * NR
    }

    /// Depth rounded up to the packing step.
    pub(crate) fn k_pad(&self) -> usize {
        self.k_pad
    }

    /// Depth `[k0, k0 + kc)` of micro-panel `p`.
    pub(crate) fn panel(&self, p: usize, k0: usize, kc: usize) -> &[A] {
        &self.data[self.start + (p * self.k_pad + k0) * NR..][..kc * NR]
    }

    /// Panels `p` and, when it is below `panels`, `p + 1`, for [`Family::micro_panels`].
    pub(crate) fn panel_pair(
        &self,
        p: usize,
        panels: usize,
        k0: usize,
        kc: usize,
    ) -> (&[A], Option<&[A]>) {
        let next = (p + 1 < panels).then(|| self.panel(p + 1, k0, kc));
        (self.panel(p, k0, kc), next)
    }
}

/// The GEMM rows a run computes: all of them, or an ascending list (sparse runs).
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    All(usize),
    Listed(&'a [u32]),
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match self {
            Rows::All(n) => *n,
            Rows::Listed(l) => l.len(),
        }
    }

    /// The GEMM row at position `i`.
    fn get(&self, i: usize) -> usize {
        match self {
            Rows::All(_) => i,
            Rows::Listed(l) => l[i] as usize,
        }
    }
}

/// Offset in the output of GEMM row `m`, group `g`.
fn out_offset(shape: &ConvShape, m: usize, g: usize) -> usize {
    let pixel = if shape.transposed {
        let s = shape.stride;
        let (iy, ix) = (m / shape.in_w, m % shape.in_w);
        (iy * s + g / s) * shape.in_w * s + ix * s + g % s
    } else {
        m
    };
    pixel * shape.out_c
}

/// Runs one layer: `output = epilogue(init + input ⊛ weights)` over NHWC buffers whose
/// lengths the caller has checked, for the GEMM `rows` given (an ascending list leaves every
/// other output untouched). `ops` turns input values into operands; `init` (one value per
/// packed column, [`PackedB::n_pad`]) starts every row's accumulators, zero if `None`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<F: Family, In: Sync, O: Send, E: Epilogue<F::Acc, O>>(
    isa: Isa,
    shape: &ConvShape,
    b: &PackedB<F::B>,
    input: &[In],
    ops: &impl Operands<In, F::A>,
    init: Option<&[F::Acc]>,
    epilogue: &E,
    rows: Rows<'_>,
    output: &mut [O],
) {
    if rows.len() == 0 || output.is_empty() {
        return;
    }
    let task = |positions: std::ops::Range<usize>, base: usize, chunk: &mut [O]| {
        F::scratch().with(|s| {
            let (a_vec, c_vec) = &mut *s.borrow_mut();
            let a_buf = aligned(a_vec, MC * F::KC.min(b.k_pad));
            let c_buf = aligned(c_vec, MC * b.n_pad(shape.groups()));
            for sub in positions.clone().step_by(MC) {
                let block_rows = sub..(sub + MC).min(positions.end);
                block::<F, In>(
                    isa,
                    shape,
                    b,
                    input,
                    ops,
                    init,
                    rows,
                    block_rows.clone(),
                    a_buf,
                    c_buf,
                );
                for (i, pos) in block_rows.enumerate() {
                    let m = rows.get(pos);
                    for g in 0..shape.groups() {
                        let acc =
                            &c_buf[i * b.n_pad(shape.groups()) + g * b.panels_per_group * NR..];
                        let at = out_offset(shape, m, g) - base;
                        epilogue.row(isa, &acc[..shape.out_c], &mut chunk[at..at + shape.out_c]);
                    }
                }
            }
        });
    };
    // A transposed convolution's input row iy writes output rows iy·s .. iy·s+s-1, so its
    // tasks never split an input row; a convolution's tasks are runs of output pixels.
    let out_per_row = shape.groups() * shape.out_c;
    match rows {
        Rows::All(n) => {
            let task_rows = if shape.transposed {
                shape.in_w * (MC / shape.in_w).max(1)
            } else {
                MC
            };
            output
                .par_chunks_mut(task_rows * out_per_row)
                .enumerate()
                .for_each(|(t, chunk)| {
                    let m0 = t * task_rows;
                    task(m0..(m0 + task_rows).min(n), m0 * out_per_row, chunk);
                });
        }
        Rows::Listed(list) => {
            // Output span of a task: from its first row's output row to past its last's.
            let span_row = |m: usize| {
                if shape.transposed {
                    m / shape.in_w * shape.in_w
                } else {
                    m
                }
            };
            let span_end = |m: usize| {
                if shape.transposed {
                    span_row(m) + shape.in_w
                } else {
                    m + 1
                }
            };
            let mut tasks = Vec::new();
            let mut rest = output;
            let mut consumed = 0;
            let mut start = 0;
            while start < list.len() {
                let mut end = (start + MC).min(list.len());
                while end < list.len()
                    && span_row(list[end] as usize) < span_end(list[end - 1] as usize)
                {
                    end += 1;
                }
                let lo = span_row(list[start] as usize) * out_per_row;
                let hi = span_end(list[end - 1] as usize) * out_per_row;
                let (_, tail) = std::mem::take(&mut rest).split_at_mut(lo - consumed);
                let (chunk, tail) = tail.split_at_mut(hi - lo);
                rest = tail;
                consumed = hi;
                tasks.push((start..end, lo, chunk));
                start = end;
            }
            tasks
                .into_par_iter()
                .for_each(|(positions, base, chunk)| task(positions, base, chunk));
        }
    }
}

/// Accumulates the rows at `positions` of `rows` against every panel into `c_buf`
/// (`[rows][n_pad]`). A layer whose GEMM rows are input pixels (1×1 stride 1, transposed)
/// reads whole micro-tiles of consecutive rows in place when the input already is operands.
#[allow(clippy::too_many_arguments)]
fn block<F: Family, In>(
    isa: Isa,
    shape: &ConvShape,
    b: &PackedB<F::B>,
    input: &[In],
    ops: &impl Operands<In, F::A>,
    init: Option<&[F::Acc]>,
    rows: Rows<'_>,
    positions: std::ops::Range<usize>,
    a_buf: &mut [F::A],
    c_buf: &mut [F::Acc],
) {
    let mr = F::tile_rows(isa);
    let micro_tiles = positions.len().div_ceil(mr);
    let padded_rows = micro_tiles * mr;
    let n_pad = b.n_pad(shape.groups());
    let panels = n_pad / NR;
    if let Some(init) = init {
        for row in c_buf.chunks_exact_mut(n_pad).take(padded_rows) {
            row.copy_from_slice(init);
        }
    }
    let in_place = ops
        .view(input)
        .filter(|_| direct(shape) && b.k_pad == shape.in_c);
    // Per micro-tile: its first GEMM row when it reads the input in place.
    let mut sources = [None; MC / MR];
    for (u, source) in sources.iter_mut().enumerate().take(micro_tiles) {
        let first = positions.start + u * mr;
        let whole = first + mr <= positions.end;
        let m = rows.get(first);
        if in_place.is_some() && whole && rows.get(first + mr - 1) == m + mr - 1 {
            *source = Some(m);
        }
    }
    for k0 in (0..b.k_pad).step_by(F::KC) {
        let kc = F::KC.min(b.k_pad - k0);
        for (i, dst) in a_buf.chunks_exact_mut(kc).take(padded_rows).enumerate() {
            if sources[i / mr].is_some() {
                continue;
            }
            if i < positions.len() {
                pack_row(shape, input, rows.get(positions.start + i), k0, dst, ops);
            } else {
                dst.fill(F::A::default());
            }
        }
        for p in (0..panels).step_by(2) {
            let (b0, b1) = b.panel_pair(p, panels, k0, kc);
            for (u, source) in sources.iter().enumerate().take(micro_tiles) {
                let (a, lda) = match (source, in_place) {
                    (Some(m), Some(x)) => (&x[m * shape.in_c + k0..], shape.in_c),
                    _ => (&a_buf[u * mr * kc..(u + 1) * mr * kc], kc),
                };
                F::micro_panels(
                    isa,
                    kc,
                    a,
                    lda,
                    b0,
                    b1,
                    &mut c_buf[u * mr * n_pad + p * NR..],
                    n_pad,
                    k0 == 0 && init.is_none(),
                );
            }
        }
    }
}

/// Whether GEMM row `m` is input pixel `m`'s channels, unchanged (no im2col).
fn direct(shape: &ConvShape) -> bool {
    shape.transposed || (shape.kernel == 1 && shape.stride == 1 && shape.pad == 0)
}

/// Packs depth `[k0, k0 + dst.len())` of GEMM row `m` (implicit im2col): zero past `K`
/// (where the weights are zero too), the padding operand on padding taps.
fn pack_row<In, A: Copy + Default>(
    shape: &ConvShape,
    input: &[In],
    m: usize,
    k0: usize,
    dst: &mut [A],
    ops: &impl Operands<In, A>,
) {
    let in_c = shape.in_c;
    let k_end = shape.gemm_k();
    if direct(shape) {
        let live = k_end.saturating_sub(k0).min(dst.len());
        ops.convert(&input[m * in_c + k0..][..live], &mut dst[..live]);
        dst[live..].fill(A::default());
        return;
    }
    let out_w = shape.out_w();
    let (oy, ox) = (m / out_w, m % out_w);
    // Divide once, then step tap by tap: a division per tap cost more than copying a
    // 64-channel tap.
    let (mut tap, mut ic) = (k0 / in_c, k0 % in_c);
    let (mut ty, mut tx) = (tap / shape.kernel, tap % shape.kernel);
    let taps = k_end / in_c;
    let mut d = 0;
    while d < dst.len() {
        if tap >= taps {
            dst[d..].fill(A::default());
            return;
        }
        let iy = (oy * shape.stride + ty).wrapping_sub(shape.pad);
        let ix = (ox * shape.stride + tx).wrapping_sub(shape.pad);
        let len = if iy < shape.in_h && ix < shape.in_w {
            // The taps left in this kernel row whose pixels are inside the image are
            // adjacent pixels, one span of NHWC input: copy them at once.
            let run = (shape.kernel - tx).min(shape.in_w - ix);
            let len = (run * in_c - ic).min(dst.len() - d);
            ops.convert(
                &input[(iy * shape.in_w + ix) * in_c + ic..][..len],
                &mut dst[d..d + len],
            );
            len
        } else {
            let len = (in_c - ic).min(dst.len() - d);
            dst[d..d + len].fill(ops.padding());
            len
        };
        d += len;
        let done = ic + len;
        ic = done % in_c;
        tap += done / in_c;
        tx += done / in_c;
        if tx == shape.kernel {
            tx = 0;
            ty += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed weights start on a cache line, and so does a clone, which holds the same
    /// panels (a clone that kept the original's offset into its new allocation would read
    /// shifted weights or lose the alignment).
    #[test]
    fn packed_weights_and_their_clones_start_on_a_line() {
        let shape = ConvShape::conv(3, 3, 5, 20, 3, 1, 1);
        let weights: Vec<i8> = (0..shape.weights_len()).map(|i| (i % 251) as i8).collect();
        let packed = PackedB::pack(&shape, &weights, 4, 64, |w| w);
        // The same weights one byte past the line, as a clone into a new allocation could
        // find them: cloning must move them back.
        let mut data = packed.data.clone();
        data.rotate_right(1);
        let off = PackedB {
            data,
            start: packed.start + 1,
            ..packed
        };
        let copy = off.clone();
        let panels = packed.n_pad(1) / NR;
        for p in 0..panels {
            assert_eq!(off.panel(p, 0, 1), packed.panel(p, 0, 1));
        }
        for b in [&packed, &copy] {
            assert_eq!(b.panel(0, 0, 1).as_ptr().addr() % LINE, 0);
        }
        for p in 0..panels {
            let whole = |b: &PackedB<i8>| b.panel(p, 0, b.k_pad()).to_vec();
            assert_eq!(whole(&copy), whole(&packed), "panel {p}");
        }
        // Column 0, depth 0..4: output channel 0, tap (0, 0), input channels 0..4 (OIHW index 9·c).
        assert_eq!(packed.panel(0, 0, 1)[..4], [0, 9, 18, 27]);
    }
}
