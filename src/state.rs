//! State shared between the Raft state machine and the client-facing side.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::{BasicNode, LogId, StoredMembership};
use tokio::sync::watch;

use crate::metrics::Counters;
use crate::raft::network::PeerHealth;
use crate::session::SessionTracker;
use crate::tree::DataTree;
use crate::watch::WatchManager;

/// The applied state: the tree plus what Raft needs to know about it.
#[derive(Debug, Default)]
pub struct SmState {
    /// The znode tree and session table.
    pub tree: DataTree,
    /// The last log id applied to `tree`.
    pub last_applied: Option<LogId<u64>>,
    /// The last membership applied.
    pub membership: StoredMembership<u64, BasicNode>,
}

/// Everything the state machine and the connections both touch.
pub struct Shared {
    state: RwLock<SmState>,
    /// Watches of this server's clients.
    pub watches: WatchManager,
    /// Liveness and connection ownership of sessions.
    pub sessions: SessionTracker,
    /// Counters for the four-letter words.
    pub counters: Counters,
    /// The zxid applied last, for waiters (read-your-writes across servers, connect).
    pub applied: watch::Sender<i64>,
    /// When each peer last answered this server's Raft RPCs.
    pub peers: std::sync::Arc<PeerHealth>,
    /// Transactions applied since the last snapshot was built or installed
    /// (see `raft::snapshots`).
    pub txns_since_snapshot: std::sync::atomic::AtomicU64,
    /// Woken when `txns_since_snapshot` reaches `snapshot_at`.
    pub snapshot_due: tokio::sync::Notify,
    /// Transactions after which the next snapshot is due (set by `raft::snapshots`).
    pub snapshot_at: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Wraps a loaded state.
    pub fn new(state: SmState) -> Self {
        let zxid = state.tree.last_zxid();
        Shared {
            state: RwLock::new(state),
            watches: WatchManager::default(),
            sessions: SessionTracker::default(),
            counters: Counters::default(),
            applied: watch::channel(zxid).0,
            peers: Default::default(),
            txns_since_snapshot: Default::default(),
            snapshot_due: Default::default(),
            snapshot_at: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    /// Read access to the applied state.
    pub fn read(&self) -> RwLockReadGuard<'_, SmState> {
        // Apply never panics half-way through a mutation it cannot undo; a
        // poisoned lock still holds a consistent tree.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access, for the state machine only.
    pub fn write(&self) -> RwLockWriteGuard<'_, SmState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}
