//! `lidarq replay SOURCE`: streams a drive log (KITTI folder, scan sequence, ROS 2 MCAP)
//! through the staged pipeline into Rerun and/or KITTI result files, then prints the run
//! summary. Ctrl-C stops the source; frames in flight finish and the summary is printed.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_pipeline::sink::KittiResultSink;
use lidarq_pipeline::track::{TrackStage, TrackerConfig};
use lidarq_pipeline::{FrameResult, Pipeline, Rate, RunConfig, Sink, Skip, Summary};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Arguments of `lidarq replay`.
#[derive(clap::Args)]
#[command(after_help = "Without --model, a replay shows point clouds and ground truth only.")]
pub struct Args {
    /// An .mcap file or rosbag2 folder, a KITTI object root (with training/velodyne), or a
    /// folder of .bin / .pcd scans (KITTI raw velodyne_points with timestamps.txt included).
    pub source: PathBuf,
    /// Model folder (model.json + model.safetensors) to run on every frame.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Precision of the detector: fp32, int8 or both (int8 is not available yet).
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "int8", "both"])]
    pub precision: String,
    /// Pacing: realtime, max, or a factor of the sensor's pace (2 = twice as fast).
    #[arg(long, default_value = "realtime")]
    pub rate: Rate,
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = lidarq_pipeline::source::open(&args.source, args.topic.as_deref())?;
    let config = RunConfig {
        rate: args.rate,
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
        if args.model.is_none() {
            bail!("--out writes detections: it needs --model");
        }
        sinks.push(Box::new(KittiResultSink::new(dir.clone())));
    }
    let pipeline = Pipeline::new(source, config);
    let bar = ProgressBar::new(pipeline.len_hint().unwrap_or(0)).with_style(
        ProgressStyle::with_template("replay {bar:30} {pos}/{len} [{elapsed} < {eta}] {msg}")?,
    );
    eprintln!("replaying {}", pipeline.description());
    sinks.push(Box::new(Progress { bar, skipped: 0 }));
    let mut sink_refs: Vec<&mut dyn Sink> = sinks
        .iter_mut()
        .map(|s| s.as_mut() as &mut dyn Sink)
        .collect();

    let summary = match &args.model {
        None => pipeline.run(&mut sink_refs)?,
        Some(dir) => {
            if args.precision != "fp32" {
                bail!(
                    "--precision {}: the int8 detector is not available yet",
                    args.precision
                );
            }
            let model = lidarq_detector::Model::load(dir)
                .with_context(|| format!("loading the model in {}", dir.display()))?;
            let (voxelize, backbone, decode) = lidarq_pipeline::detect::fp32_stages(model)?;
            pipeline
                .then(voxelize)
                .then(backbone)
                .then(decode)
                .then(TrackStage::new(TrackerConfig::default()))
                .run(&mut sink_refs)?
        }
    };
    print!("{summary}");
    Ok(())
}
