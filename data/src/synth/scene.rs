//! The world: a straight street along world x, laid out across y in zones (traffic lanes,
//! bike lanes, parking lanes, sidewalk strips, frontage with buildings, walls, trees and
//! parking lots), and what stands and moves in it.
//!
//! Everything in a zone is spawned per 40 m segment from a seed derived from the world
//! seed, the zone and the segment, so any stretch of the street at any time is generated
//! independently and identically. Everything in a zone moves at the zone's speed, so what
//! is spawned apart never collides; zones do not overlap, so neither do their contents.

use std::f32::consts::{FRAC_PI_2, PI};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::geometry::{Primitive, V3, Yaw};
use super::ground::{Ground, LANE, Wave};
use super::material;
use super::objects::{ObjectClass, Part, Shape, gauss};
use super::seed::mix;

const SEGMENT: f32 = 40.0;
const SIDEWALK_FURNITURE: f32 = 1.2;
const BIKE_LANE: f32 = 1.6;
const PARKING_LANE: f32 = 2.5;
/// Depth of the frontage zone beyond the sidewalk.
const FRONTAGE: f32 = 45.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum ZoneKind {
    Traffic,
    Bike,
    Parking,
    /// The strip along the curb: poles, signs, street trees, people waiting.
    Furniture,
    Walk,
    Frontage,
}

/// A strip of the street along x: `y` is its center, `side` +1 left (traffic towards −x),
/// −1 right (traffic towards +x).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Zone {
    kind: ZoneKind,
    y: f32,
    width: f32,
    side: f32,
    /// Heading of what moves in the zone: +1 towards +x, −1 towards −x.
    dir: f32,
    /// Velocity along x of everything spawned in the zone (0 in a still world).
    speed: f32,
}

/// The character of the street: how built-up it is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    City,
    Residential,
    Open,
}

/// How busy the street is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Density {
    traffic_gap: f32,
    parked: f32,
    walkers_gap: f32,
    cyclists_gap: f32,
    waiting: f32,
}

/// A labelled road user at one instant, in the world frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Actor {
    /// Stable across frames of a drive.
    pub key: u64,
    pub shape: Shape,
    pub x: f32,
    pub y: f32,
    /// Ground height under the center (bottom of the box).
    pub z: f32,
    pub yaw: f32,
}

/// Everything the ray caster sees near the ego vehicle at one instant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub actors: Vec<Actor>,
    /// Static clutter in the world frame.
    pub clutter: Vec<Part>,
}

/// A seeded street.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct World {
    seed: u64,
    pub ground: Ground,
    zones: Vec<Zone>,
    style: Style,
    density: Density,
    /// Lateral position of the ego vehicle.
    pub ego_y: f32,
    /// Ego speed along +x (m/s).
    pub ego_speed: f32,
}

