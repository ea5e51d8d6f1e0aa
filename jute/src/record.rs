//! The `Record` trait every jute message implements, plus the field plumbing
//! and test helpers shared by the record modules.

use bytes::{Bytes, BytesMut};

use crate::error::DecodeError;
use crate::reader::Reader;

/// A jute record: a fixed sequence of fields with a binary wire encoding.
pub trait Record: Sized {
    /// Decodes one record from the front of `r`.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Appends this record's encoding to `buf`.
    fn write(&self, buf: &mut BytesMut);

    /// Decodes from a whole buffer (trailing bytes are ignored).
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(buf))
    }

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.write(&mut buf);
        buf.freeze()
    }
}

/// A type that can appear as a field of a record declared with `record!`.
pub(crate) trait Field: Sized {
    /// Decodes the field.
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Encodes the field.
    fn write_field(&self, buf: &mut BytesMut);
}

impl Field for i32 {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_i32(buf, *self);
    }
}

impl Field for i64 {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_i64(buf, *self);
    }
}

impl Field for bool {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_bool(buf, *self);
    }
}

impl Field for String {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_string(buf, self);
    }
}

impl Field for Vec<u8> {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_buffer(buf, self);
    }
}

/// A nullable buffer: jute's null (-1) is `None`, so a node created with
/// null data reads back as null, as on ZooKeeper.
impl Field for Option<Vec<u8>> {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_opt_buffer()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_opt_buffer(buf, self.as_deref());
    }
}

impl Field for Vec<String> {
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string_vec()
    }
    fn write_field(&self, buf: &mut BytesMut) {
        crate::writer::write_string_vec(buf, self);
    }
}

/// Makes records usable as fields (nested records and vectors of records).
macro_rules! record_fields {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::record::Field for $t {
            fn read_field(r: &mut $crate::reader::Reader<'_>) -> Result<Self, $crate::error::DecodeError> {
                <$t as $crate::record::Record>::read(r)
            }
            fn write_field(&self, buf: &mut ::bytes::BytesMut) {
                $crate::record::Record::write(self, buf);
            }
        }
        impl $crate::record::Field for Vec<$t> {
            fn read_field(r: &mut $crate::reader::Reader<'_>) -> Result<Self, $crate::error::DecodeError> {
                r.read_vec()
            }
            fn write_field(&self, buf: &mut ::bytes::BytesMut) {
                $crate::writer::write_vec(buf, self);
            }
        }
    )*};
}
pub(crate) use record_fields;

/// Declares a struct whose fields are encoded in declaration order.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::record::Record for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::reader::Reader<'_>) -> Result<Self, $crate::error::DecodeError> {
                Ok(Self {
                    $( $field: <$ty as $crate::record::Field>::read_field(r)? ),*
                })
            }

            #[allow(unused_variables)]
            fn write(&self, buf: &mut ::bytes::BytesMut) {
                $( $crate::record::Field::write_field(&self.$field, buf); )*
            }
        }
    };
}
pub(crate) use record;

/// Shared checks for the unit tests of every record module.
#[cfg(test)]
pub(crate) mod testing {
    use super::Record;
    use std::fmt::Debug;

    /// Encodes `value`, checks it decodes back equal, and checks that every
    /// strict prefix of the encoding fails to decode (without panicking).
    pub fn round_trip<T: Record + PartialEq + Debug>(value: &T) -> Vec<u8> {
        let bytes = value.to_bytes().to_vec();
        assert_eq!(T::from_bytes(&bytes).as_ref(), Ok(value), "round trip of {value:?}");
        for cut in 0..bytes.len() {
            assert!(T::from_bytes(&bytes[..cut]).is_err(), "prefix of {cut}/{} bytes decoded for {value:?}", bytes.len());
        }
        bytes
    }

    /// Feeds `T` garbage that must not panic: every 4-byte window of each
    /// encoding overwritten with huge and negative lengths.
    pub fn hostile_lengths<T: Record + Debug>(bytes: &[u8]) {
        for pos in 0..bytes.len().saturating_sub(3) {
            for len in [-2i32, -1, i32::MIN, i32::MAX, 0x0100_0000] {
                let mut evil = bytes.to_vec();
                evil[pos..pos + 4].copy_from_slice(&len.to_be_bytes());
                let _ = T::from_bytes(&evil);
            }
        }
    }
}
