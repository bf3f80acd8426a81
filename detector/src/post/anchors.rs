//! Anchor generation with OpenPCDet's `AnchorGenerator` semantics: per class, a grid of
//! anchor centers over the point-cloud range (edge to edge when `align_center` is false,
//! cell centers when true), every size × bottom height × rotation at each cell, z moved
//! from the bottom to the box center. Anchor order is the head's channel order:
//! cell (y, x), then class, then size, then height, then rotation.

use crate::config::ModelConfig;

/// One anchor: `[x, y, z, dx, dy, dz, yaw]`, z at the box center.
pub type Anchor = [f32; 7];

/// All anchors of the head map, row-major over cells, `anchors_per_location` per cell.
pub fn generate_anchors(cfg: &ModelConfig) -> Vec<Anchor> {
    let r = &cfg.voxel.point_cloud_range;
    let [nx, ny, _] = cfg.grid_size();
    let (h, w) = cfg.backbone_output_size();
    let per_cell = cfg.anchors_per_location();
    let mut out = vec![[0.0f32; 7]; h * w * per_cell];
    let mut slot = 0;
    for a in &cfg.dense_head.anchor_generator {
        let stride = a.feature_map_stride.max(1);
        let (fx, fy) = (nx / stride, ny / stride);
        // Coordinates are computed in f64 and rounded once, like torch.arange's
        // double-precision accumulation.
        let axis = |lo: f64, hi: f64, n: usize| -> Vec<f32> {
            let (step, offset) = if a.align_center {
                let step = (hi - lo) / n as f64;
                (step, step / 2.0)
            } else {
                ((hi - lo) / (n.max(2) - 1) as f64, 0.0)
            };
            (0..n)
                .map(|i| (lo + offset + step * i as f64) as f32)
                .collect()
        };
        let xs = axis(r[0], r[3], fx);
        let ys = axis(r[1], r[4], fy);
        for &zb in &a.anchor_bottom_heights {
            for size in &a.anchor_sizes {
                for &rot in &a.anchor_rotations {
                    for (y, &ay) in ys.iter().enumerate().take(h) {
                        for (x, &ax) in xs.iter().enumerate().take(w) {
                            let z = zb + size[2] / 2.0;
                            out[(y * w + x) * per_cell + slot] =
                                [ax, ay, z, size[0], size[1], size[2], rot];
                        }
                    }
                    slot += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitti_anchors_match_openpcdet() {
        let cfg = ModelConfig::kitti();
        let anchors = generate_anchors(&cfg);
        assert_eq!(anchors.len(), 248 * 216 * 6);
        // First cell: Car at rotation 0 and 1.57, then Pedestrian, then Cyclist.
        assert_eq!(anchors[0], [0.0, -39.68, -1.0, 3.9, 1.6, 1.56, 0.0]);
        assert_eq!(anchors[1][6], 1.57);
        assert_eq!(
            anchors[2],
            [0.0, -39.68, -0.6 + 1.73 / 2.0, 0.8, 0.6, 1.73, 0.0]
        );
        assert_eq!(anchors[5][3], 1.76);
        // x steps by 69.12 / 215, and the last cell reaches the far corner.
        let dx = (69.12f64 / 215.0) as f32;
        assert!((anchors[6][0] - dx).abs() < 1e-6);
        let last = anchors[anchors.len() - 6];
        assert!(
            (last[0] - 69.12).abs() < 1e-4 && (last[1] - 39.68).abs() < 1e-4,
            "{last:?}"
        );
    }
}
