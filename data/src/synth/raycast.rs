//! One LiDAR sweep by ray casting: every beam of every azimuth column against the scene's
//! primitives (culled by azimuth sector and elevation) and the ground heightfield, with the
//! sensor's noise, dropout and intensity model. Columns are cast in parallel blocks whose
//! results are concatenated in column order, and every ray draws its noise from its own
//! counter-based generator, so the sweep does not depend on the thread count.

use std::f32::consts::{PI, TAU};

use rayon::prelude::*;

use super::geometry::{Primitive, V3, Yaw};
use super::ground::Ground;
use super::material::Material;
use super::scene::Snapshot;
use super::seed::RayRng;
use super::sensor::{LidarModel, detection_probability, intensity};
use crate::PointCloud;

/// Where the sensor is in the world and which way it looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pose {
    pub position: V3,
    pub yaw: f32,
}

/// What the sweep saw of one actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ActorHits {
    /// Rays that pass through the actor within range, whatever lies in front.
    pub rays: u32,
    /// Rays whose first hit is the actor (before dropout).
    pub visible: u32,
    /// Returned points on the actor that lie inside its box.
    pub points: u32,
}

/// A sweep: the cloud in the sensor frame and, per actor of the snapshot, its hits.
pub(crate) struct Sweep {
    pub cloud: PointCloud,
    pub hits: Vec<ActorHits>,
}

const SECTORS: usize = 720;
const BLOCK_COLUMNS: usize = 16;
const NO_OWNER: u32 = u32::MAX;

/// A culling unit: one actor (all its parts) or one piece of clutter.
struct Entity {
    owner: u32,
    parts: std::ops::Range<usize>,
    cx: f32,
    cy: f32,
    radius: f32,
    /// Elevation span as tangents.
    tan_lo: f32,
    tan_hi: f32,
}

/// An actor's box in the sensor frame, for the points-in-box count.
struct LocalBox {
    center: V3,
    half: V3,
    yaw: Yaw,
}

impl LocalBox {
    fn contains(&self, p: V3) -> bool {
        let d = p.sub(self.center);
        let lx = self.yaw.cos * d.x + self.yaw.sin * d.y;
        let ly = -self.yaw.sin * d.x + self.yaw.cos * d.y;
        lx.abs() <= self.half.x && ly.abs() <= self.half.y && d.z.abs() <= self.half.z
    }
}

/// The snapshot moved into the sensor frame and sorted into azimuth sectors.
struct Scene {
    parts: Vec<(Primitive, Material)>,
    entities: Vec<Entity>,
    sectors: Vec<Vec<u32>>,
    boxes: Vec<LocalBox>,
}

impl Scene {
    fn new(snap: &Snapshot, pose: Pose, max_range: f32) -> Scene {
        let back = Yaw::new(-pose.yaw);
        let to_sensor = |p: V3| back.to_frame(p.sub(pose.position));
        let mut scene = Scene {
            parts: Vec::new(),
            entities: Vec::new(),
            sectors: vec![Vec::new(); SECTORS],
            boxes: Vec::new(),
        };
        for (i, actor) in snap.actors.iter().enumerate() {
            let origin = to_sensor(V3::new(actor.x, actor.y, actor.z));
            let angle = actor.yaw - pose.yaw;
            let turn = Yaw::new(angle);
            let start = scene.parts.len();
            for part in &actor.shape.parts {
                scene
                    .parts
                    .push((part.prim.transformed(turn, angle, origin), part.material));
            }
            let [l, w, h] = actor.shape.size;
            let center = V3::new(origin.x, origin.y, origin.z + 0.5 * h);
            scene.boxes.push(LocalBox {
                center,
                half: V3::new(0.5 * l, 0.5 * w, 0.5 * h),
                yaw: turn,
            });
            let radius = 0.5 * l.hypot(w);
            scene.add_entity(
                i as u32,
                start..scene.parts.len(),
                origin.x,
                origin.y,
                radius,
                origin.z,
                origin.z + h,
                max_range,
            );
        }
        let shift = back.to_frame(pose.position).scale(-1.0);
        for part in &snap.clutter {
            let start = scene.parts.len();
            let prim = part.prim.transformed(back, -pose.yaw, shift);
            scene.parts.push((prim, part.material));
            let b = prim.bounds();
            scene.add_entity(
                NO_OWNER,
                start..start + 1,
                b.cx,
                b.cy,
                b.radius,
                b.z0,
                b.z1,
                max_range,
            );
        }
        scene
    }

    #[allow(clippy::too_many_arguments)]
    fn add_entity(
        &mut self,
        owner: u32,
        parts: std::ops::Range<usize>,
        cx: f32,
        cy: f32,
        radius: f32,
        z0: f32,
        z1: f32,
        max_range: f32,
    ) {
        let dist = cx.hypot(cy);
        if dist - radius > max_range {
            return;
        }
        let near = dist - radius;
        let far = dist + radius;
        let (tan_lo, tan_hi) = if near <= 0.05 {
            (f32::NEG_INFINITY, f32::INFINITY)
        } else {
            (
                if z0 < 0.0 { z0 / near } else { z0 / far },
                if z1 > 0.0 { z1 / near } else { z1 / far },
            )
        };
        let id = self.entities.len() as u32;
        self.entities.push(Entity {
            owner,
            parts,
            cx,
            cy,
            radius,
            tan_lo,
            tan_hi,
        });
        let sector_width = TAU / SECTORS as f32;
        if near <= 0.05 {
            self.sectors.iter_mut().for_each(|s| s.push(id));
            return;
        }
        let half = (radius / dist).min(1.0).asin();
        let az = cy.atan2(cx);
        let first = ((az - half + PI) / sector_width).floor() as i64;
        let last = ((az + half + PI) / sector_width).floor() as i64;
        for s in first..=last {
            self.sectors[s.rem_euclid(SECTORS as i64) as usize].push(id);
        }
    }
}

