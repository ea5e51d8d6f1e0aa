//! In-memory register servers, correct and deliberately broken, driven by
//! the same register clients as a real ensemble: the proof that the
//! linearizability checker catches the bugs it is meant to catch.
//!
//! - `Correct`: one register behind a mutex.
//! - `StaleReads`: three replicas; a write is applied on the leader and
//!   reaches each follower a little later; reads go to any replica, `sync`
//!   does nothing (the "read served from a lagging follower" bug).
//! - `AckBeforeCommit`: a write is acknowledged as soon as the leader has it
//!   in memory; now and then the leader "crashes" and the writes not yet
//!   replicated are lost (the "reply before commit" bug).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::register::Backend;
use crate::check::linear::{RegResult, RegState};

/// Which server to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Linearizable.
    Correct,
    /// Reads from lagging replicas.
    StaleReads,
    /// Acknowledges writes before they are durable on a majority.
    AckBeforeCommit,
}

#[derive(Default)]
struct Replicas {
    /// Per replica (0 is the leader): key -> state.
    copies: [HashMap<String, RegState>; 3],
    /// Writes since the last replication (AckBeforeCommit).
    unreplicated: usize,
    ops: u64,
}

/// A simulated server; clone to share.
#[derive(Clone)]
pub struct Sim {
    behaviour: Behaviour,
    inner: Arc<Mutex<Replicas>>,
}

const INITIAL: RegState = RegState { value: 0, version: 0 };

impl Sim {
    /// A fresh server whose registers all start at value 0, version 0.
    pub fn new(behaviour: Behaviour) -> Sim {
        Sim { behaviour, inner: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Replicas> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn get(m: &HashMap<String, RegState>, key: &str) -> RegState {
    m.get(key).copied().unwrap_or(INITIAL)
}

/// A session on the simulated server: which replica it reads from.
pub struct SimConn {
    replica: usize,
}

impl Backend for Sim {
    type Conn = SimConn;

    async fn connect(&self, pick: usize) -> Option<SimConn> {
        Some(SimConn { replica: pick % 3 })
    }

    async fn read(&self, conn: &SimConn, key: &str) -> RegResult {
        tokio::time::sleep(Duration::from_micros(200)).await;
        let mut r = self.lock();
        r.ops += 1;
        let replica = if self.behaviour == Behaviour::StaleReads { conn.replica } else { 0 };
        if self.behaviour == Behaviour::StaleReads && r.ops.is_multiple_of(7) {
            // Replication catches up now and then.
            let (leader, which) = (r.copies[0].clone(), 1 + (r.ops as usize / 7) % 2);
            r.copies[which] = leader;
        }
        RegResult::Read(get(&r.copies[replica], key))
    }

    async fn write(&self, _conn: &SimConn, key: &str, value: u64, expect: i32) -> RegResult {
        tokio::time::sleep(Duration::from_micros(200)).await;
        let mut r = self.lock();
        r.ops += 1;
        let cur = get(&r.copies[0], key);
        if expect >= 0 && cur.version != expect {
            return RegResult::CasFailed;
        }
        let new = RegState { value, version: cur.version + 1 };
        r.copies[0].insert(key.to_string(), new);
        if self.behaviour == Behaviour::AckBeforeCommit {
            r.unreplicated += 1;
            if r.ops.is_multiple_of(5) {
                // The leader dies; a follower with the last replicated state takes over.
                let survivor = r.copies[1].clone();
                r.copies[0] = survivor;
                r.unreplicated = 0;
            } else if r.ops.is_multiple_of(3) {
                let leader = r.copies[0].clone();
                r.copies[1] = leader;
                r.unreplicated = 0;
            }
        }
        RegResult::Written(new.version)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::check::linear;
    use crate::fault::procs::now_us;
    use crate::fault::register::{self, Keys};

    async fn history(b: Behaviour) -> linear::Report {
        let stop = Arc::new(AtomicBool::new(false));
        let keys = Keys { prefix: "/r".into(), per_epoch: 2, epoch: Duration::from_millis(300), start_us: now_us() };
        let run = tokio::spawn(register::run(Sim::new(b), 4, keys, stop.clone(), 7));
        tokio::time::sleep(Duration::from_millis(900)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let h = run.await.expect("workload");
        linear::check(&h, INITIAL, 2_000_000)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checker_passes_a_correct_server_and_catches_broken_ones() {
        let ok = history(Behaviour::Correct).await;
        assert!(ok.ops > 100, "{ok:?}");
        assert!(ok.anomalies.is_empty() && ok.unknown_keys.is_empty(), "{ok:?}");
        let stale = history(Behaviour::StaleReads).await;
        assert!(!stale.anomalies.is_empty(), "stale reads not caught: {stale:?}");
        let early = history(Behaviour::AckBeforeCommit).await;
        assert!(!early.anomalies.is_empty(), "acknowledged-then-lost writes not caught: {early:?}");
        eprintln!("caught: {}\ncaught: {}", stale.anomalies[0], early.anomalies[0]);
    }
}
