//! Loading the frames of an evaluation from disk: KITTI ground truth (`training/label_2`),
//! a folder of KITTI result files (`<id>.txt`, one per frame), and — when the scans and
//! calibration are there — the LiDAR points inside every box.

use std::path::{Path, PathBuf};

use lidarq_data::kitti::{read_bin, read_calib, read_labels};
use lidarq_data::{Box3D, ObjectLabel};
use rayon::prelude::*;

use crate::kitti::Frame;
use crate::points::PointIndex;
use crate::{EvalError, Result};

/// A KITTI object dataset root (the folder holding `training/` and `ImageSets/`).
#[derive(Debug, Clone)]
pub struct GroundTruth {
    root: PathBuf,
}

impl GroundTruth {
    /// Checks that `root/training/label_2` exists.
    pub fn open(root: &Path) -> Result<Self> {
        let gt = Self {
            root: root.to_path_buf(),
        };
        if !gt.part("label_2").is_dir() {
            return Err(EvalError::Layout {
                path: root.to_path_buf(),
                msg: "not a KITTI object dataset: training/label_2 is missing".into(),
            });
        }
        Ok(gt)
    }

    fn part(&self, folder: &str) -> PathBuf {
        self.root.join("training").join(folder)
    }

    /// Frame ids of `ImageSets/<split>.txt`, or of every label file (sorted) without a split.
    pub fn ids(&self, split: Option<&str>) -> Result<Vec<String>> {
        match split {
            Some(split) => {
                let path = self.root.join("ImageSets").join(format!("{split}.txt"));
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| EvalError::Io { path, source })?;
                Ok(text.split_ascii_whitespace().map(str::to_string).collect())
            }
            None => {
                let dir = self.part("label_2");
                let entries = std::fs::read_dir(&dir).map_err(|source| EvalError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let mut ids = Vec::new();
                for entry in entries {
                    let path = entry
                        .map_err(|source| EvalError::Io {
                            path: dir.clone(),
                            source,
                        })?
                        .path();
                    if path.extension().is_some_and(|e| e == "txt")
                        && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    {
                        ids.push(stem.to_string());
                    }
                }
                ids.sort();
                Ok(ids)
            }
        }
    }

    /// Loads each frame's ground truth and the result file `pred_dir/<id>.txt` (a missing
    /// result file is an error: an empty file means "no detections"). With `points`, frames
    /// whose scan and calibration exist get point counts per box. `tick` is called once per
    /// frame loaded, from any thread.
    pub fn load(
        &self,
        ids: &[String],
        pred_dir: &Path,
        points: bool,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Vec<Frame>> {
        ids.par_iter()
            .map(|id| {
                let pred = pred_dir.join(format!("{id}.txt"));
                if !pred.is_file() {
                    return Err(EvalError::Layout {
                        path: pred,
                        msg: "result file missing for this frame".into(),
                    });
                }
                let frame = self.frame(id, read_labels(&pred)?, points);
                tick();
                frame
            })
            .collect()
    }

    /// Like [`GroundTruth::load`], with the detections of `ids[i]` given as `detections[i]`
    /// (KITTI label records with scores) instead of read from files.
    pub fn load_with(
        &self,
        ids: &[String],
        detections: Vec<Vec<ObjectLabel>>,
        points: bool,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Vec<Frame>> {
        if detections.len() != ids.len() {
            return Err(EvalError::Layout {
                path: self.root.clone(),
                msg: format!(
                    "{} frames but detections for {}",
                    ids.len(),
                    detections.len()
                ),
            });
        }
        ids.par_iter()
            .zip(detections)
            .map(|(id, dt)| {
                let frame = self.frame(id, dt, points);
                tick();
                frame
            })
            .collect()
    }

    fn frame(&self, id: &str, dt: Vec<ObjectLabel>, points: bool) -> Result<Frame> {
        let gt = read_labels(&self.part("label_2").join(format!("{id}.txt")))?;
        let mut frame = Frame {
            id: id.to_string(),
            gt,
            dt,
            gt_points: None,
            dt_points: None,
        };
        let (scan, calib) = (
            self.part("velodyne").join(format!("{id}.bin")),
            self.part("calib").join(format!("{id}.txt")),
        );
        if points && scan.is_file() && calib.is_file() {
            let cloud = read_bin(&scan)?;
            let calib = read_calib(&calib)?;
            let index = PointIndex::new(&cloud);
            let count = |labels: &[ObjectLabel]| {
                let boxes: Vec<Box3D> = labels.iter().map(|l| calib.label_to_box(l)).collect();
                index.count_in_each(&boxes)
            };
            frame.gt_points = Some(count(&frame.gt));
            frame.dt_points = Some(count(&frame.dt));
        }
        Ok(frame)
    }
}
