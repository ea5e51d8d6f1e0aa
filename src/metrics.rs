//! Counters, kept in one place for the four-letter words (and later Prometheus).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// Request latencies, µs.
    pub latency: Latencies,
    /// Log fsyncs slower than `fsync.warningthresholdms`, counted by the log store.
    pub slow_syncs: Arc<SlowSyncs>,
}

/// Counts the log's fsyncs that take longer than a threshold, and warns of
/// each, as ZooKeeper's `fsync.warningthresholdms` (default 1000 ms) and
/// `zk_fsync_threshold_exceed_count`: an operator's first sign of a disk
/// too slow for the log.
pub struct SlowSyncs {
    /// Milliseconds; as in ZooKeeper a negative one counts every fsync.
    threshold_ms: AtomicI64,
    exceeded: AtomicU64,
}

impl Default for SlowSyncs {
    fn default() -> Self {
        SlowSyncs { threshold_ms: AtomicI64::new(1000), exceeded: AtomicU64::new(0) }
    }
}

impl SlowSyncs {
    /// Sets the threshold, in milliseconds.
    pub fn set_threshold_ms(&self, ms: i64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Records one fsync of the log that took `took`: counted, with a
    /// warning, if its whole milliseconds exceed the threshold.
    pub fn record(&self, took: Duration) {
        let ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        if ms > threshold {
            self.exceeded.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("fsync-ing the Raft log took {ms}ms, over fsync.warningthresholdms ({threshold}ms): every write waits for it");
        }
    }

    /// How many fsyncs exceeded the threshold.
    pub fn exceeded(&self) -> u64 {
        self.exceeded.load(Ordering::Relaxed)
    }
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

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// How many latencies were recorded, their sum, the smallest and the
/// largest, in the unit the caller records (the server's in µs, a
/// connection's in ms, as ZooKeeper shows each).
pub struct Latencies {
    count: AtomicU64,
    sum: AtomicU64,
    /// `u64::MAX` until the first latency.
    min: AtomicU64,
    max: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies { count: AtomicU64::new(0), sum: AtomicU64::new(0), min: AtomicU64::new(u64::MAX), max: AtomicU64::new(0) }
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&self, v: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
        // Read first: a new extreme is rare, and a read leaves a shared line shared.
        if v < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(v, Ordering::Relaxed);
        }
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// Forgets every latency recorded.
    pub fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.sum.store(0, Ordering::Relaxed);
        self.min.store(u64::MAX, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
    }

    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The smallest (0 before any).
    pub fn min(&self) -> u64 {
        match self.min.load(Ordering::Relaxed) {
            u64::MAX => 0,
            v => v,
        }
    }

    /// The largest (0 before any).
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The mean (0 before any).
    pub fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum.load(Ordering::Relaxed) as f64 / n as f64,
        }
    }

    /// The mean rounded down, as ZooKeeper's integer averages.
    pub fn mean_floor(&self) -> u64 {
        self.sum.load(Ordering::Relaxed).checked_div(self.count()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_their_smallest_and_largest() {
        let c = Counters::default();
        assert_eq!(c.latency.min(), 0);
        for us in [500, 200, 900] {
            c.latency.record(us);
        }
        assert_eq!(c.latency.min(), 200);
        assert_eq!(c.latency.max(), 900);
        assert_eq!(c.latency.count(), 3);
    }

    #[test]
    fn only_fsyncs_over_the_threshold_count() {
        let slow = SlowSyncs::default();
        slow.record(Duration::from_millis(1000));
        slow.record(Duration::from_micros(999_999));
        assert_eq!(slow.exceeded(), 0, "1000 ms is not over the default threshold");
        slow.record(Duration::from_millis(1001));
        assert_eq!(slow.exceeded(), 1);
        // As ZooKeeper compares whole milliseconds: 0 counts from 1 ms, -1 counts all.
        slow.set_threshold_ms(0);
        slow.record(Duration::from_micros(900));
        assert_eq!(slow.exceeded(), 1);
        slow.set_threshold_ms(-1);
        slow.record(Duration::from_micros(900));
        assert_eq!(slow.exceeded(), 2);
    }
}
