//! The `MR`×`NR` micro-kernels of both arithmetic families: scalar, AVX2, and for int8
//! AVX-512 VNNI; and for u8 × i8 the AMX tile kernel (32 rows, `amx.rs`).
//!
//! fp32: `c += a·b` with one fused multiply-add per term, in increasing `k`, in both paths,
//! so the AVX2 kernel (`vfmadd231ps`) and the scalar one (`f32::mul_add`) agree bit for bit.
//!
//! int8: operands arrive widened to i16 with the activation zero point already subtracted
//! (im2col: |a| ≤ 255, |w| ≤ 128, so each `vpmaddwd` pair sum (|·| ≤ 65 280) and every i32
//! accumulator up to the depth limit [`MAX_DEPTH_I8`] are exact; Winograd: |a| ≤ 1020,
//! |w| ≤ 1152, see `winograd.rs`), and sums wrap: the result is the same integer (mod 2³²)
//! whatever the path or the order of the terms. `vpmaddubsw` is not used: a u8×i8 pair sum
//! can reach 64 770 and would saturate i16. The VNNI kernel keeps the same packed layout
//! and fuses `vpmaddwd` + `vpaddd` into `vpdpwssd` (non-saturating) over 512 bits.
//!
//! int8 im2col on the VNNI path: raw u8 activations × i8 weights in quads along `k`,
//! `vpdpbusd` (four exact products added to each i32 lane, non-saturating); the caller
//! accounts for the zero point (conv_i8.rs). Both VNNI families share one kernel body,
//! generic over the dot-product instruction, counting depth in 32-bit words.

use std::thread::LocalKey;

use super::amx;
use super::cpu::Isa;
use super::gemm::{Family, MR, NR, Scratch, panel_by_panel};

/// Deepest int8 GEMM (`kernel²·in_c`) whose i32 accumulators cannot overflow:
/// `K · 255 · 128 < 2³¹`.
pub const MAX_DEPTH_I8: usize = (i32::MAX as usize) / (255 * 128);

/// fp32 operands, fp32 accumulators.
pub(crate) struct F32;

/// int8 values widened to i16 (pairs along `k`), i32 accumulators.
pub(crate) struct I16;

/// Raw u8 activations × i8 weights (quads along `k`, `vpdpbusd`), i32 accumulators. Only
/// the VNNI path has a kernel for it (the scalar one is its reference); the zero point's
/// term is the caller's (see conv_i8.rs).
pub(crate) struct U8;

thread_local! {
    static F32_SCRATCH: Scratch<f32, f32> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    static I16_SCRATCH: Scratch<i16, i32> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    static U8_SCRATCH: Scratch<u8, i32> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Panics unless the slices cover the `MR`-row tile the kernels touch (keeps the SIMD
/// paths sound).
fn check_tile<A, B, C>(kc: usize, a: &[A], lda: usize, b: &[B], c: &[C], ldc: usize) {
    check_rows(MR, kc, a, lda, b, c, ldc);
}

/// [`check_tile`] for a tile of `rows` rows.
fn check_rows<A, B, C>(rows: usize, kc: usize, a: &[A], lda: usize, b: &[B], c: &[C], ldc: usize) {
    assert!(
        kc <= lda && a.len() >= (rows - 1) * lda + kc,
        "micro-kernel: A too short"
    );
    assert!(b.len() >= kc * NR, "micro-kernel: B too short");
    assert!(
        c.len() >= (rows - 1) * ldc + NR,
        "micro-kernel: C too short"
    );
}

/// The portable micro-kernel on `rows` rows: `acc = term(acc, a[r][k], B[k][j])` in
/// increasing `k`, with `B` in the packed layout of depth step `kstep`.
#[allow(clippy::too_many_arguments)]
fn scalar_micro<A: Copy, B: Copy, C: Copy + Default>(
    rows: usize,
    kc: usize,
    a: &[A],
    lda: usize,
    b: &[B],
    c: &mut [C],
    ldc: usize,
    first: bool,
    kstep: usize,
    term: impl Fn(C, A, B) -> C,
) {
    for r in 0..rows {
        for j in 0..NR {
            let mut acc = if first { C::default() } else { c[r * ldc + j] };
            for k in 0..kc {
                let w = b[(k / kstep) * NR * kstep + j * kstep + k % kstep];
                acc = term(acc, a[r * lda + k], w);
            }
            c[r * ldc + j] = acc;
        }
    }
}

impl Family for F32 {
    type A = f32;
    type B = f32;
    type Acc = f32;
    const KSTEP: usize = 1;
    const KC: usize = 256;

    fn micro(
        isa: Isa,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        first: bool,
    ) {
        check_tile(kc, a, lda, b, c, ldc);
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the SIMD paths are only handed out when AVX2 and FMA were detected
            // (cpu.rs); `check_tile` bounds every access.
            Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe {
                avx2::micro_f32(kc, a.as_ptr(), lda, b.as_ptr(), c.as_mut_ptr(), ldc, first)
            },
            _ => scalar_micro(
                MR,
                kc,
                a,
                lda,
                b,
                c,
                ldc,
                first,
                Self::KSTEP,
                |acc, x, w| x.mul_add(w, acc),
            ),
        }
    }

    fn scratch() -> &'static LocalKey<Scratch<f32, f32>> {
        &F32_SCRATCH
    }
}

