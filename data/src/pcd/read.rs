//! Decoding PCD data sections into a [`PointCloud`].

use super::header::{Header, parse_header};
use super::lzf;
use super::{PcdEncoding, PcdField};
use crate::files::{line_error, read_bytes};
use crate::{DataError, ExtraField, PointCloud, Result};
use pcd_rs::{DataKind, FieldDef, ValueKind};
use std::borrow::Cow;
use std::path::Path;

/// A PCD file as read: the cloud (organized clouds flattened row by row, points with a
/// non-finite x, y, z or intensity dropped) and what the header said.
#[derive(Debug, Clone, PartialEq)]
pub struct PcdRead {
    /// The finite points.
    pub cloud: PointCloud,
    /// Points dropped because a coordinate or the intensity was NaN or infinite.
    pub dropped_non_finite: usize,
    /// Header WIDTH.
    pub width: u64,
    /// Header HEIGHT (> 1 for an organized cloud).
    pub height: u64,
    /// Encoding of the data section.
    pub encoding: PcdEncoding,
    /// The declared fields, padding included.
    pub fields: Vec<PcdField>,
}

/// Names accepted for the intensity column, by priority (Ouster clouds carry both
/// `intensity` and `reflectivity`: the second then stays an extra field).
const INTENSITY_NAMES: [&str; 3] = ["intensity", "i", "reflectivity"];

/// Reads a PCD file (ascii, binary or binary_compressed).
pub fn read_pcd(path: &Path) -> Result<PcdRead> {
    parse_pcd(&read_bytes(path)?, path)
}

/// Where one output column comes from: a field and an element of it.
struct Source {
    field: usize,
    element: usize,
}

/// Decodes the bytes of a PCD file; `path` names the source in errors.
pub fn parse_pcd(bytes: &[u8], path: &Path) -> Result<PcdRead> {
    let header = parse_header(bytes, path)?;
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            header
                .fields
                .iter()
                .position(|f| f.name.eq_ignore_ascii_case(n))
        })
    };
    let scalar = |name: &str, field: usize| {
        let f = &header.fields[field];
        if f.count == 1 {
            Ok(Source { field, element: 0 })
        } else {
            Err(line_error(
                path,
                header.fields_line,
                format!("field {name} has COUNT {}, expected 1", f.count),
            ))
        }
    };
    let mut core = Vec::with_capacity(3);
    for axis in ["x", "y", "z"] {
        let field = find(&[axis]).ok_or_else(|| {
            line_error(
                path,
                header.fields_line,
                format!("the PCD has no {axis} field (x, y and z are required)"),
            )
        })?;
        core.push(scalar(axis, field)?);
    }
    let intensity = find(&INTENSITY_NAMES)
        .map(|f| scalar("intensity", f))
        .transpose()?;
    let used: Vec<usize> = core.iter().chain(&intensity).map(|s| s.field).collect();
    let mut extras = Vec::new();
    for (i, f) in header.fields.iter().enumerate() {
        if f.name == "_" || used.contains(&i) {
            continue;
        }
        for element in 0..f.count as usize {
            let name = if f.count == 1 {
                f.name.clone()
            } else {
                format!("{}_{element}", f.name)
            };
            extras.push((name, Source { field: i, element }));
        }
    }

    let columns = decode(bytes, &header, path)?;
    let mut cloud = PointCloud::default();
    let n = header.points;
    let as_f32 = |s: &Source| columns.f32(s, n);
    cloud.x = as_f32(&core[0]);
    cloud.y = as_f32(&core[1]);
    cloud.z = as_f32(&core[2]);
    cloud.intensity = intensity.as_ref().map_or_else(|| vec![0.0; n], as_f32);
    cloud.extra = extras
        .iter()
        .map(|(name, s)| ExtraField {
            name: name.clone(),
            values: columns.f64(s, n),
        })
        .collect();
    let dropped_non_finite = cloud.retain_finite();
    Ok(PcdRead {
        cloud,
        dropped_non_finite,
        width: header.width,
        height: header.height,
        encoding: PcdEncoding::from(header.data),
        fields: header.fields.iter().map(PcdField::from).collect(),
    })
}

