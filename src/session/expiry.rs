//! The leader's session expiry loop: sessions not heard from within their
//! timeout are ended by a replicated transaction, decided by this clock only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::Server;
use crate::tree::txn::Txn;

/// Runs until the Raft node shuts down.
pub async fn run(server: Arc<Server>) {
    let tick = Duration::from_millis((server.config.tick_time_ms / 2).clamp(50, 1000));
    let mut metrics = server.raft.metrics();
    let mut was_leader = false;
    loop {
        tokio::time::sleep(tick).await;
        let leader = {
            let m = metrics.borrow_and_update();
            if m.running_state.is_err() {
                return;
            }
            // A leader that does not serve (out of touch with a quorum) is
            // one ZooKeeper would have stepped down: it expires nothing, and
            // once back in touch it starts its sessions afresh, as a newly
            // elected one does, so its clients, kept away while no quorum
            // could form, find their sessions still there.
            m.current_leader == Some(server.config.server_id) && *server.serving.borrow()
        };
        if !leader {
            was_leader = false;
            // Followers report their clients' liveness to the leader's clock.
            if let Some((id, addr)) = server.remote_leader() {
                let touched = server.shared.sessions.take_touched();
                if !touched.is_empty() {
                    if let Err(e) = server.forwarder.touch(id, &addr, touched).await {
                        tracing::debug!("cannot report session liveness: {e}");
                    }
                }
            }
            continue;
        }
        if !was_leader {
            // A new leader (or one serving again) gives every session a fresh, full timeout.
            server.shared.sessions.reset();
            was_leader = true;
        }
        let sessions: Vec<(i64, Duration)> = {
            let state = server.shared.read_async().await;
            state.tree.sessions().iter().map(|(id, s)| (*id, Duration::from_millis(s.timeout_ms.max(0) as u64))).collect()
        };
        let expired = server.shared.sessions.expired(Instant::now(), sessions.into_iter());
        if expired.is_empty() {
            continue;
        }
        log_expiry(&expired);
        if let Err(e) = server.write(0, Txn::ExpireSessions(expired)).await {
            tracing::warn!("session expiry not committed: {e}");
        }
    }
}

/// Names the sessions being expired: a few at info (a storm of thousands
/// would make one line of tens of kilobytes), every one at debug.
fn log_expiry(expired: &[i64]) {
    const SHOWN: usize = 8;
    let mut names: Vec<String> = expired.iter().take(SHOWN).map(|id| format!("0x{id:x}")).collect();
    if expired.len() > SHOWN {
        names.push(format!("and {} more", expired.len() - SHOWN));
    }
    tracing::info!(count = expired.len(), "expiring sessions {}", names.join(", "));
    tracing::debug!("expiring sessions {:x?}", expired);
}
