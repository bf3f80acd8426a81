//! The report as Markdown: one table per metric, the point-count breakdown, latency and size.

use std::fmt::Write as _;

use super::{ApRow, Summary, fmt_ap, fmt_change, fmt_latency, fmt_size};

pub(crate) fn render(s: &Summary) -> String {
    let mut out = format!(
        "# KITTI evaluation\n\n{} frames, AP over {} recall points (%).",
        s.frames, s.recall_points
    );
    if s.columns.len() > 1 {
        let _ = write!(
            out,
            " Δ: change against `{}` in percentage points.",
            s.columns[0]
        );
    }
    out.push('\n');
    ap_tables(
        &mut out,
        s,
        &s.ap,
        "difficulty",
        |r| r.difficulty.clone(),
        "",
    );
    if !s.by_points.is_empty() {
        ap_tables(
            &mut out,
            s,
            &s.by_points,
            "LiDAR points",
            |r| r.points.clone().unwrap_or_default(),
            " by LiDAR points (hard)",
        );
    }
    if !s.latency.is_empty() || s.model_bytes.iter().any(Option::is_some) {
        out.push_str("\n## Latency (median / p95 ms) and size\n\n| stage |");
        for c in &s.columns {
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(s.columns.len()));
        out.push('\n');
        for l in &s.latency {
            let _ = write!(out, "| {} |", l.stage);
            for c in &l.columns {
                let _ = write!(out, " {} |", fmt_latency(c));
            }
            out.push('\n');
        }
        out.push_str("| size (MB) |");
        for &b in &s.model_bytes {
            let _ = write!(out, " {} |", fmt_size(b));
        }
        out.push('\n');
    }
    out
}

fn ap_tables(
    out: &mut String,
    s: &Summary,
    rows: &[ApRow],
    key: &str,
    key_of: impl Fn(&ApRow) -> String,
    suffix: &str,
) {
    let mut metrics: Vec<&str> = Vec::new();
    for r in rows {
        if !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    for m in metrics {
        let _ = write!(out, "\n## {m} AP{suffix}\n\n| class | {key} | GT |");
        for (i, c) in s.columns.iter().enumerate() {
            if i > 0 {
                let _ = write!(out, " Δ {c} |");
            }
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|---|---|---:|");
        out.push_str(&"---:|".repeat(2 * s.columns.len() - 1));
        out.push('\n');
        for r in rows.iter().filter(|r| r.metric == m) {
            let gt = r.num_gt.map_or_else(String::new, |n| n.to_string());
            let _ = write!(out, "| {} | {} | {gt} |", r.class, key_of(r));
            for (i, v) in r.ap.iter().enumerate() {
                if i > 0 {
                    let _ = write!(out, " {} |", fmt_change(r.change[i - 1]));
                }
                let _ = write!(out, " {} |", fmt_ap(*v));
            }
            out.push('\n');
        }
    }
}
