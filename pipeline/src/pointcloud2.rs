//! `sensor_msgs/msg/PointCloud2` in CDR: the message layout, and x/y/z/intensity pulled out
//! of its point records by the offsets, datatypes and endianness the message declares.
//!
//! Invariants: every declared field used must lie inside `point_step`; rows are `row_step`
//! apart and must fit in `data`; points with a non-finite x, y, z or intensity are skipped
//! and counted, never passed on. Intensity is the first field named `intensity`, `i`,
//! `reflectivity` or `reflectance`, taken as declared (no rescaling); 0 when none exists.

use crate::cdr::{CDR_LE_KIND, CdrError, CdrReader, CdrResult};
use lidarq_data::PointCloud;

/// The ROS 2 type name of the message this module decodes.
pub const POINTCLOUD2_TYPE: &str = "sensor_msgs/msg/PointCloud2";

/// Field names accepted as intensity, in order of preference.
const INTENSITY_NAMES: [&str; 4] = ["intensity", "i", "reflectivity", "reflectance"];

/// `sensor_msgs/msg/PointField` datatype codes.
mod datatype {
    pub const INT8: u8 = 1;
    pub const UINT8: u8 = 2;
    pub const INT16: u8 = 3;
    pub const UINT16: u8 = 4;
    pub const INT32: u8 = 5;
    pub const UINT32: u8 = 6;
    pub const FLOAT32: u8 = 7;
    pub const FLOAT64: u8 = 8;
}

/// One `PointField` as declared in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct PointField<'a> {
    /// Field name (`x`, `intensity`, `ring`, ...).
    pub name: &'a str,
    /// Byte offset inside a point record.
    pub offset: u32,
    /// `PointField` datatype code (1 = int8 ... 8 = float64).
    pub datatype: u8,
    /// Number of elements (1 for scalars).
    pub count: u32,
}

/// A PointCloud2 message, borrowing its strings and point bytes from the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct PointCloud2<'a> {
    /// `header.stamp` in ns since the epoch.
    pub stamp_ns: i64,
    /// `header.frame_id`.
    pub frame_id: &'a str,
    /// Number of rows (1 for unorganised clouds).
    pub height: u32,
    /// Points per row.
    pub width: u32,
    /// Declared point fields.
    pub fields: Vec<PointField<'a>>,
    /// True when the point records are big endian.
    pub is_bigendian: bool,
    /// Bytes per point record.
    pub point_step: u32,
    /// Bytes per row.
    pub row_step: u32,
    /// The point records.
    pub data: &'a [u8],
    /// True when the publisher promises no invalid points.
    pub is_dense: bool,
}

/// Points of one message, with the count of skipped non-finite points.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCloud {
    /// `header.stamp` in ns since the epoch.
    pub stamp_ns: i64,
    /// The finite points.
    pub cloud: PointCloud,
    /// Points dropped because x, y, z or intensity was NaN or infinite.
    pub non_finite: usize,
}

impl<'a> PointCloud2<'a> {
    /// Parses the CDR payload of a PointCloud2 message (encapsulation header included).
    pub fn parse(payload: &'a [u8]) -> CdrResult<Self> {
        let mut r = CdrReader::new(payload)?;
        let sec = r.i32("header.stamp.sec")?;
        let nanosec = r.u32("header.stamp.nanosec")?;
        let frame_id = r.string("header.frame_id")?;
        let height = r.u32("height")?;
        let width = r.u32("width")?;
        let n_fields = r.u32("fields")?;
        // Each field takes at least 13 bytes; a larger count cannot be honest.
        if n_fields as usize > r.remaining() / 13 {
            return Err(CdrError {
                offset: r.offset() - 4,
                msg: format!(
                    "fields: count {n_fields} cannot fit in the {} bytes left",
                    r.remaining()
                ),
            });
        }
        let mut fields = Vec::with_capacity(n_fields as usize);
        for _ in 0..n_fields {
            fields.push(PointField {
                name: r.string("fields[].name")?,
                offset: r.u32("fields[].offset")?,
                datatype: r.u8("fields[].datatype")?,
                count: r.u32("fields[].count")?,
            });
        }
        let is_bigendian = r.bool("is_bigendian")?;
        let point_step = r.u32("point_step")?;
        let row_step = r.u32("row_step")?;
        let data_offset = r.offset();
        let data = r.byte_seq("data")?;
        let is_dense = r.bool("is_dense")?;
        let msg = Self {
            stamp_ns: i64::from(sec) * 1_000_000_000 + i64::from(nanosec),
            frame_id,
            height,
            width,
            fields,
            is_bigendian,
            point_step,
            row_step,
            data,
            is_dense,
        };
        msg.check_layout().map_err(|msg| CdrError {
            offset: data_offset,
            msg,
        })?;
        Ok(msg)
    }

