//! The ground: a heightfield along a straight road that runs along the world x axis —
//! gently rolling, with bumps, a cambered road, raised sidewalks behind a curb, and
//! verges beyond — intersected by sphere tracing with a bound on its slope.

use super::geometry::V3;
use super::material::{self, Material};

/// Height of the curb between road and sidewalk (m).
pub(crate) const CURB: f32 = 0.13;
/// Lane width (m).
pub(crate) const LANE: f32 = 3.5;

/// One sinusoid of the heightfield: `amp · sin(kx·x + ky·y + phase)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Wave {
    pub amp: f32,
    pub kx: f32,
    pub ky: f32,
    pub phase: f32,
}

impl Wave {
    fn at(&self, x: f32, y: f32) -> f32 {
        self.amp * fast_sin(self.kx * x + self.ky * y + self.phase)
    }
    fn grad(&self, x: f32, y: f32) -> (f32, f32) {
        let c = self.amp * (self.kx * x + self.ky * y + self.phase).cos();
        (c * self.kx, c * self.ky)
    }
    fn max_slope(&self) -> f32 {
        self.amp.abs() * self.kx.hypot(self.ky)
    }
}

/// sin(x) to about 2e-4: range reduction and a degree-7 Taylor polynomial. The heightfield
/// is evaluated a dozen times per ray, where libm's sine dominated the sweep's cost.
fn fast_sin(x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI, TAU};
    // Casts instead of round(): without SSE4.1 round() is a library call.
    let turns = x * (1.0 / TAU);
    let mut r = x - TAU * (turns + 0.5f32.copysign(turns)) as i32 as f32;
    if r > FRAC_PI_2 {
        r = PI - r;
    } else if r < -FRAC_PI_2 {
        r = -PI - r;
    }
    let r2 = r * r;
    r * (1.0 - r2 / 6.0 * (1.0 - r2 / 20.0 * (1.0 - r2 / 42.0)))
}

/// The road's cross-section and surface.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ground {
    /// Curb line: the road spans |y| ≤ `road_half`.
    pub road_half: f32,
    /// Sidewalk width beyond the curb.
    pub sidewalk: f32,
    /// Driving lanes per direction (markings between them).
    pub lanes: usize,
    /// Rise of the road's center above its edges (camber).
    pub camber: f32,
    /// Long, gentle hills along the road.
    pub hills: Wave,
    /// Road bumps and ruts.
    pub bumps: [Wave; 2],
    /// Undulation of the verges beyond the sidewalks.
    pub verge: Wave,
    /// x of zebra crossings.
    pub crossings: Vec<f32>,
}

#[derive(Clone, Copy, PartialEq)]
enum Zone {
    Road,
    Side,
}

/// A ground hit.
pub(crate) struct GroundHit {
    pub t: f32,
    pub normal: V3,
    pub material: Material,
}

const CONVERGED: f32 = 0.002;
const MAX_STEPS: usize = 64;

impl Ground {
    fn zone(&self, y: f32) -> Zone {
        if y.abs() <= self.road_half {
            Zone::Road
        } else {
            Zone::Side
        }
    }

    /// The smooth part of the height: hills, camber, curb.
    fn smooth(&self, zone: Zone, x: f32, y: f32) -> f32 {
        let hills = self.hills.at(x, 0.0);
        match zone {
            Zone::Road => {
                let r = y / self.road_half;
                hills + self.camber * (1.0 - r * r)
            }
            Zone::Side => hills + CURB,
        }
    }

    /// The rough part of the height: bumps on the road, undulation of the verges.
    fn rough(&self, zone: Zone, x: f32, y: f32) -> f32 {
        match zone {
            Zone::Road => self.bumps[0].at(x, y) + self.bumps[1].at(x, y),
            Zone::Side => {
                let beyond = (y.abs() - self.road_half - self.sidewalk).max(0.0);
                self.verge.at(x, y) * (beyond / 6.0).min(1.0)
            }
        }
    }

