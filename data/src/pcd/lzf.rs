//! LZF decompression (the codec of PCD `binary_compressed`), checked at every step so that
//! a corrupt stream is an error with its byte offset instead of a panic.

/// Decompresses `input` into exactly `out_len` bytes. The error is the offset in `input`
/// where the stream went wrong and what was wrong.
pub(crate) fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, (usize, String)> {
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let at = i;
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let len = ctrl + 1;
            let literal = input.get(i..i + len).ok_or_else(|| {
                (
                    at,
                    format!("literal run of {len} bytes passes the end of the data"),
                )
            })?;
            if out.len() + len > out_len {
                return Err((
                    at,
                    format!("decompressed data exceeds the declared {out_len} bytes"),
                ));
            }
            out.extend_from_slice(literal);
            i += len;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input
                    .get(i)
                    .ok_or_else(|| (at, "back reference is cut off".to_string()))?
                    as usize;
                i += 1;
            }
            let low = *input
                .get(i)
                .ok_or_else(|| (at, "back reference is cut off".to_string()))?
                as usize;
            i += 1;
            let distance = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            if distance > out.len() {
                return Err((
                    at,
                    format!("back reference {distance} bytes back, before the start of the output"),
                ));
            }
            if out.len() + len > out_len {
                return Err((
                    at,
                    format!("decompressed data exceeds the declared {out_len} bytes"),
                ));
            }
            let from = out.len() - distance;
            // The source may overlap the bytes being written (a repeated pattern): copy bytewise.
            for k in 0..len {
                out.push(out[from + k]);
            }
        }
    }
    if out.len() != out_len {
        return Err((
            input.len(),
            format!(
                "decompressed to {} bytes, the header declares {out_len}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_overlapping_back_references() {
        // "abc" as a literal, then a back reference of length 5 at distance 3: "abcabcab".
        let stream = [2, b'a', b'b', b'c', (3 << 5), 2];
        assert_eq!(decompress(&stream, 8).unwrap(), b"abcabcab");
        assert_eq!(decompress(&stream, 7).unwrap_err().0, 4);
        assert_eq!(decompress(&[2, b'a'], 3).unwrap_err().0, 0);
        assert_eq!(decompress(&[0, b'a', 1 << 5, 5], 4).unwrap_err().0, 2);
    }
}
