//! `lidarq info PATH`: what the data layer reads from a file or folder — point clouds,
//! KITTI labels and calib files, KITTI object datasets and drive-log folders.

use anyhow::{Context, bail};
use lidarq_data::kitti::{KittiDataset, parse_calib, parse_labels, read_labels};
use lidarq_data::pcd::read_pcd;
use lidarq_data::{CloudFormat, FrameSequence, ObjectLabel, TimeSource, read_cloud};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `lidarq info`.
#[derive(clap::Args)]
pub struct Args {
    /// A point cloud (.bin, .pcd, .pcd.bin), label, calib file, or a KITTI / sequence folder.
    pub path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Frame rate assumed for a drive log without `timestamps.txt` (HDL-64 spins at 10 Hz).
const DEFAULT_HZ: f64 = 10.0;

pub fn run(args: Args) -> anyhow::Result<()> {
    let report = describe(&args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_tree(&report, 0);
    }
    Ok(())
}

fn describe(path: &Path) -> anyhow::Result<Value> {
    if path.is_dir() {
        if path.join("training/velodyne").is_dir() {
            return describe_kitti(path);
        }
        return describe_sequence(path);
    }
    if CloudFormat::from_path(path).is_some() {
        return describe_cloud(path);
    }
    if path.extension().is_some_and(|e| e == "txt") {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        if text
            .lines()
            .any(|l| l.starts_with("P2") || l.starts_with("Tr_velo"))
        {
            return describe_calib(&text, path);
        }
        return Ok(describe_labels(&parse_labels(&text, path)?, path));
    }
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    bail!(
        "{}: not a point cloud (.bin, .pcd.bin, .pcd), KITTI .txt file or folder",
        path.display()
    )
}

fn describe_cloud(path: &Path) -> anyhow::Result<Value> {
    let read = read_cloud(path)?;
    let cloud = &read.cloud;
    let mut fields = vec!["x", "y", "z", "intensity"];
    fields.extend(cloud.extra.iter().map(|f| f.name.as_str()));
    let bounds = cloud.bounds().map(|b| {
        let names = ["x", "y", "z", "intensity"];
        Value::Object(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), json!([b.min[i], b.max[i]])))
                .collect(),
        )
    });
    let mut report = json!({
        "path": path.display().to_string(),
        "kind": "point_cloud",
        "format": read.format,
        "points": cloud.len(),
        "fields": fields,
        "dropped_non_finite": read.dropped_non_finite,
        "bounds": bounds,
    });
    if read.format == CloudFormat::Pcd {
        // The header's own view: size, type and count of each field, and the cloud's shape.
        let pcd = read_pcd(path)?;
        report["pcd"] = json!({
            "encoding": pcd.encoding,
            "width": pcd.width,
            "height": pcd.height,
            "fields": pcd.fields.iter().map(|f| format!("{} {}{}x{}", f.name, f.type_char, f.size, f.count)).collect::<Vec<_>>(),
        });
    }
    Ok(report)
}

fn objects_per_class<'a>(
    labels: impl IntoIterator<Item = &'a ObjectLabel>,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in labels {
        *counts.entry(l.kind.clone()).or_insert(0) += 1;
    }
    counts
}

fn describe_labels(labels: &[ObjectLabel], path: &Path) -> Value {
    json!({
        "path": path.display().to_string(),
        "kind": if labels.iter().any(|l| l.score.is_some()) { "kitti_results" } else { "kitti_labels" },
        "objects": labels.len(),
        "objects_per_class": objects_per_class(labels),
    })
}

fn describe_calib(text: &str, path: &Path) -> anyhow::Result<Value> {
    let calib = parse_calib(text, path)?;
    let mut report = json!({ "path": path.display().to_string(), "kind": "kitti_calib" });
    for (key, rows) in calib.named_rows() {
        report[key] = json!(rows);
    }
    Ok(report)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .count()
    })
}

fn describe_kitti(root: &Path) -> anyhow::Result<Value> {
    let ds = KittiDataset::open(root)?;
    let training = root.join("training");
    let mut folders = serde_json::Map::new();
    for sub in ["velodyne", "label_2", "calib", "image_2"] {
        if training.join(sub).is_dir() {
            folders.insert(
                format!("training/{sub}"),
                json!({ "files": count_files(&training.join(sub)) }),
            );
        }
    }
    let mut splits = serde_json::Map::new();
    for split in ["train", "val", "trainval", "test"] {
        if let Ok(ids) = ds.split_ids(split) {
            splits.insert(split.to_string(), json!(ids.len()));
        }
    }
    let ids = ds.all_ids()?;
    let bar = indicatif::ProgressBar::new(ids.len() as u64).with_message("reading labels");
    let mut labels = Vec::new();
    for id in &ids {
        let path = ds.label_path(id);
        if path.is_file() {
            labels.extend(read_labels(&path)?);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(json!({
        "path": root.display().to_string(),
        "kind": "kitti_dataset",
        "frames": ids.len(),
        "folders": folders,
        "splits": splits,
        "objects_per_class": objects_per_class(&labels),
    }))
}

fn describe_sequence(dir: &Path) -> anyhow::Result<Value> {
    let seq = FrameSequence::open(dir, DEFAULT_HZ)?;
    let first = seq.frame(0).context("empty sequence")??;
    let time = match seq.time_source() {
        TimeSource::File(p) => json!({ "timestamps": p.display().to_string() }),
        TimeSource::FixedRate(hz) => json!({ "fixed_rate_hz": hz }),
    };
    let duration = seq.timestamps().last().copied().unwrap_or(0.0);
    Ok(json!({
        "path": dir.display().to_string(),
        "kind": "sequence",
        "frames": seq.len(),
        "time": time,
        "duration_s": duration,
        "first_frame": {
            "path": first.path.display().to_string(),
            "format": first.data.format,
            "points": first.data.cloud.len(),
            "dropped_non_finite": first.data.dropped_non_finite,
        },
    }))
}

/// Prints a report as an indented `key: value` tree; short arrays stay on one line.
fn print_tree(value: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    let Value::Object(map) = value else {
        println!("{pad}{value}");
        return;
    };
    for (key, v) in map {
        match v {
            Value::Object(_) => {
                println!("{pad}{key}:");
                print_tree(v, indent + 1);
            }
            Value::Array(items) if items.iter().any(Value::is_array) => {
                println!("{pad}{key}:");
                for item in items {
                    println!("{pad}  {item}");
                }
            }
            Value::String(s) => println!("{pad}{key}: {s}"),
            _ => println!("{pad}{key}: {v}"),
        }
    }
}
