//! The evaluation report: one column per evaluated model or precision (fp32, int8, …) on
//! the same frames, with AP per metric × class × difficulty, mAP, AP by LiDAR points per
//! object, latency per stage and model size, and each column's change against the first.
//!
//! [`Report::summary`] reduces the columns to the numbers shown; the terminal table, the
//! Markdown and the JSON are all written from that summary, so they show the same numbers.

mod markdown;
mod plot;
mod table;

pub use plot::write_pr_plots;

use std::path::Path;

use crate::kitti::{Class, Curve, Difficulty, Evaluation, Metric, PointRange, RecallPoints};
use crate::{EvalError, Result};

/// Latency of one pipeline stage over the evaluated frames.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageLatency {
    /// Stage name (`voxelize`, `backbone`, `decode+nms`, …).
    pub stage: String,
    /// Median (ms).
    pub median_ms: f64,
    /// 95th percentile, nearest rank (ms).
    pub p95_ms: f64,
    /// Number of timings.
    pub samples: usize,
}

impl StageLatency {
    /// Summarizes per-frame timings in milliseconds; `None` without timings.
    pub fn from_samples(stage: &str, samples_ms: &[f64]) -> Option<Self> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut s = samples_ms.to_vec();
        s.sort_unstable_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        };
        // Nearest rank: the smallest value with at least 95 % of the samples at or below.
        let rank = (0.95 * n as f64).ceil() as usize;
        Some(Self {
            stage: stage.to_string(),
            median_ms: median,
            p95_ms: s[rank.clamp(1, n) - 1],
            samples: n,
        })
    }
}

/// One evaluated model or precision.
#[derive(Debug, Clone)]
pub struct Column {
    /// Column title (`fp32`, `int8`, a file name, …).
    pub name: String,
    /// AP curves over all frames.
    pub evaluation: Evaluation,
    /// AP curves per LiDAR point range, when point counts were available.
    pub by_points: Option<Evaluation>,
    /// Per-stage latency (empty when evaluating result files).
    pub latency: Vec<StageLatency>,
    /// Model size on disk (bytes), when a model was run.
    pub model_bytes: Option<u64>,
}

/// Columns evaluated on the same frames, and how AP is sampled.
#[derive(Debug, Clone)]
pub struct Report {
    /// AP over 11 or 40 recall points.
    pub recall_points: RecallPoints,
    /// The columns; the first is the baseline of every change.
    pub columns: Vec<Column>,
}

/// One row of AP values: the value per column and the change of each later column against
/// the first (`None` where either is undefined, e.g. no ground truth).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApRow {
    /// `3D`, `BEV`, `2D` or `AOS`.
    pub metric: String,
    /// Class name, or `mAP` for the mean over classes.
    pub class: String,
    /// `easy`, `moderate` or `hard`.
    pub difficulty: String,
    /// Point range (`0-9 pts`, …) for the breakdown rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<String>,
    /// Ground truths that must be found (`None` for mAP rows).
    pub num_gt: Option<usize>,
    /// AP (%) per column.
    pub ap: Vec<Option<f64>>,
    /// AP change (percentage points) of columns 2.. against column 1.
    pub change: Vec<Option<f64>>,
}

/// One stage's latency in every column.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LatencyRow {
    /// Stage name.
    pub stage: String,
    /// Per column, `None` where the column has no timing of this stage.
    pub columns: Vec<Option<StageLatency>>,
}

/// Every number the report shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// `R11` or `R40`.
    pub recall_points: String,
    /// Frames evaluated.
    pub frames: usize,
    /// Column titles.
    pub columns: Vec<String>,
    /// AP per metric × class × difficulty, then mAP per metric × difficulty.
    pub ap: Vec<ApRow>,
    /// AP per metric × class × point range (hard difficulty).
    pub by_points: Vec<ApRow>,
    /// Latency per stage.
    pub latency: Vec<LatencyRow>,
    /// Model size (bytes) per column.
    pub model_bytes: Vec<Option<u64>>,
}

