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
//! process listens there. As soon as the others' lease on the old leader
//! has run out (the longest election timeout after the last append, plus a
//! heartbeat of margin), the survivors compare their last log entries (no
//! leader appends any more, so they hold still) and the one that would win,
//! the longest log and then the lowest id, calls the election at once
//! rather than all waiting their random timeouts on top. Only that one
//! calls, so the survivors do not split their votes, and it is one the
//! others vote for. If a survivor does not answer, or the election fails,
//! the ordinary timers take over. A leader that is merely slow, or
//! partitioned (its port does not refuse), is left to the timers as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::LogId;
use tokio::net::TcpStream;

use super::wire::{PeerRequest, PeerResponse};

use crate::server::Server;

/// Notes which leader appended last on a connection peers replicate over
/// (when, across connections, `PeerHealth` keeps); when the connection
/// ends, for whatever reason, checks whether that leader is gone.
pub struct LeaderWatch {
    server: Arc<Server>,
    leader: Option<u64>,
}

impl LeaderWatch {
    /// A watch for one peer connection.
    pub fn new(server: Arc<Server>) -> Self {
        LeaderWatch { server, leader: None }
    }

    /// An append from `leader` (a committed vote's leader) arrived now.
    pub fn appended(&mut self, leader: u64) {
        self.leader = Some(leader);
        self.server.shared.peers.appended(leader, Instant::now());
    }
}

impl Drop for LeaderWatch {
    fn drop(&mut self) {
        let Some(leader) = self.leader.take() else { return };
        let Some(last) = self.server.shared.peers.last_append(leader) else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(elect_if_gone(self.server.clone(), leader, last));
        }
    }
}

/// After a connection `leader` appended over closed, its last append to
/// this member having come at `last`:
/// probes its peer port until the others' lease runs out and, if it
/// refused and no new leader is known by then, calls an election if this
/// member is the survivor the others would elect.
async fn elect_if_gone(server: Arc<Server>, leader: u64, last: Instant) {
    let me = server.config.server_id;
    let (heartbeat, election_min, election_max) = server.config.raft_timing();
    let m = server.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    if m.current_leader != Some(leader) || leader == me || !membership.voter_ids().any(|id| id == me) {
        return;
    }
    let addr_of =
        |id: u64| server.config.peers.get(&id).map(|p| p.peer_addr()).or_else(|| membership.get_node(&id).map(|n| n.addr.clone()));
    let Some(leader_addr) = addr_of(leader) else { return };
    let deadline = last + Duration::from_millis(election_max + heartbeat);
    let mut gone = false;
    while !gone && Instant::now() < deadline {
        gone = refused(&leader_addr, Duration::from_millis(heartbeat)).await;
        if !gone {
            tokio::time::sleep(Duration::from_millis(heartbeat)).await;
        }
    }
    if !gone {
        return;
    }
    tokio::time::sleep_until(deadline.into()).await;
    let mine = server.raft.data_metrics().borrow().last_log;
    let mut others = Vec::new();
    for id in membership.voter_ids().filter(|id| *id != me && *id != leader) {
        let Some(addr) = addr_of(id) else { return };
        // Until about when the others' own timers run out; a dial with
        // quorum SASL may first reach a KDC.
        let within = Duration::from_millis(election_min);
        match super::peer_server::ask(&server.links, &addr, &PeerRequest::LastLog, within).await {
            Some(PeerResponse::LastLog(theirs)) => others.push((id, theirs)),
            _ => return,
        }
    }
    if !first_in_line((me, mine), &others) {
        return;
    }
    // A leader that appended since, over another connection, is not gone
    // (this member may know it under an address it does not listen on).
    let heard_since = server.shared.peers.last_append(leader).is_some_and(|t| t > last);
    let now = server.raft.metrics().borrow().clone();
    if !heard_since && now.current_leader == Some(leader) && now.vote == m.vote {
        tracing::info!(leader, "the leader's peer port refuses connections: calling an election now");
        let _ = server.raft.trigger().elect().await;
    }
}

/// Whether `me` (id, last log id) is the survivor the others would elect
/// first: a voter grants only a candidate whose log is at least as long as
/// its own, so the longest log goes first, and the lowest id among equals.
fn first_in_line(me: (u64, Option<LogId<u64>>), others: &[(u64, Option<LogId<u64>>)]) -> bool {
    others.iter().all(|&(id, log)| me.1 > log || (me.1 == log && me.0 < id))
}

/// True if nothing listens at `addr` (the connection was refused).
async fn refused(addr: &str, within: Duration) -> bool {
    match tokio::time::timeout(within, TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;

    fn log(term: u64, index: u64) -> Option<LogId<u64>> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    #[test]
    fn the_longest_log_goes_first_then_the_lowest_id() {
        // Equal logs: the lowest id.
        assert!(first_in_line((2, log(3, 10)), &[(3, log(3, 10))]));
        assert!(!first_in_line((3, log(3, 10)), &[(2, log(3, 10))]));
        // A longer log goes first whatever the ids.
        assert!(first_in_line((3, log(3, 11)), &[(2, log(3, 10))]));
        assert!(!first_in_line((2, log(3, 10)), &[(3, log(3, 11))]));
        // A later term beats a longer log of an earlier one, as in a vote.
        assert!(first_in_line((3, log(4, 5)), &[(2, log(3, 10))]));
        // An empty log never goes first against a member with entries.
        assert!(!first_in_line((1, None), &[(2, log(1, 0))]));
        // Exactly one of several is first.
        let members = [(2, log(3, 10)), (3, log(3, 12)), (4, log(3, 12)), (5, log(3, 11))];
        let first: Vec<u64> = members
            .iter()
            .filter(|m| first_in_line(**m, &members.iter().filter(|o| o.0 != m.0).copied().collect::<Vec<_>>()))
            .map(|m| m.0)
            .collect();
        assert_eq!(first, vec![3]);
    }
}
