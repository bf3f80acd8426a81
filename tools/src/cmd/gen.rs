//! `lidarq gen`: write a synthetic KITTI-layout dataset or a 10 Hz drive.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::synth::{LidarModel, SynthConfig, write_drive, write_object_dataset};

/// Arguments of `lidarq gen`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of frames.
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write one drive (KITTI-raw-like layout, 10 Hz) instead of independent scenes.
    #[arg(long)]
    pub sequence: bool,
    /// LiDAR beams: 32, 64 (HDL-64E, as on the KITTI car) or 128.
    #[arg(long, default_value_t = 64)]
    pub beams: usize,
    /// Fraction of the frames listed in ImageSets/val.txt (object datasets only).
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let lidar = LidarModel::with_beams(args.beams)
        .with_context(|| format!("--beams must be 32, 64 or 128, got {}", args.beams))?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.val_fraction),
        "--val-fraction must be in [0, 1], got {}",
        args.val_fraction
    );
    let cfg = SynthConfig {
        lidar,
        seed: args.seed,
    };
    let bar = ProgressBar::new(args.frames as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} frames  {per_sec}  eta {eta}",
    )?);
    let started = Instant::now();
    let mut tick = || bar.inc(1);
    let stats = if args.sequence {
        write_drive(&args.out, &cfg, args.frames, &mut tick)
    } else {
        write_object_dataset(&args.out, &cfg, args.frames, args.val_fraction, &mut tick)
    }
    .with_context(|| format!("generating into {}", args.out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} in {secs:.1} s ({:.1} frames/s)",
        args.out.display(),
        args.frames as f64 / secs.max(1e-9)
    );
    print!("{stats}");
    Ok(())
}