impl World {
    /// Samples a street layout from `seed`. `moving` gives traffic its speeds (drives);
    /// otherwise the world is a still snapshot and pedestrians may be crossing the road.
    pub fn new(seed: u64, moving: bool) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0x5eed));
        let lanes = if rng.random_bool(0.55) { 1 } else { 2 };
        let parking = rng.random_bool(0.7);
        let road_half = lanes as f32 * LANE + BIKE_LANE + if parking { PARKING_LANE } else { 0.0 };
        let sidewalk = rng.random_range(3.2..5.0);
        let style = match rng.random_range(0..10) {
            0..4 => Style::City,
            4..8 => Style::Residential,
            _ => Style::Open,
        };
        let busy: f32 = rng.random_range(0.3..1.0);
        let density = Density {
            traffic_gap: 110.0 - 80.0 * busy,
            parked: rng.random_range(0.05..0.45),
            walkers_gap: rng.random_range(50.0..180.0),
            cyclists_gap: rng.random_range(50.0..180.0),
            waiting: rng.random_range(0.01..0.06),
        };
        let ego_speed = if moving {
            rng.random_range(7.0..13.0)
        } else {
            0.0
        };
        let move_at = |v: f32| if moving { v } else { 0.0 };

        let mut zones = Vec::new();
        let ego_lane = rng.random_range(0..lanes);
        for side in [-1.0f32, 1.0] {
            let dir = -side;
            for i in 0..lanes {
                let y = side * (i as f32 + 0.5) * LANE;
                let speed = if side < 0.0 && i == ego_lane {
                    ego_speed
                } else {
                    dir * rng.random_range(6.0..14.0)
                };
                zones.push(Zone {
                    kind: ZoneKind::Traffic,
                    y,
                    width: LANE,
                    side,
                    dir,
                    speed: move_at(speed),
                });
            }
            let mut edge = lanes as f32 * LANE;
            let bike_speed = dir * rng.random_range(3.5..6.5);
            let y = side * (edge + 0.5 * BIKE_LANE);
            zones.push(Zone {
                kind: ZoneKind::Bike,
                y,
                width: BIKE_LANE,
                side,
                dir,
                speed: move_at(bike_speed),
            });
            edge += BIKE_LANE;
            if parking {
                let y = side * (edge + 0.5 * PARKING_LANE);
                zones.push(Zone {
                    kind: ZoneKind::Parking,
                    y,
                    width: PARKING_LANE,
                    side,
                    dir,
                    speed: 0.0,
                });
            }
            edge = road_half;
            let y = side * (edge + 0.5 * SIDEWALK_FURNITURE);
            zones.push(Zone {
                kind: ZoneKind::Furniture,
                y,
                width: SIDEWALK_FURNITURE,
                side,
                dir,
                speed: 0.0,
            });
            edge += SIDEWALK_FURNITURE;
            let walk = (sidewalk - SIDEWALK_FURNITURE) * 0.5;
            for (k, walk_dir) in [1.0f32, -1.0].into_iter().enumerate() {
                let y = side * (edge + (k as f32 + 0.5) * walk);
                let v = walk_dir * rng.random_range(1.0..1.7);
                zones.push(Zone {
                    kind: ZoneKind::Walk,
                    y,
                    width: walk,
                    side,
                    dir: walk_dir,
                    speed: move_at(v),
                });
            }
            let y = side * (road_half + sidewalk + 0.5 * FRONTAGE);
            zones.push(Zone {
                kind: ZoneKind::Frontage,
                y,
                width: FRONTAGE,
                side,
                dir,
                speed: 0.0,
            });
        }

        let mut crossings = Vec::new();
        if !moving && rng.random_bool(0.3) {
            crossings.push(rng.random_range(8.0..40.0));
        }
        let hill_len = rng.random_range(250.0..600.0);
        let ground = Ground {
            road_half,
            sidewalk,
            lanes,
            camber: rng.random_range(0.02..0.08),
            hills: Wave {
                amp: rng.random_range(0.3..1.2),
                kx: std::f32::consts::TAU / hill_len,
                ky: 0.0,
                phase: rng.random_range(0.0..6.3),
            },
            bumps: [
                Wave {
                    amp: rng.random_range(0.005..0.025),
                    kx: rng.random_range(0.5..1.5),
                    ky: rng.random_range(0.3..1.0),
                    phase: rng.random_range(0.0..6.3),
                },
                Wave {
                    amp: rng.random_range(0.005..0.02),
                    kx: rng.random_range(0.1..0.4),
                    ky: 0.0,
                    phase: rng.random_range(0.0..6.3),
                },
            ],
            verge: Wave {
                amp: rng.random_range(0.05..0.4),
                kx: 0.3,
                ky: 0.25,
                phase: rng.random_range(0.0..6.3),
            },
            crossings,
        };
        let ego_y = -(ego_lane as f32 + 0.5) * LANE + rng.random_range(-0.3..0.3);
        World {
            seed,
            ground,
            zones,
            style,
            density,
            ego_y,
            ego_speed,
        }
    }

    /// What lies in `x_lo..x_hi` at time `t` (s). The ego vehicle, at `ego_x`, is kept clear.
    pub fn snapshot(&self, t: f32, ego_x: f32, x_lo: f32, x_hi: f32) -> Snapshot {
        let mut snap = Snapshot {
            actors: Vec::new(),
            clutter: Vec::new(),
        };
        for (zi, zone) in self.zones.iter().enumerate() {
            let shift = zone.speed * t;
            let (lo, hi) = (x_lo - shift, x_hi - shift);
            let first = (lo / SEGMENT).floor() as i64 - 1;
            let last = (hi / SEGMENT).floor() as i64;
            for seg in first..=last {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(mix(mix(self.seed, zi as u64 + 1), seg as u64));
                let start = seg as f32 * SEGMENT;
                let first_new = snap.actors.len();
                let mut spawned = Spawn {
                    snap: &mut snap,
                    zone: *zone,
                    key: mix(zi as u64, seg as u64),
                    slot: 0,
                };
                self.populate(&mut spawned, &mut rng, start);
                for actor in &mut snap.actors[first_new..] {
                    actor.x += shift;
                }
            }
        }
        snap.actors.retain(|a| a.x >= x_lo && a.x < x_hi);
        // Nothing may stand where the ego car is.
        snap.actors
            .retain(|a| (a.x - ego_x).abs() > 6.0 || (a.y - self.ego_y).abs() > 2.5);
        self.add_crossing_pedestrians(&mut snap);
        for actor in &mut snap.actors {
            actor.z = self.ground.height(actor.x, actor.y);
        }
        snap.clutter.retain(|p| {
            let b = p.prim.bounds();
            b.cx + b.radius >= x_lo && b.cx - b.radius < x_hi
        });
        snap
    }

    fn populate(&self, s: &mut Spawn, rng: &mut ChaCha8Rng, start: f32) {
        let zone = s.zone;
        let heading = if zone.dir > 0.0 { 0.0 } else { PI };
        let d = &self.density;
        match zone.kind {
            ZoneKind::Traffic => pack(rng, start, d.traffic_gap, 5.0, |rng, x, room| {
                let class = match rng.random_range(0..100) {
                    0..86 => ObjectClass::Car,
                    86..95 => ObjectClass::Van,
                    _ => ObjectClass::Truck,
                };
                s.road_user(rng, class, x, heading, [0.02, 0.2], room)
            }),
            ZoneKind::Bike => pack(rng, start, d.cyclists_gap, 3.0, |rng, x, room| {
                s.road_user(rng, ObjectClass::Cyclist, x, heading, [0.05, 0.15], room)
            }),
            ZoneKind::Parking => pack(rng, start, 0.8, 0.6, |rng, x, room| {
                if !rng.random_bool(d.parked as f64) {
                    return 5.5;
                }
                let class = if rng.random_bool(0.9) {
                    ObjectClass::Car
                } else {
                    ObjectClass::Van
                };
                // Some cars park facing against the traffic.
                let yaw = heading + if rng.random_bool(0.15) { PI } else { 0.0 };
                s.road_user(rng, class, x, yaw, [0.04, 0.12], room)
            }),
            ZoneKind::Walk => pack(rng, start, d.walkers_gap, 1.0, |rng, x, room| {
                s.road_user(rng, ObjectClass::Pedestrian, x, heading, [0.15, 0.1], room)
            }),
            ZoneKind::Furniture => self.furniture(s, rng, start),
            ZoneKind::Frontage => self.frontage(s, rng, start),
        }
    }

    fn furniture(&self, s: &mut Spawn, rng: &mut ChaCha8Rng, start: f32) {
        let zone = s.zone;
        let curb = zone.y - zone.side * 0.5 * zone.width;
        let trees = match self.style {
            Style::City => 0.25,
            Style::Residential => 0.7,
            Style::Open => 0.3,
        };
        pack(rng, start, 4.0, 1.0, |rng, x, room| {
            let roll: f64 = rng.random();
            let y = zone.y + gauss(rng, 0.0, 0.1);
            if roll < trees * 0.5 {
                street_tree(s, rng, x, y);
                1.5
            } else if roll < trees * 0.5 + 0.1 {
                let h = rng.random_range(6.0..9.0);
                s.clutter(
                    Primitive::Cylinder {
                        cx: x,
                        cy: y,
                        z0: -1.0,
                        z1: h,
                        radius: 0.1,
                    },
                    material::POLE,
                );
                let arm_end = curb - zone.side * 1.8;
                let center = V3::new(x, 0.5 * (y + arm_end), h - 0.1);
                let half = V3::new(0.08, 0.5 * (y - arm_end).abs(), 0.08);
                s.clutter(
                    Primitive::Box {
                        center,
                        half,
                        yaw: Yaw::new(0.0),
                    },
                    material::POLE,
                );
                0.3
            } else if roll < trees * 0.5 + 0.2 {
                let h = rng.random_range(2.2..3.2);
                s.clutter(
                    Primitive::Cylinder {
                        cx: x,
                        cy: y,
                        z0: -1.0,
                        z1: h,
                        radius: 0.04,
                    },
                    material::POLE,
                );
                let plate = Primitive::Box {
                    center: V3::new(x, y, h - 0.3),
                    half: V3::new(0.02, 0.3, 0.3),
                    yaw: Yaw::new(0.0),
                };
                s.clutter(plate, material::SIGN);
                0.35
            } else if rng.random_bool(self.density.waiting as f64) {
                let yaw = rng.random_range(-PI..PI);
                let shape = Shape::sample(ObjectClass::Pedestrian, rng);
                s.actor(shape, x, zone.y, yaw, room)
            } else {
                rng.random_range(2.0..8.0)
            }
        });
    }

    fn frontage(&self, s: &mut Spawn, rng: &mut ChaCha8Rng, start: f32) {
        let zone = s.zone;
        let front = zone.y - zone.side * 0.5 * zone.width;
        let out = |d: f32| front + zone.side * d;
        let roll = rng.random_range(0..100);
        let (building, lot, wall) = match self.style {
            Style::City => (70, 85, 92),
            Style::Residential => (35, 50, 75),
            Style::Open => (5, 15, 35),
        };
        if roll < building {
            let setback = match self.style {
                Style::City => rng.random_range(0.0..2.0),
                _ => rng.random_range(3.0..10.0),
            };
            pack(rng, start, 4.0, 0.5, |rng, x, room| {
                if room < 8.0 {
                    return room;
                }
                let len = rng.random_range(8.0..(SEGMENT * 0.6).min(room).max(8.01));
                let depth = rng.random_range(8.0..20.0);
                let h = rng.random_range(4.0..22.0);
                let center = V3::new(x + 0.5 * len, out(setback + 0.5 * depth), 0.5 * h - 1.0);
                let half = V3::new(0.5 * len, 0.5 * depth, 0.5 * h + 1.0);
                s.clutter(
                    Primitive::Box {
                        center,
                        half,
                        yaw: Yaw::new(0.0),
                    },
                    material::WALL,
                );
                if setback > 3.0 && rng.random_bool(0.5) {
                    let y = out(rng.random_range(0.8..setback - 1.0));
                    bush(s, rng, x + 0.5 * len, y);
                }
                len
            });
        } else if roll < lot {
            // A parking lot: a row of cars parked nose-in, perpendicular to the street.
            let row = out(3.0);
            let fill = self.density.parked.max(0.2) as f64;
            pack(rng, start, 0.3, 0.3, |rng, x, room| {
                if !rng.random_bool(fill) {
                    return 2.6;
                }
                let shape = Shape::sample(ObjectClass::Car, rng);
                let yaw = zone.side * FRAC_PI_2
                    + if rng.random_bool(0.5) { PI } else { 0.0 }
                    + gauss(rng, 0.0, 0.05);
                s.actor(shape, x, row + gauss(rng, 0.0, 0.15), yaw, room)
                    .max(2.6)
            });
            let center = V3::new(
                start + 0.5 * SEGMENT,
                out(rng.random_range(12.0..20.0) + 5.0),
                3.0,
            );
            s.clutter(
                Primitive::Box {
                    center,
                    half: V3::new(0.5 * SEGMENT - 2.0, 5.0, 5.0),
                    yaw: Yaw::new(0.0),
                },
                material::WALL,
            );
        } else if roll < wall {
            let h = rng.random_range(0.8..2.5);
            let y = out(rng.random_range(0.2..1.5));
            let center = V3::new(start + 0.5 * SEGMENT, y, 0.5 * h - 0.5);
            let half = V3::new(
                0.5 * SEGMENT - rng.random_range(0.0..4.0),
                0.15,
                0.5 * h + 0.5,
            );
            s.clutter(
                Primitive::Box {
                    center,
                    half,
                    yaw: Yaw::new(0.0),
                },
                material::WALL,
            );
            self.greenery(s, rng, start, out(3.0), 6.0);
        } else {
            self.greenery(s, rng, start, out(0.5), 15.0);
        }
    }

    /// Trees and bushes scattered over a band `depth` wide starting at `y0`.
    fn greenery(&self, s: &mut Spawn, rng: &mut ChaCha8Rng, start: f32, y0: f32, depth: f32) {
        let side = s.zone.side;
        pack(rng, start, 6.0, 1.5, |rng, x, _| {
            let y = y0 + side * rng.random_range(1.0..depth);
            if rng.random_bool(0.5) {
                street_tree(s, rng, x, y);
            } else {
                bush(s, rng, x, y);
            }
            2.0
        });
    }

    /// Pedestrians on a zebra crossing, in front of and between the cars.
    fn add_crossing_pedestrians(&self, snap: &mut Snapshot) {
        let Some(&cx) = self.ground.crossings.first() else {
            return;
        };
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, 0xc055));
        let edge = self.ground.lanes as f32 * LANE;
        for slot in 0..rng.random_range(1..5) {
            let shape = Shape::sample(ObjectClass::Pedestrian, &mut rng);
            let x = cx + rng.random_range(-1.0..1.0);
            let y = rng.random_range(-edge..edge);
            let yaw = if rng.random_bool(0.5) {
                FRAC_PI_2
            } else {
                -FRAC_PI_2
            } + gauss(&mut rng, 0.0, 0.2);
            let candidate = Actor {
                key: mix(0xc055, slot),
                shape,
                x,
                y,
                z: 0.0,
                yaw,
            };
            if !snap
                .actors
                .iter()
                .any(|a| footprints_overlap(a, &candidate))
            {
                snap.actors.push(candidate);
            }
        }
    }
}

