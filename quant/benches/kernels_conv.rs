//! 3×3 convolution throughput at PointPillars backbone shapes, int8 (u8 in, requantize +
//! ReLU to i8) and fp32 (bias + ReLU), by im2col GEMM and by Winograd F(2×2, 3×3),
//! measured in the same run so their ratios are fair. Throughput is reported in elements =
//! the direct convolution's multiply-accumulates (×2 for GOP/s or GFLOP/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lidarq_quant::kernels::{ConvAlgorithm, ConvShape, OutputStage, PackedConvF32, PackedConvI8};
use lidarq_quant::{QuantizedMultiplier, Requantizer};

/// (name, in_h, in_w, channels) of the three backbone blocks' 3×3 convolutions.
const SHAPES: [(&str, usize, usize, usize); 3] = [
    ("64x248x216", 248, 216, 64),
    ("128x124x108", 124, 108, 128),
    ("256x62x54", 62, 54, 256),
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv3x3");
    group.sample_size(10);
    for (name, h, w, ch) in SHAPES {
        let shape = ConvShape::conv(h, w, ch, ch, 3, 1, 1);
        group.throughput(Throughput::Elements(shape.macs()));
        let weights: Vec<i8> = (0..shape.weights_len())
            .map(|i| (i * 37 % 255) as i8)
            .collect();
        let input: Vec<u8> = (0..shape.input_len())
            .map(|i| (i * 13 % 256) as u8)
            .collect();
        let rq = Requantizer::new(
            vec![QuantizedMultiplier::from_real(1e-4).expect("valid multiplier"); ch],
            vec![100; ch],
            -128,
            -128,
            127,
        )
        .expect("valid requantizer");
        let wf: Vec<f32> = weights.iter().map(|&v| f32::from(v) * 1e-3).collect();
        let xf: Vec<f32> = input.iter().map(|&v| f32::from(v) * 1e-2).collect();
        for algorithm in [ConvAlgorithm::Im2col, ConvAlgorithm::Winograd] {
            let stage = OutputStage::Requantize(rq.clone());
            let q = PackedConvI8::with_algorithm(shape, &weights, 3, stage, algorithm)
                .expect("int8 conv");
            let mut out_q = vec![0i8; shape.output_len()];
            let algo = algorithm.name();
            group.bench_function(format!("int8/{algo}/{name}"), |b| {
                b.iter(|| q.run(&input, &mut out_q).expect("int8 run"))
            });
            let f = PackedConvF32::with_algorithm(shape, &wf, None, true, algorithm)
                .expect("fp32 conv");
            let mut out_f = vec![0f32; shape.output_len()];
            group.bench_function(format!("fp32/{algo}/{name}"), |b| {
                b.iter(|| f.run(&xf, &mut out_f).expect("fp32 run"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
