//! nuScenes LiDAR sweeps (`*.pcd.bin`): little-endian f32 records of x, y, z, intensity,
//! ring index (20 bytes). The ring becomes the extra field `ring`.

use crate::f32_records::{cloud_from_columns, encode_columns, parse_columns, read_columns};
use crate::files::write_bytes;
use crate::{ExtraField, PointCloud, Result};
use std::path::Path;

/// Name of the extra field that holds the ring index.
pub const RING: &str = "ring";

/// Reads a nuScenes `.pcd.bin` sweep.
pub fn read_nuscenes_bin(path: &Path) -> Result<PointCloud> {
    Ok(with_ring(read_columns(path, 5, LAYOUT)?))
}

const LAYOUT: &str = "x, y, z, intensity, ring as f32";

/// Decodes the bytes of a nuScenes `.pcd.bin` sweep; `path` names the source in errors.
pub fn parse_nuscenes_bin(bytes: &[u8], path: &Path) -> Result<PointCloud> {
    Ok(with_ring(parse_columns(bytes, 5, path, LAYOUT)?))
}

fn with_ring(mut columns: Vec<Vec<f32>>) -> PointCloud {
    let mut cloud = cloud_from_columns(&mut columns);
    let ring = columns.pop().unwrap_or_default();
    cloud.extra.push(ExtraField {
        name: RING.to_string(),
        values: ring.into_iter().map(f64::from).collect(),
    });
    cloud
}

/// Writes a nuScenes `.pcd.bin` sweep; the ring is the `ring` extra field, 0 without one.
pub fn write_nuscenes_bin(path: &Path, cloud: &PointCloud) -> Result<()> {
    let ring: Vec<f32> = match cloud.extra(RING) {
        Some(r) => r.iter().map(|&v| v as f32).collect(),
        None => vec![0.0; cloud.len()],
    };
    let bytes = encode_columns(
        cloud,
        &[&cloud.x, &cloud.y, &cloud.z, &cloud.intensity, &ring],
        path,
    )?;
    write_bytes(path, &bytes)
}
