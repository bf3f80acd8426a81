//! Fixed-point arithmetic for requantization, bit-exact with gemmlowp / TFLite.
//!
//! A positive real multiplier `m` is stored as `multiplier · 2^(shift − 31)` with
//! `multiplier ∈ [2^30, 2^31)` (TFLite's `QuantizeMultiplier`). Applying it to an i32
//! accumulator is TFLite's `MultiplyByQuantizedMultiplier`: a left shift for `shift > 0`
//! (saturating here, where TFLite leaves overflow undefined), a saturating rounding doubling
//! high multiply, and a rounding right shift for `shift < 0`. No float is involved.

use crate::error::{QuantError, Result};

/// A real multiplier in fixed point: `real ≈ multiplier · 2^(shift − 31)`.
///
/// `shift` is the binary exponent: positive means a left shift before the multiply,
/// negative a rounding right shift after it. `multiplier == 0` (with `shift == 0`) encodes a
/// real multiplier too small to matter (below 2^-32), which maps every accumulator to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizedMultiplier {
    /// Q0.31 mantissa in `[2^30, 2^31)`, or 0.
    pub multiplier: i32,
    /// Binary exponent in `[-31, 30]`.
    pub shift: i32,
}

/// Largest left shift `from_real` produces (TFLite's limit).
const MAX_SHIFT: i32 = 30;
/// Smallest exponent kept; below it the multiplier flushes to zero (TFLite's limit).
const MIN_SHIFT: i32 = -31;

impl QuantizedMultiplier {
    /// TFLite's `QuantizeMultiplier`: split `real` into a Q0.31 mantissa (rounded half away
    /// from zero) and an exponent. Zero and values below 2^-32 give the zero multiplier.
    ///
    /// Errors for a negative or non-finite `real`, or one of 2^30 or more.
    pub fn from_real(real: f64) -> Result<Self> {
        if !real.is_finite() || real < 0.0 {
            return Err(QuantError::Multiplier {
                real,
                reason: "must be finite and non-negative",
            });
        }
        if real < f64::MIN_POSITIVE {
            return Ok(Self::ZERO);
        }
        let (mantissa, mut shift) = frexp(real);
        let mut q_fixed = (mantissa * (1u64 << 31) as f64).round() as i64;
        if q_fixed == 1i64 << 31 {
            q_fixed /= 2;
            shift += 1;
        }
        if shift < MIN_SHIFT {
            return Ok(Self::ZERO);
        }
        if shift > MAX_SHIFT {
            return Err(QuantError::Multiplier {
                real,
                reason: "must be below 2^30 (shift at most 30)",
            });
        }
        Ok(Self {
            multiplier: q_fixed as i32,
            shift,
        })
    }

    /// The multiplier that maps every accumulator to 0.
    pub const ZERO: Self = Self {
        multiplier: 0,
        shift: 0,
    };

    /// The real value this fixed-point multiplier stands for.
    pub fn to_real(self) -> f64 {
        self.multiplier as f64 * 2f64.powi(self.shift - 31)
    }

    /// TFLite's `MultiplyByQuantizedMultiplier`: `acc · real`, rounded as gemmlowp does.
    #[inline]
    pub fn apply(self, acc: i32) -> i32 {
        let left = self.shift.max(0);
        let right = (-self.shift).max(0);
        let shifted = saturating_left_shift(acc, left);
        rounding_divide_by_pot(
            saturating_rounding_doubling_high_mul(shifted, self.multiplier),
            right,
        )
    }
}

