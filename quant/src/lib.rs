//! Quantization math and kernels, with no knowledge of LiDAR: quantization schemes,
//! observers and calibrators (min-max, percentile, KL divergence, MSE), fixed-point
//! requantization, int8/fp16 kernels and per-layer precision plans.
//! `docs/QUANTIZATION.md` is the normative numeric contract this crate implements.
