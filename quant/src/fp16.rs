//! fp16 numerics: IEEE binary16 storage, f32 arithmetic.
//!
//! An fp16 layer stores weights and activations as f16 and computes in f32 with its inputs,
//! weights and outputs rounded to f16 (round to nearest, ties to even; magnitudes past 65504
//! become ±∞; subnormals kept). Conversions go through the `half` crate, which uses F16C
//! where the CPU has it; both paths round identically.

use half::f16;
use half::slice::HalfFloatSliceExt;

/// `x` rounded to the nearest f16, back in f32.
#[inline]
pub fn round_to_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Round every value to f16 in place (what an fp16 layer does to its inputs and outputs).
pub fn round_slice_to_f16(values: &mut [f32]) {
    let mut tmp = vec![f16::ZERO; values.len()];
    tmp.convert_from_f32_slice(values);
    tmp.convert_to_f32_slice(values);
}

/// f16 storage of `values`.
pub fn to_f16(values: &[f32]) -> Vec<f16> {
    let mut out = vec![f16::ZERO; values.len()];
    out.convert_from_f32_slice(values);
    out
}

/// f32 copies of f16 values (exact).
pub fn to_f32(values: &[f16]) -> Vec<f32> {
    values.to_f32_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_hand_computed() {
        // f16 has 10 mantissa bits: spacing 2^-10 in [1, 2).
        assert_eq!(round_to_f16(1.0 + 2f32.powi(-11)), 1.0); // tie → even
        assert_eq!(
            round_to_f16(1.0 + 3.0 * 2f32.powi(-11)),
            1.0 + 2f32.powi(-9)
        ); // tie → even
        assert_eq!(
            round_to_f16(1.0 + 2f32.powi(-11) + 2f32.powi(-20)),
            1.0 + 2f32.powi(-10)
        );
        assert_eq!(round_to_f16(65504.0), 65504.0);
        assert_eq!(round_to_f16(65520.0), f32::INFINITY);
        assert_eq!(round_to_f16(-1e6), f32::NEG_INFINITY);
        assert_eq!(round_to_f16(2f32.powi(-24)), 2f32.powi(-24)); // smallest subnormal
        assert_eq!(round_to_f16(2f32.powi(-26)), 0.0);
        assert!(round_to_f16(f32::NAN).is_nan());
    }

    #[test]
    fn slice_paths_agree_with_scalar() {
        let values: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.7311).sin() * 1e3 / (1 + i) as f32)
            .collect();
        let mut rounded = values.clone();
        round_slice_to_f16(&mut rounded);
        let stored = to_f16(&values);
        for ((x, r), s) in values.iter().zip(&rounded).zip(&stored) {
            assert_eq!(*r, round_to_f16(*x));
            assert_eq!(s.to_f32(), *r);
        }
        assert_eq!(to_f32(&stored), rounded);
    }
}
