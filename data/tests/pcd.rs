//! PCD reading (PCL's quirks included), writing and error cases.

use lidarq_data::kitti::read_bin;
use lidarq_data::pcd::{PcdEncoding, encode_pcd, parse_pcd, read_pcd, write_pcd};
use lidarq_data::{DataError, ExtraField, PointCloud};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn header(
    fields: &str,
    size: &str,
    kind: &str,
    count: &str,
    width: usize,
    height: usize,
    data: &str,
) -> String {
    format!(
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {fields}\nSIZE {size}\nTYPE {kind}\nCOUNT {count}\n\
         WIDTH {width}\nHEIGHT {height}\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {}\nDATA {data}\n",
        width * height
    )
}

/// LZF with literal runs only: a valid stream any LZF decoder must accept.
fn lzf_literals(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for run in data.chunks(32) {
        out.push((run.len() - 1) as u8);
        out.extend_from_slice(run);
    }
    out
}

fn sample_cloud() -> PointCloud {
    let mut c = PointCloud::with_capacity(5);
    for i in 0..5 {
        let f = i as f32;
        c.push(10.0 + f * 0.1, -3.0 + f / 3.0, -1.5 + f * 1e-3, f * 0.25);
    }
    c.extra.push(ExtraField {
        name: "ring".into(),
        values: vec![0.0, 1.0, 31.0, 2.0, 7.0],
    });
    c.extra.push(ExtraField {
        name: "time".into(),
        values: vec![0.0, 1e-5, 2.5e-5, 1.0 / 3.0, -0.1],
    });
    c
}

/// A file as PCL writes it (`pcl::io::savePCDFileBinary`, header and the zero bytes PCL
/// leaves after the data): the first 2000 points of KITTI frame 000001.
#[test]
fn a_pcl_binary_file_reads_exactly() {
    let read = read_pcd(&fixture("pcd/kitti_000001_pcl_binary_2000.pcd")).unwrap();
    let kitti = read_bin(&fixture("kitti/training/velodyne/000001.bin")).unwrap();
    assert_eq!(read.cloud, kitti);
    assert_eq!(
        (read.dropped_non_finite, read.width, read.height),
        (0, 2000, 1)
    );
    assert_eq!(read.encoding, PcdEncoding::Binary);
    let names: Vec<&str> = read.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["x", "y", "z", "intensity"]);
}

#[test]
fn every_encoding_round_trips_with_extra_fields() {
    let cloud = sample_cloud();
    let dir = tempfile::tempdir().unwrap();
    for encoding in [
        PcdEncoding::Ascii,
        PcdEncoding::Binary,
        PcdEncoding::BinaryCompressed,
    ] {
        let path = dir.path().join(format!("{encoding:?}.pcd"));
        write_pcd(&path, &cloud, encoding).unwrap();
        let read = read_pcd(&path).unwrap();
        assert_eq!(read.cloud, cloud, "{encoding:?}");
        assert_eq!((read.encoding, read.dropped_non_finite), (encoding, 0));
    }
    let empty = PointCloud::default();
    for encoding in [
        PcdEncoding::Ascii,
        PcdEncoding::Binary,
        PcdEncoding::BinaryCompressed,
    ] {
        let bytes = encode_pcd(&empty, encoding, Path::new("e.pcd")).unwrap();
        assert_eq!(
            parse_pcd(&bytes, Path::new("e.pcd")).unwrap().cloud,
            empty,
            "{encoding:?}"
        );
    }
}

#[test]
fn a_large_compressed_cloud_round_trips() {
    let mut cloud = read_bin(&fixture("kitti/training/velodyne/000004.bin")).unwrap();
    cloud.extra.push(ExtraField {
        name: "ring".into(),
        values: (0..cloud.len()).map(|i| (i % 64) as f64).collect(),
    });
    let bytes = encode_pcd(&cloud, PcdEncoding::BinaryCompressed, Path::new("c.pcd")).unwrap();
    assert!(
        bytes.len() < cloud.len() * 24,
        "LZF should compress the ring column"
    );
    assert_eq!(parse_pcd(&bytes, Path::new("c.pcd")).unwrap().cloud, cloud);
}

