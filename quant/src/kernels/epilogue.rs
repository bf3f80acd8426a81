//! Fused epilogues: what happens to a row of accumulators before it is written.
//!
//! * [`BiasRelu`]: fp32 `acc + bias`, then `max(·, 0)` as `if v > 0 { v } else { 0 }`
//!   (the semantics of `vmaxps(v, 0)`, NaN → 0).
//! * [`Requantizer`] (crate::requant): the binding scalar reference; the AVX2 version below
//!   reproduces it bit for bit with integer lane operations (no float).
//! * [`Dequantizer`] (crate::requant): `((acc +wrap bias) as f32) · scale`, one rounding
//!   each, identical in `vcvtdq2ps`/`vmulps`.
//!
//! Channels are processed eight at a time on AVX2; a tail of fewer than eight channels goes
//! through the scalar reference itself.

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
            // SAFETY: Avx2 and Avx512Vnni are only selected when AVX2 was detected; lengths
            // are checked inside.
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2::bias_relu(self, acc, out) },
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

/// A [`Requantizer`] unpacked into per-channel lane arrays for the SIMD path:
/// `v = rdbp(srdhm(sat_shl(acc + bias, left), mult), right)` (for power-of-two scales
/// `srdhm` is skipped), then `clamp(v, lo - zp, hi - zp) + zp`, which equals the
/// reference's `clamp(v +sat zp, lo, hi)` because `|zp|, |lo|, |hi| ≤ 255`.
#[derive(Debug, Clone)]
pub(crate) struct RequantLanes {
    pub(crate) reference: Requantizer,
    bias: Vec<i32>,
    left: Vec<i32>,
    mult: Vec<i32>,
    right: Vec<i32>,
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
        Ok(Self {
            has_left: left.iter().any(|&s| s > 0),
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
            // SAFETY: Avx2 and Avx512Vnni are only selected when AVX2 was detected; lengths
            // are checked inside.
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2::requantize(self, acc, out) },
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
            // SAFETY: Avx2 and Avx512Vnni are only selected when AVX2 was detected; lengths
            // are checked inside.
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2::dequantize(self, acc, out) },
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

    /// # Safety
    /// AVX2 present.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn requantize<O: QuantOut>(
        r: &RequantLanes,
        acc: &[i32],
        out: &mut [O],
    ) -> usize {
        let n = vector_part(acc.len(), out.len(), r.bias.len());
        let zp = r.reference.out_zero_point();
        let lo = _mm256_set1_epi32(r.reference.clamp_min() - zp);
        let hi = _mm256_set1_epi32(r.reference.clamp_max() - zp);
        let zpv = _mm256_set1_epi32(zp);
        // SAFETY: every access is below `n ≤ len` of its slice (all parameter arrays have
        // one entry per channel).
        unsafe {
            for c in (0..n).step_by(8) {
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
                v = rounding_divide_by_pot(v, load(&r.right, c));
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

    /// gemmlowp's saturating rounding doubling high multiply, per lane. For every input but
    /// `MIN·MIN` it equals `floor((a·b + 2^30) / 2^31)` (the reference's sign-dependent nudge
    /// followed by truncating division folds into this one expression), whose low 32 bits
    /// are bits 31..62 of the 64-bit sum.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn srdhm(a: __m256i, b: __m256i) -> __m256i {
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_srli_epi64::<31>(_mm256_add_epi64(_mm256_mul_epi32(a, b), nudge));
        let odd_prod = _mm256_mul_epi32(_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(b));
        let odd = _mm256_slli_epi64::<1>(_mm256_add_epi64(odd_prod, nudge));
        let v = _mm256_blend_epi32::<0b1010_1010>(even, odd);
        let min = _mm256_set1_epi32(i32::MIN);
        let overflow = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), _mm256_cmpeq_epi32(b, min));
        _mm256_blendv_epi8(v, _mm256_set1_epi32(i32::MAX), overflow)
    }

    /// gemmlowp's rounding divide by a power of two (ties away from zero), per lane
    /// (`e ∈ [0, 31]`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rounding_divide_by_pot(x: __m256i, e: __m256i) -> __m256i {
        let one = _mm256_set1_epi32(1);
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
        let remainder = _mm256_and_si256(x, mask);
        let negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), x);
        // `negative` is -1 where x < 0: subtracting it adds one.
        let threshold = _mm256_sub_epi32(_mm256_srai_epi32::<1>(mask), negative);
        let round_up = _mm256_cmpgt_epi32(remainder, threshold);
        _mm256_sub_epi32(_mm256_srav_epi32(x, e), round_up)
    }
}
