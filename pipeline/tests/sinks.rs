//! Sinks end to end: a short replay through a stage that emits fp32 and int8 detections and
//! the tracker, into KITTI result files and (feature `rerun`) a saved `.rrd` recording read
//! back with Rerun's own decoder.

use lidarq_data::{Box3D, Calib, Detection, PointCloud};
use lidarq_pipeline::sink::KittiResultSink;
use lidarq_pipeline::track::{TrackStage, TrackerConfig};
use lidarq_pipeline::{
    DetectionSet, Frame, Pipeline, RunConfig, Sink, Source, SourceItem, stage_fn,
};

const FRAMES: u64 = 5;

fn car(x: f32, score: f32) -> Detection {
    Detection {
        bbox: Box3D {
            x,
            y: 2.0,
            z: -0.8,
            dx: 3.9,
            dy: 1.6,
            dz: 1.5,
            yaw: 0.3,
        },
        class: "Car".into(),
        score,
    }
}

/// Frames with 100 points each and one ground-truth car moving 1 m per frame.
struct Drive(u64);

impl Source for Drive {
    fn describe(&self) -> String {
        "test drive".into()
    }
    fn len_hint(&self) -> Option<u64> {
        Some(FRAMES)
    }
    fn next_frame(&mut self) -> Option<SourceItem> {
        let seq = self.0;
        if seq == FRAMES {
            return None;
        }
        self.0 += 1;
        let mut cloud = PointCloud::default();
        for i in 0..100 {
            cloud.push(
                i as f32 * 0.5,
                (i % 7) as f32,
                (i % 5) as f32 * 0.5 - 2.0,
                0.3,
            );
        }
        let mut frame =
            Frame::from_cloud(seq, Some(1_000_000_000 + seq as i64 * 100_000_000), cloud);
        frame.ground_truth = Some(vec![car(10.0 + seq as f32, 1.0)]);
        frame.calib = Some(Calib::kitti_default());
        Some(Ok(frame))
    }
}

/// fp32 and int8 "models" that report the ground-truth car with slightly different scores.
fn detect(frame: &Frame, (): ()) -> lidarq_pipeline::Result<Vec<DetectionSet>> {
    let x = 10.0 + frame.seq as f32;
    Ok(vec![
        DetectionSet::new("fp32", vec![car(x, 0.87)]),
        DetectionSet::new("int8", vec![car(x + 0.05, 0.84)]),
    ])
}

fn replay(sinks: &mut [&mut dyn Sink]) -> lidarq_pipeline::Summary {
    Pipeline::new(Box::new(Drive(0)), RunConfig::default())
        .then(stage_fn("detect", detect))
        .then(TrackStage::new(TrackerConfig::default()))
        .run(sinks)
        .unwrap()
}

#[test]
fn kitti_result_files_round_trip_through_the_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = KittiResultSink::new(dir.path().to_path_buf());
    assert_eq!(replay(&mut [&mut sink]).frames, FRAMES);
    let calib = Calib::kitti_default();
    for (set, dx, score) in [("fp32", 0.0, 0.87), ("int8", 0.05, 0.84)] {
        for seq in 0..FRAMES {
            let path = dir.path().join(set).join(format!("{seq:06}.txt"));
            let labels = lidarq_data::kitti::read_labels(&path).unwrap();
            assert_eq!(labels.len(), 1);
            assert_eq!(
                (labels[0].kind.as_str(), labels[0].score),
                ("Car", Some(score))
            );
            let back = calib.label_to_box(&labels[0]);
            let want = car(10.0 + seq as f32 + dx, score).bbox;
            for (g, w) in [
                (back.x, want.x),
                (back.y, want.y),
                (back.z, want.z),
                (back.dx, want.dx),
                (back.yaw, want.yaw),
            ] {
                assert!((g - w).abs() < 1e-4, "{set} {seq}: {back:?} vs {want:?}");
            }
        }
    }
}

#[cfg(feature = "rerun")]
#[test]
fn a_saved_recording_has_every_entity_once_per_frame() {
    use lidarq_pipeline::sink::{ColorBy, RerunSink, RerunTarget};
    use std::collections::BTreeMap;

    let dir = tempfile::tempdir().unwrap();
    let rrd = dir.path().join("replay.rrd");
    {
        let mut sink = RerunSink::new(&RerunTarget::Save(rrd.clone()), ColorBy::Height).unwrap();
        replay(&mut [&mut sink]);
    }
    let file = std::io::BufReader::new(std::fs::File::open(&rrd).unwrap());
    // Per entity path: the `frame` timeline values of its rows, and its static row count.
    let mut frames: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut statics: BTreeMap<String, usize> = BTreeMap::new();
    for msg in re_log_encoding::rrd::DecoderApp::decode_lazy(file) {
        let re_log_types::LogMsg::ArrowMsg(_, arrow) = msg.unwrap() else {
            continue;
        };
        let chunk = re_chunk::Chunk::from_arrow_msg(&arrow).unwrap();
        let path = chunk.entity_path().to_string();
        if chunk.is_static() {
            *statics.entry(path).or_default() += chunk.num_rows();
            continue;
        }
        let column = &chunk.timelines()[&"frame".into()];
        assert!(
            chunk.timelines().contains_key(&"sensor_time".into()),
            "{path}"
        );
        frames.entry(path).or_default().extend(column.times_raw());
    }
    assert_eq!(statics.get("/world"), Some(&1));
    let want: Vec<i64> = (0..FRAMES as i64).collect();
    let expected_paths = [
        "/metrics/detections/fp32",
        "/metrics/detections/int8",
        "/metrics/latency/detect",
        "/metrics/latency/end_to_end",
        "/metrics/latency/source",
        "/metrics/latency/track",
        "/metrics/points",
        "/world/det/fp32",
        "/world/det/int8",
        "/world/gt",
        "/world/lidar",
    ];
    assert_eq!(frames.keys().collect::<Vec<_>>(), expected_paths);
    for (path, mut times) in frames {
        times.sort_unstable();
        assert_eq!(times, want, "{path}");
    }
}
