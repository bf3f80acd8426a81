//! Evaluation: exact rotated IoU (BEV and 3D), KITTI-style AP (R11/R40, 2D/BEV/3D/AOS, per
//! class and difficulty, and by LiDAR points per object) matching the benchmark's reference
//! evaluation, and side-by-side reports comparing precisions of one model (terminal table,
//! Markdown, JSON, precision–recall plots).

mod dataset;
mod error;
pub mod iou;
pub mod kitti;
mod points;
pub mod report;

pub use dataset::GroundTruth;
pub use error::{EvalError, Result};
pub use points::PointIndex;
