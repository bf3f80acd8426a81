//! Replay throughput on generated HDL-64E frames (the data crate's synthetic drive):
//! - `pointcloud2_decode`: CDR PointCloud2 → `PointCloud`, the MCAP source's per-frame work;
//! - `replay_{int8,fp32}/…`: frames through the bundled demo model's stages (voxelize,
//!   backbone, decode, track) at `--rate max`: `pipelined` (stages overlap across frames,
//!   with `lidarq replay --rate max`'s default backbone workers: two on 2 threads or more),
//!   `pipelined_one_worker` (`--workers 1`) and `back_to_back` (one frame at a time,
//!   `--sequential`). int8 is calibrated (KL,
//!   sparsity-aware) on the drive's first frames before timing. The drive is `lidarq gen
//!   --sequence --seed 3`'s.
//!
//! Run: `cargo bench -p lidarq-pipeline --no-default-features --bench replay -- --warm-up-time 1 --measurement-time 3`
//!
//! Measured (idle 2-core Intel Xeon, AVX-512 VNNI path, 2026-12-03), per 40 frames: int8
//! pipelined 630 ms (63.5 frames/s, 1.37× back to back), one worker 771 ms (51.9), back
//! to back 862 ms (46.4); fp32 pipelined 902 ms (44.3, 1.30×), one worker 1079 ms (37.1),
//! back to back 1169 ms (34.2).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lidarq_data::PointCloud;
use lidarq_data::synth::{Drive, SynthConfig};
use lidarq_detector::{CalibrationOptions, Model};
use lidarq_pipeline::detect::{
    Backbone, DetectorStages, default_workers, fp32_backbone, quantized_backbone,
};
use lidarq_pipeline::pointcloud2::{PointCloud2, encode_xyzi};
use lidarq_pipeline::source::{NOMINAL_PERIOD_NS, Preloaded};
use lidarq_pipeline::track::{TrackStage, TrackerConfig};
use lidarq_pipeline::{Frame, Pipeline, Rate, RunConfig, Source};
use std::path::Path;

/// Frames per replay iteration: enough that filling and draining the pipeline (a frame or
/// two each way) is a small part of the time, as in a log replay.
const REPLAY_FRAMES: usize = 40;
/// Frames the int8 model is calibrated on.
const CALIB_FRAMES: usize = 8;
const SEED: u64 = 3;

fn frames(n: usize) -> Vec<PointCloud> {
    let drive = Drive::new(&SynthConfig::new(SEED));
    (0..n as u64).map(|i| drive.frame(i).cloud).collect()
}

/// Pre-generated frames 0.1 s apart, so the source costs nothing measurable.
fn preloaded(clouds: Vec<PointCloud>) -> Box<dyn Source> {
    let frames = clouds.into_iter().enumerate().map(|(i, cloud)| {
        let t = i as i64 * NOMINAL_PERIOD_NS;
        Ok(Frame::from_cloud(i as u64, Some(t), cloud))
    });
    Box::new(Preloaded::new("synthetic drive", frames))
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pointpillars-demo");
    let model = Model::load(&dir).expect("the bundled demo model loads");
    let calib = clouds[..CALIB_FRAMES].iter().cloned().map(Ok);
    let int8 = lidarq_detector::calibrate(
        &model,
        calib,
        CalibrationOptions::default(),
        &mut |_, _, _| {},
    )
    .expect("calibration runs")
    .model;
    let backbone = |precision: &str| -> Box<dyn Backbone> {
        match precision {
            "int8" => quantized_backbone(&int8),
            _ => fp32_backbone(&model),
        }
        .expect("the executor builds")
    };
    for precision in ["int8", "fp32"] {
        let mut g = c.benchmark_group(format!("replay_{precision}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(REPLAY_FRAMES as u64));
        let modes = [
            (
                "pipelined",
                true,
                default_workers(Rate::Max, rayon::current_num_threads()),
            ),
            ("pipelined_one_worker", true, 1),
            ("back_to_back", false, 1),
        ];
        for (name, overlap, workers) in modes {
            g.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        let stages = DetectorStages::new(
                            &model.config,
                            model.post.clone(),
                            workers,
                            &mut || Ok(vec![(precision.to_string(), backbone(precision))]),
                        )
                        .expect("the stages build");
                        (clouds.clone(), stages)
                    },
                    |(clouds, stages)| {
                        let config = RunConfig {
                            overlap,
                            ..RunConfig::default()
                        };
                        let source = preloaded(clouds);
                        let summary = stages
                            .append_to(Pipeline::new(source, config))
                            .expect("the workers start")
                            .then(TrackStage::new(TrackerConfig::default()))
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
}

criterion_group!(benches, decode, replay);
criterion_main!(benches);
