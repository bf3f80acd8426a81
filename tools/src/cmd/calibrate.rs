//! `lidarq calibrate --model DIR|--preset kitti --data DIR [--frames 64] [--method kl|percentile|mse|minmax]
//! [--no-sparse] [--plan PLAN] [--mode static|dynamic|fp16] --out FILE [--report FILE.json]`:
//! runs the float model over the first frames of a KITTI dataset's train split, picks
//! activation ranges, writes the quantized model artifact (one safetensors file) and prints
//! a per-layer table (weight and activation ranges, fraction clipped, SQNR and cosine of
//! each layer's output against float).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::kitti::KittiDataset;
use lidarq_detector::quantized::{ActivationRanges, CalibrationReport, Phase};
use lidarq_detector::{
    CalibrationOptions, DetectorError, Model, ModelConfig, QuantMode, QuantizedModel, calibrate,
};

/// Seed of `--preset`'s random weights.
const PRESET_SEED: u64 = 7;
use lidarq_quant::{PlanRule, PrecisionPlan, ThresholdMethod};

/// Arguments of `lidarq calibrate`.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder (`model.json` + `model.safetensors`).
    #[arg(long, required_unless_present = "preset")]
    pub model: Option<PathBuf>,
    /// A built-in config with random weights instead of `--model` (timing only).
    #[arg(long, value_parser = ["kitti"], conflicts_with = "model")]
    pub preset: Option<String>,
    /// KITTI object dataset root (as `lidarq gen` writes); frames from `ImageSets/train.txt`,
    /// cut to camera 2's field of view like the frames KITTI models see.
    #[arg(long, required_unless_present = "ranges")]
    pub data: Option<PathBuf>,
    /// Per-channel clipping of weight outliers before quantization: none (each channel's
    /// max), the `--weight-percentile` of |w|, or the MSE-optimal clip.
    #[arg(long, default_value = "none", value_parser = ["none", "percentile", "mse"])]
    pub weight_clip: String,
    /// Percentile of `--weight-clip percentile`.
    #[arg(long, default_value_t = 99.9)]
    pub weight_percentile: f64,
    /// Take the activation ranges from this file (`qat_ranges.json` of
    /// `tools/train/qat.py`) instead of calibrating: static int8, no data needed.
    #[arg(long, conflicts_with_all = ["data", "method", "no_sparse", "mode"])]
    pub ranges: Option<PathBuf>,
    /// Calibration frames (the first N of the train split).
    #[arg(long, default_value_t = 64)]
    pub frames: usize,
    /// Activation range method.
    #[arg(long, default_value = "kl", value_parser = ["kl", "percentile", "mse", "minmax"])]
    pub method: String,
    /// Percentile of `--method percentile`.
    #[arg(long, default_value_t = 99.99)]
    pub percentile: f64,
    /// Count every BEV cell (by default empty cells and exact zeros are masked out).
    #[arg(long)]
    pub no_sparse: bool,
    /// Precision plan: a .json/.toml file, or comma-separated `pattern=precision` rules
    /// added to the default plan (int8, attention fp16).
    #[arg(long)]
    pub plan: Option<String>,
    /// static (calibrated int8), dynamic (per-frame ranges) or fp16.
    #[arg(long, default_value = "static", value_parser = ["static", "dynamic", "fp16"])]
    pub mode: String,
    /// Calibration frames on which each layer is compared with float.
    #[arg(long, default_value_t = 4)]
    pub report_frames: usize,
    /// The artifact to write (e.g. `model.int8.safetensors`).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the per-layer report as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The plan of `--plan`: a file, or rules on top of the default plan.
pub fn parse_plan(arg: Option<&str>) -> anyhow::Result<PrecisionPlan> {
    let Some(arg) = arg else {
        return Ok(PrecisionPlan::default());
    };
    let path = Path::new(arg);
    if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let plan = if arg.ends_with(".toml") {
            PrecisionPlan::from_toml(&text)
        } else {
            PrecisionPlan::from_json(&text)
        };
        return plan.with_context(|| format!("plan {}", path.display()));
    }
    let mut plan = PrecisionPlan::default();
    for rule in arg.split(',').filter(|r| !r.trim().is_empty()) {
        plan.rules.push(
            rule.parse::<PlanRule>()
                .with_context(|| format!("--plan: `{arg}` is neither a file nor rules"))?,
        );
    }
    Ok(plan)
}

