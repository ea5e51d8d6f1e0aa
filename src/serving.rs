//! Whether this server may serve clients, decided continuously.
//!
//! A server serves once it knows a confirmed leader and has applied its whole
//! local log. It stops serving, as a ZooKeeper server that loses its quorum
//! does, when it has been out of touch for longer than `grace`: a follower
//! that knows no leader, or a leader that no quorum has acknowledged. Its
//! clients are then disconnected and move to a server that can serve them,
//! and `srvr` stops calling it a leader. Without this, a leader cut off from
//! its followers keeps answering reads from a state that the majority has
//! moved past, and keeps saying `Mode: leader`, because openraft 0.9 does not
//! step a leader down without a quorum.
//!
//! The grace is for silence, which cannot tell a slow peer from a dead one,
//! and it carries clients through an election. A server that knows no
//! quorum can answer it (the peers that would make one refused its last dial:
//! no process listens there) stops at once instead, as a ZooKeeper server
//! does when its leader's or its followers' connections close. Its clients
//! then see the disconnection at once, not syncLimit ticks later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::RaftMetrics;
use tokio::sync::watch;

use crate::raft::network::PeerHealth;
use crate::raft::{Raft, TypeConfig};

type Metrics = RaftMetrics<<TypeConfig as openraft::RaftTypeConfig>::NodeId, <TypeConfig as openraft::RaftTypeConfig>::Node>;

/// Timings of the serving decision.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    /// A leader is in touch while a quorum acknowledged it within this long.
    pub quorum_ack: Duration,
    /// Out of touch for this long stops serving.
    pub grace: Duration,
    /// How often the decision is re-taken when nothing else happens.
    pub poll: Duration,
}

impl Lease {
    /// The timings for a configuration: a leader is in touch while a quorum
    /// acknowledged it within the longest election timeout (after that a
    /// new leader may exist elsewhere), and a server out of touch for
    /// syncLimit ticks (at least a second) stops serving, as in ZooKeeper.
    pub fn from_config(config: &crate::config::Config) -> Lease {
        let (heartbeat, _, election_max) = config.raft_timing();
        Lease {
            quorum_ack: Duration::from_millis(election_max),
            grace: Duration::from_millis((config.sync_limit * config.tick_time_ms).max(1_000)),
            poll: Duration::from_millis(heartbeat),
        }
    }
}

/// What the monitor tracks between two looks at the metrics.
struct Tracker {
    /// When a quorum last acknowledged this server as leader (local clock).
    acked_at: Option<Instant>,
    /// Since when this server has been out of touch.
    out_since: Option<Instant>,
    /// Whether the initial catch-up is done (serving may start).
    started: bool,
}

impl Tracker {
    /// Folds in a metrics report seen at `now`; returns whether to serve.
    /// `quorum_possible`: enough voters may still be up to make a quorum.
    fn observe(&mut self, m: &Metrics, lease: &Lease, now: Instant, fresh: bool, quorum_possible: bool) -> bool {
        let voters = m.membership_config.membership().voter_ids().count();
        let leading = m.current_leader == Some(m.id);
        if leading && fresh {
            // Only a new report carries a new age; an old one just ages.
            if let Some(ms) = m.millis_since_quorum_ack {
                let at = now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
                self.acked_at = Some(self.acked_at.map_or(at, |a| a.max(at)));
            }
        }
        if !leading {
            self.acked_at = None;
        }
        let in_touch = match m.current_leader {
            None => false,
            Some(_) if leading && voters > 1 => self.acked_at.is_some_and(|a| now.duration_since(a) < lease.quorum_ack),
            Some(_) => true,
        };
        if !self.started {
            self.started = in_touch && m.last_applied.map(|l| l.index) >= m.last_log_index;
            return self.started;
        }
        if in_touch {
            self.out_since = None;
            return true;
        }
        let since = *self.out_since.get_or_insert(now);
        quorum_possible && now.duration_since(since) < lease.grace
    }
}

/// Clears the leader a follower names but has not heard from since this
/// process started (`appended` says whether it has). openraft names the
/// leader of a persisted committed vote at once after a restart, before that
/// leader, which may be gone, has reached this server: serving on that
/// alone would take clients in on the word of a leader nobody has heard.
fn forget_unheard_leader(m: &mut Metrics, appended: impl Fn(u64) -> bool) {
    if let Some(leader) = m.current_leader {
        if leader != m.id && !appended(leader) {
            m.current_leader = None;
        }
    }
}

