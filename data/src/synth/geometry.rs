//! Analytic ray–primitive intersection. Rays start at the sensor (the origin of the frame
//! the primitives are expressed in), so a ray is just a unit direction `d` and a hit is the
//! range `t` along it.

/// A 3-vector of f32 (the few operations the ray caster needs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct V3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

impl V3 {
    pub const fn new(x: f32, y: f32, z: f32) -> Self {
        Self { x, y, z }
    }
    pub fn dot(self, o: V3) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn scale(self, s: f32) -> V3 {
        V3::new(self.x * s, self.y * s, self.z * s)
    }
    pub fn sub(self, o: V3) -> V3 {
        V3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
    pub fn normalized(self) -> V3 {
        let n = self.dot(self).sqrt();
        if n > 0.0 { self.scale(1.0 / n) } else { self }
    }
}

/// A rotation about +z, kept as its cosine and sine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Yaw {
    pub cos: f32,
    pub sin: f32,
}

impl Yaw {
    pub fn new(angle: f32) -> Self {
        Self {
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }
    /// Frame → local (rotate by −yaw).
    fn to_local(self, v: V3) -> V3 {
        V3::new(
            self.cos * v.x + self.sin * v.y,
            -self.sin * v.x + self.cos * v.y,
            v.z,
        )
    }
    /// Local → frame (rotate by +yaw).
    pub fn to_frame(self, v: V3) -> V3 {
        V3::new(
            self.cos * v.x - self.sin * v.y,
            self.sin * v.x + self.cos * v.y,
            v.z,
        )
    }
}

/// A solid the ray caster intersects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Primitive {
    /// A box rotated about +z: center, half extents along its own axes.
    Box { center: V3, half: V3, yaw: Yaw },
    /// A vertical cylinder from `z0` to `z1`.
    Cylinder {
        cx: f32,
        cy: f32,
        z0: f32,
        z1: f32,
        radius: f32,
    },
    /// An ellipsoid rotated about +z: center and semi-axes along its own axes.
    Ellipsoid { center: V3, radii: V3, yaw: Yaw },
}

/// Extent of a primitive seen from above: a circle, and its height span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub cx: f32,
    pub cy: f32,
    pub radius: f32,
    pub z0: f32,
    pub z1: f32,
}

/// Intersections closer than this are the ray leaving a surface it starts on.
const T_EPS: f32 = 1e-4;

impl Primitive {
    /// Range of the first intersection along the unit ray `d` from the origin, if any.
    pub fn hit(&self, d: V3) -> Option<f32> {
        match *self {
            Primitive::Box { center, half, yaw } => {
                let o = yaw.to_local(center.scale(-1.0));
                let dl = yaw.to_local(d);
                slab(o, dl, half)
            }
            Primitive::Cylinder {
                cx,
                cy,
                z0,
                z1,
                radius,
            } => cylinder(d, cx, cy, z0, z1, radius),
            Primitive::Ellipsoid { center, radii, yaw } => {
                let o = yaw.to_local(center.scale(-1.0));
                let dl = yaw.to_local(d);
                let os = V3::new(o.x / radii.x, o.y / radii.y, o.z / radii.z);
                let ds = V3::new(dl.x / radii.x, dl.y / radii.y, dl.z / radii.z);
                let a = ds.dot(ds);
                let b = os.dot(ds);
                let c = os.dot(os) - 1.0;
                let disc = b * b - a * c;
                if disc < 0.0 {
                    return None;
                }
                let sq = disc.sqrt();
                let t0 = (-b - sq) / a;
                let t1 = (-b + sq) / a;
                if t0 > T_EPS {
                    Some(t0)
                } else if t1 > T_EPS {
                    Some(t1)
                } else {
                    None
                }
            }
        }
    }

