//! A cursor over a byte slice that decodes jute primitives with nom.

use nom::bytes::complete::take;
use nom::number::complete::{be_i32, be_i64, be_u8};
use nom::IResult;

use crate::error::DecodeError;
use crate::record::Record;

/// Decodes jute primitives from the front of a borrowed byte slice.
///
/// Every read either consumes exactly the bytes of the item it returns or
/// fails without consuming anything; it never panics on malformed input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Number of bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Runs a nom parser on the unread bytes, advancing past what it consumed.
    fn parse<T>(&mut self, what: &'static str, parser: impl FnOnce(&'a [u8]) -> IResult<&'a [u8], T>) -> Result<T, DecodeError> {
        match parser(self.buf) {
            Ok((rest, value)) => {
                self.buf = rest;
                Ok(value)
            }
            Err(_) => Err(DecodeError::Truncated(what)),
        }
    }

    /// Reads a big-endian 32-bit `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.parse("int", be_i32)
    }

    /// Reads a big-endian 64-bit `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.parse("long", be_i64)
    }

    /// Reads a one-byte `boolean`; any nonzero byte is true.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.parse("boolean", be_u8).map(|b| b != 0)
    }

    /// Reads a length prefix: `None` for null (-1), else a length that fits
    /// in the unread bytes. Consumes nothing on error.
    fn read_len(&mut self, what: &'static str) -> Result<Option<usize>, DecodeError> {
        let start = self.buf;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let Ok(n) = usize::try_from(len) else {
            self.buf = start;
            return Err(DecodeError::BadLength { what, len });
        };
        if n > self.buf.len() {
            self.buf = start;
            return Err(DecodeError::Truncated(what));
        }
        Ok(Some(n))
    }

    /// Reads `len` raw bytes; the caller has checked they are present.
    fn take_bytes(&mut self, what: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        self.parse(what, |input| take(len)(input))
    }

    /// Reads a jute `buffer`: i32 length then bytes; null (-1) decodes as empty.
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        match self.read_len("buffer")? {
            None => Ok(Vec::new()),
            Some(n) => self.take_bytes("buffer", n).map(<[u8]>::to_vec),
        }
    }

    /// Reads a jute `buffer`, keeping null (-1) apart from empty.
    pub fn read_opt_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(n) => self.take_bytes("buffer", n).map(|b| Some(b.to_vec())),
        }
    }

    /// Reads a jute `ustring`: i32 length then UTF-8; null (-1) decodes as "".
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let start = self.buf;
        let Some(n) = self.read_len("string")? else {
            return Ok(String::new());
        };
        let bytes = self.take_bytes("string", n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => {
                self.buf = start;
                Err(DecodeError::BadUtf8)
            }
        }
    }

    /// Reads a vector count: -1 (null) is zero; a count that cannot fit in
    /// the unread bytes (every jute element is at least one byte) is rejected.
    fn read_count(&mut self) -> Result<usize, DecodeError> {
        Ok(self.read_len("vector")?.unwrap_or(0))
    }

    /// Reads a jute `vector` of records: i32 count (-1 = empty) then elements.
    pub fn read_vec<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        let count = self.read_count()?;
        // read_count bounded count by the unread bytes, so this allocation is
        // never larger than the input could possibly describe.
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(T::read(self)?);
        }
        Ok(out)
    }

    /// Reads a jute `vector<ustring>`.
    pub fn read_string_vec(&mut self) -> Result<Vec<String>, DecodeError> {
        let count = self.read_count()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.read_string()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives() {
        let bytes = [0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 2, 0];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_i32(), Ok(256));
        assert_eq!(r.read_i64(), Ok(-2));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.read_bool(), Ok(false));
        assert!(r.is_empty());
        assert_eq!(r.read_bool(), Err(DecodeError::Truncated("boolean")));
        assert_eq!(r.read_i32(), Err(DecodeError::Truncated("int")));
        assert_eq!(r.read_i64(), Err(DecodeError::Truncated("long")));
    }

    #[test]
    fn short_primitive_consumes_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert!(r.read_i32().is_err());
        assert_eq!(r.remaining(), 3);
        assert!(r.read_i64().is_err());
        assert_eq!(r.remaining(), 3);
    }

    #[test]
    fn buffers_and_strings() {
        let bytes = [0, 0, 0, 2, b'h', b'i', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_string().as_deref(), Ok("hi"));
        assert_eq!(r.read_buffer(), Ok(vec![]));
        assert_eq!(r.read_string().as_deref(), Ok(""));
        assert!(r.is_empty());
    }

    #[test]
    fn bad_lengths() {
        let neg = [0xff, 0xff, 0xff, 0xfe, 1, 2];
        assert_eq!(Reader::new(&neg).read_buffer(), Err(DecodeError::BadLength { what: "buffer", len: -2 }));
        assert_eq!(Reader::new(&neg).read_string(), Err(DecodeError::BadLength { what: "string", len: -2 }));
        assert_eq!(Reader::new(&neg).read_string_vec(), Err(DecodeError::BadLength { what: "vector", len: -2 }));
        let min = i32::MIN.to_be_bytes();
        assert!(matches!(Reader::new(&min).read_buffer(), Err(DecodeError::BadLength { .. })));
        let huge = [0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut r = Reader::new(&huge);
        assert_eq!(r.read_buffer(), Err(DecodeError::Truncated("buffer")));
        assert_eq!(r.remaining(), huge.len(), "failed read must not consume");
        assert_eq!(Reader::new(&huge).read_string(), Err(DecodeError::Truncated("string")));
        assert_eq!(Reader::new(&huge).read_string_vec(), Err(DecodeError::Truncated("vector")));
        assert_eq!(Reader::new(&huge).read_vec::<crate::Acl>(), Err(DecodeError::Truncated("vector")));
    }

    #[test]
    fn invalid_utf8() {
        let bytes = [0, 0, 0, 2, 0xc3, 0x28];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_string(), Err(DecodeError::BadUtf8));
        assert_eq!(r.remaining(), bytes.len());
    }

    #[test]
    fn string_vectors() {
        let bytes = [0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_string_vec(), Ok(vec!["a".to_owned(), String::new()]));
        assert_eq!(r.read_string_vec(), Ok(vec![]));
        assert!(r.is_empty());
        // Count says 3 but only two elements follow.
        let short = [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(Reader::new(&short).read_string_vec().is_err());
    }
}
