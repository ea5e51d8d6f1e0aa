//! State shared between the Raft state machine and the client-facing side.

use std::ops::{Deref, DerefMut};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use openraft::{BasicNode, LogId, StoredMembership};
use tokio::sync::watch;

use crate::metrics::Counters;
use crate::raft::network::PeerHealth;
use crate::session::reads::HeldReads;
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
    /// Woken each time the state machine lets go of the write lock, for
    /// the readers waiting in [`Shared::read_async`].
    released: tokio::sync::Notify,
    /// Watches of this server's clients.
    pub watches: WatchManager,
    /// Reads the state machine runs before the writes that followed them.
    pub held_reads: HeldReads,
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
            released: tokio::sync::Notify::new(),
            watches: WatchManager::default(),
            held_reads: HeldReads::default(),
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

    /// Read access from a task: waits for the state machine's write lock
    /// without blocking the runtime thread, which other connections and
    /// Raft's heartbeats need meanwhile (an apply can hold the lock for
    /// milliseconds, a session closing with many ephemerals longer).
    pub async fn read_async(&self) -> RwLockReadGuard<'_, SmState> {
        loop {
            if let Some(guard) = self.try_read() {
                return guard;
            }
            // Registered before trying again, so a release in between is
            // not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(guard) = self.try_read() {
                return guard;
            }
            released.await;
        }
    }

    fn try_read(&self) -> Option<RwLockReadGuard<'_, SmState>> {
        match self.state.try_read() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Write access, for the state machine only.
    pub fn write(&self) -> WriteGuard<'_> {
        let guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        WriteGuard { guard: Some(guard), released: &self.released }
    }
}

/// The state machine's write access; waiting readers are woken when it is dropped.
pub struct WriteGuard<'a> {
    guard: Option<RwLockWriteGuard<'a, SmState>>,
    released: &'a tokio::sync::Notify,
}

impl Deref for WriteGuard<'_> {
    type Target = SmState;

    fn deref(&self) -> &SmState {
        // Only `drop` takes the guard out.
        self.guard.as_deref().unwrap_or_else(|| unreachable!("write guard used after release"))
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut SmState {
        self.guard.as_deref_mut().unwrap_or_else(|| unreachable!("write guard used after release"))
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Unlock first, then wake: woken readers find the lock free.
        drop(self.guard.take());
        self.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_reader_waits_for_the_writer_without_blocking_its_thread() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // One thread: a reader that blocked it would stop the writer too.
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let shared = Arc::new(Shared::new(SmState::default()));
                let mut writing = shared.write();
                let reader = tokio::spawn({
                    let shared = shared.clone();
                    async move { shared.read_async().await.tree.last_zxid() }
                });
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                let waited = !reader.is_finished();
                writing.tree.set_last_zxid(7);
                drop(writing);
                let seen = tokio::time::timeout(Duration::from_secs(5), reader).await;
                let _ = done.send((waited, seen.ok().and_then(Result::ok)));
            });
        });
        let (waited, seen) = finished.recv_timeout(Duration::from_secs(10)).expect("the waiting reader blocked the runtime's thread");
        assert!(waited, "the reader got in while the writer held the lock");
        assert_eq!(seen, Some(7), "the reader was not woken when the writer let go, or saw the state before the write");
    }
}
