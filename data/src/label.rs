//! The KITTI object label record (`label_2` line), in the rectified camera frame.

/// One KITTI label line: also the result format when `score` is present.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ObjectLabel {
    /// `Car`, `Van`, `Truck`, `Pedestrian`, `Person_sitting`, `Cyclist`, `Tram`, `Misc`, `DontCare`.
    pub kind: String,
    /// Fraction of the object leaving the image, 0..1 (-1 for DontCare).
    pub truncated: f32,
    /// 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown (-1 for DontCare).
    pub occluded: i32,
    /// Observation angle (rad).
    pub alpha: f32,
    /// 2D box in the left colour image: left, top, right, bottom (px).
    pub bbox: [f32; 4],
    /// Height, width, length (m).
    pub hwl: [f32; 3],
    /// Bottom center in the rectified camera frame (m).
    pub location: [f32; 3],
    /// Rotation about the camera's y axis (rad).
    pub rotation_y: f32,
    /// Detection confidence (result files only).
    pub score: Option<f32>,
}
