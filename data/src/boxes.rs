//! 3D boxes in the LiDAR frame and detections. Convention (docs/COORDINATES.md): center at
//! the box's geometric center, dx along the heading (length), dy across (width), dz up
//! (height), yaw counter-clockwise about +z from +x — OpenPCDet's convention.

/// An oriented 3D box in the LiDAR frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Box3D {
    /// Center x (m).
    pub x: f32,
    /// Center y (m).
    pub y: f32,
    /// Center z (m), the geometric center, not the bottom.
    pub z: f32,
    /// Length along the heading (m).
    pub dx: f32,
    /// Width (m).
    pub dy: f32,
    /// Height (m).
    pub dz: f32,
    /// Heading about +z (rad).
    pub yaw: f32,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// The box in the LiDAR frame.
    pub bbox: Box3D,
    /// Class name as in KITTI labels (`Car`, `Pedestrian`, `Cyclist`, ...).
    pub class: String,
    /// Confidence in [0, 1].
    pub score: f32,
}
