//! The report as plain-text tables for a terminal. Metric groups are placed side by side
//! as long as they fit the width, and wrap into further bands otherwise.

use std::fmt::Write as _;

use super::{ApRow, Summary, fmt_ap, fmt_change, fmt_latency, fmt_size};

/// Width of one value cell, its leading space included, unless column names need more.
const CELL: usize = 8;
/// The widest a cell grows for a long column name (longer names are clipped).
const MAX_CELL: usize = 13;
/// Space between metric groups.
const GAP: usize = 2;

pub(crate) fn render(s: &Summary, width: usize) -> String {
    let mut out = String::new();
    let baseline = if s.columns.len() > 1 {
        format!("; Δ = change vs {}", s.columns[0])
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "KITTI AP ({}, %) over {} frames{baseline}",
        s.recall_points, s.frames
    );
    let short = |d: &str| match d {
        "moderate" => "mod".to_string(),
        d => d.to_string(),
    };
    let label = |r: &ApRow| {
        vec![
            r.class.clone(),
            short(&r.difficulty),
            r.num_gt.map_or_else(String::new, |n| n.to_string()),
        ]
    };
    grid(&mut out, s, &s.ap, &["class", "diff", "GT"], label, width);
    if !s.by_points.is_empty() {
        let _ = writeln!(out, "\nAP by LiDAR points in the ground-truth box (hard)");
        let label = |r: &ApRow| {
            vec![
                r.class.clone(),
                r.points.clone().unwrap_or_default(),
                r.num_gt.map_or_else(String::new, |n| n.to_string()),
            ]
        };
        grid(
            &mut out,
            s,
            &s.by_points,
            &["class", "points", "GT"],
            label,
            width,
        );
    }
    if !s.latency.is_empty() || s.model_bytes.iter().any(Option::is_some) {
        let _ = writeln!(out, "\nLatency per stage (median/p95 ms) and model size");
        let mut rows: Vec<Vec<String>> = s
            .latency
            .iter()
            .map(|l| {
                std::iter::once(l.stage.clone())
                    .chain(l.columns.iter().map(fmt_latency))
                    .collect()
            })
            .collect();
        rows.push(
            std::iter::once("size (MB)".to_string())
                .chain(s.model_bytes.iter().map(|&b| fmt_size(b)))
                .collect(),
        );
        let header: Vec<String> = std::iter::once("stage".to_string())
            .chain(s.columns.iter().cloned())
            .collect();
        plain(&mut out, &header, &rows);
    }
    out
}

/// Rows of one kind (AP or breakdown), grouped by metric, in bands that fit `width`.
fn grid(
    out: &mut String,
    s: &Summary,
    rows: &[ApRow],
    titles: &[&str],
    label: impl Fn(&ApRow) -> Vec<String>,
    width: usize,
) {
    let mut metrics: Vec<&str> = Vec::new();
    for r in rows {
        if !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    // Rows are listed metric by metric in the same order; the first metric's rows name them.
    let per_metric: Vec<Vec<&ApRow>> = metrics
        .iter()
        .map(|m| rows.iter().filter(|r| r.metric == *m).collect())
        .collect();
    let labels: Vec<Vec<String>> = per_metric[0].iter().map(|r| label(r)).collect();
    let label_widths: Vec<usize> = (0..titles.len())
        .map(|i| {
            labels
                .iter()
                .map(|l| l[i].chars().count())
                .chain([titles[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let label_width: usize = label_widths.iter().sum::<usize>() + label_widths.len() - 1;
    let n = s.columns.len();
    // Cells grow to show whole column names, as far as one metric group still fits.
    let fits = width.saturating_sub(label_width + GAP) / (2 * n - 1);
    let cell = s
        .columns
        .iter()
        .map(|c| c.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .clamp(CELL, MAX_CELL.min(fits).max(CELL));
    let group_width = GAP + cell * (2 * n - 1);
    let per_band = ((width.saturating_sub(label_width)) / group_width).max(1);
    for band in (0..metrics.len()).collect::<Vec<_>>().chunks(per_band) {
        out.push('\n');
        let mut line = " ".repeat(label_width);
        for &m in band {
            let _ = write!(
                line,
                "{}{:^w$}",
                " ".repeat(GAP),
                format!("{} AP", metrics[m]),
                w = cell * (2 * n - 1)
            );
        }
        let _ = writeln!(out, "{}", line.trim_end());
        let mut line = pad_labels(
            &titles.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            &label_widths,
        );
        for _ in band {
            line.push_str(&" ".repeat(GAP));
            for (i, c) in s.columns.iter().enumerate() {
                if i > 0 {
                    let _ = write!(line, "{:>cell$}", "Δ");
                }
                let _ = write!(line, "{:>cell$}", clip(c, cell - 1));
            }
        }
        let _ = writeln!(out, "{line}");
        for (r, l) in labels.iter().enumerate() {
            if r > 0 && per_metric[0][r].class == "mAP" && per_metric[0][r - 1].class != "mAP" {
                let _ = writeln!(
                    out,
                    "{}",
                    "-".repeat(label_width + band.len() * group_width)
                );
            }
            let mut line = pad_labels(l, &label_widths);
            for &m in band {
                let row = per_metric[m][r];
                line.push_str(&" ".repeat(GAP));
                for i in 0..n {
                    if i > 0 {
                        let _ = write!(line, "{:>cell$}", fmt_change(row.change[i - 1]));
                    }
                    let _ = write!(line, "{:>cell$}", fmt_ap(row.ap[i]));
                }
            }
            let _ = writeln!(out, "{line}");
        }
    }
}

fn pad_labels(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (c, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push(' ');
        }
        // The last label column (counts) is right-aligned.
        if i + 1 == cells.len() {
            let _ = write!(line, "{c:>w$}");
        } else {
            let _ = write!(line, "{c:<w$}");
        }
    }
    line
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A left-labelled table of strings, columns right-aligned to their widest cell.
fn plain(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = format!("{:<w$}", r[0], w = widths[0]);
        for (c, &w) in r.iter().zip(&widths).skip(1) {
            let _ = write!(line, "  {c:>w$}");
        }
        let _ = writeln!(out, "{line}");
    }
}
