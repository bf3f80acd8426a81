//! `lidarq eval`: KITTI AP as the benchmark's reference evaluation computes it.
//!
//! Two ways in: `--pred-dir DIR --data ROOT` evaluates existing result files; otherwise the
//! model (`--model`, default the bundled one) runs on the dataset (`--data`, default the
//! generated demo dataset) once per `--compare` entry — fp32, int8 calibrated on the first
//! train frames, a quantized artifact, ... — and the report sets them side by side: AP per
//! class and difficulty with the change against the first column, AP by LiDAR points,
//! latency per stage and model size. Optional JSON, Markdown and precision–recall plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::kitti::KittiDataset;
use lidarq_data::{Calib, ObjectLabel, PointCloud};
use lidarq_detector::quantized::{ActivationRanges, Phase};
use lidarq_detector::{
    CalibrationOptions, Detector, DetectorError, Model, QuantMode, QuantizedModel, WEIGHTS_FILE,
    calibrate,
};
use lidarq_eval::GroundTruth;
use lidarq_eval::kitti::{Frame, PointRange, RecallPoints, evaluate, evaluate_by_points};
use lidarq_eval::report::{Column, Report, StageLatency, write_pr_plots};
use lidarq_quant::{PrecisionPlan, ThresholdMethod};

use super::demo;

/// Width the printed table is laid out for.
const TERMINAL_WIDTH: usize = 100;

/// Arguments of `lidarq eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Evaluate the KITTI result files in this folder (`<id>.txt` per frame, 16 columns
    /// with the score) instead of running a model.
    #[arg(long, conflicts_with_all = ["model", "compare"])]
    pub pred_dir: Option<PathBuf>,
    /// KITTI object dataset root (holding `training/label_2` and `ImageSets/`). Without it,
    /// a model run uses the generated demo dataset (512 val frames; created on first use).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model folder (`model.json` + `model.safetensors`); default: the bundled demo model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// What to run, side by side: `fp32`, `int8` (KL, sparsity-aware, attention fp16),
    /// `int8-kl-dense` (KL counting empty cells), `int8-percentile`, `int8-mse`,
    /// `int8-minmax`, `int8-dynamic`, `fp16`, `int8-qat` (the model's quantization-aware
    /// fine-tune in `<model>/qat/`), a quantized model file (`lidarq calibrate --out`), or
    /// another model folder (fp32). The first entry is the baseline of the AP changes.
    #[arg(long, num_args = 1.., default_value = "fp32")]
    pub compare: Vec<String>,
    /// Evaluate only the first N frames of the split.
    #[arg(long)]
    pub frames: Option<usize>,
    /// Calibration frames of the int8 entries (the first N of the train split).
    #[arg(long, default_value_t = 64)]
    pub calib_frames: usize,
    /// Frames of `ImageSets/<SPLIT>.txt` (default: all labelled frames for --pred-dir, `val`
    /// for a model run).
    #[arg(long)]
    pub split: Option<String>,
    /// AP over 11 recall points instead of 40.
    #[arg(long)]
    pub r11: bool,
    /// Also write the report as JSON (every number shown, plus the curves).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the report as Markdown.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write precision–recall curves (PNG) into this folder.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Skip the AP breakdown by LiDAR points per object (it reads every scan).
    #[arg(long)]
    pub no_points: bool,
}

pub(crate) fn bar(len: usize, msg: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template("{msg:>14} {bar:30} {pos}/{len} frames [{elapsed} < {eta}]")
            .context("progress bar template")?,
    );
    bar.set_message(msg.to_string());
    Ok(bar)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let columns = match &args.pred_dir {
        Some(pred_dir) => vec![evaluate_files(&args, pred_dir)?],
        None => run_models(&args)?,
    };
    let points = if args.r11 {
        RecallPoints::R11
    } else {
        RecallPoints::R40
    };
    let report = Report::new(points, columns)?;
    print!("{}", report.to_table(TERMINAL_WIDTH));
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if let Some(path) = &args.markdown {
        report.write_markdown(path)?;
    }
    if let Some(dir) = &args.plots {
        let files = write_pr_plots(&report, dir)?;
        eprintln!("wrote {} plots to {}", files.len(), dir.display());
    }
    Ok(())
}

fn frame_ids(gt: &GroundTruth, args: &Args, split: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut ids = gt.ids(split)?;
    if let Some(n) = args.frames {
        ids.truncate(n);
    }
    anyhow::ensure!(!ids.is_empty(), "no frames to evaluate");
    Ok(ids)
}

