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

/// Corner signs in the box frame, in the order [`Box3D::corners`] returns them
/// (OpenPCDet's `boxes_to_corners_3d` order).
const CORNER_SIGNS: [[f32; 3]; 8] = [
    [1.0, 1.0, -1.0],
    [1.0, -1.0, -1.0],
    [-1.0, -1.0, -1.0],
    [-1.0, 1.0, -1.0],
    [1.0, 1.0, 1.0],
    [1.0, -1.0, 1.0],
    [-1.0, -1.0, 1.0],
    [-1.0, 1.0, 1.0],
];

impl Box3D {
    /// The 8 corners in the LiDAR frame. Indices 0-3 are the bottom face, 4-7 the top face
    /// directly above them; on each face the order is front-left, front-right, rear-right,
    /// rear-left, where front is +dx/2 along the heading and left is +dy/2 (OpenPCDet's order).
    pub fn corners(&self) -> [[f32; 3]; 8] {
        let (sin, cos) = self.yaw.sin_cos();
        CORNER_SIGNS.map(|[sx, sy, sz]| {
            let lx = sx * self.dx * 0.5;
            let ly = sy * self.dy * 0.5;
            [
                self.x + lx * cos - ly * sin,
                self.y + lx * sin + ly * cos,
                self.z + sz * self.dz * 0.5,
            ]
        })
    }

    /// Center of the bottom face (where KITTI labels put the location).
    pub fn bottom_center(&self) -> [f32; 3] {
        [self.x, self.y, self.z - self.dz * 0.5]
    }

    /// True when the point lies inside the box or on its surface.
    pub fn contains(&self, x: f32, y: f32, z: f32) -> bool {
        let (sin, cos) = self.yaw.sin_cos();
        let (ox, oy) = (x - self.x, y - self.y);
        let local_x = ox * cos + oy * sin;
        let local_y = -ox * sin + oy * cos;
        local_x.abs() <= self.dx * 0.5
            && local_y.abs() <= self.dy * 0.5
            && (z - self.z).abs() <= self.dz * 0.5
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_of_a_rotated_box_follow_the_documented_order() {
        let b = Box3D {
            x: 10.0,
            y: -2.0,
            z: 1.0,
            dx: 4.0,
            dy: 2.0,
            dz: 1.5,
            yaw: std::f32::consts::FRAC_PI_2,
        };
        let c = b.corners();
        // Heading +y: front-left is at +y (front) and -x (left of +y).
        let expected = [
            [9.0, 0.0, 0.25],
            [11.0, 0.0, 0.25],
            [11.0, -4.0, 0.25],
            [9.0, -4.0, 0.25],
            [9.0, 0.0, 1.75],
            [11.0, 0.0, 1.75],
            [11.0, -4.0, 1.75],
            [9.0, -4.0, 1.75],
        ];
        for (got, want) in c.iter().zip(expected.iter()) {
            for k in 0..3 {
                assert!((got[k] - want[k]).abs() < 1e-5, "{got:?} != {want:?}");
            }
        }
        assert_eq!(b.bottom_center(), [10.0, -2.0, 0.25]);
    }

    #[test]
    fn contains_uses_the_heading() {
        let b = Box3D {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            dx: 4.0,
            dy: 1.0,
            dz: 2.0,
            yaw: std::f32::consts::FRAC_PI_2,
        };
        assert!(b.contains(0.0, 1.9, 0.9));
        assert!(!b.contains(1.9, 0.0, 0.0));
        assert!(!b.contains(0.0, 0.0, 1.1));
    }
}
