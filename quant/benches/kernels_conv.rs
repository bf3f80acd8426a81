//! 3×3 convolution throughput at PointPillars backbone shapes, int8 (u8 in, requantize +
//! ReLU to i8) and fp32 (bias + ReLU), by im2col GEMM and by Winograd F(2×2, 3×3),
//! measured in the same run so their ratios are fair. Throughput is reported in elements =
//! the direct convolution's multiply-accumulates (×2 for GOP/s or GFLOP/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lidarq_quant::kernels::ConvAlgorithm;
use lidarq_quant::kernels::bench::{BACKBONE_3X3, LayerData};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv3x3");
    group.sample_size(10);
    for (ch, h, w) in BACKBONE_3X3 {
        let name = format!("{ch}x{h}x{w}");
        let data = LayerData::new(ch, h, w).expect("layer data");
        let shape = data.shape;
        group.throughput(Throughput::Elements(shape.macs()));
        for algorithm in ConvAlgorithm::ALL {
            let (q, f) = data.kernels(algorithm).expect("kernels");
            let algo = algorithm.name();
            let mut out_q = vec![0i8; shape.output_len()];
            group.bench_function(format!("int8/{algo}/{name}"), |b| {
                b.iter(|| q.run(&data.input_u8, &mut out_q).expect("int8 run"))
            });
            let mut out_f = vec![0f32; shape.output_len()];
            group.bench_function(format!("fp32/{algo}/{name}"), |b| {
                b.iter(|| f.run(&data.input_f32, &mut out_f).expect("fp32 run"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
