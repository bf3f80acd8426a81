//! Stages and sinks: the two small traits a pipeline is made of, and what flows between
//! them. A stage turns one frame's input into its output on its own thread; a sink sees
//! every finished frame, in order, on the thread that runs the pipeline.

use crate::source::{Frame, Skip};
use crate::{Result, Summary};
use lidarq_data::Detection;
use std::marker::PhantomData;
use std::time::Duration;

/// One step of per-frame work (voxelize, backbone, decode, track, ...).
///
/// A stage runs on its own thread and sees frames one at a time in stream order, so it may
/// keep state across frames (buffers, tracks). Heavy stages parallelise inside `process`
/// with rayon. An error skips the frame (counted with its reason), it does not stop the run.
pub trait Stage: Send + 'static {
    /// What the previous stage hands over (`()` for the first).
    type In: Send + 'static;
    /// What this stage hands to the next.
    type Out: Send + 'static;
    /// Short name for timings and errors (`voxelize`, `backbone`).
    fn name(&self) -> &str;
    /// Processes one frame; `frame` carries the points, ground truth and timestamps.
    fn process(&mut self, frame: &Frame, input: Self::In) -> Result<Self::Out>;
}

/// A stage made of a name and a closure.
pub struct FnStage<F, In, Out> {
    name: String,
    f: F,
    types: PhantomData<fn(In) -> Out>,
}

/// Wraps `f` as a stage called `name`.
pub fn stage_fn<F, In, Out>(name: &str, f: F) -> FnStage<F, In, Out>
where
    F: FnMut(&Frame, In) -> Result<Out> + Send + 'static,
{
    FnStage {
        name: name.to_string(),
        f,
        types: PhantomData,
    }
}

impl<F, In, Out> Stage for FnStage<F, In, Out>
where
    F: FnMut(&Frame, In) -> Result<Out> + Send + 'static,
    In: Send + 'static,
    Out: Send + 'static,
{
    type In = In;
    type Out = Out;

    fn name(&self) -> &str {
        &self.name
    }

    fn process(&mut self, frame: &Frame, input: In) -> Result<Out> {
        (self.f)(frame, input)
    }
}

/// The detections of one model variant for one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionSet {
    /// Which variant (`fp32`, `int8`): the Rerun entity path and result sub-folder.
    pub name: String,
    /// Boxes, classes and scores.
    pub detections: Vec<Detection>,
    /// Track id per detection, once a tracker has run; empty before.
    pub track_ids: Vec<u64>,
}

impl DetectionSet {
    /// An untracked set.
    pub fn new(name: &str, detections: Vec<Detection>) -> Self {
        Self {
            name: name.to_string(),
            detections,
            track_ids: Vec::new(),
        }
    }
}

/// What the last stage produces, as the detection sets sinks see. A pipeline without
/// stages (point clouds and ground truth only) ends in `()`, which has none.
pub trait IntoDetectionSets: Send + 'static {
    /// The detection sets of one frame.
    fn into_sets(self) -> Vec<DetectionSet>;
}

impl IntoDetectionSets for () {
    fn into_sets(self) -> Vec<DetectionSet> {
        Vec::new()
    }
}

impl IntoDetectionSets for Vec<DetectionSet> {
    fn into_sets(self) -> Vec<DetectionSet> {
        self
    }
}

/// Time one stage spent on one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTiming {
    /// The stage's name (`source` for reading and decoding).
    pub stage: String,
    /// Time inside the stage's `process` (or the source's read).
    pub busy: Duration,
}

/// One finished frame as sinks see it.
#[derive(Debug, Clone)]
pub struct FrameResult {
    /// The frame (points, ground truth, timestamps).
    pub frame: Frame,
    /// Detections per model variant.
    pub sets: Vec<DetectionSet>,
    /// Per-stage busy time, in stage order.
    pub timings: Vec<StageTiming>,
    /// From the source's release of the frame to the sinks (queueing included).
    pub latency: Duration,
}

/// Where finished frames go (Rerun, result files, progress). Sinks run in order on the
/// pipeline's calling thread; a sink error stops the run.
pub trait Sink {
    /// Short name for errors.
    fn name(&self) -> &str;
    /// Takes one finished frame.
    fn write(&mut self, result: &FrameResult) -> Result<()>;
    /// Told about a skipped frame, in stream order.
    fn skipped(&mut self, _skip: &Skip) -> Result<()> {
        Ok(())
    }
    /// Called once at the end with the run's summary.
    fn finish(&mut self, _summary: &Summary) -> Result<()> {
        Ok(())
    }
}