/// AP (and by points) of loaded frames, as a report column.
pub(crate) fn column(
    name: String,
    frames: &[Frame],
    latency: Vec<StageLatency>,
    bytes: Option<u64>,
) -> anyhow::Result<Column> {
    let by_points = if frames.iter().all(|f| f.gt_points.is_some()) {
        Some(evaluate_by_points(frames, &PointRange::DEFAULT)?)
    } else {
        None
    };
    Ok(Column {
        name,
        evaluation: evaluate(frames),
        by_points,
        latency,
        model_bytes: bytes,
    })
}

fn evaluate_files(args: &Args, pred_dir: &Path) -> anyhow::Result<Column> {
    let data = args
        .data
        .as_deref()
        .context("--pred-dir needs --data (the dataset the results are of)")?;
    let gt = GroundTruth::open(data)?;
    let ids = frame_ids(&gt, args, args.split.as_deref())?;
    let bar = bar(ids.len(), "loading")?;
    let frames = gt.load(&ids, pred_dir, !args.no_points, &|| bar.inc(1))?;
    bar.finish_and_clear();
    if !args.no_points && frames.iter().any(|f| f.gt_points.is_none()) {
        eprintln!("note: no velodyne/calib for some frames: AP by LiDAR points is left out");
    }
    let name = pred_dir.file_name().map_or_else(
        || "predictions".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    column(name, &frames, Vec::new(), None)
}

/// How one `--compare` entry gets its detector.
enum Variant {
    Fp32,
    Calibrated(CalibrationOptions),
    /// The quantization-aware-trained model in `<model>/qat/` with its learned ranges.
    Qat,
    Artifact(PathBuf),
    /// Another model folder, in fp32.
    ModelDir(PathBuf),
}

fn variant(spec: &str) -> anyhow::Result<Variant> {
    let int8 = |method, sparse, mode| {
        Variant::Calibrated(CalibrationOptions {
            method,
            sparse,
            mode,
            ..CalibrationOptions::default()
        })
    };
    Ok(match spec {
        "fp32" => Variant::Fp32,
        "int8" | "int8-kl" => int8(ThresholdMethod::Entropy, true, QuantMode::Static),
        "int8-kl-dense" => int8(ThresholdMethod::Entropy, false, QuantMode::Static),
        "int8-percentile" => int8(ThresholdMethod::Percentile(99.99), true, QuantMode::Static),
        "int8-mse" => int8(ThresholdMethod::Mse, true, QuantMode::Static),
        "int8-minmax" => int8(ThresholdMethod::Max, true, QuantMode::Static),
        "int8-dynamic" => int8(ThresholdMethod::Entropy, true, QuantMode::Dynamic),
        "fp16" => int8(ThresholdMethod::Entropy, true, QuantMode::Fp16),
        "int8-qat" => Variant::Qat,
        path if Path::new(path).is_file() => Variant::Artifact(path.into()),
        dir if Path::new(dir).join(lidarq_detector::CONFIG_FILE).is_file() => {
            Variant::ModelDir(dir.into())
        }
        other => bail!(
            "--compare `{other}`: not fp32, int8, int8-kl-dense, int8-percentile, int8-mse, \
             int8-minmax, int8-dynamic, fp16, int8-qat, a quantized model file or a model folder"
        ),
    })
}

/// The val frames, read once: FOV-cut clouds and their calibrations.
pub(crate) struct Frames {
    pub ids: Vec<String>,
    pub clouds: Vec<PointCloud>,
    pub calibs: Vec<Calib>,
}

pub(crate) fn load_frames(dataset: &KittiDataset, ids: Vec<String>) -> anyhow::Result<Frames> {
    let bar = bar(ids.len(), "reading")?;
    let mut clouds = Vec::with_capacity(ids.len());
    let mut calibs = Vec::with_capacity(ids.len());
    for id in &ids {
        let calib = dataset.calib(id)?;
        let mut cloud = dataset.cloud(id)?;
        calib.retain_image_fov(&mut cloud);
        clouds.push(cloud);
        calibs.push(calib);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Frames {
        ids,
        clouds,
        calibs,
    })
}

fn run_models(args: &Args) -> anyhow::Result<Vec<Column>> {
    let variants: Vec<Variant> = args
        .compare
        .iter()
        .map(|s| variant(s))
        .collect::<anyhow::Result<_>>()?;
    let model_dir = demo::model_dir(args.model.as_deref())?;
    let data = demo::data_dir(args.data.as_deref())?;
    let model = Model::load(&model_dir)?;
    let dataset = KittiDataset::open(&data)?;
    let gt = GroundTruth::open(&data)?;
    let ids = frame_ids(&gt, args, Some(args.split.as_deref().unwrap_or("val")))?;
    eprintln!(
        "model {} on {} ({} frames, camera-2 field of view)",
        model_dir.display(),
        data.display(),
        ids.len()
    );
    let frames = load_frames(&dataset, ids)?;
    let mut columns = Vec::new();
    for (spec, variant) in args.compare.iter().zip(variants) {
        let (detector, bytes) = match variant {
            Variant::Fp32 => {
                let bytes = std::fs::metadata(model_dir.join(WEIGHTS_FILE))?.len();
                (Detector::new(model.clone())?, bytes)
            }
            Variant::Calibrated(options) => {
                let q = calibrate_on(&model, &dataset, args.calib_frames, options, spec)?;
                let bytes = q.to_bytes()?.len() as u64;
                (Detector::from_quantized(&q)?, bytes)
            }
            Variant::Qat => {
                let q = qat_model(&model_dir)?;
                let bytes = q.to_bytes()?.len() as u64;
                (Detector::from_quantized(&q)?, bytes)
            }
            Variant::Artifact(path) => {
                let bytes = std::fs::metadata(&path)?.len();
                (Detector::load_quantized(&path)?, bytes)
            }
            Variant::ModelDir(dir) => {
                let bytes = std::fs::metadata(dir.join(WEIGHTS_FILE))?.len();
                (Detector::new(Model::load(&dir)?)?, bytes)
            }
        };
        let (detections, latency) = detect_all(detector, &frames, spec)?;
        let bar = bar(frames.ids.len(), "matching")?;
        let loaded = gt.load_with(&frames.ids, detections, !args.no_points, &|| bar.inc(1))?;
        bar.finish_and_clear();
        let name = Path::new(spec)
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .trim_end_matches(".safetensors")
                    .to_string()
            })
            .unwrap_or_else(|| spec.clone());
        columns.push(column(name, &loaded, latency, Some(bytes))?);
    }
    Ok(columns)
}

