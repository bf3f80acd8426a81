//! Fused epilogues: what happens to a row of accumulators before it is written.
//!
//! * [`BiasRelu`]: fp32 `acc + bias`, then `max(·, 0)` as `if v > 0 { v } else { 0 }`
//!   (the semantics of `vmaxps(v, 0)`, NaN → 0).
//! * [`Requantizer`] (crate::requant): the binding scalar reference; the AVX2 version below
//!   reproduces it bit for bit with integer lane operations (no float).
//! * [`Dequantizer`] (crate::requant): `((acc +wrap bias) as f32) · scale`, one rounding
//!   each, identical in `vcvtdq2ps`/`vmulps`.
//!
//! Channels are processed eight at a time on AVX2 (sixteen for requantization on the
//! AVX-512 path, then eight); a tail of fewer than eight channels goes through the scalar
//! reference itself.

use super::cpu::Isa;
use super::gemm::Epilogue;
use crate::error::{QuantError, Result};
use crate::requant::{Dequantizer, Requantizer, Rescale};

/// fp32 bias and optional ReLU.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BiasRelu {
    pub(crate) bias: Vec<f32>,
    pub(crate) relu: bool,
}

impl BiasRelu {
    #[inline]
    fn scalar(&self, c: usize, acc: f32) -> f32 {
        let v = acc + self.bias[c];
        // `vmaxps(v, 0)` semantics: v when v > 0, else 0 (also for NaN and -0).
        if !self.relu || v > 0.0 { v } else { 0.0 }
    }
}

impl Epilogue<f32, f32> for BiasRelu {
    fn row(&self, isa: Isa, acc: &[f32], out: &mut [f32]) {
        let done = match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the SIMD paths are only selected when AVX2 was detected; lengths
            // are checked inside.
            Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe { avx2::bias_relu(self, acc, out) },
            _ => 0,
        };
        for c in done..out.len() {
            out[c] = self.scalar(c, acc[c]);
        }
    }
}

/// An int8 or uint8 output element of the requantizing epilogue.
pub trait QuantOut: Copy + Send + Sync + 'static {
    /// The reference conversion for one accumulator.
    fn requantize(r: &Requantizer, channel: usize, acc: i32) -> Self;
    #[doc(hidden)]
    const UNSIGNED: bool;
}

impl QuantOut for i8 {
    fn requantize(r: &Requantizer, channel: usize, acc: i32) -> Self {
        r.requantize(channel, acc)
    }
    const UNSIGNED: bool = false;
}

impl QuantOut for u8 {
    fn requantize(r: &Requantizer, channel: usize, acc: i32) -> Self {
        r.requantize_u8(channel, acc)
    }
    const UNSIGNED: bool = true;
}

/// A [`Requantizer`] unpacked into per-channel lane arrays for the SIMD paths:
/// `v = rdbp(srdhm(sat_shl(acc + bias, left), mult), right)` (for power-of-two scales
/// `srdhm` is skipped), then `clamp(v, lo - zp, hi - zp) + zp`, which equals the
/// reference's `clamp(v +sat zp, lo, hi)` because `|zp|, |lo|, |hi| ≤ 255`.
#[derive(Debug, Clone)]
pub(crate) struct RequantLanes {
    pub(crate) reference: Requantizer,
    bias: Vec<i32>,
    left: Vec<i32>,
    /// Non-negative (checked in `new`), so `srdhm`'s one overflowing input, `MIN·MIN`,
    /// cannot occur.
    mult: Vec<i32>,
    right: Vec<i32>,
    /// `2^right − 1` and half of it: the remainder and the tie threshold of `rdbp`.
    round_mask: Vec<i32>,
    round_half: Vec<i32>,
    has_mult: bool,
    /// Whether any channel shifts left (a real multiplier ≥ 1); most layers' are < 1.
    has_left: bool,
}