    fn field(&self, names: &[&str]) -> Option<&PointField<'a>> {
        names
            .iter()
            .find_map(|n| self.fields.iter().find(|f| f.name == *n))
    }

    fn check_layout(&self) -> Result<(), String> {
        let (step, row) = (self.point_step as u64, self.row_step as u64);
        if u64::from(self.width) * step > row {
            return Err(format!(
                "width {} × point_step {step} exceeds row_step {row}",
                self.width
            ));
        }
        let needed = u64::from(self.height) * row;
        if needed > self.data.len() as u64 {
            return Err(format!(
                "height {} × row_step {row} = {needed} bytes but data holds {}",
                self.height,
                self.data.len()
            ));
        }
        for f in &self.fields {
            let size = datatype_size(f.datatype)
                .ok_or_else(|| format!("field {}: unknown datatype {}", f.name, f.datatype))?;
            let end = u64::from(f.offset) + size as u64 * u64::from(f.count.max(1));
            if end > step {
                return Err(format!(
                    "field {} ends at byte {end} of a {step}-byte point",
                    f.name
                ));
            }
        }
        Ok(())
    }

    /// Extracts x, y, z and intensity of every finite point, in row-major order.
    pub fn decode(&self) -> Result<DecodedCloud, String> {
        let axis = |name: &str| {
            self.field(&[name])
                .map(|f| Reader::new(f, self.is_bigendian))
                .ok_or_else(|| {
                    let names: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
                    format!("no field {name:?} (fields: {names:?})")
                })
        };
        let (x, y, z) = (axis("x")?, axis("y")?, axis("z")?);
        let intensity = self
            .field(&INTENSITY_NAMES)
            .map(|f| Reader::new(f, self.is_bigendian));
        let n = self.width as usize * self.height as usize;
        let mut cloud = PointCloud::with_capacity(n);
        let mut non_finite = 0;
        let step = self.point_step as usize;
        for row in 0..self.height as usize {
            let row_bytes = &self.data[row * self.row_step as usize..];
            for point in row_bytes.chunks_exact(step).take(self.width as usize) {
                let p = [
                    x.read(point),
                    y.read(point),
                    z.read(point),
                    intensity.as_ref().map_or(0.0, |r| r.read(point)),
                ];
                if p.iter().all(|v| v.is_finite()) {
                    cloud.push(p[0], p[1], p[2], p[3]);
                } else {
                    non_finite += 1;
                }
            }
        }
        Ok(DecodedCloud {
            stamp_ns: self.stamp_ns,
            cloud,
            non_finite,
        })
    }
}

/// Bytes per point written by [`encode_xyzi`]: float32 x, y, z, intensity.
const XYZI_STEP: u32 = 16;

