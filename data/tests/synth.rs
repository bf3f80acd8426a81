//! The synthetic generator: determinism across thread counts, label geometry, realistic
//! counts, and the written dataset read back through the data layer.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lidarq_data::kitti::{KittiDataset, read_bin, read_labels};
use lidarq_data::synth::{
    Drive, LidarModel, ObjectClass, SynthConfig, SynthFrame, object_frame, write_drive,
    write_object_dataset,
};
use lidarq_data::{Box3D, Calib, KITTI_IMAGE_SIZE};

fn cfg(beams: usize, seed: u64) -> SynthConfig {
    SynthConfig {
        lidar: LidarModel::with_beams(beams).expect("preset"),
        seed,
    }
}

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let config = cfg(32, 11);
    in_pool(1, || {
        write_object_dataset(a.path(), &config, 3, 0.34, &mut || {})
    })
    .unwrap();
    in_pool(2, || {
        write_object_dataset(b.path(), &config, 3, 0.34, &mut || {})
    })
    .unwrap();
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert_eq!(ta.len(), 3 * 3 + 2);
    assert!(ta == tb, "object datasets differ between 1 and 2 threads");
    write_object_dataset(c.path(), &cfg(32, 12), 3, 0.34, &mut || {}).unwrap();
    assert_ne!(
        ta["training/velodyne/000000.bin"],
        tree(c.path())["training/velodyne/000000.bin"]
    );

    let (d, e) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    in_pool(1, || write_drive(d.path(), &config, 3, &mut || {})).unwrap();
    in_pool(2, || write_drive(e.path(), &config, 3, &mut || {})).unwrap();
    assert!(
        tree(d.path()) == tree(e.path()),
        "drives differ between 1 and 2 threads"
    );
}

/// Separating-axis test on the bird's-eye footprints, plus the height overlap.
fn boxes_overlap(a: &Box3D, b: &Box3D) -> bool {
    let corners = |t: &Box3D| {
        let (s, c) = t.yaw.sin_cos();
        [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)].map(|(u, v)| {
            (
                t.x + c * u * t.dx / 2.0 - s * v * t.dy / 2.0,
                t.y + s * u * t.dx / 2.0 + c * v * t.dy / 2.0,
            )
        })
    };
    if (a.z - b.z).abs() >= (a.dz + b.dz) / 2.0 {
        return false;
    }
    let (ca, cb) = (corners(a), corners(b));
    for yaw in [a.yaw, b.yaw] {
        for (ax, ay) in [(yaw.cos(), yaw.sin()), (-yaw.sin(), yaw.cos())] {
            let span = |pts: &[(f32, f32); 4]| {
                pts.iter()
                    .map(|p| p.0 * ax + p.1 * ay)
                    .fold((f32::MAX, f32::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)))
            };
            let ((a0, a1), (b0, b1)) = (span(&ca), span(&cb));
            if a1 <= b0 || b1 <= a0 {
                return false;
            }
        }
    }
    true
}

#[test]
fn overlap_check_sees_overlap() {
    let a = Box3D {
        x: 0.0,
        y: 0.0,
        z: 0.0,
        dx: 4.0,
        dy: 2.0,
        dz: 1.5,
        yaw: 0.0,
    };
    assert!(boxes_overlap(
        &a,
        &Box3D {
            x: 3.9,
            yaw: 0.3,
            ..a
        }
    ));
    assert!(!boxes_overlap(&a, &Box3D { x: 4.1, ..a }));
    assert!(!boxes_overlap(&a, &Box3D { y: 2.0, ..a }));
}

fn frames(cfg: &SynthConfig, n: u64) -> Vec<SynthFrame> {
    (0..n).map(|i| object_frame(cfg, i)).collect()
}

#[test]
fn labels_are_geometrically_sound() {
    let (w, h) = KITTI_IMAGE_SIZE;
    let calib = Calib::kitti_default();
    let frames = frames(&cfg(64, 5), 6);
    let mut labelled = 0;
    for f in &frames {
        for (i, a) in f.objects.iter().enumerate() {
            let inside = (0..f.cloud.len())
                .filter(|&p| a.bbox.contains(f.cloud.x[p], f.cloud.y[p], f.cloud.z[p]))
                .count();
            assert!(
                inside >= 1 && inside >= a.points as usize,
                "{a:?} has {inside} points in its box"
            );
            for b in &f.objects[i + 1..] {
                assert!(
                    !boxes_overlap(&a.bbox, &b.bbox),
                    "{:?} overlaps {:?}",
                    a.bbox,
                    b.bbox
                );
            }
            let Some(l) = &a.label else { continue };
            labelled += 1;
            let [x0, y0, x1, y1] = l.bbox;
            assert!(0.0 <= x0 && x0 < x1 && x1 <= (w - 1) as f32, "{l:?}");
            assert!(0.0 <= y0 && y0 < y1 && y1 <= (h - 1) as f32, "{l:?}");
            assert!((0.0..=1.0).contains(&l.truncated) && (0..=3).contains(&l.occluded));
            // The label is the box, through the calibration.
            let back = calib.label_to_box(l);
            assert!((back.x - a.bbox.x).abs() < 1e-3 && (back.z - a.bbox.z).abs() < 1e-3);
        }
    }
    assert!(labelled > 0);
}

