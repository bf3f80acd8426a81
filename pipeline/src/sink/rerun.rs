//! The Rerun sink: what a replay looks like in the Rerun viewer (spawned, connected to, or
//! saved to an `.rrd` recording).
//!
//! Layout, all in the LiDAR frame with +z up (logged once, static, on `world`):
//! - `world/lidar`: the points, coloured by height or intensity;
//! - `world/det/<set>` (`fp32`, `int8`): predicted boxes, coloured by class (by track when a
//!   tracker ran), labelled `Car 0.87` (`Car 0.87 #12` with a track id);
//! - `world/gt`: ground-truth boxes when the source has labels;
//! - `metrics/latency/<stage>` (ms), `metrics/detections/<set>` and `metrics/points`: time
//!   series.
//!
//! Every frame is logged on the `frame` timeline (its sequence number) and on `sensor_time`
//! (seconds since the first frame's sensor time).

use crate::stage::{DetectionSet, FrameResult, Sink};
use crate::{PipelineError, Result};
use lidarq_data::{Detection, PointCloud};
use rerun::{Boxes3D, Color, Points3D, Quaternion, RecordingStream, Scalars, ViewCoordinates};
use std::path::PathBuf;

/// Where the recording goes.
#[derive(Debug, Clone, PartialEq)]
pub enum RerunTarget {
    /// Start a viewer process (`rerun` on the PATH) and stream to it.
    Spawn,
    /// Stream to a running viewer, e.g. `rerun+http://127.0.0.1:9876/proxy`.
    Connect(String),
    /// Write an `.rrd` file.
    Save(PathBuf),
}

/// How points are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorBy {
    /// z from [`HEIGHT_RANGE`] mapped onto the colour ramp.
    Height,
    /// Intensity from 0 to the frame's largest intensity mapped onto the ramp.
    Intensity,
}

/// z range (m) spread over the colour ramp: ground to roof height for a roof-mounted LiDAR.
pub const HEIGHT_RANGE: [f32; 2] = [-2.5, 1.5];

/// Application id under which recordings appear in the viewer.
const APP_ID: &str = "lidarq";
/// Point radius in metres.
const POINT_RADIUS: f32 = 0.03;

/// Streams frames to Rerun.
pub struct RerunSink {
    rec: RecordingStream,
    color_by: ColorBy,
    first_sensor_ns: Option<i64>,
}

fn rerun_error(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Sink {
        sink: "rerun".into(),
        msg: e.to_string(),
    }
}

impl RerunSink {
    /// Opens the recording and logs the static view coordinates.
    pub fn new(target: &RerunTarget, color_by: ColorBy) -> Result<Self> {
        let builder = rerun::RecordingStreamBuilder::new(APP_ID);
        let rec = match target {
            RerunTarget::Spawn => builder.spawn(),
            RerunTarget::Connect(url) => builder.connect_grpc_opts(url.clone()),
            RerunTarget::Save(path) => builder.save(path),
        }
        .map_err(rerun_error)?;
        rec.log_static("world", &ViewCoordinates::RIGHT_HAND_Z_UP())
            .map_err(rerun_error)?;
        Ok(Self {
            rec,
            color_by,
            first_sensor_ns: None,
        })
    }

    fn log_boxes(
        &self,
        path: &str,
        boxes: &[Detection],
        track_ids: &[u64],
        show_score: bool,
    ) -> Result<()> {
        let centers = boxes.iter().map(|d| [d.bbox.x, d.bbox.y, d.bbox.z]);
        let half = boxes
            .iter()
            .map(|d| [d.bbox.dx * 0.5, d.bbox.dy * 0.5, d.bbox.dz * 0.5]);
        let quats = boxes.iter().map(|d| {
            let (s, c) = (d.bbox.yaw * 0.5).sin_cos();
            Quaternion::from_xyzw([0.0, 0.0, s, c])
        });
        let tracked = track_ids.len() == boxes.len();
        let colors = boxes.iter().enumerate().map(|(i, d)| match tracked {
            true => track_color(track_ids[i]),
            false => class_color(&d.class),
        });
        let labels = boxes.iter().enumerate().map(|(i, d)| {
            let mut label = d.class.clone();
            if show_score {
                label += &format!(" {:.2}", d.score);
            }
            if tracked {
                label += &format!(" #{}", track_ids[i]);
            }
            label
        });
        let archetype = Boxes3D::from_centers_and_half_sizes(centers, half)
            .with_quaternions(quats)
            .with_colors(colors)
            .with_labels(labels);
        self.rec.log(path, &archetype).map_err(rerun_error)
    }

