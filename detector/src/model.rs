//! A model ready to run: config, graph (weights folded) and post-processor, loaded from a
//! model folder (`model.json` + `model.safetensors`) or made with random weights for
//! benchmarks; and [`Detector`], which adds the voxelizer and an executor (fp32, or a
//! quantized model's) to run point clouds end to end.

use std::path::Path;
use std::time::{Duration, Instant};

use lidarq_data::{Detection, PointCloud};
use lidarq_voxelizer::{PillarBatch, Split, Voxelizer};

use crate::config::ModelConfig;
use crate::error::{DetectorError, Result};
use crate::exec::{Executor, Fp32Executor, PillarInput};
use crate::graph::{Graph, Op, Weights};
use crate::post::PostProcessor;
use crate::quantized::QuantizedModel;
use crate::weights::WeightStore;

/// File names inside a model folder.
pub const CONFIG_FILE: &str = "model.json";
/// The weights, OpenPCDet tensor names.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Config, graph and post-processing of one model.
#[derive(Debug, Clone)]
pub struct Model {
    /// The config it was built from.
    pub config: ModelConfig,
    /// The layer graph, BatchNorm folded.
    pub graph: Graph,
    /// Anchors and NMS settings.
    pub post: PostProcessor,
}

impl Model {
    /// Loads `dir/model.json` and `dir/model.safetensors`.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = ModelConfig::from_file(&dir.join(CONFIG_FILE))?;
        let store = WeightStore::from_file(&dir.join(WEIGHTS_FILE))?;
        Self::from_weights(config, store)
    }

    /// Builds the graph of `config` from `store`; every weight problem in one error.
    pub fn from_weights(config: ModelConfig, mut store: WeightStore) -> Result<Self> {
        let graph = Graph::build(&config, &mut store);
        store.finish()?;
        Ok(Self {
            post: PostProcessor::new(&config),
            graph,
            config,
        })
    }

    /// `config` with seeded random weights (He-scaled, so activations keep their
    /// magnitude through the backbone): for benchmarks, where only the shapes matter.
    pub fn random(config: ModelConfig, seed: u64) -> Result<Self> {
        config.validate().map_err(|msg| DetectorError::Config {
            path: "<random>".into(),
            msg,
        })?;
        let mut store = WeightStore::from_tensors(Path::new("<random>"), []);
        let mut graph = Graph::build(&config, &mut store);
        let mut rng = SplitMix64(seed);
        let mut fill = |w: &mut Weights| {
            let fan_in = (w.in_channels * w.kernel * w.kernel) as f64;
            let bound = (6.0 / fan_in).sqrt();
            w.data
                .iter_mut()
                .for_each(|v| *v = (rng.uniform() * bound) as f32);
            w.bias
                .iter_mut()
                .for_each(|v| *v = (rng.uniform() * 0.1) as f32);
        };
        for layer in &mut graph.layers {
            match &mut layer.op {
                Op::Pfn { linear, .. } => fill(linear),
                Op::Conv(c) | Op::Deconv(c) => fill(&mut c.weights),
                Op::Attention(a) => {
                    fill(&mut a.qkv);
                    fill(&mut a.proj);
                    a.norm_weight.fill(1.0);
                }
                Op::Scatter | Op::Concat => {}
            }
        }
        Ok(Self {
            post: PostProcessor::new(&config),
            graph,
            config,
        })
    }
}

/// Uniform values in [-1, 1) from SplitMix64: deterministic and dependency-free.
struct SplitMix64(u64);

impl SplitMix64 {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Wall time of the stages of one [`Detector::detect_timed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageTimes {
    /// Points to decorated pillars.
    pub voxelize: Duration,
    /// PFN, scatter, backbone and head (the executor).
    pub network: Duration,
    /// Anchor decoding, score threshold and NMS.
    pub post: Duration,
}

/// The executor behind a [`Detector`].
enum Backend {
    Fp32(Fp32Executor),
    Mixed(Executor),
}

/// Point cloud in, detections out, in fp32 or a quantized model's precisions; buffers are
/// reused from frame to frame.
pub struct Detector {
    config: ModelConfig,
    post: PostProcessor,
    voxelizer: Voxelizer,
    batch: PillarBatch,
    backend: Backend,
}

impl Detector {
    /// Prepares `model` for fp32 inference (test-time pillar limit).
    pub fn new(model: Model) -> Result<Self> {
        let exec = Fp32Executor::new(&model.graph)?;
        Self::with_backend(model.config, model.post, Backend::Fp32(exec))
    }

    /// Prepares a quantized model (int8 / fp16 / fp32 per layer).
    pub fn from_quantized(model: &QuantizedModel) -> Result<Self> {
        let exec = Executor::new(&model.graph, &model.setup)?;
        Self::with_backend(model.config.clone(), model.post(), Backend::Mixed(exec))
    }

    /// Loads a quantized-model artifact ([`QuantizedModel::save`]).
    pub fn load_quantized(path: &Path) -> Result<Self> {
        Self::from_quantized(&QuantizedModel::load(path)?)
    }

    fn with_backend(config: ModelConfig, post: PostProcessor, backend: Backend) -> Result<Self> {
        Ok(Self {
            voxelizer: Voxelizer::new(config.voxel_config(Split::Test))?,
            config,
            post,
            batch: PillarBatch::new(),
            backend,
        })
    }

    /// The model config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Detections of one cloud, best first.
    pub fn detect(&mut self, cloud: &PointCloud) -> Result<Vec<Detection>> {
        Ok(self.detect_timed(cloud)?.0)
    }

    /// [`Detector::detect`], and the wall time of each stage.
    pub fn detect_timed(&mut self, cloud: &PointCloud) -> Result<(Vec<Detection>, StageTimes)> {
        let start = Instant::now();
        self.voxelizer
            .pillarize(cloud, self.config.decoration(), &mut self.batch)?;
        let voxelized = Instant::now();
        let input = PillarInput::from(&self.batch);
        let head = match &mut self.backend {
            Backend::Fp32(e) => e.run(&input)?,
            Backend::Mixed(e) => e.run(&input)?,
        };
        let networked = Instant::now();
        let detections = self.post.detections(&head);
        let times = StageTimes {
            voxelize: voxelized - start,
            network: networked - voxelized,
            post: networked.elapsed(),
        };
        Ok((detections, times))
    }
}
