//! KITTI result files: one `<frame>.txt` per frame and detection set, in
//! `<dir>/<set name>/`, in the label format with a score column that the KITTI devkit and
//! `lidarq eval` read. Frames without detections get an empty file, as the devkit expects.
//! Boxes go to the camera frame through the frame's calibration, or KITTI's typical one
//! (`Calib::kitti_default`) for sources without calibration.

use crate::Result;
use crate::error::io_error;
use crate::stage::{FrameResult, Sink};
use lidarq_data::Calib;
use std::path::PathBuf;

/// Writes KITTI result files.
pub struct KittiResultSink {
    dir: PathBuf,
    fallback: Calib,
}

impl KittiResultSink {
    /// Results go under `dir` (created when missing).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            fallback: Calib::kitti_default(),
        }
    }
}

impl Sink for KittiResultSink {
    fn name(&self) -> &str {
        "kitti-results"
    }

    fn write(&mut self, r: &FrameResult) -> Result<()> {
        let calib = r.frame.calib.as_ref().unwrap_or(&self.fallback);
        for set in &r.sets {
            let dir = self.dir.join(&set.name);
            std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            let labels: Vec<_> = set
                .detections
                .iter()
                .map(|d| {
                    let mut label = calib.box_to_label(&d.bbox, &d.class);
                    label.score = Some(d.score);
                    label
                })
                .collect();
            let path = dir.join(format!("{}.txt", r.frame.name));
            lidarq_data::kitti::write_labels(&path, &labels)?;
        }
        Ok(())
    }
}