    fn scalar(&self, path: &str, value: f64) -> Result<()> {
        self.rec
            .log(path, &Scalars::single(value))
            .map_err(rerun_error)
    }
}

impl Sink for RerunSink {
    fn name(&self) -> &str {
        "rerun"
    }

    fn write(&mut self, r: &FrameResult) -> Result<()> {
        let frame = &r.frame;
        self.rec.set_time_sequence("frame", frame.seq as i64);
        if let Some(t) = frame.sensor_time_ns {
            let t0 = *self.first_sensor_ns.get_or_insert(t);
            self.rec
                .set_duration_secs("sensor_time", (t - t0) as f64 / 1e9);
        }
        let cloud = &frame.cloud;
        let positions = (0..cloud.len()).map(|i| [cloud.x[i], cloud.y[i], cloud.z[i]]);
        let points = Points3D::new(positions)
            .with_colors(point_colors(cloud, self.color_by))
            .with_radii([POINT_RADIUS]);
        self.rec.log("world/lidar", &points).map_err(rerun_error)?;
        if let Some(gt) = &frame.ground_truth {
            self.log_boxes("world/gt", gt, &[], false)?;
        }
        for DetectionSet {
            name,
            detections,
            track_ids,
        } in &r.sets
        {
            self.log_boxes(&format!("world/det/{name}"), detections, track_ids, true)?;
            self.scalar(
                &format!("metrics/detections/{name}"),
                detections.len() as f64,
            )?;
        }
        for t in &r.timings {
            self.scalar(
                &format!("metrics/latency/{}", t.stage),
                t.busy.as_secs_f64() * 1e3,
            )?;
        }
        self.scalar("metrics/latency/end_to_end", r.latency.as_secs_f64() * 1e3)?;
        self.scalar("metrics/points", cloud.len() as f64)
    }

    fn finish(&mut self, _summary: &crate::Summary) -> Result<()> {
        self.rec.flush_blocking().map_err(rerun_error)
    }
}

/// A perceptual ramp (dark blue → cyan → green → yellow → red), `v` in [0, 1].
fn ramp(v: f32) -> Color {
    const STOPS: [[f32; 3]; 5] = [
        [48.0, 18.0, 59.0],
        [40.0, 188.0, 235.0],
        [164.0, 252.0, 60.0],
        [251.0, 185.0, 56.0],
        [122.0, 4.0, 3.0],
    ];
    let x = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    } * (STOPS.len() - 1) as f32;
    let i = (x as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])).round() as u8;
    Color::from_rgb(c(0), c(1), c(2))
}

fn point_colors(cloud: &PointCloud, by: ColorBy) -> Vec<Color> {
    match by {
        ColorBy::Height => {
            let [lo, hi] = HEIGHT_RANGE;
            cloud
                .z
                .iter()
                .map(|&z| ramp((z - lo) / (hi - lo)))
                .collect()
        }
        ColorBy::Intensity => {
            let max = cloud.intensity.iter().fold(0.0f32, |m, &v| m.max(v));
            let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
            cloud.intensity.iter().map(|&v| ramp(v * scale)).collect()
        }
    }
}

/// KITTI classes in the colours most viewers use; anything else grey.
fn class_color(class: &str) -> Color {
    match class {
        "Car" | "Van" | "Truck" => Color::from_rgb(30, 144, 255),
        "Pedestrian" | "Person_sitting" => Color::from_rgb(255, 64, 64),
        "Cyclist" => Color::from_rgb(60, 220, 90),
        _ => Color::from_rgb(180, 180, 180),
    }
}

/// A stable, well-spread colour per track id (golden-ratio hue steps).
fn track_color(id: u64) -> Color {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    let hue = (id as f64 * GOLDEN).fract() as f32 * 6.0;
    let sector = hue as u32;
    let f = hue - sector as f32;
    let (hi, lo, up, down) = (235.0, 60.0, 60.0 + f * 175.0, 235.0 - f * 175.0);
    let [r, g, b] = match sector {
        0 => [hi, up, lo],
        1 => [down, hi, lo],
        2 => [lo, hi, up],
        3 => [lo, down, hi],
        4 => [up, lo, hi],
        _ => [hi, lo, down],
    };
    Color::from_rgb(r as u8, g as u8, b as u8)
}
