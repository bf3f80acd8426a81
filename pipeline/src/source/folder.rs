//! Folder sources, read through the data layer: KITTI object roots (scans with their labels
//! and calibration) and sequences of `.bin` / `.pcd` scans (KITTI raw drives with their
//! `timestamps.txt`, or any folder at the nominal 10 Hz). A scan that fails to read is a
//! [`Skip`] naming the file and what was wrong.

use super::{Frame, NOMINAL_PERIOD_NS, Skip, Source, SourceItem};
use crate::Result;
use lidarq_data::kitti::KittiDataset;
use lidarq_data::{Detection, FrameSequence};
use std::path::Path;

/// KITTI label classes that are not objects to draw.
const IGNORED_LABELS: [&str; 1] = ["DontCare"];

/// The frames of a drive-log folder.
pub struct SequenceSource {
    sequence: FrameSequence,
    root: String,
    next: usize,
}

impl SequenceSource {
    /// Opens a folder of scans; frames without `timestamps.txt` are 0.1 s apart.
    pub fn open(dir: &Path) -> Result<Self> {
        let hz = 1e9 / NOMINAL_PERIOD_NS as f64;
        Ok(Self {
            sequence: FrameSequence::open(dir, hz)?,
            root: dir.display().to_string(),
            next: 0,
        })
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
        Some(match read {
            Ok(f) => {
                let stamp = (f.timestamp * 1e9).round() as i64;
                let mut frame = Frame::from_cloud(seq, Some(stamp), f.data.cloud);
                frame.non_finite = f.data.dropped_non_finite;
                if let Some(stem) = file_stem(&f.path) {
                    frame.name = stem;
                }
                Ok(frame)
            }
            Err(e) => Err(Skip {
                seq,
                reason: e.to_string(),
            }),
        })
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
                let labels = self.dataset.labels(id)?;
                let boxes = labels
                    .iter()
                    .filter(|l| !IGNORED_LABELS.contains(&l.kind.as_str()))
                    .map(|l| Detection {
                        bbox: calib.label_to_box(l),
                        class: l.kind.clone(),
                        score: 1.0,
                    });
                frame.ground_truth = Some(boxes.collect());
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
