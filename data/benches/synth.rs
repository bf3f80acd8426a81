//! One 64-beam (HDL-64E) sweep of a generated street, scene building, ray casting and
//! labelling included: the generator's frame rate.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lidarq_data::synth::{LidarModel, SynthConfig, object_frame};

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("synth");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    for beams in [32, 64, 128] {
        let Some(lidar) = LidarModel::with_beams(beams) else {
            continue;
        };
        let cfg = SynthConfig { lidar, seed: 1 };
        let mut i = 0u64;
        group.bench_function(format!("object_frame_{beams}_beams"), |b| {
            b.iter(|| {
                i += 1;
                object_frame(&cfg, i % 16)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
