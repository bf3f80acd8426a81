//! Exact overlap of oriented boxes: the bird's-eye-view rectangle intersection by convex
//! polygon clipping, BEV IoU, 3D IoU (BEV intersection × height overlap) and the 2D image
//! box IoU — for LiDAR-frame [`Box3D`]s and camera-frame KITTI [`ObjectLabel`]s alike.
//!
//! The intersection is computed in the frame of one rectangle, where it is axis-aligned,
//! so clipping the other rectangle is four half-plane cuts against constants. A vertex that
//! lies on an edge up to rounding is kept or replaced by a point a rounding error away, so
//! identical boxes give an IoU of 1 up to rounding — unlike the reference evaluation's
//! corner-inclusion test (see `docs/EVAL.md`).

use lidarq_data::{Box3D, ObjectLabel};

/// A rectangle in the ground plane: center, half extents along its own axes and the
/// counter-clockwise rotation of its first axis from the plane's first axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    cx: f64,
    cy: f64,
    half_len: f64,
    half_wid: f64,
    cos: f64,
    sin: f64,
}

impl Rect {
    /// A rectangle of full extents `len` × `wid` centered at (`cx`, `cy`), rotated by
    /// `angle` radians counter-clockwise.
    pub fn new(cx: f64, cy: f64, len: f64, wid: f64, angle: f64) -> Self {
        let (sin, cos) = angle.sin_cos();
        Self {
            cx,
            cy,
            half_len: 0.5 * len.abs(),
            half_wid: 0.5 * wid.abs(),
            cos,
            sin,
        }
    }

    /// Area.
    pub fn area(&self) -> f64 {
        4.0 * self.half_len * self.half_wid
    }

    fn circumradius(&self) -> f64 {
        self.half_len.hypot(self.half_wid)
    }

    /// Corners counter-clockwise, expressed in the frame of `frame` (its center at the
    /// origin, its first axis along x).
    fn corners_in(&self, frame: &Rect) -> [[f64; 2]; 4] {
        let (dx, dy) = (self.cx - frame.cx, self.cy - frame.cy);
        // Rotation of self relative to frame: angle(self) - angle(frame).
        let c = self.cos * frame.cos + self.sin * frame.sin;
        let s = self.sin * frame.cos - self.cos * frame.sin;
        let ox = dx * frame.cos + dy * frame.sin;
        let oy = -dx * frame.sin + dy * frame.cos;
        let local = [
            [self.half_len, self.half_wid],
            [-self.half_len, self.half_wid],
            [-self.half_len, -self.half_wid],
            [self.half_len, -self.half_wid],
        ];
        local.map(|[u, v]| [ox + c * u - s * v, oy + s * u + c * v])
    }
}

/// Area of the intersection of two rectangles.
pub fn intersection_area(a: &Rect, b: &Rect) -> f64 {
    let reach = a.circumradius() + b.circumradius();
    let (dx, dy) = (a.cx - b.cx, a.cy - b.cy);
    if dx * dx + dy * dy >= reach * reach {
        return 0.0;
    }
    let mut poly = [[0.0f64; 2]; 8];
    poly[..4].copy_from_slice(&a.corners_in(b));
    let mut n = 4;
    let mut scratch = [[0.0f64; 2]; 8];
    // Keep the part of `a` with sign * coord[axis] <= bound, for b's four edges.
    for (axis, sign, bound) in [
        (0, 1.0, b.half_len),
        (0, -1.0, b.half_len),
        (1, 1.0, b.half_wid),
        (1, -1.0, b.half_wid),
    ] {
        n = clip(&poly[..n], &mut scratch, axis, sign, bound);
        if n < 3 {
            return 0.0;
        }
        poly[..n].copy_from_slice(&scratch[..n]);
    }
    polygon_area(&poly[..n])
}

/// One Sutherland–Hodgman step against the half-plane `sign * p[axis] <= bound`. A convex
/// polygon gains at most one vertex per cut, so 8 slots hold a rectangle cut four times.
fn clip(poly: &[[f64; 2]], out: &mut [[f64; 2]; 8], axis: usize, sign: f64, bound: f64) -> usize {
    let mut n = 0;
    let inside = |p: &[f64; 2]| bound - sign * p[axis];
    for (i, cur) in poly.iter().enumerate() {
        let next = &poly[(i + 1) % poly.len()];
        let (dc, dn) = (inside(cur), inside(next));
        if dc >= 0.0 {
            out[n] = *cur;
            n += 1;
        }
        if (dc >= 0.0) != (dn >= 0.0) {
            let t = dc / (dc - dn);
            out[n] = [
                cur[0] + t * (next[0] - cur[0]),
                cur[1] + t * (next[1] - cur[1]),
            ];
            n += 1;
        }
    }
    n
}

fn polygon_area(poly: &[[f64; 2]]) -> f64 {
    let mut twice = 0.0;
    for (i, p) in poly.iter().enumerate() {
        let q = &poly[(i + 1) % poly.len()];
        twice += p[0] * q[1] - q[0] * p[1];
    }
    0.5 * twice.abs()
}

