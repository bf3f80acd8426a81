//! Writing PCD files through pcd-rs: fields x y z intensity (F 4), then each extra field
//! (F 8, so every value read from any PCD type is written back exactly).

use super::PcdEncoding;
use crate::files::{file_error, write_bytes};
use crate::{PointCloud, Result};
use pcd_rs::{DynRecord, Field, Schema, ValueKind, WriterInit};
use std::io::Cursor;
use std::path::Path;

/// Encodes a cloud as a PCD file (HEIGHT 1); `path` names the destination in errors.
pub fn encode_pcd(cloud: &PointCloud, encoding: PcdEncoding, path: &Path) -> Result<Vec<u8>> {
    cloud.check_columns().map_err(|msg| file_error(path, msg))?;
    let pcd_error = |e: pcd_rs::Error| file_error(path, format!("PCD writer: {e}"));
    let core = ["x", "y", "z", "intensity"].map(|n| (n.to_string(), ValueKind::F32, 1));
    let extras = cloud
        .extra
        .iter()
        .map(|f| (f.name.clone(), ValueKind::F64, 1));
    let schema: Schema = core.into_iter().chain(extras).collect();
    let init = WriterInit {
        width: cloud.len() as u64,
        height: 1,
        viewpoint: Default::default(),
        data_kind: encoding.into(),
        schema: Some(schema),
        version: None,
    };
    let mut out = Cursor::new(Vec::new());
    let mut writer = init
        .build_from_writer::<DynRecord, _>(&mut out)
        .map_err(pcd_error)?;
    let mut pushed = Ok(());
    for i in 0..cloud.len() {
        let mut fields = vec![
            Field::F32(vec![cloud.x[i]]),
            Field::F32(vec![cloud.y[i]]),
            Field::F32(vec![cloud.z[i]]),
            Field::F32(vec![cloud.intensity[i]]),
        ];
        fields.extend(cloud.extra.iter().map(|f| Field::F64(vec![f.values[i]])));
        pushed = writer.push(&DynRecord(fields));
        if pushed.is_err() {
            break;
        }
    }
    // pcd-rs's writer panics when dropped unfinished: finish it even after a failed push.
    let finished = writer.finish();
    pushed.and(finished).map_err(pcd_error)?;
    Ok(out.into_inner())
}

/// Writes a cloud as a PCD file (HEIGHT 1).
pub fn write_pcd(path: &Path, cloud: &PointCloud, encoding: PcdEncoding) -> Result<()> {
    write_bytes(path, &encode_pcd(cloud, encoding, path)?)
}