impl Family for I16 {
    type A = i16;
    type B = i16;
    type Acc = i32;
    const KSTEP: usize = 2;
    const KC: usize = 512;

    fn micro(
        isa: Isa,
        kc: usize,
        a: &[i16],
        lda: usize,
        b: &[i16],
        c: &mut [i32],
        ldc: usize,
        first: bool,
    ) {
        check_tile(kc, a, lda, b, c, ldc);
        debug_assert!(kc.is_multiple_of(2) && lda.is_multiple_of(2));
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as for F32; `kc` is even (the packed depth is a multiple of KSTEP).
            Isa::Avx2 => unsafe {
                avx2::micro_i16(kc, a.as_ptr(), lda, b.as_ptr(), c.as_mut_ptr(), ldc, first)
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni | Isa::Amx => {
                vnni_micro::<Self, vnni::Pairs>(kc, a, lda, b, c, ldc, first)
            }
            _ => scalar_int8::<Self>(MR, kc, a, lda, b, c, ldc, first),
        }
    }

    fn micro_panels(
        isa: Isa,
        kc: usize,
        a: &[i16],
        lda: usize,
        b0: &[i16],
        b1: Option<&[i16]>,
        c: &mut [i32],
        ldc: usize,
        first: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let (Isa::Avx512Vnni | Isa::Amx, Some(b1)) = (isa, b1) {
            return vnni_pair::<Self, vnni::Pairs>(kc, a, lda, [b0, b1], c, ldc, first);
        }
        panel_by_panel::<Self>(isa, kc, a, lda, b0, b1, c, ldc, first);
    }

    fn scratch() -> &'static LocalKey<Scratch<i16, i32>> {
        &I16_SCRATCH
    }
}

impl Family for U8 {
    type A = u8;
    type B = i8;
    type Acc = i32;
    const KSTEP: usize = 4;
    // Deep enough for every backbone layer (9·256) in one block: the AMX kernel then loads
    // and stores its sum tiles once per row tile (at 512, 128-channel layers took 25 %
    // longer); the VNNI kernel times the same at 512 and 2304.
    const KC: usize = 2304;

    fn tile_rows(isa: Isa) -> usize {
        if isa == Isa::Amx { AMX_ROWS } else { MR }
    }

