//! The result of a run: a table for people, JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::workloads::{Memory, Outcome};
use super::BenchArgs;

/// Latency percentiles, milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest seen.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Everything one run measured; serialised as the `--json` file.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// What one operation is (creates, txns, events, cycles...).
    pub unit: String,
    /// Server address.
    pub server: String,
    /// Free-form label (e.g. "paddock", "zookeeper").
    pub label: Option<String>,
    /// Sessions.
    pub sessions: usize,
    /// Outstanding requests per session.
    pub depth: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Key set size (znodes created, for memory).
    pub keys: u64,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Operations completed successfully in the window.
    pub ops: u64,
    /// Operations per second.
    pub throughput: f64,
    /// Latency of those operations.
    pub latency_ms: Latency,
    /// Failures by kind, over the whole run.
    pub errors: BTreeMap<String, u64>,
    /// Server CPU per operation, microseconds.
    pub server_cpu_us_per_op: Option<f64>,
    /// Server CPU use in percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// Server resident memory at the end of the window, bytes.
    pub server_rss_bytes: Option<u64>,
    /// This load generator's CPU per operation, microseconds.
    pub client_cpu_us_per_op: Option<f64>,
    /// This load generator's CPU use in percent of one core.
    pub client_cpu_percent: Option<f64>,
    /// Memory workload: RSS growth per znode.
    pub memory: Option<Memory>,
    /// Lock workload: mutual-exclusion violations (must be 0).
    pub lock_violations: Option<u64>,
    /// Watch workload: writes in the window (each fires sessions-1 events).
    pub writes: Option<u64>,
    /// Watch workload: event latency counted from the write's sending
    /// (`latency_ms` counts from its reply).
    pub watch_from_write_ms: Option<Latency>,
    /// When the run ended, seconds since the Unix epoch.
    pub unix_time: u64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds.
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        let pct = |q: f64| if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(q)) };
        Latency {
            p50: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
            p999: pct(0.999),
            max: if h.is_empty() { 0.0 } else { ms(h.max()) },
            mean: h.mean() / 1000.0,
        }
    }
}

impl Report {
    /// Builds the report of a run.
    pub fn new(args: &BenchArgs, unit: &str, outcome: &Outcome) -> Report {
        let secs = outcome.elapsed.as_secs_f64();
        let ops = outcome.rec.ops;
        Report {
            workload: args.workload.name().to_string(),
            unit: unit.to_string(),
            server: args.server.clone(),
            label: args.label.clone(),
            sessions: args.sessions,
            depth: args.depth,
            value_size: args.value_size,
            keys: args.keys,
            warmup_s: args.warmup,
            duration_s: secs,
            ops,
            throughput: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            latency_ms: Latency::of(&outcome.rec.hist),
            errors: outcome.rec.errors.clone(),
            server_cpu_us_per_op: outcome.server.and_then(|c| c.per_op(ops)),
            server_cpu_percent: outcome.server.map(|c| c.percent()),
            server_rss_bytes: outcome.server.map(|c| c.rss_bytes),
            client_cpu_us_per_op: outcome.client.and_then(|c| c.per_op(ops)),
            client_cpu_percent: outcome.client.map(|c| c.percent()),
            memory: outcome.memory,
            lock_violations: outcome.violations,
            writes: outcome.writes,
            watch_from_write_ms: outcome.from_send.as_ref().map(|r| Latency::of(&r.hist)),
            unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }

    /// The run as a two-column table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let label = self.label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        rows.push(("workload".into(), format!("{} on {}{label}", self.workload, self.server)));
        rows.push((
            "load".into(),
            format!(
                "{} sessions x {} outstanding, {}-byte values, {} keys, {:.1} s after {:.1} s warm-up",
                self.sessions, self.depth, self.value_size, self.keys, self.duration_s, self.warmup_s
            ),
        ));
        rows.push(("throughput".into(), format!("{:.0} {}/s ({} in {:.1} s)", self.throughput, self.unit, self.ops, self.duration_s)));
        let l = &self.latency_ms;
        rows.push((
            "latency ms".into(),
            format!("p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}", l.p50, l.p90, l.p99, l.p999, l.max),
        ));
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        rows.push(("errors".into(), errors));
        if let Some(cpu) = self.server_cpu_us_per_op {
            rows.push(("server CPU".into(), format!("{cpu:.1} µs/op ({:.0}% of a core)", self.server_cpu_percent.unwrap_or(0.0))));
        }
        if let Some(rss) = self.server_rss_bytes {
            rows.push(("server RSS".into(), format!("{:.1} MiB", rss as f64 / 1048576.0)));
        }
        if let Some(cpu) = self.client_cpu_us_per_op {
            rows.push(("client CPU".into(), format!("{cpu:.1} µs/op ({:.0}% of a core)", self.client_cpu_percent.unwrap_or(0.0))));
        }
        if let Some(m) = &self.memory {
            rows.push((
                "memory".into(),
                format!(
                    "{:.1} MiB idle -> {:.1} MiB after {} znodes: {:.0} bytes/znode",
                    m.rss_idle_bytes as f64 / 1048576.0,
                    m.rss_after_bytes as f64 / 1048576.0,
                    m.znodes,
                    m.bytes_per_znode
                ),
            ));
        }
        if let Some(w) = self.writes {
            rows.push(("writes".into(), format!("{w} (each fires {} events)", self.sessions.saturating_sub(1))));
        }
        if let Some(l) = &self.watch_from_write_ms {
            rows.push((
                "from write ms".into(),
                format!("p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}", l.p50, l.p90, l.p99, l.p999, l.max),
            ));
        }
        if let Some(v) = self.lock_violations {
            rows.push(("exclusion".into(), if v == 0 { "never violated".into() } else { format!("VIOLATED {v} times") }));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}
