//! The records that travel through the Raft log and back to the proposer.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::tree::txn::{Txn, TxnOutcome};

openraft::declare_raft_types!(
    /// Type configuration of paddock's Raft group.
    pub TypeConfig:
        D = Request,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle used throughout the server.
pub type Raft = openraft::Raft<TypeConfig>;

/// One transaction as a server proposes it, before the leader batches it
/// into a log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    /// Session that issued the transaction (0 for server-initiated ones).
    pub session_id: i64,
    /// What to do.
    pub txn: Txn,
}

/// One log entry's payload: a batch of transactions, stamped by the leader.
///
/// Everything time-dependent is decided before the entry enters the log, so
/// that applying it is deterministic on every server. Batching many
/// transactions into one entry is what makes writes cheap: Raft's per-entry
/// work (append, replicate, commit, apply, respond) is paid once per batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Wall-clock milliseconds at the leader when the batch was proposed.
    pub time_ms: i64,
    /// The transactions, applied in this order, each with its own zxid.
    /// Shared, so the copies openraft and the log store make are cheap.
    pub proposals: std::sync::Arc<[Proposal]>,
    /// The proposing leader's number for this batch, known only in its
    /// process: never serialised, so 0 in entries received or read back.
    /// The log store reports it once durable (see [`super::batcher::Settled`]).
    #[serde(skip)]
    pub batch: u64,
}

/// What applying one transaction produced, returned to its proposer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The transaction's zxid: one more than the previous transaction's.
    pub zxid: i64,
    /// The outcome of the transaction.
    pub outcome: TxnOutcome,
}

/// What applying one log entry produced: a response per proposal, in order
/// (none for entries without transactions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied(pub Vec<Response>);

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch of {} transactions", self.proposals.len())
    }
}
