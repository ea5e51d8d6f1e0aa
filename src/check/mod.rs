//! Checkers over histories recorded under faults (pure logic, no I/O):
//!
//! - `linear`: linearizability of a register workload (Wing–Gong–Lowe search
//!   with memoization, per key);
//! - `lock`: lock safety from the fenced store's log and the lock clients'
//!   events;
//! - `acked`: no acknowledged create lost, sequential names never duplicated.

pub mod acked;
pub mod linear;
pub mod lock;

/// One thing a checker found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Which property (e.g. `linearizability`, `stale-token-accepted`).
    pub kind: &'static str,
    /// What exactly, for a human.
    pub detail: String,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}
