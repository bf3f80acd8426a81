//! LiDAR points inside boxes: a k-d tree over the ground-plane coordinates finds the
//! candidates within a box's circumradius, an exact test in the box's own frame decides.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use lidarq_data::{Box3D, PointCloud};

/// A point cloud indexed for box queries.
pub struct PointIndex<'a> {
    cloud: &'a PointCloud,
    /// `None` for an empty cloud, which the tree cannot hold.
    tree: Option<ImmutableKdTree<f32, 2>>,
}

impl<'a> PointIndex<'a> {
    /// Indexes `cloud` (its x and y).
    pub fn new(cloud: &'a PointCloud) -> Self {
        let xy: Vec<[f32; 2]> = cloud
            .x
            .iter()
            .zip(&cloud.y)
            .map(|(&x, &y)| [x, y])
            .collect();
        let tree = if xy.is_empty() {
            None
        } else {
            ImmutableKdTree::new_from_slice(&xy).ok()
        };
        Self { cloud, tree }
    }

    /// Points inside `b`, faces included.
    pub fn count_in(&self, b: &Box3D) -> u32 {
        let Some(tree) = &self.tree else { return 0 };
        let (hx, hy, hz) = (0.5 * b.dx.abs(), 0.5 * b.dy.abs(), 0.5 * b.dz.abs());
        let (sin, cos) = b.yaw.sin_cos();
        // A little slack so that rounding never drops a corner point from the candidates.
        let radius2 = (hx * hx + hy * hy) * (1.0 + 1e-5) + 1e-6;
        let found = tree
            .query(&[b.x, b.y])
            .within::<SquaredEuclidean<f32>>(radius2)
            .unsorted()
            .execute();
        let c = self.cloud;
        found
            .iter()
            .filter(|r| {
                let i = r.item as usize;
                let (dx, dy) = (c.x[i] - b.x, c.y[i] - b.y);
                let u = dx * cos + dy * sin;
                let v = -dx * sin + dy * cos;
                u.abs() <= hx && v.abs() <= hy && (c.z[i] - b.z).abs() <= hz
            })
            .count() as u32
    }

    /// Points inside each box.
    pub fn count_in_each(&self, boxes: &[Box3D]) -> Vec<u32> {
        boxes.iter().map(|b| self.count_in(b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 0.1 m grid over [-5, 5)² at z = 0.
    fn grid() -> PointCloud {
        let mut c = PointCloud::with_capacity(10_000);
        for i in 0..100 {
            for j in 0..100 {
                c.push(
                    -5.0 + 0.1 * i as f32 + 0.05,
                    -5.0 + 0.1 * j as f32 + 0.05,
                    0.0,
                    0.0,
                );
            }
        }
        c
    }

    /// A 2 × 1 × 1 m box at the origin.
    fn two_by_one() -> Box3D {
        Box3D {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            dx: 2.0,
            dy: 1.0,
            dz: 1.0,
            yaw: 0.0,
        }
    }

    #[test]
    fn counts_points_in_rotated_boxes_exactly() {
        let cloud = grid();
        let index = PointIndex::new(&cloud);
        let axis = two_by_one();
        // Cell centers at ±0.05, ±0.15, …: 20 × 10 inside a 2 × 1 box.
        assert_eq!(index.count_in(&axis), 200);
        let turned = Box3D {
            yaw: std::f32::consts::FRAC_PI_2,
            ..axis
        };
        assert_eq!(index.count_in(&turned), 200);
        // Brute force on an oblique box.
        let oblique = Box3D {
            x: 1.02,
            y: -0.73,
            z: 0.0,
            dx: 3.1,
            dy: 1.7,
            dz: 1.0,
            yaw: 0.61,
        };
        let (s, c) = oblique.yaw.sin_cos();
        let brute = (0..cloud.len())
            .filter(|&i| {
                let (dx, dy) = (cloud.x[i] - oblique.x, cloud.y[i] - oblique.y);
                (dx * c + dy * s).abs() <= 1.55 && (-dx * s + dy * c).abs() <= 0.85
            })
            .count() as u32;
        assert!(brute > 400, "{brute}");
        assert_eq!(index.count_in(&oblique), brute);
        // Above the points: none.
        assert_eq!(index.count_in(&Box3D { z: 2.0, ..axis }), 0);
        assert_eq!(index.count_in_each(&[axis, turned]), vec![200, 200]);
    }

    #[test]
    fn empty_cloud_has_no_points() {
        let cloud = PointCloud::default();
        assert_eq!(PointIndex::new(&cloud).count_in(&two_by_one()), 0);
    }
}
