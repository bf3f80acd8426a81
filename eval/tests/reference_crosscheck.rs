//! Agreement with the KITTI Python evaluation. The expected numbers were produced by
//! running mmdet3d 1.4.0's `kitti_utils/eval.py` (the port also shipped in OpenPCDet) on the
//! fixture `fixtures/crosscheck` (150 random frames written by `make_crosscheck.py`), with the
//! strict overlaps (Car 0.7, Pedestrian / Cyclist 0.5) and numba's CUDA simulator for its
//! rotated IoU. Rows: Car, Pedestrian, Cyclist; columns: easy, moderate, hard.

use std::path::Path;

use lidarq_eval::GroundTruth;
use lidarq_eval::kitti::{Class, Difficulty, Metric, RecallPoints, evaluate};

type Table = [[f64; 3]; 3];

const IMAGE_R11: Table = [
    [43.7422, 54.9931, 58.0707],
    [21.6960, 62.3375, 74.3242],
    [19.8864, 51.9713, 73.1406],
];
const BEV_R11: Table = [
    [11.7851, 36.8189, 40.9100],
    [11.7424, 34.3087, 47.2763],
    [6.8182, 22.5077, 36.9061],
];
const BOX3D_R11: Table = [
    [5.2288, 15.1404, 18.0248],
    [9.0909, 30.8719, 36.3299],
    [3.7879, 20.2749, 34.8287],
];
const AOS_R11: Table = [
    [43.5071, 54.5722, 57.6325],
    [21.5584, 61.8869, 73.6692],
    [19.7924, 51.6034, 72.5862],
];
const IMAGE_R40: Table = [
    [40.4201, 54.6755, 58.4207],
    [15.6763, 61.6920, 72.1661],
    [13.4175, 49.8783, 71.0098],
];
const BEV_R40: Table = [
    [11.5190, 31.3161, 35.7357],
    [8.2589, 33.5579, 45.0160],
    [3.2143, 22.0854, 36.6517],
];
const BOX3D_R40: Table = [
    [4.8741, 13.1959, 15.1851],
    [5.6000, 28.1000, 35.7252],
    [2.0833, 18.2061, 32.8536],
];
const AOS_R40: Table = [
    [40.1749, 54.1955, 57.9053],
    [15.5486, 61.1985, 71.5056],
    [13.3599, 49.5030, 70.4643],
];

#[test]
fn agrees_with_the_reference_within_a_hundredth_of_a_point() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crosscheck");
    let gt = GroundTruth::open(&root).unwrap();
    let ids = gt.ids(None).unwrap();
    assert_eq!(ids.len(), 150);
    let frames = gt.load(&ids, &root.join("results"), false, &|| {}).unwrap();
    let e = evaluate(&frames);
    assert!(e.with_aos);
    let checks: [(Metric, bool, RecallPoints, &Table); 8] = [
        (Metric::Image, false, RecallPoints::R11, &IMAGE_R11),
        (Metric::Bev, false, RecallPoints::R11, &BEV_R11),
        (Metric::Box3d, false, RecallPoints::R11, &BOX3D_R11),
        (Metric::Image, true, RecallPoints::R11, &AOS_R11),
        (Metric::Image, false, RecallPoints::R40, &IMAGE_R40),
        (Metric::Bev, false, RecallPoints::R40, &BEV_R40),
        (Metric::Box3d, false, RecallPoints::R40, &BOX3D_R40),
        (Metric::Image, true, RecallPoints::R40, &AOS_R40),
    ];
    let mut worst = 0.0f64;
    for (metric, aos, points, table) in checks {
        for (ci, class) in Class::ALL.into_iter().enumerate() {
            for (di, difficulty) in Difficulty::ALL.into_iter().enumerate() {
                let curve = e.curve(metric, class, difficulty).unwrap();
                let ours = if aos {
                    curve.aos_ap(points)
                } else {
                    curve.ap(points)
                }
                .unwrap();
                let theirs = table[ci][di];
                let diff = (ours - theirs).abs();
                worst = worst.max(diff);
                assert!(
                    diff <= 0.01,
                    "{metric:?} aos={aos} {points:?} {class:?} {difficulty:?}: ours {ours:.4}, reference {theirs:.4}"
                );
            }
        }
    }
    // The reference prints 4 decimals; anything beyond rounding would be a real difference.
    assert!(worst <= 0.0001, "worst difference {worst}");
}

#[test]
fn detections_given_in_memory_load_like_result_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crosscheck");
    let gt = GroundTruth::open(&root).unwrap();
    let ids = gt.ids(None).unwrap();
    let from_files = gt.load(&ids, &root.join("results"), false, &|| {}).unwrap();
    let detections = from_files.iter().map(|f| f.dt.clone()).collect();
    let in_memory = gt.load_with(&ids, detections, false, &|| {}).unwrap();
    assert_eq!(in_memory, from_files);
    assert!(in_memory.iter().map(|f| f.dt.len()).sum::<usize>() > 100);
    let err = gt.load_with(&ids, Vec::new(), false, &|| {}).unwrap_err();
    assert!(
        err.to_string().contains("150 frames but detections for 0"),
        "{err}"
    );
}
