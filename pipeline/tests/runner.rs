//! The staged runner with simple stages: order, overlap, back-to-back mode, backpressure,
//! skips from sources and stages, stop flag, sink failure, and a folder with a truncated
//! scan in the middle.

use lidarq_data::PointCloud;
use lidarq_pipeline::{
    DetectionSet, Frame, FrameResult, Pipeline, PipelineError, RunConfig, Sink, Skip, Source,
    SourceItem, Summary, stage_fn,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// `n` one-point frames 0.1 s apart; `bad` frame numbers are skips; counts frames read.
struct Counted {
    n: u64,
    next: u64,
    bad: Vec<u64>,
    read: Arc<AtomicU64>,
}

impl Counted {
    fn new(n: u64, bad: &[u64]) -> (Self, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        let source = Self {
            n,
            next: 0,
            bad: bad.to_vec(),
            read: read.clone(),
        };
        (source, read)
    }
}

impl Source for Counted {
    fn describe(&self) -> String {
        format!("{} counted frames", self.n)
    }
    fn len_hint(&self) -> Option<u64> {
        Some(self.n)
    }
    fn next_frame(&mut self) -> Option<SourceItem> {
        let seq = self.next;
        if seq == self.n {
            return None;
        }
        self.next += 1;
        self.read.fetch_add(1, Ordering::SeqCst);
        if self.bad.contains(&seq) {
            return Some(Err(Skip {
                seq,
                reason: format!("frame {seq} is corrupt"),
            }));
        }
        let mut cloud = PointCloud::default();
        cloud.push(seq as f32, 0.0, 0.0, 0.0);
        Some(Ok(Frame::from_cloud(
            seq,
            Some(seq as i64 * 100_000_000),
            cloud,
        )))
    }
}

/// A hook run on each written frame.
type OnWrite = Box<dyn FnMut(&FrameResult) -> lidarq_pipeline::Result<()>>;

/// Records what reaches the sinks.
#[derive(Default)]
struct Recorder {
    seqs: Vec<u64>,
    skips: Vec<u64>,
    sets: Vec<Vec<DetectionSet>>,
    finished: Option<Summary>,
    on_write: Option<OnWrite>,
}

impl Sink for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn write(&mut self, r: &FrameResult) -> lidarq_pipeline::Result<()> {
        self.seqs.push(r.frame.seq);
        self.sets.push(r.sets.clone());
        match &mut self.on_write {
            Some(f) => f(r),
            None => Ok(()),
        }
    }
    fn skipped(&mut self, skip: &Skip) -> lidarq_pipeline::Result<()> {
        self.skips.push(skip.seq);
        Ok(())
    }
    fn finish(&mut self, summary: &Summary) -> lidarq_pipeline::Result<()> {
        self.finished = Some(summary.clone());
        Ok(())
    }
}

/// x of the frame's only point, as the stage chain hands it over.
fn first_x(frame: &Frame) -> f32 {
    frame.cloud.x[0]
}

#[test]
fn frames_arrive_in_order_with_skips_from_sources_and_stages() {
    let (source, _) = Counted::new(30, &[4, 17]);
    let mut rec = Recorder::default();
    let summary = Pipeline::new(Box::new(source), RunConfig::default())
        .then(stage_fn("double", |f: &Frame, ()| {
            // Uneven work so that the stages drift against each other.
            std::thread::sleep(Duration::from_micros(200 * (f.seq % 3)));
            Ok(first_x(f) * 2.0)
        }))
        .then(stage_fn("detect", |f: &Frame, x: f32| {
            if f.seq == 9 {
                return Err(PipelineError::Sink {
                    sink: "test".into(),
                    msg: "stage failure".into(),
                });
            }
            let det = lidarq_data::Detection {
                bbox: lidarq_data::Box3D {
                    x,
                    y: 0.0,
                    z: 0.0,
                    dx: 1.0,
                    dy: 1.0,
                    dz: 1.0,
                    yaw: 0.0,
                },
                class: "Car".into(),
                score: 0.5,
            };
            Ok(vec![DetectionSet::new("fp32", vec![det])])
        }))
        .run(&mut [&mut rec])
        .unwrap();
    let want: Vec<u64> = (0..30).filter(|s| ![4, 9, 17].contains(s)).collect();
    assert_eq!(rec.seqs, want);
    assert_eq!(rec.skips, vec![4, 9, 17]);
    for (seq, sets) in want.iter().zip(&rec.sets) {
        assert_eq!(sets[0].detections[0].bbox.x, *seq as f32 * 2.0);
    }
    assert_eq!(summary.frames, 27);
    assert_eq!(
        summary.skipped[1].reason,
        "stage detect: frame 000009: sink test: stage failure"
    );
    let names: Vec<&str> = summary.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["source", "double", "detect", "latency"]);
    assert!(summary.stages.iter().all(|s| s.frames == 27));
    // 27 frames from 0 to 2.9 s: (2.9 s) · 27/26 of sensor time.
    assert_eq!(
        summary.sensor_span,
        Duration::from_secs_f64(2.9 * 27.0 / 26.0)
    );
    assert_eq!(rec.finished.as_ref(), Some(&summary));
    let report = summary.to_string();
    assert!(report.contains("frame 4: frame 4 is corrupt"), "{report}");
}

