//! The multi (14) and multiRead (22) request and response records.
//!
//! Both are a sequence of `(MultiHeader, body)` pairs closed by the header
//! `{op: -1, done: true, err: -1}`; a reader stops at the first header with
//! `done` set, whatever its other fields.
//!
//! What the real 3.8 server writes (checked against captured frames):
//! * request headers carry `err: -1`; response headers carry `err: 0`,
//!   except error results whose header `err` repeats the body's code;
//! * a create result's header op is re-derived from the create flags, not
//!   copied from the request: plain creates (op 1, and also op 15 with
//!   non-container, non-TTL flags) answer with op 1 and a `CreateResponse`
//!   (path only), while container (19) and TTL (21) creates answer with
//!   op 15 and a `Create2Response` (path and stat);
//! * a failed transaction answers every op with an error result: ops before
//!   the failing one carry `Ok` (0), the failing one its code, later ones
//!   `RuntimeInconsistency` (-2), and the `ReplyHeader.err` stays 0;
//! * in multiRead each failing read gets its own error result while the
//!   others succeed.

use bytes::BytesMut;

use crate::data::Stat;
use crate::error::DecodeError;
use crate::opcode::OpCode;
use crate::reader::Reader;
use crate::record::{record, Record};
use crate::requests::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, GetChildrenRequest, GetDataRequest, SetDataRequest,
};
use crate::responses::{Create2Response, CreateResponse, ErrorResponse, GetChildrenResponse, GetDataResponse, SetDataResponse};

record! {
    /// Prefix of each op (and of the end marker) in multi requests and responses.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct MultiHeader {
        /// Op code of the following body, or -1 (end marker / error result).
        pub op: i32,
        /// True only on the end marker.
        pub done: bool,
        /// -1 in requests; 0 or the error code in responses.
        pub err: i32,
    }
}

impl MultiHeader {
    /// The `{op: -1, done: true, err: -1}` marker that ends every multi record.
    pub const END: MultiHeader = MultiHeader { op: -1, done: true, err: -1 };
}

/// One operation of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (op 1).
    Create(CreateRequest),
    /// create2 (op 15).
    Create2(CreateRequest),
    /// createContainer (op 19).
    CreateContainer(CreateRequest),
    /// createTTL (op 21).
    CreateTtl(CreateTtlRequest),
    /// delete (op 2).
    Delete(DeleteRequest),
    /// setData (op 5).
    SetData(SetDataRequest),
    /// check (op 13).
    Check(CheckVersionRequest),
    /// getChildren (op 8), multiRead only.
    GetChildren(GetChildrenRequest),
    /// getData (op 4), multiRead only.
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The op code written in this op's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// True for the read ops allowed in multiRead (getData, getChildren).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    /// The path this op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    /// Decodes the body that follows a header with op code `op`.
    fn read_body(op: i32, r: &mut Reader<'_>) -> Result<MultiOp, DecodeError> {
        Ok(match OpCode::from_i32(op) {
            Some(OpCode::Create) => MultiOp::Create(CreateRequest::read(r)?),
            Some(OpCode::Create2) => MultiOp::Create2(CreateRequest::read(r)?),
            Some(OpCode::CreateContainer) => MultiOp::CreateContainer(CreateRequest::read(r)?),
            Some(OpCode::CreateTtl) => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::read(r)?),
            Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::read(r)?),
            Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::read(r)?),
            Some(OpCode::GetChildren) => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::read(r)?),
            _ => return Err(DecodeError::Unknown { what: "multi op type", value: op }),
        })
    }

    /// Encodes the body (without header).
    fn write_body(&self, buf: &mut BytesMut) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.write(buf),
            MultiOp::CreateTtl(r) => r.write(buf),
            MultiOp::Delete(r) => r.write(buf),
            MultiOp::SetData(r) => r.write(buf),
            MultiOp::Check(r) => r.write(buf),
            MultiOp::GetChildren(r) => r.write(buf),
            MultiOp::GetData(r) => r.write(buf),
        }
    }
}

/// Body of multi (14) and multiRead (22): the ops, in order.
///
/// Decoding takes reads (getData/getChildren) and writes alike, mixed or
/// not: the wire op code (multi or multiRead) says which kind the request
/// must hold, and a server answers one of the other kind with an error
/// (ZooKeeper: MarshallingError), not by dropping the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiRequest {
    /// The operations, executed in order.
    pub ops: Vec<MultiOp>,
}

