//! MSE-optimal clipping: the threshold whose symmetric quantization of the histogram's bin
//! centres has the smallest mean squared error.
//!
//! Candidate thresholds are the bin edges `t = i·w`, `i ∈ [1, n]`. For each, a bin centre
//! `c = (k + ½)·w` quantizes to `min(round(c / s), qmax)·s` with `s = t / qmax` (round half
//! away from zero, as everywhere); the error is weighted by the bin's count. Among equal
//! minima the largest threshold wins.

use super::histogram::Histogram;
use crate::error::{QuantError, Result};

/// The MSE-optimal threshold (amax) for `qmax` positive levels (127 for int8).
pub fn mse_threshold(hist: &Histogram, qmax: u32) -> Result<f64> {
    hist.require_counts("MSE calibration")?;
    let best = (1..=hist.len())
        .map(|i| (quantization_mse(hist, hist.edge(i), qmax), i))
        .try_fold((f64::INFINITY, hist.len()), |best, (err, i)| {
            let err = err?;
            Ok::<_, QuantError>(if err <= best.0 { (err, i) } else { best })
        })?;
    Ok(hist.edge(best.1))
}

/// Mean squared error of quantizing the histogram (bin centres) with threshold `amax`.
pub fn quantization_mse(hist: &Histogram, amax: f64, qmax: u32) -> Result<f64> {
    if qmax == 0 || !(amax.is_finite() && amax > 0.0) {
        return Err(QuantError::Parameter {
            name: "amax / qmax",
            value: amax,
            reason: "amax must be finite and positive, qmax at least 1",
        });
    }
    let total = hist.require_counts("MSE calibration")?;
    let scale = amax / qmax as f64;
    let w = hist.bin_width();
    let sse: f64 = hist
        .counts()
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c > 0)
        .map(|(k, &c)| {
            let centre = (k as f64 + 0.5) * w;
            let q = (centre / scale).round().min(qmax as f64);
            let e = q * scale - centre;
            c as f64 * e * e
        })
        .sum();
    Ok(sse / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_mse() {
        // Centres 0.5, 1.5, 2.5 (w = 1), counts 2, 1, 1; qmax 2.
        let h = Histogram::new(vec![2, 1, 1], 1.0).unwrap();
        // amax 3 → s 1.5: 0.5→0 (err .25), 1.5→1.5 (0), 2.5→3 (.25): (2·.25 + .25)/4.
        assert!((quantization_mse(&h, 3.0, 2).unwrap() - 0.1875).abs() < 1e-12);
        // amax 2 → s 1: 0.5→1 (ties away, .25), 1.5→2 (.25), 2.5→2 (.25): 0.25.
        assert!((quantization_mse(&h, 2.0, 2).unwrap() - 0.25).abs() < 1e-12);
        // amax 1 → s .5: 0.5→.5 (0), 1.5→1 (.25), 2.5→1 (2.25): 2.5/4.
        assert!((quantization_mse(&h, 1.0, 2).unwrap() - 0.625).abs() < 1e-12);
        assert_eq!(mse_threshold(&h, 2).unwrap(), 3.0);
        assert!(quantization_mse(&h, 0.0, 2).is_err());
    }

    #[test]
    fn heavy_tail_is_clipped() {
        // A million values below 1 and one outlier near 10: clipping the outlier wins.
        let mut counts = vec![0u64; 1000];
        for (k, c) in counts.iter_mut().enumerate().take(100) {
            *c = 10_000 + (k as u64 % 3);
        }
        counts[999] = 1;
        let h = Histogram::new(counts, 0.01).unwrap();
        let t = mse_threshold(&h, 127).unwrap();
        assert!((1.0..5.0).contains(&t), "{t}");
        let clipped = quantization_mse(&h, t, 127).unwrap();
        assert!(clipped < 0.5 * quantization_mse(&h, 10.0, 127).unwrap());
    }
}
