//! A minimal reader of the `.npy` files the numpy reference writes: little-endian
//! `<f4` or `<i4`, C order, format version 1 or 2. Test support only; panics with the
//! file name on anything else.

use std::path::Path;

/// An array's shape and its elements in C order.
pub struct Npy<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// Element types the fixtures use.
pub trait Element: Sized {
    const DESCR: &'static str;
    fn from_le(bytes: [u8; 4]) -> Self;
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    fn from_le(bytes: [u8; 4]) -> Self {
        f32::from_le_bytes(bytes)
    }
}

impl Element for i32 {
    const DESCR: &'static str = "<i4";
    fn from_le(bytes: [u8; 4]) -> Self {
        i32::from_le_bytes(bytes)
    }
}

pub fn read<T: Element>(path: &Path) -> Npy<T> {
    let name = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(bytes.starts_with(b"\x93NUMPY"), "{name}: not an .npy file");
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => panic!("{name}: unsupported .npy version {v}"),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len])
        .unwrap_or_else(|e| panic!("{name}: header: {e}"));
    assert!(
        header.contains(&format!("'descr': '{}'", T::DESCR)),
        "{name}: expected dtype {} in {header}",
        T::DESCR
    );
    assert!(
        header.contains("'fortran_order': False"),
        "{name}: not C order"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{name}: no shape in {header}"));
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|e| panic!("{name}: shape {s}: {e}"))
        })
        .collect();
    let body = &bytes[header_start + header_len..];
    let count: usize = shape.iter().product();
    assert_eq!(
        body.len(),
        count * 4,
        "{name}: {count} elements of 4 bytes expected"
    );
    let data = body
        .chunks_exact(4)
        .map(|c| T::from_le([c[0], c[1], c[2], c[3]]))
        .collect();
    Npy { shape, data }
}
