//! Writes: turning requests into transactions, tagged with who asked (the
//! tree checks ACLs and quotas as each applies, in log order, as ZooKeeper's
//! PrepRequestProcessor does on its leader), and shaping the reply from the
//! outcome.

use bytes::BytesMut;
use jute::{
    Create2Response, CreateMode, CreateRequest, CreateResponse, MultiOp, MultiRequest, MultiResponse, MultiResult, OpCode, Record,
    SetAclRequest, SetDataResponse, SyncResponse,
};

use super::Op;
use crate::config::Config;
use crate::error::ZkError;
use crate::tree::acl::AuthId;
use crate::tree::txn::{Caller, CreateKind, CreateOp, Txn, TxnOutcome};
use crate::tree::AclEntry;

/// How to encode a write's outcome for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReply {
    /// No body (delete, check, closeSession).
    Empty,
    /// `CreateResponse`: the path.
    Create,
    /// `Create2Response`: path and Stat.
    Create2,
    /// A bare Stat (setData, setACL).
    Stat,
    /// `SyncResponse` echoing the path.
    Sync(String),
    /// `MultiResponse`, with each op's type for its result header.
    Multi(Vec<OpCode>),
}

/// Builds a create from any of the create ops.
pub fn create(op: OpCode, req: CreateRequest, ttl: Option<i64>) -> Op {
    match create_txn(op, req, ttl) {
        Ok(c) => Op::Write(Txn::Create(c), if op == OpCode::Create { WriteReply::Create } else { WriteReply::Create2 }),
        Err(e) => Op::Reject(e),
    }
}

fn create_txn(op: OpCode, req: CreateRequest, ttl: Option<i64>) -> Result<CreateOp, ZkError> {
    let mode = CreateMode::from_flags(req.flags).ok_or_else(|| ZkError::BadArguments(format!("create flags {}", req.flags)))?;
    let kind = match (op, ttl) {
        (OpCode::CreateTtl, Some(ttl)) if mode.is_ttl() => CreateKind::Ttl(ttl),
        (OpCode::CreateTtl, _) => return Err(ZkError::BadArguments("createTTL needs a TTL mode".into())),
        _ if mode.is_ttl() => return Err(ZkError::BadArguments("TTL mode needs createTTL".into())),
        (OpCode::CreateContainer, _) => CreateKind::Container,
        // Outside a multi only createContainer makes a container: ZooKeeper
        // 3.8 logs a plain create (or create2) with the container flag as a
        // CreateTxn, which has no container in it. aiozk sends exactly that,
        // and its users have plain nodes that are never swept. Inside a multi
        // the flag does make one (see `multi_create`).
        _ if mode.is_ephemeral() => CreateKind::Ephemeral,
        _ => CreateKind::Persistent,
    };
    Ok(CreateOp {
        path: req.path,
        data: req.data,
        acl: req.acl.iter().map(AclEntry::from_wire).collect(),
        kind,
        sequential: mode.is_sequential(),
    })
}

/// Builds a setACL.
pub fn set_acl(req: SetAclRequest) -> Op {
    let acl = req.acl.iter().map(AclEntry::from_wire).collect();
    Op::Write(Txn::SetAcl { path: req.path, acl, version: req.version }, WriteReply::Stat)
}

/// Builds a multi; read ops are not allowed in it.
pub fn multi(req: MultiRequest) -> Op {
    let mut txns = Vec::with_capacity(req.ops.len());
    let mut kinds = Vec::with_capacity(req.ops.len());
    for op in req.ops {
        let (txn, kind) = match op {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => multi_create(c, None),
            MultiOp::CreateTtl(t) => multi_create(CreateRequest { path: t.path, data: t.data, acl: t.acl, flags: t.flags }, Some(t.ttl)),
            MultiOp::Delete(d) => (Ok(Txn::Delete { path: d.path, version: d.version }), OpCode::Delete),
            MultiOp::SetData(s) => (Ok(Txn::SetData { path: s.path, data: s.data, version: s.version }), OpCode::SetData),
            MultiOp::Check(c) => (Ok(Txn::Check { path: c.path, version: c.version }), OpCode::Check),
            // As ZooKeeper: the whole multi fails, nothing is applied.
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => return Op::Reject(ZkError::Marshalling("read op inside multi".into())),
        };
        let txn = match txn {
            Ok(t) => t,
            Err(e) => return Op::Reject(e),
        };
        // The reply shape of a create follows the node kind (see multi_result).
        let kind = match &txn {
            Txn::Create(c) => match c.kind {
                CreateKind::Container => OpCode::CreateContainer,
                CreateKind::Ttl(_) => OpCode::CreateTtl,
                _ => OpCode::Create,
            },
            _ => kind,
        };
        txns.push(txn);
        kinds.push(kind);
    }
    Op::Write(Txn::Multi(txns), WriteReply::Multi(kinds))
}

/// A create inside a multi. ZooKeeper 3.8 rebuilds each create of a multi
/// from its flags alone (the Java client's `Op.create`), whatever op it came
/// as: createContainer for the container flag, createTTL for a TTL mode that
/// came with a TTL, a plain create for every other mode.
fn multi_create(req: CreateRequest, ttl: Option<i64>) -> (Result<Txn, ZkError>, OpCode) {
    let op = match CreateMode::from_flags(req.flags) {
        Some(mode) if mode.is_container() => OpCode::CreateContainer,
        Some(mode) if mode.is_ttl() && ttl.is_some() => OpCode::CreateTtl,
        _ => OpCode::Create,
    };
    (create_txn(op, req, ttl).map(Txn::Create), op)
}

