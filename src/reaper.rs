//! The leader's reaper: deletes containers whose last child went and TTL
//! nodes left unmodified past their TTL. The leader only proposes; each
//! `Reap` re-checks its condition when applied, at the time in the entry.

use std::sync::Arc;
use std::time::Duration;

use crate::server::{now_ms, Server};
use crate::tree::txn::Txn;

/// Runs until the Raft node shuts down.
pub async fn run(server: Arc<Server>) {
    let interval = Duration::from_millis(server.config.container_check_interval_ms);
    let mut metrics = server.raft.metrics();
    loop {
        tokio::time::sleep(interval).await;
        {
            let m = metrics.borrow_and_update();
            if m.running_state.is_err() {
                return;
            }
            if m.current_leader != Some(server.config.server_id) {
                continue;
            }
        }
        let candidates = server.shared.read_async().await.tree.reapable(now_ms());
        for path in candidates {
            if let Err(e) = server.write(0, Txn::Reap { path: path.clone() }).await {
                tracing::warn!(%path, "reap not committed: {e}");
                break;
            }
        }
    }
}
