//! `lidarq eval --pred-dir DIR --data KITTI_ROOT`: KITTI AP of existing result files, as
//! the benchmark's reference evaluation computes it, with optional JSON, Markdown and
//! precision–recall plots.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_eval::GroundTruth;
use lidarq_eval::kitti::{PointRange, RecallPoints, evaluate, evaluate_by_points};
use lidarq_eval::report::{Column, Report, write_pr_plots};

/// Width the printed table is laid out for.
const TERMINAL_WIDTH: usize = 100;

/// Arguments of `lidarq eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder of KITTI result files (`<id>.txt` per frame, 16 columns with the score).
    #[arg(long)]
    pub pred_dir: PathBuf,
    /// KITTI object dataset root (holding `training/label_2` and `ImageSets/`).
    #[arg(long)]
    pub data: PathBuf,
    /// Evaluate the frames of `ImageSets/<SPLIT>.txt` (all labelled frames when omitted).
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let gt = GroundTruth::open(&args.data)?;
    let ids = gt.ids(args.split.as_deref())?;
    anyhow::ensure!(
        !ids.is_empty(),
        "{}: no frames to evaluate",
        args.data.display()
    );
    let bar = ProgressBar::new(ids.len() as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} frames [{elapsed}]")
            .context("progress bar template")?,
    );
    bar.set_message("loading");
    let frames = gt.load(&ids, &args.pred_dir, !args.no_points, &|| bar.inc(1))?;
    bar.set_message("evaluating");
    let evaluation = evaluate(&frames);
    let with_points = frames.iter().all(|f| f.gt_points.is_some());
    let by_points = if with_points {
        Some(evaluate_by_points(&frames, &PointRange::DEFAULT)?)
    } else {
        None
    };
    bar.finish_and_clear();
    if !with_points && !args.no_points {
        eprintln!("note: no velodyne/calib for some frames: AP by LiDAR points is left out");
    }
    let name = args.pred_dir.file_name().map_or_else(
        || "predictions".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let column = Column {
        name,
        evaluation,
        by_points,
        latency: Vec::new(),
        model_bytes: None,
    };
    let points = if args.r11 {
        RecallPoints::R11
    } else {
        RecallPoints::R40
    };
    let report = Report::new(points, vec![column])?;
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
