//! The one error type of the crate: why a byte buffer is not a valid record.

/// Why decoding a jute record failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the named item was complete.
    #[error("truncated input while reading {0}")]
    Truncated(&'static str),
    /// A length or count prefix was negative (other than -1 for null) or impossible.
    #[error("invalid length {len} for {what}")]
    BadLength {
        /// What the length prefixed (e.g. "buffer", "vector").
        what: &'static str,
        /// The offending length as read off the wire.
        len: i32,
    },
    /// A jute `ustring` did not hold valid UTF-8.
    #[error("string is not valid UTF-8")]
    BadUtf8,
    /// A discriminant (op code, multi op type, ...) had no known meaning.
    #[error("unknown value {value} for {what}")]
    Unknown {
        /// What kind of value was being decoded.
        what: &'static str,
        /// The value read off the wire.
        value: i32,
    },
}
