//! The scalar requantization epilogue: the binding reference every kernel must match bit
//! for bit.
//!
//! For output channel `c` and i32 accumulator `acc` (the sum of `q_x · q_w` products with the
//! input zero point already accounted for):
//!
//! ```text
//! v   = acc +wrap bias[c]                 (two's-complement i32 add, as TFLite)
//! v   = rescale_c(v)                      (fixed-point multiplier or pure rounding shift)
//! out = clamp(v + out_zero_point, clamp_min, clamp_max)   (exact; no overflow)
//! ```
//!
//! A fused ReLU is `clamp_min = out_zero_point` (the quantized image of 0.0).

use crate::error::{QuantError, Result};
use crate::fixed_point::{QuantizedMultiplier, rounding_divide_by_pot, saturating_left_shift};
use crate::scheme::QuantParams;

/// How accumulators are rescaled to the output scale, per output channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rescale {
    /// General scales: TFLite's `MultiplyByQuantizedMultiplier` per channel.
    Multiplier(Vec<QuantizedMultiplier>),
    /// Power-of-two scales: the real multiplier is exactly `2^exponent`; a negative exponent
    /// is one rounding right shift (ties away from zero), a positive one a saturating left
    /// shift. Exponents lie in `[-31, 31]`.
    PowerOfTwo(Vec<i32>),
}

impl Rescale {
    /// Number of output channels.
    pub fn channels(&self) -> usize {
        match self {
            Rescale::Multiplier(m) => m.len(),
            Rescale::PowerOfTwo(e) => e.len(),
        }
    }

    #[inline]
    fn apply(&self, channel: usize, v: i32) -> i32 {
        match self {
            Rescale::Multiplier(m) => m[channel].apply(v),
            Rescale::PowerOfTwo(e) => shift_by_exponent(v, e[channel]),
        }
    }
}

/// `v · 2^exponent`: saturating left shift or rounding (ties away from zero) right shift.
#[inline]
pub fn shift_by_exponent(v: i32, exponent: i32) -> i32 {
    if exponent >= 0 {
        saturating_left_shift(v, exponent)
    } else {
        rounding_divide_by_pot(v, -exponent)
    }
}

/// Per-output-channel requantization parameters of one layer (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requantizer {
    rescale: Rescale,
    bias: Vec<i32>,
    out_zero_point: i32,
    clamp_min: i32,
    clamp_max: i32,
}

impl Requantizer {
    /// A requantizer with fixed-point multipliers, one per output channel.
    ///
    /// `clamp_min ≤ clamp_max` must lie in the int8 range `[-128, 127]` or the uint8 range
    /// `[0, 255]`, and `out_zero_point` inside the clamp's type range.
    pub fn new(
        multipliers: Vec<QuantizedMultiplier>,
        bias: Vec<i32>,
        out_zero_point: i32,
        clamp_min: i32,
        clamp_max: i32,
    ) -> Result<Self> {
        Self::validated(
            Rescale::Multiplier(multipliers),
            bias,
            out_zero_point,
            clamp_min,
            clamp_max,
        )
    }

