//! Flat files of little-endian f32 records (KITTI `.bin`: 4 per point, nuScenes `.pcd.bin`:
//! 5 per point), decoded column by column.

use crate::files::{file_error, io_error};
use crate::{DataError, PointCloud, Result};
use std::io::Read;
use std::path::Path;

/// Records decoded per read from a file: a block that stays in L2 cache.
const BLOCK_RECORDS: usize = 4096;

fn check_size(len: u64, record: usize, path: &Path, layout: &str) -> Result<usize> {
    let rest = len % record as u64;
    if rest != 0 {
        return Err(DataError::Bytes {
            path: path.to_path_buf(),
            offset: len - rest,
            msg: format!(
                "file size {len} is not a multiple of {record} ({layout}): the last point is truncated"
            ),
        });
    }
    usize::try_from(len / record as u64)
        .map_err(|_| file_error(path, "file too large for this machine"))
}

/// Appends the records of `bytes`, one column at a time: the exact-size loops vectorize, and
/// a block is small enough to stay in cache across the passes.
fn append(bytes: &[u8], record: usize, columns: &mut [Vec<f32>]) {
    for (f, column) in columns.iter_mut().enumerate() {
        let at = f * 4;
        column.extend(
            bytes
                .chunks_exact(record)
                .map(|r| f32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])),
        );
    }
}

fn empty_columns(fields: usize, n: usize) -> Vec<Vec<f32>> {
    (0..fields).map(|_| Vec::with_capacity(n)).collect()
}

/// Splits `bytes` into `fields` f32 columns; `layout` describes a record in the error.
pub(crate) fn parse_columns(
    bytes: &[u8],
    fields: usize,
    path: &Path,
    layout: &str,
) -> Result<Vec<Vec<f32>>> {
    let record = fields * 4;
    let n = check_size(bytes.len() as u64, record, path, layout)?;
    let mut columns = empty_columns(fields, n);
    append(bytes, record, &mut columns);
    Ok(columns)
}

/// Reads a file of `fields`-float records block by block, so that no buffer the size of
/// the file is allocated and faulted in on every frame.
pub(crate) fn read_columns(path: &Path, fields: usize, layout: &str) -> Result<Vec<Vec<f32>>> {
    let record = fields * 4;
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    let n = check_size(len, record, path, layout)?;
    let mut columns = empty_columns(fields, n);
    let mut block = vec![0u8; record * BLOCK_RECORDS.min(n)];
    let mut remaining = n * record;
    while remaining > 0 {
        let take = block.len().min(remaining);
        file.read_exact(&mut block[..take])
            .map_err(|e| io_error(path, e))?;
        append(&block[..take], record, &mut columns);
        remaining -= take;
    }
    Ok(columns)
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