/// `x · 2^exponent` for `exponent ∈ [0, 31]`, saturated to the i32 range.
#[inline]
pub fn saturating_left_shift(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let wide = (x as i64) << exponent;
    wide.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2·a·b`, rounded to
/// nearest with ties toward +∞ (like ARM `VQRDMULH`); the one overflowing case,
/// `i32::MIN · i32::MIN`, saturates to `i32::MAX`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // i64 division truncates toward zero, exactly as the C++ reference does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from
/// zero, for `exponent ∈ [0, 31]`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `x = mantissa · 2^exponent` with `mantissa ∈ [0.5, 1)`, for positive normal `x`.
fn frexp(x: f64) -> (f64, i32) {
    const EXP_MASK: u64 = 0x7ff << 52;
    let bits = x.to_bits();
    let biased = ((bits & EXP_MASK) >> 52) as i32;
    let mantissa = f64::from_bits((bits & !EXP_MASK) | (1022u64 << 52));
    (mantissa, biased - 1022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_saturation_and_extremes() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        // (2^31-1)^2 / 2^31 = 2^31 - 2 + 1/2^31, rounds down.
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX),
            2_147_483_646
        );
        // -2^31 (2^31-1) / 2^31 = -(2^31 - 1) exactly.
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
            -2_147_483_647
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, 1 << 30),
            -(1 << 30)
        );
        assert_eq!(saturating_rounding_doubling_high_mul(12345, 0), 0);
    }

    #[test]
    fn srdhm_ties_round_toward_positive_infinity() {
        // a·b / 2^31 = ±0.5 and ±1.5.
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        // Just past the tie on the negative side rounds away.
        assert_eq!(saturating_rounding_doubling_high_mul(-(1 << 30) - 1, 1), -1);
        // 100 · 0.75 = 75 exactly.
        assert_eq!(saturating_rounding_doubling_high_mul(100, 3 << 29), 75);
    }

    #[test]
    fn rounding_divide_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5
        assert_eq!(rounding_divide_by_pot(5, 2), 1); // 1.25
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        assert_eq!(rounding_divide_by_pot(7, 2), 2); // 1.75
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(123, 0), 123);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1); // 0.99999...
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1); // exactly -1
        assert_eq!(rounding_divide_by_pot(1 << 30, 31), 1); // 0.5 → 1
        assert_eq!(rounding_divide_by_pot(-(1 << 30), 31), -1); // -0.5 → -1
        assert_eq!(rounding_divide_by_pot((1 << 30) - 1, 31), 0);
    }

    #[test]
    fn from_real_matches_tflite_quantize_multiplier() {
        let half = QuantizedMultiplier::from_real(0.5).unwrap();
        assert_eq!(
            half,
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        let one = QuantizedMultiplier::from_real(1.0).unwrap();
        assert_eq!(
            one,
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        // 0.75 = 0.75 · 2^0: mantissa 0.75 · 2^31.
        let q = QuantizedMultiplier::from_real(0.75).unwrap();
        assert_eq!(
            q,
            QuantizedMultiplier {
                multiplier: 3 << 29,
                shift: 0
            }
        );
        // 0.1 = 0.8 · 2^-3; round(0.8 · 2^31) = 1717986918.
        let q = QuantizedMultiplier::from_real(0.1).unwrap();
        assert_eq!(
            q,
            QuantizedMultiplier {
                multiplier: 1_717_986_918,
                shift: -3
            }
        );
        // A mantissa that rounds up to 2^31 renormalises: 1 - 2^-40 → 2^30, shift 1.
        let q = QuantizedMultiplier::from_real(1.0 - 2f64.powi(-40)).unwrap();
        assert_eq!(
            q,
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        // Below 2^-32 flushes to zero; 2^-32 itself is the smallest kept (shift -31).
        assert_eq!(
            QuantizedMultiplier::from_real(2f64.powi(-33)).unwrap(),
            QuantizedMultiplier::ZERO
        );
        assert_eq!(
            QuantizedMultiplier::from_real(2f64.powi(-32)).unwrap(),
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: -31
            }
        );
        assert_eq!(
            QuantizedMultiplier::from_real(0.0).unwrap(),
            QuantizedMultiplier::ZERO
        );
        assert!(QuantizedMultiplier::from_real(2f64.powi(30)).is_err());
        assert!(QuantizedMultiplier::from_real(-0.5).is_err());
        assert!(QuantizedMultiplier::from_real(f64::NAN).is_err());
        assert!(QuantizedMultiplier::from_real(f64::INFINITY).is_err());
    }

    #[test]
    fn apply_hand_computed() {
        let q = QuantizedMultiplier::from_real(0.1).unwrap();
        // 1000 · 0.1 = 100; 15 · 0.1 = 1.5 → 2; -15 · 0.1 → -2; 14 · 0.1 → 1.
        assert_eq!(q.apply(1000), 100);
        assert_eq!(q.apply(15), 2);
        assert_eq!(q.apply(-15), -2);
        assert_eq!(q.apply(14), 1);
        assert_eq!(q.apply(0), 0);
        // Exact power of two 0.25 = 2^30 · 2^(-1-31): SRDHM halves (ties up), then the
        // rounding shift halves (ties away): 3 → 2 → 1, -3 → -1 → -1, 1 → 1 → 1, -1 → 0.
        let quarter = QuantizedMultiplier::from_real(0.25).unwrap();
        assert_eq!(
            quarter,
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: -1
            }
        );
        assert_eq!(quarter.apply(3), 1);
        assert_eq!(quarter.apply(-3), -1);
        assert_eq!(quarter.apply(1), 1);
        assert_eq!(quarter.apply(-1), 0);
        assert_eq!(QuantizedMultiplier::ZERO.apply(i32::MAX), 0);
    }

    #[test]
    fn apply_large_shifts_saturate() {
        // 3.0 = 0.75 · 2^2: left shift by 2 saturates for big accumulators.
        let three = QuantizedMultiplier::from_real(3.0).unwrap();
        assert_eq!(
            three,
            QuantizedMultiplier {
                multiplier: 3 << 29,
                shift: 2
            }
        );
        assert_eq!(three.apply(7), 21);
        assert_eq!(three.apply(-7), -21);
        assert_eq!(
            three.apply(i32::MAX),
            (i32::MAX as f64 * 0.75).round() as i32
        );
        assert_eq!(three.apply(i32::MIN), -(3 << 29));
        // Shift 30, mantissa 2^30 (real 2^29): anything beyond ±1 saturates.
        let big = QuantizedMultiplier {
            multiplier: 1 << 30,
            shift: 30,
        };
        assert_eq!(big.apply(1), 1 << 29);
        assert_eq!(big.apply(4), i32::MAX / 2 + 1);
        assert_eq!(big.apply(-4), -(1 << 30));
        // Shift -31: i32::MAX · 2^-32 is just below 0.5, yet the double rounding gives 1:
        // SRDHM rounds to 2^30, then 2^30 / 2^31 = 0.5 rounds away from zero.
        let tiny = QuantizedMultiplier {
            multiplier: 1 << 30,
            shift: -31,
        };
        assert_eq!(tiny.apply(i32::MAX), 1);
        assert_eq!(tiny.apply(i32::MIN), -1);
        assert_eq!(tiny.apply(1 << 20), 0);
    }

    #[test]
    fn apply_tracks_real_product() {
        // Over a spread of multipliers the fixed-point result is within one unit of the
        // exactly rounded real product.
        for &real in &[0.000_123, 0.003_9, 0.042, 0.31, 0.999_999, 1.7, 12.5] {
            let q = QuantizedMultiplier::from_real(real).unwrap();
            assert!((q.to_real() - real).abs() <= real * 2f64.powi(-30));
            for acc in [-1_000_000, -4_097, -1, 0, 1, 977, 65_535, 3_000_000] {
                let exact = acc as f64 * real;
                let got = q.apply(acc);
                assert!(
                    (got as f64 - exact).abs() <= 1.0,
                    "{real} {acc} {got} {exact}"
                );
            }
        }
    }
}