    /// A bound on |∇h| in a zone, for safe sphere-tracing steps.
    fn max_slope(&self, zone: Zone) -> f32 {
        let hills = self.hills.max_slope();
        match zone {
            Zone::Road => {
                hills
                    + 2.0 * self.camber / self.road_half
                    + self.bumps.iter().map(Wave::max_slope).sum::<f32>()
            }
            Zone::Side => hills + self.verge.max_slope() + self.verge.amp.abs() / 6.0,
        }
    }

    fn height_in(&self, zone: Zone, x: f32, y: f32) -> f32 {
        self.smooth(zone, x, y) + self.rough(zone, x, y)
    }

    /// Ground height at (x, y).
    pub fn height(&self, x: f32, y: f32) -> f32 {
        self.height_in(self.zone(y), x, y)
    }

    fn normal_at(&self, zone: Zone, x: f32, y: f32) -> V3 {
        let (mut gx, mut gy) = self.hills.grad(x, 0.0);
        if zone == Zone::Road {
            for b in &self.bumps {
                let (bx, by) = b.grad(x, y);
                gx += bx;
                gy += by;
            }
            gy += -2.0 * self.camber * y / (self.road_half * self.road_half);
        }
        V3::new(-gx, -gy, 1.0).normalized()
    }

    fn material_at(&self, zone: Zone, x: f32, y: f32) -> Material {
        if zone == Zone::Side {
            let beyond = y.abs() - self.road_half;
            return if beyond <= self.sidewalk {
                material::CONCRETE
            } else {
                material::GRASS
            };
        }
        const PAINT_HALF: f32 = 0.075;
        let ay = y.abs();
        // Centre line (solid), lane lines (dashed 3 m of every 9 m), edge lines (solid).
        let edge = self.lanes as f32 * LANE;
        let mut painted = ay < PAINT_HALF || (ay - edge).abs() < PAINT_HALF;
        for k in 1..self.lanes {
            if (ay - k as f32 * LANE).abs() < PAINT_HALF && x.rem_euclid(9.0) < 3.0 {
                painted = true;
            }
        }
        // Zebra crossings: 0.5 m stripes across the driving lanes, 3 m deep.
        for &cx in &self.crossings {
            if (x - cx).abs() < 1.5 && ay < edge && y.rem_euclid(1.0) < 0.5 {
                painted = true;
            }
        }
        if painted {
            material::LANE_PAINT
        } else {
            material::ASPHALT
        }
    }

    /// First intersection of the ray `o + t·d` (world frame, unit `d`) with the ground before
    /// `t_max`.
    pub fn intersect(&self, o: V3, d: V3, t_max: f32) -> Option<GroundHit> {
        // Split the ray where it crosses a curb line; the heightfield is smooth in between.
        let mut cuts = [t_max; 2];
        if d.y.abs() > 1e-9 {
            for (i, side) in [self.road_half, -self.road_half].into_iter().enumerate() {
                let t = (side - o.y) / d.y;
                if t > 0.0 && t < t_max {
                    cuts[i] = t;
                }
            }
        }
        cuts.sort_by(f32::total_cmp);
        let mut t0 = 0.0;
        for t1 in [cuts[0], cuts[1], t_max] {
            if t1 <= t0 {
                continue;
            }
            // Probe just past the cut so the segment is classified by its own zone.
            let mid = 0.5 * (t0 + t1);
            let zone = self.zone(o.y + mid * d.y);
            if let Some(hit) = self.trace(zone, o, d, t0, t1) {
                return Some(hit);
            }
            t0 = t1;
        }
        None
    }

