//! Flat files of little-endian f32 records (KITTI `.bin`: 4 per point, nuScenes `.pcd.bin`:
//! 5 per point), decoded column by column.

use crate::files::file_error;
use crate::{DataError, PointCloud, Result};
use std::path::Path;

/// Splits `bytes` into `fields` f32 columns; `layout` describes a record in the error.
pub(crate) fn parse_columns(
    bytes: &[u8],
    fields: usize,
    path: &Path,
    layout: &str,
) -> Result<Vec<Vec<f32>>> {
    let record = fields * 4;
    if bytes.len() % record != 0 {
        return Err(DataError::Bytes {
            path: path.to_path_buf(),
            offset: (bytes.len() - bytes.len() % record) as u64,
            msg: format!(
                "file size {} is not a multiple of {record} ({layout}): the last point is truncated",
                bytes.len()
            ),
        });
    }
    Ok((0..fields)
        .map(|f| {
            let at = f * 4;
            bytes
                .chunks_exact(record)
                .map(|r| f32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]))
                .collect()
        })
        .collect())
}

/// A cloud from its first four columns (x, y, z, intensity).
pub(crate) fn cloud_from_columns(columns: &mut Vec<Vec<f32>>) -> PointCloud {
    let mut core = columns.drain(..4);
    let mut next = || core.next().unwrap_or_default();
    PointCloud {
        x: next(),
        y: next(),
        z: next(),
        intensity: next(),
        extra: Vec::new(),
    }
}

/// Interleaves equal-length columns into records; checks the cloud's columns first.
pub(crate) fn encode_columns(
    cloud: &PointCloud,
    columns: &[&[f32]],
    path: &Path,
) -> Result<Vec<u8>> {
    cloud.check_columns().map_err(|msg| file_error(path, msg))?;
    let mut out = Vec::with_capacity(cloud.len() * columns.len() * 4);
    for i in 0..cloud.len() {
        for c in columns {
            out.extend_from_slice(&c[i].to_le_bytes());
        }
    }
    Ok(out)
}
