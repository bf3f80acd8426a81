//! KITTI object evaluation as the benchmark's Python port (OpenPCDet / mmdet3d
//! `kitti_object_eval_python`) computes it: per class and difficulty, 2D image boxes (with
//! orientation similarity), bird's-eye view and 3D, AP over 11 or 40 recall points — and
//! the same AP restricted to objects with a given number of LiDAR points.
//!
//! Every rule, and every quirk of the reference that we keep or do not keep, is listed in
//! `docs/EVAL.md`.

mod ap;
mod filter;
mod matching;

pub use ap::{Curve, RecallPoints, SAMPLES};

use lidarq_data::ObjectLabel;
use rayon::prelude::*;

use crate::iou::{Prism, image_coverage, image_iou};
use filter::{Decimal, IGNORED, OTHER, VALID, dt_role, gt_role, is_dontcare};
use matching::{Counts, FrameCase, counts_at, tp_scores};

/// The evaluated classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Class {
    /// `Car` (a `Van` is ignored, not a false positive).
    Car,
    /// `Pedestrian` (a `Person_sitting` is ignored).
    Pedestrian,
    /// `Cyclist`.
    Cyclist,
}

impl Class {
    /// All classes, in report order.
    pub const ALL: [Class; 3] = [Class::Car, Class::Pedestrian, Class::Cyclist];

    /// The name in KITTI label files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Car => "Car",
            Self::Pedestrian => "Pedestrian",
            Self::Cyclist => "Cyclist",
        }
    }

    /// The similar class whose objects are ignored rather than counted.
    fn similar(self) -> Option<&'static str> {
        match self {
            Self::Car => Some("Van"),
            Self::Pedestrian => Some("Person_sitting"),
            Self::Cyclist => None,
        }
    }

    /// Minimum overlap of a true positive, the same for the image, BEV and 3D metrics.
    pub fn min_overlap(self) -> f64 {
        match self {
            Self::Car => 0.7,
            Self::Pedestrian | Self::Cyclist => 0.5,
        }
    }
}

/// KITTI difficulty levels; each admits the objects of the levels before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Difficulty {
    /// 2D height > 40 px, fully visible, truncation ≤ 15 %.
    Easy = 0,
    /// 2D height > 25 px, partly occluded at most, truncation ≤ 30 %.
    Moderate = 1,
    /// 2D height > 25 px, largely occluded at most, truncation ≤ 50 %.
    Hard = 2,
}

impl Difficulty {
    /// All levels, in report order.
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Moderate, Difficulty::Hard];

    /// The short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Easy => "easy",
            Self::Moderate => "moderate",
            Self::Hard => "hard",
        }
    }
}

/// What "overlap" means for a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    /// 2D box IoU in the image; also yields the orientation similarity (AOS).
    Image,
    /// Rotated-rectangle IoU in the ground plane.
    Bev,
    /// 3D box IoU.
    Box3d,
}

impl Metric {
    /// All metrics, in report order (3D first: it is the headline number).
    pub const ALL: [Metric; 3] = [Metric::Box3d, Metric::Bev, Metric::Image];

    /// The short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "2D",
            Self::Bev => "BEV",
            Self::Box3d => "3D",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One frame: ground truth and detections as KITTI label records (detections carry a
/// score), and optionally the LiDAR points inside each box.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// The frame id (file stem), for messages.
    pub id: String,
    /// Ground-truth records, `DontCare` included.
    pub gt: Vec<ObjectLabel>,
    /// Detections; a missing score counts as 0, as in the reference.
    pub dt: Vec<ObjectLabel>,
    /// Points inside each ground-truth box (for [`evaluate_by_points`]).
    pub gt_points: Option<Vec<u32>>,
    /// Points inside each detection box (for [`evaluate_by_points`]).
    pub dt_points: Option<Vec<u32>>,
}

/// A range of LiDAR point counts, `min..max` (`max` open-ended when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PointRange {
    /// Smallest count in the range.
    pub min: u32,
    /// First count past the range.
    pub max: Option<u32>,
}

impl PointRange {
    /// The buckets the reports use: fewer than 10 points, 10 to 49, 50 and more.
    pub const DEFAULT: [PointRange; 3] = [
        PointRange {
            min: 0,
            max: Some(10),
        },
        PointRange {
            min: 10,
            max: Some(50),
        },
        PointRange { min: 50, max: None },
    ];

    /// Whether `n` points fall in the range.
    pub fn contains(&self, n: u32) -> bool {
        n >= self.min && self.max.is_none_or(|m| n < m)
    }

