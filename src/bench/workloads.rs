//! Each workload's set-up, load and measurement window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use jute::CreateMode;

use super::pipeline::{drive, fill};
use super::progress::Progress;
use super::recipes;
use super::requests::{self, Request, Rng};
use super::stats::{CpuUse, Live, ProcSample, Recorder, Window};
use super::Workload;
use crate::client::Client;

/// The parameters every workload reads.
pub struct Params {
    /// Which workload.
    pub workload: Workload,
    /// Requests outstanding per session (pipelined workloads).
    pub depth: usize,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
    /// The value written by creates and sets.
    pub value: Bytes,
    /// Size of the pre-created key set (or znodes to create, for memory).
    pub keys: u64,
    /// The server process to sample, if known.
    pub server_pid: Option<String>,
    /// Label for the progress line.
    pub label: String,
}

/// Resident memory before and after filling the server with znodes.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Memory {
    /// Znodes created.
    pub znodes: u64,
    /// RSS of the server before, bytes.
    pub rss_idle_bytes: u64,
    /// RSS of the server after, bytes.
    pub rss_after_bytes: u64,
    /// (after - before) / znodes.
    pub bytes_per_znode: f64,
}

/// What one workload run produced.
pub struct Outcome {
    /// Latencies, operation and failure counts.
    pub rec: Recorder,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Server CPU and memory over the window, if its pid was given.
    pub server: Option<CpuUse>,
    /// This process's CPU over the window.
    pub client: Option<CpuUse>,
    /// The memory workload's figures.
    pub memory: Option<Memory>,
    /// Lock workload: mutual-exclusion violations seen.
    pub violations: Option<u64>,
    /// Watch workload: writes made in the window.
    pub writes: Option<u64>,
    /// Watch workload: event latency from the write's sending.
    pub from_send: Option<Recorder>,
}

/// A session's request generator.
type Generator = Box<dyn FnMut() -> Option<Request> + Send>;

/// Runs `params.workload` with `clients` under `root` (which exists and is
/// empty); clean-up is the caller's.
pub async fn run(params: &Params, clients: &[Arc<Client>], root: &str, live: Arc<Live>) -> Result<Outcome, String> {
    let value = params.value.clone();
    match params.workload {
        Workload::Memory => return memory(params, clients, root, live).await,
        Workload::Set | Workload::Get | Workload::Mixed => {
            let rec = fill(clients, root, params.keys, &value, params.depth, &live).await;
            if rec.failures() > 0 {
                return Err(format!("pre-creating {} keys failed: {:?}", params.keys, rec.errors));
            }
            // The keys were created through every session's server: a
            // follower may not have applied another server's creates yet
            // (as on ZooKeeper, where one client's write is not promised
            // to another client on another server without a sync).
            for synced in join_all(clients.iter().map(|c| c.sync(root))).await {
                synced.map_err(|e| format!("set-up: sync: {e}"))?;
            }
        }
        Workload::Watch => {
            clients[0].create(&format!("{root}/w"), &value, CreateMode::Persistent).await.map_err(|e| format!("set-up: {e}"))?;
        }
        Workload::Lock => {
            clients[0].create(&format!("{root}/lock"), b"", CreateMode::Persistent).await.map_err(|e| format!("set-up: {e}"))?;
        }
        _ => {}
    }

    let window = Window::starting_now(params.warmup, params.duration);
    let sampler = tokio::spawn(sample_window(window, params.server_pid.clone()));
    let progress = Progress::start(params.label.clone(), window, live.clone());
    let mut outcome = Outcome {
        rec: Recorder::new(),
        elapsed: params.duration,
        server: None,
        client: None,
        memory: None,
        violations: None,
        writes: None,
        from_send: None,
    };
    match params.workload {
        Workload::Watch => {
            let w = recipes::watch(clients, &format!("{root}/w"), value, window, live.clone()).await;
            (outcome.rec, outcome.writes, outcome.from_send) = (w.rec, Some(w.writes), Some(w.from_send));
        }
        Workload::Lock => {
            let l = recipes::lock(clients, &format!("{root}/lock"), window, live.clone()).await;
            (outcome.rec, outcome.violations) = (l.rec, Some(l.violations));
        }
        w => {
            let keys = params.keys.max(1);
            let make = |s: usize| generator(w, s, root.to_string(), value.clone(), keys);
            outcome.rec = pipelined(clients, params.depth, window, &live, make).await;
        }
    }
    drop(progress);
    (outcome.server, outcome.client) = sampler.await.unwrap_or((None, None));
    Ok(outcome)
}

