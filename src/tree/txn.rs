//! Transactions: the replicated form of every ZooKeeper write, and their outcomes.

use serde::{Deserialize, Serialize};

use super::acl::AuthId;
use super::node::{AclEntry, StoredNode};
use super::SessionInfo;

/// How a znode is created (ZooKeeper's CreateMode, minus the sequential flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateKind {
    /// Persistent node.
    Persistent,
    /// Ephemeral node owned by the requesting session.
    Ephemeral,
    /// Container node.
    Container,
    /// Persistent node with a TTL in ms.
    Ttl(i64),
}

/// A create, already validated for form by the proposer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateOp {
    /// Path (before the sequential suffix, if any).
    pub path: String,
    /// Initial data (`None`: null).
    pub data: Option<Vec<u8>>,
    /// ACL, with the `auth` scheme already resolved by the proposer.
    pub acl: Vec<AclEntry>,
    /// Node kind.
    pub kind: CreateKind,
    /// Append the parent's `%010d` counter.
    pub sequential: bool,
}

/// A replicated state change. Stored in the log by variant number: a new
/// variant goes last, and raises `storage::FORMAT` so that older builds
/// refuse a log they could not read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Txn {
    /// Open a session with this negotiated timeout and password.
    CreateSession {
        /// Negotiated timeout, ms.
        timeout_ms: i32,
        /// The session password the client must present on reconnect.
        passwd: Vec<u8>,
    },
    /// End the request's session and delete its ephemerals.
    CloseSession,
    /// End other sessions whose timeouts ran out, as decided by the leader.
    ExpireSessions(Vec<i64>),
    /// Create a znode.
    Create(CreateOp),
    /// Delete a znode (version -1 matches any).
    Delete {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// Replace a znode's data.
    SetData {
        /// Path.
        path: String,
        /// New data (`None`: null).
        data: Option<Vec<u8>>,
        /// Expected version.
        version: i32,
    },
    /// Replace a znode's ACL.
    SetAcl {
        /// Path.
        path: String,
        /// New ACL.
        acl: Vec<AclEntry>,
        /// Expected ACL version.
        version: i32,
    },
    /// Assert a znode's version (only inside a multi, or as a lone check).
    Check {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// Do every op or none.
    Multi(Vec<Txn>),
    /// A no-op that orders a `sync` behind every earlier write.
    Sync,
    /// Delete an empty container that has had children, or an expired TTL
    /// node, if that is still true when applied (the leader's reaper).
    Reap {
        /// Path.
        path: String,
    },
    /// Load part of a ZooKeeper data directory (see [`crate::import`]).
    Import(ImportChunk),
    /// A client's write, checked as `caller` when it applies: permissions,
    /// `auth` ACLs and quotas are decided in log order against the state
    /// the write meets, as ZooKeeper's leader decides them against its
    /// pending changes. (Last, so that logs written before it still read.)
    Checked {
        /// Who asked, and the switches of the server that took the request.
        caller: Caller,
        /// The write: one op, or a multi.
        txn: Box<Txn>,
    },
    /// A session's write for which the server that took it holds reads
    /// the session sent before it (`session::reads`): that server runs them
    /// just before applying `txn`; to every other server it is `txn`.
    /// (Last, so that logs written before it still read.)
    AfterReads {
        /// The proposing server's number for the write.
        seq: u64,
        /// The write.
        txn: Box<Txn>,
    },
}

/// The client behind a write, as the server that took the request knew it.
/// It travels with the write, so every server checks it alike whatever its
/// own zoo.cfg says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The identities the connection has proven (ip, digest, sasl, x509, super).
    pub ids: Vec<AuthId>,
    /// `skipACL=yes`: no permission is checked.
    pub skip_acl: bool,
    /// `enforceQuota=true`: hard quotas refuse writes.
    pub enforce_quota: bool,
    /// `letAnySaslUserDoX`: a `sasl` ACL id every SASL user holds.
    pub any_sasl_user: Option<String>,
}