/// Whether the voters that may still be up make a quorum: this server
/// (`me`) and every other voter but those whose port `refuses` connections.
pub fn quorum_possible(me: u64, voters: impl Iterator<Item = u64>, refuses: impl Fn(u64) -> bool) -> bool {
    let (mut up, mut all) = (0, 0);
    for voter in voters {
        all += 1;
        if voter == me || !refuses(voter) {
            up += 1;
        }
    }
    2 * up > all
}

/// Watches Raft (and which peers refuse connections, in `peers`) and
/// publishes the decision on `tx` until Raft stops.
pub async fn run(raft: Raft, lease: Lease, peers: Arc<PeerHealth>, tx: watch::Sender<bool>) {
    let mut metrics = raft.metrics();
    let mut tracker = Tracker { acked_at: None, out_since: None, started: false };
    loop {
        let fresh = tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                true
            }
            _ = tokio::time::sleep(lease.poll) => false,
        };
        let mut m = metrics.borrow_and_update().clone();
        forget_unheard_leader(&mut m, |leader| peers.last_append(leader).is_some());
        if m.running_state.is_err() {
            let _ = tx.send(false);
            return;
        }
        let possible = quorum_possible(m.id, m.membership_config.membership().voter_ids(), |p| peers.refuses(p));
        let serve = tracker.observe(&m, &lease, Instant::now(), fresh, possible);
        if *tx.borrow() != serve {
            if serve {
                tracing::info!("serving clients");
            } else if !possible {
                tracing::warn!(leader = ?m.current_leader, "too many voters refuse connections for a quorum: not serving clients");
            } else {
                tracing::warn!(leader = ?m.current_leader, "out of touch with a quorum: not serving clients");
            }
            let _ = tx.send(serve);
        }
    }
}