impl MultiRequest {
    /// True if the request is non-empty and only reads (what a multiRead
    /// must hold; decoding no longer refuses a mix, so every op is looked at).
    pub fn is_read(&self) -> bool {
        !self.ops.is_empty() && self.ops.iter().all(MultiOp::is_read)
    }
}

impl Record for MultiRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut ops: Vec<MultiOp> = Vec::new();
        loop {
            let header = MultiHeader::read(r)?;
            if header.done {
                return Ok(MultiRequest { ops });
            }
            ops.push(MultiOp::read_body(header.op, r)?);
        }
    }

    fn write(&self, buf: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader { op: op.op_code().code(), done: false, err: -1 }.write(buf);
            op.write_body(buf);
        }
        MultiHeader::END.write(buf);
    }
}

/// One result of a multi or multiRead response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Header op 1 with a `CreateResponse` body: a plain create succeeded.
    Create(String),
    /// Header op 15 with a `Create2Response` body: create2/container/TTL succeeded.
    Create2 {
        /// The actual path created.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// Header op 2, no body: delete succeeded.
    Delete,
    /// Header op 5 with a `SetDataResponse` body.
    SetData(Stat),
    /// Header op 13, no body: the version check passed.
    Check,
    /// Header op 4 with a `GetDataResponse` body (multiRead).
    GetData {
        /// The node's data (`None`: null).
        data: Option<Vec<u8>>,
        /// The node's stat.
        stat: Stat,
    },
    /// Header op 8 with a `GetChildrenResponse` body (multiRead).
    GetChildren(Vec<String>),
    /// Header `{op: -1, err: code}` with an `ErrorResponse{err: code}` body.
    Error(i32),
}

impl MultiResult {
    /// The op code written in this result's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2 { .. } => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::Check => OpCode::Check,
            MultiResult::GetData { .. } => OpCode::GetData,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::Error(_) => OpCode::Error,
        }
    }

    /// The error code of this result: the code for `Error`, else 0.
    pub fn err(&self) -> i32 {
        match self {
            MultiResult::Error(code) => *code,
            _ => 0,
        }
    }
}

/// Reply body of multi (14) and multiRead (22): one result per op.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiResponse {
    /// The results, in request order.
    pub results: Vec<MultiResult>,
}

