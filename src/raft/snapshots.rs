//! When to snapshot: after `snapCount` transactions, as ZooKeeper does.
//!
//! openraft's own policy counts log entries, but one entry carries a whole
//! batch of transactions (see `batcher`), so under load it would let the log
//! grow by up to a thousand times snapCount transactions between snapshots.
//! The state machine counts applied transactions instead and wakes this task
//! when there are enough; building the snapshot purges the log it covers
//! (keeping `Config::log_keep` entries) and restarts the count.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::server::Server;

/// Longest wait between looks at the count, in case a request was ignored
/// because a snapshot was already being built.
const RECHECK: Duration = Duration::from_secs(1);

/// Triggers a snapshot whenever `snapCount` transactions have been applied
/// since the last one; runs until Raft shuts down.
pub async fn run(server: Arc<Server>) {
    loop {
        let _ = tokio::time::timeout(RECHECK, server.shared.snapshot_due.notified()).await;
        if server.shared.txns_since_snapshot.load(Ordering::Relaxed) < server.config.snap_count {
            continue;
        }
        if let Err(e) = server.raft.trigger().snapshot().await {
            tracing::debug!("snapshot not triggered: {e}");
            return;
        }
    }
}
