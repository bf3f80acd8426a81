//! Golden test: the Rust voxelizer against the numpy reference (`tools/train/voxelize.py`)
//! on the committed fixtures of `tests/fixtures/` (regenerate them with
//! `python3 voxelizer/tests/fixtures/make_fixtures.py`; the reference itself is checked
//! against spconv 2.3.8's `Point2VoxelCPU3d` in `tools/train/tests/test_voxelize.py`).
//!
//! Tolerances: coordinates and point counts exact; features within 1e-6 absolute (the
//! two implementations perform the same f32 operations in the same order, so in practice
//! they agree bit for bit, which the test reports); padded slots exactly zero.

mod npy;

use std::path::{Path, PathBuf};

use lidarq_data::PointCloud;
use lidarq_voxelizer::{
    MEAN_CHANNELS, Occupancy, PillarBatch, PillarDecoration, VoxelBatch, VoxelConfig, Voxelizer,
};

const FEATURE_TOLERANCE: f32 = 1e-6;

#[derive(serde::Deserialize)]
struct Manifest {
    frames: Vec<Frame>,
}

#[derive(serde::Deserialize)]
struct Frame {
    name: String,
    mode: String,
    config: VoxelConfig,
    decoration: Option<PillarDecoration>,
    num_voxels: usize,
    max_num_points: u32,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load_cloud(name: &str) -> PointCloud {
    let points = npy::read::<f32>(&fixtures().join(format!("{name}.points.npy")));
    assert_eq!(points.shape[1], 4, "{name}: points must be [N, 4]");
    let mut cloud = PointCloud::with_capacity(points.shape[0]);
    for p in points.data.chunks_exact(4) {
        cloud.push(p[0], p[1], p[2], p[3]);
    }
    cloud
}

/// What the reference produced for a frame.
struct Expected {
    coords: Vec<[i32; 3]>,
    num_points: Vec<u32>,
    features: Vec<f32>,
}

fn load_expected(frame: &Frame) -> Expected {
    let read = |suffix: &str| fixtures().join(format!("{}.{suffix}.npy", frame.name));
    let coords = npy::read::<i32>(&read("coords"));
    let num_points = npy::read::<i32>(&read("num_points"));
    assert_eq!(num_points.shape, [frame.num_voxels]);
    Expected {
        coords: coords
            .data
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect(),
        num_points: num_points.data.iter().map(|&n| n as u32).collect(),
        features: npy::read::<f32>(&read("features")).data,
    }
}

fn check_occupancy(name: &str, got: &Occupancy, expected: &Expected) {
    assert_eq!(got.coords(), expected.coords, "{name}: coords");
    assert_eq!(got.num_points(), expected.num_points, "{name}: num_points");
}

/// Compares feature values; returns how many differ in their bits (within tolerance).
fn compare_features(name: &str, got: &[f32], want: &[f32]) -> usize {
    assert_eq!(got.len(), want.len(), "{name}: feature count");
    let mut inexact = 0;
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= FEATURE_TOLERANCE,
            "{name}: feature {k}: rust {g} vs numpy {w}"
        );
        inexact += usize::from(g.to_bits() != w.to_bits() && !(g == 0.0 && w == 0.0));
    }
    inexact
}

/// Runs the frame, then an empty cloud, then the frame again through the same voxelizer
/// and batch, so that the compared output comes from reused buffers.
fn run_twice<B>(
    frame: &Frame,
    cloud: &PointCloud,
    mut run: impl FnMut(&mut Voxelizer, &PointCloud, &mut B),
    batch: &mut B,
) {
    let mut voxelizer = Voxelizer::new(frame.config.clone()).unwrap();
    run(&mut voxelizer, cloud, batch);
    run(&mut voxelizer, &PointCloud::default(), batch);
    run(&mut voxelizer, cloud, batch);
}

fn check_pillar_frame(frame: &Frame) -> usize {
    let cloud = load_cloud(&frame.name);
    let expected = load_expected(frame);
    let decoration = frame
        .decoration
        .expect("pillar frames name their decoration");
    let mut batch = PillarBatch::new();
    run_twice(
        frame,
        &cloud,
        |v, c, b| v.pillarize(c, decoration, b).unwrap(),
        &mut batch,
    );
    check_occupancy(&frame.name, &batch, &expected);
    assert_eq!(batch.num_channels(), decoration.num_channels());
    let (slots, channels) = (batch.max_points(), batch.num_channels());
    let mut real = Vec::new();
    for (p, &n) in batch.num_points().iter().enumerate() {
        let (rows, padding) = batch.pillar(p).split_at(n as usize * channels);
        real.extend_from_slice(rows);
        assert!(
            padding.iter().all(|v| v.to_bits() == 0),
            "{}: pillar {p}: padded slots must be +0.0",
            frame.name
        );
        assert_eq!(padding.len(), (slots - n as usize) * channels);
    }
    compare_features(&frame.name, &real, &expected.features)
}

fn check_voxel_frame(frame: &Frame) -> usize {
    let cloud = load_cloud(&frame.name);
    let expected = load_expected(frame);
    let mut batch = VoxelBatch::new();
    run_twice(
        frame,
        &cloud,
        |v, c, b| v.voxelize_mean(c, b).unwrap(),
        &mut batch,
    );
    check_occupancy(&frame.name, &batch, &expected);
    assert_eq!(batch.features().len(), batch.len() * MEAN_CHANNELS);
    compare_features(&frame.name, batch.features(), &expected.features)
}

#[test]
fn rust_matches_numpy_reference_on_every_fixture() {
    let manifest = manifest();
    for frame in &manifest.frames {
        let inexact = match frame.mode.as_str() {
            "pillar" => check_pillar_frame(frame),
            "voxel" => check_voxel_frame(frame),
            other => panic!("{}: unknown mode {other}", frame.name),
        };
        eprintln!(
            "{}: {} voxels, {inexact} features not bit-identical",
            frame.name, frame.num_voxels
        );
    }
}

/// The fixtures must keep exercising both limits in both modes, or the golden test
/// silently stops covering the first-come rule.
#[test]
fn fixtures_make_both_limits_bind() {
    let manifest = manifest();
    for mode in ["pillar", "voxel"] {
        let frames = || manifest.frames.iter().filter(move |f| f.mode == mode);
        assert!(
            frames().any(|f| f.max_num_points as usize == f.config.max_points_per_voxel),
            "no {mode} fixture fills a voxel"
        );
        assert!(
            frames().any(|f| f.num_voxels == f.config.max_voxels),
            "no {mode} fixture reaches the voxel limit"
        );
    }
}
