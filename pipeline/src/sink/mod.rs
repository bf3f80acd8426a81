//! Sinks: where finished frames go.

mod kitti;
#[cfg(feature = "rerun")]
mod rerun;

pub use kitti::KittiResultSink;
#[cfg(feature = "rerun")]
pub use rerun::{ColorBy, HEIGHT_RANGE, RerunSink, RerunTarget};
