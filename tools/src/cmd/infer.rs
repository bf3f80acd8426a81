//! `lidarq infer --model DIR --input FILE|DIR --out DIR`: runs the fp32 detector on point
//! clouds and writes one KITTI result file per cloud (`<name>.txt`: boxes in the camera
//! frame, projected 2D box, alpha, score).
//!
//! A folder is either KITTI-shaped (`velodyne/*.bin` with `calib/<id>.txt` beside it) or a
//! plain folder of `.bin` / `.pcd` / `.pcd.bin` files. Calibration comes from the frame's
//! calib file, else `--calib`, else KITTI's default calibration.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_data::kitti::{read_calib, write_labels};
use lidarq_data::{CLOUD_SUFFIXES, Calib, ObjectLabel, read_cloud};
use lidarq_detector::{Detector, Model};

/// Arguments of `lidarq infer`.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder (`model.json` + `model.safetensors`).
    #[arg(long)]
    pub model: PathBuf,
    /// A point cloud, a folder of them, or a KITTI folder with `velodyne/`.
    #[arg(long)]
    pub input: PathBuf,
    /// Folder for the result files (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Calibration for clouds without their own `calib/<id>.txt`.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Keep only the points camera 2 sees (OpenPCDet's `FOV_POINTS_ONLY`, how KITTI models
    /// are trained and evaluated).
    #[arg(long)]
    pub fov: bool,
}

/// A cloud to run and the calib file that belongs to it, if any.
struct Job {
    cloud: PathBuf,
    calib: Option<PathBuf>,
    name: String,
}

fn stem(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    CLOUD_SUFFIXES
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .map(str::to_string)
}

fn jobs(input: &Path) -> anyhow::Result<Vec<Job>> {
    if input.is_file() {
        let name = stem(input)
            .with_context(|| format!("{}: not a .bin, .pcd or .pcd.bin file", input.display()))?;
        return Ok(vec![Job {
            cloud: input.into(),
            calib: None,
            name,
        }]);
    }
    let velodyne = input.join("velodyne");
    let (dir, calib_dir) = if velodyne.is_dir() {
        (velodyne, Some(input.join("calib")))
    } else {
        (input.to_path_buf(), None)
    };
    let mut jobs = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if let Some(name) = stem(&path) {
            let calib = calib_dir
                .as_ref()
                .map(|d| d.join(format!("{name}.txt")))
                .filter(|c| c.is_file());
            jobs.push(Job {
                cloud: path,
                calib,
                name,
            });
        }
    }
    if jobs.is_empty() {
        bail!("{}: no point cloud files", dir.display());
    }
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(jobs)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut detector = Detector::new(Model::load(&args.model)?)?;
    let jobs = jobs(&args.input)?;
    let fallback = match &args.calib {
        Some(path) => read_calib(path)?,
        None => Calib::kitti_default(),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let bar = ProgressBar::new(jobs.len() as u64).with_style(ProgressStyle::with_template(
        "infer {bar:30} {pos}/{len} [{elapsed} < {eta}] {msg}",
    )?);
    let mut total = 0;
    for job in &jobs {
        let mut cloud = read_cloud(&job.cloud)?.cloud;
        let calib = match &job.calib {
            Some(path) => read_calib(path)?,
            None => fallback.clone(),
        };
        if args.fov {
            calib.retain_image_fov(&mut cloud);
        }
        let labels: Vec<ObjectLabel> = detector
            .detect(&cloud)
            .with_context(|| job.cloud.display().to_string())?
            .iter()
            .map(|d| ObjectLabel {
                score: Some(d.score),
                ..calib.box_to_label(&d.bbox, &d.class)
            })
            .collect();
        total += labels.len();
        write_labels(&args.out.join(format!("{}.txt", job.name)), &labels)?;
        bar.set_message(job.name.clone());
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "{} frames, {total} detections → {}",
        jobs.len(),
        args.out.display()
    );
    Ok(())
}
