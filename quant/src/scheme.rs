//! Quantization schemes: the affine map between f32 and 8-bit integers.
//!
//! `real = scale · (q − zero_point)`, `q = clamp(round(real / scale) + zero_point, qmin, qmax)`
//! with `round` to nearest, ties away from zero (TFLite's `std::round`). The zero point is an
//! integer inside `[qmin, qmax]`, so real 0.0 is always exactly representable.

use crate::error::{QuantError, Result};
use serde::{Deserialize, Serialize};

/// Smallest scale ever produced (PyTorch's `eps`): a constant tensor still gets a usable map.
pub const MIN_SCALE: f32 = f32::EPSILON;

/// Storage type of quantized values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantDtype {
    /// Signed 8-bit, `[-128, 127]`.
    Int8,
    /// Unsigned 8-bit, `[0, 255]`.
    Uint8,
}

impl QuantDtype {
    /// Full integer range `(min, max)` of the type.
    pub fn range(self) -> (i32, i32) {
        match self {
            QuantDtype::Int8 => (-128, 127),
            QuantDtype::Uint8 => (0, 255),
        }
    }
}

/// How the real range maps onto integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `[min, max]` (widened to include 0) onto the type's full range, zero point anywhere.
    Affine,
    /// `[-amax, amax]` onto the narrow symmetric range around the centre: int8 `[-127, 127]`
    /// with zero point 0, uint8 `[1, 255]` with zero point 128.
    Symmetric,
}

/// The parameters of one affine map (one tensor, or one channel of a per-channel tensor).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// Real step between adjacent integers; finite and ≥ [`MIN_SCALE`].
    pub scale: f32,
    /// The integer that represents real 0.0.
    pub zero_point: i32,
    /// Smallest integer used.
    pub qmin: i32,
    /// Largest integer used.
    pub qmax: i32,
}

impl QuantParams {
    /// Parameters for the observed range `[min, max]` under `scheme` and `dtype`.
    ///
    /// The range is first widened to contain 0. With `power_of_two`, the scale is rounded up
    /// to the next power of two (never clipping more than the exact scale would) so that
    /// requantization between such tensors is a pure shift.
    pub fn from_range(
        min: f32,
        max: f32,
        scheme: Scheme,
        dtype: QuantDtype,
        power_of_two: bool,
    ) -> Result<Self> {
        if !min.is_finite() || !max.is_finite() || min > max {
            return Err(QuantError::Range {
                min: min as f64,
                max: max as f64,
                context: "observed range for quantization parameters".into(),
            });
        }
        let (min, max) = (min.min(0.0), max.max(0.0));
        let (tmin, tmax) = dtype.range();
        let (qmin, qmax, span, centre) = match scheme {
            Scheme::Affine => (tmin, tmax, max - min, None),
            Scheme::Symmetric => {
                let centre = (tmin + tmax + 1) / 2;
                (
                    centre - 127,
                    centre + 127,
                    2.0 * max.max(-min),
                    Some(centre),
                )
            }
        };
        let scale = round_scale(span / (qmax - qmin) as f32, power_of_two);
        if !scale.is_finite() {
            return Err(QuantError::Scale {
                scale: scale as f64,
                context: format!("range [{min}, {max}] overflows f32"),
            });
        }
        let zero_point = centre.unwrap_or_else(|| {
            let zp = qmin as f32 - (min / scale).round();
            zp.clamp(qmin as f32, qmax as f32) as i32
        });
        Ok(Self {
            scale,
            zero_point,
            qmin,
            qmax,
        })
    }

    /// Parameters for a calibrated clipping threshold `t` (an amax): symmetric uses
    /// `[-t, t]`, affine the observed `[min, max]` clipped to `[-t, t]`.
    pub fn from_threshold(
        threshold: f32,
        observed: (f32, f32),
        scheme: Scheme,
        dtype: QuantDtype,
        power_of_two: bool,
    ) -> Result<Self> {
        let t = threshold.abs();
        let (min, max) = match scheme {
            Scheme::Symmetric => (-t, t),
            Scheme::Affine => (observed.0.max(-t), observed.1.min(t)),
        };
        Self::from_range(min.min(max), max, scheme, dtype, power_of_two)
    }

    /// Symmetric int8 weight parameters for absolute maximum `amax`: `[-127, 127]`, zp 0.
    pub fn weights(amax: f32, power_of_two: bool) -> Result<Self> {
        Self::from_range(
            -amax.abs(),
            amax.abs(),
            Scheme::Symmetric,
            QuantDtype::Int8,
            power_of_two,
        )
    }

    /// Quantize one value (NaN maps to the zero point; ±∞ and out-of-range values saturate).
    #[inline]
    pub fn quantize(&self, x: f32) -> i32 {
        // `as i32` saturates and maps NaN to 0; the add saturates too before the clamp.
        let q = (x / self.scale).round() as i32;
        q.saturating_add(self.zero_point)
            .clamp(self.qmin, self.qmax)
    }

    /// The real value of integer `q`.
    #[inline]
    pub fn dequantize(&self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }

    /// `dequantize(quantize(x))`: the value the quantized model sees.
    #[inline]
    pub fn fake_quantize(&self, x: f32) -> f32 {
        self.dequantize(self.quantize(x))
    }

    /// The real range `[dequantize(qmin), dequantize(qmax)]` representable without clipping.
    pub fn real_range(&self) -> (f32, f32) {
        (self.dequantize(self.qmin), self.dequantize(self.qmax))
    }

