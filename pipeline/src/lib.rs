//! The staged streaming pipeline and drive-log replay: sources (KITTI folders, scan
//! sequences, ROS 2 MCAP logs), stages on their own threads joined by bounded channels,
//! tracking, and sinks (KITTI result files, Rerun).
//!
//! A run is `source → stage → … → sinks`: [`Pipeline::new`] starts the source,
//! [`Pipeline::then`] appends a [`Stage`] ([`Pipeline::then_replicated`]: copies of one that
//! take frames in turn), [`Pipeline::run`] feeds the [`Sink`]s in frame order and returns a
//! [`Summary`]. [`detect::DetectorStages`] is the detector (fp32, int8 or both) as stages.
//! A frame that cannot be read or processed is a [`Skip`] counted in the summary; it never
//! ends the run.

#![deny(missing_docs)]

mod cdr;
pub mod detect;
mod error;
pub mod pointcloud2;
mod runner;
pub mod sink;
pub mod source;
mod stage;
mod summary;
pub mod track;

pub use cdr::CdrError;
pub use error::{PipelineError, Result};
pub use runner::{Pipeline, Rate, RunConfig};
pub use source::{Frame, Skip, Source, SourceItem};
pub use stage::{
    DetectionSet, FnStage, FrameResult, IntoDetectionSets, Sink, Stage, StageTiming, stage_fn,
};
pub use summary::{StageStats, Summary};
