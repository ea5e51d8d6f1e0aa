//! Wiring: opens storage, starts Raft, the client listener and the session
//! expiry loop, and holds what every connection needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::raft::responder::Responder;
use openraft::{BasicNode, RaftTypeConfig, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::error::ZkError;
use crate::raft::log_store::LogStore;
use crate::raft::network::PeerNetwork;
use crate::raft::state_machine::StateMachine;
use crate::raft::{Raft, Request, Response, TypeConfig};
use crate::state::Shared;
use crate::tree::txn::Txn;
use crate::{network, reaper, session, storage};

/// Where the outcome of a proposed write arrives.
pub type WriteReceiver = <<TypeConfig as RaftTypeConfig>::Responder as Responder<TypeConfig>>::Receiver;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory or the listener failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// RocksDB could not be opened or read.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Raft could not start.
    #[error("raft: {0}")]
    Raft(String),
}

/// What every connection shares.
pub struct Server {
    /// The configuration in force.
    pub config: Config,
    /// Applied state, watches, sessions, counters.
    pub shared: Arc<Shared>,
    /// The Raft node.
    pub raft: Raft,
    /// True once this server has caught up and may serve clients.
    pub serving: watch::Receiver<bool>,
    /// When the server started.
    pub started: Instant,
    next_conn: AtomicU64,
}

/// Wall-clock milliseconds since the epoch, as ZooKeeper's ctime/mtime.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Server {
    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts a transaction into the Raft log; the receiver yields its outcome
    /// once it is committed and applied here. Calls made in order enter the
    /// log in that order.
    pub async fn propose(&self, session_id: i64, txn: Txn) -> Result<WriteReceiver, ZkError> {
        let req = Request { session_id, time_ms: now_ms(), txn };
        self.raft.client_write_ff(req).await.map_err(|e| ZkError::ConnectionLoss(e.to_string()))
    }

    /// Waits for a proposed write's outcome.
    pub async fn outcome(rx: WriteReceiver) -> Result<Response, ZkError> {
        match rx.await {
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(ZkError::ConnectionLoss(e.to_string())),
            Err(e) => Err(ZkError::ConnectionLoss(e.to_string())),
        }
    }

    /// Proposes and waits.
    pub async fn write(&self, session_id: i64, txn: Txn) -> Result<Response, ZkError> {
        Self::outcome(self.propose(session_id, txn).await?).await
    }

    /// "leader", "follower" or "standalone", as `srvr` reports it.
    pub fn mode(&self) -> &'static str {
        let m = self.raft.metrics().borrow().clone();
        let voters = m.membership_config.membership().voter_ids().count();
        if voters <= 1 {
            "standalone"
        } else if m.current_leader == Some(self.config.server_id) {
            "leader"
        } else {
            "follower"
        }
    }
}

/// A started server.
pub struct Running {
    /// The shared context.
    pub server: Arc<Server>,
    /// The client address actually bound.
    pub client_addr: SocketAddr,
}

fn raft_config(cfg: &Config) -> Result<openraft::Config, StartError> {
    // Election timing: well under ZooKeeper's tick-based defaults so a lone
    // node serves quickly after a restart.
    let c = openraft::Config {
        cluster_name: "paddock".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(50_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Default::default()
    };
    let _ = cfg;
    c.validate().map_err(|e| StartError::Raft(e.to_string()))
}

/// Opens storage, starts Raft and the client listener.
pub async fn start(config: Config) -> Result<Running, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = storage::open(&config.data_dir.join("rocksdb"))?;
    let state = StateMachine::load(&db)?;
    let shared = Arc::new(Shared::new(state));
    let log = LogStore::new(db.clone());
    let sm = StateMachine::new(db.clone(), shared.clone());
    let id = config.server_id;
    let raft = Raft::new(id, Arc::new(raft_config(&config)?), PeerNetwork, log, sm)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

    let listener = TcpListener::bind(config.client_addr()?).await?;
    let client_addr = listener.local_addr()?;
    if !raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))? {
        let members = BTreeMap::from([(id, BasicNode::new(client_addr.to_string()))]);
        raft.initialize(members).await.map_err(|e| StartError::Raft(e.to_string()))?;
    }

    let (serving_tx, serving) = watch::channel(false);
    let server = Arc::new(Server {
        config,
        shared,
        raft: raft.clone(),
        serving,
        started: Instant::now(),
        next_conn: AtomicU64::new(1),
    });

    // Serve clients only once a leader is known and everything committed is applied.
    let wait_raft = raft.clone();
    tokio::spawn(async move {
        let caught_up = wait_raft
            .wait(None)
            .metrics(|m| m.current_leader.is_some() && m.last_applied.map(|l| l.index) >= m.last_log_index, "caught up")
            .await;
        match caught_up {
            Ok(_) => {
                tracing::info!("serving clients");
                let _ = serving_tx.send(true);
            }
            Err(e) => tracing::error!("raft stopped before serving: {e}"),
        }
    });
    tokio::spawn(network::accept_loop(server.clone(), listener));
    tokio::spawn(session::expiry::run(server.clone()));
    tokio::spawn(reaper::run(server.clone()));
    Ok(Running { server, client_addr })
}

impl Running {
    /// Stops Raft cleanly.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        // Give in-flight RocksDB writes a moment to settle before the process exits.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
