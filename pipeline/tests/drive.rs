//! A generated drive (`lidarq gen --sequence`): its folder read with ground truth, and the
//! bundled demo model through the detector stages, fp32 and int8 side by side
//! (`--precision both`), int8 calibrated on the drive itself, into KITTI result folders.

use lidarq_data::Detection;
use lidarq_data::synth::{Drive, SynthConfig};
use lidarq_detector::quantized::{Calibrated, QuantizedModel};
use lidarq_detector::{CalibrationOptions, Model};
use lidarq_pipeline::detect::{
    DetectorStages, calibrate_on_source, fp32_backbone, quantized_backbone,
};
use lidarq_pipeline::sink::KittiResultSink;
use lidarq_pipeline::source::{NOMINAL_PERIOD_NS, Preloaded};
use lidarq_pipeline::{DetectionSet, Frame, FrameResult, Pipeline, RunConfig, Sink, Skip, Source};
use std::path::Path;

/// `lidarq gen --sequence --seed 3`'s drive.
const SEED: u64 = 3;
const FRAMES: u64 = 4;

fn bundled_model() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pointpillars-demo");
    Model::load(&dir).unwrap()
}

/// The drive's first frames; `bad` are replaced by skips, as a corrupt scan would be.
fn drive(bad: &[u64]) -> Preloaded {
    let drive = Drive::new(&SynthConfig::new(SEED));
    let items = (0..FRAMES).map(|i| match bad.contains(&i) {
        true => Err(Skip {
            seq: i,
            reason: format!("scan {i} truncated"),
        }),
        false => Ok(Frame::from_cloud(
            i,
            Some(i as i64 * NOMINAL_PERIOD_NS),
            drive.frame(i).cloud,
        )),
    });
    Preloaded::new("generated drive", items)
}

fn int8_on_drive(model: &Model, bad: &[u64]) -> QuantizedModel {
    let options = CalibrationOptions {
        report_frames: 1,
        ..CalibrationOptions::default()
    };
    let Calibrated { model: q, .. } =
        calibrate_on_source(model, &mut drive(bad), 2, options, &mut |_, _, _| {}).unwrap();
    q
}

/// Collects every frame's number and detection sets.
#[derive(Default)]
struct Collect(Vec<(u64, Vec<DetectionSet>)>);

impl Sink for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn write(&mut self, r: &FrameResult) -> lidarq_pipeline::Result<()> {
        self.0.push((r.frame.seq, r.sets.clone()));
        Ok(())
    }
}

/// Centre distance within which an int8 box is the same object as an fp32 one: a car cut
/// by the edge of the model's range (x = 51.2 m) moves its centre by up to ~0.5 m between
/// precisions; distinct objects are metres apart.
const MATCH_TOLERANCE_M: f32 = 0.6;

/// The int8 box matching `d`: same class, centre within `tol` metres.
fn matched<'a>(d: &Detection, int8: &'a [Detection], tol: f32) -> Option<&'a Detection> {
    int8.iter().find(|q| {
        let dist = ((q.bbox.x - d.bbox.x).powi(2) + (q.bbox.y - d.bbox.y).powi(2)).sqrt();
        q.class == d.class && dist < tol
    })
}

/// The drive (frame 2 corrupt) through fp32 and int8 side by side with `workers` backbone
/// workers, into KITTI result files under `out` and the returned sets.
fn replay_both(
    model: &Model,
    int8: &QuantizedModel,
    workers: usize,
    out: &Path,
) -> (lidarq_pipeline::Summary, Collect) {
    let stages = DetectorStages::new(&model.config, model.post.clone(), workers, &mut || {
        Ok(vec![
            ("fp32".into(), fp32_backbone(model)?),
            ("int8".into(), quantized_backbone(int8)?),
        ])
    })
    .unwrap();
    let mut files = KittiResultSink::new(out.to_path_buf());
    let mut sets = Collect::default();
    let summary = stages
        .append_to(Pipeline::new(Box::new(drive(&[2])), RunConfig::default()))
        .unwrap()
        .run(&mut [&mut files, &mut sets])
        .unwrap();
    (summary, sets)
}

