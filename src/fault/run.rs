//! One fault run: a 3-node ensemble behind link proxies, register clients,
//! a create workload and lock-client processes writing to a fenced store,
//! while a nemesis kills, pauses and partitions; then everything heals and
//! the checkers judge the histories and the servers' digests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jute::{CreateMode, OpCode, SyncRequest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ensemble::{Ensemble, EnsembleOptions};
use super::lock_client::LockEvent;
use super::procs::{now_us, Proc, ProcError, TempDir};
use super::proxy::LinkMode;
use super::register::{self, Keys};
use super::store::FencedStore;
use crate::check::acked::{self, AckedCreate};
use crate::check::linear::{self, RegEvent, RegOp, RegResult, RegState};
use crate::check::lock::{self, Tenure};
use crate::check::Anomaly;
use crate::client::{Client, ClientError};

/// Arguments of `paddock faults` (and of the integration test's short mode).
#[derive(clap::Args, Debug, Clone)]
pub struct FaultArgs {
    /// How long to inject faults, seconds.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Random seed (the schedule of faults and of client operations).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Register clients (in this process).
    #[arg(long, default_value_t = 4)]
    pub register_clients: usize,
    /// Lock clients (separate processes, paused by the nemesis too).
    #[arg(long, default_value_t = 3)]
    pub lock_clients: usize,
    /// Keep data and server logs even if the run passes.
    #[arg(long)]
    pub keep: bool,
    /// The paddock executable to run (default: this one).
    #[arg(long)]
    pub exe: Option<PathBuf>,
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct RunReport {
    /// The seed used.
    pub seed: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Register operations checked for linearizability.
    pub register_ops: usize,
    /// Register operations with unknown outcome (kept in the check).
    pub register_unknown: usize,
    /// Keys checked, and keys whose search ran out of budget.
    pub keys: usize,
    /// Keys the linearizability search gave up on.
    pub keys_unknown: usize,
    /// Lock tenures, store writes accepted and refused as stale.
    pub tenures: usize,
    /// Store writes accepted.
    pub store_accepted: usize,
    /// Store writes refused as stale (fencing at work).
    pub store_refused: usize,
    /// Acknowledged sequential creates checked on every server read back.
    pub acked_creates: usize,
    /// Servers whose creates were read back, of `servers`.
    pub creates_read_on: usize,
    /// Servers in the ensemble.
    pub servers: usize,
    /// The final zxid all servers agreed on.
    pub final_zxid: i64,
    /// Everything wrong; must be empty.
    pub anomalies: Vec<Anomaly>,
    /// Where the data and logs are, if kept.
    pub kept: Option<PathBuf>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}  elapsed {:.0} s", self.seed, self.elapsed.as_secs_f64())?;
        writeln!(f, "faults: {:?}", self.faults)?;
        writeln!(
            f,
            "register: {} ops ({} unknown outcome) over {} keys, {} keys undecided",
            self.register_ops, self.register_unknown, self.keys, self.keys_unknown
        )?;
        writeln!(f, "lock: {} tenures, store accepted {} writes, refused {} stale", self.tenures, self.store_accepted, self.store_refused)?;
        writeln!(f, "creates: {} acknowledged, checked on {} of {} servers", self.acked_creates, self.creates_read_on, self.servers)?;
        writeln!(f, "converged at zxid {:#x}", self.final_zxid)?;
        writeln!(f, "anomalies: {}", self.anomalies.len())?;
        for a in &self.anomalies {
            writeln!(f, "  {a}")?;
        }
        if let Some(k) = &self.kept {
            writeln!(f, "data and logs kept in {}", k.display())?;
        }
        Ok(())
    }
}

/// Why a run could not be carried out (as opposed to anomalies it found).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Processes.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// Local I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Setting up the ensemble's znodes.
    #[error("setup: {0}")]
    Setup(String),
}

const REGISTER_SESSION_MS: i32 = 4_000;
const LOCK_SESSION_MS: i32 = 1_500;

