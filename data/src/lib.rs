//! The data layer every stage reads through: point clouds, 3D boxes, KITTI labels and
//! calibration, their file formats (KITTI, PCD, nuScenes), dataset views and drive-log
//! sources. Bad input is an error that names the file, the line or byte offset and what
//! was wrong; nothing here panics on input.

mod boxes;
mod calib;
mod cloud_file;
mod error;
mod f32_records;
mod files;
pub mod kitti;
mod label;
pub mod nuscenes;
pub mod pcd;
mod point_cloud;
mod sequence;
pub mod synth;

pub use boxes::{Box3D, Detection};
pub use calib::{Calib, KITTI_IMAGE_SIZE};
pub use cloud_file::{CLOUD_SUFFIXES, CloudFile, CloudFormat, read_cloud};
pub use error::{DataError, Result};
pub use label::ObjectLabel;
pub use point_cloud::{Bounds, ExtraField, PointCloud};
pub use sequence::{Frame, FrameSequence, TimeSource};
