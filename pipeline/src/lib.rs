//! The staged streaming pipeline (source, voxelize, backbone, decode, sinks), drive-log
//! replay and output sinks.

mod cdr;
mod error;
pub mod pointcloud2;

pub use cdr::CdrError;
pub use error::{PipelineError, Result};
pub mod source;

pub use source::{Frame, Skip, Source, SourceItem};
