//! The register workload: clients read (sync + getData), write (setData
//! with version -1) and compare-and-set (setData with the version just
//! read) a few znodes, recording every operation with its invocation and
//! completion times for `check::linear`.
//!
//! The workload is generic over a `Backend`, so the same clients drive a
//! real ensemble and, in the checker's own tests, a deliberately broken
//! in-memory server (`sim`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jute::{ErrorCode, OpCode, SyncRequest};
use rand::{Rng, SeedableRng};

use super::procs::now_us;
use crate::check::linear::{RegEvent, RegOp, RegResult, RegState};
use crate::client::{Client, ClientError};

/// Something the register clients can talk to.
pub trait Backend: Clone + Send + Sync + 'static {
    /// One client session.
    type Conn: Send + Sync + 'static;
    /// Opens a session (to the server chosen by `pick`); `None` if that fails.
    fn connect(&self, pick: usize) -> impl Future<Output = Option<Self::Conn>> + Send;
    /// A linearizable read: `Read` or `Unknown`.
    fn read(&self, conn: &Self::Conn, key: &str) -> impl Future<Output = RegResult> + Send;
    /// setData(value, expect): `Written`, `CasFailed` or `Unknown`.
    fn write(&self, conn: &Self::Conn, key: &str, value: u64, expect: i32) -> impl Future<Output = RegResult> + Send;
}

/// Which keys are in use at a moment: keys rotate every `epoch`, so that
/// each key's history stays short enough to check quickly.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Prefix of the key paths (`{prefix}/e{epoch}-k{i}`).
    pub prefix: String,
    /// Keys per epoch.
    pub per_epoch: usize,
    /// Epoch length.
    pub epoch: Duration,
    /// Start of epoch 0, µs.
    pub start_us: i64,
}

impl Keys {
    /// The key paths of epoch `e`.
    pub fn of_epoch(&self, e: u64) -> Vec<String> {
        (0..self.per_epoch).map(|i| format!("{}/e{e}-k{i}", self.prefix)).collect()
    }

    /// The current epoch.
    pub fn current(&self) -> u64 {
        ((now_us() - self.start_us).max(0) as u64) / (self.epoch.as_micros().max(1) as u64)
    }
}

/// Runs `clients` register clients until `stop`; returns the history.
pub async fn run<B: Backend>(backend: B, clients: usize, keys: Keys, stop: Arc<AtomicBool>, seed: u64) -> Vec<RegEvent> {
    let history = Arc::new(Mutex::new(Vec::new()));
    let next_value = Arc::new(AtomicU64::new(1));
    let next_process = Arc::new(AtomicU64::new(1));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (backend, keys, stop, history) = (backend.clone(), keys.clone(), stop.clone(), history.clone());
            let (next_value, next_process) = (next_value.clone(), next_process.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(c as u64));
                let record = |e: RegEvent| history.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                while !stop.load(Ordering::Relaxed) {
                    let Some(conn) = backend.connect(rng.gen()).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    // A new session is a new process in the history.
                    let process = next_process.fetch_add(1, Ordering::Relaxed);
                    while !stop.load(Ordering::Relaxed) {
                        let epoch_keys = keys.of_epoch(keys.current());
                        let key = epoch_keys[rng.gen_range(0..epoch_keys.len())].clone();
                        let t0 = now_us();
                        let choice = rng.gen_range(0..3);
                        let result = backend.read(&conn, &key).await;
                        if choice == 0 || result == RegResult::Unknown {
                            record(RegEvent { process, key, op: RegOp::Read, invoke_us: t0, complete_us: now_us(), result });
                            if result == RegResult::Unknown {
                                break;
                            }
                            continue;
                        }
                        let RegResult::Read(seen) = result else { break };
                        record(RegEvent { process, key: key.clone(), op: RegOp::Read, invoke_us: t0, complete_us: now_us(), result });
                        let value = next_value.fetch_add(1, Ordering::Relaxed);
                        let (op, expect) = if choice == 1 {
                            (RegOp::Write(value), -1)
                        } else {
                            (RegOp::Cas { expect: seen.version, value }, seen.version)
                        };
                        let t1 = now_us();
                        let result = backend.write(&conn, &key, value, expect).await;
                        record(RegEvent { process, key, op, invoke_us: t1, complete_us: now_us(), result });
                        if result == RegResult::Unknown {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let h = history.lock().unwrap_or_else(|p| p.into_inner()).clone();
    h
}

/// The real thing: sessions on the members of an ensemble.
#[derive(Clone)]
pub struct Paddock {
    /// Client addresses.
    pub servers: Vec<String>,
    /// Session timeout asked for, ms.
    pub session_ms: i32,
    /// Longest wait for one answer before the outcome counts as unknown.
    pub op_timeout: Duration,
}

/// Parses register data (a decimal number).
pub fn parse_value(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.parse().ok()
}

impl Paddock {
    async fn bounded<T>(&self, f: impl Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
        tokio::time::timeout(self.op_timeout, f).await.unwrap_or(Err(ClientError::Timeout))
    }
}

impl Backend for Paddock {
    type Conn = Client;

    async fn connect(&self, pick: usize) -> Option<Client> {
        let addr = &self.servers[pick % self.servers.len()];
        self.bounded(Client::connect(addr, self.session_ms)).await.ok()
    }

    async fn read(&self, conn: &Client, key: &str) -> RegResult {
        let sync = self.bounded(conn.call(OpCode::Sync, Some(&SyncRequest { path: key.into() }))).await;
        if sync.is_err() {
            return RegResult::Unknown;
        }
        match self.bounded(conn.get_data(key, false)).await {
            Ok((data, stat)) => match parse_value(&data) {
                Some(value) => RegResult::Read(RegState { value, version: stat.version }),
                None => RegResult::Unknown,
            },
            Err(_) => RegResult::Unknown,
        }
    }

    async fn write(&self, conn: &Client, key: &str, value: u64, expect: i32) -> RegResult {
        match self.bounded(conn.set_data(key, value.to_string().as_bytes(), expect)).await {
            Ok(stat) => RegResult::Written(stat.version),
            Err(ClientError::Server(ErrorCode::BadVersion)) => RegResult::CasFailed,
            Err(_) => RegResult::Unknown,
        }
    }
}
