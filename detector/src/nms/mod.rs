//! Greedy rotated BEV non-maximum suppression, as OpenPCDet's `class_agnostic_nms` with
//! `nms_gpu`: best score first (ties keep input order), suppress every later box whose
//! BEV IoU with a kept box exceeds the threshold, stop after `max_out` boxes.

mod iou;

pub use iou::{Footprint, bev_corners, bev_intersection, bev_iou};

use lidarq_data::Box3D;

/// The grid of kept boxes has at most this many cells a side: the huge boxes of an untrained
/// head widen the cells instead of growing the grid.
const MAX_CELLS: usize = 128;

/// Relative slack on the IoU bound, far above the rounding of the clipped area.
const BOUND_MARGIN: f64 = 1.0 + 1e-3;

/// A kept box covering more cells than this is tested against every candidate instead of
/// being listed in each of its cells.
const MAX_LISTED_CELLS: usize = 64;

/// Indices into `boxes` of the kept boxes, best first. `order` lists candidates already
/// sorted best first.
///
/// Only kept boxes whose bounds share a grid cell with a candidate's are tested (bounds
/// that are apart cannot overlap), so the cost grows with the local crowding rather than
/// with candidates × kept boxes.
pub fn nms(boxes: &[Box3D], order: &[usize], thresh: f32, max_out: usize) -> Vec<usize> {
    let thresh = f64::from(thresh);
    let feet: Vec<Footprint> = order.iter().map(|&i| Footprint::of(&boxes[i])).collect();
    let grid = Grid::covering(&feet);
    let mut cells: Vec<Vec<u32>> = vec![Vec::new(); grid.len()];
    let mut everywhere: Vec<u32> = Vec::new();
    let mut kept: Vec<u32> = Vec::new();
    // The candidate that last tested each kept box: a box listed in several cells is tested
    // once.
    let mut tested_by: Vec<usize> = Vec::new();
    for (pos, foot) in feet.iter().enumerate() {
        if kept.len() >= max_out {
            break;
        }
        let span = grid.span(foot);
        let mut overlaps = |k: u32| {
            let k = k as usize;
            if tested_by[k] == pos {
                return false;
            }
            tested_by[k] = pos;
            let other = &feet[kept[k] as usize];
            other.bounds_meet(foot)
                && foot.iou_bound(other) * BOUND_MARGIN > thresh
                && foot.iou(other) > thresh
        };
        let suppressed = match span {
            Some(span) if span.count() <= kept.len() => {
                everywhere.iter().any(|&k| overlaps(k))
                    || span
                        .cells(&grid)
                        .any(|c| cells[c].iter().any(|&k| overlaps(k)))
            }
            _ => (0..kept.len() as u32).any(&mut overlaps),
        };
        if !suppressed {
            let k = kept.len() as u32;
            kept.push(pos as u32);
            tested_by.push(pos);
            match span {
                Some(span) if span.count() <= MAX_LISTED_CELLS => {
                    span.cells(&grid).for_each(|c| cells[c].push(k));
                }
                _ => everywhere.push(k),
            }
        }
    }
    kept.iter().map(|&p| order[p as usize]).collect()
}

/// A uniform grid over the finite bounds of all candidates.
struct Grid {
    lo: [f64; 2],
    cell: f64,
    n: [usize; 2],
}

/// The cells `[x0, x1] × [y0, y1]` a footprint's bounds touch.
#[derive(Clone, Copy)]
struct Span {
    x: (usize, usize),
    y: (usize, usize),
}

impl Span {
    fn count(&self) -> usize {
        (self.x.1 - self.x.0 + 1) * (self.y.1 - self.y.0 + 1)
    }

    fn cells(self, grid: &Grid) -> impl Iterator<Item = usize> + '_ {
        (self.y.0..=self.y.1)
            .flat_map(move |y| (self.x.0..=self.x.1).map(move |x| y * grid.n[0] + x))
    }
}

impl Grid {
    /// Cells about as wide as the median box, so that a box touches a few.
    fn covering(feet: &[Footprint]) -> Self {
        let finite: Vec<(iou::Point, iou::Point)> = feet
            .iter()
            .map(Footprint::bounds)
            .filter(|(lo, hi)| lo.iter().chain(hi).all(|v| v.is_finite()))
            .collect();
        let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
        for (l, h) in &finite {
            for a in 0..2 {
                lo[a] = lo[a].min(l[a]);
                hi[a] = hi[a].max(h[a]);
            }
        }
        let mut sizes: Vec<f64> = finite
            .iter()
            .map(|(l, h)| (h[0] - l[0]).max(h[1] - l[1]))
            .collect();
        let median = if sizes.is_empty() {
            1.0
        } else {
            let mid = sizes.len() / 2;
            *sizes.select_nth_unstable_by(mid, f64::total_cmp).1
        };
        let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(0.0);
        let cell = median.max(extent / MAX_CELLS as f64).max(f64::MIN_POSITIVE);
        let cells = |a: usize| (((hi[a] - lo[a]) / cell) as usize + 1).min(MAX_CELLS);
        let n = if finite.is_empty() {
            [1, 1]
        } else {
            [cells(0), cells(1)]
        };
        Self { lo, cell, n }
    }

    fn len(&self) -> usize {
        self.n[0] * self.n[1]
    }

    /// The cells `foot` touches; `None` for bounds that are not finite.
    fn span(&self, foot: &Footprint) -> Option<Span> {
        let (l, h) = foot.bounds();
        if !l.iter().chain(&h).all(|v| v.is_finite()) {
            return None;
        }
        let index = |v: f64, a: usize| {
            (((v - self.lo[a]) / self.cell).max(0.0) as usize).min(self.n[a] - 1)
        };
        Some(Span {
            x: (index(l[0], 0), index(h[0], 0)),
            y: (index(l[1], 1), index(h[1], 1)),
        })
    }
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

    /// The definition: each candidate against every kept box, with the exact IoU.
    fn brute_force(boxes: &[Box3D], thresh: f32, max_out: usize) -> Vec<usize> {
        let mut keep: Vec<usize> = Vec::new();
        for i in 0..boxes.len() {
            if keep.len() >= max_out {
                break;
            }
            if !keep
                .iter()
                .any(|&j| bev_iou(&boxes[i], &boxes[j]) > f64::from(thresh))
            {
                keep.push(i);
            }
        }
        keep
    }

    proptest::proptest! {
        #[test]
        fn the_grid_keeps_what_testing_every_pair_keeps(
            raw in proptest::collection::vec(
                (-40.0f32..40.0, -40.0f32..40.0, 0.1f32..6.0, 0.1f32..6.0, -4.0f32..4.0),
                1..300,
            ),
            huge in proptest::collection::vec((0usize..300, 20.0f32..500.0), 0..4),
            thresh in proptest::prop_oneof![proptest::strategy::Just(0.01f32), 0.0f32..0.7],
            max_out in 1usize..400,
        ) {
            let mut boxes: Vec<Box3D> = raw
                .iter()
                .map(|&(x, y, dx, dy, yaw)| Box3D { x, y, z: 0.0, dx, dy, dz: 1.0, yaw })
                .collect();
            // A few boxes far larger than the rest (an untrained head's), and a NaN one.
            for &(i, size) in &huge {
                let n = boxes.len();
                boxes[i % n].dx = size;
            }
            if boxes.len() > 5 {
                boxes[5].x = f32::NAN;
            }
            let order: Vec<usize> = (0..boxes.len()).collect();
            proptest::prop_assert_eq!(
                nms(&boxes, &order, thresh, max_out),
                brute_force(&boxes, thresh, max_out)
            );
        }
    }
}
