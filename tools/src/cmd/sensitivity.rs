//! `lidarq sensitivity`: which layers does int8 hurt? Calibrates once, then quantizes one
//! layer at a time (the rest fp32) and every layer but one (that one fp16) — weighted
//! layers, the scatter and the concat alike; the attention block keeps its plan's precision
//! — and reports for each the SQNR of the head outputs against fp32 and the change of the
//! moderate 3D mAP.
//! With `--budget B`, greedily keeps the layers whose fp16 helps most in fp16 until the mAP
//! drop is within `B`, and writes that precision plan.
//!
//! The activation ranges do not depend on the plan (they come from the float model), so
//! every variant reuses the one calibration.

use std::path::PathBuf;

use anyhow::Context;
use lidarq_data::kitti::KittiDataset;
use lidarq_detector::graph::Op;
use lidarq_detector::quantized::QuantMeta;
use lidarq_detector::{
    CalibrationOptions, Detector, Executor, Fp32Executor, Model, PillarInput, QuantizedModel,
};
use lidarq_eval::GroundTruth;
use lidarq_eval::kitti::{Difficulty, Metric, RecallPoints};
use lidarq_eval::report::Report;
use lidarq_quant::{PlanRule, Precision, PrecisionPlan, compare};
use lidarq_voxelizer::{PillarBatch, Split, Voxelizer};
use serde::Serialize;

use super::demo;
use super::eval::{Frames, bar, calibrate_on, column, detect_all, load_frames};

/// Arguments of `lidarq sensitivity`.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder; default: the bundled demo model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// KITTI object dataset root; default: the generated demo dataset.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Val frames each variant is evaluated on (the first N).
    #[arg(long, default_value_t = 128)]
    pub frames: usize,
    /// Frames of those on which the head outputs are compared with fp32 (SQNR).
    #[arg(long, default_value_t = 8)]
    pub sqnr_frames: usize,
    /// Calibration frames (the first N of the train split; KL, sparsity-aware).
    #[arg(long, default_value_t = 64)]
    pub calib_frames: usize,
    /// Largest acceptable moderate 3D mAP drop (AP points): pick the layers to keep in fp16.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Where `--budget` writes the plan (`.json` or `.toml`).
    #[arg(long, default_value = "sensitivity-plan.json")]
    pub out: PathBuf,
    /// Also write the table as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One layer's sensitivity.
#[derive(Debug, Serialize)]
struct Row {
    layer: String,
    alone_sqnr_db: f64,
    alone_map_change: f64,
    all_but_sqnr_db: f64,
    all_but_map_change: f64,
}

#[derive(Debug, Serialize)]
struct Output {
    fp32_map: f64,
    all_int8_sqnr_db: f64,
    all_int8_map_change: f64,
    layers: Vec<Row>,
    chosen_fp16: Vec<String>,
    final_map_change: Option<f64>,
}

/// Runs variants of one calibrated model and scores them against fp32.
struct Bench<'a> {
    model: &'a Model,
    base: QuantizedModel,
    frames: &'a Frames,
    gt: GroundTruth,
    inputs: Vec<PillarBatch>,
    /// fp32 head outputs of `inputs`, frame after frame.
    reference: Vec<f32>,
    fp32_map: f64,
}

/// Appends the head maps to `out`.
fn push_head(h: &lidarq_detector::HeadView<'_>, out: &mut Vec<f32>) {
    out.extend_from_slice(h.cls);
    out.extend_from_slice(h.boxes);
    if let Some(d) = h.dir {
        out.extend_from_slice(d);
    }
}

fn moderate_3d_map(
    gt: &GroundTruth,
    frames: &Frames,
    dt: Vec<Vec<lidarq_data::ObjectLabel>>,
) -> anyhow::Result<f64> {
    let loaded = gt.load_with(&frames.ids, dt, false, &|| {})?;
    let report = Report::new(
        RecallPoints::R40,
        vec![column(String::new(), &loaded, Vec::new(), None)?],
    )?;
    report
        .summary()
        .ap
        .iter()
        .find(|r| {
            r.class == "mAP"
                && r.metric == Metric::Box3d.name()
                && r.difficulty == Difficulty::Moderate.name()
        })
        .and_then(|r| r.ap[0])
        .context("no class has ground truth in these frames")
}

impl<'a> Bench<'a> {
    fn new(
        model: &'a Model,
        base: QuantizedModel,
        frames: &'a Frames,
        gt: GroundTruth,
        sqnr_frames: usize,
    ) -> anyhow::Result<Self> {
        let mut voxelizer = Voxelizer::new(model.config.voxel_config(Split::Test))?;
        let mut fp32 = Fp32Executor::new(&model.graph)?;
        let mut inputs = Vec::new();
        let mut reference = Vec::new();
        for cloud in frames.clouds.iter().take(sqnr_frames) {
            let mut batch = PillarBatch::new();
            voxelizer.pillarize(cloud, model.config.decoration(), &mut batch)?;
            push_head(&fp32.run(&PillarInput::from(&batch))?, &mut reference);
            inputs.push(batch);
        }
        let (dt, _) = detect_all(Detector::new(model.clone())?, frames, "fp32")?;
        let fp32_map = moderate_3d_map(&gt, frames, dt)?;
        Ok(Self {
            model,
            base,
            frames,
            gt,
            inputs,
            reference,
            fp32_map,
        })
    }