    /// The first ground hit in `t0..t1`, where the ray stays in one zone: over-relaxed
    /// sphere tracing (steps of twice the safe length, which the slope bound makes short
    /// near the surface), then secant refinement between the last point above the ground
    /// and the first below.
    fn trace(&self, zone: Zone, o: V3, d: V3, t0: f32, t1: f32) -> Option<GroundHit> {
        let at = |t: f32| (o.x + t * d.x, o.y + t * d.y, o.z + t * d.z);
        let above = |t: f32| {
            let (x, y, z) = at(t);
            z - self.height_in(zone, x, y)
        };
        let hit = |t: f32| {
            let (x, y, _) = at(t);
            GroundHit {
                t,
                normal: self.normal_at(zone, x, y),
                material: self.material_at(zone, x, y),
            }
        };
        let mut f = above(t0);
        if f < -CONVERGED {
            // Entering a zone below its surface means hitting the curb's face.
            let (x, y, _) = at(t0);
            let normal = V3::new(0.0, -y.signum(), 0.0);
            return Some(GroundHit {
                t: t0,
                normal,
                material: self.material_at(zone, x, y),
            });
        }
        let closing = self.max_slope(zone) * (d.x * d.x + d.y * d.y).sqrt() - d.z;
        let mut t = t0;
        for _ in 0..MAX_STEPS {
            if f < CONVERGED {
                return Some(hit(t));
            }
            if closing <= 0.0 {
                return None;
            }
            let next = (t + OVER_RELAX * f / closing).min(t1);
            let f_next = above(next);
            if f_next < 0.0 {
                return Some(hit(secant(&above, (t, f), (next, f_next))));
            }
            if next >= t1 {
                return None;
            }
            (t, f) = (next, f_next);
        }
        None
    }
}

/// Step factor over the safe sphere-tracing step.
const OVER_RELAX: f32 = 2.0;

/// A root of `f` between `a` (above, f > 0) and `b` (below, f < 0) by regula falsi.
fn secant(f: &dyn Fn(f32) -> f32, mut a: (f32, f32), mut b: (f32, f32)) -> f32 {
    for _ in 0..12 {
        let t = a.0 + a.1 * (b.0 - a.0) / (a.1 - b.1);
        let v = f(t);
        if v.abs() < CONVERGED {
            return t;
        }
        if v > 0.0 { a = (t, v) } else { b = (t, v) }
    }
    a.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat() -> Ground {
        let zero = Wave {
            amp: 0.0,
            kx: 0.0,
            ky: 0.0,
            phase: 0.0,
        };
        Ground {
            road_half: 7.0,
            sidewalk: 3.0,
            lanes: 2,
            camber: 0.0,
            hills: zero,
            bumps: [zero; 2],
            verge: zero,
            crossings: vec![],
        }
    }

    #[test]
    fn flat_road_hit_is_exact() {
        let g = flat();
        let o = V3::new(0.0, 0.0, 1.73);
        let d = V3::new(1.0, 0.0, -0.1).normalized();
        let hit = g.intersect(o, d, 120.0).map(|h| h.t);
        let expect = 1.73 / 0.1 * (1.0f32 + 0.01).sqrt();
        assert!(
            hit.is_some_and(|t| (t - expect).abs() < 0.03),
            "{hit:?} vs {expect}"
        );
    }

    #[test]
    fn upward_ray_misses_and_curb_face_is_hit() {
        let g = flat();
        let o = V3::new(0.0, 0.0, 1.73);
        assert!(
            g.intersect(o, V3::new(1.0, 0.0, 0.01).normalized(), 120.0)
                .is_none()
        );
        // A ray skimming 5 cm above the road meets the 13 cm curb face at y = −7.
        let o = V3::new(0.0, 0.0, 0.05);
        let hit = g.intersect(o, V3::new(0.0, -1.0, 0.0), 50.0);
        assert!(hit.as_ref().is_some_and(|h| (h.t - 7.0).abs() < 1e-3));
        assert!(hit.is_some_and(|h| h.normal.y > 0.99));
    }

    #[test]
    fn fast_sine_is_close() {
        for i in -2000..2000 {
            let x = i as f32 * 0.01;
            assert!((fast_sin(x) - x.sin()).abs() < 2.5e-4, "{x}");
        }
    }

    #[test]
    fn heights_by_zone() {
        let mut g = flat();
        g.camber = 0.05;
        assert!((g.height(0.0, 0.0) - 0.05).abs() < 1e-6);
        assert!(g.height(0.0, 6.99).abs() < 1e-3);
        assert!((g.height(0.0, 8.0) - CURB).abs() < 1e-6);
    }
}