/// The int8 model of `<model_dir>/qat/`: weights fine-tuned with fake quantization and the
/// activation ranges learned with them (`tools/train/qat.py`).
fn qat_model(model_dir: &Path) -> anyhow::Result<QuantizedModel> {
    let dir = model_dir.join("qat");
    let ranges = dir.join("qat_ranges.json");
    anyhow::ensure!(
        ranges.is_file(),
        "int8-qat: {} is missing (tools/train/qat.py writes it)",
        ranges.display()
    );
    let model = Model::load(&dir)?;
    let ranges = ActivationRanges::load(&ranges)?;
    Ok(QuantizedModel::from_ranges(
        &model,
        &ranges,
        PrecisionPlan::default(),
    )?)
}

pub(crate) fn calibrate_on(
    model: &Model,
    dataset: &KittiDataset,
    frames: usize,
    options: CalibrationOptions,
    spec: &str,
) -> anyhow::Result<QuantizedModel> {
    let ids: Vec<String> = dataset
        .split_ids("train")?
        .into_iter()
        .take(frames)
        .collect();
    anyhow::ensure!(
        !ids.is_empty(),
        "{}: no train frames to calibrate on",
        dataset.root().display()
    );
    let bar = bar(ids.len(), &format!("calibrate {spec}"))?;
    let start = Instant::now();
    let clouds = ids
        .iter()
        .map(|id| dataset.fov_cloud(id).map_err(DetectorError::from));
    let calibrated = calibrate(model, clouds, options, &mut |phase, done, total| {
        if phase == Phase::Report && done == 1 {
            bar.set_message(format!("check {spec}"));
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{spec}: calibrated on {} frames in {:.1} s",
        ids.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(calibrated.model)
}

/// Detections of every frame as KITTI records, and the latency of each stage.
pub(crate) fn detect_all(
    mut detector: Detector,
    frames: &Frames,
    spec: &str,
) -> anyhow::Result<(Vec<Vec<ObjectLabel>>, Vec<StageLatency>)> {
    let bar = bar(frames.ids.len(), spec)?;
    let n = frames.ids.len();
    let (mut vox, mut net, mut post, mut total) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut all = Vec::with_capacity(n);
    for ((id, cloud), calib) in frames.ids.iter().zip(&frames.clouds).zip(&frames.calibs) {
        let (detections, t) = detector
            .detect_timed(cloud)
            .with_context(|| format!("frame {id}"))?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        vox.push(ms(t.voxelize));
        net.push(ms(t.network));
        post.push(ms(t.post));
        total.push(ms(t.voxelize + t.network + t.post));
        all.push(
            detections
                .iter()
                .map(|d| ObjectLabel {
                    score: Some(d.score),
                    ..calib.box_to_label(&d.bbox, &d.class)
                })
                .collect(),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    let latency = [
        ("voxelize", &vox),
        ("backbone+head", &net),
        ("decode+nms", &post),
        ("total", &total),
    ]
    .into_iter()
    .filter_map(|(stage, samples)| StageLatency::from_samples(stage, samples))
    .collect();
    Ok((all, latency))
}
