//! Quantization math and kernels, with no knowledge of LiDAR: quantization schemes,
//! observers and calibrators (min-max, percentile, KL divergence, MSE), fixed-point
//! requantization, int8/fp16 kernels and per-layer precision plans.
//! `docs/QUANTIZATION.md` is the normative numeric contract this crate implements.
//!
//! The contract in brief: `real = scale·(q − zero_point)`, float → int rounds half away from
//! zero and saturates; weights are int8 symmetric per output channel (`[-127, 127]`, zp 0),
//! activations int8 affine (`[-128, 127]`, uint8 optional), real 0 always exact. Layers
//! requantize i32 accumulators as TFLite does (`QuantizedMultiplier`: saturating rounding
//! doubling high multiply, then rounding right shift; or a pure rounding shift for
//! power-of-two scales), bias added in i32 first, zero point and clamp (fused ReLU) after;
//! the scalar `Requantizer` is the reference every kernel matches bit for bit. Calibration
//! streams masked frames into observers and picks thresholds from fixed histograms
//! (`calib::kl`, `calib::percentile`, `calib::mse`).

pub mod bn_fold;
pub mod calib;
pub mod error;
pub mod fixed_point;
pub mod fp16;
pub mod kernels;
pub mod metrics;
pub mod observer;
pub mod plan;
pub mod qtensor;
pub mod requant;
pub mod scheme;
pub mod weights;

pub use bn_fold::{BatchNorm, fold_batch_norm};
pub use calib::ThresholdMethod;
pub use calib::histogram::{Histogram, HistogramObserver};
pub use error::{QuantError, Result};
pub use fixed_point::QuantizedMultiplier;
pub use metrics::{ErrorMetrics, compare};
pub use observer::{MinMaxObserver, MovingAverageMinMaxObserver, Observer};
pub use plan::{PlanRule, Precision, PrecisionPlan};
pub use qtensor::{Granularity, QTensor, fake_quantize};
pub use requant::{Dequantizer, Requantizer, Rescale};
pub use scheme::{QuantDtype, QuantParams, Scheme};
pub use weights::{quantize_bias, quantize_weights};
