//! Pre-encoded request bodies and reply checks for the pipelined workloads.
//!
//! Bodies are written with jute's primitive encoders rather than the request
//! structs, so a request costs one buffer and the value is copied once.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use jute::{Acl, DecodeError, ErrorCode, MultiHeader, MultiResponse, OpCode, Reader, Record, ReplyHeader};

/// A request body already encoded (everything after the `RequestHeader`).
pub struct Raw(pub Bytes);

impl Record for Raw {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Raw(Bytes::copy_from_slice(r.rest())))
    }

    fn write(&self, buf: &mut BytesMut) {
        buf.extend_from_slice(&self.0);
    }
}

/// How a reply is judged a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The reply header's error code is 0.
    Header,
    /// The header is 0 and every result of the multi response is too (a
    /// failed multi keeps the header's code at 0).
    Multi,
}

/// One request of a pipelined workload.
pub struct Request {
    /// The op code sent in the header.
    pub op: OpCode,
    /// The encoded body.
    pub body: Raw,
    /// How to judge the reply.
    pub check: Check,
}

/// The error code of a reply, 0 when it succeeded.
pub fn reply_error(check: Check, header: &ReplyHeader, body: &[u8]) -> i32 {
    if header.err != 0 {
        return header.err;
    }
    if check == Check::Multi {
        return match MultiResponse::from_bytes(body) {
            Ok(resp) => resp.results.iter().map(|r| r.err()).find(|&e| e != 0).unwrap_or(0),
            Err(_) => ErrorCode::MarshallingError.code(),
        };
    }
    0
}

/// The encoding of the world-readable, world-writable ACL, computed once.
fn open_acl() -> &'static [u8] {
    static ACL: OnceLock<Bytes> = OnceLock::new();
    ACL.get_or_init(|| {
        let mut buf = BytesMut::new();
        jute::write_vec(&mut buf, &Acl::open_unsafe());
        buf.freeze()
    })
}

fn create_body(buf: &mut BytesMut, path: &str, data: &[u8], flags: i32) {
    jute::write_string(buf, path);
    jute::write_buffer(buf, data);
    buf.extend_from_slice(open_acl());
    jute::write_i32(buf, flags);
}

fn set_body(buf: &mut BytesMut, path: &str, data: &[u8]) {
    jute::write_string(buf, path);
    jute::write_buffer(buf, data);
    jute::write_i32(buf, -1);
}

fn delete_body(buf: &mut BytesMut, path: &str) {
    jute::write_string(buf, path);
    jute::write_i32(buf, -1);
}

/// create `path` with `data` and the given `CreateMode` flags, open ACL.
pub fn create(path: &str, data: &[u8], flags: i32) -> Request {
    let mut buf = BytesMut::with_capacity(path.len() + data.len() + 48);
    create_body(&mut buf, path, data, flags);
    Request { op: OpCode::Create, body: Raw(buf.freeze()), check: Check::Header }
}

/// setData on `path`, any version.
pub fn set_data(path: &str, data: &[u8]) -> Request {
    let mut buf = BytesMut::with_capacity(path.len() + data.len() + 12);
    set_body(&mut buf, path, data);
    Request { op: OpCode::SetData, body: Raw(buf.freeze()), check: Check::Header }
}

/// getData on `path`, no watch.
pub fn get_data(path: &str) -> Request {
    let mut buf = BytesMut::with_capacity(path.len() + 5);
    jute::write_string(&mut buf, path);
    jute::write_bool(&mut buf, false);
    Request { op: OpCode::GetData, body: Raw(buf.freeze()), check: Check::Header }
}

/// delete `path`, any version.
pub fn delete(path: &str) -> Request {
    let mut buf = BytesMut::with_capacity(path.len() + 8);
    delete_body(&mut buf, path);
    Request { op: OpCode::Delete, body: Raw(buf.freeze()), check: Check::Header }
}

/// A three-op transaction: create `path`, setData on it, delete it.
pub fn multi_create_set_delete(path: &str, data: &[u8]) -> Request {
    let mut buf = BytesMut::with_capacity(2 * (path.len() + data.len()) + 128);
    let header = |buf: &mut BytesMut, op: OpCode| MultiHeader { op: op.code(), done: false, err: -1 }.write(buf);
    header(&mut buf, OpCode::Create);
    create_body(&mut buf, path, data, 0);
    header(&mut buf, OpCode::SetData);
    set_body(&mut buf, path, data);
    header(&mut buf, OpCode::Delete);
    delete_body(&mut buf, path);
    MultiHeader::END.write(&mut buf);
    Request { op: OpCode::Multi, body: Raw(buf.freeze()), check: Check::Multi }
}

/// A small, fast pseudo-random generator (xorshift64*): picking keys must
/// not cost more than sending the request.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value, uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::{CreateRequest, DeleteRequest, MultiOp, MultiRequest, SetDataRequest};

    #[test]
    fn raw_bodies_decode_as_the_records() {
        let c = create("/a/b", b"xyz", 3);
        let r = CreateRequest::from_bytes(&c.body.0).expect("create decodes");
        assert_eq!((r.path.as_str(), r.flags, r.acl.len()), ("/a/b", 3, 1));
        let s = SetDataRequest::from_bytes(&set_data("/k", b"v").body.0).expect("set decodes");
        assert_eq!((s.path.as_str(), s.version), ("/k", -1));
        let d = DeleteRequest::from_bytes(&delete("/k").body.0).expect("delete decodes");
        assert_eq!(d.path, "/k");
        let m = MultiRequest::from_bytes(&multi_create_set_delete("/m", b"v").body.0).expect("multi decodes");
        assert!(matches!(&m.ops[..], [MultiOp::Create(_), MultiOp::SetData(_), MultiOp::Delete(_)]));
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::new(0);
        assert!((0..1000).all(|_| rng.below(7) < 7));
    }
}
