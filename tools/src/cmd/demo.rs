//! The bundled demo model and the default generated dataset, which subcommands use when
//! no `--model` / `--data` is given: a fresh clone runs its main job with no arguments.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::synth::{LidarModel, SynthConfig, write_object_dataset};

/// Where the bundled model lives in the repository.
const MODEL_DIR: &str = "models/pointpillars-demo";
/// The default dataset: `lidarq gen --frames 640 --seed 2 --val-fraction 0.8` (512 val
/// frames, 128 train frames for calibration), the val set of the bundled model's
/// TRAINING.md.
const FRAMES: usize = 640;
const SEED: u64 = 2;
const VAL_FRACTION: f32 = 0.8;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `--model`, else the bundled model.
pub fn model_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = arg {
        return Ok(dir.to_path_buf());
    }
    let dir = workspace_root().join(MODEL_DIR);
    anyhow::ensure!(
        dir.join("model.json").is_file(),
        "no --model given and the bundled model is not at {} (run from a lidarq checkout)",
        dir.display()
    );
    Ok(dir)
}

/// `--data`, else the default dataset, generated on first use into `$LIDARQ_CACHE` (default
/// `.cache/lidarq` in the checkout).
pub fn data_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = arg {
        return Ok(dir.to_path_buf());
    }
    let cache = std::env::var_os("LIDARQ_CACHE")
        .map_or_else(|| workspace_root().join(".cache/lidarq"), PathBuf::from);
    let dir = cache.join(format!("gen-{FRAMES}-seed{SEED}"));
    if dir.join("ImageSets/val.txt").is_file() {
        return Ok(dir);
    }
    let partial = cache.join(format!("gen-{FRAMES}-seed{SEED}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    eprintln!(
        "generating the default dataset ({FRAMES} frames, seed {SEED}) into {} (once)",
        dir.display()
    );
    let bar = ProgressBar::new(FRAMES as u64).with_style(ProgressStyle::with_template(
        "{msg:>10} {bar:30} {pos}/{len} frames [{elapsed} < {eta}]",
    )?);
    bar.set_message("generate");
    let cfg = SynthConfig {
        lidar: LidarModel::hdl64(),
        seed: SEED,
    };
    let start = Instant::now();
    write_object_dataset(&partial, &cfg, FRAMES, VAL_FRACTION, &mut || bar.inc(1))
        .with_context(|| format!("generating into {}", partial.display()))?;
    bar.finish_and_clear();
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    eprintln!("generated in {:.0} s", start.elapsed().as_secs_f64());
    Ok(dir)
}
