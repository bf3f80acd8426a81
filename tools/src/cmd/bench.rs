//! `lidarq bench [--model DIR | --preset kitti] [--precision fp32,int8] [--quantized FILE]
//! [--iters N] [--json]`: times each stage of the detector on one realistic frame (a
//! synthetic HDL-64 sweep, or `--input FILE`) after warm-up — voxelize, PFN + scatter,
//! backbone, head, decode + NMS — and prints the median and p95 per stage and the dense
//! part's GFLOP/s, for each precision in the same run, with the speed-up over fp32.
//! `int8` is the default plan (attention fp16) calibrated with KL on the benchmark frame
//! itself (timing does not depend on the ranges), or the artifact of `--quantized`;
//! `fp16` is every layer in fp16. fp32 and int8 skip the BEV cells whose receptive field
//! holds no pillar (the report gives the share of each block's output cells left out);
//! `fp32-dense` and `int8-dense` compute every cell (same outputs). The precisions take
//! turns frame by frame, so a change in the machine's load (these machines are shared)
//! weighs on every precision alike and the ratios stay fair.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::PointCloud;
use lidarq_data::synth::{SynthConfig, object_frame};
use lidarq_detector::quantized::QuantizedModel;
use lidarq_detector::{
    Activation, CalibrationOptions, ExecSetup, Executor, Graph, Model, ModelConfig, PillarInput,
    QuantMode, calibrate,
};
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
    /// Precisions to time, comma-separated (fp32, fp32-dense, int8, int8-dense, fp16).
    #[arg(long, default_value = "fp32", value_delimiter = ',',
          value_parser = ["fp32", "fp32-dense", "int8", "int8-dense", "fp16"])]
    pub precision: Vec<String>,
    /// Quantized model artifact for `int8` (default: calibrate on the benchmark frame).
    #[arg(long)]
    pub quantized: Option<PathBuf>,
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
    /// Also print each layer's median time (the head's 1×1 convolutions run as one layer:
    /// the first head layer's time is theirs, the others' is copying their channels out).
    #[arg(long)]
    pub layers: bool,
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
struct LayerStats {
    layer: String,
    median_ms: f64,
}