/// Wraps a client's write with who asked and the switches of `config`
/// (`skipACL`, `enforceQuota`, `letAnySaslUserDoX`): the tree checks
/// permissions, `auth` ACLs and quotas when the write applies (see
/// [`Txn::Checked`]).
pub fn as_caller(txn: Txn, ids: Vec<AuthId>, config: &Config) -> Txn {
    // Only what names znodes is checked (a sync, for one, is not).
    if !matches!(txn, Txn::Create(_) | Txn::Delete { .. } | Txn::SetData { .. } | Txn::SetAcl { .. } | Txn::Check { .. } | Txn::Multi(_)) {
        return txn;
    }
    let caller =
        Caller { ids, skip_acl: config.skip_acl, enforce_quota: config.enforce_quota, any_sasl_user: config.any_sasl_user_id.clone() };
    Txn::Checked { caller, txn: Box::new(txn) }
}

/// Encodes a write's outcome; returns the error code for the reply header.
pub fn encode_reply(reply: &WriteReply, outcome: &TxnOutcome, buf: &mut BytesMut) -> i32 {
    match (reply, outcome) {
        (_, TxnOutcome::Error(code)) => *code,
        (WriteReply::Create, TxnOutcome::Created { path, .. }) => {
            CreateResponse { path: path.clone() }.write(buf);
            0
        }
        (WriteReply::Create2, TxnOutcome::Created { path, stat }) => {
            Create2Response { path: path.clone(), stat: *stat }.write(buf);
            0
        }
        (WriteReply::Stat, TxnOutcome::Stat(stat)) => {
            SetDataResponse { stat: *stat }.write(buf);
            0
        }
        (WriteReply::Sync(path), _) => {
            SyncResponse { path: path.clone() }.write(buf);
            0
        }
        (WriteReply::Multi(kinds), TxnOutcome::Multi(results)) => {
            let results = kinds.iter().zip(results).map(|(kind, r)| multi_result(*kind, r)).collect();
            MultiResponse { results }.write(buf);
            0
        }
        (WriteReply::Empty, _) => 0,
        // An outcome that does not fit the request means a bug here, not bad input.
        _ => ZkError::System("unexpected outcome".into()).raw(),
    }
}

/// One op's result in a multi reply. As on ZooKeeper 3.8, a create's result
/// shape follows the node kind, not the op: container and TTL creates carry a
/// Stat, every other create only its path.
fn multi_result(kind: OpCode, outcome: &TxnOutcome) -> MultiResult {
    match outcome {
        TxnOutcome::Created { path, .. } if !matches!(kind, OpCode::CreateContainer | OpCode::CreateTtl) => {
            MultiResult::Create(path.clone())
        }
        TxnOutcome::Created { path, stat } => MultiResult::Create2 { path: path.clone(), stat: *stat },
        TxnOutcome::Deleted => MultiResult::Delete,
        TxnOutcome::Stat(stat) => MultiResult::SetData(*stat),
        TxnOutcome::Checked => MultiResult::Check,
        TxnOutcome::Error(code) => MultiResult::Error(*code),
        _ => MultiResult::Error(ZkError::System("unexpected outcome".into()).raw()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(op: OpCode, flags: i32) -> Result<CreateKind, ZkError> {
        create_txn(op, CreateRequest { path: "/n".into(), data: None, acl: vec![], flags }, None).map(|c| c.kind)
    }

    #[test]
    fn outside_a_multi_only_create_container_makes_a_container() {
        assert!(matches!(kind(OpCode::CreateContainer, 4), Ok(CreateKind::Container)));
        assert!(matches!(kind(OpCode::Create, 4), Ok(CreateKind::Persistent)));
        assert!(matches!(kind(OpCode::Create2, 4), Ok(CreateKind::Persistent)));
        assert!(matches!(kind(OpCode::Create, 1), Ok(CreateKind::Ephemeral)));
        assert!(matches!(kind(OpCode::Create, 5), Err(ZkError::BadArguments(_))));
        let Op::Write(Txn::Multi(txns), WriteReply::Multi(kinds)) = multi(MultiRequest {
            ops: vec![
                MultiOp::Create(CreateRequest { path: "/a".into(), data: None, acl: vec![], flags: 4 }),
                MultiOp::CreateContainer(CreateRequest { path: "/b".into(), data: None, acl: vec![], flags: 4 }),
                MultiOp::CreateContainer(CreateRequest { path: "/c".into(), data: None, acl: vec![], flags: 1 }),
            ],
        }) else {
            panic!("a multi of two creates is a write");
        };
        // Inside a multi the flag makes a container, with a create2's result.
        assert!(matches!(&txns[0], Txn::Create(c) if matches!(c.kind, CreateKind::Container)));
        assert!(matches!(&txns[1], Txn::Create(c) if matches!(c.kind, CreateKind::Container)));
        // And a createContainer without it makes what its flags say.
        assert!(matches!(&txns[2], Txn::Create(c) if matches!(c.kind, CreateKind::Ephemeral)));
        assert_eq!(kinds, vec![OpCode::CreateContainer, OpCode::CreateContainer, OpCode::Create]);
    }
}