/// PCL's ascii writer leaves `_` padding out of the rows while its reader expects it: both
/// forms read. PCL writes invalid points as `nan`: they are dropped and counted.
#[test]
fn pcl_ascii_with_padding_and_nan_points() {
    let h = header(
        "x y z _ intensity",
        "4 4 4 1 4",
        "F F F U F",
        "1 1 1 4 1",
        3,
        1,
        "ascii",
    );
    let without = format!("{h}1 2 3 0.5\nnan nan nan 0\n\n-1.5 2e1 0 7\n");
    let read = parse_pcd(without.as_bytes(), Path::new("a.pcd")).unwrap();
    assert_eq!(read.cloud.x, [1.0, -1.5]);
    assert_eq!(read.cloud.y, [2.0, 20.0]);
    assert_eq!(read.cloud.intensity, [0.5, 7.0]);
    assert_eq!(read.dropped_non_finite, 1);
    assert!(read.cloud.extra.is_empty());
    let with = format!("{h}1 2 3 0 0 0 0 0.5\nnan nan nan 0 0 0 0 0\n-1.5 2e1 0 0 0 0 0 7\n");
    assert_eq!(
        parse_pcd(with.as_bytes(), Path::new("a.pcd")).unwrap(),
        read
    );
}

/// PCL's binary_compressed leaves `_` padding out of the compressed columns; an organized
/// cloud (HEIGHT 2) is flattened row by row; intensity may be called `i`; integer fields
/// become extras.
#[test]
fn pcl_binary_compressed_without_padding_organized() {
    let h = header(
        "x y z _ i ring",
        "4 4 4 1 4 2",
        "F F F U F U",
        "1 1 1 4 1 1",
        2,
        2,
        "binary_compressed",
    );
    let xs = [1.0f32, 2.0, f32::INFINITY, 4.0];
    let mut columns = Vec::new();
    for col in [xs, [0.5; 4], [-1.0; 4], [10.0, 20.0, 30.0, 40.0]] {
        columns.extend(col.iter().flat_map(|v| v.to_le_bytes()));
    }
    columns.extend([3u16, 4, 5, 65535].iter().flat_map(|v| v.to_le_bytes()));
    let stream = lzf_literals(&columns);
    let mut file = h.into_bytes();
    file.extend((stream.len() as u32).to_le_bytes());
    file.extend((columns.len() as u32).to_le_bytes());
    file.extend(&stream);
    let read = parse_pcd(&file, Path::new("c.pcd")).unwrap();
    assert_eq!(
        (read.width, read.height, read.dropped_non_finite),
        (2, 2, 1)
    );
    assert_eq!(read.cloud.x, [1.0, 2.0, 4.0]);
    assert_eq!(read.cloud.intensity, [10.0, 20.0, 40.0]);
    assert_eq!(read.cloud.extra("ring"), Some(&[3.0, 4.0, 65535.0][..]));
}

/// Binary records keep their padding bytes; x may be a double; Ouster-style clouds carry
/// both `intensity` and `reflectivity`: intensity wins and reflectivity stays an extra.
#[test]
fn binary_with_padding_doubles_and_two_intensity_candidates() {
    let h = header(
        "x y z _ reflectivity intensity",
        "8 4 4 1 2 4",
        "F F F U U F",
        "1 1 1 2 1 1",
        2,
        1,
        "binary",
    );
    let mut file = h.into_bytes();
    for (x, refl, inten) in [(1.25f64, 7u16, 0.75f32), (-2.5, 300, 0.0)] {
        file.extend(x.to_le_bytes());
        file.extend(2.0f32.to_le_bytes());
        file.extend(3.0f32.to_le_bytes());
        file.extend([0xAA, 0xBB]);
        file.extend(refl.to_le_bytes());
        file.extend(inten.to_le_bytes());
    }
    let read = parse_pcd(&file, Path::new("b.pcd")).unwrap();
    assert_eq!(read.cloud.x, [1.25, -2.5]);
    assert_eq!(read.cloud.z, [3.0, 3.0]);
    assert_eq!(read.cloud.intensity, [0.75, 0.0]);
    assert_eq!(read.cloud.extra("reflectivity"), Some(&[7.0, 300.0][..]));
}

fn err(bytes: &[u8]) -> DataError {
    parse_pcd(bytes, Path::new("bad.pcd")).unwrap_err()
}

