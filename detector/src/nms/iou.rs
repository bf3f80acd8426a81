//! Exact IoU of rotated BEV rectangles: clip one rectangle by the other's four edges
//! (Sutherland–Hodgman; both are convex) and take the shoelace area, in f64.
//!
//! `eval` has its own rotated IoU for AP; the detector may not depend on `eval`, and NMS
//! only needs this compact BEV form.

use lidarq_data::Box3D;

/// A convex polygon has at most 8 vertices after clipping a rectangle by a rectangle.
const MAX_VERTICES: usize = 8;

pub(crate) type Point = [f64; 2];

/// The four BEV corners of `b`, counter-clockwise.
pub fn bev_corners(b: &Box3D) -> [Point; 4] {
    let (c, s) = (f64::from(b.yaw).cos(), f64::from(b.yaw).sin());
    let (hx, hy) = (f64::from(b.dx) / 2.0, f64::from(b.dy) / 2.0);
    [(hx, hy), (-hx, hy), (-hx, -hy), (hx, -hy)].map(|(u, v)| {
        [
            f64::from(b.x) + c * u - s * v,
            f64::from(b.y) + s * u + c * v,
        ]
    })
}

/// Fixed-capacity polygon, so NMS allocates nothing per pair.
#[derive(Clone, Copy)]
struct Polygon {
    points: [Point; MAX_VERTICES + 4],
    len: usize,
}

