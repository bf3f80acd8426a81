//! Calibration cost: thresholds from one 2048-bin histogram (target for KL: ≤ 5 ms), and
//! streaming a BEV-sized frame into the histogram collector.

use criterion::{Criterion, criterion_group, criterion_main};
use lidarq_quant::calib::kl::entropy_threshold;
use lidarq_quant::calib::mse::mse_threshold;
use lidarq_quant::calib::percentile::percentile_threshold;
use lidarq_quant::{Histogram, HistogramObserver, Observer};
use std::hint::black_box;

const BINS: usize = 2048;

/// Expected counts of 10^7 samples of |N(0, 1)| over [0, 5.3].
fn gaussian_histogram() -> Histogram {
    let w = 5.3 / BINS as f64;
    let density = |x: f64| (2.0 / std::f64::consts::PI).sqrt() * (-0.5 * x * x).exp();
    let counts = (0..BINS)
        .map(|k| (1e7 * density((k as f64 + 0.5) * w) * w).round() as u64)
        .collect();
    Histogram::new(counts, w).expect("valid histogram")
}

fn thresholds(c: &mut Criterion) {
    let h = gaussian_histogram();
    c.bench_function("kl_entropy_threshold_2048_bins", |b| {
        b.iter(|| entropy_threshold(black_box(&h), 127).expect("threshold"))
    });
    c.bench_function("mse_threshold_2048_bins", |b| {
        b.iter(|| mse_threshold(black_box(&h), 127).expect("threshold"))
    });
    c.bench_function("percentile_threshold_2048_bins", |b| {
        b.iter(|| percentile_threshold(black_box(&h), 99.99).expect("threshold"))
    });
}

fn collection(c: &mut Criterion) {
    // One 64-channel 248×216 pseudo-image, 10% of cells occupied.
    let cells = 248 * 216;
    let mask: Vec<bool> = (0..cells).map(|i| i % 10 == 0).collect();
    let frame: Vec<f32> = (0..64 * cells)
        .map(|i| {
            if mask[i % cells] {
                ((i * 7919) % 1000) as f32 * 0.003
            } else {
                0.0
            }
        })
        .collect();
    c.bench_function("histogram_observe_64x248x216_masked", |b| {
        b.iter(|| {
            let mut o = HistogramObserver::new(BINS).expect("bins");
            o.observe(black_box(&frame), Some(&mask)).expect("frame");
            o
        })
    });
}

criterion_group!(benches, thresholds, collection);
criterion_main!(benches);