#[test]
fn counts_look_like_kitti() {
    let frames = frames(&cfg(64, 21), 8);
    let mut per_class: HashMap<ObjectClass, usize> = HashMap::new();
    let mut near_car_points = Vec::new();
    let mut far_car_points = Vec::new();
    for f in &frames {
        // KITTI's HDL-64E sweeps hold about 100k-130k points.
        assert!(
            (80_000..150_000).contains(&f.cloud.len()),
            "{} points",
            f.cloud.len()
        );
        assert!(f.cloud.intensity.iter().all(|i| (0.0..=1.0).contains(i)));
        // Nothing from the sky: every point is below the tallest building.
        assert!(f.cloud.z.iter().all(|&z| z < 25.0));
        for o in f.objects.iter().filter(|o| o.label.is_some()) {
            *per_class.entry(o.class).or_default() += 1;
            let range = o.bbox.x.hypot(o.bbox.y);
            if o.class == ObjectClass::Car && o.hidden < 0.15 {
                if range < 12.0 {
                    near_car_points.push(o.points);
                } else if range > 50.0 && range < 70.0 {
                    far_car_points.push(o.points);
                }
            }
        }
    }
    let n = |c| per_class.get(&c).copied().unwrap_or(0);
    let cars = n(ObjectClass::Car) as f32 / frames.len() as f32;
    assert!((3.0..25.0).contains(&cars), "{cars} cars per frame");
    assert!(
        n(ObjectClass::Car) > n(ObjectClass::Pedestrian) && n(ObjectClass::Pedestrian) > 0,
        "{per_class:?}"
    );
    // Points on an unoccluded car: thousands close by, tens far away.
    let median = |v: &mut Vec<u32>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    assert!(
        median(&mut near_car_points).is_none_or(|m| m > 800),
        "{near_car_points:?}"
    );
    assert!(
        median(&mut far_car_points).is_none_or(|m| (8..300).contains(&m)),
        "{far_car_points:?}"
    );
}

#[test]
fn written_dataset_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(32, 3);
    let stats = write_object_dataset(dir.path(), &cfg, 4, 0.25, &mut || {}).unwrap();
    assert_eq!(stats.frames, 4);
    let ds = KittiDataset::open(dir.path()).unwrap();
    let (train, val) = (ds.split_ids("train").unwrap(), ds.split_ids("val").unwrap());
    assert_eq!((train.len(), val.len()), (3, 1));
    for (i, id) in ds.all_ids().unwrap().iter().enumerate() {
        let frame = object_frame(&cfg, i as u64);
        assert_eq!(ds.cloud(id).unwrap().x, frame.cloud.x);
        assert_eq!(ds.labels(id).unwrap(), frame.labels());
        assert_eq!(ds.calib(id).unwrap(), Calib::kitti_default());
    }
}

#[test]
fn drives_keep_track_ids_and_move_smoothly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(32, 8);
    write_drive(dir.path(), &cfg, 3, &mut || {}).unwrap();
    let stamps =
        std::fs::read_to_string(dir.path().join("velodyne_points/timestamps.txt")).unwrap();
    assert_eq!(
        stamps.lines().collect::<Vec<_>>()[1],
        "2011-09-26 12:00:00.100000000"
    );
    let cloud = read_bin(&dir.path().join("velodyne_points/data/0000000002.bin")).unwrap();
    assert!(!cloud.is_empty());
    assert!(read_labels(&dir.path().join("label_2/0000000000.txt")).is_ok());
    let tracking = std::fs::read_to_string(dir.path().join("label_02/0000.txt")).unwrap();
    assert!(tracking.lines().all(|l| l.split_whitespace().count() == 17));

    // Between frames the ego moves 0.7-1.3 m, and everything else at most ~1.5 m per frame
    // in the street's frame.
    let drive = Drive::new(&cfg);
    let (f0, f1) = (drive.frame(0), drive.frame(1));
    let ego_step = f1.pose[0] - f0.pose[0];
    assert!((0.69..1.31).contains(&ego_step), "{ego_step}");
    let world = |f: &SynthFrame, b: &Box3D| {
        let (s, c) = f.pose[3].sin_cos();
        (f.pose[0] + c * b.x - s * b.y, f.pose[1] + s * b.x + c * b.y)
    };
    let mut matched = 0;
    for o in &f0.objects {
        if let Some(p) = f1.objects.iter().find(|p| p.track_key == o.track_key) {
            let (a, b) = (world(&f0, &o.bbox), world(&f1, &p.bbox));
            assert!((a.0 - b.0).hypot(a.1 - b.1) < 1.5, "{o:?} jumped to {p:?}");
            assert_eq!(o.class, p.class);
            matched += 1;
        }
    }
    assert!(matched > 3);
}
