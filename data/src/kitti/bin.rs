//! KITTI velodyne scans: little-endian f32 records of x, y, z, reflectance (16 bytes).

use crate::f32_records::{cloud_from_columns, encode_columns, parse_columns, read_columns};
use crate::files::write_bytes;
use crate::{PointCloud, Result};
use std::path::Path;

/// Reads a KITTI `.bin` scan.
pub fn read_bin(path: &Path) -> Result<PointCloud> {
    let mut columns = read_columns(path, 4, LAYOUT)?;
    Ok(cloud_from_columns(&mut columns))
}

const LAYOUT: &str = "x, y, z, intensity as f32";

/// Decodes the bytes of a KITTI `.bin` scan; `path` names the source in errors.
pub fn parse_bin(bytes: &[u8], path: &Path) -> Result<PointCloud> {
    let mut columns = parse_columns(bytes, 4, path, LAYOUT)?;
    Ok(cloud_from_columns(&mut columns))
}

/// Encodes x, y, z, intensity as a KITTI `.bin` (extra fields are not part of the format);
/// `path` names the destination in errors.
pub fn encode_bin(cloud: &PointCloud, path: &Path) -> Result<Vec<u8>> {
    encode_columns(
        cloud,
        &[&cloud.x, &cloud.y, &cloud.z, &cloud.intensity],
        path,
    )
}

/// Writes a KITTI `.bin` scan (x, y, z, intensity; extra fields are dropped).
pub fn write_bin(path: &Path, cloud: &PointCloud) -> Result<()> {
    write_bytes(path, &encode_bin(cloud, path)?)
}