    /// (head SQNR in dB, mAP change) of the base calibration under `plan`.
    fn score(&self, plan: PrecisionPlan, label: &str) -> anyhow::Result<(f64, f64)> {
        let meta = QuantMeta {
            plan,
            ..self.base.meta.clone()
        };
        let q = QuantizedModel::from_model(
            self.model,
            self.base.setup.activations.clone(),
            self.base.setup.input_channels.clone(),
            meta,
        )?;
        let mut exec = Executor::new(&q.graph, &q.setup)?;
        let mut out = Vec::with_capacity(self.reference.len());
        for batch in &self.inputs {
            push_head(&exec.run(&PillarInput::from(batch))?, &mut out);
        }
        let sqnr = compare(&self.reference, &out)?.sqnr_db;
        let (dt, _) = detect_all(Detector::from_quantized(&q)?, self.frames, label)?;
        Ok((
            sqnr,
            moderate_3d_map(&self.gt, self.frames, dt)? - self.fp32_map,
        ))
    }
}

fn rule(layer: &str, precision: Precision) -> PlanRule {
    PlanRule {
        pattern: layer.to_string(),
        precision,
        optional: false,
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model_dir = demo::model_dir(args.model.as_deref())?;
    let data = demo::data_dir(args.data.as_deref())?;
    let model = Model::load(&model_dir)?;
    let dataset = KittiDataset::open(&data)?;
    let gt = GroundTruth::open(&data)?;
    let ids: Vec<String> = dataset
        .split_ids("val")?
        .into_iter()
        .take(args.frames)
        .collect();
    anyhow::ensure!(!ids.is_empty(), "{}: no val frames", data.display());
    let frames = load_frames(&dataset, ids)?;
    let base = calibrate_on(
        &model,
        &dataset,
        args.calib_frames,
        CalibrationOptions::default(),
        "int8",
    )?;
    let layers: Vec<String> = model
        .graph
        .layers
        .iter()
        .filter(|l| !matches!(l.op, Op::Attention(_)))
        .map(|l| l.name.clone())
        .collect();
    let bench = Bench::new(&model, base, &frames, gt, args.sqnr_frames)?;
    let default = PrecisionPlan::default();
    let (all_sqnr, all_change) = bench.score(default.clone(), "int8")?;
    let progress = bar(layers.len(), "layers")?;
    let mut rows = Vec::new();
    for layer in &layers {
        progress.set_message(layer.clone());
        let alone = PrecisionPlan {
            default: Precision::Fp32,
            rules: vec![rule(layer, Precision::Int8)],
        };
        let mut all_but = default.clone();
        all_but.rules.push(rule(layer, Precision::Fp16));
        let (alone_sqnr, alone_change) = progress.suspend(|| bench.score(alone, layer))?;
        let (but_sqnr, but_change) = progress.suspend(|| bench.score(all_but, layer))?;
        rows.push(Row {
            layer: layer.clone(),
            alone_sqnr_db: alone_sqnr,
            alone_map_change: alone_change,
            all_but_sqnr_db: but_sqnr,
            all_but_map_change: but_change,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();

    println!(
        "moderate 3D mAP (R40) over {} frames: fp32 {:.2}; all int8 (attention fp16): {:+.2}, head SQNR {:.1} dB",
        frames.ids.len(),
        bench.fp32_map,
        all_change,
        all_sqnr
    );
    println!(
        "{:<28} {:>12} {:>10} {:>14} {:>10}",
        "layer", "alone: SQNR", "ΔmAP", "all but: SQNR", "ΔmAP"
    );
    for r in &rows {
        println!(
            "{:<28} {:>9.1} dB {:>+10.2} {:>11.1} dB {:>+10.2}",
            r.layer, r.alone_sqnr_db, r.alone_map_change, r.all_but_sqnr_db, r.all_but_map_change
        );
    }

    let mut chosen = Vec::new();
    let mut final_change = None;
    if let Some(budget) = args.budget {
        let mut order: Vec<&Row> = rows.iter().collect();
        order.sort_by(|a, b| b.all_but_map_change.total_cmp(&a.all_but_map_change));
        let mut plan = default.clone();
        let mut change = all_change;
        for r in order {
            if -change <= budget {
                break;
            }
            plan.rules.push(rule(&r.layer, Precision::Fp16));
            chosen.push(r.layer.clone());
            change = bench.score(plan.clone(), &r.layer)?.1;
            println!("+ {} in fp16: mAP change {change:+.2}", r.layer);
        }
        final_change = Some(change);
        let text = if args.out.extension().is_some_and(|e| e == "toml") {
            plan.to_toml()?
        } else {
            plan.to_json()?
        };
        super::write_output(&args.out, &text)?;
        println!(
            "{} layer(s) in fp16, mAP change {change:+.2} (budget {budget}); plan written to {}",
            chosen.len(),
            args.out.display()
        );
        if -change > budget {
            println!("the budget is not reached even with every layer in fp16");
        }
    }
    if let Some(path) = &args.json {
        let out = Output {
            fp32_map: bench.fp32_map,
            all_int8_sqnr_db: all_sqnr,
            all_int8_map_change: all_change,
            layers: rows,
            chosen_fp16: chosen,
            final_map_change: final_change,
        };
        super::write_output(path, &serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}
