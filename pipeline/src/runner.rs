//! The staged runner: the source and each stage on their own thread, joined by bounded
//! channels, so frame N+1 is decoded while frame N is in the next stage.
//!
//! Invariants: frames reach the sinks in stream order (each stage is one thread, channels
//! are FIFO); a full channel blocks the stage before it (backpressure: at most `capacity`
//! frames wait between two stages); a skipped frame travels down the chain in its place so
//! sinks and the summary see skips in order; setting the stop flag (Ctrl-C) ends the source,
//! and the frames already in flight finish before [`Pipeline::run`] returns.

use crate::source::{Frame, NOMINAL_PERIOD_NS, Skip, Source};
use crate::stage::{FrameResult, IntoDetectionSets, Sink, Stage, StageTiming};
use crate::summary::{Summary, SummaryBuilder};
use crate::{PipelineError, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How fast the source releases frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the pipeline takes them.
    Max,
    /// At `factor` times the sensor's pace (1 = real time), from the frames' sensor times.
    Factor(f64),
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `max`, `realtime` or a positive factor (`2`, `0.5`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "max" => Ok(Rate::Max),
            "realtime" => Ok(Rate::Factor(1.0)),
            _ => match s.parse::<f64>() {
                Ok(f) if f.is_finite() && f > 0.0 => Ok(Rate::Factor(f)),
                _ => Err(format!(
                    "rate {s:?}: expected realtime, max or a positive factor"
                )),
            },
        }
    }
}

/// How a pipeline runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Frame pacing.
    pub rate: Rate,
    /// Frames that may wait between two stages.
    pub capacity: usize,
    /// False runs the stages back to back (one frame at a time through the whole chain),
    /// the baseline that pipelining is measured against.
    pub overlap: bool,
    /// Set to end the run early (Ctrl-C): the source stops, frames in flight finish.
    pub stop: Arc<AtomicBool>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            rate: Rate::Max,
            capacity: 2,
            overlap: true,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A frame in flight with what the stages so far made of it.
struct Stamped<T> {
    frame: Frame,
    timings: Vec<StageTiming>,
    released: Instant,
    payload: T,
}

type Packet<T> = std::result::Result<Stamped<T>, Skip>;

/// A running chain of threads whose last output has type `T`. Build it with
/// [`Pipeline::new`] and [`Pipeline::then`]; [`Pipeline::run`] drives it to the end.
pub struct Pipeline<T> {
    rx: Receiver<Packet<T>>,
    chain: Chain,
}

/// Everything of a pipeline but its last output.
struct Chain {
    threads: Vec<(String, JoinHandle<()>)>,
    config: RunConfig,
    /// Held around each unit of work when `overlap` is false.
    baton: Arc<Mutex<()>>,
    description: String,
    len_hint: Option<u64>,
}

/// Runs `work` holding the baton when stages must not overlap; returns its result and
/// how long it ran (waiting for the baton excluded).
fn exclusive<R>(baton: &Mutex<()>, overlap: bool, work: impl FnOnce() -> R) -> (R, Duration) {
    let _guard = (!overlap).then(|| baton.lock().unwrap_or_else(|p| p.into_inner()));
    let start = Instant::now();
    let result = work();
    (result, start.elapsed())
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> (String, JoinHandle<()>) {
    let handle = std::thread::Builder::new()
        .name(format!("lidarq-{name}"))
        .spawn(body)
        .unwrap_or_else(|e| panic!("cannot spawn the {name} thread: {e}"));
    (name.to_string(), handle)
}

/// Sleeps until `deadline`, waking often enough to notice the stop flag.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    const SLICE: Duration = Duration::from_millis(20);
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((deadline - now).min(SLICE));
    }
}

/// Releases frames at the sensor's pace times a factor.
struct Pacer {
    factor: Option<f64>,
    origin: Option<(Instant, i64)>,
}

impl Pacer {
    /// When the frame stamped `sensor_ns` is due (`None`: now).
    fn due(&mut self, sensor_ns: Option<i64>) -> Option<Instant> {
        let factor = self.factor?;
        let t = sensor_ns?;
        let (start, t0) = *self.origin.get_or_insert((Instant::now(), t));
        let ahead = (t - t0).max(0) as f64 / 1e9 / factor;
        Some(start + Duration::from_secs_f64(ahead))
    }
}

