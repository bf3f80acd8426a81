//! The end-of-run report: frames processed, throughput, real-time factor, per-stage time
//! and every skipped frame with its reason.

use crate::source::Skip;
use crate::stage::FrameResult;
use std::fmt;
use std::time::{Duration, Instant};

/// Busy time of one stage over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StageStats {
    /// The stage (`source`, a stage's name, or `latency` for source-to-sink time).
    pub stage: String,
    /// Frames measured.
    pub frames: u64,
    /// Sum over frames.
    pub total: Duration,
    /// Largest single frame.
    pub max: Duration,
}

impl StageStats {
    fn new(stage: &str) -> Self {
        Self {
            stage: stage.to_string(),
            frames: 0,
            total: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    fn add(&mut self, d: Duration) {
        self.frames += 1;
        self.total += d;
        self.max = self.max.max(d);
    }

    /// Mean time per frame.
    pub fn mean(&self) -> Duration {
        self.total / self.frames.max(1) as u32
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Frames that reached the sinks.
    pub frames: u64,
    /// Frames skipped, in stream order, with reasons.
    pub skipped: Vec<Skip>,
    /// Points dropped by sources as non-finite, over all frames.
    pub non_finite_points: u64,
    /// Wall time from the start of the run to the last frame.
    pub wall: Duration,
    /// Sensor time the processed frames cover (one frame period past the last frame).
    pub sensor_span: Duration,
    /// Per-stage busy time, in pipeline order, then end-to-end `latency`.
    pub stages: Vec<StageStats>,
    /// True when the run was stopped early (Ctrl-C).
    pub interrupted: bool,
    /// True when stages overlapped across frames; false when they ran back to back
    /// ([`crate::RunConfig::overlap`]).
    pub pipelined: bool,
}

impl Summary {
    /// Frames per second of wall time.
    pub fn throughput(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Sensor time covered per second of wall time (≥ 1: kept up with the sensor).
    pub fn realtime_factor(&self) -> f64 {
        self.sensor_span.as_secs_f64() / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

pub(crate) struct SummaryBuilder {
    start: Instant,
    last: Instant,
    frames: u64,
    non_finite: u64,
    sensor: Option<(i64, i64)>,
    skipped: Vec<Skip>,
    stages: Vec<StageStats>,
    latency: StageStats,
}

impl SummaryBuilder {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            last: start,
            frames: 0,
            non_finite: 0,
            sensor: None,
            skipped: Vec::new(),
            stages: Vec::new(),
            latency: StageStats::new("latency"),
        }
    }

    pub(crate) fn frame(&mut self, r: &FrameResult) {
        self.frames += 1;
        self.last = Instant::now();
        self.non_finite += r.frame.non_finite as u64;
        if let Some(t) = r.frame.sensor_time_ns {
            let (lo, hi) = self.sensor.get_or_insert((t, t));
            (*lo, *hi) = ((*lo).min(t), (*hi).max(t));
        }
        for t in &r.timings {
            let pos = self.stages.iter().position(|s| s.stage == t.stage);
            let stats = match pos {
                Some(i) => &mut self.stages[i],
                None => {
                    self.stages.push(StageStats::new(&t.stage));
                    self.stages.last_mut().expect("just pushed")
                }
            };
            stats.add(t.busy);
        }
        self.latency.add(r.latency);
    }

    pub(crate) fn skip(&mut self, skip: Skip) {
        self.skipped.push(skip);
    }

    /// `nominal_period_ns` stands in for the frame period when fewer than two frames carry
    /// sensor times.
    pub(crate) fn finish(
        mut self,
        interrupted: bool,
        pipelined: bool,
        nominal_period_ns: i64,
    ) -> Summary {
        let n = self.frames;
        let span_ns = match self.sensor {
            Some((lo, hi)) if n > 1 && hi > lo => (hi - lo) as f64 * n as f64 / (n - 1) as f64,
            _ => (n as i64 * nominal_period_ns) as f64,
        };
        self.stages.push(self.latency);
        Summary {
            frames: n,
            skipped: self.skipped,
            non_finite_points: self.non_finite,
            wall: self.last - self.start,
            sensor_span: Duration::from_secs_f64(span_ns / 1e9),
            stages: self.stages,
            interrupted,
            pipelined,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        writeln!(
            f,
            "{} frames in {:.2} s: {:.1} frames/s, real-time factor {:.2}, stages {}{}",
            self.frames,
            self.wall.as_secs_f64(),
            self.throughput(),
            self.realtime_factor(),
            if self.pipelined {
                "pipelined"
            } else {
                "back to back"
            },
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "  {:<12} mean {:8.2} ms   max {:8.2} ms",
                s.stage,
                ms(s.mean()),
                ms(s.max)
            )?;
        }
        if self.non_finite_points > 0 {
            writeln!(f, "  {} non-finite points dropped", self.non_finite_points)?;
        }
        writeln!(f, "{} frames skipped", self.skipped.len())?;
        for s in &self.skipped {
            writeln!(f, "  frame {}: {}", s.seq, s.reason)?;
        }
        Ok(())
    }
}