    /// Outward unit normal at a surface point `p`.
    pub fn normal(&self, p: V3) -> V3 {
        match *self {
            Primitive::Box { center, half, yaw } => {
                let l = yaw.to_local(p.sub(center));
                let rx = (l.x / half.x).abs();
                let ry = (l.y / half.y).abs();
                let rz = (l.z / half.z).abs();
                let n = if rx >= ry && rx >= rz {
                    V3::new(l.x.signum(), 0.0, 0.0)
                } else if ry >= rz {
                    V3::new(0.0, l.y.signum(), 0.0)
                } else {
                    V3::new(0.0, 0.0, l.z.signum())
                };
                yaw.to_frame(n)
            }
            Primitive::Cylinder {
                cx,
                cy,
                z0,
                z1,
                radius,
            } => {
                let r = ((p.x - cx).powi(2) + (p.y - cy).powi(2)).sqrt();
                if r < radius * 0.98 {
                    V3::new(
                        0.0,
                        0.0,
                        if (p.z - z1).abs() < (p.z - z0).abs() {
                            1.0
                        } else {
                            -1.0
                        },
                    )
                } else {
                    V3::new(p.x - cx, p.y - cy, 0.0).normalized()
                }
            }
            Primitive::Ellipsoid { center, radii, yaw } => {
                let l = yaw.to_local(p.sub(center));
                let n = V3::new(
                    l.x / (radii.x * radii.x),
                    l.y / (radii.y * radii.y),
                    l.z / (radii.z * radii.z),
                );
                yaw.to_frame(n).normalized()
            }
        }
    }

    /// Footprint circle and height span.
    pub fn bounds(&self) -> Bounds {
        match *self {
            Primitive::Box { center, half, .. } => Bounds {
                cx: center.x,
                cy: center.y,
                radius: half.x.hypot(half.y),
                z0: center.z - half.z,
                z1: center.z + half.z,
            },
            Primitive::Cylinder {
                cx,
                cy,
                z0,
                z1,
                radius,
            } => Bounds {
                cx,
                cy,
                radius,
                z0,
                z1,
            },
            Primitive::Ellipsoid { center, radii, .. } => Bounds {
                cx: center.x,
                cy: center.y,
                radius: radii.x.max(radii.y),
                z0: center.z - radii.z,
                z1: center.z + radii.z,
            },
        }
    }

    /// The same primitive moved by a rigid motion about +z: rotate by `yaw`, then translate.
    pub fn transformed(&self, yaw: Yaw, angle: f32, t: V3) -> Primitive {
        let mv = |c: V3| {
            let r = yaw.to_frame(c);
            V3::new(r.x + t.x, r.y + t.y, r.z + t.z)
        };
        let turn = |y: Yaw| Yaw::new(y.sin.atan2(y.cos) + angle);
        match *self {
            Primitive::Box {
                center,
                half,
                yaw: y,
            } => Primitive::Box {
                center: mv(center),
                half,
                yaw: turn(y),
            },
            Primitive::Cylinder {
                cx,
                cy,
                z0,
                z1,
                radius,
            } => {
                let c = mv(V3::new(cx, cy, 0.0));
                Primitive::Cylinder {
                    cx: c.x,
                    cy: c.y,
                    z0: z0 + t.z,
                    z1: z1 + t.z,
                    radius,
                }
            }
            Primitive::Ellipsoid {
                center,
                radii,
                yaw: y,
            } => Primitive::Ellipsoid {
                center: mv(center),
                radii,
                yaw: turn(y),
            },
        }
    }
}

/// Ray (origin `o`, direction `d`) against the axis-aligned box [−half, half].
fn slab(o: V3, d: V3, half: V3) -> Option<f32> {
    let mut t_near = f32::NEG_INFINITY;
    let mut t_far = f32::INFINITY;
    for (oi, di, hi) in [(o.x, d.x, half.x), (o.y, d.y, half.y), (o.z, d.z, half.z)] {
        if di.abs() < 1e-12 {
            if oi.abs() > hi {
                return None;
            }
            continue;
        }
        let inv = 1.0 / di;
        let a = (-hi - oi) * inv;
        let b = (hi - oi) * inv;
        t_near = t_near.max(a.min(b));
        t_far = t_far.min(a.max(b));
    }
    if t_near > t_far || t_far < T_EPS {
        None
    } else if t_near > T_EPS {
        Some(t_near)
    } else {
        Some(t_far)
    }
}