/// Adds what a zone segment spawns to a snapshot, keyed for tracking.
struct Spawn<'a> {
    snap: &'a mut Snapshot,
    zone: Zone,
    key: u64,
    slot: usize,
}

impl Spawn<'_> {
    /// Places an actor whose footprint starts at `x` (around `y`) if it fits in `room`
    /// along x and in its zone across, and returns its extent along x so packing can
    /// continue behind it.
    fn actor(&mut self, shape: Shape, x: f32, y: f32, yaw: f32, room: f32) -> f32 {
        let [l, w, _] = shape.size;
        let (ex, ey) = extents(l, w, yaw);
        let slack = 0.5 * self.zone.width - ey;
        self.slot += 1;
        if 2.0 * ex > room || slack < 0.0 {
            return (2.0 * ex).min(room);
        }
        let y = y.clamp(self.zone.y - slack, self.zone.y + slack);
        self.snap.actors.push(Actor {
            key: mix(self.key, self.slot as u64),
            shape,
            x: x + ex,
            y,
            z: 0.0,
            yaw,
        });
        2.0 * ex
    }

    /// A road user of `class` following the zone: heading `yaw` and the zone's center line,
    /// each with a normal jitter (`jitter` = [yaw σ, lateral σ]).
    fn road_user(
        &mut self,
        rng: &mut ChaCha8Rng,
        class: ObjectClass,
        x: f32,
        yaw: f32,
        jitter: [f32; 2],
        room: f32,
    ) -> f32 {
        let shape = Shape::sample(class, rng);
        let yaw = yaw + gauss(rng, 0.0, jitter[0]);
        let y = self.zone.y + gauss(rng, 0.0, jitter[1]);
        self.actor(shape, x, y, yaw, room)
    }

    fn clutter(&mut self, prim: Primitive, material: material::Material) {
        self.snap.clutter.push(Part { prim, material });
    }
}

