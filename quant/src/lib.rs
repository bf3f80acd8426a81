//! Quantization math and kernels, with no knowledge of LiDAR: quantization schemes,
//! observers and calibrators (min-max, percentile, KL divergence, MSE), fixed-point
//! requantization, int8/fp16 kernels and per-layer precision plans.
//! `docs/QUANTIZATION.md` is the normative numeric contract this crate implements.

pub mod error;
pub mod fixed_point;
pub mod requant;

pub use error::{QuantError, Result};
pub use fixed_point::QuantizedMultiplier;
pub use requant::{Dequantizer, Requantizer, Rescale};
