//! The MCAP fixtures were written by the Python `mcap` / `mcap-ros2-support` packages
//! (`fixtures/make_mcap.py`); the points they decode to must be exactly the ones that
//! script wrote, listed in `fixtures/lidar.expected`.

use lidarq_pipeline::source::{McapSource, Source};
use lidarq_pipeline::{Frame, PipelineError};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// (topic, stamp ns, non-finite count, points) per message, from `lidar.expected`.
type Expected = (String, i64, usize, Vec<[f32; 4]>);

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(fixture("lidar.expected")).unwrap();
    let mut frames: Vec<Expected> = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split(' ').collect();
        if t[0] == "frame" {
            frames.push((
                t[1].into(),
                t[2].parse().unwrap(),
                t[4].parse().unwrap(),
                vec![],
            ));
            assert_eq!(t.len(), 5);
        } else {
            let p: Vec<f32> = t.iter().map(|v| v.parse().unwrap()).collect();
            frames.last_mut().unwrap().3.push([p[0], p[1], p[2], p[3]]);
        }
    }
    frames
}

fn read_all(path: &Path, topic: Option<&str>) -> Vec<Frame> {
    let mut source = McapSource::open(path, topic).unwrap();
    std::iter::from_fn(|| source.next_frame())
        .map(|item| item.unwrap())
        .collect()
}

/// Checks `frames` against the first `n` expected messages of `topic`.
fn assert_frames_match(frames: &[Frame], topic: &str, n: usize) {
    let want: Vec<Expected> = expected()
        .into_iter()
        .filter(|e| e.0 == topic)
        .take(n)
        .collect();
    assert_eq!(frames.len(), want.len());
    for (k, (f, (_, stamp, non_finite, points))) in frames.iter().zip(want).enumerate() {
        assert_eq!(f.seq, k as u64);
        assert_eq!(f.sensor_time_ns, Some(stamp));
        assert_eq!(f.non_finite, non_finite);
        let got: Vec<[f32; 4]> = (0..f.cloud.len())
            .map(|i| {
                [
                    f.cloud.x[i],
                    f.cloud.y[i],
                    f.cloud.z[i],
                    f.cloud.intensity[i],
                ]
            })
            .collect();
        // Bit-exact: compare the bit patterns, not float equality.
        let bits = |v: &[[f32; 4]]| v.iter().map(|p| p.map(f32::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&points), "frame {k} of {topic}");
    }
}

#[test]
fn every_container_variant_decodes_to_the_written_points() {
    for file in ["lidar_plain.mcap", "lidar_zstd.mcap", "lidar_lz4.mcap"] {
        let path = fixture(file);
        let source = McapSource::open(&path, None).unwrap();
        assert_eq!(source.topic(), Some("/points"), "{file}");
        assert_eq!(source.len_hint(), Some(4), "{file}");
        assert_frames_match(&read_all(&path, None), "/points", 4);
        assert_frames_match(&read_all(&path, Some("/aux")), "/aux", 2);
    }
}

#[test]
fn a_rosbag2_folder_reads_its_mcap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("lidar_zstd.mcap"), dir.path().join("drive_0.mcap")).unwrap();
    std::fs::write(
        dir.path().join("metadata.yaml"),
        "rosbag2_bagfile_information:\n",
    )
    .unwrap();
    let source = lidarq_pipeline::source::open(dir.path(), None).unwrap();
    assert!(
        source.describe().contains("/points"),
        "{}",
        source.describe()
    );
    assert_frames_match(&read_all(dir.path(), None), "/points", 4);
}

#[test]
fn unknown_or_non_cloud_topics_are_refused_with_the_list() {
    let e = McapSource::open(&fixture("lidar_plain.mcap"), Some("/status"))
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: topic /status has no sensor_msgs/msg/PointCloud2 messages in CDR; PointCloud2 topics: {{\"/aux\", \"/points\"}}",
            fixture("lidar_plain.mcap").display()
        )
    );
}

/// Flips one byte inside the second /points message of the unchunked file: that frame is
/// skipped with a reason naming the file, message and offset; the others still decode.
#[test]
fn a_corrupt_message_is_skipped_and_named() {
    let mut bytes = std::fs::read(fixture("lidar_plain.mcap")).unwrap();
    // The float64 cloud's point_step (32) and row_step (3840), as CDR u32 LE; make the
    // point_step 8.
    let frame_id = b"velodyne\0";
    let starts: Vec<usize> = bytes
        .windows(frame_id.len())
        .enumerate()
        .filter(|(_, w)| w == frame_id)
        .map(|(i, _)| i)
        .collect();
    let second_points = starts[2];
    let step_at = bytes[second_points..]
        .windows(8)
        .position(|w| w == [32, 0, 0, 0, 0, 15, 0, 0])
        .unwrap()
        + second_points;
    bytes[step_at] = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.mcap");
    std::fs::write(&path, &bytes).unwrap();

    let mut source = McapSource::open(&path, None).unwrap();
    let items: Vec<_> = std::iter::from_fn(|| source.next_frame()).collect();
    assert_eq!(items.len(), 4);
    assert!(items[0].is_ok() && items[2].is_ok() && items[3].is_ok());
    let skip = items[1].as_ref().unwrap_err();
    assert_eq!(skip.seq, 1);
    let want = PipelineError::Message {
        path: path.clone(),
        topic: "/points".into(),
        index: 1,
        log_time_ns: 1_700_000_000_205_000_123,
        // Where `data` starts: 4 (encapsulation) + 8 (stamp) + 13 (frame_id) + 3 (pad) + 12
        // (height, width, field count) + 88 (fields x, y, z of 20 bytes with padding,
        // intensity of 28) + 1 (is_bigendian) + 3 (pad) + 8 (point_step, row_step) = 140.
        offset: 140,
        msg: "field y ends at byte 16 of a 8-byte point".into(),
    };
    assert_eq!(skip.reason, want.to_string());
}

/// A recording cut short inside a chunk has no summary: the default topic is found while
/// reading, the whole chunks before the cut decode, and the cut is one skip, not a failure.
#[test]
fn a_truncated_log_yields_what_precedes_the_cut() {
    let bytes = std::fs::read(fixture("lidar_zstd.mcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mcap");
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut source = McapSource::open(&path, None).unwrap();
    assert_eq!((source.topic(), source.len_hint()), (None, None));
    let items: Vec<_> = std::iter::from_fn(|| source.next_frame()).collect();
    let (last, frames) = items.split_last().unwrap();
    assert!(!frames.is_empty() && frames.iter().all(Result::is_ok));
    let frames: Vec<Frame> = frames.iter().cloned().map(Result::unwrap).collect();
    let n = frames.len();
    assert_frames_match(&frames, "/points", n);
    let skip = last.as_ref().unwrap_err();
    assert!(
        skip.reason.contains("the rest of this file is skipped"),
        "{}",
        skip.reason
    );
    assert_eq!(source.topic(), Some("/points"));
}