/// Half extents along x and y of an l × w footprint turned by `yaw`.
fn extents(l: f32, w: f32, yaw: f32) -> (f32, f32) {
    let (s, c) = yaw.sin_cos();
    (
        0.5 * (l * c.abs() + w * s.abs()),
        0.5 * (l * s.abs() + w * c.abs()),
    )
}

/// Fills `[start, start + SEGMENT)` along x: gaps of at least `min_gap` plus an
/// exponential part (mean `gap` in all), then `place(rng, x, room)` puts something whose
/// footprint starts at x and ends within `room`, and returns its length. Half a minimum gap
/// is kept free at both ends so neighbouring segments never touch.
fn pack(
    rng: &mut ChaCha8Rng,
    start: f32,
    gap: f32,
    min_gap: f32,
    mut place: impl FnMut(&mut ChaCha8Rng, f32, f32) -> f32,
) {
    let end = start + SEGMENT - 0.5 * min_gap;
    let mut x = start - 0.5 * min_gap;
    loop {
        let u: f32 = rng.random_range(1e-6..1.0);
        x += min_gap + (gap - min_gap).max(0.0) * -u.ln();
        let room = end - x;
        if room <= 0.0 {
            return;
        }
        x += place(rng, x, room).max(0.01);
    }
}

fn street_tree(s: &mut Spawn, rng: &mut ChaCha8Rng, x: f32, y: f32) {
    let trunk_h = rng.random_range(2.8..4.5);
    let r = rng.random_range(0.1..0.22);
    s.clutter(
        Primitive::Cylinder {
            cx: x,
            cy: y,
            z0: -1.0,
            z1: trunk_h + 0.5,
            radius: r,
        },
        material::BARK,
    );
    let rh = rng.random_range(1.2..2.6);
    let rv = rng.random_range(1.2..2.4);
    let crown = V3::new(x, y, trunk_h + rv * 0.8);
    s.clutter(
        Primitive::Ellipsoid {
            center: crown,
            radii: V3::new(rh, rh, rv),
            yaw: Yaw::new(0.0),
        },
        material::FOLIAGE,
    );
}