/// Starts the monitor; the receiver says whether to serve.
pub fn start(raft: Raft, lease: Lease, peers: Arc<PeerHealth>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(run(raft, lease, peers, tx));
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{BasicNode, LogId, Membership, StoredMembership, Vote};
    use std::collections::{BTreeMap, BTreeSet};

    fn metrics(id: u64, leader: Option<u64>, voters: &[u64], ack_ms: Option<u64>, applied: u64, last: u64) -> Metrics {
        let nodes: BTreeMap<u64, BasicNode> = voters.iter().map(|v| (*v, BasicNode::new(format!("n{v}")))).collect();
        let set: BTreeSet<u64> = voters.iter().copied().collect();
        let membership = Membership::new(vec![set], nodes);
        let mut m = Metrics::new_initial(id);
        m.current_leader = leader;
        m.millis_since_quorum_ack = ack_ms;
        m.membership_config = Arc::new(StoredMembership::new(None, membership));
        m.last_log_index = Some(last);
        m.last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), applied));
        m.vote = Vote::new_committed(1, leader.unwrap_or(id));
        m
    }

    const LEASE: Lease =
        Lease { quorum_ack: Duration::from_millis(800), grace: Duration::from_millis(1000), poll: Duration::from_millis(100) };

    #[test]
    fn starts_only_when_caught_up_under_a_confirmed_leader() {
        let t0 = Instant::now();
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        assert!(!t.observe(&metrics(2, Some(1), &[1, 2, 3], None, 5, 9), &LEASE, t0, true, true), "log not applied yet");
        assert!(!t.observe(&metrics(2, None, &[1, 2, 3], None, 9, 9), &LEASE, t0, true, true), "no leader");
        assert!(t.observe(&metrics(2, Some(1), &[1, 2, 3], None, 9, 9), &LEASE, t0, true, true));
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        assert!(!t.observe(&metrics(1, Some(1), &[1, 2, 3], None, 9, 9), &LEASE, t0, true, true), "leader not yet acknowledged");
        assert!(t.observe(&metrics(1, Some(1), &[1, 2, 3], Some(10), 9, 9), &LEASE, t0, true, true));
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        assert!(t.observe(&metrics(1, Some(1), &[1], None, 9, 9), &LEASE, t0, true, true), "a lone voter needs no quorum ack");
    }

    #[test]
    fn a_leader_without_quorum_acks_stops_serving_after_the_grace() {
        let t0 = Instant::now();
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        let m = metrics(1, Some(1), &[1, 2, 3], Some(0), 9, 9);
        assert!(t.observe(&m, &LEASE, t0, true, true));
        // No new report: the last acknowledgement only ages.
        assert!(t.observe(&m, &LEASE, t0 + Duration::from_millis(700), false, true));
        assert!(t.observe(&m, &LEASE, t0 + Duration::from_millis(900), false, true), "out of touch, within the grace");
        assert!(!t.observe(&m, &LEASE, t0 + Duration::from_millis(1_950), false, true), "grace over");
        // A quorum acknowledges it again.
        assert!(t.observe(&m, &LEASE, t0 + Duration::from_millis(2_000), true, true));
    }

    #[test]
    fn a_follower_without_a_leader_stops_serving_after_the_grace() {
        let t0 = Instant::now();
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        assert!(t.observe(&metrics(2, Some(1), &[1, 2, 3], None, 9, 9), &LEASE, t0, true, true));
        let lost = metrics(2, None, &[1, 2, 3], None, 9, 9);
        assert!(t.observe(&lost, &LEASE, t0 + Duration::from_millis(100), true, true), "an election is under way");
        assert!(!t.observe(&lost, &LEASE, t0 + Duration::from_millis(1_200), false, true));
        assert!(t.observe(&metrics(2, Some(3), &[1, 2, 3], None, 9, 9), &LEASE, t0 + Duration::from_millis(1_300), true, true));
    }

    #[test]
    fn with_too_many_voters_refusing_connections_it_stops_at_once() {
        let t0 = Instant::now();
        // A follower whose leader went silent, and more voters refuse than a quorum allows.
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        assert!(t.observe(&metrics(2, Some(1), &[1, 2, 3], None, 9, 9), &LEASE, t0, true, true));
        let lost = metrics(2, None, &[1, 2, 3], None, 9, 9);
        assert!(!t.observe(&lost, &LEASE, t0 + Duration::from_millis(100), true, false), "no grace");
        // A leader whose quorum acks lapsed.
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        let m = metrics(1, Some(1), &[1, 2, 3], Some(0), 9, 9);
        assert!(t.observe(&m, &LEASE, t0, true, false), "still acknowledged: refusals alone do not stop it");
        assert!(!t.observe(&m, &LEASE, t0 + Duration::from_millis(900), false, false));
        assert!(t.observe(&m, &LEASE, t0 + Duration::from_millis(1_000), true, true), "acknowledged again");
    }

    #[test]
    fn a_restarted_follower_serves_only_once_its_leader_reached_it() {
        let t0 = Instant::now();
        let mut t = Tracker { acked_at: None, out_since: None, started: false };
        let mut m = metrics(2, Some(1), &[1, 2, 3], None, 9, 9);
        forget_unheard_leader(&mut m, |_| false);
        assert!(!t.observe(&m, &LEASE, t0, true, true), "the leader of the persisted vote has not appended yet");
        let mut m = metrics(2, Some(1), &[1, 2, 3], None, 9, 9);
        forget_unheard_leader(&mut m, |leader| leader == 1);
        assert!(t.observe(&m, &LEASE, t0, true, true));
        // A leader names itself; it needs quorum acks, not appends.
        let mut m = metrics(1, Some(1), &[1], None, 9, 9);
        forget_unheard_leader(&mut m, |_| false);
        assert_eq!(m.current_leader, Some(1));
    }

    #[test]
    fn a_quorum_is_possible_while_enough_voters_do_not_refuse() {
        let refusing = |down: &'static [u64]| move |p: u64| down.contains(&p);
        assert!(quorum_possible(1, [1, 2, 3].into_iter(), refusing(&[2])));
        assert!(!quorum_possible(1, [1, 2, 3].into_iter(), refusing(&[2, 3])));
        assert!(!quorum_possible(1, [1, 2].into_iter(), refusing(&[2])), "two voters need both");
        assert!(quorum_possible(1, [1].into_iter(), refusing(&[])));
        assert!(quorum_possible(3, [1, 2, 3, 4, 5].into_iter(), refusing(&[1, 2])));
        assert!(!quorum_possible(3, [1, 2, 3, 4, 5].into_iter(), refusing(&[1, 2, 4])));
        // This server's own id never counts against it.
        assert!(quorum_possible(1, [1, 2, 3].into_iter(), refusing(&[1, 2])));
    }
}
