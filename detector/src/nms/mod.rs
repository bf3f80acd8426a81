//! Greedy rotated BEV non-maximum suppression, as OpenPCDet's `class_agnostic_nms` with
//! `nms_gpu`: best score first (ties keep input order), suppress every later box whose
//! BEV IoU with a kept box exceeds the threshold, stop after `max_out` boxes.

mod iou;

pub use iou::{bev_corners, bev_intersection, bev_iou};

use lidarq_data::Box3D;

/// Relative slack on the squared reach of the circle pre-test.
const REACH_MARGIN: f32 = 1.0 + 1e-3;

/// Indices into `boxes` of the kept boxes, best first. `order` lists candidates already
/// sorted best first.
pub fn nms(boxes: &[Box3D], order: &[usize], thresh: f32, max_out: usize) -> Vec<usize> {
    let thresh = f64::from(thresh);
    let mut keep: Vec<usize> = Vec::new();
    for &i in order {
        if keep.len() >= max_out {
            break;
        }
        // Cheap reject before the exact polygon: circumscribed circles that do not touch
        // (with a margin for rounding) cannot overlap.
        let b = &boxes[i];
        let suppressed = keep.iter().any(|&j| {
            let k = &boxes[j];
            let reach = (b.dx.hypot(b.dy) + k.dx.hypot(k.dy)) / 2.0;
            let (ddx, ddy) = (b.x - k.x, b.y - k.y);
            ddx * ddx + ddy * ddy <= reach * reach * REACH_MARGIN && bev_iou(b, k) > thresh
        });
        if !suppressed {
            keep.push(i);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f32, yaw: f32) -> Box3D {
        Box3D {
            x,
            y: 0.0,
            z: 0.0,
            dx: 2.0,
            dy: 2.0,
            dz: 1.0,
            yaw,
        }
    }

    #[test]
    fn suppresses_overlaps_keeps_order_and_caps_output() {
        // Box 1 overlaps box 0 (IoU 1/3), box 2 is far, box 3 is far from all.
        let boxes = [bx(0.0, 0.0), bx(1.0, 0.0), bx(10.0, 0.0), bx(20.0, 0.5)];
        assert_eq!(nms(&boxes, &[0, 1, 2, 3], 0.01, 10), vec![0, 2, 3]);
        assert_eq!(nms(&boxes, &[1, 0, 3, 2], 0.01, 10), vec![1, 3, 2]);
        // A threshold above the overlap keeps both.
        assert_eq!(nms(&boxes, &[0, 1], 0.5, 10), vec![0, 1]);
        assert_eq!(nms(&boxes, &[0, 1, 2, 3], 0.01, 2), vec![0, 2]);
    }
}
