//! `lidarq import CHECKPOINT --out DIR [--config FILE | --preset kitti]`: turns an OpenPCDet
//! checkpoint into a model folder (`model.safetensors` + `model.json`) and checks that it
//! loads: every tensor the config needs present, with the right shape.
//!
//! The `.pth` → safetensors step runs `tools/train/import_openpcdet.py` (PyTorch's pickle
//! format is read by PyTorch itself; see that script for why).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use lidarq_detector::{CONFIG_FILE, Model, ModelConfig, WEIGHTS_FILE};

/// Arguments of `lidarq import`.
#[derive(clap::Args)]
pub struct Args {
    /// OpenPCDet checkpoint (`.pth`, with `model_state`) or a saved state_dict.
    pub checkpoint: PathBuf,
    /// Model folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Model config (JSON) matching the checkpoint; default the OpenPCDet KITTI preset.
    #[arg(long, conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// Built-in config to write when `--config` is not given.
    #[arg(long, value_parser = ["kitti"], default_value = "kitti")]
    pub preset: String,
    /// Python interpreter with torch and safetensors installed.
    #[arg(long, default_value = "python3")]
    pub python: String,
}

/// The converter script, found from this crate's source folder.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/train/import_openpcdet.py");

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => ModelConfig::from_file(path)?,
        None => ModelConfig::kitti(),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let weights = args.out.join(WEIGHTS_FILE);
    let status = Command::new(&args.python)
        .arg(SCRIPT)
        .arg(&args.checkpoint)
        .arg(&weights)
        .status()
        .with_context(|| format!("running {} {SCRIPT}", args.python))?;
    if !status.success() {
        bail!(
            "{SCRIPT} failed ({status}); it needs torch and safetensors (pip install -r tools/train/requirements.txt)"
        );
    }
    std::fs::write(
        args.out.join(CONFIG_FILE),
        serde_json::to_string_pretty(&config)? + "\n",
    )
    .with_context(|| format!("writing {}", args.out.join(CONFIG_FILE).display()))?;
    let model = Model::load(&args.out)?;
    println!(
        "{}: {} layers, {:.1} GFLOP per frame",
        args.out.display(),
        model.graph.layers.len(),
        model.graph.dense_flops() / 1e9
    );
    Ok(())
}
