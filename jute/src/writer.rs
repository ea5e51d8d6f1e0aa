//! Encoders for jute primitives, appending big-endian bytes to a `BytesMut`.

use bytes::{BufMut, BytesMut};

use crate::record::Record;

/// Appends a 32-bit `int`.
pub fn write_i32(buf: &mut BytesMut, v: i32) {
    buf.put_i32(v);
}

/// Appends a 64-bit `long`.
pub fn write_i64(buf: &mut BytesMut, v: i64) {
    buf.put_i64(v);
}

/// Appends a one-byte `boolean` (1 or 0).
pub fn write_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Appends an i32 length prefix, clamping (never reached in practice) to i32::MAX.
fn write_len(buf: &mut BytesMut, len: usize) {
    write_i32(buf, i32::try_from(len).unwrap_or(i32::MAX));
}

/// Appends a jute `buffer`: i32 length then the bytes (never null).
/// Writes a nullable jute `buffer` (`None` as length -1).
pub fn write_opt_buffer(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        Some(v) => write_buffer(buf, v),
        None => write_i32(buf, -1),
    }
}

/// Writes a jute `buffer`: i32 length then the bytes.
pub fn write_buffer(buf: &mut BytesMut, v: &[u8]) {
    write_len(buf, v.len());
    buf.put_slice(v);
}

/// Appends a jute `ustring`: i32 byte length then UTF-8 (never null).
pub fn write_string(buf: &mut BytesMut, v: &str) {
    write_buffer(buf, v.as_bytes());
}

/// Appends a `ustring`, writing the empty string as null (-1), the way the
/// Java client writes an absent optional string.
pub fn write_nullable_string(buf: &mut BytesMut, v: &str) {
    if v.is_empty() {
        write_i32(buf, -1);
    } else {
        write_string(buf, v);
    }
}

/// Appends a jute `vector` of records: i32 count then each element.
pub fn write_vec<T: Record>(buf: &mut BytesMut, v: &[T]) {
    write_len(buf, v.len());
    for item in v {
        item.write(buf);
    }
}

/// Appends a jute `vector<ustring>`.
pub fn write_string_vec(buf: &mut BytesMut, v: &[String]) {
    write_len(buf, v.len());
    for s in v {
        write_string(buf, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::Reader;

    #[test]
    fn primitives_are_big_endian() {
        let mut buf = BytesMut::new();
        write_i32(&mut buf, 1);
        write_i64(&mut buf, -2);
        write_bool(&mut buf, true);
        write_bool(&mut buf, false);
        assert_eq!(&buf[..], &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1, 0]);
    }

    #[test]
    fn strings_round_trip() {
        let mut buf = BytesMut::new();
        write_string(&mut buf, "héllo");
        write_buffer(&mut buf, b"");
        write_nullable_string(&mut buf, "");
        write_nullable_string(&mut buf, "x");
        write_string_vec(&mut buf, &["a".to_owned(), "bc".to_owned()]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_string().as_deref(), Ok("héllo"));
        assert_eq!(r.read_buffer(), Ok(vec![]));
        assert_eq!(r.read_string().as_deref(), Ok(""));
        assert_eq!(r.read_string().as_deref(), Ok("x"));
        assert_eq!(r.read_string_vec(), Ok(vec!["a".to_owned(), "bc".to_owned()]));
        assert!(r.is_empty());
        assert_eq!(&buf[10..18], &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    }
}
