//! Quantization math and kernels, with no knowledge of LiDAR: quantization schemes,
//! observers and calibrators (min-max, percentile, KL divergence, MSE), fixed-point
//! requantization, int8/fp16 kernels and per-layer precision plans.
//! `docs/QUANTIZATION.md` is the normative numeric contract this crate implements.

pub mod calib;
pub mod error;
pub mod fixed_point;
pub mod kernels;
pub mod observer;
pub mod qtensor;
pub mod requant;
pub mod scheme;

pub use error::{QuantError, Result};
pub use fixed_point::QuantizedMultiplier;
pub use calib::ThresholdMethod;
pub use calib::histogram::{Histogram, HistogramObserver};
pub use observer::{MinMaxObserver, MovingAverageMinMaxObserver, Observer};
pub use qtensor::{Granularity, QTensor, fake_quantize};
pub use requant::{Dequantizer, Requantizer, Rescale};
pub use scheme::{QuantDtype, QuantParams, Scheme};