/// What a report row reads from a column's curves.
#[derive(Clone, Copy)]
enum Quantity {
    Ap(Metric),
    Aos,
}

impl Quantity {
    fn name(self) -> &'static str {
        match self {
            Self::Ap(m) => m.name(),
            Self::Aos => "AOS",
        }
    }

    fn curve_metric(self) -> Metric {
        match self {
            Self::Ap(m) => m,
            Self::Aos => Metric::Image,
        }
    }

    fn value(self, curve: &Curve, points: RecallPoints) -> Option<f64> {
        match self {
            Self::Ap(_) => curve.ap(points),
            Self::Aos => curve.aos_ap(points),
        }
    }
}

impl Report {
    /// A report on one or more columns evaluated on the same frames.
    pub fn new(recall_points: RecallPoints, columns: Vec<Column>) -> Result<Self> {
        let Some(first) = columns.first() else {
            return Err(EvalError::Input(
                "a report needs at least one column".into(),
            ));
        };
        if let Some(c) = columns
            .iter()
            .find(|c| c.evaluation.frames != first.evaluation.frames)
        {
            return Err(EvalError::Input(format!(
                "column {} has {} frames, column {} has {}",
                c.name, c.evaluation.frames, first.name, first.evaluation.frames
            )));
        }
        Ok(Self {
            recall_points,
            columns,
        })
    }

    /// The numbers shown by every rendering.
    pub fn summary(&self) -> Summary {
        let first = &self.columns[0];
        let mut quantities: Vec<Quantity> = Metric::ALL.iter().map(|&m| Quantity::Ap(m)).collect();
        if first.evaluation.with_aos {
            quantities.push(Quantity::Aos);
        }
        let mut ap = Vec::new();
        let mut means = Vec::new();
        for &q in &quantities {
            for class in Class::ALL {
                for difficulty in Difficulty::ALL {
                    ap.push(self.row(q, class, difficulty, None));
                }
            }
            for difficulty in Difficulty::ALL {
                means.push(self.mean_row(q, difficulty, &ap));
            }
        }
        ap.extend(means);
        let by_points = match first.by_points.as_ref() {
            Some(e) => self.point_rows(e),
            None => Vec::new(),
        };
        let mut stages: Vec<&str> = Vec::new();
        for c in &self.columns {
            for l in &c.latency {
                if !stages.contains(&l.stage.as_str()) {
                    stages.push(&l.stage);
                }
            }
        }
        let latency = stages
            .iter()
            .map(|&stage| LatencyRow {
                stage: stage.to_string(),
                columns: self
                    .columns
                    .iter()
                    .map(|c| c.latency.iter().find(|l| l.stage == stage).cloned())
                    .collect(),
            })
            .collect();
        Summary {
            recall_points: self.recall_points.name().to_string(),
            frames: first.evaluation.frames,
            columns: self.columns.iter().map(|c| c.name.clone()).collect(),
            ap,
            by_points,
            latency,
            model_bytes: self.columns.iter().map(|c| c.model_bytes).collect(),
        }
    }

    fn point_rows(&self, first: &Evaluation) -> Vec<ApRow> {
        let mut ranges: Vec<PointRange> = Vec::new();
        for c in &first.curves {
            if let Some(r) = c.points
                && !ranges.contains(&r)
            {
                ranges.push(r);
            }
        }
        let mut rows = Vec::new();
        for metric in [Metric::Box3d, Metric::Bev] {
            for class in Class::ALL {
                for &r in &ranges {
                    rows.push(self.row(Quantity::Ap(metric), class, Difficulty::Hard, Some(r)));
                }
            }
        }
        rows
    }

