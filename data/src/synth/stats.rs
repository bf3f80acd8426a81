//! What a generated dataset contains, for comparison with KITTI: labelled objects per class
//! and difficulty, and points per object by range.

use std::fmt;

use super::frame::SynthFrame;
use super::objects::ObjectClass;
use crate::ObjectLabel;

/// Upper edges of the range bins (m) for points-per-object; the last bin is open.
pub const RANGE_BINS: [f32; 7] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0];

/// Labelled objects of one class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassStats {
    /// Labels written.
    pub labelled: usize,
    /// Labels in KITTI's easy, moderate and hard sets (cumulative, as the benchmark counts).
    pub difficulty: [usize; 3],
    /// Points inside each labelled box, per range bin (distance of the box center).
    pub points_by_range: Vec<Vec<u32>>,
}

/// Totals over generated frames.
#[derive(Debug, Clone, PartialEq)]
pub struct GenStats {
    /// Frames generated.
    pub frames: usize,
    /// Points over all frames.
    pub points: u64,
    /// Per class, in [`ObjectClass::ALL`] order.
    pub classes: Vec<ClassStats>,
}

impl Default for GenStats {
    fn default() -> Self {
        let class = ClassStats {
            points_by_range: vec![Vec::new(); RANGE_BINS.len() + 1],
            ..Default::default()
        };
        Self {
            frames: 0,
            points: 0,
            classes: vec![class; ObjectClass::ALL.len()],
        }
    }
}

/// KITTI's difficulty of a label: 0 easy, 1 moderate, 2 hard, `None` when in none of them
/// (min box height 40/25/25 px, max occlusion 0/1/2, max truncation 0.15/0.3/0.5).
pub fn kitti_difficulty(l: &ObjectLabel) -> Option<usize> {
    const MIN_HEIGHT: [f32; 3] = [40.0, 25.0, 25.0];
    const MAX_OCCLUSION: [i32; 3] = [0, 1, 2];
    const MAX_TRUNCATION: [f32; 3] = [0.15, 0.3, 0.5];
    let h = l.bbox[3] - l.bbox[1];
    (0..3).find(|&d| {
        h >= MIN_HEIGHT[d] && l.occluded <= MAX_OCCLUSION[d] && l.truncated <= MAX_TRUNCATION[d]
    })
}

impl GenStats {
    /// Adds a frame.
    pub fn add(&mut self, frame: &SynthFrame) {
        self.frames += 1;
        self.points += frame.cloud.len() as u64;
        for o in &frame.objects {
            let Some(label) = &o.label else { continue };
            let class = &mut self.classes[ObjectClass::ALL
                .iter()
                .position(|&c| c == o.class)
                .unwrap_or(0)];
            class.labelled += 1;
            if let Some(d) = kitti_difficulty(label) {
                class.difficulty[d..].iter_mut().for_each(|n| *n += 1);
            }
            let range = o.bbox.x.hypot(o.bbox.y);
            let bin = RANGE_BINS
                .iter()
                .position(|&edge| range < edge)
                .unwrap_or(RANGE_BINS.len());
            class.points_by_range[bin].push(o.points);
        }
    }
}

fn median(v: &[u32]) -> Option<u32> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied()
}

impl fmt::Display for GenStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frames = self.frames.max(1) as f64;
        writeln!(
            f,
            "{} frames, {:.0} points per frame",
            self.frames,
            self.points as f64 / frames
        )?;
        writeln!(
            f,
            "{:<11}{:>9}{:>10}{:>8}{:>10}{:>8}",
            "class", "labels", "per frame", "easy", "moderate", "hard"
        )?;
        for (class, s) in ObjectClass::ALL.iter().zip(&self.classes) {
            let [e, m, h] = s.difficulty;
            writeln!(
                f,
                "{:<11}{:>9}{:>10.2}{:>8}{:>10}{:>8}",
                class.name(),
                s.labelled,
                s.labelled as f64 / frames,
                e,
                m,
                h
            )?;
        }
        writeln!(f, "median points per labelled object by range (m):")?;
        write!(f, "{:<11}", "class")?;
        let mut lo = 0.0;
        for edge in RANGE_BINS {
            write!(f, "{:>8}", format!("{lo:.0}-{edge:.0}"))?;
            lo = edge;
        }
        writeln!(f, "{:>8}", format!("{lo:.0}+"))?;
        for (class, s) in ObjectClass::ALL.iter().zip(&self.classes) {
            write!(f, "{:<11}", class.name())?;
            for bin in &s.points_by_range {
                match median(bin) {
                    Some(m) => write!(f, "{m:>8}")?,
                    None => write!(f, "{:>8}", "-")?,
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
