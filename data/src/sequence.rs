//! Drive logs as frame sequences: the point-cloud files of one folder in name order, with
//! timestamps from a KITTI-raw `timestamps.txt` when there is one, else a fixed rate.
//!
//! KITTI raw keeps scans in `velodyne_points/data/` and their times in
//! `velodyne_points/timestamps.txt`; the folder given may be either of the two.

use crate::Result;
use crate::cloud_file::{CLOUD_SUFFIXES, CloudFile, read_cloud};
use crate::files::{file_error, line_error, list_files, parse_token, read_text};
use std::path::{Path, PathBuf};

/// Where the timestamps of a sequence came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// A `timestamps.txt` file.
    File(PathBuf),
    /// Frame `i` at `i / hz` seconds.
    FixedRate(f64),
}

/// The frames of a drive log, loaded on demand.
#[derive(Debug, Clone)]
pub struct FrameSequence {
    files: Vec<PathBuf>,
    timestamps: Vec<f64>,
    time_source: TimeSource,
}

/// One frame of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Position in the sequence.
    pub index: usize,
    /// Seconds since the first frame.
    pub timestamp: f64,
    /// The file read.
    pub path: PathBuf,
    /// The points and what reading them dropped.
    pub data: CloudFile,
}

impl FrameSequence {
    /// Opens a folder of `.bin`, `.pcd.bin` or `.pcd` files (or a KITTI-raw
    /// `velodyne_points` folder); `fallback_hz` times the frames when no `timestamps.txt`
    /// is found beside them. Timestamps are seconds since the first frame.
    pub fn open(dir: &Path, fallback_hz: f64) -> Result<Self> {
        let data_dir = if dir.join("data").is_dir() {
            dir.join("data")
        } else {
            dir.to_path_buf()
        };
        let files = list_files(&data_dir, &CLOUD_SUFFIXES)?;
        if files.is_empty() {
            return Err(file_error(
                dir,
                "no .bin, .pcd.bin or .pcd file in the folder",
            ));
        }
        let in_raw_layout = data_dir.file_name().is_some_and(|n| n == "data");
        let mut candidates = vec![data_dir.join("timestamps.txt")];
        if in_raw_layout {
            candidates.push(data_dir.join("../timestamps.txt"));
        }
        let stamp_file = candidates.into_iter().find(|p| p.is_file());
        let (timestamps, time_source) = match stamp_file {
            Some(path) => {
                let stamps = parse_timestamps(&read_text(&path)?, &path)?;
                if stamps.len() != files.len() {
                    return Err(file_error(
                        &path,
                        format!(
                            "{} timestamps for {} frames in {}",
                            stamps.len(),
                            files.len(),
                            data_dir.display()
                        ),
                    ));
                }
                (stamps, TimeSource::File(path))
            }
            None => {
                if !(fallback_hz.is_finite() && fallback_hz > 0.0) {
                    return Err(file_error(
                        dir,
                        format!(
                            "no timestamps.txt and the frame rate {fallback_hz} is not positive"
                        ),
                    ));
                }
                (
                    (0..files.len()).map(|i| i as f64 / fallback_hz).collect(),
                    TimeSource::FixedRate(fallback_hz),
                )
            }
        };
        Ok(Self {
            files,
            timestamps,
            time_source,
        })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there is no frame (never, for an opened sequence).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The frame files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.files
    }

    /// Seconds since the first frame, per frame.
    pub fn timestamps(&self) -> &[f64] {
        &self.timestamps
    }

    /// Where the timestamps came from.
    pub fn time_source(&self) -> &TimeSource {
        &self.time_source
    }

    /// Reads frame `index`; `None` past the end.
    pub fn frame(&self, index: usize) -> Option<Result<Frame>> {
        let path = self.files.get(index)?;
        Some(read_cloud(path).map(|data| Frame {
            index,
            timestamp: self.timestamps[index],
            path: path.clone(),
            data,
        }))
    }

    /// Reads the frames in order.
    pub fn frames(&self) -> impl Iterator<Item = Result<Frame>> + '_ {
        (0..self.len()).filter_map(|i| self.frame(i))
    }
}

/// Parses KITTI-raw timestamps (`2011-09-26 13:02:25.964389445`, one per line) or plain
/// seconds, into seconds since the first.
fn parse_timestamps(text: &str, path: &Path) -> Result<Vec<f64>> {
    let mut stamps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let t = match line.split_once(' ') {
            Some((date, time)) => {
                date_seconds(date, path, i + 1)? + clock_seconds(time, path, i + 1)?
            }
            None => parse_token::<f64>(line, path, i + 1, "timestamp")?,
        };
        stamps.push(t);
    }
    let first = stamps.first().copied().unwrap_or(0.0);
    Ok(stamps.into_iter().map(|t| t - first).collect())
}

/// Seconds from 1970-01-01 to the start of a `YYYY-MM-DD` day (proleptic Gregorian).
fn date_seconds(date: &str, path: &Path, line: usize) -> Result<f64> {
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(line_error(
            path,
            line,
            format!("timestamp date {date:?} is not YYYY-MM-DD"),
        ));
    };
    let y: i64 = parse_token(y, path, line, "year")?;
    let m: i64 = parse_token(m, path, line, "month")?;
    let d: i64 = parse_token(d, path, line, "day")?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(line_error(
            path,
            line,
            format!("timestamp date {date:?} is not a valid date"),
        ));
    }
    // Days from civil date (H. Hinnant's algorithm), March-based years.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) as f64 * 86_400.0)
}

/// Seconds since midnight of an `HH:MM:SS.fraction` time.
fn clock_seconds(time: &str, path: &Path, line: usize) -> Result<f64> {
    let parts: Vec<&str> = time.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return Err(line_error(
            path,
            line,
            format!("timestamp time {time:?} is not HH:MM:SS"),
        ));
    };
    let h: f64 = parse_token(h, path, line, "hours")?;
    let m: f64 = parse_token(m, path, line, "minutes")?;
    let s: f64 = parse_token(s, path, line, "seconds")?;
    Ok(h * 3600.0 + m * 60.0 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitti_raw_timestamps_cross_midnight_and_months() {
        let text = "2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.068000000\n\n2011-09-27 00:00:00.5\n";
        let t = parse_timestamps(text, Path::new("t.txt")).unwrap();
        assert_eq!(t[0], 0.0);
        assert!((t[1] - 0.103610555).abs() < 1e-6, "{}", t[1]);
        assert!(
            (t[2] - (86_400.0 - (13.0 * 3600.0 + 2.0 * 60.0 + 25.964389445) + 0.5)).abs() < 1e-6
        );
        let p = Path::new("t.txt");
        assert_eq!(date_seconds("1970-01-01", p, 1).unwrap(), 0.0);
        assert_eq!(date_seconds("2000-03-01", p, 1).unwrap(), 951_868_800.0);
        assert!(matches!(
            parse_timestamps("2011-09-26 13:xx:00\n", p),
            Err(crate::DataError::Line { line: 1, .. })
        ));
    }
}