/// Serialises a cloud as a little-endian CDR PointCloud2 (encapsulation header included):
/// one row of float32 `x`, `y`, `z`, `intensity` records, `is_dense` true. What lidarq writes
/// when it produces PointCloud2 messages; [`PointCloud2::parse`] reads it back exactly.
pub fn encode_xyzi(stamp_ns: i64, frame_id: &str, cloud: &PointCloud) -> Vec<u8> {
    let mut out = vec![0, CDR_LE_KIND, 0, 0];
    let n = cloud.len();
    let u32_at = |out: &mut Vec<u8>, v: u32| {
        out.resize(4 + (out.len() - 4).next_multiple_of(4), 0);
        out.extend(v.to_le_bytes());
    };
    let string = |out: &mut Vec<u8>, s: &str| {
        u32_at(out, s.len() as u32 + 1);
        out.extend(s.as_bytes());
        out.push(0);
    };
    let (sec, nsec) = (
        stamp_ns.div_euclid(1_000_000_000),
        stamp_ns.rem_euclid(1_000_000_000),
    );
    u32_at(&mut out, sec as i32 as u32);
    u32_at(&mut out, nsec as u32);
    string(&mut out, frame_id);
    u32_at(&mut out, 1);
    u32_at(&mut out, n as u32);
    u32_at(&mut out, 4);
    for (k, name) in ["x", "y", "z", "intensity"].into_iter().enumerate() {
        string(&mut out, name);
        u32_at(&mut out, 4 * k as u32);
        out.push(datatype::FLOAT32);
        u32_at(&mut out, 1);
    }
    out.push(0);
    u32_at(&mut out, XYZI_STEP);
    u32_at(&mut out, XYZI_STEP * n as u32);
    u32_at(&mut out, XYZI_STEP * n as u32);
    out.reserve(XYZI_STEP as usize * n + 1);
    for i in 0..n {
        for v in [cloud.x[i], cloud.y[i], cloud.z[i], cloud.intensity[i]] {
            out.extend(v.to_le_bytes());
        }
    }
    out.push(1);
    out
}

/// Byte size of a `PointField` datatype, `None` for an unknown code.
fn datatype_size(code: u8) -> Option<usize> {
    use datatype::*;
    match code {
        INT8 | UINT8 => Some(1),
        INT16 | UINT16 => Some(2),
        INT32 | UINT32 | FLOAT32 => Some(4),
        FLOAT64 => Some(8),
        _ => None,
    }
}

/// Reads one scalar field out of point records; the layout was checked at parse time.
struct Reader {
    offset: usize,
    datatype: u8,
    big_endian: bool,
}

impl Reader {
    fn new(field: &PointField<'_>, big_endian: bool) -> Self {
        Self {
            offset: field.offset as usize,
            datatype: field.datatype,
            big_endian,
        }
    }

    fn bytes<const N: usize>(&self, point: &[u8]) -> [u8; N] {
        let mut b = [0; N];
        b.copy_from_slice(&point[self.offset..self.offset + N]);
        if self.big_endian {
            b.reverse();
        }
        b
    }