#[test]
fn both_precisions_find_the_same_objects_and_write_one_folder_each() {
    let model = bundled_model();
    let int8 = int8_on_drive(&model, &[]);
    let out = tempfile::tempdir().unwrap();
    // Two backbone workers (`--rate max`'s default): frames alternate between them, each
    // network on its own share of the threads, and must come back in order with the same
    // detections as one worker on every thread.
    let (summary, sets) = replay_both(&model, &int8, 2, out.path());
    let one_worker = replay_both(&model, &int8, 1, tempfile::tempdir().unwrap().path()).1;
    assert_eq!(sets.0, one_worker.0, "two workers and one differ");
    assert_eq!((summary.frames, summary.skipped.len()), (FRAMES - 1, 1));
    let stages: Vec<&str> = summary.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(
        stages,
        ["source", "voxelize", "backbone", "decode", "latency"]
    );

    for precision in ["fp32", "int8"] {
        let mut names: Vec<String> = std::fs::read_dir(out.path().join(precision))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["000000.txt", "000001.txt", "000003.txt"],
            "{precision}"
        );
    }

    let seqs: Vec<u64> = sets.0.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [0, 1, 3]);
    let mut confident = 0;
    for (_, frame) in &sets.0 {
        let [fp32, int8] = &frame[..] else {
            panic!("two detection sets per frame, got {}", frame.len())
        };
        assert_eq!((fp32.name.as_str(), int8.name.as_str()), ("fp32", "int8"));
        for d in fp32.detections.iter().filter(|d| d.score > 0.5) {
            confident += 1;
            let q = matched(d, &int8.detections, MATCH_TOLERANCE_M)
                .unwrap_or_else(|| panic!("fp32 {d:?} has no int8 match in {:?}", int8.detections));
            assert!((q.score - d.score).abs() < 0.15, "{d:?} vs {q:?}");
        }
    }
    assert!(
        confident >= 3,
        "{confident} confident fp32 boxes on the drive"
    );
}

#[test]
fn calibration_passes_over_unreadable_frames_and_needs_one() {
    let model = bundled_model();
    let options = CalibrationOptions::default;
    let mut all_bad = drive(&[0, 1, 2, 3]);
    let err = calibrate_on_source(&model, &mut all_bad, 2, options(), &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no readable frame"), "{err}");

    // Frame 0 unreadable: calibration reads frames 1 and 2 and stops there.
    let mut source = drive(&[0]);
    let mut seen = Vec::new();
    calibrate_on_source(
        &model,
        &mut source,
        2,
        options(),
        &mut |phase, done, total| seen.push((phase, done, total)),
    )
    .unwrap();
    let collected: Vec<_> = seen
        .iter()
        .filter(|(p, _, _)| *p == lidarq_detector::quantized::Phase::Collect)
        .collect();
    assert_eq!(collected.len(), 2);
    assert_eq!(
        source.next_frame().map(|f| f.map(|f| f.seq)),
        Some(Ok(3)),
        "frames 0-2 consumed"
    );
}

#[test]
fn a_generated_drive_folder_reads_with_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::new(SEED);
    lidarq_data::synth::write_drive(dir.path(), &cfg, 2, &mut || {}).unwrap();
    let mut source = lidarq_pipeline::source::open(dir.path(), None).unwrap();
    assert_eq!(source.len_hint(), Some(2));
    let calib = lidarq_data::kitti::read_calib(&dir.path().join("calib.txt")).unwrap();
    let drive = Drive::new(&cfg);
    for i in 0..2u64 {
        let frame = source.next_frame().unwrap().unwrap();
        let name = format!("{i:010}");
        assert_eq!((frame.seq, frame.name.as_str()), (i, name.as_str()));
        // timestamps.txt holds wall-clock times: ns survive only to f64 precision.
        let t = frame.sensor_time_ns.unwrap();
        assert!((t - i as i64 * NOMINAL_PERIOD_NS).abs() < 1_000, "{t}");
        assert_eq!(frame.cloud.len(), drive.frame(i).cloud.len());
        let path = dir.path().join("label_2").join(format!("{name}.txt"));
        let labels = lidarq_data::kitti::read_labels(&path).unwrap();
        let expected: Vec<_> = labels
            .iter()
            .filter(|l| l.kind != "DontCare")
            .map(|l| (l.kind.clone(), calib.label_to_box(l)))
            .collect();
        assert!(!expected.is_empty(), "frame {i} has objects");
        let gt: Vec<_> = frame
            .ground_truth
            .unwrap()
            .into_iter()
            .map(|d| (d.class, d.bbox))
            .collect();
        assert_eq!(gt, expected);
        assert!(frame.calib.is_some());
    }
    assert!(source.next_frame().is_none());
}
