//! Synthetic LiDAR data: a ray-cast spinning LiDAR (HDL-64E by default) in seeded street
//! scenes, written as a KITTI object dataset or as 10 Hz drives.
//!
//! A scene is a street along a rolling, bumpy road with sidewalks behind curbs, buildings,
//! walls, poles, trees, bushes and parking lots, and labelled road users (cars with a body
//! and a cabin, vans, trucks, pedestrians, cyclists) in their lanes with plausible headings.
//! Every beam is intersected analytically with the scene's primitives and the ground, so
//! occlusion and sparsity with range are real; the sensor adds range noise, dropout and an
//! intensity from material, incidence angle and range. Labels go through the KITTI
//! calibration: the 2D box in image 2, truncation from the image bounds, occlusion from
//! the fraction of the object hidden from the sensor. Objects without a point are not
//! labelled; points all around the car are kept.
//!
//! Determinism: every random decision derives from the seed and the index of the frame,
//! street segment or ray it concerns, so the same seed gives the same bytes whatever the
//! thread count.

mod dataset;
mod frame;
mod geometry;
mod ground;
mod labels;
mod material;
mod objects;
mod raycast;
mod scene;
mod seed;
mod sensor;
mod stats;

pub use dataset::{split, write_drive, write_object_dataset};
pub use frame::{Drive, FRAME_PERIOD, SynthConfig, SynthFrame, SynthObject, object_frame};
pub use objects::ObjectClass;
pub use sensor::LidarModel;
pub use stats::{ClassStats, GenStats, RANGE_BINS, kitti_difficulty};
