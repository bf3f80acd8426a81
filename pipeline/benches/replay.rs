//! Replay throughput on generated HDL-64E frames (the data crate's synthetic drive):
//! - `pointcloud2_decode`: CDR PointCloud2 → `PointCloud`, the MCAP source's per-frame work;
//! - `fp32_replay/{pipelined,back_to_back}`: frames through the fp32 detector's stages
//!   (voxelize, backbone, decode) at `--rate max`, with stages overlapping across frames and
//!   one frame at a time. The model has random weights: only shapes matter for time.
//!
//! Run: `cargo bench -p lidarq-pipeline --bench replay -- --warm-up-time 1 --measurement-time 3`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lidarq_data::PointCloud;
use lidarq_data::synth::{Drive, SynthConfig};
use lidarq_detector::{Model, ModelConfig};
use lidarq_pipeline::pointcloud2::{PointCloud2, encode_xyzi};
use lidarq_pipeline::{Frame, Pipeline, RunConfig, Source, SourceItem};

/// Frames per replay iteration: enough for the stages to overlap in steady state.
const REPLAY_FRAMES: usize = 6;
const SEED: u64 = 7;

fn frames(n: usize) -> Vec<PointCloud> {
    let drive = Drive::new(&SynthConfig::new(SEED));
    (0..n as u64).map(|i| drive.frame(i).cloud).collect()
}

/// Pre-generated clouds, so the source costs nothing measurable.
struct Preloaded(std::vec::IntoIter<PointCloud>, u64);

impl Source for Preloaded {
    fn describe(&self) -> String {
        "preloaded synthetic frames".into()
    }
    fn len_hint(&self) -> Option<u64> {
        Some(self.0.len() as u64)
    }
    fn next_frame(&mut self) -> Option<SourceItem> {
        let cloud = self.0.next()?;
        self.1 += 1;
        Some(Ok(Frame::from_cloud(self.1 - 1, None, cloud)))
    }
}

fn decode(c: &mut Criterion) {
    let cloud = frames(1).remove(0);
    let bytes = encode_xyzi(0, "velodyne", &cloud);
    let mut g = c.benchmark_group("pointcloud2_decode");
    g.throughput(Throughput::Elements(cloud.len() as u64));
    g.bench_function(format!("hdl64_{}_points", cloud.len()), |b| {
        b.iter(|| {
            let msg = PointCloud2::parse(std::hint::black_box(&bytes)).expect("valid message");
            msg.decode().expect("x, y, z are declared").cloud.len()
        })
    });
    g.finish();
}

fn replay(c: &mut Criterion) {
    let clouds = frames(REPLAY_FRAMES);
    let model = Model::random(ModelConfig::kitti(), SEED).expect("the KITTI config is valid");
    let mut g = c.benchmark_group("fp32_replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(REPLAY_FRAMES as u64));
    for (name, overlap) in [("pipelined", true), ("back_to_back", false)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || clouds.clone(),
                |clouds| {
                    let config = RunConfig {
                        overlap,
                        ..RunConfig::default()
                    };
                    let (v, bb, d) = lidarq_pipeline::detect::fp32_stages(model.clone())
                        .expect("random model builds");
                    let summary = Pipeline::new(Box::new(Preloaded(clouds.into_iter(), 0)), config)
                        .then(v)
                        .then(bb)
                        .then(d)
                        .run(&mut [])
                        .expect("replay runs");
                    assert_eq!(summary.frames, REPLAY_FRAMES as u64);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, decode, replay);
criterion_main!(benches);
