//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong in `lidarq-quant`; every variant names the offending value.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum QuantError {
    /// A real requantization multiplier that cannot be represented (negative, not finite,
    /// or too large for a shift of at most 30).
    #[error("real multiplier {real} cannot be represented as a fixed-point multiplier: {reason}")]
    Multiplier { real: f64, reason: &'static str },
    /// A scale that is not finite and strictly positive.
    #[error("invalid scale {scale} ({context})")]
    Scale { scale: f64, context: String },
    /// A value range whose bounds are not finite or are inverted.
    #[error("invalid range [{min}, {max}] ({context})")]
    Range { min: f64, max: f64, context: String },
    /// Two arrays that must agree in length do not.
    #[error("length mismatch: {what} has {got} entries, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    /// A clamp interval that is inverted or leaves the output type's range.
    #[error("invalid clamp [{min}, {max}]: {reason}")]
    Clamp {
        min: i32,
        max: i32,
        reason: &'static str,
    },
    /// A zero point outside the quantized type's range.
    #[error("zero point {zero_point} outside [{min}, {max}]")]
    ZeroPoint { zero_point: i32, min: i32, max: i32 },
    /// An output channel index past the end of the per-channel parameters.
    #[error("channel {channel} out of range (have {channels})")]
    Channel { channel: usize, channels: usize },
    /// A parameter outside its documented domain (percentile, bin count, target levels, ...).
    #[error("invalid {name} = {value}: {reason}")]
    Parameter {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// A histogram that holds no counted value.
    #[error("histogram is empty ({context})")]
    EmptyHistogram { context: &'static str },
    /// A precision plan that cannot be parsed or resolved.
    #[error("precision plan: {0}")]
    Plan(String),
    /// A kernel asked to do something its prepared weights or this CPU cannot.
    #[error("kernel {op}: {reason}")]
    Kernel { op: &'static str, reason: String },
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, QuantError>;
