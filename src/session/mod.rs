//! Sessions: local liveness tracking, the connection that currently serves
//! each session, and the leader's expiry loop.

pub mod expiry;
pub mod reads;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::watch::ConnId;

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
        }
    }

    /// The session ended: close its connection and forget it.
    pub fn ended(&self, session_id: i64) {
        let mut t = self.lock();
        t.deadlines.remove(&session_id);
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