/// Three copies of a stage take frames in turn; copy 0, on frame 0, waits for copy 1 to
/// start frame 1 (only possible when the copies run at once); frames leave in order, with
/// skips from the source and from one copy in place, and each copy's rayon pool has the
/// threads asked for.
#[test]
fn replicated_stage_copies_run_at_once_and_keep_frame_order() {
    let (source, _) = Counted::new(20, &[5]);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let met = Arc::new(AtomicBool::new(false));
    let copies: Vec<_> = (0..3u64)
        .map(|copy| {
            let (tx, rx, met) = (tx.clone(), rx.clone(), met.clone());
            stage_fn("work", move |f: &Frame, ()| {
                assert_eq!(f.seq % 3, copy, "frames are dealt in turn");
                assert_eq!(rayon::current_num_threads(), 2);
                match f.seq {
                    0 => {
                        let rx = rx.lock().unwrap();
                        met.store(
                            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
                            Ordering::SeqCst,
                        );
                    }
                    1 => tx.send(()).unwrap(),
                    13 => {
                        return Err(PipelineError::Sink {
                            sink: "test".into(),
                            msg: "copy failure".into(),
                        });
                    }
                    _ => std::thread::sleep(Duration::from_micros(300 * ((f.seq * 7) % 4))),
                }
                Ok(first_x(f))
            })
        })
        .collect();
    let mut rec = Recorder::default();
    let summary = Pipeline::new(Box::new(source), RunConfig::default())
        .then_replicated(copies, 2)
        .unwrap()
        .then(stage_fn("check", |f: &Frame, x: f32| {
            assert_eq!(x, f.seq as f32);
            Ok(())
        }))
        .run(&mut [&mut rec])
        .unwrap();
    assert!(met.load(Ordering::SeqCst));
    let want: Vec<u64> = (0..20).filter(|s| ![5, 13].contains(s)).collect();
    assert_eq!(rec.seqs, want);
    assert_eq!(rec.skips, [5, 13]);
    let names: Vec<&str> = summary.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["source", "work", "check", "latency"]);
    assert_eq!(summary.stages[1].frames, 18);
}

/// Stage `b`, on frame 0, waits for stage `a` to start frame 1: only possible when the
/// stages overlap (back to back, `a` would start frame 1 after `b` finished frame 0, and
/// the wait would time out).
#[test]
fn consecutive_frames_overlap_across_stages() {
    let (source, _) = Counted::new(4, &[]);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let met = Arc::new(AtomicBool::new(false));
    let met2 = met.clone();
    let mut rec = Recorder::default();
    Pipeline::new(Box::new(source), RunConfig::default())
        .then(stage_fn("a", move |f: &Frame, ()| {
            if f.seq == 1 {
                let _ = tx.send(());
            }
            Ok(())
        }))
        .then(stage_fn("b", move |f: &Frame, ()| {
            if f.seq == 0 {
                let started = rx.recv_timeout(Duration::from_secs(10)).is_ok();
                met2.store(started, Ordering::SeqCst);
            }
            Ok(())
        }))
        .run(&mut [&mut rec])
        .unwrap();
    assert!(met.load(Ordering::SeqCst));
    assert_eq!(rec.seqs, [0, 1, 2, 3]);
}

