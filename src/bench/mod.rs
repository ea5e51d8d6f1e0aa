//! `paddock bench`: a load generator for any ZooKeeper-protocol server, in
//! the spirit of ClickHouse's keeper-bench.
//!
//! `--sessions` sessions each keep `--depth` requests outstanding for
//! `--warmup` + `--duration` seconds; only operations finishing in the
//! measured window count. Latency goes into an HDR histogram; with
//! `--server-pid` the server's CPU time and resident memory are read from
//! /proc. Every run works under its own root znode, `/bench-<pid>-<workload>`,
//! and deletes it afterwards.
//!
//! Layout: `workloads` (set-up and the load of each workload), `pipeline`
//! (the pipelined session driver, bulk create and delete), `recipes` (watch
//! fan-out and the lock), `requests` (encoded bodies), `stats`
//! (histograms, /proc samples), `progress`, `report`.

mod pipeline;
pub mod plot;
mod progress;
pub(crate) mod recipes;
mod report;
mod requests;
mod stats;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use jute::CreateMode;

use crate::client::{Client, ClientError};
pub use report::Report;
use stats::Live;
use workloads::Params;

/// The load to generate.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Unique persistent znodes.
    Create,
    /// setData on random keys of a pre-created set.
    Set,
    /// getData on random keys of a pre-created set.
    Get,
    /// 90% get, 10% set on a pre-created set.
    Mixed,
    /// Ephemeral sequential znodes under one parent (the lock's hot path).
    CreateSeqEphemeral,
    /// Three-op transactions: create, setData and delete one znode.
    Multi,
    /// One writer, every other session re-arming a one-shot data watch;
    /// latency is from the write's reply to each event.
    Watch,
    /// Full acquire/release cycles of the sequential-ephemeral lock recipe.
    Lock,
    /// Create `--keys` znodes and report the server's RSS growth per znode
    /// (needs `--server-pid`).
    Memory,
}

impl Workload {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::CreateSeqEphemeral => "create-seq-ephemeral",
            Workload::Multi => "multi",
            Workload::Watch => "watch",
            Workload::Lock => "lock",
            Workload::Memory => "memory",
        }
    }

    /// What one counted operation is.
    fn unit(self) -> &'static str {
        match self {
            Workload::Create | Workload::CreateSeqEphemeral | Workload::Memory => "creates",
            Workload::Set => "sets",
            Workload::Get => "gets",
            Workload::Mixed => "ops",
            Workload::Multi => "txns",
            Workload::Watch => "events",
            Workload::Lock => "cycles",
        }
    }
}

/// Command-line arguments of `paddock bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Server to load, host:port; several comma-separated (an ensemble) get the sessions round-robin.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    /// The workload.
    #[arg(long, value_enum, default_value = "create")]
    pub workload: Workload,
    /// Number of sessions (connections).
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Outstanding requests per session (watch and lock run one at a time).
    #[arg(long, default_value_t = 32)]
    pub depth: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys pre-created for set/get/mixed; znodes created by memory.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// The server's process id, or the ensemble's ids comma-separated:
    /// report their CPU per operation and RSS (summed).
    #[arg(long)]
    pub server_pid: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A label for the report (e.g. the server's name).
    #[arg(long)]
    pub label: Option<String>,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Session timeout asked for, milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout: i32,
}

/// Runs the benchmark: prints the table on stdout (and writes the JSON);
/// fails if the run could not be made or any operation failed.
pub fn main(args: BenchArgs) -> ExitCode {
    if let Err(e) = validate(&args) {
        eprintln!("paddock bench: {e}");
        return ExitCode::from(2);
    }
    // Each session is a socket: a shell's soft limit (often 1,024) would
    // cap --sessions well below what the hard limit allows.
    if let Err(e) = crate::open_files::raise() {
        eprintln!("paddock bench: cannot read the open files limit: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paddock bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paddock bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|s| std::fs::write(path, s + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("paddock bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let failed = !report.errors.is_empty() || report.ops == 0 || report.lock_violations.unwrap_or(0) > 0;
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn validate(args: &BenchArgs) -> Result<(), String> {
    if args.sessions == 0 || args.depth == 0 {
        return Err("--sessions and --depth must be at least 1".into());
    }
    if args.workload == Workload::Watch && args.sessions < 2 {
        return Err("the watch workload needs at least 2 sessions (one writer, watchers)".into());
    }
    if !(args.duration > 0.0 && args.duration.is_finite() && args.warmup >= 0.0 && args.warmup.is_finite()) {
        return Err("--duration must be positive and --warmup not negative".into());
    }
    if args.workload == Workload::Memory && args.server_pid.is_none() {
        return Err("the memory workload needs --server-pid".into());
    }
    Ok(())
}

/// Connects, sets up the run's root, runs the workload, cleans up.
async fn run(args: &BenchArgs) -> Result<Report, String> {
    let workload = args.workload;
    let root = format!("/bench-{}-{}", std::process::id(), workload.name());
    let clients =
        connect(&args.server, args.sessions, args.session_timeout).await.map_err(|e| format!("connecting to {}: {e}", args.server))?;
    let first = &clients[0];
    // A leftover from an earlier run with the same pid goes first.
    pipeline::delete_tree(&clients, &root, args.depth).await.map_err(|e| format!("clearing {root}: {e}"))?;
    first.create(&root, b"", CreateMode::Persistent).await.map_err(|e| format!("creating {root}: {e}"))?;

    let params = Params {
        workload,
        depth: args.depth,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        value: Bytes::from(vec![b'x'; args.value_size]),
        keys: args.keys,
        server_pid: args.server_pid.clone(),
        label: format!("{}{}", workload.name(), args.label.as_deref().map(|l| format!(" @ {l}")).unwrap_or_default()),
    };
    let live = Arc::new(Live::default());
    let outcome = workloads::run(&params, &clients, &root, live).await;

    // Clean up whatever happened: close the sessions (their ephemerals go
    // with them), then delete the root from a few fresh ones.
    join_all(clients.into_iter().map(|c| async move {
        if let Ok(c) = Arc::try_unwrap(c) {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
    }))
    .await;
    let cleaners =
        connect(&args.server, args.sessions.min(4), args.session_timeout).await.map_err(|e| format!("reconnecting for clean-up: {e}"))?;
    let cleaned = pipeline::delete_tree(&cleaners, &root, 64).await;
    for c in cleaners {
        if let Ok(c) = Arc::try_unwrap(c) {
            let _ = c.close().await;
        }
    }
    let outcome = outcome?;
    cleaned.map_err(|e| format!("deleting {root}: {e}"))?;
    Ok(Report::new(args, workload.unit(), &outcome))
}

/// Opens `n` sessions concurrently.
/// Opens `n` sessions, spread round-robin over the comma-separated servers.
async fn connect(servers: &str, n: usize, timeout_ms: i32) -> Result<Vec<Arc<Client>>, ClientError> {
    let mut servers: Vec<&str> = servers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if servers.is_empty() {
        // An empty list: let the connect attempt report the bad address.
        servers.push("");
    }
    let sessions = join_all((0..n).map(|i| Client::connect(servers[i % servers.len()], timeout_ms))).await;
    sessions.into_iter().map(|r| r.map(Arc::new)).collect()
}