/// Output cells of one block's convolutions that empty-cell skipping left out.
#[derive(Serialize)]
struct Skipped {
    block: String,
    cells: usize,
    skipped: usize,
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
    /// fp32 backbone+head median / this one's (same run).
    speedup_backbone_head: Option<f64>,
    /// fp32 whole-frame median / this one's.
    speedup_total: Option<f64>,
    /// Per block (blocks.N, deblocks, head), in the last frame; empty when nothing skips.
    skipped: Vec<Skipped>,
    /// Per layer, in execution order (the PFN's time includes the scatter's).
    layers: Vec<LayerStats>,
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

/// The median and 95th percentile of `values`.
fn median_p95(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.95))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: Args) -> anyhow::Result<()> {
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
    let mut runners = pool.install(|| {
        args.precision
            .iter()
            .map(|precision| {
                let (graph, setup) = executor_setup(&model, precision, &cloud, &args)?;
                Runner::new(&model, &graph, &setup, precision)
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let rounds = args.warmup + args.iters;
    let bar = ProgressBar::new((rounds * runners.len()) as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed}]")?,
    );
    bar.set_message(format!("bench {}", args.precision.join(",")));
    for round in 0..rounds {
        for runner in &mut runners {
            pool.install(|| runner.frame(&cloud, round >= args.warmup))?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut reports: Vec<Report> = runners
        .iter()
        .map(|r| Report {
            model: name.clone(),
            ..r.report(&cloud, &args)
        })
        .collect();
    if let Some(base) = reports.iter().position(|r| r.precision == "fp32") {
        let (dense, total) = (
            reports[base].backbone_head_median_ms,
            reports[base].total_median_ms,
        );
        for r in &mut reports {
            r.speedup_backbone_head = Some(dense / r.backbone_head_median_ms);
            r.speedup_total = Some(total / r.total_median_ms);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print_table(r, args.layers);
        }
    }
    Ok(())
}

/// The graph and per-layer setup of one precision.
fn executor_setup(
    model: &Model,
    precision: &str,
    cloud: &PointCloud,
    args: &Args,
) -> anyhow::Result<(Graph, ExecSetup)> {
    let quantized = match (precision.trim_end_matches("-dense"), &args.quantized) {
        ("fp32", _) => return Ok((model.graph.clone(), ExecSetup::fp32(&model.graph))),
        ("int8", Some(path)) => QuantizedModel::load(path)?,
        (p, _) => {
            let options = CalibrationOptions {
                mode: if p == "fp16" {
                    QuantMode::Fp16
                } else {
                    QuantMode::Static
                },
                report_frames: 0,
                ..CalibrationOptions::default()
            };
            let frames = std::iter::once(Ok(cloud.clone()));
            calibrate(model, frames, options, &mut |_, _, _| {})?.model
        }
    };
    if quantized.graph.tensors != model.graph.tensors {
        bail!("the quantized model's graph is not the benchmarked model's");
    }
    Ok((quantized.graph, quantized.setup))
}

/// One precision's executor and its timed frames.
struct Runner<'m> {
    model: &'m Model,
    precision: String,
    voxelizer: Voxelizer,
    batch: PillarBatch,
    exec: Executor,
    /// Per timed frame, milliseconds per stage.
    samples: Vec<[f64; STAGES.len()]>,
    /// Layers in execution order, and their milliseconds per timed frame.
    layer_names: Vec<String>,
    layer_samples: Vec<Vec<f64>>,
}

impl<'m> Runner<'m> {
    fn new(
        model: &'m Model,
        graph: &Graph,
        setup: &ExecSetup,
        precision: &str,
    ) -> anyhow::Result<Self> {
        let mut exec = Executor::new(graph, setup)?;
        exec.set_skip_empty(!precision.ends_with("-dense"));
        Ok(Self {
            model,
            precision: precision.into(),
            voxelizer: Voxelizer::new(model.config.voxel_config(Split::Test))?,
            batch: PillarBatch::new(),
            exec,
            samples: Vec::new(),
            layer_names: Vec::new(),
            layer_samples: Vec::new(),
        })
    }

    /// Runs one frame and, when `timed`, keeps its milliseconds per stage and per layer.
    fn frame(&mut self, cloud: &PointCloud, timed: bool) -> anyhow::Result<()> {
        let mut t = [0.0; STAGES.len()];
        let start = Instant::now();
        self.voxelizer
            .pillarize(cloud, self.model.config.decoration(), &mut self.batch)?;
        let voxelized = Instant::now();
        t[0] = ms(voxelized - start);
        let mut last = voxelized;
        let names = &mut self.layer_names;
        let mut layer_ms = Vec::with_capacity(names.len());
        let head = self.exec.run_observed(
            &PillarInput::from(&self.batch),
            &mut |layer, _: Activation<'_>| {
                let now = Instant::now();
                t[stage_of(layer)] += ms(now - last);
                if names.len() == layer_ms.len() {
                    names.push(layer.to_string());
                }
                layer_ms.push(ms(now - last));
                last = now;
            },
        )?;
        let decode_start = Instant::now();
        let dets = self.model.post.detections(&head);
        t[4] = ms(decode_start.elapsed());
        std::hint::black_box(dets);
        if timed {
            self.samples.push(t);
            self.layer_samples.push(layer_ms);
        }
        Ok(())
    }

    fn report(&self, cloud: &PointCloud, args: &Args) -> Report {
        let stat = |f: &dyn Fn(&[f64; STAGES.len()]) -> f64| median_p95(self.samples.iter().map(f));
        let layers = self
            .layer_names
            .iter()
            .enumerate()
            .map(|(i, layer)| LayerStats {
                layer: layer.clone(),
                median_ms: median_p95(self.layer_samples.iter().map(|s| s[i])).0,
            })
            .collect();
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
        let gflop = self.model.graph.dense_flops() / 1e9;
        let mut skipped: Vec<Skipped> = Vec::new();
        for w in self.exec.cell_work() {
            let block = block_of(&w.layer);
            match skipped.iter_mut().find(|s| s.block == block) {
                Some(s) => {
                    s.cells += w.total;
                    s.skipped += w.total - w.computed;
                }
                None => skipped.push(Skipped {
                    block,
                    cells: w.total,
                    skipped: w.total - w.computed,
                }),
            }
        }
        if skipped.iter().all(|s| s.skipped == 0) {
            skipped.clear();
        }
        Report {
            model: String::new(),
            precision: self.precision.clone(),
            threads: args.threads,
            iters: args.iters,
            points: cloud.len(),
            pillars: self.batch.len(),
            stages,
            backbone_head_median_ms: dense_ms,
            backbone_head_gflop: gflop,
            backbone_head_gflops: gflop / (dense_ms / 1e3),
            total_median_ms: total_ms,
            speedup_backbone_head: None,
            speedup_total: None,
            skipped,
            layers,
        }
    }
}

/// `backbone_2d.blocks.1.4` → `blocks.1`; deblocks and head convs each form one group.
fn block_of(layer: &str) -> String {
    let rest = layer.strip_prefix("backbone_2d.").unwrap_or(layer);
    match rest.split('.').collect::<Vec<_>>().as_slice() {
        ["blocks", i, ..] => format!("blocks.{i}"),
        ["deblocks", ..] => "deblocks".into(),
        _ => "head".into(),
    }
}

fn print_table(r: &Report, layers: bool) {
    println!(
        "model: {}  precision: {}  threads: {}  iters: {}",
        r.model, r.precision, r.threads, r.iters
    );
    println!("frame: {} points, {} pillars", r.points, r.pillars);
    println!("{:<14} {:>10} {:>10}", "stage", "median ms", "p95 ms");
    for s in &r.stages {
        println!("{:<14} {:>10.2} {:>10.2}", s.stage, s.median_ms, s.p95_ms);
    }
    if layers {
        println!("{:<40} {:>10}", "layer", "median ms");
        for l in &r.layers {
            println!("{:<40} {:>10.2}", l.layer, l.median_ms);
        }
    }
    println!(
        "backbone+head: {:.1} ms median, {:.1} GFLOP, {:.1} GFLOP/s; whole frame {:.1} ms",
        r.backbone_head_median_ms, r.backbone_head_gflop, r.backbone_head_gflops, r.total_median_ms
    );
    if let (Some(dense), Some(total)) = (r.speedup_backbone_head, r.speedup_total) {
        println!("vs fp32 (same run): backbone+head {dense:.2}×, whole frame {total:.2}×");
    }
    if !r.skipped.is_empty() {
        let parts: Vec<String> = r
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1} %",
                    s.block,
                    100.0 * s.skipped as f64 / s.cells as f64
                )
            })
            .collect();
        println!(
            "output cells skipped (empty receptive field): {}",
            parts.join(", ")
        );
    }
}