impl Record for MultiResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let header = MultiHeader::read(r)?;
            if header.done {
                return Ok(MultiResponse { results });
            }
            let result = match OpCode::from_i32(header.op) {
                Some(OpCode::Create) => MultiResult::Create(CreateResponse::read(r)?.path),
                Some(OpCode::Create2) => {
                    let resp = Create2Response::read(r)?;
                    MultiResult::Create2 { path: resp.path, stat: resp.stat }
                }
                Some(OpCode::Delete) => MultiResult::Delete,
                Some(OpCode::SetData) => MultiResult::SetData(SetDataResponse::read(r)?.stat),
                Some(OpCode::Check) => MultiResult::Check,
                Some(OpCode::GetData) => {
                    let resp = GetDataResponse::read(r)?;
                    MultiResult::GetData { data: resp.data, stat: resp.stat }
                }
                Some(OpCode::GetChildren) => MultiResult::GetChildren(GetChildrenResponse::read(r)?.children),
                Some(OpCode::Error) => MultiResult::Error(ErrorResponse::read(r)?.err),
                _ => return Err(DecodeError::Unknown { what: "multi result type", value: header.op }),
            };
            results.push(result);
        }
    }

    fn write(&self, buf: &mut BytesMut) {
        for result in &self.results {
            MultiHeader { op: result.op_code().code(), done: false, err: result.err() }.write(buf);
            match result {
                MultiResult::Create(path) => crate::writer::write_string(buf, path),
                MultiResult::Create2 { path, stat } => {
                    crate::writer::write_string(buf, path);
                    stat.write(buf);
                }
                MultiResult::Delete | MultiResult::Check => {}
                MultiResult::SetData(stat) => stat.write(buf),
                MultiResult::GetData { data, stat } => {
                    crate::writer::write_opt_buffer(buf, data.as_deref());
                    stat.write(buf);
                }
                MultiResult::GetChildren(children) => crate::writer::write_string_vec(buf, children),
                MultiResult::Error(code) => crate::writer::write_i32(buf, *code),
            }
        }
        MultiHeader::END.write(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Acl;
    use crate::record::testing::{hostile_lengths, round_trip};

    fn create(path: &str, flags: i32) -> CreateRequest {
        CreateRequest { path: path.into(), data: Some(b"m".to_vec()), acl: Acl::open_unsafe(), flags }
    }

    #[test]
    fn write_request_round_trips() {
        let req = MultiRequest {
            ops: vec![
                MultiOp::Create(create("/a", 0)),
                MultiOp::Create2(create("/b", 2)),
                MultiOp::CreateContainer(create("/c", 4)),
                MultiOp::CreateTtl(CreateTtlRequest { path: "/t".into(), data: None, acl: Acl::open_unsafe(), flags: 5, ttl: 1000 }),
                MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 }),
                MultiOp::SetData(SetDataRequest { path: "/b".into(), data: Some(vec![1]), version: 3 }),
                MultiOp::Check(CheckVersionRequest { path: "/b".into(), version: 4 }),
            ],
        };
        assert!(!req.is_read());
        let bytes = round_trip(&req);
        hostile_lengths::<MultiRequest>(&bytes);
        // Each header carries err -1; the end marker closes the record.
        assert_eq!(&bytes[..9], &[0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&bytes[bytes.len() - 9..], &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(round_trip(&MultiRequest::default()).len(), 9);
    }

    #[test]
    fn read_request_round_trips() {
        let req = MultiRequest {
            ops: vec![
                MultiOp::GetData(GetDataRequest { path: "/d".into(), watch: false }),
                MultiOp::GetChildren(GetChildrenRequest { path: "/d".into(), watch: false }),
            ],
        };
        assert!(req.is_read());
        round_trip(&req);
    }

    #[test]
    fn request_rejects_unknown_ops_and_keeps_mixed_ones() {
        let mut buf = BytesMut::new();
        MultiHeader { op: 3, done: false, err: -1 }.write(&mut buf);
        crate::requests::ExistsRequest { path: "/a".into(), watch: false }.write(&mut buf);
        MultiHeader::END.write(&mut buf);
        assert_eq!(MultiRequest::from_bytes(&buf), Err(DecodeError::Unknown { what: "multi op type", value: 3 }));

        let mixed = MultiRequest {
            ops: vec![
                MultiOp::GetData(GetDataRequest { path: "/d".into(), watch: false }),
                MultiOp::Delete(DeleteRequest { path: "/d".into(), version: -1 }),
            ],
        };
        assert_eq!(MultiRequest::from_bytes(&mixed.to_bytes()), Ok(mixed));
    }

    #[test]
    fn response_round_trips() {
        let stat = Stat { czxid: 9, version: 1, ..Stat::default() };
        let resp = MultiResponse {
            results: vec![
                MultiResult::Create("/a".into()),
                MultiResult::Create2 { path: "/b0000000001".into(), stat },
                MultiResult::Delete,
                MultiResult::SetData(stat),
                MultiResult::Check,
                MultiResult::GetData { data: Some(b"x".to_vec()), stat },
                MultiResult::GetChildren(vec!["a".into(), "b".into()]),
                MultiResult::Error(-101),
                MultiResult::Error(0),
            ],
        };
        let bytes = round_trip(&resp);
        hostile_lengths::<MultiResponse>(&bytes);
        assert_eq!(round_trip(&MultiResponse::default()).len(), 9);
    }

    #[test]
    fn error_result_header_repeats_code() {
        let resp = MultiResponse { results: vec![MultiResult::Error(-103), MultiResult::Delete] };
        let bytes = resp.to_bytes();
        assert_eq!(
            &bytes[..],
            &[
                0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x99, 0xff, 0xff, 0xff, 0x99, // error
                0, 0, 0, 2, 0, 0, 0, 0, 0, // delete, err 0
                0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff, // end
            ][..]
        );
    }

    #[test]
    fn response_rejects_unknown_result() {
        let mut buf = BytesMut::new();
        MultiHeader { op: 7, done: false, err: 0 }.write(&mut buf);
        assert_eq!(MultiResponse::from_bytes(&buf), Err(DecodeError::Unknown { what: "multi result type", value: 7 }));
    }
}
