//! The PointPillars detector: model config, weight loading (safetensors with OpenPCDet
//! tensor names, BatchNorm folded at load), the explicit layer graph that every executor
//! runs, fp32 execution on the `lidarq-quant` kernels, anchors, box decoding and rotated
//! NMS. Input is a pillar batch from `lidarq-voxelizer`; output is `Vec<Detection>` in the
//! LiDAR frame. [`quantized`] calibrates and stores int8 / fp16 variants that the same
//! [`Executor`] runs with a precision per layer.
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod exec;
pub mod graph;
mod model;
pub mod nms;
pub mod post;
pub mod quantized;
pub mod weights;

pub use config::ModelConfig;
pub use error::{DetectorError, Result};
pub use exec::{Activation, ExecSetup, Executor, Fp32Executor, PillarInput};
pub use graph::Graph;
pub use model::{CONFIG_FILE, Detector, Model, StageTimes, WEIGHTS_FILE};
pub use post::{HeadView, PostProcessor};
pub use quantized::{CalibrationOptions, CalibrationReport, QuantMode, QuantizedModel, calibrate};
pub use weights::WeightStore;
