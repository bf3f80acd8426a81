//! Calibration cost per frame on the KITTI-size model (random weights, a synthetic
//! HDL-64 frame, 2 threads): the float run plus sparsity-aware histogram collection of
//! `Calibrator::observe` (64 frames of KL calibration ≈ 64 × this + the threshold search).
//!
//! `cargo bench -p lidarq-detector --bench calibrate -- --warm-up-time 1 --measurement-time 10`

use criterion::{Criterion, criterion_group, criterion_main};
use lidarq_data::synth::{SynthConfig, object_frame};
use lidarq_detector::quantized::Calibrator;
use lidarq_detector::{CalibrationOptions, Fp32Executor, Model, ModelConfig, PillarInput};
use lidarq_voxelizer::{PillarBatch, Split, Voxelizer};

fn bench(c: &mut Criterion) {
    // The global pool: criterion's group cannot move into `install`.
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let model = Model::random(ModelConfig::kitti(), 7).unwrap();
    let cloud = object_frame(&SynthConfig::new(7), 0).cloud;
    let mut batch = PillarBatch::new();
    Voxelizer::new(model.config.voxel_config(Split::Test))
        .unwrap()
        .pillarize(&cloud, model.config.decoration(), &mut batch)
        .unwrap();
    let input = PillarInput::from(&batch);
    let mut g = c.benchmark_group("calibrate_kitti");
    g.sample_size(10);
    {
        let mut fp32 = Fp32Executor::new(&model.graph).unwrap();
        g.bench_function("fp32_frame", |b| {
            b.iter(|| {
                fp32.run(&input).unwrap();
            })
        });
        let mut cal = Calibrator::new(&model, CalibrationOptions::default()).unwrap();
        g.bench_function("observe_frame_sparse", |b| {
            b.iter(|| cal.observe(&input).unwrap())
        });
        let options = CalibrationOptions {
            sparse: false,
            ..CalibrationOptions::default()
        };
        let mut cal = Calibrator::new(&model, options).unwrap();
        g.bench_function("observe_frame_dense", |b| {
            b.iter(|| cal.observe(&input).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
