//! Where frames come from. A [`Source`] yields frames in sensor order, each either a
//! decoded [`Frame`] or a [`Skip`] saying why that frame could not be read; a bad frame
//! never ends a replay. [`open`] picks the source for a path.

mod folder;
mod mcap_log;

pub use folder::{KittiObjectSource, SequenceSource};
pub use mcap_log::McapSource;

use crate::{PipelineError, Result};
use lidarq_data::{Calib, Detection, PointCloud};
use std::path::Path;

/// One frame entering the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Position in the source's stream, from 0; skipped frames take a number too.
    pub seq: u64,
    /// A file-name-safe name (`000042`), used for result files.
    pub name: String,
    /// Sensor time in ns (epoch for logs, from 0 for timestamp-less folders), if known.
    pub sensor_time_ns: Option<i64>,
    /// The points (finite only).
    pub cloud: PointCloud,
    /// Points the source dropped because a coordinate or intensity was not finite.
    pub non_finite: usize,
    /// Ground-truth boxes in the LiDAR frame (score 1), when the source has labels.
    pub ground_truth: Option<Vec<Detection>>,
    /// The frame's calibration, when the source has one (KITTI result files need it).
    pub calib: Option<Calib>,
}

impl Frame {
    /// A frame with only points: no labels, no calibration.
    pub fn from_cloud(seq: u64, sensor_time_ns: Option<i64>, cloud: PointCloud) -> Self {
        Self {
            seq,
            name: format!("{seq:06}"),
            sensor_time_ns,
            cloud,
            non_finite: 0,
            ground_truth: None,
            calib: None,
        }
    }
}

/// A frame that could not be read or processed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The frame's position in the stream.
    pub seq: u64,
    /// What was wrong (names the file, offset or stage).
    pub reason: String,
}

/// What a source yields per frame.
pub type SourceItem = std::result::Result<Frame, Skip>;

/// A stream of frames in sensor order.
pub trait Source: Send {
    /// One line saying what is read (`MCAP log.mcap, topic /points`).
    fn describe(&self) -> String;
    /// Number of frames to expect, when known up front.
    fn len_hint(&self) -> Option<u64>;
    /// The next frame, `None` at the end of the stream.
    fn next_frame(&mut self) -> Option<SourceItem>;
}

/// Frames already in memory (benchmarks, tests, a caller's own reader).
pub struct Preloaded {
    items: std::collections::VecDeque<SourceItem>,
    what: String,
}

impl Preloaded {
    /// Yields `items` in order; `what` is its description.
    pub fn new(what: &str, items: impl IntoIterator<Item = SourceItem>) -> Self {
        Self {
            items: items.into_iter().collect(),
            what: what.to_string(),
        }
    }
}

impl Source for Preloaded {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.items.len() as u64)
    }

    fn next_frame(&mut self) -> Option<SourceItem> {
        self.items.pop_front()
    }
}

/// Nominal LiDAR period for sources without timestamps (KITTI's 10 Hz).
pub const NOMINAL_PERIOD_NS: i64 = 100_000_000;

/// Opens the source a path names: an `.mcap` file or a rosbag2 folder holding `.mcap`
/// files, a KITTI object root (`training/velodyne`), or a sequence folder of `.bin` / `.pcd`
/// scans (KITTI raw drives included, and drive roots holding `velodyne_points/`). `topic` selects the MCAP topic (default: the first
/// PointCloud2 topic) and is an error for other sources.
pub fn open(path: &Path, topic: Option<&str>) -> Result<Box<dyn Source>> {
    let is_mcap = |p: &Path| p.extension().is_some_and(|e| e == "mcap");
    let folder_has_mcap = path.is_dir()
        && std::fs::read_dir(path)
            .map_err(|e| crate::error::io_error(path, e))?
            .filter_map(|e| e.ok())
            .any(|e| is_mcap(&e.path()));
    if is_mcap(path) || folder_has_mcap {
        return Ok(Box::new(McapSource::open(path, topic)?));
    }
    if let Some(t) = topic {
        return Err(PipelineError::Source {
            path: path.to_path_buf(),
            msg: format!("--topic {t} applies to MCAP logs only"),
        });
    }
    if path.join("training").join("velodyne").is_dir() {
        return Ok(Box::new(KittiObjectSource::open(path)?));
    }
    Ok(Box::new(SequenceSource::open(path)?))
}
