//! `paddock demo fencing`: DDIA Figure 8-4 with real processes.
//!
//! A 3-node ensemble, a fenced store, and two lock clients, each its own
//! process. Client A takes the lock (its fencing token is the czxid of its
//! lock znode) and is frozen with SIGSTOP, as by a long GC pause, past its
//! session timeout. The leader expires A's session, which deletes A's lock
//! znode; client B takes the lock with a larger token and writes. A is then
//! resumed, still believing it holds the lock, and writes with its old
//! token: the store refuses it. Exit status 0 only if it did.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::fault::ensemble::{Ensemble, EnsembleOptions};
use crate::fault::lock_client::{LockEvent, EXIT_STALE};
use crate::fault::procs::{Proc, TempDir};
use crate::fault::store::FencedStore;

/// Arguments of `paddock demo fencing`.
#[derive(clap::Args, Debug)]
pub struct FencingArgs {
    /// Session timeout of the lock clients, ms.
    #[arg(long, default_value_t = 2000)]
    pub session_ms: i32,
    /// Keep the servers' data and logs (printed at the end).
    #[arg(long)]
    pub keep: bool,
}

/// Why the demo could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Starting or controlling a process failed.
    #[error(transparent)]
    Proc(#[from] crate::fault::procs::ProcError),
    /// A client call failed.
    #[error("client: {0}")]
    Client(#[from] crate::client::ClientError),
    /// Something did not happen in time or as expected.
    #[error("{0}")]
    Step(String),
    /// Local I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the demo; exit 0 only if the stale write was rejected.
pub fn main(args: FencingArgs) -> ExitCode {
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            println!("demo failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// A lock client process with its event stream.
struct LockClient {
    proc: Proc,
    events: mpsc::Receiver<LockEvent>,
}

impl LockClient {
    fn start(exe: &PathBuf, name: &str, servers: &str, store: &str, session_ms: i32, hold_ms: u64) -> Result<LockClient, DemoError> {
        let mut cmd = Command::new(exe);
        cmd.args(["lock-client", "--servers", servers, "--store", store, "--name", name, "--lock", "/demo-lock"])
            .args(["--session-ms", &session_ms.to_string(), "--cycles", "1", "--writes", "1"])
            .args(["--hold-ms", &hold_ms.to_string(), "--gap-ms", "0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut proc = Proc::spawn(&format!("client {name}"), cmd)?;
        let stdout = proc.take_stdout().ok_or_else(|| DemoError::Step("no stdout from the client".into()))?;
        let (tx, events) = mpsc::channel();
        let label = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ev) = LockEvent::parse(&line) {
                    println!("    client {label}: {}", describe(&ev));
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(LockClient { proc, events })
    }

    /// Waits for an event of `kind`.
    fn wait_for(&self, kind: &str, limit: Duration) -> Result<LockEvent, DemoError> {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) if ev.kind == kind => return Ok(ev),
                Ok(_) => {}
                Err(_) => return Err(DemoError::Step(format!("{} did not report `{kind}` within {limit:?}", self.proc.name))),
            }
        }
    }
}

fn describe(ev: &LockEvent) -> String {
    let f = |k: &str| ev.get(k).unwrap_or("?").to_string();
    match ev.kind.as_str() {
        "session" => format!("session 0x{} opened on {} (timeout {} ms)", f("id"), f("server"), f("timeout_ms")),
        "acquire-invoke" => "asks for the lock (create ephemeral-sequential /demo-lock/lk-)".into(),
        "acquired" => format!("holds the lock: znode {}, fencing token (its czxid) = {}", f("node"), f("token")),
        "write" => format!("wrote {:?} with token {}: store says {}", f("value"), f("token"), f("result")),
        "release-invoke" => "releases the lock (delete its znode)".into(),
        "released" => "released".into(),
        "session-lost" => format!("lost its session ({})", f("why")),
        other => other.to_string(),
    }
}

fn run(args: &FencingArgs) -> Result<bool, DemoError> {
    let exe = std::env::current_exe()?;
    let mut dir = TempDir::new("demo-fencing")?;
    dir.keep = args.keep;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    step(1, "Starting a 3-node paddock ensemble on 127.0.0.1 (tickTime 200 ms) ...");
    let opts = EnsembleOptions { tick_ms: 200, ..Default::default() };
    let ens = Ensemble::start(&exe, &dir.path, opts, &rt, Duration::from_secs(60))?;
    let servers = ens.client_addrs().join(",");
    println!("    servers: {servers}; leader: server {}", ens.leader().map_or("?".into(), |l| l.to_string()));

    let store = FencedStore::default();
    let (store_addr, _store_task) = rt.block_on(store.serve())?;
    println!("    fenced store on {store_addr}: accepts WRITE <token> only if token >= the highest token it has accepted");
    let admin = rt.block_on(Client::connect(&ens.client_addr(1), 10_000))?;
    rt.block_on(admin.create("/demo-lock", b"", jute::CreateMode::Persistent))?;

    step(2, "Client A (a separate process) takes the lock, then does 'work' before writing ...");
    let mut a = LockClient::start(&exe, "A", &servers, &store_addr.to_string(), args.session_ms, 3_000)?;
    let acquired = a.wait_for("acquired", Duration::from_secs(30))?;
    a.proc.pause();
    let a_token = acquired.num("token").ok_or_else(|| DemoError::Step("A reported no token".into()))?;
    let a_node = acquired.get("node").unwrap_or_default().to_string();
    let paused_at = Instant::now();
    step(3, &format!("SIGSTOP client A (pid {}): a stop-the-world pause while it holds the lock with token {a_token}", a.proc.pid()));

    step(4, &format!("Waiting for A's session ({} ms) to expire on the leader ...", args.session_ms));
    let gone = rt.block_on(async {
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < until {
            if let Ok(None) = admin.exists(&a_node, false).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    if !gone {
        return Err(DemoError::Step(format!("A's lock znode {a_node} still exists 30 s into its pause")));
    }
    println!(
        "    {:.1} s into the pause, A's session expired and its lock znode {a_node} is gone; A is still frozen and knows nothing",
        paused_at.elapsed().as_secs_f64()
    );

    step(5, "Client B takes the lock and writes ...");
    let mut b = LockClient::start(&exe, "B", &servers, &store_addr.to_string(), args.session_ms, 0)?;
    let b_acq = b.wait_for("acquired", Duration::from_secs(30))?;
    let b_token = b_acq.num("token").unwrap_or(0);
    b.wait_for("write", Duration::from_secs(30))?;
    let b_code = b.proc.wait_exit(Duration::from_secs(30));

    step(6, &format!("SIGCONT client A: it wakes up believing it still holds the lock, and writes with token {a_token} ..."));
    a.proc.resume();
    let a_write = a.wait_for("write", Duration::from_secs(30))?;
    let a_code = a.proc.wait_exit(Duration::from_secs(30));

    step(7, "What the store saw:");
    for w in store.log() {
        println!(
            "    {:>6} token {:>4}  {:<12} -> {}",
            w.client,
            w.token,
            w.value,
            if w.accepted { "accepted" } else { "REJECTED (stale token)" }
        );
    }
    let rejected = a_write.get("result") == Some("stale") && a_code == Some(i32::from(EXIT_STALE));
    let ordered = a_token < b_token;
    let b_ok = b_code == Some(0);
    println!();
    if rejected && ordered && b_ok {
        println!("OK: B's token {b_token} > A's token {a_token}; the store refused A's stale write.");
        println!("    Without the token check, A's write would have silently overwritten B's (the HBase bug).");
    } else {
        println!(
            "FAILED: stale write rejected: {rejected}; tokens ordered (A {a_token} < B {b_token}): {ordered}; B's write accepted: {b_ok}"
        );
    }
    if args.keep {
        println!("data and server logs kept in {}", dir.path.display());
    }
    drop(ens);
    Ok(rejected && ordered && b_ok)
}
