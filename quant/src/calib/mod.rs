//! Calibration: histograms of activations and the pure threshold functions that pick a
//! clipping range from them.

pub mod histogram;
pub mod kl;
pub mod mse;
pub mod percentile;

use crate::error::Result;
use histogram::Histogram;
use serde::{Deserialize, Serialize};

/// How a clipping threshold is chosen from a histogram of `|x|`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "method", content = "value")]
pub enum ThresholdMethod {
    /// The full observed range (the last nonzero bin's upper edge).
    Max,
    /// The given percentile of `|x|`, e.g. 99.99.
    Percentile(f64),
    /// TensorRT entropy (KL divergence) calibration.
    Entropy,
    /// The MSE-optimal clip.
    Mse,
}

impl ThresholdMethod {
    /// The threshold (amax) for `qmax` positive levels (127 for int8 symmetric, 255 for
    /// unsigned).
    pub fn threshold(self, hist: &Histogram, qmax: u32) -> Result<f64> {
        match self {
            ThresholdMethod::Max => percentile::percentile_threshold(hist, 100.0),
            ThresholdMethod::Percentile(p) => percentile::percentile_threshold(hist, p),
            ThresholdMethod::Entropy => kl::entropy_threshold(hist, qmax),
            ThresholdMethod::Mse => mse::mse_threshold(hist, qmax),
        }
    }
}
