//! ZooKeeper's jute wire encoding and every record of the 3.8 client protocol.
//!
//! Pure data: decoding from byte slices ([`Reader`], [`Record::from_bytes`])
//! and encoding into `BytesMut` ([`Record::write`], the `write_*` helpers).
//! No I/O, no framing: a TCP frame is a 4-byte big-endian length followed by
//! one of these records (a `RequestHeader`/`ReplyHeader` plus body once the
//! session handshake is done). Everything is re-exported at the crate root.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod createmode;
pub mod data;
pub mod errcode;
pub mod error;
pub mod multi;
pub mod opcode;
pub mod reader;
pub mod record;
pub mod requests;
pub mod responses;
pub mod session;
pub mod txn;
pub mod writer;

pub use createmode::*;
pub use data::*;
pub use errcode::*;
pub use error::*;
pub use multi::*;
pub use opcode::*;
pub use reader::*;
pub use record::Record;
pub use requests::*;
pub use responses::*;
pub use session::*;
pub use writer::*;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod golden_tests;
