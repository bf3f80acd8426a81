//! KITTI calibration: projection matrices, the LiDAR ↔ rectified-camera transforms and the
//! LiDAR box ↔ KITTI label conversion (OpenPCDet's `boxes3d_lidar_to_kitti_camera` and its
//! inverse). Frames and conventions: docs/COORDINATES.md.

use crate::{Box3D, ObjectLabel, PointCloud};
use nalgebra::{Matrix3, Matrix3x4, Matrix4, Vector2, Vector3, Vector4};
use std::f64::consts::{FRAC_PI_2, PI, TAU};

/// Width and height (px) of the KITTI object benchmark's left colour image.
pub const KITTI_IMAGE_SIZE: (u32, u32) = (1242, 375);

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

/// Extends a 3×4 rigid transform to its homogeneous 4×4 form.
fn homogeneous(m: &Matrix3x4<f64>) -> Matrix4<f64> {
    let mut h = Matrix4::identity();
    h.fixed_view_mut::<3, 4>(0, 0).copy_from(m);
    h
}

/// Wraps an angle into [-π, π).
fn wrap_angle(a: f64) -> f64 {
    (a + PI).rem_euclid(TAU) - PI
}

impl Calib {
    /// The calibration of frame 000001 of the KITTI object benchmark (drive 2011_09_26): a
    /// real, typical KITTI calibration for synthetic data and tests.
    pub fn kitti_default() -> Calib {
        let fx = 7.215377e2;
        let cx = 6.095593e2;
        let cy = 1.72854e2;
        let projection = |tx: f64, ty: f64, tz: f64| {
            Matrix3x4::new(fx, 0.0, cx, tx, 0.0, fx, cy, ty, 0.0, 0.0, 1.0, tz)
        };
        Calib {
            p: [
                projection(0.0, 0.0, 0.0),
                projection(-3.875744e2, 0.0, 0.0),
                projection(4.485728e1, 2.163791e-1, 2.745884e-3),
                projection(-3.395242e2, 2.199936, 2.729905e-3),
            ],
            r0_rect: Matrix3::new(
                9.999239e-1,
                9.83776e-3,
                -7.445048e-3,
                -9.869795e-3,
                9.999421e-1,
                -4.278459e-3,
                7.402527e-3,
                4.351614e-3,
                9.999631e-1,
            ),
            tr_velo_to_cam: Matrix3x4::new(
                7.533745e-3,
                -9.999714e-1,
                -6.16602e-4,
                -4.069766e-3,
                1.480249e-2,
                7.280733e-4,
                -9.998902e-1,
                -7.631618e-2,
                9.998621e-1,
                7.52379e-3,
                1.480755e-2,
                -2.717806e-1,
            ),
            tr_imu_to_velo: Matrix3x4::new(
                9.999976e-1,
                7.553071e-4,
                -2.035826e-3,
                -8.086759e-1,
                -7.854027e-4,
                9.998898e-1,
                -1.482298e-2,
                3.195559e-1,
                2.024406e-3,
                1.482454e-2,
                9.998881e-1,
                -7.997231e-1,
            ),
        }
    }

