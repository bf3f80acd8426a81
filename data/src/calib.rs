//! KITTI calibration: projection matrices and the LiDAR ↔ camera transforms.

use nalgebra::{Matrix3, Matrix3x4};

/// A KITTI object-benchmark calibration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Calib {
    /// Projection matrices of cameras 0-3 (rectified frame → image).
    pub p: [Matrix3x4<f64>; 4],
    /// Rectifying rotation of camera 0.
    pub r0_rect: Matrix3<f64>,
    /// LiDAR → camera 0 rigid transform.
    pub tr_velo_to_cam: Matrix3x4<f64>,
    /// IMU → LiDAR rigid transform.
    pub tr_imu_to_velo: Matrix3x4<f64>,
}
