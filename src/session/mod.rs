//! Sessions: local liveness tracking, the connection that currently serves
//! each session, where the leader knows its client to be, and the leader's
//! expiry loop.

pub mod expiry;
pub mod reads;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::watch::ConnId;

/// Where this server's own client connections write from, in the terms of
/// [`SessionTracker::may_write`]; a member's link to the leader is numbered
/// from 1.
pub const HERE: u64 = 0;

/// Per-session liveness as seen by this server: the deadline by which the
/// client must be heard from again.
#[derive(Default)]
pub struct SessionTracker {
    inner: Mutex<Tracker>,
}

#[derive(Default)]
struct Tracker {
    deadlines: HashMap<i64, Instant>,
    touched: std::collections::HashSet<i64>,
    owners: HashMap<i64, (ConnId, CancellationToken)>,
    /// On the leader: through where (this server, or a member's link) each
    /// session's client last attached; see `may_write`.
    claims: HashMap<i64, u64>,
    /// On the leader: the links whose members say where their clients
    /// attach (builds from before that do not).
    claiming: std::collections::HashSet<u64>,
}

impl SessionTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client was heard from: its session lives at least `timeout` more.
    pub fn touch(&self, session_id: i64, timeout: Duration) {
        let mut t = self.lock();
        t.deadlines.insert(session_id, Instant::now() + timeout);
        t.touched.insert(session_id);
    }

    /// Sessions touched since the last call (a follower reports them to the leader).
    pub fn take_touched(&self) -> Vec<i64> {
        self.lock().touched.drain().collect()
    }

    /// Sessions whose deadline passed; sessions not seen yet get a fresh
    /// `timeout_of` deadline (so a new leader gives every session a full timeout).
    pub fn expired(&self, now: Instant, sessions: impl Iterator<Item = (i64, Duration)>) -> Vec<i64> {
        let mut t = self.lock();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, timeout) in sessions {
            let deadline = *t.deadlines.entry(id).or_insert(now + timeout);
            seen.insert(id);
            if deadline <= now {
                out.push(id);
            }
        }
        t.deadlines.retain(|id, _| seen.contains(id));
        out
    }

    /// How long from now each session known here has until its deadline
    /// (zero once passed), for `dump`.
    pub fn remaining(&self) -> Vec<(i64, Duration)> {
        let now = Instant::now();
        self.lock().deadlines.iter().map(|(id, at)| (*id, at.saturating_duration_since(now))).collect()
    }

    /// Forgets every deadline: called when this server becomes leader.
    pub fn reset(&self) {
        self.lock().deadlines.clear();
    }

    /// Records that `conn` now serves `session_id`, closing any older connection of it.
    pub fn attach(&self, session_id: i64, conn: ConnId, closer: CancellationToken) {
        if let Some((_, old)) = self.lock().owners.insert(session_id, (conn, closer)) {
            old.cancel();
        }
    }

    /// Forgets `conn` as the server of `session_id` (if it still is).
    pub fn detach(&self, session_id: i64, conn: ConnId) {
        let mut t = self.lock();
        if t.owners.get(&session_id).is_some_and(|(c, _)| *c == conn) {
            t.owners.remove(&session_id);
            if t.claims.get(&session_id) == Some(&HERE) {
                t.claims.remove(&session_id);
            }
        }
    }

    /// The sessions with a connection to this server.
    pub fn attached(&self) -> Vec<i64> {
        self.lock().owners.keys().copied().collect()
    }

    /// On the leader: the clients of `sessions` attached at the member whose
    /// link is `origin` (it said so before sending any write of theirs).
    pub fn claim(&self, sessions: &[i64], origin: u64) {
        let mut t = self.lock();
        t.claiming.insert(origin);
        for id in sessions {
            t.claims.insert(*id, origin);
        }
    }

    /// On the leader: whether a write of `session_id` that came through
    /// `origin` may enter the log. Not if its client has attached elsewhere
    /// since: the write comes from a connection the client left, and could
    /// land after writes it sent later (ZooKeeper refuses it as
    /// SessionMoved). A session attached nowhere known (after an election,
    /// or its link closed) is claimed by the first write, and so is one
    /// written through a member that never says where its clients attach
    /// (an older build, during a rolling upgrade): refusing those would
    /// refuse every write of a client that moved there.
    pub fn may_write(&self, session_id: i64, origin: u64) -> bool {
        if session_id == 0 {
            return true;
        }
        let mut t = self.lock();
        let says = origin == HERE || t.claiming.contains(&origin);
        match t.claims.get(&session_id) {
            Some(claimed) if *claimed == origin => true,
            Some(_) if says => false,
            _ => {
                t.claims.insert(session_id, origin);
                true
            }
        }
    }

    /// On the leader: the link numbered `origin` closed, so the sessions
    /// attached through it are attached nowhere known.
    pub fn release(&self, origin: u64) {
        let mut t = self.lock();
        t.claiming.remove(&origin);
        t.claims.retain(|_, o| *o != origin);
    }

    /// The session ended: close its connection and forget it.
    pub fn ended(&self, session_id: i64) {
        let mut t = self.lock();
        t.deadlines.remove(&session_id);
        t.claims.remove(&session_id);
        if let Some((_, closer)) = t.owners.remove(&session_id) {
            closer.cancel();
        }
    }

    /// Number of sessions with a live connection here.
    pub fn connected(&self) -> usize {
        self.lock().owners.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_from_where_the_client_left_is_refused() {
        let t = SessionTracker::default();
        // Attached here, then at the member whose link is 7.
        t.attach(5, 1, CancellationToken::new());
        assert!(t.may_write(5, HERE));
        t.claim(&[5], 7);
        assert!(!t.may_write(5, HERE), "the connection it left");
        assert!(t.may_write(5, 7));
        // Its old connection here closing does not undo the move.
        t.detach(5, 1);
        assert!(!t.may_write(5, HERE));
        // The link closes: the next write, from anywhere, claims it.
        t.release(7);
        assert!(t.may_write(5, 9));
        // A member that never says where its clients attach (an older
        // build) takes the session over with a write; one that does
        // cannot.
        t.claim(&[], 9);
        assert!(t.may_write(5, 9) && t.may_write(5, 11) && !t.may_write(5, 9));
        // Server-initiated writes belong to no session.
        assert!(t.may_write(0, 3));
        t.ended(5);
        assert!(t.may_write(5, 2));
    }

    #[test]
    fn unseen_sessions_get_a_full_timeout_then_expire() {
        let t = SessionTracker::default();
        let now = Instant::now();
        let s = [(7, Duration::from_secs(4))];
        assert!(t.expired(now, s.into_iter()).is_empty());
        assert!(t.expired(now + Duration::from_secs(3), s.into_iter()).is_empty());
        assert_eq!(t.expired(now + Duration::from_secs(5), s.into_iter()), vec![7]);
        t.reset();
        assert!(t.expired(now + Duration::from_secs(5), s.into_iter()).is_empty());
    }

    #[test]
    fn attaching_a_new_connection_closes_the_old_one() {
        let t = SessionTracker::default();
        let first = CancellationToken::new();
        t.attach(1, 10, first.clone());
        t.attach(1, 11, CancellationToken::new());
        assert!(first.is_cancelled());
        t.detach(1, 10);
        assert_eq!(t.connected(), 1);
    }
}
