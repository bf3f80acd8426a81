//! Executing the layer graph. The pieces that are not GEMMs (pillar gathering, max over
//! points, scatter, concat, window attention's softmax) live in their own modules so the
//! fp32 executor here and the quantized one run the same code around their kernels.

mod attention;
mod fp32;
mod pillars;
mod plan;

pub use fp32::Fp32Executor;
pub use pillars::PillarInput;
