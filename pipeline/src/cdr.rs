//! A minimal zero-copy reader of OMG CDR (XCDR1), the serialisation ROS 2 uses on the wire
//! and in bags: enough to walk a message whose layout the caller knows.
//!
//! Invariants: a payload starts with the 4-byte encapsulation header `00 kk oo oo`, where
//! `kk` is 0 (big endian) or 1 (little endian); every primitive of size n is aligned to n
//! bytes (8 at most) counted from the end of that header, not from the buffer start; strings
//! are a u32 length that counts a trailing NUL, then the bytes; sequences are a u32 count,
//! then the elements. Slices and strings borrow from the payload. Errors carry the byte
//! offset in the payload (header included) where reading failed.

/// Length of the encapsulation header before the CDR body.
const ENCAPSULATION_LEN: usize = 4;
/// Encapsulation kinds of plain CDR, big and little endian.
const CDR_BE: u8 = 0x00;
const CDR_LE: u8 = 0x01;
/// The encapsulation kind byte of little-endian CDR, for writers.
pub(crate) const CDR_LE_KIND: u8 = CDR_LE;

/// Why a payload could not be read, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct CdrError {
    /// Byte offset in the payload, encapsulation header included.
    pub offset: usize,
    /// What was wrong.
    pub msg: String,
}

pub(crate) type CdrResult<T> = std::result::Result<T, CdrError>;

/// A cursor over one CDR payload.
pub(crate) struct CdrReader<'a> {
    body: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> CdrReader<'a> {
    /// Reads the encapsulation header and positions the cursor on the body.
    pub(crate) fn new(payload: &'a [u8]) -> CdrResult<Self> {
        let Some(header) = payload.get(..ENCAPSULATION_LEN) else {
            return Err(CdrError {
                offset: 0,
                msg: format!(
                    "payload of {} bytes is shorter than the 4-byte CDR encapsulation header",
                    payload.len()
                ),
            });
        };
        let big_endian = match (header[0], header[1]) {
            (0, CDR_BE) => true,
            (0, CDR_LE) => false,
            (a, b) => {
                return Err(CdrError {
                    offset: 0,
                    msg: format!(
                        "encapsulation kind {a:02x} {b:02x} is not plain CDR (00 00 or 00 01)"
                    ),
                });
            }
        };
        Ok(Self {
            body: &payload[ENCAPSULATION_LEN..],
            pos: 0,
            big_endian,
        })
    }

    /// Offset of the cursor in the payload, encapsulation header included.
    pub(crate) fn offset(&self) -> usize {
        self.pos + ENCAPSULATION_LEN
    }

    fn error(&self, msg: String) -> CdrError {
        CdrError {
            offset: self.offset(),
            msg,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> CdrResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.body.len());
        let Some(end) = end else {
            return Err(self.error(format!(
                "{what}: needs {n} bytes but only {} remain",
                self.body.len() - self.pos
            )));
        };
        let bytes = &self.body[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn align(&mut self, n: usize, what: &str) -> CdrResult<()> {
        let pad = (n - self.pos % n) % n;
        self.take(pad, what).map(|_| ())
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> CdrResult<[u8; N]> {
        self.align(N, what)?;
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> CdrResult<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// A CDR boolean: one byte that must be 0 or 1.
    pub(crate) fn bool(&mut self, what: &str) -> CdrResult<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(CdrError {
                offset: self.offset() - 1,
                msg: format!("{what}: boolean byte is {v}, not 0 or 1"),
            }),
        }
    }

    pub(crate) fn u32(&mut self, what: &str) -> CdrResult<u32> {
        let b = self.fixed::<4>(what)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(crate) fn i32(&mut self, what: &str) -> CdrResult<i32> {
        Ok(self.u32(what)? as i32)
    }

    /// A length-prefixed sequence of bytes (`uint8[]`), borrowed.
    pub(crate) fn byte_seq(&mut self, what: &str) -> CdrResult<&'a [u8]> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    /// A CDR string: u32 length counting the trailing NUL, the bytes, the NUL.
    pub(crate) fn string(&mut self, what: &str) -> CdrResult<&'a str> {
        let start = self.offset();
        let bytes = self.byte_seq(what)?;
        let text = match bytes.split_last() {
            Some((0, text)) => text,
            // Some writers omit the terminator of the empty string.
            None => bytes,
            Some(_) => {
                return Err(CdrError {
                    offset: start,
                    msg: format!("{what}: string is not NUL-terminated"),
                });
            }
        };
        std::str::from_utf8(text).map_err(|e| CdrError {
            offset: start + 4 + e.valid_up_to(),
            msg: format!("{what}: string is not UTF-8"),
        })
    }

    /// Bytes left after the cursor.
    pub(crate) fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Little-endian payload: u8 7, then (aligned to 4 from the body start) u32 0x01020304,
    /// then the string "ab".
    const LE: [u8; 20] = [
        0, 1, 0, 0, // encapsulation
        7, 0xAA, 0xAA, 0xAA, // u8 + padding
        4, 3, 2, 1, // u32
        3, 0, 0, 0, b'a', b'b', 0, // string "ab"
        1, // bool true
    ];

    #[test]
    fn alignment_is_counted_from_the_body() {
        let mut r = CdrReader::new(&LE).unwrap();
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u32("b").unwrap(), 0x0102_0304);
        assert_eq!(r.string("c").unwrap(), "ab");
        assert!(r.bool("d").unwrap());
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn big_endian_payloads_swap_bytes() {
        let be = [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFE];
        let mut r = CdrReader::new(&be).unwrap();
        assert_eq!(r.i32("v").unwrap(), -2);
    }

    #[test]
    fn errors_name_the_payload_offset() {
        let mut r = CdrReader::new(&LE[..14]).unwrap();
        r.u8("a").unwrap();
        r.u32("b").unwrap();
        let e = r.string("frame_id").unwrap_err();
        assert_eq!(e.offset, 12);
        assert_eq!(e.msg, "frame_id: needs 4 bytes but only 2 remain");

        let mut bad_bool = LE;
        bad_bool[19] = 2;
        let mut r = CdrReader::new(&bad_bool).unwrap();
        r.u8("").unwrap();
        r.u32("").unwrap();
        r.string("").unwrap();
        assert_eq!(r.bool("is_dense").unwrap_err().offset, 19);

        let e = CdrReader::new(&[0, 7, 0, 0]).err().unwrap();
        assert_eq!(e.offset, 0);
        assert!(e.msg.contains("not plain CDR"), "{}", e.msg);
    }
}