    /// The seven matrices under their calib-file keys, row by row (file order).
    pub fn named_rows(&self) -> [(&'static str, Vec<Vec<f64>>); 7] {
        fn rows<const C: usize>(m: &nalgebra::SMatrix<f64, 3, C>) -> Vec<Vec<f64>> {
            m.row_iter().map(|r| r.iter().copied().collect()).collect()
        }
        [
            ("P0", rows(&self.p[0])),
            ("P1", rows(&self.p[1])),
            ("P2", rows(&self.p[2])),
            ("P3", rows(&self.p[3])),
            ("R0_rect", rows(&self.r0_rect)),
            ("Tr_velo_to_cam", rows(&self.tr_velo_to_cam)),
            ("Tr_imu_to_velo", rows(&self.tr_imu_to_velo)),
        ]
    }

    /// The homogeneous LiDAR → rectified camera transform `R0_rect · Tr_velo_to_cam`.
    pub fn lidar_to_rect_matrix(&self) -> Matrix4<f64> {
        let mut r0 = Matrix4::identity();
        r0.fixed_view_mut::<3, 3>(0, 0).copy_from(&self.r0_rect);
        r0 * homogeneous(&self.tr_velo_to_cam)
    }

    /// The exact inverse of [`Calib::lidar_to_rect_matrix`] (KITTI's `Tr_velo_to_cam` is not
    /// exactly orthonormal, so this inverts the full matrix as OpenPCDet does). A singular
    /// calibration yields NaN entries.
    pub fn rect_to_lidar_matrix(&self) -> Matrix4<f64> {
        self.lidar_to_rect_matrix()
            .try_inverse()
            .unwrap_or_else(|| Matrix4::from_element(f64::NAN))
    }

    /// A LiDAR-frame point in the rectified camera-0 frame.
    pub fn lidar_to_rect(&self, p: Vector3<f64>) -> Vector3<f64> {
        (self.lidar_to_rect_matrix() * p.push(1.0)).xyz()
    }

    /// A rectified camera-0 point in the LiDAR frame.
    pub fn rect_to_lidar(&self, p: Vector3<f64>) -> Vector3<f64> {
        (self.rect_to_lidar_matrix() * p.push(1.0)).xyz()
    }

    /// Pixel of a rectified-frame point in image 2 (the left colour camera); `None` when the
    /// point is not in front of camera 2.
    pub fn rect_to_image(&self, p: Vector3<f64>) -> Option<Vector2<f64>> {
        let h: Vector3<f64> = self.p[2] * Vector4::new(p.x, p.y, p.z, 1.0);
        (h.z > 0.0).then(|| Vector2::new(h.x / h.z, h.y / h.z))
    }

    /// Keeps the points of `cloud` that camera 2 sees: in front of it (rectified depth ≥ 0)
    /// and projecting into the 1242×375 image — OpenPCDet's `FOV_POINTS_ONLY`, which KITTI
    /// models are trained with (labels exist only in that view). Returns the points removed.
    pub fn retain_image_fov(&self, cloud: &mut PointCloud) -> usize {
        let m = self.lidar_to_rect_matrix();
        let (w, h) = KITTI_IMAGE_SIZE;
        let keep: Vec<bool> = (0..cloud.len())
            .map(|i| {
                let p = Vector4::new(cloud.x[i] as f64, cloud.y[i] as f64, cloud.z[i] as f64, 1.0);
                let rect = (m * p).xyz();
                let h2: Vector3<f64> = self.p[2] * rect.push(1.0);
                let depth = h2.z - self.p[2][(2, 3)];
                let (u, v) = (h2.x / h2.z, h2.y / h2.z);
                depth >= 0.0 && u >= 0.0 && u < w as f64 && v >= 0.0 && v < h as f64
            })
            .collect();
        let before = cloud.len();
        cloud.retain_mask(&keep);
        before - cloud.len()
    }

    /// The unclipped 2D box `[left, top, right, bottom]` (px, image 2) enclosing the projected
    /// corners of a LiDAR box. Corners behind camera 2 are left out; `None` when all are.
    pub fn project_box(&self, b: &Box3D) -> Option<[f32; 4]> {
        let m = self.lidar_to_rect_matrix();
        let mut out: Option<[f64; 4]> = None;
        for c in b.corners() {
            let rect = (m * Vector4::new(c[0] as f64, c[1] as f64, c[2] as f64, 1.0)).xyz();
            if let Some(px) = self.rect_to_image(rect) {
                let r = out.get_or_insert([px.x, px.y, px.x, px.y]);
                *r = [
                    r[0].min(px.x),
                    r[1].min(px.y),
                    r[2].max(px.x),
                    r[3].max(px.y),
                ];
            }
        }
        out.map(|r| r.map(|v| v as f32))
    }

    /// The KITTI label of a LiDAR box: location = bottom center in the rectified frame,
    /// hwl = (dz, dy, dx), rotation_y = -yaw - π/2 and alpha = rotation_y - atan2(y, x)
    /// of the LiDAR center (both wrapped into [-π, π)), 2D box = projected corners clipped
    /// to the 1242×375 image (all zeros when the box is behind the camera). Truncation and
    /// occlusion are 0 and score `None`: callers fill them.
    pub fn box_to_label(&self, b: &Box3D, kind: &str) -> ObjectLabel {
        let bottom = b.bottom_center().map(|v| v as f64);
        let loc = self.lidar_to_rect(Vector3::from(bottom));
        let rotation_y = wrap_angle(-(b.yaw as f64) - FRAC_PI_2);
        // OpenPCDet: alpha = -atan2(-y, x) + rotation_y, from the LiDAR center.
        let alpha = wrap_angle(-(-(b.y as f64)).atan2(b.x as f64) + rotation_y);
        let (w, h) = KITTI_IMAGE_SIZE;
        let bbox = self
            .project_box(b)
            .map(|[l, t, r, bt]| {
                let (max_u, max_v) = ((w - 1) as f32, (h - 1) as f32);
                [
                    l.clamp(0.0, max_u),
                    t.clamp(0.0, max_v),
                    r.clamp(0.0, max_u),
                    bt.clamp(0.0, max_v),
                ]
            })
            .unwrap_or([0.0; 4]);
        ObjectLabel {
            kind: kind.to_string(),
            truncated: 0.0,
            occluded: 0,
            alpha: alpha as f32,
            bbox,
            hwl: [b.dz, b.dy, b.dx],
            location: [loc.x as f32, loc.y as f32, loc.z as f32],
            rotation_y: rotation_y as f32,
            score: None,
        }
    }

    /// The LiDAR box of a KITTI label (inverse of [`Calib::box_to_label`]); yaw is wrapped into
    /// [-π, π).
    pub fn label_to_box(&self, label: &ObjectLabel) -> Box3D {
        let [h, w, l] = label.hwl;
        let loc = Vector3::from(label.location.map(|v| v as f64));
        let bottom = self.rect_to_lidar(loc);
        Box3D {
            x: bottom.x as f32,
            y: bottom.y as f32,
            z: (bottom.z + h as f64 * 0.5) as f32,
            dx: l,
            dy: w,
            dz: h,
            yaw: wrap_angle(-(label.rotation_y as f64) - FRAC_PI_2) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (20, 3, -1) lands on pixel (502.4, 215.5) (hand-computed below): kept. Behind the
    /// car, far to the side (u < 0) and high above (v < 0) are outside the image.
    #[test]
    fn image_fov_keeps_only_what_camera_2_sees() {
        let mut cloud = PointCloud::default();
        for (x, y, z) in [
            (20.0, 3.0, -1.0),
            (-20.0, 0.0, -1.0),
            (5.0, 20.0, -1.0),
            (10.0, 0.0, 8.0),
        ] {
            cloud.push(x, y, z, 0.5);
        }
        assert_eq!(Calib::kitti_default().retain_image_fov(&mut cloud), 3);
        assert_eq!(
            (cloud.x.as_slice(), cloud.y.as_slice()),
            (&[20.0][..], &[3.0][..])
        );
    }

    /// Hand computation (numpy, float64) with the calibration of KITTI frame 000001:
    /// p = (20, 3, -1), cam0 = Tr_velo_to_cam · [p, 1] = (-2.8526925, 1.2218080, 19.7332252),
    /// rect = R0_rect · cam0 = (-2.9873703, 1.1654650, 19.7166968),
    /// P2 · [rect, 1] = (9907.8528441, 4249.2532120, 19.7194427) → (502.4408153, 215.4854621).
    #[test]
    fn a_lidar_point_lands_on_the_hand_computed_pixel() {
        let c = Calib::kitti_default();
        let rect = c.lidar_to_rect(Vector3::new(20.0, 3.0, -1.0));
        assert!(
            (rect - Vector3::new(-2.9873703, 1.1654650, 19.7166968))
                .abs()
                .max()
                < 1e-6,
            "{rect}"
        );
        let px = c.rect_to_image(rect).unwrap();
        assert!(
            (px.x - 502.4408153).abs() < 1e-6 && (px.y - 215.4854621).abs() < 1e-6,
            "{px}"
        );
        assert!(c.rect_to_image(Vector3::new(0.0, 0.0, -1.0)).is_none());
    }

    #[test]
    fn lidar_to_camera_to_lidar_is_the_identity() {
        let c = Calib::kitti_default();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |lo: f32, hi: f32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32)
        };
        for _ in 0..500 {
            let b = Box3D {
                x: next(0.0, 70.0),
                y: next(-40.0, 40.0),
                z: next(-3.0, 1.0),
                dx: next(0.5, 12.0),
                dy: next(0.5, 3.0),
                dz: next(0.5, 4.0),
                yaw: next(-3.1, 3.1),
            };
            let back = c.label_to_box(&c.box_to_label(&b, "Car"));
            let pos_err = (back.x - b.x)
                .abs()
                .max((back.y - b.y).abs())
                .max((back.z - b.z).abs());
            assert!(pos_err < 1e-5, "{b:?} -> {back:?}");
            assert_eq!((back.dx, back.dy, back.dz), (b.dx, b.dy, b.dz));
            assert!(
                wrap_angle((back.yaw - b.yaw) as f64).abs() < 1e-5,
                "{b:?} -> {back:?}"
            );
        }
    }

    /// KITTI frame 000001, first label (`Truck ... 2.85 2.63 12.34 0.47 1.49 69.44 -1.56`):
    /// the annotated 2D box is 599.41 156.40 629.75 189.25.
    #[test]
    fn a_real_label_round_trips_to_its_annotated_2d_box() {
        let c = Calib::kitti_default();
        let label = ObjectLabel {
            kind: "Truck".into(),
            truncated: 0.0,
            occluded: 0,
            alpha: -1.57,
            bbox: [599.41, 156.40, 629.75, 189.25],
            hwl: [2.85, 2.63, 12.34],
            location: [0.47, 1.49, 69.44],
            rotation_y: -1.56,
            score: None,
        };
        let b = c.label_to_box(&label);
        let back = c.box_to_label(&b, "Truck");
        for k in 0..4 {
            assert!(
                (back.bbox[k] - label.bbox[k]).abs() < 2.0,
                "{:?} vs {:?}",
                back.bbox,
                label.bbox
            );
        }
        assert!((back.alpha - label.alpha).abs() < 0.02, "{}", back.alpha);
        assert!((back.rotation_y - label.rotation_y).abs() < 1e-6);
    }
}