/// Runs one fault run; call it from a thread that lives as long as the run
/// (child processes die with the thread that spawned them).
pub fn run(args: &FaultArgs) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(|| now_us() as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let exe = match &args.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe()?,
    };
    let mut dir = TempDir::new("faults")?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let opts = EnsembleOptions { size: 3, tick_ms: 200, proxied: true, ..Default::default() };
    let mut ens = Ensemble::start(&exe, &dir.path, opts, &rt, Duration::from_secs(60))?;
    let servers = ens.client_addrs();
    let epochs = args.duration / 15 + 2;
    let keys = Keys { prefix: "/reg".into(), per_epoch: 3, epoch: Duration::from_secs(15), start_us: 0 };
    rt.block_on(setup(&servers[0], &keys, epochs)).map_err(RunError::Setup)?;
    let keys = Keys { start_us: now_us(), ..keys };

    let store = FencedStore::default();
    let (store_addr, _store_task) = rt.block_on(store.serve())?;
    let lock_events: Arc<Mutex<Vec<(String, LockEvent)>>> = Arc::default();
    let mut lockers = Vec::new();
    for i in 0..args.lock_clients {
        lockers.push(start_locker(&exe, &format!("L{i}"), &servers.join(","), &store_addr.to_string(), lock_events.clone())?);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let backend = register::Paddock { servers: servers.clone(), session_ms: REGISTER_SESSION_MS, op_timeout: Duration::from_secs(6) };
    let reg_task = rt.spawn(register::run(backend.clone(), args.register_clients, keys.clone(), stop.clone(), seed));
    let acked: Arc<Mutex<Vec<AckedCreate>>> = Arc::default();
    let create_task = rt.spawn(create_workload(servers.clone(), acked.clone(), stop.clone()));

    // The nemesis, on this thread (it restarts processes).
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(args.duration);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1_000..2_500)));
        let target = match (rng.gen_bool(0.4), ens.leader()) {
            (true, Some(l)) => l,
            _ => rng.gen_range(1..=3),
        };
        let hold = Duration::from_millis(rng.gen_range(500..4_000));
        let kind = match rng.gen_range(0..5) {
            0 => {
                ens.kill9(target);
                std::thread::sleep(hold);
                ens.restart(target)?;
                "kill-9 server"
            }
            1 => {
                ens.pause(target);
                std::thread::sleep(hold);
                ens.resume(target);
                "pause server"
            }
            2 | 3 => {
                let mode = if rng.gen_bool(0.5) { LinkMode::Drop } else { LinkMode::Refuse };
                if let Some(mesh) = ens.mesh() {
                    if rng.gen_bool(0.7) {
                        mesh.isolate(target, mode);
                    } else {
                        // Cut one link only: a partial partition.
                        mesh.cut(target, target % 3 + 1, mode);
                    }
                    std::thread::sleep(hold);
                    mesh.heal();
                }
                "partition"
            }
            _ => match lockers.len() {
                0 => "none",
                n => {
                    // Preferably the current holder: the pause fencing exists for.
                    let holder = current_holder(&lock_events.lock().unwrap_or_else(|e| e.into_inner()));
                    let holder = holder.filter(|_| rng.gen_bool(0.8));
                    let i = holder.unwrap_or_else(|| rng.gen_range(0..n));
                    let l = &mut lockers[i.min(n - 1)];
                    l.pause();
                    // A paused holder mostly sleeps long enough for its session to
                    // expire and another client to take the lock and write: its
                    // next write then carries a stale token. Others: any length.
                    let session = LOCK_SESSION_MS as u64;
                    let pause = match holder {
                        Some(_) if rng.gen_bool(0.7) => rng.gen_range(2 * session..4 * session),
                        _ => rng.gen_range(300..3 * session),
                    };
                    let pause = Duration::from_millis(pause);
                    std::thread::sleep(pause);
                    l.resume();
                    "pause lock client"
                }
            },
        };
        *faults.entry(kind).or_default() += 1;
        // Every member back before the next fault.
        for id in 1..=ens.size() {
            if !ens.is_running(id) {
                ens.restart(id)?;
            }
        }
    }

    // Heal, stop the clients, then judge.
    if let Some(mesh) = ens.mesh() {
        mesh.heal();
    }
    for id in 1..=ens.size() {
        ens.resume(id);
    }
    let settle_until = Instant::now() + Duration::from_secs(60);
    for id in 1..=ens.size() {
        ens.wait_serving(id, settle_until.saturating_duration_since(Instant::now()))?;
    }
    stop.store(true, Ordering::Relaxed);
    for l in &mut lockers {
        l.resume();
        l.kill9();
    }
    let mut history = rt.block_on(reg_task).unwrap_or_default();
    let _ = rt.block_on(create_task);
    let mut anomalies = Vec::new();

    // Final reads of every key on every server: lost acknowledged writes show here.
    // A server may still turn clients away for a moment (the last fault can
    // end in an election): the final reads try each one again until then.
    let reads_until = tokio::time::Instant::now() + Duration::from_secs(60);
    let final_ops = rt.block_on(final_reads(&backend, &keys, epochs, reads_until));
    history.extend(final_ops);
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let final_states = rt.block_on(final_creates(&servers, Duration::from_secs(60)));
    let (converged_zxid, digest_anomalies) = converge(&ens, Duration::from_secs(60));
    anomalies.extend(digest_anomalies);

    let lin = linear::check(&history, RegState { value: 0, version: 0 }, 20_000_000);
    anomalies.extend(lin.anomalies.clone());
    let events = lock_events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let lock_report = lock::check(&store.log(), &tenures(&events));
    anomalies.extend(lock_report.anomalies.clone());
    let acked_report = acked::check(&acked, &final_states);
    anomalies.extend(acked_report.anomalies.clone());
    if final_states.len() != ens.size() {
        anomalies.push(Anomaly {
            kind: "final-read-failed",
            detail: format!("read back the creates on {} of {} servers", final_states.len(), ens.size()),
        });
    }

    ens.shutdown();
    dir.keep = args.keep || !anomalies.is_empty();
    Ok(RunReport {
        seed,
        faults,
        register_ops: lin.ops,
        register_unknown: history.iter().filter(|e| e.result == RegResult::Unknown && e.op != RegOp::Read).count(),
        keys: lin.keys,
        keys_unknown: lin.unknown_keys.len(),
        tenures: lock_report.tenures,
        store_accepted: lock_report.accepted,
        store_refused: lock_report.refused,
        acked_creates: acked_report.acked,
        creates_read_on: final_states.len(),
        servers: servers.len(),
        final_zxid: converged_zxid,
        anomalies,
        kept: dir.keep.then(|| dir.path.clone()),
        elapsed: started.elapsed(),
    })
}

