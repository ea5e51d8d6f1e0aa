//! When to snapshot: after `snapCount` transactions, as ZooKeeper does.
//!
//! openraft's own policy counts log entries, but one entry carries a whole
//! batch of transactions (see `batcher`), so under load it would let the log
//! grow by up to a thousand times snapCount transactions between snapshots.
//! The state machine counts applied transactions instead and wakes this task
//! when there are enough; building the snapshot purges the log it covers
//! (keeping `Config::log_keep` entries) and restarts the count.
//!
//! As in ZooKeeper, each snapshot comes after a random count between
//! snapCount/2 and snapCount, so the members of an ensemble (which apply the
//! same transactions) do not all build their snapshots at the same moment.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::server::Server;

/// Longest wait between looks at the count, in case a request was ignored
/// because a snapshot was already being built.
const RECHECK: Duration = Duration::from_secs(1);

/// The next snapshot's transaction count: in [snapCount/2, snapCount].
fn next_mark(snap_count: u64) -> u64 {
    let half = snap_count / 2;
    half + rand::random::<u64>() % (snap_count - half + 1)
}

/// Triggers a snapshot whenever the due number of transactions has been
/// applied since the last one; runs until Raft shuts down.
pub async fn run(server: Arc<Server>) {
    let shared = &server.shared;
    shared.snapshot_at.store(next_mark(server.config.snap_count), Ordering::Relaxed);
    loop {
        let _ = tokio::time::timeout(RECHECK, shared.snapshot_due.notified()).await;
        if shared.txns_since_snapshot.load(Ordering::Relaxed) < shared.snapshot_at.load(Ordering::Relaxed) {
            continue;
        }
        shared.snapshot_at.store(next_mark(server.config.snap_count), Ordering::Relaxed);
        if let Err(e) = server.raft.trigger().snapshot().await {
            tracing::debug!("snapshot not triggered: {e}");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_fall_between_half_and_all_of_snap_count() {
        for _ in 0..1000 {
            let m = super::next_mark(100);
            assert!((50..=100).contains(&m), "{m}");
        }
        let marks: std::collections::BTreeSet<u64> = (0..1000).map(|_| super::next_mark(10)).collect();
        assert_eq!(marks, (5..=10).collect(), "every count in range comes up");
    }
}
