//! Failing over sooner when the leader's process is gone, not just quiet.
//!
//! A follower calls an election once it has heard nothing from the leader
//! for the leader lease plus an election timeout (openraft 0.9): 1.2-1.6 s
//! at tickTime=2000, because silence alone cannot tell a dead leader from a
//! slow one, and the other members refuse votes until the lease is out.
//! ZooKeeper's followers notice instead that the leader's connection closed.
//!
//! Here the same sign is used, and checked: when the connection a leader
//! replicated over closes and its peer port then refuses a connection, no
//! process listens there. One follower, the lowest id among the voters
//! left, then calls an election as soon as the others' lease on the old
//! leader has run out (the longest election timeout after the last append,
//! plus a heartbeat of margin) rather than waiting its own random timeout
//! on top. Only that one does it, so the survivors do not split their
//! votes; if its election fails, the ordinary timers take over. A leader
//! that is merely slow, or partitioned (its port does not refuse), is left
//! to the timers as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::server::Server;

/// Notes, on a connection peers replicate over, which leader appended last
/// and when; when the connection ends, for whatever reason, checks whether
/// that leader is gone.
pub struct LeaderWatch {
    server: Arc<Server>,
    heard: Option<(u64, Instant)>,
}

impl LeaderWatch {
    /// A watch for one peer connection.
    pub fn new(server: Arc<Server>) -> Self {
        LeaderWatch { server, heard: None }
    }

    /// An append from `leader` (a committed vote's leader) arrived now.
    pub fn appended(&mut self, leader: u64) {
        self.heard = Some((leader, Instant::now()));
    }
}

impl Drop for LeaderWatch {
    fn drop(&mut self) {
        if let Some((leader, last)) = self.heard.take() {
            let server = self.server.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(elect_if_gone(server, leader, last));
            }
        }
    }
}

/// After the connection `leader` appended over (last at `last`) closed:
/// probes its peer port until the others' lease runs out and, if it
/// refused and no new leader is known by then, calls an election from the
/// lowest-id remaining voter.
async fn elect_if_gone(server: Arc<Server>, leader: u64, last: Instant) {
    let me = server.config.server_id;
    let (heartbeat, _, election_max) = server.config.raft_timing();
    let m = server.raft.metrics().borrow().clone();
    if m.current_leader != Some(leader) || leader == me {
        return;
    }
    let membership = m.membership_config.membership();
    if membership.voter_ids().filter(|id| *id != leader).min() != Some(me) {
        return;
    }
    let Some(addr) = server
        .config
        .peers
        .get(&leader)
        .map(|p| p.peer_addr())
        .or_else(|| membership.get_node(&leader).map(|n| n.addr.clone()))
    else {
        return;
    };
    let deadline = last + Duration::from_millis(election_max + heartbeat);
    let mut gone = false;
    while !gone && Instant::now() < deadline {
        gone = refused(&addr, Duration::from_millis(heartbeat)).await;
        if !gone {
            tokio::time::sleep(Duration::from_millis(heartbeat)).await;
        }
    }
    if !gone {
        return;
    }
    tokio::time::sleep_until(deadline.into()).await;
    let now = server.raft.metrics().borrow().clone();
    if now.current_leader == Some(leader) && now.vote == m.vote {
        tracing::info!(leader, "the leader's peer port refuses connections: calling an election now");
        let _ = server.raft.trigger().elect().await;
    }
}

/// True if nothing listens at `addr` (the connection was refused).
async fn refused(addr: &str, within: Duration) -> bool {
    match tokio::time::timeout(within, TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}
