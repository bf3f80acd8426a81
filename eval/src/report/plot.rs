//! Precision–recall curves as PNG images, drawn with plotters' bitmap backend and a font
//! shipped inside the binary (no system font library is consulted).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::Report;
use crate::kitti::{Class, Difficulty, Metric};
use crate::{EvalError, Result};

/// DejaVu Sans reduced to ASCII (license in `eval/assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

fn font_ready() -> std::result::Result<(), String> {
    static READY: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "bundled font is unreadable".to_string())
        })
        .clone()
}

/// One line style per column, one colour per difficulty.
const COLOURS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// Writes `pr_<metric>_<class>.png` into `dir` for every metric and class: one curve per
/// difficulty and column (interpolated precision over recall, as AP integrates it).
/// Returns the files written.
pub fn write_pr_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for metric in Metric::ALL {
        for class in Class::ALL {
            let path = dir.join(format!(
                "pr_{}_{}.png",
                metric.name().to_lowercase(),
                class.name().to_lowercase()
            ));
            draw(report, metric, class, &path).map_err(|msg| EvalError::Plot {
                path: path.clone(),
                msg,
            })?;
            written.push(path);
        }
    }
    Ok(written)
}

fn draw(
    report: &Report,
    metric: Metric,
    class: Class,
    path: &Path,
) -> std::result::Result<(), String> {
    font_ready()?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (720, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = format!(
        "{} {} precision-recall ({} AP)",
        class.name(),
        metric.name(),
        report.recall_points.name()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("recall")
        .y_desc("precision")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    for (ci, column) in report.columns.iter().enumerate() {
        for (di, difficulty) in Difficulty::ALL.into_iter().enumerate() {
            let Some(curve) = column.evaluation.curve(metric, class, difficulty) else {
                continue;
            };
            let points: Vec<(f64, f64)> = (0..curve.thresholds.len())
                .map(|i| (curve.recall[i], curve.precision[i]))
                .collect();
            let colour = COLOURS[di];
            // Later columns are drawn thinner so that overlapping curves stay visible.
            let style = ShapeStyle {
                color: colour.to_rgba(),
                filled: false,
                stroke_width: (3 - ci.min(2)) as u32,
            };
            let label = format!(
                "{} {} (AP {:.2})",
                column.name,
                difficulty.name(),
                curve.ap(report.recall_points).unwrap_or(0.0)
            );
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
