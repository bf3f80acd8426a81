//! `lidarq replay SOURCE`: streams a drive log (KITTI folder, scan sequence, ROS 2 MCAP)
//! through the staged pipeline (the bundled model by default, in fp32, int8 or both) into
//! Rerun and/or KITTI result files, then prints the run summary. Ctrl-C stops the source;
//! frames in flight finish and the summary is printed.

use crate::cmd::demo;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_detector::quantized::{Phase, weights_hash};
use lidarq_detector::{CalibrationOptions, Model, QuantizedModel};
use lidarq_pipeline::detect::{
    Backbones, DetectorStages, calibrate_on_source, default_workers, fp32_backbone,
    quantized_backbone,
};
use lidarq_pipeline::sink::KittiResultSink;
use lidarq_pipeline::track::{TrackStage, TrackerConfig};
use lidarq_pipeline::{FrameResult, Pipeline, Rate, RunConfig, Sink, Skip, Summary};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Arguments of `lidarq replay`.
#[derive(clap::Args)]
#[command(
    after_help = "Without --model, the bundled demo model runs; --no-model shows \
point clouds and ground truth only. int8 without --quantized is calibrated (KL, \
sparsity-aware) on the first --calib-frames frames of the replayed source."
)]
pub struct Args {
    /// An .mcap file or rosbag2 folder, a KITTI object root (with training/velodyne), or a
    /// folder of .bin / .pcd scans (KITTI raw velodyne_points with timestamps.txt included).
    pub source: PathBuf,
    /// Model folder (model.json + model.safetensors) to run on every frame (default: the
    /// bundled demo model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Run no detector: point clouds and ground truth only.
    #[arg(long, conflicts_with_all = ["model", "precision", "quantized"])]
    pub no_model: bool,
    /// Precision of the detector: fp32, int8 or both (fp32 and int8 side by side).
    /// Default: int8 with --quantized, else fp32.
    #[arg(long, value_parser = ["fp32", "int8", "both"])]
    pub precision: Option<String>,
    /// The int8 model: an artifact from `lidarq calibrate` (default: calibrate on the
    /// replayed source).
    #[arg(long)]
    pub quantized: Option<PathBuf>,
    /// Frames of the source the int8 model is calibrated on when no --quantized is given.
    #[arg(long, default_value_t = 32)]
    pub calib_frames: usize,
    /// Pacing: realtime, max, or a factor of the sensor's pace (2 = twice as fast).
    #[arg(long, default_value = "realtime")]
    pub rate: Rate,
    /// Run the stages back to back, one frame at a time, one backbone worker with every
    /// thread (the baseline pipelining is measured against).
    #[arg(long)]
    pub sequential: bool,
    /// Backbone workers: frames in the network at once, each with a share of the threads.
    /// Default: 2 at `--rate max` on 2 threads or more (throughput), else 1 (lowest
    /// latency).
    #[arg(long, conflicts_with = "sequential", value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// Rerun output: `spawn` (start a viewer), `connect ADDR` (e.g.
    /// rerun+http://127.0.0.1:9876/proxy) or `save FILE.rrd`.
    #[arg(long, num_args = 1..=2, value_names = ["MODE", "ARG"])]
    pub rerun: Option<Vec<String>>,
    /// Colour points by height or intensity in Rerun.
    #[arg(long, default_value = "height", value_parser = ["height", "intensity"])]
    pub color: String,
    /// Write KITTI result files per frame into DIR/<precision>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// MCAP topic to read (default: the first sensor_msgs/msg/PointCloud2 topic).
    #[arg(long)]
    pub topic: Option<String>,
}

/// A progress bar that counts frames and skips.
struct Progress {
    bar: ProgressBar,
    skipped: u64,
}

impl Sink for Progress {
    fn name(&self) -> &str {
        "progress"
    }
    fn write(&mut self, r: &FrameResult) -> lidarq_pipeline::Result<()> {
        let found: usize = r.sets.iter().map(|s| s.detections.len()).sum();
        self.bar.set_message(format!(
            "{} pts, {found} det, {} skipped",
            r.frame.cloud.len(),
            self.skipped
        ));
        self.bar.inc(1);
        Ok(())
    }
    fn skipped(&mut self, skip: &Skip) -> lidarq_pipeline::Result<()> {
        self.skipped += 1;
        self.bar
            .suspend(|| eprintln!("warning: frame {} skipped: {}", skip.seq, skip.reason));
        self.bar.inc(1);
        Ok(())
    }
    fn finish(&mut self, _summary: &Summary) -> lidarq_pipeline::Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}

#[cfg(feature = "rerun")]
fn rerun_sink(mode: &[String], color: &str) -> anyhow::Result<Box<dyn Sink>> {
    use lidarq_pipeline::sink::{ColorBy, RerunSink, RerunTarget};
    let target = match mode {
        [m] if m == "spawn" => RerunTarget::Spawn,
        [m, addr] if m == "connect" => RerunTarget::Connect(addr.clone()),
        [m, file] if m == "save" => RerunTarget::Save(file.into()),
        _ => bail!("--rerun: expected `spawn`, `connect ADDR` or `save FILE.rrd`, got {mode:?}"),
    };
    let color_by = if color == "intensity" {
        ColorBy::Intensity
    } else {
        ColorBy::Height
    };
    Ok(Box::new(RerunSink::new(&target, color_by)?))
}

#[cfg(not(feature = "rerun"))]
fn rerun_sink(_mode: &[String], _color: &str) -> anyhow::Result<Box<dyn Sink>> {
    bail!("--rerun: this lidarq was built without the `rerun` feature")
}

