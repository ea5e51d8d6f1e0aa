//! The records that travel through the Raft log and back to the proposer.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::tree::txn::{Txn, TxnOutcome};

openraft::declare_raft_types!(
    /// Type configuration of paddock's Raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle used throughout the server.
pub type Raft = openraft::Raft<TypeConfig>;

/// One log entry's payload: a transaction, stamped by the proposer.
///
/// Everything time-dependent is decided before the entry enters the log, so
/// that applying it is deterministic on every server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Session that issued the transaction (0 for server-initiated ones).
    pub session_id: i64,
    /// Wall-clock milliseconds at the leader when the entry was proposed.
    pub time_ms: i64,
    /// What to do.
    pub txn: Txn,
}

/// What applying one entry produced, returned to the proposer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The zxid of the entry (its log index).
    pub zxid: i64,
    /// The outcome of the transaction.
    pub outcome: TxnOutcome,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "session {:#x}: {}", self.session_id, self.txn.name())
    }
}
