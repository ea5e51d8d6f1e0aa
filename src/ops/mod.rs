//! What a client asked for: each request packet, decoded and sorted into a
//! write (a transaction for the Raft log), a read (answered from the applied
//! tree, in session order), or a session-level packet.

pub mod auth;
pub mod identities;
pub mod read;
pub mod write;

use jute::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest, CreateTtlRequest, DecodeError, DeleteRequest,
    ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetDataRequest,
    GetEphemeralsRequest, GetSaslRequest, MultiOp, MultiRequest, OpCode, Reader, ReconfigRequest, Record, RemoveWatchesRequest,
    SetAclRequest, SetDataRequest, SetWatches, SetWatches2, SyncRequest,
};

use crate::error::ZkError;
use crate::tree::txn::Txn;
pub use read::{MultiReadOp, ReadOp};
pub use write::WriteReply;

/// A decoded request, sorted by how it is served.
#[derive(Debug)]
pub enum Op {
    /// A transaction to put through the log, and how to shape its reply.
    Write(Txn, WriteReply),
    /// A read, answered from the applied tree in session order.
    Read(ReadOp),
    /// Keep-alive.
    Ping,
    /// addAuthInfo.
    Auth(AuthPacket),
    /// One SASL token of the connection's exchange.
    Sasl(Vec<u8>),
    /// Re-register watches after a reconnect.
    SetWatches(SetWatches2),
    /// Change the ensemble's membership (see `raft::membership`).
    Reconfig(ReconfigRequest),
    /// End the session.
    Close,
    /// Answer in order with this error and no body.
    Reject(ZkError),
}

