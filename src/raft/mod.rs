//! Consensus: openraft's type configuration, the RocksDB log store, the state
//! machine that applies ZooKeeper transactions, and the peer network.
//!
//! A single `paddock` is a one-voter Raft cluster: there is exactly one write
//! path, through the log, whatever the cluster size.

pub mod batcher;
#[cfg(test)]
mod conformance;
pub mod durable_mark;
pub mod formats;
pub mod forward;
pub mod leader_gone;
pub mod link;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod peer_server;
pub mod quorum_auth;
pub mod read_index;
pub mod snapshots;
pub mod state_machine;
pub mod types;
pub mod wire;
pub mod write_budget;

pub use types::{Applied, Proposal, Raft, Request, Response, TypeConfig};

/// On the leader: the index up to which member `id`'s log matches its own,
/// as its replication last reported (None: nothing yet, or not the leader).
pub fn matched_index(m: &openraft::RaftMetrics<u64, openraft::BasicNode>, id: u64) -> Option<u64> {
    m.replication.as_ref()?.get(&id).copied().flatten().map(|log| log.index)
}
