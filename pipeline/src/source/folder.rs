//! Folder sources, read through the data layer: KITTI object roots (scans with their labels
//! and calibration) and sequences of `.bin` / `.pcd` scans (KITTI raw drives with their
//! `timestamps.txt`, or any folder at the nominal 10 Hz; a drive root holding
//! `velodyne_points/`, as `lidarq gen --sequence` writes, with per-frame ground truth from
//! `label_2/` and `calib.txt` beside it). A scan that fails to read is a [`Skip`] naming the
//! file and what was wrong.

use super::{Frame, NOMINAL_PERIOD_NS, Skip, Source, SourceItem};
use crate::Result;
use lidarq_data::kitti::{KittiDataset, read_calib, read_labels};
use lidarq_data::{Calib, Detection, FrameSequence, ObjectLabel};
use std::path::{Path, PathBuf};

/// KITTI label classes that are not objects to draw.
const IGNORED_LABELS: [&str; 1] = ["DontCare"];

/// Ground-truth boxes of KITTI labels, in the LiDAR frame.
fn ground_truth(calib: &Calib, labels: &[ObjectLabel]) -> Vec<Detection> {
    labels
        .iter()
        .filter(|l| !IGNORED_LABELS.contains(&l.kind.as_str()))
        .map(|l| Detection {
            bbox: calib.label_to_box(l),
            class: l.kind.clone(),
            score: 1.0,
        })
        .collect()
}

/// Per-frame labels of a drive root: `label_2/<scan stem>.txt` in the frame of `calib.txt`.
struct DriveLabels {
    dir: PathBuf,
    calib: Calib,
}

/// The frames of a drive-log folder.
pub struct SequenceSource {
    sequence: FrameSequence,
    labels: Option<DriveLabels>,
    root: String,
    next: usize,
}

impl SequenceSource {
    /// Opens a folder of scans, or a drive root holding `velodyne_points/` (with labels
    /// when `label_2/` and `calib.txt` are beside it); frames without `timestamps.txt` are
    /// 0.1 s apart.
    pub fn open(dir: &Path) -> Result<Self> {
        let hz = 1e9 / NOMINAL_PERIOD_NS as f64;
        let points = dir.join("velodyne_points");
        let (scans, labels) = match points.is_dir() {
            true => {
                let (label_dir, calib) = (dir.join("label_2"), dir.join("calib.txt"));
                let labels = match label_dir.is_dir() && calib.is_file() {
                    true => Some(DriveLabels {
                        dir: label_dir,
                        calib: read_calib(&calib)?,
                    }),
                    false => None,
                };
                (points, labels)
            }
            false => (dir.to_path_buf(), None),
        };
        Ok(Self {
            sequence: FrameSequence::open(&scans, hz)?,
            labels,
            root: dir.display().to_string(),
            next: 0,
        })
    }

    /// Attaches the frame's labels, when the drive has a label file for it.
    fn label(&self, frame: &mut Frame) -> lidarq_data::Result<()> {
        let Some(drive) = &self.labels else {
            return Ok(());
        };
        let path = drive.dir.join(format!("{}.txt", frame.name));
        if path.is_file() {
            frame.ground_truth = Some(ground_truth(&drive.calib, &read_labels(&path)?));
            frame.calib = Some(drive.calib.clone());
        }
        Ok(())
    }
}

impl Source for SequenceSource {
    fn describe(&self) -> String {
        format!("sequence {} ({} scans)", self.root, self.sequence.len())
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.sequence.len() as u64)
    }

    fn next_frame(&mut self) -> Option<SourceItem> {
        let index = self.next;
        let read = self.sequence.frame(index)?;
        self.next += 1;
        let seq = index as u64;
        let frame = read.and_then(|f| {
            let stamp = (f.timestamp * 1e9).round() as i64;
            let mut frame = Frame::from_cloud(seq, Some(stamp), f.data.cloud);
            frame.non_finite = f.data.dropped_non_finite;
            if let Some(stem) = file_stem(&f.path) {
                frame.name = stem;
            }
            self.label(&mut frame)?;
            Ok(frame)
        });
        Some(frame.map_err(|e| Skip {
            seq,
            reason: e.to_string(),
        }))
    }
}

/// The name of a scan without its cloud suffix (`000042.bin` → `000042`).
fn file_stem(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    lidarq_data::CLOUD_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .map(str::to_string)
}

/// The training frames of a KITTI object root, with ground truth where labels exist.
pub struct KittiObjectSource {
    dataset: KittiDataset,
    ids: Vec<String>,
    next: usize,
}

impl KittiObjectSource {
    /// Opens a KITTI object root (the folder holding `training/`); every scan in
    /// `training/velodyne`, in id order, timed at the nominal 10 Hz.
    pub fn open(root: &Path) -> Result<Self> {
        let dataset = KittiDataset::open(root)?;
        let ids = dataset.all_ids()?;
        Ok(Self {
            dataset,
            ids,
            next: 0,
        })
    }

    fn read(&self, seq: u64, id: &str) -> lidarq_data::Result<Frame> {
        let cloud = self.dataset.cloud(id)?;
        let mut frame = Frame::from_cloud(seq, Some(seq as i64 * NOMINAL_PERIOD_NS), cloud);
        frame.name = id.to_string();
        if self.dataset.calib_path(id).is_file() {
            let calib = self.dataset.calib(id)?;
            if self.dataset.label_path(id).is_file() {
                frame.ground_truth = Some(ground_truth(&calib, &self.dataset.labels(id)?));
            }
            frame.calib = Some(calib);
        }
        Ok(frame)
    }
}

impl Source for KittiObjectSource {
    fn describe(&self) -> String {
        format!(
            "KITTI object {} ({} scans)",
            self.dataset.root().display(),
            self.ids.len()
        )
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.ids.len() as u64)
    }

    fn next_frame(&mut self) -> Option<SourceItem> {
        let id = self.ids.get(self.next)?;
        let seq = self.next as u64;
        self.next += 1;
        Some(self.read(seq, id).map_err(|e| Skip {
            seq,
            reason: e.to_string(),
        }))
    }
}