impl Polygon {
    fn area(&self) -> f64 {
        let p = &self.points[..self.len];
        let twice: f64 = (0..p.len())
            .map(|i| {
                let (a, b) = (p[i], p[(i + 1) % p.len()]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum();
        twice.abs() / 2.0
    }

    /// The part left of the directed line a → b.
    fn clip(&self, a: Point, b: Point) -> Polygon {
        let side = |p: Point| (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
        let mut out = Polygon {
            points: [[0.0; 2]; MAX_VERTICES + 4],
            len: 0,
        };
        let mut push = |p: Point| {
            if out.len < out.points.len() {
                out.points[out.len] = p;
                out.len += 1;
            }
        };
        for i in 0..self.len {
            let (p, q) = (self.points[i], self.points[(i + 1) % self.len]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
            }
        }
        out
    }
}

/// A box's BEV rectangle with its axis-aligned bounds, prepared once per box so that NMS
/// does not recompute corners (a sine and a cosine) for every pair.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    corners: [Point; 4],
    area: f64,
    lo: Point,
    hi: Point,
}

impl Footprint {
    /// The footprint of `b`.
    pub fn of(b: &Box3D) -> Self {
        let corners = bev_corners(b);
        let bound = |pick: fn(f64, f64) -> f64, axis: usize| {
            corners[1..]
                .iter()
                .fold(corners[0][axis], |m, c| pick(m, c[axis]))
        };
        Self {
            corners,
            area: f64::from(b.dx) * f64::from(b.dy),
            lo: [bound(f64::min, 0), bound(f64::min, 1)],
            hi: [bound(f64::max, 0), bound(f64::max, 1)],
        }
    }

    /// Lower-left and upper-right corners of the axis-aligned bounds.
    pub fn bounds(&self) -> (Point, Point) {
        (self.lo, self.hi)
    }

    /// False only when the bounds are apart, so the rectangles cannot overlap.
    pub fn bounds_meet(&self, other: &Self) -> bool {
        self.lo[0] <= other.hi[0]
            && other.lo[0] <= self.hi[0]
            && self.lo[1] <= other.hi[1]
            && other.lo[1] <= self.hi[1]
    }

    /// An upper bound of [`Footprint::iou`] without clipping: the intersection is at most
    /// the smaller area and at most the overlap of the bounds, and the IoU grows with it.
    pub fn iou_bound(&self, other: &Self) -> f64 {
        let side = |a: usize| (self.hi[a].min(other.hi[a]) - self.lo[a].max(other.lo[a])).max(0.0);
        let inter = (side(0) * side(1)).min(self.area).min(other.area);
        let union = self.area + other.area - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// Area of the intersection of the two rectangles (m²).
    pub fn intersection(&self, other: &Self) -> f64 {
        let cb = &other.corners;
        let mut poly = Polygon {
            points: [[0.0; 2]; MAX_VERTICES + 4],
            len: 4,
        };
        poly.points[..4].copy_from_slice(&self.corners);
        for i in 0..4 {
            poly = poly.clip(cb[i], cb[(i + 1) % 4]);
            if poly.len == 0 {
                return 0.0;
            }
        }
        poly.area()
    }

    /// Intersection over union; 0 when both are empty.
    pub fn iou(&self, other: &Self) -> f64 {
        let inter = self.intersection(other);
        let union = self.area + other.area - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// Area of the intersection of the BEV rectangles of `a` and `b` (m²).
pub fn bev_intersection(a: &Box3D, b: &Box3D) -> f64 {
    Footprint::of(a).intersection(&Footprint::of(b))
}

/// Intersection over union of the BEV rectangles of `a` and `b`; 0 when both are empty.
pub fn bev_iou(a: &Box3D, b: &Box3D) -> f64 {
    Footprint::of(a).iou(&Footprint::of(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bx(x: f32, y: f32, dx: f32, dy: f32, yaw: f32) -> Box3D {
        Box3D {
            x,
            y,
            z: 0.0,
            dx,
            dy,
            dz: 1.0,
            yaw,
        }
    }

    #[test]
    fn hand_computed_overlaps() {
        // Axis-aligned 2×2 squares shifted by 1: overlap 2, union 6.
        assert!(
            (bev_iou(&bx(0.0, 0.0, 2.0, 2.0, 0.0), &bx(1.0, 0.0, 2.0, 2.0, 0.0)) - 1.0 / 3.0).abs()
                < 1e-12
        );
        // A square and itself rotated by 45°: the overlap is a regular octagon of
        // area 8(√2 − 1) for side 2.
        let oct = 8.0 * (2f64.sqrt() - 1.0);
        let iou = oct / (8.0 - oct);
        let got = bev_iou(
            &bx(0.0, 0.0, 2.0, 2.0, 0.0),
            &bx(0.0, 0.0, 2.0, 2.0, std::f32::consts::FRAC_PI_4),
        );
        assert!((got - iou).abs() < 1e-6, "{got} vs {iou}");
        // Disjoint and identical.
        assert_eq!(
            bev_iou(&bx(0.0, 0.0, 1.0, 1.0, 0.3), &bx(5.0, 0.0, 1.0, 1.0, 0.3)),
            0.0
        );
        assert!(
            (bev_iou(&bx(3.0, -2.0, 4.0, 1.5, 1.1), &bx(3.0, -2.0, 4.0, 1.5, 1.1)) - 1.0).abs()
                < 1e-9
        );
        // Rotating a box by π leaves the rectangle unchanged.
        assert!(
            (bev_iou(
                &bx(0.0, 0.0, 4.0, 2.0, 0.2),
                &bx(0.0, 0.0, 4.0, 2.0, 0.2 + std::f32::consts::PI)
            ) - 1.0)
                .abs()
                < 1e-6
        );
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_and_bounded(
            x in -3.0f32..3.0, y in -3.0f32..3.0, dx in 0.2f32..5.0, dy in 0.2f32..5.0, yaw in -4.0f32..4.0,
            dx2 in 0.2f32..5.0, dy2 in 0.2f32..5.0, yaw2 in -4.0f32..4.0,
        ) {
            let a = bx(0.0, 0.0, dx, dy, yaw);
            let b = bx(x, y, dx2, dy2, yaw2);
            let (ab, ba) = (bev_iou(&a, &b), bev_iou(&b, &a));
            prop_assert!((ab - ba).abs() < 1e-9);
            prop_assert!((0.0..=1.0 + 1e-12).contains(&ab));
            // The intersection never exceeds the smaller box.
            let smaller = (f64::from(dx) * f64::from(dy)).min(f64::from(dx2) * f64::from(dy2));
            prop_assert!(bev_intersection(&a, &b) <= smaller * (1.0 + 1e-9));
            // NMS skips pairs by this bound.
            let (fa, fb) = (Footprint::of(&a), Footprint::of(&b));
            prop_assert!(ab <= fa.iou_bound(&fb) * (1.0 + 1e-9));
        }
    }
}
