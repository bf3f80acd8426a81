//! The PCD header (`VERSION`, `FIELDS`, `SIZE`, `TYPE`, `COUNT`, `WIDTH`, `HEIGHT`,
//! `VIEWPOINT`, `POINTS`, `DATA`), parsed into pcd-rs's schema types. Parsed here rather than
//! by pcd-rs so that every error names the line it concerns; it accepts what PCL and other
//! writers produce: `#` comments, `VERSION .7`, `COLUMNS` for `FIELDS`, a missing `COUNT`
//! (1 each) or `POINTS` (WIDTH × HEIGHT), `COUNT 0` (read as 1, like PCL), CRLF line ends,
//! repeated `_` padding fields.

use crate::Result;
use crate::files::{line_error, parse_token};
use pcd_rs::{DataKind, FieldDef, ValueKind};
use std::path::Path;

/// A parsed header and where the data section starts.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub fields: Vec<FieldDef>,
    /// Line of `FIELDS`, for errors about the field list.
    pub fields_line: usize,
    pub width: u64,
    pub height: u64,
    pub points: usize,
    pub data: DataKind,
    /// Number of header lines, `DATA` included.
    pub lines: usize,
    /// Byte offset of the data section.
    pub data_offset: usize,
}

/// Header entries collected before they are checked against each other.
#[derive(Default)]
struct Entries<'a> {
    fields: Option<(usize, Vec<&'a str>)>,
    size: Option<(usize, Vec<&'a str>)>,
    kind: Option<(usize, Vec<&'a str>)>,
    count: Option<(usize, Vec<&'a str>)>,
    width: Option<(usize, Vec<&'a str>)>,
    height: Option<(usize, Vec<&'a str>)>,
    points: Option<(usize, Vec<&'a str>)>,
}

pub(crate) fn parse_header(bytes: &[u8], path: &Path) -> Result<Header> {
    let mut entries = Entries::default();
    let mut start = 0;
    let mut line = 0;
    loop {
        if start >= bytes.len() {
            return Err(line_error(
                path,
                line,
                "bad PCD header: it ends before a DATA line",
            ));
        }
        line += 1;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| start + p + 1);
        let text = std::str::from_utf8(&bytes[start..end])
            .map_err(|_| line_error(path, line, "bad PCD header: the line is not text"))?;
        start = end;
        let content = text.split('#').next().unwrap_or_default();
        let mut tokens = content.split_ascii_whitespace();
        let Some(key) = tokens.next() else { continue };
        let values: Vec<&str> = tokens.collect();
        let slot = match key.to_ascii_uppercase().as_str() {
            "VERSION" | "VIEWPOINT" => continue,
            "FIELDS" | "COLUMNS" => &mut entries.fields,
            "SIZE" => &mut entries.size,
            "TYPE" => &mut entries.kind,
            "COUNT" => &mut entries.count,
            "WIDTH" => &mut entries.width,
            "HEIGHT" => &mut entries.height,
            "POINTS" => &mut entries.points,
            "DATA" => {
                let data = match values.as_slice() {
                    [kind] if kind.eq_ignore_ascii_case("ascii") => DataKind::Ascii,
                    [kind] if kind.eq_ignore_ascii_case("binary") => DataKind::Binary,
                    [kind] if kind.eq_ignore_ascii_case("binary_compressed") => {
                        DataKind::BinaryCompressed
                    }
                    _ => {
                        return Err(line_error(
                            path,
                            line,
                            format!(
                                "bad PCD header: DATA must be ascii, binary or binary_compressed, found {values:?}"
                            ),
                        ));
                    }
                };
                return entries.finish(path, line, data, start);
            }
            // Unknown entries are skipped, as PCL does.
            _ => continue,
        };
        *slot = Some((line, values));
    }
}

fn single_number<T: std::str::FromStr>(
    entry: &Option<(usize, Vec<&str>)>,
    key: &str,
    path: &Path,
) -> Result<Option<T>> {
    match entry {
        None => Ok(None),
        Some((line, values)) => match values.as_slice() {
            [v] => parse_token(v, path, *line, key).map(Some),
            _ => Err(line_error(
                path,
                *line,
                format!(
                    "bad PCD header: {key} takes one value, found {}",
                    values.len()
                ),
            )),
        },
    }
}

fn value_kind(type_char: &str, size: u64) -> Option<ValueKind> {
    Some(match (type_char, size) {
        ("I", 1) => ValueKind::I8,
        ("I", 2) => ValueKind::I16,
        ("I", 4) => ValueKind::I32,
        ("I", 8) => ValueKind::I64,
        ("U", 1) => ValueKind::U8,
        ("U", 2) => ValueKind::U16,
        ("U", 4) => ValueKind::U32,
        ("U", 8) => ValueKind::U64,
        ("F", 4) => ValueKind::F32,
        ("F", 8) => ValueKind::F64,
        _ => return None,
    })
}

impl Entries<'_> {
    fn finish(
        self,
        path: &Path,
        data_line: usize,
        data: DataKind,
        data_offset: usize,
    ) -> Result<Header> {
        let missing = |key: &str| {
            line_error(
                path,
                data_line,
                format!("bad PCD header: no {key} entry before DATA"),
            )
        };
        let (fields_line, names) = self.fields.ok_or_else(|| missing("FIELDS"))?;
        let (size_line, sizes) = self.size.ok_or_else(|| missing("SIZE"))?;
        let (type_line, types) = self.kind.ok_or_else(|| missing("TYPE"))?;
        let n = names.len();
        if n == 0 {
            return Err(line_error(
                path,
                fields_line,
                "bad PCD header: FIELDS lists no field",
            ));
        }
        let same_length = |line: usize, key: &str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(line_error(
                    path,
                    line,
                    format!("bad PCD header: {key} has {len} values but FIELDS has {n}"),
                ))
            }
        };
        same_length(size_line, "SIZE", sizes.len())?;
        same_length(type_line, "TYPE", types.len())?;
        let counts: Vec<u64> = match &self.count {
            Some((line, values)) => {
                same_length(*line, "COUNT", values.len())?;
                values
                    .iter()
                    .map(|v| parse_token::<u64>(v, path, *line, "COUNT").map(|c| c.max(1)))
                    .collect::<Result<_>>()?
            }
            None => vec![1; n],
        };
        let mut fields = Vec::with_capacity(n);
        for i in 0..n {
            let name = names[i];
            if name != "_" && names[..i].contains(&name) {
                return Err(line_error(
                    path,
                    fields_line,
                    format!("bad PCD header: field {name:?} appears twice"),
                ));
            }
            let size: u64 = parse_token(sizes[i], path, size_line, "SIZE")?;
            let kind = value_kind(types[i], size).ok_or_else(|| {
                line_error(
                    path,
                    type_line,
                    format!(
                        "unsupported PCD field type: field {name:?} has TYPE {} with SIZE {size}",
                        types[i]
                    ),
                )
            })?;
            fields.push(FieldDef {
                name: name.to_string(),
                kind,
                count: counts[i],
            });
        }
        let width: u64 =
            single_number(&self.width, "WIDTH", path)?.ok_or_else(|| missing("WIDTH"))?;
        let height: u64 = single_number(&self.height, "HEIGHT", path)?.unwrap_or(1);
        let points = match single_number::<u64>(&self.points, "POINTS", path)? {
            Some(p) => p,
            None => width.checked_mul(height).ok_or_else(|| missing("POINTS"))?,
        };
        let points = usize::try_from(points).map_err(|_| {
            line_error(
                path,
                data_line,
                format!("bad PCD header: {points} points is too many"),
            )
        })?;
        Ok(Header {
            fields,
            fields_line,
            width,
            height,
            points,
            data,
            lines: data_line,
            data_offset,
        })
    }
}