impl RequantLanes {
    /// Errors for a multiplier outside TFLite's domain (mantissa negative or shift outside
    /// `[-31, 30]`), where the scalar reference itself is undefined.
    pub(crate) fn new(reference: Requantizer) -> Result<Self> {
        if let Rescale::Multiplier(m) = reference.rescale()
            && let Some(bad) = m
                .iter()
                .find(|q| q.multiplier < 0 || !(-31..=30).contains(&q.shift))
        {
            return Err(QuantError::Parameter {
                name: "quantized multiplier shift",
                value: f64::from(bad.shift),
                reason: "multiplier must be non-negative with shift in [-31, 30]",
            });
        }
        let (left, mult, right, has_mult): (Vec<i32>, Vec<i32>, Vec<i32>, bool) =
            match reference.rescale() {
                Rescale::Multiplier(m) => (
                    m.iter().map(|q| q.shift.max(0)).collect(),
                    m.iter().map(|q| q.multiplier).collect(),
                    m.iter().map(|q| (-q.shift).max(0)).collect(),
                    true,
                ),
                Rescale::PowerOfTwo(e) => (
                    e.iter().map(|&e| e.max(0)).collect(),
                    vec![0; e.len()],
                    e.iter().map(|&e| (-e).max(0)).collect(),
                    false,
                ),
            };
        let round_mask: Vec<i32> = right.iter().map(|&e| ((1i64 << e) - 1) as i32).collect();
        Ok(Self {
            has_left: left.iter().any(|&s| s > 0),
            round_half: round_mask.iter().map(|&m| m >> 1).collect(),
            round_mask,
            bias: reference.bias().to_vec(),
            reference,
            left,
            mult,
            right,
            has_mult,
        })
    }
}

impl<O: QuantOut> Epilogue<i32, O> for RequantLanes {
    fn row(&self, isa: Isa, acc: &[i32], out: &mut [O]) {
        let done = match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx2 is only selected when AVX2 was detected; lengths are checked
            // inside.
            Isa::Avx2 => unsafe { avx2::requantize(self, acc, out, 0) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx512Vnni and Amx are only selected when AVX2 and AVX-512 F/BW were detected.
            Isa::Avx512Vnni | Isa::Amx => unsafe {
                let wide = avx512::requantize(self, acc, out);
                avx2::requantize(self, acc, out, wide)
            },
            _ => 0,
        };
        for c in done..out.len() {
            out[c] = O::requantize(&self.reference, c, acc[c]);
        }
    }
}

impl Epilogue<i32, f32> for Dequantizer {
    fn row(&self, isa: Isa, acc: &[i32], out: &mut [f32]) {
        let done = match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the SIMD paths are only selected when AVX2 was detected; lengths
            // are checked inside.
            Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe { avx2::dequantize(self, acc, out) },
            _ => 0,
        };
        for c in done..out.len() {
            out[c] = self.dequantize(c, acc[c]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BiasRelu, QuantOut, RequantLanes};
    use crate::requant::Dequantizer;

    /// Number of leading channels a full-vector loop covers.
    fn vector_part(acc: usize, out: usize, params: usize) -> usize {
        assert!(
            acc >= out && params >= out,
            "epilogue: row longer than its parameters"
        );
        out - out % 8
    }

    /// Returns how many leading channels were written.
    ///
    /// # Safety
    /// AVX2 present.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn bias_relu(e: &BiasRelu, acc: &[f32], out: &mut [f32]) -> usize {
        let n = vector_part(acc.len(), out.len(), e.bias.len());
        // SAFETY: every access is below `n ≤ len` of its slice.
        unsafe {
            let zero = _mm256_setzero_ps();
            for c in (0..n).step_by(8) {
                let mut v = _mm256_add_ps(
                    _mm256_loadu_ps(acc.as_ptr().add(c)),
                    _mm256_loadu_ps(e.bias.as_ptr().add(c)),
                );
                if e.relu {
                    v = _mm256_max_ps(v, zero);
                }
                _mm256_storeu_ps(out.as_mut_ptr().add(c), v);
            }
        }
        n
    }

