//! The detector as three pipeline stages, so consecutive frames overlap: `voxelize`
//! (points → pillars), `backbone` (pillars → head maps, once per precision) and `decode`
//! (head maps → boxes, NMS). Each is timed on its own.
//!
//! A precision plugs in as a [`Backbone`]: the executor in fp32 ([`fp32_backbone`]) or in a
//! quantized model's precisions ([`quantized_backbone`]); `--precision both` is two backbones
//! in one stage over the same pillars, their outputs decoded into the `fp32` and `int8`
//! detection sets.

use crate::stage::{DetectionSet, Stage};
use crate::{Frame, Pipeline, PipelineError, Rate, Result, Source};
use lidarq_detector::quantized::{Calibrated, Phase};
use lidarq_detector::{
    CalibrationOptions, ExecSetup, Executor, HeadView, Model, ModelConfig, PillarInput,
    PostProcessor, QuantizedModel, calibrate,
};
use lidarq_voxelizer::{PillarBatch, PillarDecoration, Split, Voxelizer};

/// Head maps copied out of an executor, so they can cross to the decode thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadMaps {
    /// Class logits.
    pub cls: Vec<f32>,
    /// Box residuals.
    pub boxes: Vec<f32>,
    /// Direction logits, when the model has a direction classifier.
    pub dir: Option<Vec<f32>>,
}

impl HeadMaps {
    fn copy_of(view: &HeadView<'_>) -> Self {
        Self {
            cls: view.cls.to_vec(),
            boxes: view.boxes.to_vec(),
            dir: view.dir.map(<[f32]>::to_vec),
        }
    }

    fn view(&self) -> HeadView<'_> {
        HeadView {
            cls: &self.cls,
            boxes: &self.boxes,
            dir: self.dir.as_deref(),
        }
    }
}

/// One precision of the network body: pillars in, head maps out.
pub trait Backbone: Send + 'static {
    /// Runs one frame.
    fn run(&mut self, pillars: &PillarBatch) -> Result<HeadMaps>;
}

fn stage_error(stage: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Stage {
        stage: stage.into(),
        msg: e.to_string(),
    }
}

fn detector_error(e: lidarq_detector::DetectorError) -> PipelineError {
    stage_error("backbone", e)
}

/// The executor with a precision per layer (int8, fp16, fp32).
impl Backbone for Executor {
    fn run(&mut self, pillars: &PillarBatch) -> Result<HeadMaps> {
        let view = Executor::run(self, &PillarInput::from(pillars)).map_err(detector_error)?;
        Ok(HeadMaps::copy_of(&view))
    }
}

/// The fp32 network of `model`.
pub fn fp32_backbone(model: &Model) -> Result<Box<dyn Backbone>> {
    let setup = ExecSetup::fp32(&model.graph);
    Ok(Box::new(
        Executor::new(&model.graph, &setup).map_err(detector_error)?,
    ))
}

/// The network of a quantized model, in the precisions it sets per layer.
pub fn quantized_backbone(model: &QuantizedModel) -> Result<Box<dyn Backbone>> {
    Ok(Box::new(
        Executor::new(&model.graph, &model.setup).map_err(detector_error)?,
    ))
}

/// Points → pillars.
pub struct VoxelizeStage {
    voxelizer: Voxelizer,
    decoration: PillarDecoration,
}

impl Stage for VoxelizeStage {
    type In = ();
    type Out = PillarBatch;

    fn name(&self) -> &str {
        "voxelize"
    }

    fn process(&mut self, frame: &Frame, (): ()) -> Result<PillarBatch> {
        let mut batch = PillarBatch::new();
        self.voxelizer
            .pillarize(&frame.cloud, self.decoration, &mut batch)
            .map_err(|e| stage_error("voxelize", e))?;
        Ok(batch)
    }
}

/// Pillars → head maps, for each precision.
pub struct BackboneStage {
    backbones: Vec<(String, Box<dyn Backbone>)>,
}

impl Stage for BackboneStage {
    type In = PillarBatch;
    type Out = Vec<(String, HeadMaps)>;

    fn name(&self) -> &str {
        "backbone"
    }

    fn process(&mut self, _frame: &Frame, pillars: PillarBatch) -> Result<Self::Out> {
        self.backbones
            .iter_mut()
            .map(|(name, b)| Ok((name.clone(), b.run(&pillars)?)))
            .collect()
    }
}

/// Head maps → boxes after NMS, one detection set per precision.
pub struct DecodeStage {
    post: PostProcessor,
}

impl Stage for DecodeStage {
    type In = Vec<(String, HeadMaps)>;
    type Out = Vec<DetectionSet>;

    fn name(&self) -> &str {
        "decode"
    }