#[test]
fn back_to_back_mode_never_runs_two_stages_at_once() {
    let (source, _) = Counted::new(20, &[]);
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let busy = |active: Arc<AtomicUsize>, peak: Arc<AtomicUsize>| {
        move |_: &Frame, ()| {
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            active.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    };
    let config = RunConfig {
        overlap: false,
        ..RunConfig::default()
    };
    let mut rec = Recorder::default();
    Pipeline::new(Box::new(source), config)
        .then(stage_fn("a", busy(active.clone(), peak.clone())))
        .then(stage_fn("b", busy(active.clone(), peak.clone())))
        .then(stage_fn("c", busy(active, peak.clone())))
        .run(&mut [&mut rec])
        .unwrap();
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!(rec.seqs, (0..20).collect::<Vec<_>>());
}

/// With channel capacity c and k stages, the source can be at most
/// (k + 1)·c + k + 2 frames ahead of a stalled sink: c waiting per channel, one inside each
/// stage, one being sent and one at the sink.
#[test]
fn a_slow_sink_holds_the_source_back() {
    let (source, read) = Counted::new(1000, &[]);
    let capacity = 2;
    let stages = 2u64;
    let bound = (stages + 1) * capacity as u64 + stages + 2;
    let seen = Arc::new(AtomicU64::new(0));
    let seen2 = seen.clone();
    let mut rec = Recorder {
        on_write: Some(Box::new(move |r: &FrameResult| {
            if r.frame.seq == 0 {
                std::thread::sleep(Duration::from_millis(300));
                seen2.store(read.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            Ok(())
        })),
        ..Recorder::default()
    };
    let config = RunConfig {
        capacity,
        ..RunConfig::default()
    };
    Pipeline::new(Box::new(source), config)
        .then(stage_fn("a", |_: &Frame, ()| Ok(())))
        .then(stage_fn("b", |_: &Frame, ()| Ok(())))
        .run(&mut [&mut rec])
        .unwrap();
    let ahead = seen.load(Ordering::SeqCst);
    assert!(ahead <= bound, "source read {ahead} frames, bound {bound}");
    assert_eq!(rec.seqs.len(), 1000);
}

#[test]
fn the_stop_flag_ends_the_run_cleanly() {
    let (source, _) = Counted::new(1000, &[]);
    let config = RunConfig {
        capacity: 1,
        ..RunConfig::default()
    };
    let stop = config.stop.clone();
    let mut rec = Recorder {
        on_write: Some(Box::new(move |r: &FrameResult| {
            if r.frame.seq == 5 {
                stop.store(true, Ordering::SeqCst);
            }
            Ok(())
        })),
        ..Recorder::default()
    };
    let summary = Pipeline::new(Box::new(source), config)
        .then(stage_fn("a", |_: &Frame, ()| Ok(())))
        .run(&mut [&mut rec])
        .unwrap();
    assert!(summary.interrupted);
    // Frames in flight when the flag was set still arrive, in order, and then nothing.
    assert!(rec.seqs.len() < 20, "{}", rec.seqs.len());
    assert_eq!(rec.seqs, (0..rec.seqs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn a_failing_sink_stops_the_run_with_its_error() {
    let (source, _) = Counted::new(1000, &[]);
    let mut rec = Recorder {
        on_write: Some(Box::new(|r: &FrameResult| {
            if r.frame.seq == 3 {
                return Err(PipelineError::Sink {
                    sink: "recorder".into(),
                    msg: "disk full".into(),
                });
            }
            Ok(())
        })),
        ..Recorder::default()
    };
    let e = Pipeline::new(Box::new(source), RunConfig::default())
        .then(stage_fn("a", |_: &Frame, ()| Ok(())))
        .run(&mut [&mut rec])
        .unwrap_err();
    assert_eq!(e.to_string(), "sink recorder: disk full");
    assert!(rec.finished.is_none());
}

#[test]
fn a_truncated_scan_mid_folder_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5u32 {
        let mut cloud = PointCloud::default();
        for k in 0..10 {
            cloud.push(i as f32, k as f32, 0.5, 0.25);
        }
        let path = dir.path().join(format!("{i:06}.bin"));
        lidarq_data::kitti::write_bin(&path, &cloud).unwrap();
        if i == 2 {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 6]).unwrap();
        }
    }
    let source = lidarq_pipeline::source::open(dir.path(), None).unwrap();
    let mut rec = Recorder::default();
    let summary = Pipeline::new(source, RunConfig::default())
        .run(&mut [&mut rec])
        .unwrap();
    assert_eq!(rec.seqs, [0, 1, 3, 4]);
    assert_eq!(summary.frames, 4);
    let skip = &summary.skipped[..];
    assert_eq!(skip.len(), 1);
    assert_eq!(skip[0].seq, 2);
    let bad = dir.path().join("000002.bin");
    assert!(
        skip[0]
            .reason
            .starts_with(&format!("{} at byte 144:", bad.display())),
        "{}",
        skip[0].reason
    );
    assert!(summary.to_string().contains("1 frames skipped"));
}
