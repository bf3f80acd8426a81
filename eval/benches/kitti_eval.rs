//! KITTI evaluation of a val-sized set: 3,769 frames, each with 12 ground-truth records
//! (cars, pedestrians, cyclists, a van, a DontCare) and 25 detections (jittered copies and
//! false positives) — the target is ≤ 10 s for the whole evaluation.

use criterion::{Criterion, criterion_group, criterion_main};
use lidarq_data::ObjectLabel;
use lidarq_eval::kitti::{Frame, evaluate};

/// A deterministic pseudo-random stream (no dependency needed for a benchmark fixture).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn object(rng: &mut Lcg, kind: &str) -> ObjectLabel {
    let z = 5.0 + 50.0 * rng.next();
    let x = (rng.next() - 0.5) * z;
    let height = 721.0 * 1.5 / z;
    let left = 600.0 + 721.0 * x / z;
    ObjectLabel {
        kind: kind.into(),
        truncated: 0.3 * rng.next(),
        occluded: (rng.next() * 3.0) as i32,
        alpha: rng.next() * 6.0 - 3.0,
        bbox: [left, 180.0 - height, left + height * 1.2, 180.0],
        hwl: [1.5, 1.6, 3.9],
        location: [x, 1.7, z],
        rotation_y: (rng.next() - 0.5) * std::f32::consts::TAU,
        score: None,
    }
}

fn frames(n: usize) -> Vec<Frame> {
    let mut rng = Lcg(7);
    let kinds = [
        "Car",
        "Car",
        "Car",
        "Car",
        "Car",
        "Pedestrian",
        "Pedestrian",
        "Cyclist",
        "Car",
        "Van",
        "Car",
        "DontCare",
    ];
    (0..n)
        .map(|i| {
            let gt: Vec<ObjectLabel> = kinds.iter().map(|k| object(&mut rng, k)).collect();
            let mut dt = Vec::new();
            for g in gt.iter().filter(|g| g.kind != "DontCare") {
                let mut d = g.clone();
                d.location[0] += 0.3 * (rng.next() - 0.5);
                d.location[2] += 0.3 * (rng.next() - 0.5);
                d.score = Some(rng.next());
                dt.push(d);
            }
            while dt.len() < 25 {
                let mut d = object(&mut rng, kinds[dt.len() % 8]);
                d.score = Some(0.5 * rng.next());
                dt.push(d);
            }
            Frame {
                id: format!("{i:06}"),
                gt,
                dt,
                ..Frame::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let frames = frames(3769);
    let mut group = c.benchmark_group("kitti_eval");
    group.sample_size(10);
    group.bench_function("evaluate_3769_frames", |b| b.iter(|| evaluate(&frames)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