    fn process(&mut self, _frame: &Frame, heads: Self::In) -> Result<Vec<DetectionSet>> {
        Ok(heads
            .iter()
            .map(|(name, maps)| DetectionSet::new(name, self.post.detections(&maps.view())))
            .collect())
    }
}

/// Named backbones run on the same pillars, each naming its detection set.
pub type Backbones = Vec<(String, Box<dyn Backbone>)>;

/// The detector's stages, ready to append to a pipeline.
pub struct DetectorStages {
    voxelize: VoxelizeStage,
    /// One per backbone worker.
    backbones: Vec<BackboneStage>,
    decode: DecodeStage,
}

impl DetectorStages {
    /// A model with `config` and post-processing `post` (test-time pillar limit), with
    /// `workers` copies of the backbone stage built by `make`. One worker runs frames one
    /// at a time with every rayon thread; `n` workers take frames in turn, each with a
    /// share of the threads, so `n` frames are in the network at once (more throughput on
    /// few cores, where one network leaves cores idle, at the cost of latency).
    pub fn new(
        config: &ModelConfig,
        post: PostProcessor,
        workers: usize,
        make: &mut dyn FnMut() -> Result<Backbones>,
    ) -> Result<Self> {
        let voxelizer = Voxelizer::new(config.voxel_config(Split::Test))
            .map_err(|e| stage_error("voxelize", e))?;
        let backbones = (0..workers.max(1))
            .map(|_| Ok(BackboneStage { backbones: make()? }))
            .collect::<Result<_>>()?;
        Ok(Self {
            voxelize: VoxelizeStage {
                voxelizer,
                decoration: config.decoration(),
            },
            backbones,
            decode: DecodeStage { post },
        })
    }

    /// How the backbone runs, for the user: workers and threads each.
    pub fn describe_workers(&self) -> String {
        match self.backbones.len() {
            1 => format!("1 worker, {} threads", rayon::current_num_threads()),
            n => format!("{n} workers, {} thread(s) each", threads_per_worker(n)),
        }
    }

    /// Appends voxelize, backbone and decode to `pipeline`.
    pub fn append_to(self, pipeline: Pipeline<()>) -> Result<Pipeline<Vec<DetectionSet>>> {
        let pipeline = pipeline.then(self.voxelize);
        let mut backbones = self.backbones;
        let pipeline = match backbones.len() {
            1 => pipeline.then(backbones.remove(0)),
            n => pipeline.then_replicated(backbones, threads_per_worker(n))?,
        };
        Ok(pipeline.then(self.decode))
    }
}

/// Rayon threads of each of `workers` backbone workers: an equal share of the pool.
fn threads_per_worker(workers: usize) -> usize {
    (rayon::current_num_threads() / workers).max(1)
}

/// Backbone workers when none are asked for, at `rate` with `threads` threads in all. At
/// `--rate max` throughput counts: two workers (two frames in the network, half the threads
/// each) have no per-layer barrier across every core, so the cores one network leaves idle
/// at its barriers and the other stages' work fill each other's gaps (on 2 idle cores:
/// 1.33× the back-to-back throughput, one worker 1.06–1.11×). At a paced rate the network
/// keeps up either way, and one worker with every thread has the lowest latency.
pub fn default_workers(rate: Rate, threads: usize) -> usize {
    match rate {
        Rate::Max if threads >= 2 => 2,
        _ => 1,
    }
}

/// Calibrates `model` on the first `frames` readable frames of `source` (unreadable ones
/// are passed over), for a replay without a quantized-model file. `progress` is
/// [`calibrate`]'s.
pub fn calibrate_on_source(
    model: &Model,
    source: &mut dyn Source,
    frames: usize,
    options: CalibrationOptions,
    progress: &mut dyn FnMut(Phase, usize, usize),
) -> Result<Calibrated> {
    let mut clouds = Vec::with_capacity(frames);
    while clouds.len() < frames {
        match source.next_frame() {
            Some(Ok(frame)) => clouds.push(Ok(frame.cloud)),
            Some(Err(_)) => {}
            None => break,
        }
    }
    if clouds.is_empty() {
        let msg = format!("{}: no readable frame to calibrate on", source.describe());
        return Err(stage_error("calibrate", msg));
    }
    calibrate(model, clouds, options, progress).map_err(|e| stage_error("calibrate", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_workers_only_for_throughput_on_two_threads_or_more() {
        assert_eq!(default_workers(Rate::Max, 2), 2);
        assert_eq!(default_workers(Rate::Max, 16), 2);
        assert_eq!(default_workers(Rate::Max, 1), 1);
        assert_eq!(default_workers(Rate::Factor(1.0), 2), 1);
        assert_eq!(default_workers(Rate::Factor(4.0), 16), 1);
    }
}