/// Anything with an oriented ground-plane footprint and a vertical extent.
pub trait Oriented {
    /// The footprint in the ground plane.
    fn footprint(&self) -> Rect;
    /// The vertical extent (low, high) along the frame's vertical axis.
    fn vertical(&self) -> (f64, f64);
}

impl Oriented for Box3D {
    fn footprint(&self) -> Rect {
        Rect::new(
            self.x as f64,
            self.y as f64,
            self.dx as f64,
            self.dy as f64,
            self.yaw as f64,
        )
    }

    fn vertical(&self) -> (f64, f64) {
        let (z, h) = (self.z as f64, 0.5 * self.dz as f64);
        (z - h, z + h)
    }
}

/// KITTI camera frame: x right, y down, z forward; the ground plane is (x, z). A rotation
/// `ry` about +y (pointing down) maps the object's length axis to (cos ry, -sin ry) in
/// (x, z), i.e. a counter-clockwise angle of `-ry` in that plane.
impl Oriented for ObjectLabel {
    fn footprint(&self) -> Rect {
        let [_, w, l] = self.hwl;
        Rect::new(
            self.location[0] as f64,
            self.location[2] as f64,
            l as f64,
            w as f64,
            -(self.rotation_y as f64),
        )
    }

    /// The label's `location` is the bottom center and y points down, so the box spans
    /// [y - h, y].
    fn vertical(&self) -> (f64, f64) {
        let y = self.location[1] as f64;
        (y - self.hwl[0] as f64, y)
    }
}

/// A box's footprint and vertical extent, computed once for many pairings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prism {
    rect: Rect,
    low: f64,
    high: f64,
}

impl Prism {
    /// The prism of any oriented box.
    pub fn of(b: &impl Oriented) -> Self {
        let (low, high) = b.vertical();
        Self {
            rect: b.footprint(),
            low,
            high,
        }
    }

    fn volume(&self) -> f64 {
        self.rect.area() * (self.high - self.low)
    }

    /// BEV IoU with another prism.
    pub fn bev_iou(&self, other: &Prism) -> f64 {
        let inter = intersection_area(&self.rect, &other.rect);
        ratio(inter, self.rect.area() + other.rect.area() - inter)
    }

    /// 3D IoU with another prism.
    pub fn iou_3d(&self, other: &Prism) -> f64 {
        let overlap = self.high.min(other.high) - self.low.max(other.low);
        if overlap <= 0.0 {
            return 0.0;
        }
        let inter = intersection_area(&self.rect, &other.rect) * overlap;
        ratio(inter, self.volume() + other.volume() - inter)
    }
}

fn ratio(inter: f64, union: f64) -> f64 {
    if inter <= 0.0 || union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Bird's-eye-view IoU of two boxes in the same frame.
pub fn bev_iou<T: Oriented>(a: &T, b: &T) -> f64 {
    Prism::of(a).bev_iou(&Prism::of(b))
}

/// 3D IoU of two boxes in the same frame.
pub fn iou_3d<T: Oriented>(a: &T, b: &T) -> f64 {
    Prism::of(a).iou_3d(&Prism::of(b))
}

/// IoU of two image boxes `[left, top, right, bottom]` (no "+1 pixel" convention, as in
/// the KITTI Python evaluation).
pub fn image_iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let inter = image_intersection(a, b);
    ratio(inter, image_area(a) + image_area(b) - inter)
}

/// Fraction of image box `a` covered by `b` (KITTI's criterion for `DontCare` regions).
pub fn image_coverage(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    ratio(image_intersection(a, b), image_area(a))
}

fn image_area(a: &[f64; 4]) -> f64 {
    (a[2] - a[0]) * (a[3] - a[1])
}