    /// `log2(scale)` when the scale is an exact power of two.
    pub fn power_of_two_exponent(&self) -> Option<i32> {
        let bits = self.scale.to_bits();
        let is_pow2 = bits & 0x007f_ffff == 0 && self.scale.is_normal();
        is_pow2.then(|| ((bits >> 23) & 0xff) as i32 - 127)
    }
}

fn round_scale(scale: f32, power_of_two: bool) -> f32 {
    let scale = scale.max(MIN_SCALE);
    const MANTISSA: u32 = 0x007f_ffff;
    let bits = scale.to_bits();
    if !power_of_two || bits & MANTISSA == 0 {
        return scale;
    }
    // Next power of two above a normal positive float: clear the mantissa, bump the exponent.
    f32::from_bits((bits & !MANTISSA) + (1 << 23))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_int8_hand_computed() {
        // [-1, 3] over 255 steps: scale 4/255, zp = -128 - round(-1 / (4/255)) = -128 + 64.
        let p =
            QuantParams::from_range(-1.0, 3.0, Scheme::Affine, QuantDtype::Int8, false).unwrap();
        assert_eq!(p.scale, 4.0 / 255.0);
        assert_eq!(p.zero_point, -64);
        assert_eq!((p.qmin, p.qmax), (-128, 127));
        assert_eq!(p.quantize(0.0), -64);
        assert_eq!(p.dequantize(p.zero_point), 0.0);
        assert_eq!(p.quantize(3.0), 127);
        assert_eq!(p.quantize(100.0), 127);
        assert_eq!(p.quantize(-100.0), -128);
        assert_eq!(p.quantize(f32::NAN), -64);
        assert_eq!(p.quantize(f32::INFINITY), 127);
        assert_eq!(p.quantize(f32::NEG_INFINITY), -128);
    }

    #[test]
    fn range_is_widened_to_contain_zero() {
        let p =
            QuantParams::from_range(2.0, 6.0, Scheme::Affine, QuantDtype::Uint8, false).unwrap();
        assert_eq!(p.zero_point, 0);
        assert_eq!(p.scale, 6.0 / 255.0);
        let p =
            QuantParams::from_range(-6.0, -2.0, Scheme::Affine, QuantDtype::Uint8, false).unwrap();
        assert_eq!(p.zero_point, 255);
        assert_eq!(p.fake_quantize(0.0), 0.0);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        let p = QuantParams::from_range(-127.0, 127.0, Scheme::Symmetric, QuantDtype::Int8, false)
            .unwrap();
        assert_eq!(p.scale, 1.0);
        assert_eq!(p.quantize(0.5), 1);
        assert_eq!(p.quantize(-0.5), -1);
        assert_eq!(p.quantize(1.5), 2);
        assert_eq!(p.quantize(2.5), 3);
        assert_eq!(p.quantize(-2.5), -3);
        assert_eq!(p.quantize(-200.0), -127);
    }

    #[test]
    fn symmetric_weights_and_uint8_centre() {
        let w = QuantParams::weights(2.54, false).unwrap();
        assert_eq!((w.zero_point, w.qmin, w.qmax), (0, -127, 127));
        assert_eq!(w.scale, 2.54 / 127.0);
        assert_eq!(w.quantize(-2.54), -127);
        let u = QuantParams::from_range(-1.0, 0.5, Scheme::Symmetric, QuantDtype::Uint8, false)
            .unwrap();
        assert_eq!((u.zero_point, u.qmin, u.qmax), (128, 1, 255));
        assert_eq!(u.quantize(-1.0), 1);
        assert_eq!(u.quantize(1.0), 255);
    }

    #[test]
    fn power_of_two_scale_rounds_up() {
        // 3/127 ≈ 0.0236 → 2^-5 = 0.03125.
        let p = QuantParams::weights(3.0, true).unwrap();
        assert_eq!(p.scale, 0.03125);
        assert_eq!(p.power_of_two_exponent(), Some(-5));
        assert_eq!(
            QuantParams::weights(3.0, false)
                .unwrap()
                .power_of_two_exponent(),
            None
        );
        // Exact powers stay put: 127/127 = 1.
        assert_eq!(QuantParams::weights(127.0, true).unwrap().scale, 1.0);
    }

    #[test]
    fn threshold_clips_the_observed_range() {
        let a =
            QuantParams::from_threshold(2.0, (-0.5, 9.0), Scheme::Affine, QuantDtype::Int8, false)
                .unwrap();
        assert_eq!(
            a,
            QuantParams::from_range(-0.5, 2.0, Scheme::Affine, QuantDtype::Int8, false).unwrap()
        );
        let s = QuantParams::from_threshold(
            2.0,
            (-0.5, 9.0),
            Scheme::Symmetric,
            QuantDtype::Int8,
            false,
        )
        .unwrap();
        assert_eq!(s.scale, 4.0 / 254.0);
    }

    #[test]
    fn degenerate_and_invalid_ranges() {
        let p = QuantParams::from_range(0.0, 0.0, Scheme::Affine, QuantDtype::Int8, false).unwrap();
        assert_eq!(p.scale, MIN_SCALE);
        assert_eq!(p.fake_quantize(0.0), 0.0);
        assert!(
            QuantParams::from_range(1.0, -1.0, Scheme::Affine, QuantDtype::Int8, false).is_err()
        );
        assert!(
            QuantParams::from_range(f32::NAN, 1.0, Scheme::Affine, QuantDtype::Int8, false)
                .is_err()
        );
    }
}
