//! Generated frames: independent street scenes for the object dataset, and drives (the
//! ego car moving down one street while traffic, cyclists and pedestrians move too).

use std::f32::consts::{PI, TAU};

use super::geometry::V3;
use super::labels::label;
use super::objects::ObjectClass;
use super::raycast::{Pose, sweep};
use super::scene::World;
use super::seed::mix;
use super::sensor::LidarModel;
use crate::{Box3D, Calib, ObjectLabel, PointCloud};

/// What to generate with.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// The sensor.
    pub lidar: LidarModel,
    /// Everything random derives from this seed.
    pub seed: u64,
}

impl SynthConfig {
    /// The KITTI car's HDL-64E with a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            lidar: LidarModel::hdl64(),
            seed,
        }
    }
}

/// A road user the sweep returned points from.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthObject {
    /// Its class.
    pub class: ObjectClass,
    /// Its box in the LiDAR frame.
    pub bbox: Box3D,
    /// Stable across the frames of a drive.
    pub track_key: u64,
    /// Returned points inside its box (at least 1).
    pub points: u32,
    /// Fraction of the rays through it stopped by something in front.
    pub hidden: f32,
    /// Its KITTI label, when it is in view of camera 2.
    pub label: Option<ObjectLabel>,
}

/// One generated sweep and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthFrame {
    /// The points, in the LiDAR frame, all around (360°).
    pub cloud: PointCloud,
    /// Objects with at least one point, labelled or not.
    pub objects: Vec<SynthObject>,
    /// The sensor's pose in the street's frame: x, y, z, yaw.
    pub pose: [f32; 4],
}

impl SynthFrame {
    /// The KITTI labels of the frame (objects in view of camera 2).
    pub fn labels(&self) -> Vec<ObjectLabel> {
        self.objects
            .iter()
            .filter_map(|o| o.label.clone())
            .collect()
    }
}

/// Frame `index` of an object dataset: a street of its own, seen from a car standing in it.
pub fn object_frame(cfg: &SynthConfig, index: u64) -> SynthFrame {
    let seed = mix(cfg.seed, index);
    let world = World::new(seed, false);
    let yaw = 0.03 * (2.0 * (mix(seed, 0x9a) >> 40) as f32 / (1u64 << 24) as f32 - 1.0);
    render(&cfg.lidar, &world, 0.0, 0.0, yaw, seed)
}

/// Sweep period of a 10 Hz LiDAR (s).
pub const FRAME_PERIOD: f32 = 0.1;

/// A drive: one long street, the ego car following its lane at constant speed.
#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    lidar: LidarModel,
    seed: u64,
    world: World,
}

impl Drive {
    /// The drive of a seed.
    pub fn new(cfg: &SynthConfig) -> Self {
        let seed = mix(cfg.seed, 0xd417e);
        Self {
            lidar: cfg.lidar.clone(),
            seed,
            world: World::new(seed, true),
        }
    }

    /// Frame `index`, `index · FRAME_PERIOD` seconds into the drive.
    pub fn frame(&self, index: u64) -> SynthFrame {
        let t = index as f32 * FRAME_PERIOD;
        let ego_x = self.world.ego_speed * t;
        // A driver never holds the wheel perfectly still.
        let yaw = 0.01 * (0.7 * t).sin();
        render(
            &self.lidar,
            &self.world,
            t,
            ego_x,
            yaw,
            mix(self.seed, index),
        )
    }
}

fn wrap(a: f32) -> f32 {
    (a + PI).rem_euclid(TAU) - PI
}

fn render(
    lidar: &LidarModel,
    world: &World,
    t: f32,
    ego_x: f32,
    yaw: f32,
    seed: u64,
) -> SynthFrame {
    let reach = lidar.max_range + 15.0;
    let snap = world.snapshot(t, ego_x, ego_x - reach, ego_x + reach);
    let ego_z = world.ground.height(ego_x, world.ego_y) + lidar.mount_height;
    let pose = Pose {
        position: V3::new(ego_x, world.ego_y, ego_z),
        yaw,
    };
    let scan = sweep(lidar, &world.ground, &snap, pose, seed);
    let calib = Calib::kitti_default();
    let (s, c) = (-yaw).sin_cos();
    let objects = snap
        .actors
        .iter()
        .zip(&scan.hits)
        .filter(|(_, h)| h.points > 0)
        .map(|(a, h)| {
            let [l, w, hgt] = a.shape.size;
            let (dx, dy) = (a.x - ego_x, a.y - world.ego_y);
            let bbox = Box3D {
                x: c * dx - s * dy,
                y: s * dx + c * dy,
                z: a.z - ego_z + 0.5 * hgt,
                dx: l,
                dy: w,
                dz: hgt,
                yaw: wrap(a.yaw - yaw),
            };
            let hidden = 1.0 - h.visible as f32 / h.rays.max(1) as f32;
            let label = label(&calib, &bbox, a.shape.class.name(), hidden);
            SynthObject {
                class: a.shape.class,
                bbox,
                track_key: a.key,
                points: h.points,
                hidden,
                label,
            }
        })
        .collect();
    SynthFrame {
        cloud: scan.cloud,
        objects,
        pose: [ego_x, world.ego_y, ego_z, yaw],
    }
}
