//! Writes: turning requests into transactions (with ACLs resolved and
//! permissions checked against the applied tree, as ZooKeeper's
//! PrepRequestProcessor does), and shaping the reply from the outcome.

use bytes::BytesMut;
use jute::{
    Create2Response, CreateMode, CreateRequest, CreateResponse, MultiOp, MultiRequest, MultiResponse, MultiResult,
    OpCode, Record, SetAclRequest, SetDataResponse, SyncResponse,
};

use super::Op;
use crate::error::ZkError;
use crate::tree::acl::{allowed, AuthId};
use crate::tree::txn::{CreateKind, CreateOp, Txn, TxnOutcome};
use crate::tree::{path, AclEntry, DataTree};

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
        _ if mode.is_container() => CreateKind::Container,
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
            MultiOp::Create(c) => (create_txn(OpCode::Create, c, None).map(Txn::Create), OpCode::Create),
            MultiOp::Create2(c) => (create_txn(OpCode::Create2, c, None).map(Txn::Create), OpCode::Create2),
            MultiOp::CreateContainer(c) => {
                (create_txn(OpCode::CreateContainer, c, None).map(Txn::Create), OpCode::CreateContainer)
            }
            MultiOp::CreateTtl(t) => {
                let c = CreateRequest { path: t.path, data: t.data, acl: t.acl, flags: t.flags };
                (create_txn(OpCode::CreateTtl, c, Some(t.ttl)).map(Txn::Create), OpCode::CreateTtl)
            }
            MultiOp::Delete(d) => (Ok(Txn::Delete { path: d.path, version: d.version }), OpCode::Delete),
            MultiOp::SetData(s) => (Ok(Txn::SetData { path: s.path, data: s.data, version: s.version }), OpCode::SetData),
            MultiOp::Check(c) => (Ok(Txn::Check { path: c.path, version: c.version }), OpCode::Check),
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => {
                return Op::Reject(ZkError::BadArguments("read op inside multi".into()))
            }
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

/// Resolves `auth` ACL entries to the caller's identities and checks the
/// caller may do `txn` on the current tree.
pub fn prepare(txn: &mut Txn, tree: &DataTree, ids: &[AuthId], policy: Policy) -> Result<(), ZkError> {
    // skipACL=yes: ZooKeeper's checkACL passes everything.
    let permitted = |tree: &DataTree, path: &str, perm: i32, ids: &[AuthId]| if policy.skip_acl { Ok(()) } else { check(tree, path, perm, ids) };
    // enforceQuota=true: ZooKeeper's checkQuota, on creates and setData.
    let within_quota = |path: &str, count: i64, bytes: i64| match policy.enforce_quota {
        true => tree.hard_quota_exceeded(path, count, bytes).map_or(Ok(()), |owner| Err(ZkError::QuotaExceeded(owner))),
        false => Ok(()),
    };
    match txn {
        Txn::Create(c) => {
            c.acl = resolve_acl(std::mem::take(&mut c.acl), ids)?;
            let parent = if c.sequential && c.path.ends_with('/') { c.path.trim_end_matches('/') } else { path::parent(&c.path) };
            let parent = if parent.is_empty() { "/" } else { parent };
            permitted(tree, parent, jute::perms::CREATE, ids)?;
            within_quota(&c.path, 1, c.data.as_ref().map_or(0, |d| d.len() as i64))
        }
        Txn::Delete { path, .. } if path != "/" && path.starts_with('/') => {
            permitted(tree, path::parent(path), jute::perms::DELETE, ids)
        }
        Txn::SetData { path, data, .. } => {
            permitted(tree, path, jute::perms::WRITE, ids)?;
            let old = tree.get(path).map_or(0, |n| n.data_len() as i64);
            within_quota(path, 0, data.as_ref().map_or(0, |d| d.len() as i64) - old)
        }
        Txn::SetAcl { path, acl, .. } => {
            *acl = resolve_acl(std::mem::take(acl), ids)?;
            permitted(tree, path, jute::perms::ADMIN, ids)
        }
        Txn::Check { path, .. } => permitted(tree, path, jute::perms::READ, ids),
        Txn::Multi(ops) => ops.iter_mut().try_for_each(|op| prepare(op, tree, ids, policy)),
        _ => Ok(()),
    }
}

/// The server-wide switches a write is prepared under.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// No ACL is checked (`skipACL=yes`).
    pub skip_acl: bool,
    /// Hard quotas refuse writes (`enforceQuota=true`).
    pub enforce_quota: bool,
}