    /// The value as f32; float64 and 32-bit integers round to nearest.
    fn read(&self, point: &[u8]) -> f32 {
        use datatype::*;
        match self.datatype {
            INT8 => self.bytes::<1>(point)[0] as i8 as f32,
            UINT8 => self.bytes::<1>(point)[0] as f32,
            INT16 => i16::from_le_bytes(self.bytes(point)) as f32,
            UINT16 => u16::from_le_bytes(self.bytes(point)) as f32,
            INT32 => i32::from_le_bytes(self.bytes(point)) as f32,
            UINT32 => u32::from_le_bytes(self.bytes(point)) as f32,
            FLOAT32 => f32::from_le_bytes(self.bytes(point)),
            _ => f64::from_le_bytes(self.bytes(point)) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CDR writer for tests: aligns relative to the body like the reader.
    struct Writer {
        out: Vec<u8>,
        be: bool,
    }

    impl Writer {
        fn new(be: bool) -> Self {
            Self {
                out: vec![0, if be { 0 } else { 1 }, 0, 0],
                be,
            }
        }
        fn u32(&mut self, v: u32) {
            while !(self.out.len() - 4).is_multiple_of(4) {
                self.out.push(0);
            }
            let b = if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.out.extend(b);
        }
        fn bytes(&mut self, b: &[u8]) {
            self.u32(b.len() as u32);
            self.out.extend(b);
        }
        fn string(&mut self, s: &str) {
            self.bytes(&[s.as_bytes(), &[0]].concat());
        }
    }

    /// Serialises a PointCloud2 of two points, (1.5, -2, 3.25, 9) and (NaN, 0, 0, 0), with
    /// the given endianness for the CDR body and for the point records.
    fn message(cdr_be: bool, points_be: bool, fields: &[(&str, u32, u8)], step: u32) -> Vec<u8> {
        let mut w = Writer::new(cdr_be);
        w.u32(5); // sec
        w.u32(7); // nanosec
        w.string("lidar");
        w.u32(1); // height
        w.u32(2); // width
        w.u32(fields.len() as u32);
        for &(name, offset, dt) in fields {
            w.string(name);
            w.u32(offset);
            w.out.push(dt);
            w.u32(1);
        }
        w.out.push(points_be as u8);
        w.u32(step);
        w.u32(2 * step);
        // 8 bytes of slack past the last row, so that tests can declare out-of-record fields.
        let mut data = vec![0u8; 2 * step as usize + 8];
        for (p, vals) in [[1.5f64, -2.0, 3.25, 9.0], [f64::NAN, 0.0, 0.0, 0.0]]
            .iter()
            .enumerate()
        {
            for (&(_, offset, dt), &v) in fields.iter().zip(vals) {
                let mut bytes = match dt {
                    datatype::FLOAT64 => v.to_le_bytes().to_vec(),
                    datatype::UINT16 => (v as u16).to_le_bytes().to_vec(),
                    _ => (v as f32).to_le_bytes().to_vec(),
                };
                if points_be {
                    bytes.reverse();
                }
                let at = p * step as usize + offset as usize;
                data[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        w.bytes(&data);
        w.out.push(1);
        w.out
    }

    fn decode(bytes: &[u8]) -> DecodedCloud {
        PointCloud2::parse(bytes).unwrap().decode().unwrap()
    }

    #[test]
    fn big_endian_cdr_and_points_with_float64_and_uint16_fields() {
        let fields = [
            ("x", 0, datatype::FLOAT64),
            ("y", 8, datatype::FLOAT64),
            ("z", 16, datatype::FLOAT32),
            ("reflectivity", 20, datatype::UINT16),
        ];
        for (cdr_be, points_be) in [(false, false), (true, true), (true, false), (false, true)] {
            let d = decode(&message(cdr_be, points_be, &fields, 24));
            assert_eq!(d.stamp_ns, 5_000_000_007);
            assert_eq!(
                (d.cloud.x, d.cloud.y, d.cloud.z, d.cloud.intensity),
                (vec![1.5], vec![-2.0], vec![3.25], vec![9.0])
            );
            assert_eq!(d.non_finite, 1);
        }
    }

    #[test]
    fn encoded_clouds_decode_to_the_same_bits() {
        let mut cloud = PointCloud::default();
        cloud.push(1.0, -0.0, f32::MIN_POSITIVE, 7.5);
        cloud.push(-3.25, 1e-8, 100.0, 0.0);
        let bytes = encode_xyzi(-1_500_000_000, "velodyne", &cloud);
        let msg = PointCloud2::parse(&bytes).unwrap();
        assert_eq!((msg.stamp_ns, msg.frame_id), (-1_500_000_000, "velodyne"));
        let d = msg.decode().unwrap();
        let bits = |c: &PointCloud| {
            [&c.x, &c.y, &c.z, &c.intensity]
                .map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
        };
        assert_eq!(bits(&d.cloud), bits(&cloud));
    }

    #[test]
    fn missing_intensity_is_zero() {
        let fields = [
            ("x", 0, datatype::FLOAT32),
            ("y", 4, datatype::FLOAT32),
            ("z", 8, datatype::FLOAT32),
        ];
        let d = decode(&message(false, false, &fields, 16));
        assert_eq!(d.cloud.intensity, vec![0.0]);
    }

    #[test]
    fn inconsistent_layouts_are_errors_with_offsets() {
        let fields = [
            ("x", 0, datatype::FLOAT32),
            ("y", 4, datatype::FLOAT32),
            ("z", 14, datatype::FLOAT32),
        ];
        let bytes = message(false, false, &fields, 16);
        let e = PointCloud2::parse(&bytes).unwrap_err();
        assert_eq!(e.msg, "field z ends at byte 18 of a 16-byte point");
        let full = message(false, false, &fields[..2], 16);
        let e = PointCloud2::parse(&full).unwrap().decode().unwrap_err();
        assert!(e.starts_with("no field \"z\""), "{e}");
        let e = PointCloud2::parse(&full[..full.len() - 10]).unwrap_err();
        assert!(e.msg.starts_with("data: needs 40 bytes"), "{}", e.msg);
    }
}
