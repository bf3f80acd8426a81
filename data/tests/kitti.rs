//! KITTI readers and writers on real frames (fixtures are frames 000001 and 000004 of the
//! KITTI object benchmark; the scans are cut to their first 2000 points).

use lidarq_data::kitti::{
    KittiDataset, parse_calib, parse_labels, read_bin, read_calib, read_labels, write_bin,
    write_calib, write_labels,
};
use lidarq_data::{Calib, DataError, ExtraField, PointCloud};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn bin_reads_the_real_scan_and_round_trips() {
    let cloud = read_bin(&fixture("kitti/training/velodyne/000001.bin")).unwrap();
    assert_eq!(cloud.len(), 2000);
    assert_eq!(
        (cloud.x[0], cloud.y[0], cloud.z[0], cloud.intensity[0]),
        (49.52, 22.668, 2.051, 0.0)
    );
    assert_eq!(
        (
            cloud.x[1999],
            cloud.y[1999],
            cloud.z[1999],
            cloud.intensity[1999]
        ),
        (0.621, 35.202, 1.176, 0.27)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.bin");
    write_bin(&out, &cloud).unwrap();
    assert_eq!(read_bin(&out).unwrap(), cloud);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(fixture("kitti/training/velodyne/000001.bin")).unwrap()
    );
}

#[test]
fn truncated_bin_names_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.bin");
    std::fs::write(&out, [0u8; 16 * 3 + 7]).unwrap();
    match read_bin(&out) {
        Err(DataError::Bytes { path, offset, msg }) => {
            assert_eq!((path, offset), (out.clone(), 48));
            assert!(msg.contains("not a multiple of 16"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("missing.bin");
    assert!(matches!(read_bin(&missing), Err(DataError::Io { path, .. }) if path == missing));
}

#[test]
fn writing_a_cloud_with_ragged_columns_is_an_error() {
    let mut cloud = PointCloud::with_capacity(2);
    cloud.push(1.0, 2.0, 3.0, 0.5);
    cloud.extra.push(ExtraField {
        name: "ring".into(),
        values: vec![],
    });
    let dir = tempfile::tempdir().unwrap();
    let err = write_bin(&dir.path().join("r.bin"), &cloud).unwrap_err();
    assert!(
        err.to_string().contains("column ring has 0 values"),
        "{err}"
    );
}

#[test]
fn labels_read_the_real_file_and_round_trip_with_scores() {
    let labels = read_labels(&fixture("kitti/training/label_2/000001.txt")).unwrap();
    assert_eq!(labels.len(), 7);
    let truck = &labels[0];
    assert_eq!(truck.kind, "Truck");
    assert_eq!(
        (truck.truncated, truck.occluded, truck.alpha),
        (0.0, 0, -1.57)
    );
    assert_eq!(truck.bbox, [599.41, 156.40, 629.75, 189.25]);
    assert_eq!(truck.hwl, [2.85, 2.63, 12.34]);
    assert_eq!(truck.location, [0.47, 1.49, 69.44]);
    assert_eq!((truck.rotation_y, truck.score), (-1.56, None));
    assert_eq!(labels[2].occluded, 3);
    assert_eq!(labels[3].kind, "DontCare");
    assert_eq!(labels[3].location, [-1000.0; 3]);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("l.txt");
    write_labels(&out, &labels).unwrap();
    assert_eq!(read_labels(&out).unwrap(), labels);

    let mut results = labels.clone();
    for (i, l) in results.iter_mut().enumerate() {
        l.score = Some(0.9 - i as f32 * 0.1);
    }
    write_labels(&out, &results).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next().unwrap().split_whitespace().count(), 16);
    assert_eq!(read_labels(&out).unwrap(), results);
}

#[test]
fn bad_label_lines_name_the_line() {
    let path = Path::new("x/label.txt");
    let short = "Car 0 0 0 1 2 3 4 1.5 1.6 3.9 1 2 10 0.1\n\nCar 0 0 0 1 2 3 4 1.5 1.6 3.9 1 2\n";
    match parse_labels(short, path) {
        Err(DataError::Line { line, msg, .. }) => {
            assert_eq!(line, 3);
            assert!(msg.contains("expected 15 columns"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let malformed = "Car 0 0 0 1 2 3 4 1.5 abc 3.9 1 2 10 0.1\n";
    let err = parse_labels(malformed, path).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x/label.txt:1: width: cannot parse \"abc\" as a number"
    );
    let fractional_occlusion = "Car 0 0.5 0 1 2 3 4 1.5 1.6 3.9 1 2 10 0.1\n";
    assert!(matches!(
        parse_labels(fractional_occlusion, path),
        Err(DataError::Line { line: 1, .. })
    ));
}

#[test]
fn calib_reads_the_real_file_and_round_trips() {
    let calib = read_calib(&fixture("kitti/training/calib/000001.txt")).unwrap();
    assert_eq!(calib, Calib::kitti_default());
    assert_eq!(calib.p[2][(0, 3)], 44.85728);
    assert_eq!(calib.tr_velo_to_cam[(2, 3)], -0.2717806);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.txt");
    let mut odd = calib.clone();
    odd.p[3][(1, 2)] = 1.0 / 3.0;
    write_calib(&out, &odd).unwrap();
    assert_eq!(read_calib(&out).unwrap(), odd);
}

#[test]
fn calib_errors_name_the_key_or_line() {
    let path = Path::new("c.txt");
    let text = std::fs::read_to_string(fixture("kitti/training/calib/000001.txt")).unwrap();
    let without_r0: String = text
        .lines()
        .filter(|l| !l.starts_with("R0_rect"))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = parse_calib(&without_r0, path).unwrap_err();
    assert_eq!(err.to_string(), "c.txt: calib key R0_rect is missing");
    let short_p2 = text.replace("P2: 7.215377000000e+02 ", "P2: ");
    match parse_calib(&short_p2, path) {
        Err(DataError::Line { line: 3, msg, .. }) => {
            assert_eq!(msg, "P2: expected 12 values, found 11")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dataset_lists_splits_and_loads_frames() {
    let ds = KittiDataset::open(&fixture("kitti")).unwrap();
    assert_eq!(ds.split_ids("train").unwrap(), ["000001"]);
    assert_eq!(ds.split_ids("val").unwrap(), ["000004"]);
    assert_eq!(ds.all_ids().unwrap(), ["000001", "000004"]);
    assert_eq!(ds.cloud("000004").unwrap().len(), 2000);
    assert_eq!(ds.labels("000004").unwrap().len(), 7);
    assert_eq!(ds.calib("000001").unwrap(), Calib::kitti_default());
    assert!(ds.split_ids("test").is_err());
    assert!(KittiDataset::open(&fixture("kitti/training")).is_err());
}
