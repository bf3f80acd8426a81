//! KITTI object-benchmark calib files: `KEY: v1 v2 ...` lines for P0-P3 (3×4), R0_rect
//! (3×3), Tr_velo_to_cam and Tr_imu_to_velo (3×4), row-major. The tracking benchmark's
//! spellings (`R_rect`, `Tr_velo_cam`, `Tr_imu_velo`, no colon) are accepted too.

use crate::files::{file_error, line_error, parse_token, read_text, write_bytes};
use crate::{Calib, Result};
use nalgebra::{Matrix3, Matrix3x4};
use std::fmt::Write as _;
use std::path::Path;

/// Keys in file order, their accepted aliases and their number of values.
const KEYS: [(&str, &[&str], usize); 7] = [
    ("P0", &[], 12),
    ("P1", &[], 12),
    ("P2", &[], 12),
    ("P3", &[], 12),
    ("R0_rect", &["R_rect"], 9),
    ("Tr_velo_to_cam", &["Tr_velo_cam"], 12),
    ("Tr_imu_to_velo", &["Tr_imu_velo"], 12),
];

/// Reads a KITTI calib file.
pub fn read_calib(path: &Path) -> Result<Calib> {
    parse_calib(&read_text(path)?, path)
}

/// Parses the text of a KITTI calib file; `path` names the source in errors. Unknown keys
/// are ignored; a missing key is an error.
pub fn parse_calib(text: &str, path: &Path) -> Result<Calib> {
    let mut values: [Option<Vec<f64>>; 7] = Default::default();
    for (i, line) in text.lines().enumerate() {
        let mut tokens = line.split_ascii_whitespace();
        let Some(key) = tokens.next() else { continue };
        let key = key.trim_end_matches(':');
        let Some(slot) = KEYS
            .iter()
            .position(|(k, aliases, _)| *k == key || aliases.contains(&key))
        else {
            continue;
        };
        let nums = tokens
            .map(|t| parse_token::<f64>(t, path, i + 1, key))
            .collect::<Result<Vec<_>>>()?;
        if nums.len() != KEYS[slot].2 {
            return Err(line_error(
                path,
                i + 1,
                format!(
                    "{key}: expected {} values, found {}",
                    KEYS[slot].2,
                    nums.len()
                ),
            ));
        }
        values[slot] = Some(nums);
    }
    let mut take = |slot: usize| {
        values[slot]
            .take()
            .ok_or_else(|| file_error(path, format!("calib key {} is missing", KEYS[slot].0)))
    };
    let m34 = |v: Vec<f64>| Matrix3x4::from_row_slice(&v);
    Ok(Calib {
        p: [m34(take(0)?), m34(take(1)?), m34(take(2)?), m34(take(3)?)],
        r0_rect: Matrix3::from_row_slice(&take(4)?),
        tr_velo_to_cam: m34(take(5)?),
        tr_imu_to_velo: m34(take(6)?),
    })
}

/// Formats a calib file; values use the shortest text that reads back to the same f64.
pub fn format_calib(calib: &Calib) -> String {
    let mut out = String::new();
    for (key, rows) in calib.named_rows() {
        let _ = write!(out, "{key}:");
        for v in rows.iter().flatten() {
            let _ = write!(out, " {v:e}");
        }
        out.push('\n');
    }
    out
}

/// Writes a KITTI calib file.
pub fn write_calib(path: &Path, calib: &Calib) -> Result<()> {
    write_bytes(path, format_calib(calib).as_bytes())
}