/// Where each element of a field lives in the data section: element `e` of point `i` is at
/// `offset + i * stride + e * size`.
#[derive(Clone, Copy)]
struct Layout {
    offset: usize,
    stride: usize,
    kind: ValueKind,
}

/// The data section, indexed so that each output column is converted once, straight from
/// its source.
enum Columns<'a> {
    /// Binary data: row-major (`binary`) or column-major (decompressed `binary_compressed`).
    /// `None` marks a padding field absent from the data.
    Bytes {
        data: Cow<'a, [u8]>,
        layout: Vec<Option<Layout>>,
    },
    /// Ascii tokens, row-major; `first_token[f]` is where field `f` starts in a row.
    Text {
        values: Vec<f64>,
        per_point: usize,
        first_token: Vec<usize>,
    },
}

fn read_value(kind: ValueKind, b: &[u8]) -> f64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    match kind {
        ValueKind::U8 => a[0] as f64,
        ValueKind::U16 => u16::from_le_bytes([a[0], a[1]]) as f64,
        ValueKind::U32 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
        ValueKind::U64 => u64::from_le_bytes(a) as f64,
        ValueKind::I8 => a[0] as i8 as f64,
        ValueKind::I16 => i16::from_le_bytes([a[0], a[1]]) as f64,
        ValueKind::I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
        ValueKind::I64 => i64::from_le_bytes(a) as f64,
        ValueKind::F32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
        ValueKind::F64 => f64::from_le_bytes(a),
    }
}

impl Columns<'_> {
    fn f64(&self, s: &Source, n: usize) -> Vec<f64> {
        self.column(s, n, read_value, |v| v)
    }

    fn f32(&self, s: &Source, n: usize) -> Vec<f32> {
        // F32 sources (nearly every LiDAR PCD) skip the f64 round trip.
        let from_bytes = |kind, b: &[u8]| match kind {
            ValueKind::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            _ => read_value(kind, b) as f32,
        };
        self.column(s, n, from_bytes, |v| v as f32)
    }

    fn column<T>(
        &self,
        s: &Source,
        n: usize,
        from_bytes: impl Fn(ValueKind, &[u8]) -> T,
        from_text: impl Fn(f64) -> T,
    ) -> Vec<T> {
        if n == 0 {
            return Vec::new();
        }
        match self {
            Columns::Bytes { data, layout } => {
                let l = layout[s.field].expect("fields read into columns are never padding");
                let size = l.kind.byte_size();
                let first = l.offset + s.element * size;
                data[first..]
                    .chunks(l.stride)
                    .take(n)
                    .map(|r| from_bytes(l.kind, &r[..size]))
                    .collect()
            }
            Columns::Text {
                values,
                per_point,
                first_token,
            } => {
                let t = first_token[s.field] + s.element;
                values
                    .iter()
                    .skip(t)
                    .step_by(*per_point)
                    .take(n)
                    .map(|&v| from_text(v))
                    .collect()
            }
        }
    }
}

fn bytes_error(path: &Path, offset: usize, msg: String) -> DataError {
    DataError::Bytes {
        path: path.to_path_buf(),
        offset: offset as u64,
        msg,
    }
}

fn field_bytes(f: &FieldDef) -> usize {
    f.kind.byte_size() * f.count as usize
}

