//! Any supported point-cloud file, its format chosen by its name.

use crate::files::file_error;
use crate::{PointCloud, Result, kitti, nuscenes, pcd};
use std::path::Path;

/// The point-cloud file formats lidarq reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudFormat {
    /// KITTI velodyne `.bin` (f32 × 4).
    KittiBin,
    /// nuScenes `.pcd.bin` (f32 × 5).
    NuscenesBin,
    /// PCD (`.pcd`), any encoding.
    Pcd,
}

/// File-name suffixes of point clouds, longest first (`.pcd.bin` before `.bin`).
pub const CLOUD_SUFFIXES: [&str; 3] = [".pcd.bin", ".bin", ".pcd"];

impl CloudFormat {
    /// The format of a file from its name: `.pcd.bin`, `.bin` or `.pcd`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".pcd.bin") {
            Some(Self::NuscenesBin)
        } else if name.ends_with(".bin") {
            Some(Self::KittiBin)
        } else if name.ends_with(".pcd") {
            Some(Self::Pcd)
        } else {
            None
        }
    }
}

/// A point cloud as read from a file of any supported format.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudFile {
    /// The points (non-finite PCD points removed).
    pub cloud: PointCloud,
    /// Points dropped as NaN or infinite (PCD only: the binary formats are kept verbatim).
    pub dropped_non_finite: usize,
    /// The format read.
    pub format: CloudFormat,
}

/// Reads a `.bin`, `.pcd.bin` or `.pcd` file.
pub fn read_cloud(path: &Path) -> Result<CloudFile> {
    let format = CloudFormat::from_path(path).ok_or_else(|| {
        file_error(
            path,
            "not a point cloud: expected a .bin, .pcd.bin or .pcd file",
        )
    })?;
    let (cloud, dropped_non_finite) = match format {
        CloudFormat::KittiBin => (kitti::read_bin(path)?, 0),
        CloudFormat::NuscenesBin => (nuscenes::read_nuscenes_bin(path)?, 0),
        CloudFormat::Pcd => {
            let read = pcd::read_pcd(path)?;
            (read.cloud, read.dropped_non_finite)
        }
    };
    Ok(CloudFile {
        cloud,
        dropped_non_finite,
        format,
    })
}