/// Decodes one request body of type `op`.
pub fn decode(op: i32, r: &mut Reader<'_>) -> Result<Op, DecodeError> {
    let Some(code) = OpCode::from_i32(op) else { return Ok(Op::Reject(ZkError::Unimplemented)) };
    Ok(match code {
        OpCode::Ping => Op::Ping,
        OpCode::CloseSession => Op::Close,
        OpCode::Auth => Op::Auth(AuthPacket::read(r)?),
        OpCode::SetWatches => {
            let s = SetWatches::read(r)?;
            Op::SetWatches(SetWatches2 {
                relative_zxid: s.relative_zxid,
                data_watches: s.data_watches,
                exist_watches: s.exist_watches,
                child_watches: s.child_watches,
                persistent_watches: Vec::new(),
                persistent_recursive_watches: Vec::new(),
            })
        }
        OpCode::SetWatches2 => Op::SetWatches(SetWatches2::read(r)?),
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => write::create(code, CreateRequest::read(r)?, None),
        OpCode::CreateTtl => {
            let t = CreateTtlRequest::read(r)?;
            let req = CreateRequest { path: t.path, data: t.data, acl: t.acl, flags: t.flags };
            write::create(code, req, Some(t.ttl))
        }
        OpCode::Delete => {
            let d = DeleteRequest::read(r)?;
            Op::Write(Txn::Delete { path: d.path, version: d.version }, WriteReply::Empty)
        }
        OpCode::SetData => {
            let s = SetDataRequest::read(r)?;
            Op::Write(Txn::SetData { path: s.path, data: s.data, version: s.version }, WriteReply::Stat)
        }
        OpCode::SetAcl => write::set_acl(SetAclRequest::read(r)?),
        OpCode::Check => {
            let c = CheckVersionRequest::read(r)?;
            Op::Write(Txn::Check { path: c.path, version: c.version }, WriteReply::Empty)
        }
        OpCode::Sync => {
            let s = SyncRequest::read(r)?;
            Op::Write(Txn::Sync, WriteReply::Sync(s.path))
        }
        OpCode::Multi => write::multi(MultiRequest::read(r)?),
        OpCode::MultiRead => {
            // The ops' watch flags are dropped, as ZooKeeper 3.8 drops them
            // (its Op.getData and Op.getChildren have none).
            let mut ops = Vec::new();
            for op in MultiRequest::read(r)?.ops {
                ops.push(match op {
                    MultiOp::GetData(g) => MultiReadOp::GetData(g.path),
                    MultiOp::GetChildren(g) => MultiReadOp::GetChildren(g.path),
                    // As ZooKeeper: no op is run, there is no body.
                    _ => return Ok(Op::Reject(ZkError::Marshalling("write op inside multiRead".into()))),
                });
            }
            Op::Read(ReadOp::MultiRead(ops))
        }
        OpCode::Exists => {
            let e = ExistsRequest::read(r)?;
            Op::Read(ReadOp::Exists { path: e.path, watch: e.watch })
        }
        OpCode::GetData => {
            let g = GetDataRequest::read(r)?;
            Op::Read(ReadOp::GetData { path: g.path, watch: g.watch })
        }
        OpCode::GetAcl => Op::Read(ReadOp::GetAcl { path: GetAclRequest::read(r)?.path }),
        OpCode::GetChildren => {
            let g = GetChildrenRequest::read(r)?;
            Op::Read(ReadOp::GetChildren { path: g.path, watch: g.watch, with_stat: false })
        }
        OpCode::GetChildren2 => {
            let g = GetChildren2Request::read(r)?;
            Op::Read(ReadOp::GetChildren { path: g.path, watch: g.watch, with_stat: true })
        }
        OpCode::GetAllChildrenNumber => Op::Read(ReadOp::AllChildrenNumber { path: GetAllChildrenNumberRequest::read(r)?.path }),
        OpCode::GetEphemerals => Op::Read(ReadOp::Ephemerals { prefix: GetEphemeralsRequest::read(r)?.prefix_path }),
        OpCode::WhoAmI => Op::Read(ReadOp::WhoAmI),
        OpCode::AddWatch => {
            let a = AddWatchRequest::read(r)?;
            Op::Read(ReadOp::AddWatch { path: a.path, mode: a.mode })
        }
        OpCode::RemoveWatches => {
            let w = RemoveWatchesRequest::read(r)?;
            Op::Read(ReadOp::RemoveWatches { path: w.path, watch_type: w.watch_type })
        }
        OpCode::CheckWatches => {
            let w = CheckWatchesRequest::read(r)?;
            Op::Read(ReadOp::CheckWatches { path: w.path, watch_type: w.watch_type })
        }
        OpCode::Sasl => Op::Sasl(GetSaslRequest::read(r)?.token),
        OpCode::Reconfig => Op::Reconfig(ReconfigRequest::read(r)?),
        OpCode::DeleteContainer => Op::Reject(ZkError::Unimplemented),
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => Op::Reject(ZkError::Unimplemented),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::{DeleteRequest, GetDataRequest};

    fn decoded(op: OpCode, ops: Vec<MultiOp>) -> Op {
        let body = MultiRequest { ops }.to_bytes();
        match decode(op.code(), &mut Reader::new(&body)) {
            Ok(op) => op,
            Err(e) => panic!("a well-formed multi must decode: {e}"),
        }
    }

    #[test]
    fn a_multi_of_the_wrong_kind_is_answered_with_a_marshalling_error() {
        let read = || MultiOp::GetData(GetDataRequest { path: "/a".into(), watch: false });
        let write = || MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 });
        // ZooKeeper answers MarshallingError and keeps the connection.
        for (op, ops) in [(OpCode::Multi, vec![read()]), (OpCode::Multi, vec![write(), read()]), (OpCode::MultiRead, vec![read(), write()])]
        {
            let got = decoded(op, ops);
            assert!(matches!(got, Op::Reject(ZkError::Marshalling(_))), "{got:?}");
        }
        assert!(matches!(decoded(OpCode::MultiRead, vec![read(), read()]), Op::Read(ReadOp::MultiRead(ref ops)) if ops.len() == 2));
    }
}