    /// # Safety
    /// AVX2 present.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dequantize(d: &Dequantizer, acc: &[i32], out: &mut [f32]) -> usize {
        let n = vector_part(acc.len(), out.len(), d.channels());
        // SAFETY: every access is below `n ≤ len` of its slice.
        unsafe {
            for c in (0..n).step_by(8) {
                let v = _mm256_add_epi32(
                    _mm256_loadu_si256(acc.as_ptr().add(c).cast()),
                    _mm256_loadu_si256(d.bias().as_ptr().add(c).cast()),
                );
                let f = _mm256_mul_ps(
                    _mm256_cvtepi32_ps(v),
                    _mm256_loadu_ps(d.scales().as_ptr().add(c)),
                );
                _mm256_storeu_ps(out.as_mut_ptr().add(c), f);
            }
        }
        n
    }

    /// Requantizes channels `from..` in vectors of eight; returns where the vectors end.
    ///
    /// # Safety
    /// AVX2 present.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn requantize<O: QuantOut>(
        r: &RequantLanes,
        acc: &[i32],
        out: &mut [O],
        from: usize,
    ) -> usize {
        let n = vector_part(acc.len(), out.len(), r.bias.len());
        let zp = r.reference.out_zero_point();
        let lo = _mm256_set1_epi32(r.reference.clamp_min() - zp);
        let hi = _mm256_set1_epi32(r.reference.clamp_max() - zp);
        let zpv = _mm256_set1_epi32(zp);
        // SAFETY: every access is below `n ≤ len` of its slice (all parameter arrays have
        // one entry per channel).
        unsafe {
            for c in (from..n).step_by(8) {
                let x = _mm256_add_epi32(load(acc, c), load(&r.bias, c));
                // A zero shift leaves every lane as it is.
                let mut v = if r.has_left {
                    saturating_shl(x, load(&r.left, c))
                } else {
                    x
                };
                if r.has_mult {
                    v = srdhm(v, load(&r.mult, c));
                }
                v = rounding_divide_by_pot(
                    v,
                    load(&r.right, c),
                    load(&r.round_mask, c),
                    load(&r.round_half, c),
                );
                v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zpv);
                let halves =
                    _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
                let bytes = if O::UNSIGNED {
                    _mm_packus_epi16(halves, halves)
                } else {
                    _mm_packs_epi16(halves, halves)
                };
                _mm_storel_epi64(out.as_mut_ptr().add(c).cast(), bytes);
            }
        }
        n
    }

    /// Eight lanes of `s` from channel `c`.
    ///
    /// # Safety
    /// AVX2 present, `c + 8 ≤ s.len()`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load(s: &[i32], c: usize) -> __m256i {
        debug_assert!(c + 8 <= s.len());
        // SAFETY: the caller guarantees eight readable lanes.
        unsafe { _mm256_loadu_si256(s.as_ptr().add(c).cast()) }
    }

    /// `x · 2^s` per lane, saturated (`s ∈ [0, 31]`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn saturating_shl(x: __m256i, s: __m256i) -> __m256i {
        let y = _mm256_sllv_epi32(x, s);
        let overflow = _mm256_xor_si256(
            _mm256_cmpeq_epi32(_mm256_srav_epi32(y, s), x),
            _mm256_set1_epi32(-1),
        );
        // i32::MAX for x ≥ 0, i32::MIN for x < 0.
        let saturated = _mm256_xor_si256(_mm256_srai_epi32::<31>(x), _mm256_set1_epi32(i32::MAX));
        _mm256_blendv_epi8(y, saturated, overflow)
    }

    /// gemmlowp's saturating rounding doubling high multiply, per lane, for `b ≥ 0`. For
    /// every input but `MIN·MIN` (excluded by `b ≥ 0`) it equals `floor((a·b + 2^30) / 2^31)`
    /// (the reference's sign-dependent nudge followed by truncating division folds into
    /// this one expression), whose low 32 bits are bits 31..62 of the 64-bit sum.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn srdhm(a: __m256i, b: __m256i) -> __m256i {
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_srli_epi64::<31>(_mm256_add_epi64(_mm256_mul_epi32(a, b), nudge));
        let odd_prod = _mm256_mul_epi32(_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(b));
        let odd = _mm256_slli_epi64::<1>(_mm256_add_epi64(odd_prod, nudge));
        _mm256_blend_epi32::<0b1010_1010>(even, odd)
    }

    /// gemmlowp's rounding divide by a power of two (ties away from zero), per lane
    /// (`e ∈ [0, 31]`, `mask = 2^e − 1`, `half = mask >> 1`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rounding_divide_by_pot(x: __m256i, e: __m256i, mask: __m256i, half: __m256i) -> __m256i {
        let remainder = _mm256_and_si256(x, mask);
        // -1 where x < 0: subtracting it adds one to the threshold.
        let negative = _mm256_srai_epi32::<31>(x);
        let round_up = _mm256_cmpgt_epi32(remainder, _mm256_sub_epi32(half, negative));
        _mm256_sub_epi32(_mm256_srav_epi32(x, e), round_up)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{QuantOut, RequantLanes};

    /// The AVX2 version's steps on sixteen lanes, with mask registers for the blends;
    /// returns how many leading channels were written (a multiple of 16).
    ///
    /// # Safety
    /// AVX-512 F present.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn requantize<O: QuantOut>(
        r: &RequantLanes,
        acc: &[i32],
        out: &mut [O],
    ) -> usize {
        assert!(
            acc.len() >= out.len() && r.bias.len() >= out.len(),
            "epilogue: row longer than its parameters"
        );
        let n = out.len() - out.len() % 16;
        let zp = r.reference.out_zero_point();
        let lo = _mm512_set1_epi32(r.reference.clamp_min() - zp);
        let hi = _mm512_set1_epi32(r.reference.clamp_max() - zp);
        let zpv = _mm512_set1_epi32(zp);
        let nudge = _mm512_set1_epi64(1 << 30);
        let one = _mm512_set1_epi32(1);
        // SAFETY: every access is below `n ≤ len` of its slice (all parameter arrays have
        // one entry per channel).
        unsafe {
            for c in (0..n).step_by(16) {
                let x = _mm512_add_epi32(load(acc, c), load(&r.bias, c));
                let mut v = x;
                if r.has_left {
                    let s = load(&r.left, c);
                    let y = _mm512_sllv_epi32(x, s);
                    let overflow = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(y, s), x);
                    let saturated =
                        _mm512_xor_si512(_mm512_srai_epi32::<31>(x), _mm512_set1_epi32(i32::MAX));
                    v = _mm512_mask_blend_epi32(overflow, y, saturated);
                }
                if r.has_mult {
                    // srdhm for a multiplier ≥ 0, as in the AVX2 version.
                    let b = load(&r.mult, c);
                    let even =
                        _mm512_srli_epi64::<31>(_mm512_add_epi64(_mm512_mul_epi32(v, b), nudge));
                    let odd_prod =
                        _mm512_mul_epi32(_mm512_srli_epi64::<32>(v), _mm512_srli_epi64::<32>(b));
                    let odd = _mm512_slli_epi64::<1>(_mm512_add_epi64(odd_prod, nudge));
                    v = _mm512_mask_blend_epi32(0b1010_1010_1010_1010, even, odd);
                }
                let remainder = _mm512_and_si512(v, load(&r.round_mask, c));
                let threshold =
                    _mm512_sub_epi32(load(&r.round_half, c), _mm512_srai_epi32::<31>(v));
                let round_up = _mm512_cmpgt_epi32_mask(remainder, threshold);
                let shifted = _mm512_srav_epi32(v, load(&r.right, c));
                v = _mm512_mask_add_epi32(shifted, round_up, shifted, one);
                v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), zpv);
                // Every lane already is in the output type's range: keep the low bytes.
                _mm_storeu_si128(out.as_mut_ptr().add(c).cast(), _mm512_cvtepi32_epi8(v));
            }
        }
        n
    }

    /// Sixteen lanes of `s` from channel `c`.
    ///
    /// # Safety
    /// AVX-512 F present, `c + 16 ≤ s.len()`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load(s: &[i32], c: usize) -> __m512i {
        debug_assert!(c + 16 <= s.len());
        // SAFETY: the caller guarantees sixteen readable lanes.
        unsafe { _mm512_loadu_si512(s.as_ptr().add(c).cast()) }
    }
}