#[test]
fn bad_headers_name_the_line() {
    let h = header("x y z", "4 4", "F F F", "1 1 1", 1, 1, "binary");
    assert_eq!(
        err(h.as_bytes()).to_string(),
        "bad.pcd:4: bad PCD header: SIZE has 2 values but FIELDS has 3"
    );
    let h = header("x y z", "4 4 4", "F F F", "1 1 1", 1, 1, "zip");
    assert!(matches!(
        err(h.as_bytes()),
        DataError::Line { line: 11, .. }
    ));
    let h =
        header("x y z", "4 4 4", "F F F", "1 1 1", 1, 1, "binary").replace("WIDTH 1", "WIDTH one");
    assert_eq!(
        err(h.as_bytes()).to_string(),
        "bad.pcd:7: WIDTH: cannot parse \"one\" as a number"
    );
    let no_data = "VERSION 0.7\nFIELDS x y z\n";
    assert!(
        err(no_data.as_bytes())
            .to_string()
            .contains("ends before a DATA line")
    );
    let h = header("x y", "4 4", "F F", "1 1", 1, 1, "binary");
    assert_eq!(
        err(h.as_bytes()).to_string(),
        "bad.pcd:3: the PCD has no z field (x, y and z are required)"
    );
    let h = header("x y z", "4 4 4", "F F F", "3 1 1", 1, 1, "binary");
    assert_eq!(
        err(h.as_bytes()).to_string(),
        "bad.pcd:3: field x has COUNT 3, expected 1"
    );
    assert!(matches!(
        err(&[0xff, 0xfe, 0, 1]),
        DataError::Line { line: 1, .. }
    ));
}

#[test]
fn unsupported_field_types_are_named() {
    let h = header("x y z", "4 4 2", "F F F", "1 1 1", 1, 1, "binary");
    assert_eq!(
        err(h.as_bytes()).to_string(),
        "bad.pcd:5: unsupported PCD field type: field \"z\" has TYPE F with SIZE 2"
    );
    let h = header("x y z", "4 4 4", "F F B", "1 1 1", 1, 1, "binary");
    assert!(matches!(err(h.as_bytes()), DataError::Line { line: 5, .. }));
}

#[test]
fn short_data_sections_are_errors() {
    let mut bin = header("x y z", "4 4 4", "F F F", "1 1 1", 3, 1, "binary").into_bytes();
    bin.extend([0u8; 30]);
    match err(&bin) {
        DataError::Bytes { offset, msg, .. } => {
            assert_eq!(offset as usize, bin.len());
            assert_eq!(
                msg,
                "the data section is 30 bytes, shorter than the 36 the header declares"
            );
        }
        other => panic!("{other:?}"),
    }
    let ascii = header("x y z", "4 4 4", "F F F", "1 1 1", 3, 1, "ascii") + "1 2 3\n4 5 6\n";
    match err(ascii.as_bytes()) {
        DataError::Line { msg, .. } => {
            assert!(msg.contains("has 2 points, shorter than the 3"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    let ascii = header("x y z", "4 4 4", "F F F", "1 1 1", 2, 1, "ascii") + "1 2 3\n4 5\n";
    assert_eq!(
        err(ascii.as_bytes()).to_string(),
        "bad.pcd:13: expected 3 values, found 2"
    );
    let ascii = header("x y z", "4 4 4", "F F F", "1 1 1", 1, 1, "ascii") + "1 2 three\n";
    assert_eq!(
        err(ascii.as_bytes()).to_string(),
        "bad.pcd:12: cannot parse \"three\" as a number"
    );

    let h = header(
        "x y z",
        "4 4 4",
        "F F F",
        "1 1 1",
        2,
        1,
        "binary_compressed",
    )
    .into_bytes();
    let data_at = h.len();
    let mut truncated = h.clone();
    truncated.extend(100u32.to_le_bytes());
    truncated.extend(24u32.to_le_bytes());
    truncated.extend([0u8; 10]);
    assert!(matches!(err(&truncated), DataError::Bytes { .. }));
    let mut wrong_size = h.clone();
    wrong_size.extend(1u32.to_le_bytes());
    wrong_size.extend(20u32.to_le_bytes());
    wrong_size.push(0);
    assert!(
        matches!(err(&wrong_size), DataError::Bytes { offset, .. } if offset as usize == data_at + 4)
    );
    let mut corrupt = h;
    corrupt.extend(3u32.to_le_bytes());
    corrupt.extend(24u32.to_le_bytes());
    corrupt.extend([31u8, 1, 2]);
    assert!(
        matches!(err(&corrupt), DataError::Bytes { offset, .. } if offset as usize == data_at + 8)
    );
}