    /// The requantizer of a layer from its scales: `M_c = s_in · s_w[c] / s_out` (in f64),
    /// the output map's zero point and range, and a fused ReLU if `relu`. With
    /// `power_of_two`, every `M_c` must be an exact power of two and the rescale is a pure
    /// shift; otherwise fixed-point multipliers are used.
    pub fn from_scales(
        input_scale: f32,
        weight_scales: &[f32],
        output: &QuantParams,
        bias: Vec<i32>,
        relu: bool,
        power_of_two: bool,
    ) -> Result<Self> {
        let reals = weight_scales
            .iter()
            .map(|&sw| input_scale as f64 * sw as f64 / output.scale as f64);
        let clamp_min = if relu {
            output.zero_point.max(output.qmin)
        } else {
            output.qmin
        };
        let (zp, hi) = (output.zero_point, output.qmax);
        if power_of_two {
            let exponents = reals
                .map(|m| {
                    let k = m.log2().round() as i32;
                    if m > 0.0 && 2f64.powi(k) == m {
                        Ok(k)
                    } else {
                        Err(QuantError::Multiplier {
                            real: m,
                            reason: "not an exact power of two",
                        })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Self::power_of_two(exponents, bias, zp, clamp_min, hi)
        } else {
            let multipliers = reals
                .map(QuantizedMultiplier::from_real)
                .collect::<Result<Vec<_>>>()?;
            Self::new(multipliers, bias, zp, clamp_min, hi)
        }
    }

    /// A requantizer for power-of-two scales: `exponents[c]` is `log2(s_in·s_w[c]/s_out)`.
    pub fn power_of_two(
        exponents: Vec<i32>,
        bias: Vec<i32>,
        out_zero_point: i32,
        clamp_min: i32,
        clamp_max: i32,
    ) -> Result<Self> {
        if let Some(&bad) = exponents.iter().find(|e| !(-31..=31).contains(*e)) {
            return Err(QuantError::Parameter {
                name: "power-of-two exponent",
                value: bad as f64,
                reason: "must lie in [-31, 31]",
            });
        }
        Self::validated(
            Rescale::PowerOfTwo(exponents),
            bias,
            out_zero_point,
            clamp_min,
            clamp_max,
        )
    }

    fn validated(
        rescale: Rescale,
        bias: Vec<i32>,
        out_zero_point: i32,
        clamp_min: i32,
        clamp_max: i32,
    ) -> Result<Self> {
        if bias.len() != rescale.channels() {
            return Err(QuantError::Length {
                what: "bias",
                got: bias.len(),
                expected: rescale.channels(),
            });
        }
        let clamp_err = |reason| QuantError::Clamp {
            min: clamp_min,
            max: clamp_max,
            reason,
        };
        if clamp_min > clamp_max {
            return Err(clamp_err("min exceeds max"));
        }
        let (lo, hi) = if (-128..=127).contains(&clamp_min) && clamp_max <= 127 {
            (-128, 127)
        } else if clamp_min >= 0 && clamp_max <= 255 {
            (0, 255)
        } else {
            return Err(clamp_err("must lie within [-128, 127] or [0, 255]"));
        };
        if !(lo..=hi).contains(&out_zero_point) {
            return Err(QuantError::ZeroPoint {
                zero_point: out_zero_point,
                min: lo,
                max: hi,
            });
        }
        Ok(Self {
            rescale,
            bias,
            out_zero_point,
            clamp_min,
            clamp_max,
        })
    }

    /// Requantize one accumulator of output channel `channel` to the clamped output value.
    ///
    /// Panics if `channel >= self.channels()` (a caller bug, not an input error).
    #[inline]
    pub fn requantize_i32(&self, channel: usize, acc: i32) -> i32 {
        let v = self
            .rescale
            .apply(channel, acc.wrapping_add(self.bias[channel]));
        v.saturating_add(self.out_zero_point)
            .clamp(self.clamp_min, self.clamp_max)
    }

    /// [`Self::requantize_i32`] written as int8 (saturating if the clamp is the uint8 range).
    #[inline]
    pub fn requantize(&self, channel: usize, acc: i32) -> i8 {
        self.requantize_i32(channel, acc).clamp(-128, 127) as i8
    }

    /// [`Self::requantize_i32`] written as uint8 (saturating if the clamp is the int8 range).
    #[inline]
    pub fn requantize_u8(&self, channel: usize, acc: i32) -> u8 {
        self.requantize_i32(channel, acc).clamp(0, 255) as u8
    }

    /// The per-channel rescale.
    pub fn rescale(&self) -> &Rescale {
        &self.rescale
    }
    /// Per-channel i32 bias, added to the accumulator before rescaling.
    pub fn bias(&self) -> &[i32] {
        &self.bias
    }
    /// Output zero point, added after rescaling.
    pub fn out_zero_point(&self) -> i32 {
        self.out_zero_point
    }
    /// Lower clamp bound (the zero point for a fused ReLU).
    pub fn clamp_min(&self) -> i32 {
        self.clamp_min
    }
    /// Upper clamp bound.
    pub fn clamp_max(&self) -> i32 {
        self.clamp_max
    }
    /// Number of output channels.
    pub fn channels(&self) -> usize {
        self.bias.len()
    }
}

/// The float epilogue for outputs that stay f32: `((acc +wrap bias[c]) as f32) · scale[c]`,
/// with `scale[c] = s_in · s_w[c]` rounded once to f32 and one f32 multiply (no FMA).
#[derive(Debug, Clone, PartialEq)]
pub struct Dequantizer {
    scales: Vec<f32>,
    bias: Vec<i32>,
}

impl Dequantizer {
    /// One scale and one bias per output channel.
    pub fn new(scales: Vec<f32>, bias: Vec<i32>) -> Result<Self> {
        if bias.len() != scales.len() {
            return Err(QuantError::Length {
                what: "bias",
                got: bias.len(),
                expected: scales.len(),
            });
        }
        if let Some(&bad) = scales.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(QuantError::Scale {
                scale: bad as f64,
                context: "dequantizer scale must be finite and non-negative".into(),
            });
        }
        Ok(Self { scales, bias })
    }

    /// Dequantize one accumulator of output channel `channel`.
    ///
    /// Panics if `channel >= self.channels()`.
    #[inline]
    pub fn dequantize(&self, channel: usize, acc: i32) -> f32 {
        acc.wrapping_add(self.bias[channel]) as f32 * self.scales[channel]
    }

    /// Per-channel scales `s_in · s_w[c]`.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// Per-channel i32 bias.
    pub fn bias(&self) -> &[i32] {
        &self.bias
    }
    /// Number of output channels.
    pub fn channels(&self) -> usize {
        self.bias.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qm(real: f64) -> QuantizedMultiplier {
        QuantizedMultiplier::from_real(real).unwrap()
    }

    #[test]
    fn hand_computed_requantization() {
        // Two channels: multiplier 0.1 and 0.02, biases 5 and -100, zero point -3.
        let r = Requantizer::new(vec![qm(0.1), qm(0.02)], vec![5, -100], -3, -128, 127).unwrap();
        // (995 + 5) · 0.1 = 100 → 97.
        assert_eq!(r.requantize(0, 995), 97);
        // (10 + 5) · 0.1 = 1.5 → 2 → -1.
        assert_eq!(r.requantize(0, 10), -1);
        // (-20 + 5) · 0.1 = -1.5 → -2 → -5.
        assert_eq!(r.requantize(0, -20), -5);
        // (2000 - 100) · 0.02 = 38 → 35.
        assert_eq!(r.requantize(1, 2000), 35);
        // Saturation at both ends.
        assert_eq!(r.requantize(0, 1_000_000), 127);
        assert_eq!(r.requantize(0, -1_000_000), -128);
        assert_eq!(r.requantize(1, i32::MAX), 127);
        assert_eq!(r.requantize(1, i32::MIN + 100), -128);
    }

    #[test]
    fn fused_relu_clamps_at_zero_point() {
        let r = Requantizer::new(vec![qm(0.5)], vec![0], 10, 10, 127).unwrap();
        assert_eq!(r.requantize(0, -50), 10);
        assert_eq!(r.requantize(0, -1), 10);
        assert_eq!(r.requantize(0, 3), 12); // 1.5 → 2 (SRDHM ties up, then exact)
        assert_eq!(r.requantize(0, 400), 127);
    }

    #[test]
    fn bias_add_wraps_like_tflite() {
        let r = Requantizer::new(vec![qm(0.5)], vec![1], 0, -128, 127).unwrap();
        // i32::MAX + 1 wraps to i32::MIN, which then saturates low.
        assert_eq!(r.requantize_i32(0, i32::MAX), -128);
    }

    #[test]
    fn zero_point_add_never_overflows() {
        // A left-shifting multiplier drives v to i32::MAX; adding the zero point must not wrap.
        let r = Requantizer::new(vec![qm(4.0)], vec![0], 100, 0, 255).unwrap();
        assert_eq!(r.requantize_u8(0, i32::MAX), 255);
        assert_eq!(r.requantize_u8(0, i32::MIN), 0);
        assert_eq!(r.requantize_u8(0, 10), 140);
    }

    #[test]
    fn power_of_two_is_one_rounding_shift() {
        // 2^-2: 6/4 = 1.5 → 2, -6/4 → -2, 5/4 → 1, 1/4 → 0 (a double-rounding multiplier
        // of 0.25 would give 1 for the last one).
        let r = Requantizer::power_of_two(vec![-2, 1], vec![0, 0], 0, -128, 127).unwrap();
        assert_eq!(r.requantize(0, 6), 2);
        assert_eq!(r.requantize(0, -6), -2);
        assert_eq!(r.requantize(0, 5), 1);
        assert_eq!(r.requantize(0, 1), 0);
        assert_eq!(qm(0.25).apply(1), 1);
        assert_eq!(r.requantize(1, 50), 100);
        assert_eq!(r.requantize(1, 70), 127);
        assert!(Requantizer::power_of_two(vec![-32], vec![0], 0, -128, 127).is_err());
    }

    #[test]
    fn from_scales_builds_both_kinds() {
        use crate::scheme::{QuantDtype, Scheme};
        let out =
            QuantParams::from_range(-1.0, 3.0, Scheme::Affine, QuantDtype::Int8, false).unwrap();
        let r =
            Requantizer::from_scales(0.02, &[0.01, 0.5], &out, vec![0, 7], true, false).unwrap();
        assert_eq!(r.clamp_min(), out.zero_point);
        assert_eq!(r.clamp_max(), 127);
        let Rescale::Multiplier(m) = r.rescale() else {
            panic!("multipliers expected")
        };
        assert_eq!(m[0], qm(0.02f32 as f64 * 0.01f32 as f64 / out.scale as f64));
        // Power-of-two scales: 2^-3 · 2^-4 / 2^-2 = 2^-5.
        let out = QuantParams {
            scale: 0.25,
            zero_point: 0,
            qmin: -128,
            qmax: 127,
        };
        let r = Requantizer::from_scales(0.125, &[0.0625], &out, vec![0], false, true).unwrap();
        assert_eq!(r.rescale(), &Rescale::PowerOfTwo(vec![-5]));
        assert_eq!(r.requantize(0, 48), 2); // 48 / 32 = 1.5 → 2
        assert!(Requantizer::from_scales(0.1, &[0.0625], &out, vec![0], false, true).is_err());
    }

    #[test]
    fn rejects_inconsistent_parameters() {
        assert!(matches!(
            Requantizer::new(vec![qm(0.5)], vec![0, 1], 0, -128, 127),
            Err(QuantError::Length { .. })
        ));
        assert!(matches!(
            Requantizer::new(vec![qm(0.5)], vec![0], 0, 5, 4),
            Err(QuantError::Clamp { .. })
        ));
        assert!(matches!(
            Requantizer::new(vec![qm(0.5)], vec![0], 0, -1, 255),
            Err(QuantError::Clamp { .. })
        ));
        assert!(matches!(
            Requantizer::new(vec![qm(0.5)], vec![0], 200, -128, 127),
            Err(QuantError::ZeroPoint { .. })
        ));
    }

    #[test]
    fn dequantizer_single_multiply() {
        let d = Dequantizer::new(vec![0.5, 0.25], vec![2, -4]).unwrap();
        assert_eq!(d.dequantize(0, 8), 5.0);
        assert_eq!(d.dequantize(1, 0), -1.0);
        // i32 → f32 rounds to nearest even above 2^24.
        assert_eq!(d.dequantize(0, (1 << 24) - 1), 8_388_608.5);
        assert!(Dequantizer::new(vec![f32::NAN], vec![0]).is_err());
        assert!(Dequantizer::new(vec![1.0], vec![]).is_err());
    }
}
