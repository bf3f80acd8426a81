//! Executing the layer graph. The pieces that are not GEMMs (pillar gathering, max over
//! points, scatter, concat, window attention's softmax) live in their own modules; one
//! [`Executor`] runs every precision around its kernels, and [`Fp32Executor`] is that
//! executor with every layer in fp32.

mod attention;
mod executor;
mod fp32;
mod pillars;
mod plan;
pub(crate) mod sparse;

pub(crate) use executor::kernel_err;
pub use executor::{
    Activation, CellWork, ExecSetup, Executor, Int8Bias, Int8Weights, activation_params, unit_input,
};
pub use fp32::Fp32Executor;
pub use pillars::PillarInput;
