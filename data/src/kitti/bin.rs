//! KITTI velodyne scans: little-endian f32 records of x, y, z, reflectance (16 bytes).

use crate::files::{file_error, read_bytes, write_bytes};
use crate::{DataError, PointCloud, Result};
use std::path::Path;

const RECORD: usize = 16;

/// Reads a KITTI `.bin` scan.
pub fn read_bin(path: &Path) -> Result<PointCloud> {
    parse_bin(&read_bytes(path)?, path)
}

/// Decodes the bytes of a KITTI `.bin` scan; `path` names the source in errors.
pub fn parse_bin(bytes: &[u8], path: &Path) -> Result<PointCloud> {
    if bytes.len() % RECORD != 0 {
        return Err(DataError::Bytes {
            path: path.to_path_buf(),
            offset: (bytes.len() - bytes.len() % RECORD) as u64,
            msg: format!(
                "file size {} is not a multiple of {RECORD} (x, y, z, intensity as f32): the last point is truncated",
                bytes.len()
            ),
        });
    }
    let n = bytes.len() / RECORD;
    let mut cloud = PointCloud::with_capacity(n);
    let column = |i: usize| {
        bytes
            .chunks_exact(RECORD)
            .map(move |r| f32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]))
    };
    cloud.x.extend(column(0));
    cloud.y.extend(column(4));
    cloud.z.extend(column(8));
    cloud.intensity.extend(column(12));
    Ok(cloud)
}

/// Encodes x, y, z, intensity as a KITTI `.bin` (extra fields are not part of the format).
pub fn encode_bin(cloud: &PointCloud, path: &Path) -> Result<Vec<u8>> {
    cloud.check_columns().map_err(|msg| file_error(path, msg))?;
    let mut out = Vec::with_capacity(cloud.len() * RECORD);
    for i in 0..cloud.len() {
        for v in [cloud.x[i], cloud.y[i], cloud.z[i], cloud.intensity[i]] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Writes a KITTI `.bin` scan (x, y, z, intensity; extra fields are dropped).
pub fn write_bin(path: &Path, cloud: &PointCloud) -> Result<()> {
    write_bytes(path, &encode_bin(cloud, path)?)
}
