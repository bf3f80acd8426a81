//! A view of a KITTI object-benchmark root: `training/{velodyne,label_2,calib}/<id>.*` and
//! `ImageSets/<split>.txt` (one frame id per line).

use super::{read_bin, read_calib, read_labels};
use crate::files::{file_error, list_files, read_text};
use crate::{Calib, ObjectLabel, PointCloud, Result};
use std::path::{Path, PathBuf};

/// A KITTI object dataset on disk. Opening checks the layout; frames load on demand.
#[derive(Debug, Clone)]
pub struct KittiDataset {
    root: PathBuf,
    part: PathBuf,
}

impl KittiDataset {
    /// Opens the root of a KITTI object dataset (the folder holding `training/`).
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_part(root, "training")
    }

    /// Opens one part (`training` or `testing`) of a KITTI object dataset.
    pub fn open_part(root: &Path, part: &str) -> Result<Self> {
        let dir = root.join(part);
        if !dir.join("velodyne").is_dir() {
            return Err(file_error(
                root,
                format!("not a KITTI object dataset: {part}/velodyne is missing"),
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            part: dir,
        })
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Frame ids listed in `ImageSets/<split>.txt` (`train`, `val`, `test`, ...).
    pub fn split_ids(&self, split: &str) -> Result<Vec<String>> {
        let path = self.root.join("ImageSets").join(format!("{split}.txt"));
        let text = read_text(&path)?;
        Ok(text.split_ascii_whitespace().map(str::to_string).collect())
    }

    /// Ids of every scan in `velodyne/`, sorted.
    pub fn all_ids(&self) -> Result<Vec<String>> {
        let files = list_files(&self.part.join("velodyne"), &[".bin"])?;
        Ok(files
            .iter()
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
            .collect())
    }

    /// Path of the scan of frame `id`.
    pub fn velodyne_path(&self, id: &str) -> PathBuf {
        self.part.join("velodyne").join(format!("{id}.bin"))
    }

    /// Path of the labels of frame `id`.
    pub fn label_path(&self, id: &str) -> PathBuf {
        self.part.join("label_2").join(format!("{id}.txt"))
    }

    /// Path of the calibration of frame `id`.
    pub fn calib_path(&self, id: &str) -> PathBuf {
        self.part.join("calib").join(format!("{id}.txt"))
    }

    /// The scan of frame `id`.
    pub fn cloud(&self, id: &str) -> Result<PointCloud> {
        read_bin(&self.velodyne_path(id))
    }

    /// The scan of frame `id` cut to what camera 2 sees ([`Calib::retain_image_fov`]): the
    /// input KITTI models are trained and evaluated on, since labels exist only there.
    pub fn fov_cloud(&self, id: &str) -> Result<PointCloud> {
        let mut cloud = self.cloud(id)?;
        self.calib(id)?.retain_image_fov(&mut cloud);
        Ok(cloud)
    }

    /// The labels of frame `id`.
    pub fn labels(&self, id: &str) -> Result<Vec<ObjectLabel>> {
        read_labels(&self.label_path(id))
    }

    /// The calibration of frame `id`.
    pub fn calib(&self, id: &str) -> Result<Calib> {
        read_calib(&self.calib_path(id))
    }
}