fn cylinder(d: V3, cx: f32, cy: f32, z0: f32, z1: f32, radius: f32) -> Option<f32> {
    let mut best = f32::INFINITY;
    // Side wall: |(t·d.xy) − c|² = r².
    let a = d.x * d.x + d.y * d.y;
    if a > 1e-12 {
        let b = -(d.x * cx + d.y * cy);
        let c = cx * cx + cy * cy - radius * radius;
        let disc = b * b - a * c;
        if disc >= 0.0 {
            let sq = disc.sqrt();
            for t in [(-b - sq) / a, (-b + sq) / a] {
                let z = t * d.z;
                if t > T_EPS && z >= z0 && z <= z1 {
                    best = best.min(t);
                    break;
                }
            }
        }
    }
    // Caps.
    if d.z.abs() > 1e-12 {
        for zc in [z0, z1] {
            let t = zc / d.z;
            if t > T_EPS
                && t < best
                && (t * d.x - cx).powi(2) + (t * d.y - cy).powi(2) <= radius * radius
            {
                best = t;
            }
        }
    }
    best.is_finite().then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f32>, b: f32) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-4)
    }

    #[test]
    fn box_front_face() {
        let b = Primitive::Box {
            center: V3::new(10.0, 0.0, 0.0),
            half: V3::new(2.0, 1.0, 1.0),
            yaw: Yaw::new(0.0),
        };
        assert!(close(b.hit(V3::new(1.0, 0.0, 0.0)), 8.0));
        assert!(b.hit(V3::new(-1.0, 0.0, 0.0)).is_none());
        assert!(b.hit(V3::new(0.0, 1.0, 0.0)).is_none());
        let n = b.normal(V3::new(8.0, 0.2, 0.1));
        assert!((n.x + 1.0).abs() < 1e-6);
    }

    #[test]
    fn rotated_box_corner_on() {
        // A unit-half square turned 45°: its nearest corner is at 10 − √2.
        let b = Primitive::Box {
            center: V3::new(10.0, 0.0, 0.0),
            half: V3::new(1.0, 1.0, 1.0),
            yaw: Yaw::new(std::f32::consts::FRAC_PI_4),
        };
        assert!(close(b.hit(V3::new(1.0, 0.0, 0.0)), 10.0 - 2f32.sqrt()));
    }

    #[test]
    fn cylinder_side_and_cap() {
        let c = Primitive::Cylinder {
            cx: 5.0,
            cy: 0.0,
            z0: -2.0,
            z1: -1.0,
            radius: 0.5,
        };
        // Horizontal ray misses: the cylinder lies below.
        assert!(c.hit(V3::new(1.0, 0.0, 0.0)).is_none());
        // Ray to (4.5, 0, −1.5) hits the side wall there.
        let d = V3::new(4.5, 0.0, -1.5).normalized();
        assert!(close(c.hit(d), (4.5f32 * 4.5 + 1.5 * 1.5).sqrt()));
        // Ray to the top cap's center (5, 0, −1).
        let d = V3::new(5.0, 0.0, -1.0).normalized();
        assert!(close(c.hit(d), 26f32.sqrt()));
    }

    #[test]
    fn sphere_hit_and_normal() {
        let s = Primitive::Ellipsoid {
            center: V3::new(0.0, 6.0, 0.0),
            radii: V3::new(1.0, 1.0, 1.0),
            yaw: Yaw::new(0.3),
        };
        let t = s.hit(V3::new(0.0, 1.0, 0.0));
        assert!(close(t, 5.0));
        let n = s.normal(V3::new(0.0, 5.0, 0.0));
        assert!((n.y + 1.0).abs() < 1e-5);
    }

    #[test]
    fn transform_moves_and_turns() {
        let b = Primitive::Box {
            center: V3::new(1.0, 0.0, 0.0),
            half: V3::new(0.5, 0.5, 0.5),
            yaw: Yaw::new(0.0),
        };
        let m = b.transformed(
            Yaw::new(std::f32::consts::FRAC_PI_2),
            std::f32::consts::FRAC_PI_2,
            V3::new(0.0, 0.0, 1.0),
        );
        let bd = m.bounds();
        assert!(bd.cx.abs() < 1e-6 && (bd.cy - 1.0).abs() < 1e-6 && (bd.z0 - 0.5).abs() < 1e-6);
    }
}