    fn row(
        &self,
        q: Quantity,
        class: Class,
        difficulty: Difficulty,
        points: Option<PointRange>,
    ) -> ApRow {
        let curves: Vec<Option<&Curve>> = self
            .columns
            .iter()
            .map(|c| {
                let e = if points.is_some() {
                    c.by_points.as_ref()
                } else {
                    Some(&c.evaluation)
                };
                e.and_then(|e| e.find(q.curve_metric(), class, difficulty, points))
            })
            .collect();
        let ap: Vec<Option<f64>> = curves
            .iter()
            .map(|c| c.and_then(|c| q.value(c, self.recall_points)))
            .collect();
        ApRow {
            metric: q.name().to_string(),
            class: class.name().to_string(),
            difficulty: difficulty.name().to_string(),
            points: points.map(|r| r.label()),
            num_gt: curves[0].map(|c| c.num_gt),
            change: changes(&ap),
            ap,
        }
    }

    /// Mean over the classes that have ground truth, per column.
    fn mean_row(&self, q: Quantity, difficulty: Difficulty, rows: &[ApRow]) -> ApRow {
        let rows: Vec<&ApRow> = rows
            .iter()
            .filter(|r| r.metric == q.name() && r.difficulty == difficulty.name())
            .collect();
        let ap: Vec<Option<f64>> = (0..self.columns.len())
            .map(|i| {
                let values: Vec<f64> = rows.iter().filter_map(|r| r.ap[i]).collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            })
            .collect();
        ApRow {
            metric: q.name().to_string(),
            class: "mAP".to_string(),
            difficulty: difficulty.name().to_string(),
            points: None,
            num_gt: None,
            change: changes(&ap),
            ap,
        }
    }

    /// The report as a table for a terminal of `width` columns.
    pub fn to_table(&self, width: usize) -> String {
        table::render(&self.summary(), width)
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        markdown::render(&self.summary())
    }

    /// The report as JSON: the summary and every column's precision–recall curves.
    pub fn to_json(&self) -> serde_json::Result<String> {
        #[derive(serde::Serialize)]
        struct Curves<'a> {
            column: &'a str,
            evaluation: &'a Evaluation,
            by_points: Option<&'a Evaluation>,
        }
        #[derive(serde::Serialize)]
        struct Full<'a> {
            summary: Summary,
            curves: Vec<Curves<'a>>,
        }
        let curves = self
            .columns
            .iter()
            .map(|c| Curves {
                column: &c.name,
                evaluation: &c.evaluation,
                by_points: c.by_points.as_ref(),
            })
            .collect();
        serde_json::to_string_pretty(&Full {
            summary: self.summary(),
            curves,
        })
    }

    /// Writes [`Report::to_json`] to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = self.to_json().map_err(|source| EvalError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        write_text(path, &text)
    }

    /// Writes [`Report::to_markdown`] to `path`.
    pub fn write_markdown(&self, path: &Path) -> Result<()> {
        write_text(path, &self.to_markdown())
    }
}

fn changes(ap: &[Option<f64>]) -> Vec<Option<f64>> {
    ap.iter()
        .skip(1)
        .map(|v| Some(v.as_ref()? - ap[0]?))
        .collect()
}

/// Writes `text`, creating missing parent folders: a report is written after the whole
/// evaluation, so `--markdown out/run1.md` must not fail then for want of `out/`.
fn write_text(path: &Path, text: &str) -> Result<()> {
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// An AP cell: two decimals, `-` when undefined.
pub(crate) fn fmt_ap(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// A change cell: signed, two decimals.
pub(crate) fn fmt_change(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:+.2}"))
}

/// A latency cell: median / p95 in ms.
pub(crate) fn fmt_latency(l: &Option<StageLatency>) -> String {
    l.as_ref().map_or_else(
        || "-".to_string(),
        |l| format!("{:.1}/{:.1}", l.median_ms, l.p95_ms),
    )
}

/// A size cell in MB.
pub(crate) fn fmt_size(b: Option<u64>) -> String {
    b.map_or_else(|| "-".to_string(), |b| format!("{:.2}", b as f64 / 1e6))
}
