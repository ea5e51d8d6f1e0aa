//! Counters, kept in one place for the four-letter words (and later Prometheus).

use std::sync::atomic::{AtomicU64, Ordering};

/// Server-wide counters.
#[derive(Default)]
pub struct Counters {
    /// Packets received from clients.
    pub packets_received: AtomicU64,
    /// Packets sent to clients.
    pub packets_sent: AtomicU64,
    /// Connections currently open.
    pub connections: AtomicU64,
    /// Requests read but not yet answered.
    pub outstanding: AtomicU64,
    /// Sum of request latencies, µs.
    pub latency_sum_us: AtomicU64,
    /// Number of latencies summed.
    pub latency_count: AtomicU64,
    /// Largest latency, µs.
    pub latency_max_us: AtomicU64,
    /// `u64::MAX` minus the smallest latency, µs, so that the default 0
    /// stands for none yet (see [`Counters::min_latency_us`]).
    pub latency_min_inv_us: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub fn incr(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one from a counter.
    pub fn decr(c: &AtomicU64) {
        c.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records one request's latency.
    pub fn latency(&self, us: u64) {
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
        // Read first: a new minimum is rare, and a read leaves the line shared.
        let inv = u64::MAX - us;
        if inv > self.latency_min_inv_us.load(Ordering::Relaxed) {
            self.latency_min_inv_us.fetch_max(inv, Ordering::Relaxed);
        }
    }

    /// The smallest latency recorded, µs (0 before any).
    pub fn min_latency_us(&self) -> u64 {
        match self.latency_min_inv_us.load(Ordering::Relaxed) {
            0 => 0,
            inv => u64::MAX - inv,
        }
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_their_smallest_and_largest() {
        let c = Counters::default();
        assert_eq!(c.min_latency_us(), 0);
        for us in [500, 200, 900] {
            c.latency(us);
        }
        assert_eq!(c.min_latency_us(), 200);
        assert_eq!(Counters::get(&c.latency_max_us), 900);
        assert_eq!(Counters::get(&c.latency_count), 3);
    }
}