    /// A label such as `0-9 pts` or `50+ pts`.
    pub fn label(&self) -> String {
        match self.max {
            Some(m) => format!("{}-{} pts", self.min, m.saturating_sub(1)),
            None => format!("{}+ pts", self.min),
        }
    }
}

/// One precision–recall curve and what it is of.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassCurve {
    /// The overlap measure.
    pub metric: Metric,
    /// The class.
    pub class: Class,
    /// The difficulty.
    pub difficulty: Difficulty,
    /// Restriction to objects with this many LiDAR points, if any.
    pub points: Option<PointRange>,
    /// The curve.
    pub curve: Curve,
}

/// Curves for every metric × class × difficulty of a set of frames.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Frames evaluated.
    pub frames: usize,
    /// Whether the detections carry orientations (their first `alpha` is not -10), so that
    /// AOS is meaningful.
    pub with_aos: bool,
    /// The curves.
    pub curves: Vec<ClassCurve>,
}

impl Evaluation {
    /// The curve of one metric × class × difficulty (whole population).
    pub fn curve(&self, metric: Metric, class: Class, difficulty: Difficulty) -> Option<&Curve> {
        self.find(metric, class, difficulty, None)
    }

    /// The curve of one metric × class × difficulty × point range.
    pub fn find(
        &self,
        metric: Metric,
        class: Class,
        difficulty: Difficulty,
        points: Option<PointRange>,
    ) -> Option<&Curve> {
        self.curves
            .iter()
            .find(|c| {
                c.metric == metric
                    && c.class == class
                    && c.difficulty == difficulty
                    && c.points == points
            })
            .map(|c| &c.curve)
    }
}

/// Evaluates every metric × class × difficulty over `frames`.
pub fn evaluate(frames: &[Frame]) -> Evaluation {
    let jobs: Vec<Job> = Metric::ALL
        .iter()
        .flat_map(|&metric| {
            Class::ALL.iter().flat_map(move |&class| {
                Difficulty::ALL.iter().map(move |&difficulty| Job {
                    metric,
                    class,
                    difficulty,
                    points: None,
                })
            })
        })
        .collect();
    run(frames, &jobs)
}

/// Evaluates 3D and BEV AP at the hard difficulty (the most inclusive) per class and point
/// range. A ground truth outside the range is ignored (a detection on it is neither true
/// nor false); an unmatched detection is a false positive only if it holds a number of
/// points in the range. Frames without point counts are an error.
pub fn evaluate_by_points(frames: &[Frame], ranges: &[PointRange]) -> crate::Result<Evaluation> {
    if let Some(f) = frames
        .iter()
        .find(|f| f.gt_points.is_none() || f.dt_points.is_none())
    {
        return Err(crate::EvalError::Input(format!(
            "frame {}: no point counts for the breakdown",
            f.id
        )));
    }
    let jobs: Vec<Job> = [Metric::Box3d, Metric::Bev]
        .iter()
        .flat_map(|&metric| {
            Class::ALL.iter().flat_map(move |&class| {
                ranges.iter().map(move |&r| Job {
                    metric,
                    class,
                    difficulty: Difficulty::Hard,
                    points: Some(r),
                })
            })
        })
        .collect();
    Ok(run(frames, &jobs))
}

#[derive(Debug, Clone, Copy)]
struct Job {
    metric: Metric,
    class: Class,
    difficulty: Difficulty,
    points: Option<PointRange>,
}

/// A frame's labels as compared and its overlaps per metric, computed once for all jobs.
struct Prepared<'a> {
    gt: Vec<Decimal<'a>>,
    dt: Vec<Decimal<'a>>,
    dontcare: Vec<[f64; 4]>,
    /// Per metric, detection-major.
    overlaps: [Vec<f64>; 3],
}

fn prepare(frame: &Frame) -> Prepared<'_> {
    let gt: Vec<Decimal<'_>> = frame.gt.iter().map(Decimal::of).collect();
    let dt: Vec<Decimal<'_>> = frame.dt.iter().map(Decimal::of).collect();
    let gt_prisms: Vec<Prism> = frame.gt.iter().map(Prism::of).collect();
    let dt_prisms: Vec<Prism> = frame.dt.iter().map(Prism::of).collect();
    let pairs = dt.len() * gt.len();
    let mut overlaps = [
        Vec::with_capacity(pairs),
        Vec::with_capacity(pairs),
        Vec::with_capacity(pairs),
    ];
    for (d, dp) in dt.iter().zip(&dt_prisms) {
        for (g, gp) in gt.iter().zip(&gt_prisms) {
            overlaps[Metric::Image.index()].push(image_iou(&d.bbox, &g.bbox));
            // The reference keeps rotated overlaps in f32; an IoU of exactly the threshold
            // then rounds below it and does not match, here as there.
            overlaps[Metric::Bev.index()].push(dp.bev_iou(gp) as f32 as f64);
            overlaps[Metric::Box3d.index()].push(dp.iou_3d(gp) as f32 as f64);
        }
    }
    let dontcare = gt
        .iter()
        .filter(|g| is_dontcare(g.label))
        .map(|g| g.bbox)
        .collect();
    Prepared {
        gt,
        dt,
        dontcare,
        overlaps,
    }
}