async fn setup(server: &str, keys: &Keys, epochs: u64) -> Result<(), String> {
    let c = Client::connect(server, 10_000).await.map_err(|e| e.to_string())?;
    for p in ["/reg", "/lock", "/seq"] {
        c.create(p, b"", CreateMode::Persistent).await.map_err(|e| format!("{p}: {e}"))?;
    }
    for e in 0..epochs {
        for k in keys.of_epoch(e) {
            c.create(&k, b"0", CreateMode::Persistent).await.map_err(|e| format!("{k}: {e}"))?;
        }
    }
    Ok(())
}

fn start_locker(
    exe: &PathBuf,
    name: &str,
    servers: &str,
    store: &str,
    events: Arc<Mutex<Vec<(String, LockEvent)>>>,
) -> Result<Proc, RunError> {
    let mut cmd = Command::new(exe);
    cmd.args(["lock-client", "--servers", servers, "--store", store, "--name", name, "--lock", "/lock"])
        .args(["--session-ms", &LOCK_SESSION_MS.to_string(), "--writes", "3", "--gap-ms", "150", "--hold-ms", "150"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut p = Proc::spawn(&format!("lock client {name}"), cmd)?;
    let out = p.take_stdout().ok_or_else(|| RunError::Setup("lock client without stdout".into()))?;
    let name = name.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(ev) = LockEvent::parse(&line) {
                events.lock().unwrap_or_else(|e| e.into_inner()).push((name.clone(), ev));
            }
        }
    });
    Ok(p)
}

/// The index of the lock client (`L<i>`) whose last event says it holds the lock.
fn current_holder(events: &[(String, LockEvent)]) -> Option<usize> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for (c, ev) in events {
        last.insert(c, ev.kind.as_str());
    }
    last.into_iter().find(|(_, k)| matches!(*k, "acquired" | "write")).and_then(|(c, _)| c.strip_prefix('L')?.parse().ok())
}

/// Tenures from the lock clients' event streams.
pub fn tenures(events: &[(String, LockEvent)]) -> Vec<Tenure> {
    let mut out: Vec<Tenure> = Vec::new();
    let mut open: BTreeMap<&str, (i64, Option<usize>)> = BTreeMap::new();
    for (client, ev) in events {
        let entry = open.entry(client.as_str()).or_insert((0, None));
        match ev.kind.as_str() {
            "acquire-invoke" => *entry = (ev.t, None),
            "acquired" => {
                if let Some(token) = ev.num("token") {
                    out.push(Tenure {
                        client: client.clone(),
                        asked_us: entry.0,
                        acquired_us: ev.t,
                        token,
                        release_asked_us: None,
                        released: false,
                    });
                    entry.1 = Some(out.len() - 1);
                }
            }
            "release-invoke" => {
                if let Some(i) = entry.1 {
                    out[i].release_asked_us = Some(ev.t);
                }
            }
            "released" => {
                if let Some(i) = entry.1.take() {
                    out[i].released = true;
                }
            }
            "session-lost" => entry.1 = None,
            _ => {}
        }
    }
    out
}