fn image_intersection(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = a[2].min(b[2]) - a[0].max(b[0]);
    let ih = a[3].min(b[3]) - a[1].max(b[1]);
    if iw > 0.0 && ih > 0.0 { iw * ih } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn identical_rotated_rects_overlap_fully() {
        for k in 0..64 {
            let angle = k as f64 * 0.1 - 3.2;
            let r = Rect::new(12.3, -4.56, 3.9, 1.6, angle);
            close(intersection_area(&r, &r), r.area());
        }
    }

    #[test]
    fn shifted_axis_aligned_rects() {
        let a = Rect::new(0.0, 0.0, 4.0, 2.0, 0.0);
        let b = Rect::new(1.0, 0.5, 4.0, 2.0, 0.0);
        close(intersection_area(&a, &b), 3.0 * 1.5);
        // A 180° turn is the same rectangle.
        let c = Rect::new(1.0, 0.5, 4.0, 2.0, PI);
        close(intersection_area(&a, &c), 4.5);
    }

    #[test]
    fn square_and_its_45_degree_turn() {
        // Unit-half-side square vs the same square turned 45°: a regular octagon of area
        // 8 (sqrt 2 - 1) for half-side 1.
        let a = Rect::new(0.0, 0.0, 2.0, 2.0, 0.0);
        let b = Rect::new(0.0, 0.0, 2.0, 2.0, FRAC_PI_4);
        close(intersection_area(&a, &b), 8.0 * (2f64.sqrt() - 1.0));
    }

    #[test]
    fn cross_of_two_bars() {
        let a = Rect::new(0.0, 0.0, 10.0, 1.0, 0.0);
        let b = Rect::new(0.0, 0.0, 10.0, 1.0, FRAC_PI_2);
        close(intersection_area(&a, &b), 1.0);
        close(a.area() + b.area() - 1.0, 19.0);
    }

    #[test]
    fn disjoint_and_touching_rects() {
        let a = Rect::new(0.0, 0.0, 2.0, 2.0, 0.3);
        let far = Rect::new(10.0, 0.0, 2.0, 2.0, 0.0);
        close(intersection_area(&a, &far), 0.0);
        let a = Rect::new(0.0, 0.0, 2.0, 2.0, 0.0);
        let touching = Rect::new(2.0, 0.0, 2.0, 2.0, 0.0);
        close(intersection_area(&a, &touching), 0.0);
    }

    #[test]
    fn contained_rect() {
        let big = Rect::new(0.0, 0.0, 10.0, 10.0, 0.2);
        let small = Rect::new(0.5, -0.5, 1.0, 2.0, 1.1);
        close(intersection_area(&big, &small), 2.0);
        close(intersection_area(&small, &big), 2.0);
    }

    #[test]
    fn corner_overlap_of_turned_square() {
        // Square [0,2]² and the unit-half-diagonal diamond centered at (2, 1): the diamond
        // (half-side 1/sqrt 2 turned 45°) reaches x = 1 .. 3, half of it is inside.
        let a = Rect::new(1.0, 1.0, 2.0, 2.0, 0.0);
        let side = 2f64.sqrt();
        let b = Rect::new(2.0, 1.0, side, side, FRAC_PI_4);
        close(intersection_area(&a, &b), 1.0);
    }

    fn lidar_box(x: f32, dz: f32, z: f32) -> Box3D {
        Box3D {
            x,
            y: 0.0,
            z,
            dx: 4.0,
            dy: 2.0,
            dz,
            yaw: 0.0,
        }
    }

    #[test]
    fn lidar_bev_and_3d_iou() {
        let a = lidar_box(0.0, 2.0, 0.0);
        let b = lidar_box(1.0, 2.0, 0.5);
        // BEV: inter 3×2 = 6, union 8+8-6 = 10.
        close(bev_iou(&a, &b), 0.6);
        // 3D: inter 6 × 1.5 = 9, union 16+16-9 = 23.
        close(iou_3d(&a, &b), 9.0 / 23.0);
        close(iou_3d(&a, &lidar_box(0.0, 2.0, 5.0)), 0.0);
    }

    fn label(x: f32, y: f32, z: f32, ry: f32) -> ObjectLabel {
        ObjectLabel {
            kind: "Car".into(),
            truncated: 0.0,
            occluded: 0,
            alpha: 0.0,
            bbox: [0.0, 0.0, 10.0, 50.0],
            hwl: [1.5, 1.6, 4.0],
            location: [x, y, z],
            rotation_y: ry,
            score: None,
        }
    }

    #[test]
    fn camera_labels_use_x_z_plane_and_bottom_y() {
        let a = label(0.0, 1.7, 10.0, 0.0);
        // Length runs along camera x for ry = 0: a 1 m shift in x keeps 3 of 4 m.
        let b = label(1.0, 1.7, 10.0, 0.0);
        close(bev_iou(&a, &b), 3.0 / 5.0);
        // y is the bottom and points down: 0.5 m lower keeps 1.0 of 1.5 m of height.
        let c = label(0.0, 2.2, 10.0, 0.0);
        close(iou_3d(&a, &c), 1.0 / 2.0);
        // ry = 90°: length along z; a 1 m shift in z keeps 3 of 4 m.
        let d = label(0.0, 1.7, 10.0, std::f32::consts::FRAC_PI_2);
        let e = label(0.0, 1.7, 11.0, std::f32::consts::FRAC_PI_2);
        assert!((bev_iou(&d, &e) - 0.6).abs() < 1e-6);
    }

    #[test]
    fn camera_rotation_sense_matches_kitti() {
        // A 4 × 1.6 box turned by ry = 0.5 about +y (down): its length axis points along
        // (cos 0.5, -sin 0.5) in (x, z). A copy moved 1 m along that axis overlaps 3 m.
        let ry = 0.5f32;
        let a = label(0.0, 1.7, 10.0, ry);
        let b = label(ry.cos(), 1.7, 10.0 - ry.sin(), ry);
        assert!((bev_iou(&a, &b) - 0.6).abs() < 1e-6);
    }

    #[test]
    fn image_boxes() {
        let a = [0.0, 0.0, 10.0, 10.0];
        let b = [5.0, 0.0, 15.0, 10.0];
        close(image_iou(&a, &b), 50.0 / 150.0);
        close(image_coverage(&a, &b), 0.5);
        close(image_iou(&a, &[20.0, 0.0, 30.0, 10.0]), 0.0);
    }
}
