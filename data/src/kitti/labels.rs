//! KITTI `label_2` files and the result format the official devkit evaluates (the same 15
//! columns plus a 16th, the score).

use crate::files::{line_error, parse_token, read_text, write_bytes};
use crate::{ObjectLabel, Result};
use std::fmt::Write as _;
use std::path::Path;

/// Reads a `label_2` or result file; blank lines are skipped.
pub fn read_labels(path: &Path) -> Result<Vec<ObjectLabel>> {
    parse_labels(&read_text(path)?, path)
}

/// Parses the text of a `label_2` or result file; `path` names the source in errors.
pub fn parse_labels(text: &str, path: &Path) -> Result<Vec<ObjectLabel>> {
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
        if !tokens.is_empty() {
            labels.push(parse_label_tokens(&tokens, path, i + 1)?);
        }
    }
    Ok(labels)
}

const COLUMNS: [&str; 16] = [
    "type",
    "truncated",
    "occluded",
    "alpha",
    "bbox left",
    "bbox top",
    "bbox right",
    "bbox bottom",
    "height",
    "width",
    "length",
    "location x",
    "location y",
    "location z",
    "rotation_y",
    "score",
];

fn parse_label_tokens(tokens: &[&str], path: &Path, line: usize) -> Result<ObjectLabel> {
    if tokens.len() != 15 && tokens.len() != 16 {
        return Err(line_error(
            path,
            line,
            format!(
                "expected 15 columns (16 with a score), found {}",
                tokens.len()
            ),
        ));
    }
    let f = |i: usize| parse_token::<f32>(tokens[i], path, line, COLUMNS[i]);
    // Some writers print the occlusion state as a float ("0.00"): accept integral values.
    let occluded_f = f(2)?;
    if occluded_f.fract() != 0.0 {
        return Err(line_error(
            path,
            line,
            format!("occluded: {:?} is not an integer", tokens[2]),
        ));
    }
    Ok(ObjectLabel {
        kind: tokens[0].to_string(),
        truncated: f(1)?,
        occluded: occluded_f as i32,
        alpha: f(3)?,
        bbox: [f(4)?, f(5)?, f(6)?, f(7)?],
        hwl: [f(8)?, f(9)?, f(10)?],
        location: [f(11)?, f(12)?, f(13)?],
        rotation_y: f(14)?,
        score: if tokens.len() == 16 {
            Some(f(15)?)
        } else {
            None
        },
    })
}

/// Formats labels one per line; floats use the shortest text that reads back to the same
/// f32, so a write → read round trip is exact. A `score` becomes the 16th column.
pub fn format_labels(labels: &[ObjectLabel]) -> String {
    let mut out = String::new();
    for l in labels {
        let _ = write!(out, "{} {} {} {}", l.kind, l.truncated, l.occluded, l.alpha);
        for v in l.bbox.iter().chain(&l.hwl).chain(&l.location) {
            let _ = write!(out, " {v}");
        }
        let _ = write!(out, " {}", l.rotation_y);
        if let Some(s) = l.score {
            let _ = write!(out, " {s}");
        }
        out.push('\n');
    }
    out
}

/// Writes a `label_2` file, or a result file when the labels carry scores.
pub fn write_labels(path: &Path, labels: &[ObjectLabel]) -> Result<()> {
    write_bytes(path, format_labels(labels).as_bytes())
}
