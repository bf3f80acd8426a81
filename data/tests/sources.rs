//! nuScenes sweeps, the format-by-name reader and drive-log sequences.

use lidarq_data::kitti::write_bin;
use lidarq_data::nuscenes::{read_nuscenes_bin, write_nuscenes_bin};
use lidarq_data::pcd::{PcdEncoding, write_pcd};
use lidarq_data::{
    CloudFormat, DataError, ExtraField, FrameSequence, PointCloud, TimeSource, read_cloud,
};
use std::path::Path;

fn cloud(n: usize, seed: f32) -> PointCloud {
    let mut c = PointCloud::with_capacity(n);
    for i in 0..n {
        let f = i as f32 + seed;
        c.push(f * 0.5, -f, f * 0.01, (f * 0.1).fract());
    }
    c
}

#[test]
fn nuscenes_round_trip_keeps_the_ring() {
    let mut c = cloud(7, 0.25);
    c.extra.push(ExtraField {
        name: "ring".into(),
        values: vec![0.0, 1.0, 2.0, 31.0, 4.0, 5.0, 6.0],
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.pcd.bin");
    write_nuscenes_bin(&path, &c).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 7 * 20);
    assert_eq!(read_nuscenes_bin(&path).unwrap(), c);
    let read = read_cloud(&path).unwrap();
    assert_eq!((read.format, read.cloud), (CloudFormat::NuscenesBin, c));

    std::fs::write(&path, [0u8; 45]).unwrap();
    match read_nuscenes_bin(&path) {
        Err(DataError::Bytes {
            offset: 40, msg, ..
        }) => assert!(msg.contains("not a multiple of 20"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn read_cloud_picks_the_format_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let c = cloud(3, 0.0);
    write_bin(&dir.path().join("a.bin"), &c).unwrap();
    write_pcd(&dir.path().join("a.pcd"), &c, PcdEncoding::Binary).unwrap();
    assert_eq!(
        read_cloud(&dir.path().join("a.bin")).unwrap().format,
        CloudFormat::KittiBin
    );
    assert_eq!(read_cloud(&dir.path().join("a.pcd")).unwrap().cloud, c);
    let err = read_cloud(Path::new("scan.ply")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "scan.ply: not a point cloud: expected a .bin, .pcd.bin or .pcd file"
    );
}

#[test]
fn a_kitti_raw_drive_uses_its_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let velo = dir.path().join("velodyne_points");
    let data = velo.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Written out of order: the sequence sorts by name.
    for i in [2usize, 0, 1] {
        write_bin(&data.join(format!("{i:010}.bin")), &cloud(i + 1, i as f32)).unwrap();
    }
    std::fs::write(
        velo.join("timestamps.txt"),
        "2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.068000000\n2011-09-26 13:02:26.171000000\n",
    )
    .unwrap();
    for open_at in [&velo, &data] {
        let seq = FrameSequence::open(open_at, 10.0).unwrap();
        assert_eq!(seq.len(), 3);
        assert_eq!(
            seq.time_source(),
            &TimeSource::File(data.join("../timestamps.txt"))
        );
        let frames: Vec<_> = seq.frames().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            frames
                .iter()
                .map(|f| f.data.cloud.len())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!((frames[2].timestamp - 0.206610555).abs() < 1e-6);
        assert!(seq.frame(3).is_none());
    }
}

#[test]
fn a_plain_folder_uses_the_fixed_rate_and_mismatches_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4 {
        write_pcd(
            &dir.path().join(format!("f{i}.pcd")),
            &cloud(2, i as f32),
            PcdEncoding::Ascii,
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
    let seq = FrameSequence::open(dir.path(), 20.0).unwrap();
    assert_eq!(seq.time_source(), &TimeSource::FixedRate(20.0));
    assert_eq!(seq.timestamps(), [0.0, 0.05, 0.1, 0.15]);
    assert_eq!(seq.frame(3).unwrap().unwrap().data.cloud, cloud(2, 3.0));

    std::fs::write(dir.path().join("timestamps.txt"), "0.0\n0.1\n").unwrap();
    let err = FrameSequence::open(dir.path(), 20.0).unwrap_err();
    assert!(
        err.to_string().contains("2 timestamps for 4 frames"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(
        FrameSequence::open(empty.path(), 10.0)
            .unwrap_err()
            .to_string()
            .contains("no .bin, .pcd.bin or .pcd file")
    );
}
