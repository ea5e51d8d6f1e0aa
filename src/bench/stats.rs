//! Measurement: the run's time window, latency histograms, error counts,
//! live counters for the progress line, and CPU/memory samples from /proc.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use jute::ErrorCode;

/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every
/// architecture's user ABI.
const USER_HZ: f64 = 100.0;

/// The time line of a run: warm-up from `start`, measured from `measure_from`
/// until `end`; nothing new is started after `end`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// When load starts.
    pub start: Instant,
    /// When the measured part starts (end of warm-up).
    pub measure_from: Instant,
    /// When the measured part ends.
    pub end: Instant,
}

impl Window {
    /// A window starting now.
    pub fn starting_now(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now();
        Window { start, measure_from: start + warmup, end: start + warmup + duration }
    }

    /// A window without warm-up or end, for set-up and clean-up phases.
    pub fn unbounded() -> Window {
        let start = Instant::now();
        Window { start, measure_from: start, end: start + Duration::from_secs(365 * 24 * 3600) }
    }

    /// True while new requests may be started.
    pub fn open(&self, now: Instant) -> bool {
        now < self.end
    }

    /// True if an operation finishing at `t` counts.
    pub fn measures(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }
}

/// Counters shared by all sessions, read by the progress line.
#[derive(Default, Debug)]
pub struct Live {
    /// Operations completed (warm-up included).
    pub done: AtomicU64,
    /// Operations failed.
    pub failed: AtomicU64,
}

/// One session's (or, merged, the run's) measurements.
pub struct Recorder {
    /// Latency of successful measured operations, microseconds.
    pub hist: Histogram<u64>,
    /// Successful operations completed inside the measured window.
    pub ops: u64,
    /// Failures by name (server error codes, "connection lost", "timeout"),
    /// counted over the whole run.
    pub errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder (latencies from 1 µs to 10 min, 3 significant digits).
    pub fn new() -> Recorder {
        // Constant, valid bounds: this cannot fail.
        let hist = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Recorder { hist, ops: 0, errors: BTreeMap::new() }
    }

    /// Records a success that started at `t0` and finished at `t1`.
    pub fn success(&mut self, window: &Window, live: &Live, t0: Instant, t1: Instant) {
        self.success_at(window, live, t1, t1.saturating_duration_since(t0));
    }

    /// Records a success observed at `at` with the given latency; it counts
    /// if `at` falls inside the measured window.
    pub fn success_at(&mut self, window: &Window, live: &Live, at: Instant, latency: Duration) {
        live.done.fetch_add(1, Ordering::Relaxed);
        self.sample(window, at, latency);
    }

    /// Records a latency observed at `at` if that falls inside the window,
    /// without counting it on the progress line.
    pub fn sample(&mut self, window: &Window, at: Instant, latency: Duration) {
        if window.measures(at) {
            self.ops += 1;
            self.hist.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }

    /// Records a failure named after a ZooKeeper error code.
    pub fn server_error(&mut self, live: &Live, code: i32) {
        let name = ErrorCode::from_i32(code).map_or_else(|| format!("error {code}"), |c| c.name().to_string());
        self.failure(live, &name);
    }

    /// Records a failure by name.
    pub fn failure(&mut self, live: &Live, what: &str) {
        live.failed.fetch_add(1, Ordering::Relaxed);
        *self.errors.entry(what.to_string()).or_default() += 1;
    }

    /// Adds another recorder's figures to this one.
    pub fn merge(&mut self, other: Recorder) {
        let _ = self.hist.add(&other.hist);
        self.ops += other.ops;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    /// Total failures.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// CPU time and resident memory of a process at one instant.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    /// When sampled.
    pub at: Instant,
    /// User + system CPU time of all threads, microseconds.
    pub cpu_us: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

impl ProcSample {
    /// Samples process `pid` ("self" for this one), or the sum over
    /// comma-separated pids (an ensemble); `None` if one is gone or /proc is
    /// unreadable.
    pub fn take(pids: &str) -> Option<ProcSample> {
        let mut sum = ProcSample { at: Instant::now(), cpu_us: 0, rss_bytes: 0 };
        for pid in pids.split(',').map(str::trim) {
            let one = Self::take_one(pid)?;
            sum.cpu_us += one.cpu_us;
            sum.rss_bytes += one.rss_bytes;
        }
        Some(sum)
    }

    fn take_one(pid: &str) -> Option<ProcSample> {
        let at = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may contain spaces and parentheses: fields are
        // counted after the last ')'. utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let cpu_us = ((utime + stime) as f64 * 1e6 / USER_HZ) as u64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib: u64 =
            status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok())?;
        Some(ProcSample { at, cpu_us, rss_bytes: rss_kib * 1024 })
    }
}

/// CPU cost over an interval, from two samples.
#[derive(Clone, Copy, Debug)]
pub struct CpuUse {
    /// CPU microseconds spent.
    pub cpu_us: u64,
    /// Wall-clock microseconds elapsed.
    pub wall_us: u64,
    /// Resident memory at the end, bytes.
    pub rss_bytes: u64,
}

impl CpuUse {
    /// The use between `before` and `after`.
    pub fn between(before: ProcSample, after: ProcSample) -> CpuUse {
        CpuUse {
            cpu_us: after.cpu_us.saturating_sub(before.cpu_us),
            wall_us: u64::try_from(after.at.saturating_duration_since(before.at).as_micros()).unwrap_or(u64::MAX),
            rss_bytes: after.rss_bytes,
        }
    }

    /// CPU microseconds per operation.
    pub fn per_op(&self, ops: u64) -> Option<f64> {
        (ops > 0).then(|| self.cpu_us as f64 / ops as f64)
    }

    /// Average CPU use in percent of one core.
    pub fn percent(&self) -> f64 {
        if self.wall_us == 0 {
            0.0
        } else {
            100.0 * self.cpu_us as f64 / self.wall_us as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_can_be_sampled() {
        let s = ProcSample::take("self").expect("/proc/self readable");
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn only_the_window_counts() {
        let w = Window::starting_now(Duration::from_secs(1), Duration::from_secs(1));
        let live = Live::default();
        let mut r = Recorder::new();
        r.success(&w, &live, w.start, w.start);
        r.success(&w, &live, w.start, w.measure_from + Duration::from_millis(5));
        r.success(&w, &live, w.start, w.end);
        assert_eq!((r.ops, live.done.load(Ordering::Relaxed)), (1, 3));
        r.server_error(&live, -101);
        assert_eq!(r.errors.get("NONODE"), Some(&1));
    }
}