/// The request stream of session `s` for a pipelined workload.
fn generator(w: Workload, s: usize, root: String, value: Bytes, keys: u64) -> Generator {
    let mut i = 0u64;
    let mut rng = Rng::new(s as u64 + 1);
    match w {
        Workload::Create => Box::new(move || {
            i += 1;
            Some(requests::create(&format!("{root}/n{s}-{i}"), &value, 0))
        }),
        Workload::CreateSeqEphemeral => {
            let prefix = format!("{root}/q-");
            Box::new(move || Some(requests::create(&prefix, &value, CreateMode::EphemeralSequential.flags())))
        }
        Workload::Multi => Box::new(move || {
            i += 1;
            Some(requests::multi_create_set_delete(&format!("{root}/m{s}-{i}"), &value))
        }),
        Workload::Set => Box::new(move || Some(requests::set_data(&format!("{root}/k{}", rng.below(keys)), &value))),
        Workload::Get => Box::new(move || Some(requests::get_data(&format!("{root}/k{}", rng.below(keys))))),
        _ => Box::new(move || {
            let key = format!("{root}/k{}", rng.below(keys));
            Some(if rng.below(10) == 0 { requests::set_data(&key, &value) } else { requests::get_data(&key) })
        }),
    }
}

/// Runs one pipelined session per client, each on its own task.
async fn pipelined(clients: &[Arc<Client>], depth: usize, window: Window, live: &Arc<Live>, make: impl Fn(usize) -> Generator) -> Recorder {
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(s, c)| {
            let (client, live, gen) = (c.clone(), live.clone(), make(s));
            tokio::spawn(async move { drive(&client, depth, &window, &live, gen).await })
        })
        .collect();
    let mut rec = Recorder::new();
    for t in tasks {
        match t.await {
            Ok(r) => rec.merge(r),
            Err(_) => rec.failure(live, "session task failed"),
        }
    }
    rec
}

/// Samples the server and this process at the start and end of the
/// measured window.
async fn sample_window(window: Window, pid: Option<String>) -> (Option<CpuUse>, Option<CpuUse>) {
    tokio::time::sleep_until(window.measure_from.into()).await;
    let server0 = pid.as_deref().and_then(ProcSample::take);
    let client0 = ProcSample::take("self");
    tokio::time::sleep_until(window.end.into()).await;
    let server1 = pid.as_deref().and_then(ProcSample::take);
    let client1 = ProcSample::take("self");
    let between = |a: Option<ProcSample>, b: Option<ProcSample>| Some(CpuUse::between(a?, b?));
    (between(server0, server1), between(client0, client1))
}

/// Creates `keys` znodes of the value size and reports the server's RSS
/// growth per znode (the creates' throughput and latency come along).
async fn memory(params: &Params, clients: &[Arc<Client>], root: &str, live: Arc<Live>) -> Result<Outcome, String> {
    let pid = params.server_pid.clone().ok_or("the memory workload needs --server-pid")?;
    let idle = ProcSample::take(&pid).ok_or_else(|| format!("cannot read /proc/{pid}"))?;
    let start = Instant::now();
    let window = Window { start, measure_from: start, end: start + Duration::from_secs(24 * 3600) };
    let progress = Progress::start(params.label.clone(), window, live.clone());
    let client0 = ProcSample::take("self");
    let rec = fill(clients, root, params.keys, &params.value, params.depth, &live).await;
    let elapsed = start.elapsed();
    let (server1, client1) = (ProcSample::take(&pid), ProcSample::take("self"));
    drop(progress);
    if rec.failures() > 0 {
        return Err(format!("creating {} znodes failed: {:?}", params.keys, rec.errors));
    }
    // Let the server settle (background flushes, lazily freed buffers).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = ProcSample::take(&pid).ok_or_else(|| format!("cannot read /proc/{pid}: the server exited"))?;
    let memory = Memory {
        znodes: params.keys,
        rss_idle_bytes: idle.rss_bytes,
        rss_after_bytes: after.rss_bytes,
        bytes_per_znode: (after.rss_bytes as f64 - idle.rss_bytes as f64) / params.keys.max(1) as f64,
    };
    let between = |a: Option<ProcSample>, b: Option<ProcSample>| Some(CpuUse::between(a?, b?));
    Ok(Outcome {
        rec,
        elapsed,
        server: between(Some(idle), server1),
        client: between(client0, client1),
        memory: Some(memory),
        violations: None,
        writes: None,
        from_send: None,
    })
}
