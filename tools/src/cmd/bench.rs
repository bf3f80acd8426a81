//! `lidarq bench [--model DIR | --preset kitti] [--precision fp32] [--iters N] [--json]`:
//! times each stage of the detector on one realistic frame (a synthetic HDL-64 sweep, or
//! `--input FILE`) after warm-up — voxelize, PFN + scatter, backbone, head, decode + NMS —
//! and prints the median and p95 per stage and the dense part's GFLOP/s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::PointCloud;
use lidarq_data::synth::{SynthConfig, object_frame};
use lidarq_detector::{Fp32Executor, Model, ModelConfig, PillarInput};
use lidarq_voxelizer::{PillarBatch, Split, Voxelizer};
use serde::Serialize;

/// Arguments of `lidarq bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder (`model.json` + `model.safetensors`).
    #[arg(long, conflicts_with = "preset")]
    pub model: Option<PathBuf>,
    /// A built-in config with random weights (only the shapes matter for timing).
    #[arg(long, value_parser = ["kitti"], default_value = "kitti")]
    pub preset: String,
    /// Precisions to time, comma-separated.
    #[arg(long, default_value = "fp32", value_delimiter = ',')]
    pub precision: Vec<String>,
    /// Timed iterations (after warm-up).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Point cloud to run (.bin, .pcd, .pcd.bin); default a synthetic HDL-64 frame.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Stages in pipeline order.
const STAGES: [&str; 5] = ["voxelize", "pfn_scatter", "backbone", "head", "decode_nms"];
/// Seed of the synthetic frame and the random weights.
const SEED: u64 = 7;

#[derive(Serialize)]
struct StageStats {
    stage: &'static str,
    median_ms: f64,
    p95_ms: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    precision: String,
    threads: usize,
    iters: usize,
    points: usize,
    pillars: usize,
    stages: Vec<StageStats>,
    backbone_head_median_ms: f64,
    backbone_head_gflop: f64,
    backbone_head_gflops: f64,
    total_median_ms: f64,
}

fn stage_of(layer: &str) -> usize {
    if layer.starts_with("backbone_2d.") {
        2
    } else if layer.starts_with("dense_head.") {
        3
    } else {
        1
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(p) = args.precision.iter().find(|p| p.as_str() != "fp32") {
        bail!("precision {p:?} is not available yet (fp32 only)");
    }
    let (model, name) = match &args.model {
        Some(dir) => (Model::load(dir)?, dir.display().to_string()),
        None => (
            Model::random(ModelConfig::kitti(), SEED)?,
            format!("preset {} (random weights)", args.preset),
        ),
    };
    let cloud: PointCloud = match &args.input {
        Some(path) => lidarq_data::read_cloud(path)?.cloud,
        None => object_frame(&SynthConfig::new(SEED), 0).cloud,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("thread pool")?;
    let report = pool.install(|| measure(&model, &cloud, &args))?;
    let report = Report {
        model: name,
        ..report
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn measure(model: &Model, cloud: &PointCloud, args: &Args) -> anyhow::Result<Report> {
    let cfg = &model.config;
    let mut voxelizer = Voxelizer::new(cfg.voxel_config(Split::Test))?;
    let mut batch = PillarBatch::new();
    let mut exec = Fp32Executor::new(&model.graph)?;
    let mut samples: Vec<[f64; STAGES.len()]> = Vec::with_capacity(args.iters);
    let bar = ProgressBar::new((args.warmup + args.iters) as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed}]")?,
    );
    bar.set_message("bench fp32");
    for i in 0..args.warmup + args.iters {
        let mut t = [0.0; STAGES.len()];
        let start = Instant::now();
        voxelizer.pillarize(cloud, cfg.decoration(), &mut batch)?;
        let voxelized = Instant::now();
        t[0] = ms(voxelized - start);
        let mut last = voxelized;
        let head = exec.run_observed(&PillarInput::from(&batch), &mut |layer, _| {
            let now = Instant::now();
            t[stage_of(layer)] += ms(now - last);
            last = now;
        })?;
        let decode_start = Instant::now();
        let dets = model.post.detections(&head);
        t[4] = ms(decode_start.elapsed());
        std::hint::black_box(dets);
        if i >= args.warmup {
            samples.push(t);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let stat = |f: &dyn Fn(&[f64; STAGES.len()]) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.95))
    };
    let stages = STAGES
        .iter()
        .enumerate()
        .map(|(i, &stage)| {
            let (median_ms, p95_ms) = stat(&|s| s[i]);
            StageStats {
                stage,
                median_ms,
                p95_ms,
            }
        })
        .collect();
    let (dense_ms, _) = stat(&|s| s[2] + s[3]);
    let (total_ms, _) = stat(&|s| s.iter().sum());
    let gflop = model.graph.dense_flops() / 1e9;
    Ok(Report {
        model: String::new(),
        precision: "fp32".into(),
        threads: args.threads,
        iters: args.iters,
        points: cloud.len(),
        pillars: batch.len(),
        stages,
        backbone_head_median_ms: dense_ms,
        backbone_head_gflop: gflop,
        backbone_head_gflops: gflop / (dense_ms / 1e3),
        total_median_ms: total_ms,
    })
}

fn print_table(r: &Report) {
    println!(
        "model: {}  precision: {}  threads: {}  iters: {}",
        r.model, r.precision, r.threads, r.iters
    );
    println!("frame: {} points, {} pillars", r.points, r.pillars);
    println!("{:<14} {:>10} {:>10}", "stage", "median ms", "p95 ms");
    for s in &r.stages {
        println!("{:<14} {:>10.2} {:>10.2}", s.stage, s.median_ms, s.p95_ms);
    }
    println!(
        "backbone+head: {:.1} ms median, {:.1} GFLOP, {:.1} GFLOP/s; whole frame {:.1} ms",
        r.backbone_head_median_ms, r.backbone_head_gflop, r.backbone_head_gflops, r.total_median_ms
    );
}