/// Which detection sets a replay produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Precisions {
    fp32: bool,
    int8: bool,
}

impl Precisions {
    fn of(args: &Args) -> Option<Self> {
        if args.no_model {
            return None;
        }
        let name = args
            .precision
            .as_deref()
            .unwrap_or(if args.quantized.is_some() {
                "int8"
            } else {
                "fp32"
            });
        Some(Self {
            fp32: name != "int8",
            int8: name != "fp32",
        })
    }
}

fn bar(len: usize, template: &str) -> anyhow::Result<ProgressBar> {
    Ok(ProgressBar::new(len as u64).with_style(ProgressStyle::with_template(template)?))
}

/// The int8 model: `--quantized`, or `model` calibrated on the source's first frames.
fn int8_model(args: &Args, model: Option<&Model>) -> anyhow::Result<QuantizedModel> {
    if let Some(path) = &args.quantized {
        let q = QuantizedModel::load(path)
            .with_context(|| format!("loading the quantized model {}", path.display()))?;
        if let Some(m) = model {
            anyhow::ensure!(
                q.config == m.config,
                "{}: the quantized model's config differs from the fp32 model's",
                path.display()
            );
            if q.meta.source_hash != weights_hash(&m.graph) {
                eprintln!(
                    "warning: {} was not calibrated from this fp32 model's weights",
                    path.display()
                );
            }
        }
        return Ok(q);
    }
    let model = model.context("calibrating int8 needs the fp32 model")?;
    let mut source = lidarq_pipeline::source::open(&args.source, args.topic.as_deref())?;
    eprintln!(
        "int8: no --quantized given, calibrating on the first {} frames of {} \
         (pass a `lidarq calibrate` artifact to skip this)",
        args.calib_frames,
        source.describe()
    );
    let bar = bar(
        args.calib_frames,
        "calibrate {bar:30} {pos}/{len} frames [{elapsed}] {msg}",
    )?;
    let start = Instant::now();
    let calibrated = calibrate_on_source(
        model,
        source.as_mut(),
        args.calib_frames,
        CalibrationOptions::default(),
        &mut |phase, done, total| {
            if phase == Phase::Report && done == 1 {
                bar.set_message("checking against fp32");
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    eprintln!("int8: calibrated in {:.1} s", start.elapsed().as_secs_f64());
    Ok(calibrated.model)
}

/// The detector's stages for `precisions`: the fp32 model is loaded unless int8 alone runs
/// from a `--quantized` file.
fn detector(args: &Args, precisions: Precisions) -> anyhow::Result<DetectorStages> {
    let model = if precisions.fp32 || args.quantized.is_none() {
        let dir = demo::model_dir(args.model.as_deref())?;
        let model =
            Model::load(&dir).with_context(|| format!("loading the model in {}", dir.display()))?;
        eprintln!("model {}", dir.display());
        Some(model)
    } else {
        None
    };
    let int8 = precisions
        .int8
        .then(|| int8_model(args, model.as_ref()))
        .transpose()?;
    let fp32 = model.as_ref().filter(|_| precisions.fp32);
    let mut make = || {
        let mut backbones: Backbones = Vec::new();
        if let Some(m) = fp32 {
            backbones.push(("fp32".into(), fp32_backbone(m)?));
        }
        if let Some(q) = &int8 {
            backbones.push(("int8".into(), quantized_backbone(q)?));
        }
        Ok(backbones)
    };
    let (config, post) = match (&model, &int8) {
        (Some(m), _) => (&m.config, m.post.clone()),
        (None, Some(q)) => (&q.config, q.post()),
        (None, None) => bail!("no detector to run"),
    };
    let workers = match args.workers {
        Some(n) => n as usize,
        None if args.sequential => 1,
        None => default_workers(args.rate, rayon::current_num_threads()),
    };
    let stages = DetectorStages::new(config, post, workers, &mut make)?;
    eprintln!("backbone: {}", stages.describe_workers());
    Ok(stages)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let precisions = Precisions::of(&args);
    let detector = precisions.map(|p| detector(&args, p)).transpose()?;
    let source = lidarq_pipeline::source::open(&args.source, args.topic.as_deref())?;
    let config = RunConfig {
        rate: args.rate,
        overlap: !args.sequential,
        ..RunConfig::default()
    };
    let stop = config.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(mode) = &args.rerun {
        sinks.push(rerun_sink(mode, &args.color)?);
    }
    if let Some(dir) = &args.out {
        if detector.is_none() {
            bail!("--out writes detections: it cannot go with --no-model");
        }
        sinks.push(Box::new(KittiResultSink::new(dir.clone())));
    }
    let pipeline = Pipeline::new(source, config);
    let bar = bar(
        pipeline.len_hint().unwrap_or(0) as usize,
        "replay {bar:30} {pos}/{len} [{elapsed} < {eta}] {msg}",
    )?;
    eprintln!("replaying {}", pipeline.description());
    sinks.push(Box::new(Progress { bar, skipped: 0 }));
    let mut sink_refs: Vec<&mut dyn Sink> = sinks
        .iter_mut()
        .map(|s| s.as_mut() as &mut dyn Sink)
        .collect();

    let summary = match detector {
        None => pipeline.run(&mut sink_refs)?,
        Some(stages) => stages
            .append_to(pipeline)?
            .then(TrackStage::new(TrackerConfig::default()))
            .run(&mut sink_refs)?,
    };
    print!("{summary}");
    Ok(())
}
