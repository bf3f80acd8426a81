//! The detector as three pipeline stages, so consecutive frames overlap: `voxelize`
//! (points → pillars), `backbone` (pillars → head maps, once per precision) and `decode`
//! (head maps → boxes, NMS). Each is timed on its own.
//!
//! A precision plugs in as a [`Backbone`]: the fp32 executor today; the int8 executor
//! implements the same trait when it lands, and `--precision both` is two backbones in one
//! stage, their outputs decoded into the `fp32` and `int8` detection sets.

use crate::stage::{DetectionSet, Stage};
use crate::{Frame, PipelineError, Result};
use lidarq_detector::{Fp32Executor, HeadView, Model, PillarInput, PostProcessor};
use lidarq_voxelizer::{PillarBatch, Split, Voxelizer};

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

fn detector_error(e: lidarq_detector::DetectorError) -> PipelineError {
    PipelineError::Stage {
        stage: "detector".into(),
        msg: e.to_string(),
    }
}

impl Backbone for Fp32Executor {
    fn run(&mut self, pillars: &PillarBatch) -> Result<HeadMaps> {
        let view = Fp32Executor::run(self, &PillarInput::from(pillars)).map_err(detector_error)?;
        Ok(HeadMaps::copy_of(&view))
    }
}

/// Points → pillars.
pub struct VoxelizeStage {
    voxelizer: Voxelizer,
    model: Model,
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
            .pillarize(&frame.cloud, self.model.config.decoration(), &mut batch)
            .map_err(|e| PipelineError::Stage {
                stage: "voxelize".into(),
                msg: e.to_string(),
            })?;
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

/// The three stages of `model` with the given named backbones (test-time pillar limit).
pub fn detector_stages(
    model: Model,
    backbones: Vec<(String, Box<dyn Backbone>)>,
) -> Result<(VoxelizeStage, BackboneStage, DecodeStage)> {
    let voxelizer = Voxelizer::new(model.config.voxel_config(Split::Test)).map_err(|e| {
        PipelineError::Stage {
            stage: "voxelize".into(),
            msg: e.to_string(),
        }
    })?;
    let post = model.post.clone();
    Ok((
        VoxelizeStage { voxelizer, model },
        BackboneStage { backbones },
        DecodeStage { post },
    ))
}

/// The stages of the fp32 detector: backbone set `fp32`.
pub fn fp32_stages(model: Model) -> Result<(VoxelizeStage, BackboneStage, DecodeStage)> {
    let exec = Fp32Executor::new(&model.graph).map_err(detector_error)?;
    detector_stages(model, vec![("fp32".to_string(), Box::new(exec))])
}