/// Sequential creates under /seq with unique data, through any server.
async fn create_workload(servers: Vec<String>, acked: Arc<Mutex<Vec<AckedCreate>>>, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    let mut pick = 0usize;
    while !stop.load(Ordering::Relaxed) {
        pick += 1;
        let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(5), Client::connect(&servers[pick % servers.len()], 4_000)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let data = format!("c{n}").into_bytes();
            match tokio::time::timeout(Duration::from_secs(6), c.create("/seq/n-", &data, CreateMode::PersistentSequential)).await {
                Ok(Ok(path)) => acked.lock().unwrap_or_else(|e| e.into_inner()).push(AckedCreate { path, data }),
                _ => break,
            }
        }
    }
}

/// Runs `attempt` until it succeeds or `until` passes; its result, if any.
async fn retry_until<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    until: tokio::time::Instant,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Option<T> {
    loop {
        match tokio::time::timeout_at(until, attempt()).await {
            Ok(Ok(done)) => return Some(done),
            Ok(Err(e)) if tokio::time::Instant::now() < until => {
                tracing::debug!("{what}, again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => return None,
        }
    }
}

/// A read of every register key on every server (connecting to each until
/// `until`); failed reads are recorded as unknown.
async fn final_reads(backend: &register::Paddock, keys: &Keys, epochs: u64, until: tokio::time::Instant) -> Vec<RegEvent> {
    use register::Backend;
    let mut out = Vec::new();
    for (i, _) in backend.servers.iter().enumerate() {
        let connect = || async { backend.connect(i).await.ok_or("turned away") };
        let Some(conn) = retry_until(until, "connecting for the final reads", connect).await else { continue };
        for e in 0..epochs {
            for key in keys.of_epoch(e) {
                let t0 = now_us();
                let result = backend.read(&conn, &key).await;
                out.push(RegEvent { process: 1_000_000 + i as u64, key, op: RegOp::Read, invoke_us: t0, complete_us: now_us(), result });
            }
        }
    }
    out
}

/// Every node under /seq on each server that could be read back whole
/// before `until` (each server is tried again until then).
/// Each server gets `limit` of its own: a long run acknowledges hundreds of
/// thousands of creates, and reading them back is not a fault.
async fn final_creates(servers: &[String], limit: Duration) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for s in servers {
        let until = tokio::time::Instant::now() + limit;
        if let Some(state) = retry_until(until, "reading back the creates", || read_creates(s)).await {
            out.insert(s.clone(), state);
        }
    }
    out
}

/// Every node under /seq on `server`, after a sync; any failed read fails
/// the whole read-back (a node left out would look like a lost create).
async fn read_creates(server: &str) -> Result<BTreeMap<String, Vec<u8>>, ClientError> {
    let c = Client::connect(server, 10_000).await?;
    c.call(OpCode::Sync, Some(&SyncRequest { path: "/seq".into() })).await?;
    // Pipelined: one read at a time took ~30 s per server after a long run.
    let reads = c.get_children("/seq", false).await?.into_iter().map(|ch| {
        let c = &c;
        async move {
            let p = format!("/seq/{ch}");
            c.get_data(&p, false).await.map(|(d, _)| (p, d))
        }
    });
    let mut replies = futures::stream::iter(reads).buffered(256);
    let mut state = BTreeMap::new();
    while let Some(reply) = replies.next().await {
        let (p, d) = reply?;
        state.insert(p, d);
    }
    Ok(state)
}

/// Waits until every server reports the same zxid, then compares digests.
fn converge(ens: &Ensemble, limit: Duration) -> (i64, Vec<Anomaly>) {
    let until = Instant::now() + limit;
    let mut last = Vec::new();
    while Instant::now() < until {
        let hashes: Vec<Option<(i64, String)>> = (1..=ens.size()).map(|id| ens.digest(id)).collect();
        if let Some(Some((z0, d0))) = hashes.first() {
            if hashes.iter().all(|h| h.as_ref().is_some_and(|(z, _)| z == z0)) {
                if hashes.iter().all(|h| h.as_ref().is_some_and(|(_, d)| d == d0)) {
                    return (*z0, Vec::new());
                }
                return (*z0, vec![Anomaly { kind: "diverged", detail: format!("same zxid {z0:#x}, different trees: {hashes:?}") }]);
            }
        }
        last = hashes;
        std::thread::sleep(Duration::from_millis(200));
    }
    (0, vec![Anomaly { kind: "no-convergence", detail: format!("servers never reached one zxid within {limit:?}: {last:?}") }])
}

/// `paddock faults`: one run; exit 0 only with no anomaly.
pub fn main(args: FaultArgs) -> std::process::ExitCode {
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            if report.anomalies.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("fault run failed: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