fn method(args: &Args) -> ThresholdMethod {
    match args.method.as_str() {
        "percentile" => ThresholdMethod::Percentile(args.percentile),
        "mse" => ThresholdMethod::Mse,
        "minmax" => ThresholdMethod::Max,
        _ => ThresholdMethod::Entropy,
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::create_parent(&args.out)?;
    let model = match &args.model {
        Some(dir) => Model::load(dir)?,
        None => Model::random(ModelConfig::kitti(), PRESET_SEED)?,
    };
    if let Some(path) = &args.ranges {
        let ranges = ActivationRanges::load(path)?;
        let q = QuantizedModel::from_ranges(&model, &ranges, parse_plan(args.plan.as_deref())?)?;
        q.save(&args.out)?;
        println!(
            "activation ranges from {}; wrote {} ({:.2} MB)",
            path.display(),
            args.out.display(),
            std::fs::metadata(&args.out)?.len() as f64 / 1e6
        );
        return Ok(());
    }
    let data = args
        .data
        .as_deref()
        .context("--data is needed unless --ranges is given")?;
    let dataset = KittiDataset::open(data)?;
    let ids = dataset.split_ids("train")?;
    if ids.is_empty() {
        bail!("{}: the train split is empty", data.display());
    }
    let ids: Vec<String> = ids.into_iter().take(args.frames).collect();
    let options = CalibrationOptions {
        method: method(&args),
        sparse: !args.no_sparse,
        plan: parse_plan(args.plan.as_deref())?,
        mode: args.mode.parse::<QuantMode>()?,
        report_frames: args.report_frames,
        weight_clip: match args.weight_clip.as_str() {
            "percentile" => ThresholdMethod::Percentile(args.weight_percentile),
            "mse" => ThresholdMethod::Mse,
            _ => ThresholdMethod::Max,
        },
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("thread pool")?;
    let bar = ProgressBar::new(ids.len() as u64).with_style(ProgressStyle::with_template(
        "{msg:>10} {bar:30} {pos}/{len} [{elapsed}]",
    )?);
    bar.set_message("calibrate");
    let start = Instant::now();
    let frames = ids
        .iter()
        .map(|id| dataset.fov_cloud(id).map_err(DetectorError::from));
    let calibrated = pool.install(|| {
        calibrate(&model, frames, options, &mut |phase, done, total| {
            if phase == Phase::Report && done == 1 {
                bar.set_message("compare");
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
        })
    })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    calibrated.model.save(&args.out)?;
    let size = std::fs::metadata(&args.out)?.len();
    print_report(&calibrated.report);
    println!(
        "{} frames in {:.1} s (statistics and ranges {:.1} s); wrote {} ({:.2} MB)",
        calibrated.report.meta.frames,
        seconds,
        calibrated.report.calibration_seconds,
        args.out.display(),
        size as f64 / 1e6
    );
    if let Some(path) = &args.report {
        super::write_output(path, &serde_json::to_string_pretty(&calibrated.report)?)?;
    }
    Ok(())
}

fn range(r: Option<(f32, f32)>) -> String {
    r.map_or("-".into(), |(a, b)| format!("[{a:.3}, {b:.3}]"))
}

fn print_report(r: &CalibrationReport) {
    let m = &r.meta;
    println!(
        "mode {}  method {:?}  sparse {}  frames {} (compared on {})",
        m.mode, m.method, m.sparse, m.frames, r.report_frames
    );
    println!(
        "{:<26} {:<5} {:>20} {:>20} {:>20} {:>8} {:>8} {:>8}",
        "layer", "prec", "weights", "observed", "int8 range", "clip %", "SQNR dB", "cosine"
    );
    for l in &r.layers {
        println!(
            "{:<26} {:<5} {:>20} {:>20} {:>20} {:>8.3} {:>8.1} {:>8.5}",
            l.layer,
            l.precision.to_string(),
            range(l.weight_range),
            range(l.observed_range),
            range(l.quant_range),
            l.clipped * 100.0,
            l.sqnr_db,
            l.cosine
        );
    }
}