fn run(frames: &[Frame], jobs: &[Job]) -> Evaluation {
    let prepared: Vec<Prepared<'_>> = frames.par_iter().map(prepare).collect();
    let with_aos = frames
        .iter()
        .find(|f| !f.dt.is_empty())
        .is_some_and(|f| f.dt[0].alpha != -10.0);
    let curves = jobs
        .par_iter()
        .map(|job| ClassCurve {
            metric: job.metric,
            class: job.class,
            difficulty: job.difficulty,
            points: job.points,
            curve: job_curve(frames, &prepared, job, with_aos),
        })
        .collect();
    Evaluation {
        frames: frames.len(),
        with_aos,
        curves,
    }
}

fn job_curve(frames: &[Frame], prepared: &[Prepared<'_>], job: &Job, with_aos: bool) -> Curve {
    let min_overlap = job.class.min_overlap();
    let cases: Vec<FrameCase> = frames
        .iter()
        .zip(prepared)
        .map(|(f, p)| frame_case(f, p, job))
        .collect();
    let num_gt = cases
        .iter()
        .map(|c| c.gt_role.iter().filter(|&&r| r == VALID).count())
        .sum();
    let mut assigned = Vec::new();
    let mut scores = Vec::new();
    for case in &cases {
        tp_scores(case, min_overlap, &mut assigned, &mut scores);
    }
    let thresholds = ap::thresholds(scores, num_gt);
    let mut counts = vec![Counts::default(); thresholds.len()];
    for case in &cases {
        for (c, &t) in counts.iter_mut().zip(&thresholds) {
            *c += counts_at(case, min_overlap, t, &mut assigned);
        }
    }
    Curve::new(
        num_gt,
        thresholds,
        &counts,
        with_aos && job.metric == Metric::Image,
    )
}

/// The objects of one frame that take part in a job, with their roles and overlaps.
fn frame_case(frame: &Frame, p: &Prepared<'_>, job: &Job) -> FrameCase {
    let in_range = |counts: &Option<Vec<u32>>, i: usize| match (job.points, counts) {
        (Some(r), Some(c)) => c.get(i).is_some_and(|&n| r.contains(n)),
        _ => true,
    };
    let gts: Vec<(usize, i8)> =
        p.gt.iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let role = gt_role(g, job.class, job.difficulty);
                let role = if role == VALID && !in_range(&frame.gt_points, i) {
                    IGNORED
                } else {
                    role
                };
                (role != OTHER).then_some((i, role))
            })
            .collect();
    let dts: Vec<(usize, i8)> =
        p.dt.iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let role = dt_role(d, job.class, job.difficulty);
                (role != OTHER).then_some((i, role))
            })
            .collect();
    let min_overlap = job.class.min_overlap();
    let overlaps = &p.overlaps[job.metric.index()];
    let mut case = FrameCase {
        gt_role: gts.iter().map(|g| g.1).collect(),
        gt_alpha: gts.iter().map(|g| frame.gt[g.0].alpha).collect(),
        dt_role: dts.iter().map(|d| d.1).collect(),
        dt_score: dts
            .iter()
            .map(|d| frame.dt[d.0].score.unwrap_or(0.0))
            .collect(),
        dt_alpha: dts.iter().map(|d| frame.dt[d.0].alpha).collect(),
        // The reference applies `DontCare` regions to the image metric only.
        dt_in_dontcare: dts
            .iter()
            .map(|d| {
                job.metric == Metric::Image
                    && p.dontcare
                        .iter()
                        .any(|dc| image_coverage(&p.dt[d.0].bbox, dc) > min_overlap)
            })
            .collect(),
        dt_counts_fp: dts
            .iter()
            .map(|d| in_range(&frame.dt_points, d.0))
            .collect(),
        overlap: Vec::with_capacity(gts.len() * dts.len()),
    };
    let n_gt_all = p.gt.len();
    for d in &dts {
        case.overlap
            .extend(gts.iter().map(|g| overlaps[d.0 * n_gt_all + g.0]));
    }
    case
}