/// Runs `stage` on one packet, inside `pool` when given; a stage error turns the frame
/// into a skip.
fn process<S: Stage>(
    stage: &mut S,
    packet: Packet<S::In>,
    baton: &Mutex<()>,
    overlap: bool,
    pool: Option<&rayon::ThreadPool>,
) -> Packet<S::Out> {
    let s = packet?;
    let (frame, payload) = (&s.frame, s.payload);
    let (result, busy) = exclusive(baton, overlap, || match pool {
        Some(pool) => pool.install(|| stage.process(frame, payload)),
        None => stage.process(frame, payload),
    });
    match result {
        Ok(payload) => {
            let mut timings = s.timings;
            timings.push(StageTiming {
                stage: stage.name().to_string(),
                busy,
            });
            Ok(Stamped {
                frame: s.frame,
                timings,
                released: s.released,
                payload,
            })
        }
        Err(e) => Err(Skip {
            seq: s.frame.seq,
            reason: format!("stage {}: frame {}: {e}", stage.name(), s.frame.name),
        }),
    }
}

impl Pipeline<()> {
    /// Starts the source thread.
    pub fn new(mut source: Box<dyn Source>, config: RunConfig) -> Self {
        let (tx, rx) = sync_channel::<Packet<()>>(config.capacity);
        let baton = Arc::new(Mutex::new(()));
        let description = source.describe();
        let len_hint = source.len_hint();
        let (stop, overlap, b) = (config.stop.clone(), config.overlap, baton.clone());
        let mut pacer = Pacer {
            factor: match config.rate {
                Rate::Max => None,
                Rate::Factor(f) => Some(f),
            },
            origin: None,
        };
        let thread = spawn("source", move || {
            while !stop.load(Ordering::Relaxed) {
                let (Some(item), busy) = exclusive(&b, overlap, || source.next_frame()) else {
                    break;
                };
                let packet = item.map(|frame| {
                    if let Some(due) = pacer.due(frame.sensor_time_ns) {
                        sleep_until(due, &stop);
                    }
                    Stamped {
                        frame,
                        timings: vec![StageTiming {
                            stage: "source".into(),
                            busy,
                        }],
                        released: Instant::now(),
                        payload: (),
                    }
                });
                if tx.send(packet).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            chain: Chain {
                threads: vec![thread],
                config,
                baton,
                description,
                len_hint,
            },
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// Appends a stage on its own thread.
    pub fn then<S: Stage<In = T>>(self, mut stage: S) -> Pipeline<S::Out> {
        let Pipeline {
            rx: input,
            mut chain,
        } = self;
        let (tx, rx): (SyncSender<Packet<S::Out>>, _) = sync_channel(chain.config.capacity);
        let (overlap, baton) = (chain.config.overlap, chain.baton.clone());
        let name = stage.name().to_string();
        let thread = spawn(&name, move || {
            for packet in input {
                let out = process(&mut stage, packet, &baton, overlap, None);
                if tx.send(out).is_err() {
                    break;
                }
            }
        });
        chain.threads.push(thread);
        Pipeline { rx, chain }
    }

    /// Appends copies of one stage that take frames in turn (frame `k` goes to copy
    /// `k % n`), each on its own thread with `threads` rayon threads inside: for a heavy
    /// stage that does not use every core on its own, so `n` frames run it at once. Results
    /// are collected in the same turn, so frame order holds.
    pub fn then_replicated<S: Stage<In = T>>(
        self,
        stages: Vec<S>,
        threads: usize,
    ) -> Result<Pipeline<S::Out>> {
        let Pipeline {
            rx: input,
            mut chain,
        } = self;
        let capacity = chain.config.capacity;
        let (overlap, baton) = (chain.config.overlap, chain.baton.clone());
        let name = stages.first().map_or("stage", |s| s.name()).to_string();
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for (i, mut stage) in stages.into_iter().enumerate() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .thread_name(move |t| format!("lidarq-{i}-{t}"))
                .build()
                .map_err(|e| PipelineError::Stage {
                    stage: name.clone(),
                    msg: format!("cannot start a thread pool: {e}"),
                })?;
            let (in_tx, in_rx) = sync_channel::<Packet<T>>(capacity);
            let (out_tx, out_rx) = sync_channel::<Packet<S::Out>>(capacity);
            let (baton, name) = (baton.clone(), format!("{name}-{i}"));
            chain.threads.push(spawn(&name, move || {
                for packet in in_rx {
                    let out = process(&mut stage, packet, &baton, overlap, Some(&pool));
                    if out_tx.send(out).is_err() {
                        break;
                    }
                }
            }));
            inputs.push(in_tx);
            outputs.push(out_rx);
        }
        chain.threads.push(spawn(&format!("{name}-deal"), move || {
            for (packet, tx) in input.into_iter().zip(inputs.iter().cycle()) {
                if tx.send(packet).is_err() {
                    break;
                }
            }
        }));
        let (tx, rx) = sync_channel(capacity);
        chain
            .threads
            .push(spawn(&format!("{name}-collect"), move || {
                for out in outputs.iter().cycle() {
                    let Ok(packet) = out.recv() else { break };
                    if tx.send(packet).is_err() {
                        break;
                    }
                }
            }));
        Ok(Pipeline { rx, chain })
    }

    /// What the source reads.
    pub fn description(&self) -> &str {
        &self.chain.description
    }

    /// Frames the source expects, when known.
    pub fn len_hint(&self) -> Option<u64> {
        self.chain.len_hint
    }

    /// Drives every frame into the sinks, in order, then joins the threads and returns the
    /// summary. A sink error stops the source and is returned once the threads are joined.
    pub fn run(self, sinks: &mut [&mut dyn Sink]) -> Result<Summary>
    where
        T: IntoDetectionSets,
    {
        let mut summary = SummaryBuilder::new(Instant::now());
        let mut failure = None;
        for packet in &self.rx {
            if let Err(e) = self.deliver(packet, sinks, &mut summary) {
                failure = Some(e);
                break;
            }
        }
        let interrupted = self.chain.config.stop.load(Ordering::Relaxed);
        // Unblock and end the upstream threads when a sink failed.
        self.chain.config.stop.store(true, Ordering::Relaxed);
        drop(self.rx);
        for (name, handle) in self.chain.threads {
            if handle.join().is_err() && failure.is_none() {
                failure = Some(PipelineError::Panicked { thread: name });
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let summary = summary.finish(interrupted, self.chain.config.overlap, NOMINAL_PERIOD_NS);
        for sink in sinks.iter_mut() {
            sink.finish(&summary)?;
        }
        Ok(summary)
    }

    fn deliver(
        &self,
        packet: Packet<T>,
        sinks: &mut [&mut dyn Sink],
        summary: &mut SummaryBuilder,
    ) -> Result<()>
    where
        T: IntoDetectionSets,
    {
        match packet {
            Ok(s) => {
                let result = FrameResult {
                    frame: s.frame,
                    sets: s.payload.into_sets(),
                    timings: s.timings,
                    latency: s.released.elapsed(),
                };
                exclusive(&self.chain.baton, self.chain.config.overlap, || {
                    sinks.iter_mut().try_for_each(|sink| sink.write(&result))
                })
                .0?;
                summary.frame(&result);
            }
            Err(skip) => {
                for sink in sinks.iter_mut() {
                    sink.skipped(&skip)?;
                }
                summary.skip(skip);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_follows_sensor_time_scaled_by_the_factor() {
        let mut pacer = Pacer {
            factor: Some(2.0),
            origin: None,
        };
        let t0 = pacer.due(Some(5_000_000_000)).unwrap();
        let t1 = pacer.due(Some(5_100_000_000)).unwrap();
        let t2 = pacer.due(Some(5_300_000_000)).unwrap();
        assert_eq!(t1 - t0, Duration::from_millis(50));
        assert_eq!(t2 - t0, Duration::from_millis(150));
        // A frame stamped before the first is due at once, not in the past.
        assert_eq!(pacer.due(Some(4_000_000_000)).unwrap(), t0);
        let mut max = Pacer {
            factor: None,
            origin: None,
        };
        assert_eq!(max.due(Some(1)), None);
    }

    #[test]
    fn rates_parse() {
        assert_eq!("max".parse(), Ok(Rate::Max));
        assert_eq!("realtime".parse(), Ok(Rate::Factor(1.0)));
        assert_eq!("2.5".parse(), Ok(Rate::Factor(2.5)));
        assert!("0".parse::<Rate>().is_err() && "fast".parse::<Rate>().is_err());
    }
}