/// Results of one block of columns.
struct Block {
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    intensity: Vec<f32>,
    hits: Vec<ActorHits>,
}

/// Casts one sweep of `lidar` from `pose` into the snapshot and ground.
pub(crate) fn sweep(
    lidar: &LidarModel,
    ground: &Ground,
    snap: &Snapshot,
    pose: Pose,
    frame_seed: u64,
) -> Sweep {
    let scene = Scene::new(snap, pose, lidar.max_range);
    let turn = Yaw::new(pose.yaw);
    let beams: Vec<(f32, f32, f32)> = lidar
        .elevations
        .iter()
        .map(|&e| (e.cos(), e.sin(), e.tan()))
        .collect();
    let n_actors = snap.actors.len();
    let columns: Vec<usize> = (0..lidar.columns).collect();
    let blocks: Vec<Block> = columns
        .par_chunks(BLOCK_COLUMNS)
        .map(|cols| {
            let mut block = Block {
                x: Vec::with_capacity(cols.len() * beams.len()),
                y: Vec::with_capacity(cols.len() * beams.len()),
                z: Vec::with_capacity(cols.len() * beams.len()),
                intensity: Vec::with_capacity(cols.len() * beams.len()),
                hits: vec![ActorHits::default(); n_actors],
            };
            for &c in cols {
                let az = lidar.azimuth(c);
                let (sa, ca) = az.sin_cos();
                let sector = (((az + PI) / TAU * SECTORS as f32) as usize).min(SECTORS - 1);
                let candidates = &scene.sectors[sector];
                for (b, &(ce, se, te)) in beams.iter().enumerate() {
                    let d = V3::new(ce * ca, ce * sa, se);
                    let ray = (c * beams.len() + b) as u64;
                    cast_ray(
                        lidar,
                        ground,
                        &scene,
                        candidates,
                        d,
                        te,
                        pose,
                        turn,
                        RayRng::new(frame_seed, ray),
                        &mut block,
                    );
                }
            }
            block
        })
        .collect();
    let total: usize = blocks.iter().map(|b| b.x.len()).sum();
    let mut cloud = PointCloud::with_capacity(total);
    let mut hits = vec![ActorHits::default(); n_actors];
    for block in blocks {
        cloud.x.extend_from_slice(&block.x);
        cloud.y.extend_from_slice(&block.y);
        cloud.z.extend_from_slice(&block.z);
        cloud.intensity.extend_from_slice(&block.intensity);
        for (acc, h) in hits.iter_mut().zip(&block.hits) {
            acc.rays += h.rays;
            acc.visible += h.visible;
            acc.points += h.points;
        }
    }
    Sweep { cloud, hits }
}

#[allow(clippy::too_many_arguments)]
fn cast_ray(
    lidar: &LidarModel,
    ground: &Ground,
    scene: &Scene,
    candidates: &[u32],
    d: V3,
    tan_el: f32,
    pose: Pose,
    turn: Yaw,
    mut rng: RayRng,
    out: &mut Block,
) {
    let mut best_t = lidar.max_range;
    let mut best: Option<(usize, u32)> = None;
    let dxy = (d.x * d.x + d.y * d.y).sqrt();
    for &e in candidates {
        let ent = &scene.entities[e as usize];
        if tan_el < ent.tan_lo || tan_el > ent.tan_hi {
            continue;
        }
        // Distance of the entity's center from the ray's vertical plane.
        let across = (ent.cx * d.y - ent.cy * d.x).abs() / dxy;
        if across > ent.radius || ent.cx * d.x + ent.cy * d.y < -ent.radius {
            continue;
        }
        let mut entity_t = f32::INFINITY;
        let mut entity_part = 0;
        for p in ent.parts.clone() {
            if let Some(t) = scene.parts[p].0.hit(d)
                && t < entity_t
            {
                entity_t = t;
                entity_part = p;
            }
        }
        if entity_t < lidar.max_range {
            if ent.owner != NO_OWNER {
                out.hits[ent.owner as usize].rays += 1;
            }
            if entity_t < best_t {
                best_t = entity_t;
                best = Some((entity_part, ent.owner));
            }
        }
    }
    let world_d = turn.to_frame(d);
    let (t, normal, material, owner) = match ground.intersect(pose.position, world_d, best_t) {
        Some(g) => (g.t, g.normal, g.material, NO_OWNER),
        None => match best {
            Some((part, owner)) => {
                let (prim, material) = &scene.parts[part];
                let n = turn.to_frame(prim.normal(d.scale(best_t)));
                (best_t, n, *material, owner)
            }
            None => return,
        },
    };
    if owner != NO_OWNER {
        out.hits[owner as usize].visible += 1;
    }
    if t < lidar.min_range || rng.uniform() < lidar.dropout {
        return;
    }
    let cos_incidence = normal.dot(world_d).abs();
    let expected = intensity(material.reflectivity, cos_incidence, t);
    if rng.uniform() >= detection_probability(expected, material.returns) {
        return;
    }
    let range = t + lidar.range_noise * rng.normal();
    let p = d.scale(range);
    if owner != NO_OWNER && scene.boxes[owner as usize].contains(p) {
        out.hits[owner as usize].points += 1;
    }
    out.x.push(p.x);
    out.y.push(p.y);
    out.z.push(p.z);
    out.intensity
        .push((expected * (1.0 + 0.08 * rng.normal())).clamp(0.0, 1.0));
}