fn decode<'a>(bytes: &'a [u8], h: &Header, path: &Path) -> Result<Columns<'a>> {
    let data = &bytes[h.data_offset..];
    let n = h.points;
    let all: usize = h.fields.iter().map(field_bytes).sum();
    let short = |have: usize, need: usize| {
        bytes_error(
            path,
            bytes.len(),
            format!(
                "the data section is {have} bytes, shorter than the {need} the header declares"
            ),
        )
    };
    match h.data {
        DataKind::Binary => {
            let need = n
                .checked_mul(all)
                .ok_or_else(|| short(data.len(), usize::MAX))?;
            if data.len() < need {
                return Err(short(data.len(), need));
            }
            let mut offset = 0;
            let layout = h
                .fields
                .iter()
                .map(|f| {
                    let l = Layout {
                        offset,
                        stride: all,
                        kind: f.kind,
                    };
                    offset += field_bytes(f);
                    Some(l)
                })
                .collect();
            Ok(Columns::Bytes {
                data: Cow::Borrowed(&data[..need]),
                layout,
            })
        }
        DataKind::BinaryCompressed => {
            let word = |at: usize| {
                data.get(at..at + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or_else(|| short(data.len(), 8))
            };
            let (compressed, uncompressed) = (word(0)?, word(4)?);
            let stream = data
                .get(8..8 + compressed)
                .ok_or_else(|| short(data.len(), 8 + compressed))?;
            // PCL leaves `_` padding out of compressed data, though its header lists it.
            let unpadded: usize = h
                .fields
                .iter()
                .filter(|f| f.name != "_")
                .map(field_bytes)
                .sum();
            let keep_padding = if n.checked_mul(unpadded) == Some(uncompressed) {
                false
            } else if n.checked_mul(all) == Some(uncompressed) {
                true
            } else {
                return Err(bytes_error(
                    path,
                    h.data_offset + 4,
                    format!(
                        "uncompressed size {uncompressed} does not match {n} points of {unpadded} bytes"
                    ),
                ));
            };
            let unpacked = lzf::decompress(stream, uncompressed).map_err(|(at, msg)| {
                bytes_error(
                    path,
                    h.data_offset + 8 + at,
                    format!("corrupt compressed data: {msg}"),
                )
            })?;
            let mut offset = 0;
            let layout = h
                .fields
                .iter()
                .map(|f| {
                    if f.name == "_" && !keep_padding {
                        return None;
                    }
                    let stride = field_bytes(f);
                    let l = Layout {
                        offset,
                        stride,
                        kind: f.kind,
                    };
                    offset += stride * n;
                    Some(l)
                })
                .collect();
            Ok(Columns::Bytes {
                data: Cow::Owned(unpacked),
                layout,
            })
        }
        DataKind::Ascii => decode_text(data, h, path),
    }
}

fn decode_text<'a>(data: &[u8], h: &Header, path: &Path) -> Result<Columns<'a>> {
    let text = std::str::from_utf8(data).map_err(|e| {
        bytes_error(
            path,
            h.data_offset + e.valid_up_to(),
            "ascii PCD data is not text".to_string(),
        )
    })?;
    let with_padding: usize = h.fields.iter().map(|f| f.count as usize).sum();
    let without_padding: usize = h
        .fields
        .iter()
        .filter(|f| f.name != "_")
        .map(|f| f.count as usize)
        .sum();
    let n = h.points;
    let mut values = Vec::with_capacity(n * with_padding);
    let mut per_point = None;
    let mut rows = 0;
    let mut line = h.lines;
    for row in text.lines() {
        line += 1;
        if rows == n {
            break;
        }
        let tokens: Vec<&str> = row.split_ascii_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        // PCL's ascii writer leaves padding out but its reader expects it: accept both.
        let expected = *per_point.get_or_insert(if tokens.len() == without_padding {
            without_padding
        } else {
            with_padding
        });
        if tokens.len() != expected {
            return Err(line_error(
                path,
                line,
                format!("expected {expected} values, found {}", tokens.len()),
            ));
        }
        for t in tokens {
            let v: f64 = t
                .parse()
                .map_err(|_| line_error(path, line, format!("cannot parse {t:?} as a number")))?;
            values.push(v);
        }
        rows += 1;
    }
    if rows < n {
        return Err(line_error(
            path,
            line,
            format!("the data section has {rows} points, shorter than the {n} the header declares"),
        ));
    }
    let per_point = per_point.unwrap_or(with_padding);
    let skip_padding = per_point != with_padding;
    let mut next = 0;
    let first_token = h
        .fields
        .iter()
        .map(|f| {
            let at = next;
            if !(skip_padding && f.name == "_") {
                next += f.count as usize;
            }
            at
        })
        .collect();
    Ok(Columns::Text {
        values,
        per_point,
        first_token,
    })
}
