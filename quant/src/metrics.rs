//! Error metrics between a reference (float) output and a quantized one, in f64.

use crate::error::{QuantError, Result};
use serde::{Deserialize, Serialize};

/// How far a tensor is from its reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorMetrics {
    /// Signal-to-quantization-noise ratio `10·log10(Σ ref² / Σ (ref − test)²)` in dB;
    /// +∞ when the two are identical.
    pub sqnr_db: f64,
    /// Cosine similarity; 1 when both are all-zero, 0 when only one is.
    pub cosine: f64,
    /// Largest `|ref − test|`.
    pub max_abs_error: f64,
}

/// Compare `test` against `reference` (same length, finite values).
pub fn compare(reference: &[f32], test: &[f32]) -> Result<ErrorMetrics> {
    if reference.len() != test.len() {
        return Err(QuantError::Length {
            what: "test tensor",
            got: test.len(),
            expected: reference.len(),
        });
    }
    let (mut signal, mut noise, mut dot, mut test_power, mut max_abs) =
        (0f64, 0f64, 0f64, 0f64, 0f64);
    for (&r, &t) in reference.iter().zip(test) {
        let (r, t) = (r as f64, t as f64);
        let e = r - t;
        signal += r * r;
        noise += e * e;
        dot += r * t;
        test_power += t * t;
        max_abs = max_abs.max(e.abs());
    }
    if !(signal.is_finite() && test_power.is_finite() && max_abs.is_finite()) {
        return Err(QuantError::Parameter {
            name: "tensor values",
            value: f64::NAN,
            reason: "reference and test must be finite",
        });
    }
    let sqnr_db = if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    };
    let cosine = match (signal == 0.0, test_power == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => dot / (signal.sqrt() * test_power.sqrt()),
    };
    Ok(ErrorMetrics {
        sqnr_db,
        cosine,
        max_abs_error: max_abs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // Signal power 25, noise power 0.25 → 20 dB.
        let m = compare(&[3.0, 4.0], &[3.0, 4.5]).unwrap();
        assert!((m.sqnr_db - 20.0).abs() < 1e-12);
        assert_eq!(m.max_abs_error, 0.5);
        // cos = (9 + 18) / (5 · sqrt(29.25)).
        assert!((m.cosine - 27.0 / (5.0 * 29.25f64.sqrt())).abs() < 1e-12);
        let same = compare(&[1.0, -2.0], &[1.0, -2.0]).unwrap();
        assert_eq!(same.sqnr_db, f64::INFINITY);
        assert!((same.cosine - 1.0).abs() < 1e-15);
        assert_eq!(compare(&[0.0], &[0.0]).unwrap().cosine, 1.0);
        assert_eq!(compare(&[0.0], &[1.0]).unwrap().cosine, 0.0);
        assert!((compare(&[1.0, 0.0], &[-1.0, 0.0]).unwrap().cosine + 1.0).abs() < 1e-15);
        assert!(compare(&[1.0], &[]).is_err());
        assert!(compare(&[f32::INFINITY], &[1.0]).is_err());
    }
}
