//! Weight quantization: per-output-channel symmetric int8 (`[-127, 127]`, zero point 0),
//! with optional outlier clipping per channel.

use crate::calib::ThresholdMethod;
use crate::calib::histogram::HistogramObserver;
use crate::error::{QuantError, Result};
use crate::observer::Observer;
use crate::qtensor::{Granularity, QTensor};
use crate::scheme::QuantParams;

/// Bins of the per-channel `|w|` histogram that clipping thresholds are searched on.
pub const WEIGHT_HISTOGRAM_BINS: usize = 2048;

/// Quantize weights laid out with the output channel outermost (OIHW, `[out, in]`), one
/// symmetric scale per output channel.
///
/// `clipping` picks each channel's amax: [`ThresholdMethod::Max`] keeps the exact `max |w|`;
/// the others search a [`WEIGHT_HISTOGRAM_BINS`]-bin histogram of that channel's `|w|` with
/// `qmax = 127`. An all-zero channel gets the smallest scale and all-zero integers.
pub fn quantize_weights(
    weights: &[f32],
    shape: &[usize],
    clipping: ThresholdMethod,
    power_of_two: bool,
) -> Result<QTensor> {
    let channels = shape.first().copied().unwrap_or(1);
    let expected: usize = shape.iter().product();
    if weights.len() != expected || channels == 0 {
        return Err(QuantError::Length {
            what: "weights",
            got: weights.len(),
            expected,
        });
    }
    if let Some(bad) = weights.iter().find(|w| !w.is_finite()) {
        return Err(QuantError::Parameter {
            name: "weight",
            value: *bad as f64,
            reason: "weights must be finite",
        });
    }
    let params = weights
        .chunks(expected / channels)
        .map(|channel| QuantParams::weights(channel_amax(channel, clipping)?, power_of_two))
        .collect::<Result<Vec<_>>>()?;
    QTensor::quantize(weights, shape, Granularity::PerChannel(params))
}

/// Quantize a float bias to i32 with scale `s_in · s_w[c]` (computed in f64), zero point 0,
/// rounding half away from zero and saturating to the i32 range.
pub fn quantize_bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> Result<Vec<i32>> {
    if bias.len() != weight_scales.len() {
        return Err(QuantError::Length {
            what: "bias",
            got: bias.len(),
            expected: weight_scales.len(),
        });
    }
    bias.iter()
        .zip(weight_scales)
        .map(|(&b, &sw)| {
            let scale = input_scale as f64 * sw as f64;
            if !(scale > 0.0 && scale.is_finite() && b.is_finite()) {
                return Err(QuantError::Scale {
                    scale,
                    context: format!("bias {b} with input scale {input_scale}, weight scale {sw}"),
                });
            }
            Ok((b as f64 / scale).round() as i32)
        })
        .collect()
}

fn channel_amax(channel: &[f32], clipping: ThresholdMethod) -> Result<f32> {
    let amax = channel.iter().fold(0f32, |m, w| m.max(w.abs()));
    if amax == 0.0 || clipping == ThresholdMethod::Max {
        return Ok(amax);
    }
    let mut observer = HistogramObserver::new(WEIGHT_HISTOGRAM_BINS)?;
    observer.observe(channel, None)?;
    let threshold = clipping.threshold(&observer.histogram()?, 127)?;
    Ok((threshold as f32).min(amax))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_scales_follow_channel_max() {
        let w = [0.11, -0.2, 0.06, 0.0, 0.0, 0.0, 4.0, 2.2, -1.0];
        let q = quantize_weights(&w, &[3, 3], ThresholdMethod::Max, false).unwrap();
        // 0.11·635 = 69.85, 0.06·635 = 38.1, 2.2·31.75 = 69.85, -1·31.75 = -31.75.
        assert_eq!(q.values(), &[70, -127, 38, 0, 0, 0, 127, 70, -32]);
        let Granularity::PerChannel(ps) = q.granularity() else {
            panic!("per-channel expected")
        };
        assert_eq!(ps[0].scale, 0.4 / 254.0);
        assert_eq!(ps[2].scale, 8.0 / 254.0);
        assert!(ps.iter().all(|p| p.zero_point == 0 && p.qmin == -127));
    }

    #[test]
    fn percentile_clipping_drops_a_channel_outlier() {
        // 999 small weights and one 100× outlier in channel 0; channel 1 is untouched.
        let mut w: Vec<f32> = (0..1000).map(|i| ((i % 21) as f32 - 10.0) * 0.01).collect();
        w[500] = 10.0;
        w.extend((0..1000).map(|i| ((i % 21) as f32 - 10.0) * 0.01));
        let plain = quantize_weights(&w, &[2, 1000], ThresholdMethod::Max, false).unwrap();
        let clipped =
            quantize_weights(&w, &[2, 1000], ThresholdMethod::Percentile(99.0), false).unwrap();
        let scale = |q: &QTensor, c| q.granularity().channel(c).scale;
        assert_eq!(scale(&plain, 0), 20.0 / 254.0);
        // 99% of |w| lie at or below 0.1 (bin edges of width 10/2048 ≈ 0.0049).
        assert!((scale(&clipped, 0) - 0.1 / 127.0).abs() < 0.005 / 127.0);
        assert_eq!(scale(&clipped, 1), scale(&plain, 1));
        assert_eq!(clipped.values()[500], 127);
        // MSE keeps the outlier: clipping 10 to ~0.1 costs 9.9²/1000 ≈ 0.098 in MSE, far
        // more than the ≈ 5e-4 rounding noise of the full-range scale.
        let mse = quantize_weights(&w, &[2, 1000], ThresholdMethod::Mse, false).unwrap();
        assert!(scale(&mse, 0) > scale(&plain, 0) / 2.0);
    }

    #[test]
    fn bias_quantization() {
        // 0.375 / (0.5 · 0.25) = 3; -0.3125 / 0.125 = -2.5 → -3; huge saturates.
        let q = quantize_bias(&[0.375, -0.3125, 1e30], 0.5, &[0.25; 3]).unwrap();
        assert_eq!(q, vec![3, -3, i32::MAX]);
        assert!(quantize_bias(&[0.3], 0.5, &[0.0]).is_err());
        assert!(quantize_bias(&[0.3], 0.5, &[]).is_err());
    }

    #[test]
    fn bad_weights_are_errors() {
        assert!(quantize_weights(&[1.0; 5], &[2, 3], ThresholdMethod::Max, false).is_err());
        assert!(quantize_weights(&[f32::NAN], &[1], ThresholdMethod::Max, false).is_err());
        assert!(quantize_weights(&[], &[0], ThresholdMethod::Max, false).is_err());
    }
}