/// One part of a ZooKeeper data directory's tree, as `Txn::Import` loads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportChunk {
    /// The first part: applied only to a tree with no znodes but the
    /// built-in ones and no import, so an import never mixes with other
    /// data (nor with another member's import).
    pub first: bool,
    /// Nodes with their stats as ZooKeeper kept them, parents first.
    pub nodes: Vec<(String, StoredNode<'static>)>,
    /// Sessions to restore (the last part: before its nodes, which hold
    /// their ephemerals).
    pub sessions: Vec<(i64, SessionInfo)>,
    /// In the last part: ZooKeeper's last zxid; this tree's go on in the
    /// epoch after it.
    pub last_zxid: Option<i64>,
}

impl Txn {
    /// The znode this transaction names, if one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Txn::Create(c) => Some(&c.path),
            Txn::Delete { path, .. }
            | Txn::SetData { path, .. }
            | Txn::SetAcl { path, .. }
            | Txn::Check { path, .. }
            | Txn::Reap { path } => Some(path),
            Txn::Checked { txn, .. } | Txn::AfterReads { txn, .. } => txn.path(),
            _ => None,
        }
    }

    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Txn::CreateSession { .. } => "createSession",
            Txn::CloseSession => "closeSession",
            Txn::ExpireSessions(_) => "expireSessions",
            Txn::Create(_) => "create",
            Txn::Delete { .. } => "delete",
            Txn::SetData { .. } => "setData",
            Txn::SetAcl { .. } => "setACL",
            Txn::Check { .. } => "check",
            Txn::Multi(_) => "multi",
            Txn::Sync => "sync",
            Txn::Reap { .. } => "reap",
            Txn::Import(_) => "import",
            Txn::Checked { txn, .. } | Txn::AfterReads { txn, .. } => txn.name(),
        }
    }

    /// The number under which reads are held for this write, if any
    /// (`Txn::AfterReads`).
    pub fn held_reads(&self) -> Option<u64> {
        match self {
            Txn::AfterReads { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// The result of applying one transaction (or one op of a multi).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    /// Nothing to report (blank and membership entries).
    Nothing,
    /// The op failed with this ZooKeeper error code (0 inside a failed multi
    /// for ops that would have succeeded).
    Error(i32),
    /// A session was opened.
    SessionCreated {
        /// The new session id.
        session_id: i64,
        /// Negotiated timeout, ms.
        timeout_ms: i32,
        /// Password.
        passwd: Vec<u8>,
    },
    /// The session was closed.
    SessionClosed,
    /// Sessions expired.
    Expired,
    /// A znode was created at this path.
    Created {
        /// Final path, with any sequential suffix.
        path: String,
        /// Its Stat.
        stat: jute::Stat,
    },
    /// A znode was deleted.
    Deleted,
    /// Data or ACL changed: the new Stat.
    Stat(jute::Stat),
    /// A check passed.
    Checked,
    /// A multi's per-op results.
    Multi(Vec<TxnOutcome>),
    /// The sync point was reached.
    Synced,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number bincode writes first for a transaction: its variant.
    fn variant(txn: &Txn) -> u32 {
        let bytes = bincode::serialize(txn).expect("a Txn encodes");
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    #[test]
    fn variants_keep_their_numbers_so_older_logs_still_read() {
        // The log stores each transaction under its variant's number: a new
        // variant goes last, never between, or a log written before it
        // decodes as something else.
        assert_eq!(variant(&Txn::CloseSession), 1);
        assert_eq!(variant(&Txn::Sync), 9);
        assert_eq!(variant(&Txn::Import(ImportChunk { first: true, nodes: vec![], sessions: vec![], last_zxid: None })), 11);
        assert_eq!(variant(&Txn::Checked { caller: Caller::default(), txn: Box::new(Txn::Sync) }), 12);
        assert_eq!(variant(&Txn::AfterReads { seq: 1, txn: Box::new(Txn::Sync) }), 13);
    }
}
