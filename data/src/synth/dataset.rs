//! Writing generated frames to disk: the KITTI object layout, and drives in a KITTI-raw-like
//! layout. Frames are generated in parallel batches and written in order.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::frame::{Drive, FRAME_PERIOD, SynthConfig, SynthFrame, object_frame};
use super::seed::mix;
use super::stats::GenStats;
use crate::files::{io_error, write_bytes};
use crate::kitti::{format_labels, write_bin, write_calib, write_labels};
use crate::{Calib, Result};

/// Frames generated at once: enough to keep every core busy between the serial parts.
const BATCH: usize = 8;

fn create_dirs(root: &Path, dirs: &[&str]) -> Result<()> {
    for d in dirs {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(|e| io_error(&p, e))?;
    }
    Ok(())
}

/// Generates `frames` frames in order, in parallel batches, and hands each to `write`.
fn generate(
    frames: usize,
    make: impl Fn(u64) -> SynthFrame + Sync,
    mut write: impl FnMut(usize, &SynthFrame) -> Result<()>,
) -> Result<GenStats> {
    let mut stats = GenStats::default();
    for start in (0..frames).step_by(BATCH) {
        let end = (start + BATCH).min(frames);
        let batch: Vec<SynthFrame> = (start..end)
            .into_par_iter()
            .map(|i| make(i as u64))
            .collect();
        for (i, frame) in (start..end).zip(&batch) {
            write(i, frame)?;
            stats.add(frame);
        }
    }
    Ok(stats)
}

/// Writes a KITTI object dataset of `frames` independent scenes under `out`:
/// `training/{velodyne,label_2,calib}/NNNNNN.*` and `ImageSets/{train,val}.txt`, with a
/// `val_fraction` of the frames (chosen by the seed) in `val`. `on_frame` runs after each
/// frame is written.
pub fn write_object_dataset(
    out: &Path,
    cfg: &SynthConfig,
    frames: usize,
    val_fraction: f32,
    on_frame: &mut dyn FnMut(),
) -> Result<GenStats> {
    create_dirs(
        out,
        &[
            "training/velodyne",
            "training/label_2",
            "training/calib",
            "ImageSets",
        ],
    )?;
    let calib = Calib::kitti_default();
    let training = out.join("training");
    let stats = generate(
        frames,
        |i| object_frame(cfg, i),
        |i, frame| {
            let id = format!("{i:06}");
            write_bin(
                &training.join("velodyne").join(format!("{id}.bin")),
                &frame.cloud,
            )?;
            write_labels(
                &training.join("label_2").join(format!("{id}.txt")),
                &frame.labels(),
            )?;
            write_calib(&training.join("calib").join(format!("{id}.txt")), &calib)?;
            on_frame();
            Ok(())
        },
    )?;
    let (train, val) = split(cfg.seed, frames, val_fraction);
    let list = |ids: &[usize]| ids.iter().map(|i| format!("{i:06}\n")).collect::<String>();
    write_bytes(&out.join("ImageSets/train.txt"), list(&train).as_bytes())?;
    write_bytes(&out.join("ImageSets/val.txt"), list(&val).as_bytes())?;
    Ok(stats)
}

/// Train and val frame indices (each sorted): `round(frames · val_fraction)` frames drawn by
/// the seed go to val.
pub fn split(seed: u64, frames: usize, val_fraction: f32) -> (Vec<usize>, Vec<usize>) {
    let n_val = ((frames as f32 * val_fraction.clamp(0.0, 1.0)).round() as usize).min(frames);
    let mut order: Vec<usize> = (0..frames).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, 0x5b117)));
    let mut val = order[..n_val].to_vec();
    let mut train = order[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

/// KITTI raw's timestamp format, for a drive starting at a fixed date.
fn timestamp(frame: usize) -> String {
    let ns = frame as u64 * (f64::from(FRAME_PERIOD) * 1e6).round() as u64 * 1000;
    let secs = ns / 1_000_000_000;
    format!(
        "2011-09-26 12:{:02}:{:02}.{:09}",
        secs / 60 % 60,
        secs % 60,
        ns % 1_000_000_000
    )
}

/// Writes a drive of `frames` sweeps at 10 Hz under `out`, in a KITTI-raw-like layout:
///
/// - `velodyne_points/data/NNNNNNNNNN.bin` and `velodyne_points/timestamps.txt` (KITTI raw),
/// - `label_2/NNNNNNNNNN.txt`: KITTI object labels of each frame,
/// - `label_02/0000.txt`: the same objects in the KITTI tracking format (`frame track_id
///   type truncated occluded alpha bbox dimensions location rotation_y`), ids stable across
///   frames,
/// - `calib.txt`: the KITTI object calibration,
/// - `poses.txt`: per frame, the LiDAR pose in the street's frame as a row-major 3 × 4
///   matrix (KITTI odometry style).
pub fn write_drive(
    out: &Path,
    cfg: &SynthConfig,
    frames: usize,
    on_frame: &mut dyn FnMut(),
) -> Result<GenStats> {
    create_dirs(out, &["velodyne_points/data", "label_2", "label_02"])?;
    write_calib(&out.join("calib.txt"), &Calib::kitti_default())?;
    let drive = Drive::new(cfg);
    let mut ids: HashMap<u64, usize> = HashMap::new();
    let (mut tracking, mut poses, mut stamps) = (String::new(), String::new(), String::new());
    let stats = generate(
        frames,
        |i| drive.frame(i),
        |i, frame| {
            let name = format!("{i:010}");
            write_bin(
                &out.join("velodyne_points/data").join(format!("{name}.bin")),
                &frame.cloud,
            )?;
            write_labels(
                &out.join("label_2").join(format!("{name}.txt")),
                &frame.labels(),
            )?;
            for o in &frame.objects {
                let Some(label) = &o.label else { continue };
                let next = ids.len();
                let id = *ids.entry(o.track_key).or_insert(next);
                let _ = write!(
                    tracking,
                    "{i} {id} {}",
                    format_labels(std::slice::from_ref(label))
                );
            }
            let [x, y, z, yaw] = frame.pose;
            let (s, c) = yaw.sin_cos();
            let _ = writeln!(poses, "{c} {} 0 {x} {s} {c} 0 {y} 0 0 1 {z}", -s);
            let _ = writeln!(stamps, "{}", timestamp(i));
            on_frame();
            Ok(())
        },
    )?;
    write_bytes(&out.join("label_02/0000.txt"), tracking.as_bytes())?;
    write_bytes(&out.join("poses.txt"), poses.as_bytes())?;
    write_bytes(
        &out.join("velodyne_points/timestamps.txt"),
        stamps.as_bytes(),
    )?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_exact_and_disjoint() {
        let (train, val) = split(3, 10, 0.25);
        assert_eq!(val.len(), 3);
        assert_eq!(train.len(), 7);
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(split(3, 10, 0.25), (train, val));
    }

    #[test]
    fn timestamps_are_kitti_raw_at_10_hz() {
        assert_eq!(timestamp(0), "2011-09-26 12:00:00.000000000");
        assert_eq!(timestamp(13), "2011-09-26 12:00:01.300000000");
        assert_eq!(timestamp(6001), "2011-09-26 12:10:00.100000000");
    }
}