fn bush(s: &mut Spawn, rng: &mut ChaCha8Rng, x: f32, y: f32) {
    let r = rng.random_range(0.5..1.4);
    let h = rng.random_range(0.4..1.2);
    let center = V3::new(x, y, 0.3 * h);
    s.clutter(
        Primitive::Ellipsoid {
            center,
            radii: V3::new(r * 1.3, r, h),
            yaw: Yaw::new(rng.random_range(0.0..PI)),
        },
        material::FOLIAGE,
    );
}

/// Whether two actors' footprints (oriented rectangles) intersect, by separating axes.
pub(crate) fn footprints_overlap(a: &Actor, b: &Actor) -> bool {
    let corners = |t: &Actor| {
        let (s, c) = t.yaw.sin_cos();
        let (hl, hw) = (0.5 * t.shape.size[0], 0.5 * t.shape.size[1]);
        [(hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)]
            .map(|(u, v)| (t.x + c * u - s * v, t.y + s * u + c * v))
    };
    let (ca, cb) = (corners(a), corners(b));
    for yaw in [a.yaw, b.yaw] {
        let (s, c) = yaw.sin_cos();
        for axis in [(c, s), (-s, c)] {
            let proj = |pts: &[(f32, f32); 4]| {
                pts.iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
                        let d = p.0 * axis.0 + p.1 * axis.1;
                        (lo.min(d), hi.max(d))
                    })
            };
            let (pa, pb) = (proj(&ca), proj(&cb));
            if pa.1 < pb.0 || pb.1 < pa.0 {
                return false;
            }
        }
    }
    true
}
