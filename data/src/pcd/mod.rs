//! PCD point clouds (Point Cloud Library format, v0.5–0.7): ascii, binary and
//! binary_compressed. Reading accepts what PCL and common tools write (see `header` and
//! `read`); writing goes through pcd-rs.

mod header;
mod lzf;
mod read;
mod write;

pub use read::{PcdRead, parse_pcd, read_pcd};
pub use write::{encode_pcd, write_pcd};

use pcd_rs::{DataKind, FieldDef, ValueKind};

/// The encoding of a PCD data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PcdEncoding {
    /// One text line per point.
    Ascii,
    /// Little-endian records, one per point.
    Binary,
    /// LZF-compressed columns (PCL's `binary_compressed`).
    BinaryCompressed,
}

impl From<DataKind> for PcdEncoding {
    fn from(kind: DataKind) -> Self {
        match kind {
            DataKind::Ascii => Self::Ascii,
            DataKind::Binary => Self::Binary,
            DataKind::BinaryCompressed => Self::BinaryCompressed,
        }
    }
}

impl From<PcdEncoding> for DataKind {
    fn from(e: PcdEncoding) -> Self {
        match e {
            PcdEncoding::Ascii => Self::Ascii,
            PcdEncoding::Binary => Self::Binary,
            PcdEncoding::BinaryCompressed => Self::BinaryCompressed,
        }
    }
}

/// One field as a PCD header declares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcdField {
    /// Name (`_` for padding).
    pub name: String,
    /// `I`, `U` or `F`.
    pub type_char: char,
    /// Bytes per element.
    pub size: usize,
    /// Elements per point.
    pub count: u64,
}

impl From<&FieldDef> for PcdField {
    fn from(f: &FieldDef) -> Self {
        let type_char = match f.kind {
            ValueKind::U8 | ValueKind::U16 | ValueKind::U32 | ValueKind::U64 => 'U',
            ValueKind::I8 | ValueKind::I16 | ValueKind::I32 | ValueKind::I64 => 'I',
            ValueKind::F32 | ValueKind::F64 => 'F',
        };
        Self {
            name: f.name.clone(),
            type_char,
            size: f.kind.byte_size(),
            count: f.count,
        }
    }
}