    fn micro(
        isa: Isa,
        kc: usize,
        a: &[u8],
        lda: usize,
        b: &[i8],
        c: &mut [i32],
        ldc: usize,
        first: bool,
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => amx_tiles(kc, a, lda, &[b], c, ldc, first),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                check_tile(kc, a, lda, b, c, ldc);
                vnni_micro::<Self, vnni::Quads>(kc, a, lda, b, c, ldc, first)
            }
            _ => {
                check_rows(Self::tile_rows(isa), kc, a, lda, b, c, ldc);
                scalar_int8::<Self>(Self::tile_rows(isa), kc, a, lda, b, c, ldc, first)
            }
        }
    }

    fn micro_panels(
        isa: Isa,
        kc: usize,
        a: &[u8],
        lda: usize,
        b0: &[i8],
        b1: Option<&[i8]>,
        c: &mut [i32],
        ldc: usize,
        first: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        match (isa, b1) {
            (Isa::Amx, Some(b1)) => return amx_tiles(kc, a, lda, &[b0, b1], c, ldc, first),
            (Isa::Avx512Vnni, Some(b1)) => {
                return vnni_pair::<Self, vnni::Quads>(kc, a, lda, [b0, b1], c, ldc, first);
            }
            _ => {}
        }
        panel_by_panel::<Self>(isa, kc, a, lda, b0, b1, c, ldc, first);
    }

    fn scratch() -> &'static LocalKey<Scratch<u8, i32>> {
        &U8_SCRATCH
    }
}

/// Rows of the u8 family's tile on the AMX path: two 16-row tiles, so each loaded panel
/// tile feeds two `tdpbusd`.
const AMX_ROWS: usize = 2 * amx::TILE_ROWS;

/// The AMX kernel of the u8 family on `AMX_ROWS` rows and one or two panels (columns
/// `0..NR`, `NR..2·NR` of `c`), after checking every slice it touches.
#[cfg(target_arch = "x86_64")]
fn amx_tiles(kc: usize, a: &[u8], lda: usize, b: &[&[i8]], c: &mut [i32], ldc: usize, first: bool) {
    assert!(
        kc.is_multiple_of(amx::TILE_DEPTH),
        "AMX kernel: depth {kc} is not a whole number of tile rows"
    );
    for (p, panel) in b.iter().enumerate() {
        check_rows(AMX_ROWS, kc, a, lda, panel, &c[p * NR..], ldc);
    }
    let panels: [*const i8; 2] =
        std::array::from_fn(|p| b.get(p).map_or(std::ptr::null(), |b| b.as_ptr()));
    // SAFETY: `Isa::Amx` is only handed out when AMX-INT8 was detected and Linux granted the
    // tile state (cpu.rs); `check_rows` bounds every row of `a`, every panel and every row
    // of `c` the tiles touch, and `kc` is a whole number of 64-byte steps.
    unsafe {
        amx::gemm_tiles(
            kc / amx::TILE_DEPTH,
            a.as_ptr(),
            lda,
            AMX_ROWS / amx::TILE_ROWS,
            &panels[..b.len()],
            c.as_mut_ptr(),
            ldc,
            first,
        )
    }
}

/// The scalar kernel of an int8 family on `rows` rows: wrapping i32 sums of exact products.
#[allow(clippy::too_many_arguments)]
fn scalar_int8<F: Family<A: Into<i32>, B: Into<i32>, Acc = i32>>(
    rows: usize,
    kc: usize,
    a: &[F::A],
    lda: usize,
    b: &[F::B],
    c: &mut [i32],
    ldc: usize,
    first: bool,
) {
    scalar_micro(rows, kc, a, lda, b, c, ldc, first, F::KSTEP, |acc, x, w| {
        acc.wrapping_add(x.into() * w.into())
    });
}

/// The VNNI kernel of an int8 family whose `KSTEP` values fill a 32-bit word, on a checked
/// tile.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn vnni_micro<F: Family<Acc = i32>, D: vnni::Dot>(
    kc: usize,
    a: &[F::A],
    lda: usize,
    b: &[F::B],
    c: &mut [i32],
    ldc: usize,
    first: bool,
) {
    debug_assert!(kc.is_multiple_of(F::KSTEP) && lda.is_multiple_of(F::KSTEP));
    // SAFETY: `Isa::Avx512Vnni` is only handed out when AVX-512 F/BW and VNNI were detected
    // (cpu.rs); the caller's `check_tile` bounds every access, and `kc` and `lda` are whole
    // words (the packed depth and the rows read in place are multiples of KSTEP).
    unsafe {
        vnni::micro::<D>(
            kc / F::KSTEP,
            a.as_ptr().cast(),
            lda / F::KSTEP,
            b.as_ptr().cast(),
            c.as_mut_ptr(),
            ldc,
            first,
        )
    }
}