impl Policy {
    /// The switches `config` sets.
    pub fn from_config(config: &crate::config::Config) -> Policy {
        Policy { skip_acl: config.skip_acl, enforce_quota: config.enforce_quota }
    }
}

/// Fails with NoAuth if the node exists and `ids` lack `perm` on it
/// (a missing node is left for the transaction to report).
fn check(tree: &DataTree, path: &str, perm: i32, ids: &[AuthId]) -> Result<(), ZkError> {
    match tree.get(path) {
        Some(node) if !allowed(tree.acl(node), perm, ids) => Err(ZkError::NoAuth),
        _ => Ok(()),
    }
}

/// Replaces `auth` entries with one entry per authenticated identity, and
/// validates the rest, as ZooKeeper's `fixupACL` does. Like ZooKeeper (since
/// 3.5, ZOOKEEPER-1877) it first drops repeated entries of the request's list,
/// keeping the first of each; entries that only become equal once `auth` is
/// expanded are kept, as there.
fn resolve_acl(acl: Vec<AclEntry>, ids: &[AuthId]) -> Result<Vec<AclEntry>, ZkError> {
    let mut unique: Vec<AclEntry> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ZkError::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for entry in unique {
        match entry.scheme.as_str() {
            "auth" => {
                let mut any = false;
                for id in ids.iter().filter(|id| id.scheme != "ip" && id.scheme != "world" && id.scheme != "super") {
                    out.push(AclEntry { perms: entry.perms, scheme: id.scheme.clone(), id: id.id.clone() });
                    any = true;
                }
                if !any {
                    return Err(ZkError::InvalidAcl);
                }
            }
            "world" if entry.id == "anyone" => out.push(entry),
            "digest" if entry.id.split_once(':').is_some() => out.push(entry),
            "ip" if !entry.id.is_empty() => out.push(entry),
            "sasl" | "x509" if !entry.id.is_empty() => out.push(entry),
            _ => return Err(ZkError::InvalidAcl),
        }
    }
    Ok(out)
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

    fn entry(perms: i32, scheme: &str, id: &str) -> AclEntry {
        AclEntry { perms, scheme: scheme.into(), id: id.into() }
    }

    #[test]
    fn repeated_acl_entries_are_dropped() {
        let open = entry(31, "world", "anyone");
        let digest = entry(1, "digest", "bob:hash");
        let acl = vec![open.clone(), digest.clone(), open.clone(), digest.clone()];
        assert_eq!(resolve_acl(acl, &[]).unwrap(), vec![open.clone(), digest]);
        // Same id with other permissions is a different entry.
        let read_only = entry(1, "world", "anyone");
        assert_eq!(resolve_acl(vec![open.clone(), read_only.clone()], &[]).unwrap(), vec![open, read_only]);
    }

    #[test]
    fn repeated_acl_on_create_and_set_acl() {
        let open = entry(31, "world", "anyone");
        let tree = DataTree::new();
        let mut txn = Txn::Create(CreateOp {
            path: "/a".into(),
            data: None,
            acl: vec![open.clone(), open.clone()],
            kind: CreateKind::Persistent,
            sequential: false,
        });
        prepare(&mut txn, &tree, &[], Policy::default()).unwrap();
        match &txn {
            Txn::Create(c) => assert_eq!(c.acl, vec![open.clone()]),
            _ => unreachable!(),
        }
        let mut txn = Txn::SetAcl { path: "/".into(), acl: vec![open.clone(), open.clone()], version: -1 };
        prepare(&mut txn, &tree, &[], Policy::default()).unwrap();
        match &txn {
            Txn::SetAcl { acl, .. } => assert_eq!(acl, &vec![open]),
            _ => unreachable!(),
        }
    }

    #[test]
    fn auth_expansion_after_dedup() {
        let ids = [AuthId { scheme: "digest".into(), id: "bob:hash".into() }];
        let acl = vec![entry(31, "auth", ""), entry(31, "auth", ""), entry(31, "digest", "bob:hash")];
        // The two `auth` entries collapse first; the expanded one equals the
        // explicit digest entry and stays, as on ZooKeeper.
        let out = resolve_acl(acl, &ids).unwrap();
        assert_eq!(out, vec![entry(31, "digest", "bob:hash"), entry(31, "digest", "bob:hash")]);
        assert!(matches!(resolve_acl(vec![entry(31, "auth", "")], &[]), Err(ZkError::InvalidAcl)));
    }
}
