//! Multi-object tracking across frames so replayed boxes keep stable ids (and colours):
//! constant-velocity prediction, nearest-centre association in the ground plane through a
//! k-d tree (kiddo), track birth and death.
//!
//! Invariants: association is greedy on distance over all (detection, track) pairs within
//! the gate and of the same class, closest first, ties broken by detection then track
//! index, so the result does not depend on thread count or hashing; ids are never reused.

use crate::Result;
use crate::source::{Frame, NOMINAL_PERIOD_NS};
use crate::stage::{DetectionSet, Stage};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use lidarq_data::Detection;

/// Tracking parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Largest distance (m) between a predicted track centre and a detection it takes.
    pub gate_m: f32,
    /// Frames a track survives without a detection before it dies.
    pub max_misses: u32,
    /// Weight of the newest velocity measurement (1 = no smoothing).
    pub velocity_gain: f32,
}

impl Default for TrackerConfig {
    /// A car at 30 m/s moves 3 m between 10 Hz frames; the gate covers that after
    /// prediction with margin for a poor velocity estimate on a young track.
    fn default() -> Self {
        Self {
            gate_m: 2.5,
            max_misses: 2,
            velocity_gain: 0.5,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    class: String,
    /// Ground-plane centre, predicted to the current frame before association.
    pos: [f32; 2],
    /// m/s.
    vel: [f32; 2],
    misses: u32,
}

/// Tracks of one detection stream (one model variant).
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    last_ns: Option<i64>,
}

impl Tracker {
    /// A tracker without tracks; ids start at 0.
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            next_id: 0,
            last_ns: None,
        }
    }

    /// Number of live tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when no track is live.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Advances to a frame at `time_ns` (the nominal period after the last frame when
    /// unknown) and returns the track id of each detection.
    pub fn update(&mut self, time_ns: Option<i64>, detections: &[Detection]) -> Vec<u64> {
        let now = time_ns.unwrap_or(self.last_ns.unwrap_or(0) + NOMINAL_PERIOD_NS);
        let dt = self
            .last_ns
            .map_or(0.0, |last| (now - last).max(0) as f32 / 1e9);
        self.last_ns = Some(now);
        let previous: Vec<[f32; 2]> = self.tracks.iter().map(|t| t.pos).collect();
        for t in &mut self.tracks {
            t.pos = [t.pos[0] + t.vel[0] * dt, t.pos[1] + t.vel[1] * dt];
        }

        let pairs = self.candidate_pairs(detections);
        let mut det_track = vec![None; detections.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if det_track[d].is_none() && !taken[t] {
                det_track[d] = Some(t);
                taken[t] = true;
            }
        }

        let gain = self.config.velocity_gain;
        let mut ids = Vec::with_capacity(detections.len());
        for (d, det) in detections.iter().enumerate() {
            let centre = [det.bbox.x, det.bbox.y];
            match det_track[d] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    if dt > 0.0 {
                        let measured = [
                            (centre[0] - previous[t][0]) / dt,
                            (centre[1] - previous[t][1]) / dt,
                        ];
                        for (vel, m) in track.vel.iter_mut().zip(measured) {
                            *vel += gain * (m - *vel);
                        }
                    }
                    track.pos = centre;
                    track.misses = 0;
                    ids.push(track.id);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        class: det.class.clone(),
                        pos: centre,
                        vel: [0.0; 2],
                        misses: 0,
                    });
                    taken.push(true);
                    ids.push(id);
                }
            }
        }
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if !taken[t] {
                track.misses += 1;
            }
        }
        let max_misses = self.config.max_misses;
        self.tracks.retain(|t| t.misses <= max_misses);
        ids
    }

    /// (squared distance, detection, track) for every same-class pair within the gate,
    /// closest first.
    fn candidate_pairs(&self, detections: &[Detection]) -> Vec<(f32, usize, usize)> {
        if self.tracks.is_empty() || detections.is_empty() {
            return Vec::new();
        }
        let centres: Vec<[f32; 2]> = self.tracks.iter().map(|t| t.pos).collect();
        let Ok(tree) = ImmutableKdTree::<f32, 2>::new_from_slice(&centres) else {
            return Vec::new();
        };
        let gate2 = self.config.gate_m * self.config.gate_m;
        let mut pairs = Vec::new();
        for (d, det) in detections.iter().enumerate() {
            let found = tree
                .query(&[det.bbox.x, det.bbox.y])
                .within::<SquaredEuclidean<f32>>(gate2)
                .unsorted()
                .execute();
            for r in found.iter() {
                let t = r.item as usize;
                if self.tracks[t].class == det.class {
                    pairs.push((r.distance, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        pairs
    }
}

/// The tracking stage: one [`Tracker`] per detection set name, filling `track_ids`.
pub struct TrackStage {
    config: TrackerConfig,
    trackers: Vec<(String, Tracker)>,
}

impl TrackStage {
    /// A stage that tracks every detection set it sees.
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            trackers: Vec::new(),
        }
    }
}

impl Stage for TrackStage {
    type In = Vec<DetectionSet>;
    type Out = Vec<DetectionSet>;

    fn name(&self) -> &str {
        "track"
    }

    fn process(&mut self, frame: &Frame, mut sets: Vec<DetectionSet>) -> Result<Vec<DetectionSet>> {
        for set in &mut sets {
            let i = match self.trackers.iter().position(|(n, _)| *n == set.name) {
                Some(i) => i,
                None => {
                    self.trackers
                        .push((set.name.clone(), Tracker::new(self.config)));
                    self.trackers.len() - 1
                }
            };
            set.track_ids = self.trackers[i]
                .1
                .update(frame.sensor_time_ns, &set.detections);
        }
        Ok(sets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lidarq_data::Box3D;

    fn det(class: &str, x: f32, y: f32) -> Detection {
        Detection {
            bbox: Box3D {
                x,
                y,
                z: 0.0,
                dx: 4.0,
                dy: 1.8,
                dz: 1.5,
                yaw: 0.0,
            },
            class: class.into(),
            score: 0.9,
        }
    }

    const STEP: i64 = 100_000_000;

    #[test]
    fn crossing_cars_keep_their_ids_through_prediction() {
        // Car A drives +x at 20 m/s (2 m per frame), car B drives -x at 20 m/s, 0.5 m apart
        // laterally. At frame 6 A's detection is 0.5 m from where B was at frame 5 and 2 m
        // from where A was: without velocity prediction nearest-centre would swap them.
        let mut t = Tracker::new(TrackerConfig::default());
        for f in 0..10i64 {
            let a = det("Car", -11.0 + 2.0 * f as f32, 0.0);
            let b = det("Car", 11.0 - 2.0 * f as f32, 0.5);
            // Detections in alternating order, so that order cannot carry the ids.
            let (dets, swap) = if f % 2 == 0 {
                (vec![a, b], false)
            } else {
                (vec![b, a], true)
            };
            let ids = t.update(Some(f * STEP), &dets);
            let (ida, idb) = if swap {
                (ids[1], ids[0])
            } else {
                (ids[0], ids[1])
            };
            assert_eq!((ida, idb), (0, 1), "frame {f}");
        }
    }

    #[test]
    fn tracks_survive_short_gaps_and_die_after_max_misses() {
        let mut t = Tracker::new(TrackerConfig::default());
        assert_eq!(t.update(Some(0), &[det("Car", 0.0, 0.0)]), [0]);
        assert_eq!(t.update(Some(STEP), &[det("Car", 1.0, 0.0)]), [0]);
        // Two missed frames: still alive, predicted forward at ~5 m/s.
        assert!(t.update(Some(2 * STEP), &[]).is_empty());
        assert!(t.update(Some(3 * STEP), &[]).is_empty());
        assert_eq!(t.len(), 1);
        assert_eq!(t.update(Some(4 * STEP), &[det("Car", 2.6, 0.0)]), [0]);
        for f in 5..8 {
            t.update(Some(f * STEP), &[]);
        }
        assert!(t.is_empty());
        // A new object gets a new id: ids are never reused.
        assert_eq!(t.update(Some(8 * STEP), &[det("Car", 2.6, 0.0)]), [1]);
    }

    #[test]
    fn classes_do_not_mix_and_far_detections_start_new_tracks() {
        let mut t = Tracker::new(TrackerConfig::default());
        assert_eq!(
            t.update(
                Some(0),
                &[det("Car", 0.0, 0.0), det("Pedestrian", 5.0, 0.0)]
            ),
            [0, 1]
        );
        assert_eq!(
            t.update(
                Some(STEP),
                &[det("Pedestrian", 0.2, 0.0), det("Car", 20.0, 0.0)]
            ),
            [2, 3]
        );
    }
}
