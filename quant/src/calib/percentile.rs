//! Percentile clipping: the smallest bin edge below which a given share of values lies.

use super::histogram::Histogram;
use crate::error::{QuantError, Result};

/// The upper edge of the first bin at which the cumulative count reaches `percentile`% of
/// the total (e.g. 99.99). `percentile` lies in `(0, 100]`; 100 gives the last nonzero bin.
pub fn percentile_threshold(hist: &Histogram, percentile: f64) -> Result<f64> {
    if !(percentile > 0.0 && percentile <= 100.0) {
        return Err(QuantError::Parameter {
            name: "percentile",
            value: percentile,
            reason: "must lie in (0, 100]",
        });
    }
    let total = hist.require_counts("percentile calibration")?;
    let target = percentile / 100.0 * total as f64;
    let mut cumulative = 0u64;
    for (k, &c) in hist.counts().iter().enumerate() {
        cumulative += c;
        if cumulative as f64 >= target {
            return Ok(hist.edge(k + 1));
        }
    }
    // Rounding in `target` can leave it a hair above the total; the whole range then holds.
    Ok(hist.edge(hist.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // Cumulative: 50, 80, 95, 99, 100.
        let h = Histogram::new(vec![50, 30, 15, 4, 1, 0, 0], 0.1).unwrap();
        let t = |p| percentile_threshold(&h, p).unwrap();
        assert!((t(50.0) - 0.1).abs() < 1e-12);
        assert!((t(50.1) - 0.2).abs() < 1e-12);
        assert!((t(95.0) - 0.3).abs() < 1e-12);
        assert!((t(99.9) - 0.5).abs() < 1e-12);
        assert!((t(100.0) - 0.5).abs() < 1e-12);
        assert!(percentile_threshold(&h, 0.0).is_err());
        assert!(percentile_threshold(&h, 100.5).is_err());
        assert!(percentile_threshold(&h, f64::NAN).is_err());
    }
}
