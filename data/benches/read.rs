//! Reading a 120k-point frame (the size of a KITTI HDL-64 scan) from the page cache:
//! KITTI `.bin`, binary PCD and binary_compressed PCD.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lidarq_data::PointCloud;
use lidarq_data::kitti::{read_bin, write_bin};
use lidarq_data::pcd::{PcdEncoding, read_pcd, write_pcd};
use std::hint::black_box;

const POINTS: usize = 120_000;

fn frame() -> PointCloud {
    let mut cloud = PointCloud::with_capacity(POINTS);
    for i in 0..POINTS {
        let t = i as f32;
        cloud.push(
            (t * 0.37).sin() * 60.0,
            (t * 0.11).cos() * 40.0,
            (t * 0.013).sin() * 2.0,
            (t * 0.7).fract(),
        );
    }
    cloud
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let cloud = frame();
    let bin = dir.path().join("frame.bin");
    write_bin(&bin, &cloud).expect("write .bin");
    let mut group = c.benchmark_group("read_120k");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.bench_function("kitti_bin", |b| {
        b.iter(|| read_bin(black_box(&bin)).expect("read .bin"))
    });
    for (name, encoding) in [
        ("pcd_binary", PcdEncoding::Binary),
        ("pcd_binary_compressed", PcdEncoding::BinaryCompressed),
    ] {
        let path = dir.path().join(format!("{name}.pcd"));
        write_pcd(&path, &cloud, encoding).expect("write .pcd");
        group.bench_function(name, |b| {
            b.iter(|| read_pcd(black_box(&path)).expect("read .pcd"))
        });
    }
    group.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