/// [`vnni_micro`] for two adjacent panels (columns `0..NR` and `NR..2·NR` of `c`).
#[cfg(target_arch = "x86_64")]
fn vnni_pair<F: Family<Acc = i32>, D: vnni::Dot>(
    kc: usize,
    a: &[F::A],
    lda: usize,
    b: [&[F::B]; 2],
    c: &mut [i32],
    ldc: usize,
    first: bool,
) {
    check_tile(kc, a, lda, b[0], c, ldc);
    check_tile(kc, a, lda, b[1], &c[NR..], ldc);
    debug_assert!(kc.is_multiple_of(F::KSTEP) && lda.is_multiple_of(F::KSTEP));
    // SAFETY: as in `vnni_micro`; both panels and both column blocks are checked.
    unsafe {
        vnni::micro_pair::<D>(
            kc / F::KSTEP,
            a.as_ptr().cast(),
            lda / F::KSTEP,
            b.map(|b| b.as_ptr().cast()),
            c.as_mut_ptr(),
            ldc,
            first,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// # Safety
    /// AVX2 and FMA present; `a` readable for `MR` rows of `kc` at stride `lda`, `b` for
    /// `kc·NR`, `c` read/writable for `MR` rows of `NR` at stride `ldc`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn micro_f32(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        first: bool,
    ) {
        // SAFETY: the caller's contract bounds every pointer below.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            if !first {
                for (r, row) in acc.iter_mut().enumerate() {
                    row[0] = _mm256_loadu_ps(c.add(r * ldc));
                    row[1] = _mm256_loadu_ps(c.add(r * ldc + 8));
                }
            }
            // One pointer per row: the loads then index by `k` alone (no address arithmetic
            // per row in the loop).
            let rows: [*const f32; MR] = std::array::from_fn(|r| a.add(r * lda));
            for k in 0..kc {
                let b0 = _mm256_loadu_ps(b.add(k * NR));
                let b1 = _mm256_loadu_ps(b.add(k * NR + 8));
                for (row, ar) in acc.iter_mut().zip(rows) {
                    let av = _mm256_broadcast_ss(&*ar.add(k));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
            }
            for (r, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(c.add(r * ldc), row[0]);
                _mm256_storeu_ps(c.add(r * ldc + 8), row[1]);
            }
        }
    }

    /// # Safety
    /// As [`micro_f32`], with `kc` even and `b` in `[k/2][NR][2]` pair layout.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn micro_i16(
        kc: usize,
        a: *const i16,
        lda: usize,
        b: *const i16,
        c: *mut i32,
        ldc: usize,
        first: bool,
    ) {
        // SAFETY: the caller's contract bounds every pointer below.
        unsafe {
            let mut acc = [[_mm256_setzero_si256(); 2]; MR];
            if !first {
                for (r, row) in acc.iter_mut().enumerate() {
                    row[0] = _mm256_loadu_si256(c.add(r * ldc).cast());
                    row[1] = _mm256_loadu_si256(c.add(r * ldc + 8).cast());
                }
            }
            let rows: [*const i32; MR] = std::array::from_fn(|r| a.add(r * lda).cast());
            for p in 0..kc / 2 {
                let b0 = _mm256_loadu_si256(b.add(p * 2 * NR).cast());
                let b1 = _mm256_loadu_si256(b.add(p * 2 * NR + 16).cast());
                for (row, ar) in acc.iter_mut().zip(rows) {
                    let pair = ar.add(p).read_unaligned();
                    let av = _mm256_set1_epi32(pair);
                    row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(av, b0));
                    row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(av, b1));
                }
            }
            for (r, row) in acc.iter().enumerate() {
                _mm256_storeu_si256(c.add(r * ldc).cast(), row[0]);
                _mm256_storeu_si256(c.add(r * ldc + 8).cast(), row[1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// A VNNI dot-product step: every 32-bit lane of `acc` plus the products of the
    /// lane's narrow values in `a` and `b`, summed (wrapping).
    pub(super) trait Dot {
        /// # Safety
        /// AVX-512 F and VNNI present.
        unsafe fn dot(acc: __m512i, a: __m512i, b: __m512i) -> __m512i;
    }

    /// `vpdpwssd`: two i16 × i16 products per lane.
    pub(super) struct Pairs;

    /// `vpdpbusd`: four u8 (`a`) × i8 (`b`) products per lane.
    pub(super) struct Quads;

    impl Dot for Pairs {
        #[inline(always)]
        unsafe fn dot(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
            // SAFETY: the caller guarantees AVX-512 VNNI.
            unsafe { _mm512_dpwssd_epi32(acc, a, b) }
        }
    }

    impl Dot for Quads {
        #[inline(always)]
        unsafe fn dot(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
            // SAFETY: the caller guarantees AVX-512 VNNI.
            unsafe { _mm512_dpbusd_epi32(acc, a, b) }
        }
    }

    /// The kernels count depth in 32-bit words: one pair (`Pairs`) or quad (`Quads`) of
    /// `k` values. `a` holds `MR` rows of `words` words at stride `lda` words; `b` one
    /// 512-bit row (`NR` lanes of one word) per word of depth.
    ///
    /// # Safety
    /// AVX-512 F and VNNI present; `a` readable for `MR` rows of `words` at stride `lda`,
    /// `b` for `words·NR` words, `c` read/writable for `MR` rows of `NR` at stride `ldc`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn micro<D: Dot>(
        words: usize,
        a: *const i32,
        lda: usize,
        b: *const i32,
        c: *mut i32,
        ldc: usize,
        first: bool,
    ) {
        // SAFETY: the caller's contract bounds every pointer below.
        unsafe {
            // Even and odd words accumulate apart: 2·MR independent chains hide the
            // dot-product latency that MR alone would expose. Wrapping sums are the same
            // integers in any order, so the two halves add up to the scalar result.
            let mut even = [_mm512_setzero_si512(); MR];
            let mut odd = [_mm512_setzero_si512(); MR];
            if !first {
                for (r, acc) in even.iter_mut().enumerate() {
                    *acc = _mm512_loadu_si512(c.add(r * ldc).cast());
                }
            }
            let rows: [*const i32; MR] = std::array::from_fn(|r| a.add(r * lda));
            let mut p = 0;
            while p + 2 <= words {
                let b0 = _mm512_loadu_si512(b.add(p * NR).cast());
                let b1 = _mm512_loadu_si512(b.add((p + 1) * NR).cast());
                for ((e, o), ar) in even.iter_mut().zip(&mut odd).zip(rows) {
                    let a0 = _mm512_set1_epi32(ar.add(p).read_unaligned());
                    let a1 = _mm512_set1_epi32(ar.add(p + 1).read_unaligned());
                    *e = D::dot(*e, a0, b0);
                    *o = D::dot(*o, a1, b1);
                }
                p += 2;
            }
            if p < words {
                let b0 = _mm512_loadu_si512(b.add(p * NR).cast());
                for (e, ar) in even.iter_mut().zip(rows) {
                    let a0 = _mm512_set1_epi32(ar.add(p).read_unaligned());
                    *e = D::dot(*e, a0, b0);
                }
            }
            for (r, (e, o)) in even.iter().zip(&odd).enumerate() {
                _mm512_storeu_si512(c.add(r * ldc).cast(), _mm512_add_epi32(*e, *o));
            }
        }
    }

    /// Two adjacent panels (`b[0]` into columns `0..NR`, `b[1]` into `NR..2·NR`): each
    /// broadcast of `a` feeds two dot products, so a word of depth loads 2 + `MR` values
    /// for 2·`MR` dot products instead of 2 + 2·`MR`.
    ///
    /// # Safety
    /// As [`micro`], for both panels; `c` read/writable for `MR` rows of 2·`NR`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn micro_pair<D: Dot>(
        words: usize,
        a: *const i32,
        lda: usize,
        b: [*const i32; 2],
        c: *mut i32,
        ldc: usize,
        first: bool,
    ) {
        // SAFETY: the caller's contract bounds every pointer below.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 2]; MR];
            if !first {
                for (r, row) in acc.iter_mut().enumerate() {
                    row[0] = _mm512_loadu_si512(c.add(r * ldc).cast());
                    row[1] = _mm512_loadu_si512(c.add(r * ldc + NR).cast());
                }
            }
            let rows: [*const i32; MR] = std::array::from_fn(|r| a.add(r * lda));
            let step = |acc: &mut [[__m512i; 2]; MR], p: usize| {
                let b0 = _mm512_loadu_si512(b[0].add(p * NR).cast());
                let b1 = _mm512_loadu_si512(b[1].add(p * NR).cast());
                for (row, ar) in acc.iter_mut().zip(rows) {
                    let av = _mm512_set1_epi32(ar.add(p).read_unaligned());
                    row[0] = D::dot(row[0], av, b0);
                    row[1] = D::dot(row[1], av, b1);
                }
            };
            let mut p = 0;
            while p + 2 <= words {
                step(&mut acc, p);
                step(&mut acc, p + 1);
                p += 2;
            }
            if p < words {
                step(&mut acc, p);
            }
            for (r, row) in acc.iter().enumerate() {
                _mm512_storeu_si512(c.add(r * ldc).cast(), row[0]);
                _mm512_storeu_si512(c.add(r * ldc + NR).cast(), row[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The u8×i8 family only runs on the VNNI and AMX paths, so the layer tests never run
    /// its scalar kernel: compare each path with it on the path's tile height, single panel
    /// and panel pairs, over depths that are odd and even in words (whole 64-byte tile steps
    /// for AMX), starting from zero and from given accumulators, with the extreme operands
    /// (255 × −128) in every lane.
    #[test]
    fn u8_simd_kernels_equal_the_scalar_kernel() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let paths = [
            (Isa::Avx512Vnni, &[4, 8, 12, 60, 512][..]),
            (Isa::Amx, &[64, 128, 192, 512][..]),
        ];
        for (isa, depths) in paths.into_iter().filter(|(i, _)| i.is_available()) {
            let rows = U8::tile_rows(isa);
            for &kc in depths {
                let lda = kc + 8;
                let ldc = 2 * NR + 3;
                let a: Vec<u8> = (0..rows * lda)
                    .map(|i| if i % 7 == 0 { 255 } else { next() as u8 })
                    .collect();
                let b: Vec<i8> = (0..2 * kc * NR)
                    .map(|i| if i % 5 == 0 { -128 } else { next() as i8 })
                    .collect();
                let (b0, b1) = b.split_at(kc * NR);
                let start: Vec<i32> = (0..rows * ldc).map(|_| next() as i32).collect();
                for first in [true, false] {
                    let mut want = start.clone();
                    scalar_int8::<U8>(rows, kc, &a, lda, b0, &mut want, ldc, first);
                    let mut one = start.clone();
                    U8::micro(isa, kc, &a, lda, b0, &mut one, ldc, first);
                    assert_eq!(one, want, "{isa}: kc {kc}, first {first}, one panel");
                    scalar_int8::<U8>(rows, kc, &a, lda, b1, &mut want[NR..], ldc, first);
                    let mut pair = start.clone();
                    U8::micro_panels(isa, kc, &a, lda, b0, Some(b1), &mut pair, ldc, first);
                    assert_eq!(pair, want, "{isa}: kc {kc}, first {first}, two panels");
                }
            }
        }
    }
}
