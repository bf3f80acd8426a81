//! KITTI labels for generated objects: the camera-frame record through the calibration,
//! truncation from the image bounds and the occlusion level from the hidden fraction the
//! ray caster measured.

use nalgebra::Vector3;

use crate::{Box3D, Calib, ObjectLabel};

/// Hidden fractions at which KITTI's occlusion levels begin: 0 fully visible, 1 partly
/// occluded, 2 largely occluded, 3 (almost) invisible — level 3 is outside every KITTI
/// difficulty, as "unknown" is on the real benchmark.
const OCCLUSION_STEPS: [f32; 3] = [0.15, 0.5, 0.8];

/// Objects whose box shows less than this in the image (px) are not in the camera's view.
const MIN_VISIBLE_PX: f32 = 1.0;

/// The occlusion level of an object whose hidden fraction is `hidden`.
pub(crate) fn occlusion_level(hidden: f32) -> i32 {
    OCCLUSION_STEPS.iter().filter(|&&s| hidden >= s).count() as i32
}

/// The label of a box of class `kind`, or `None` when it is not in view of camera 2.
pub(crate) fn label(calib: &Calib, b: &Box3D, kind: &str, hidden: f32) -> Option<ObjectLabel> {
    let full = calib.project_box(b)?;
    let mut label = calib.box_to_label(b, kind);
    let [l, t, r, bt] = label.bbox;
    if r - l < MIN_VISIBLE_PX || bt - t < MIN_VISIBLE_PX {
        return None;
    }
    let area = |q: [f32; 4]| (q[2] - q[0]).max(0.0) * (q[3] - q[1]).max(0.0);
    let in_image = area(label.bbox) / area(full).max(f32::MIN_POSITIVE);
    // Corners behind the camera do not project: count them as out of the image.
    let behind = b
        .corners()
        .iter()
        .filter(|c| {
            calib
                .rect_to_image(calib.lidar_to_rect(Vector3::new(c[0], c[1], c[2]).cast()))
                .is_none()
        })
        .count() as f32
        / 8.0;
    label.truncated = (1.0 - in_image).max(behind).clamp(0.0, 1.0);
    label.occluded = occlusion_level(hidden);
    Some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car_at(x: f32, y: f32) -> Box3D {
        Box3D {
            x,
            y,
            z: -0.95,
            dx: 3.9,
            dy: 1.6,
            dz: 1.56,
            yaw: 0.0,
        }
    }

    #[test]
    fn occlusion_levels() {
        assert_eq!(occlusion_level(0.0), 0);
        assert_eq!(occlusion_level(0.3), 1);
        assert_eq!(occlusion_level(0.6), 2);
        assert_eq!(occlusion_level(0.95), 3);
    }

    #[test]
    fn car_ahead_is_untruncated_and_behind_is_unlabelled() {
        let calib = Calib::kitti_default();
        let ahead = label(&calib, &car_at(15.0, 0.0), "Car", 0.0);
        assert!(
            ahead
                .as_ref()
                .is_some_and(|l| l.truncated == 0.0 && l.occluded == 0)
        );
        assert!(ahead.is_some_and(|l| l.bbox[3] - l.bbox[1] > 40.0));
        assert!(label(&calib, &car_at(-15.0, 0.0), "Car", 0.0).is_none());
    }

    #[test]
    fn car_at_the_image_edge_is_truncated() {
        let calib = Calib::kitti_default();
        // About 40° to the left at 8 m: the camera's half field of view is ~40.7°.
        let l = label(&calib, &car_at(7.0, 6.0), "Car", 0.3);
        assert!(
            l.as_ref()
                .is_some_and(|l| l.truncated > 0.2 && l.truncated < 1.0),
            "{l:?}"
        );
        assert_eq!(l.map(|l| l.occluded), Some(1));
    }
}
