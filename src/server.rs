//! Wiring: opens storage, starts Raft, the client listener and the session
//! expiry loop, and holds what every connection needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::{BasicNode, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::error::ZkError;
use crate::raft::batcher::{Batcher, OutcomeReceiver, Settled};
use crate::raft::forward::Forwarder;
use crate::raft::link::Links;
use crate::raft::log_store::LogStore;
use crate::raft::network::PeerNetwork;
use crate::raft::state_machine::StateMachine;
use crate::raft::write_budget::{Hold, WriteBudget};
use crate::raft::{Proposal, Raft, Response};
use crate::sasl::Sasl;
use crate::state::Shared;
use crate::telemetry::{attr, Span, SpanKind};
use crate::tree::txn::Txn;
use crate::{network, reaper, session, storage};

/// Where the outcome of a proposed write arrives.
pub enum WriteReceiver {
    /// Proposed here, on the leader.
    Local(OutcomeReceiver),
    /// Forwarded from this follower to the leader with this id.
    Forwarded(u64, OutcomeReceiver),
}

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
    /// The JAAS file could not be read, or its Kerberos login failed.
    #[error(transparent)]
    Sasl(#[from] crate::sasl::LoadError),
    /// The secure client port's certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::network::tls::TlsError),
    /// The quorum's links (TLS stores, quorum SASL) could not be set up.
    #[error(transparent)]
    Links(#[from] crate::raft::link::LinkError),
    /// A ZooKeeper data directory could not be imported.
    #[error("import from ZooKeeper: {0}")]
    Import(#[from] crate::import::ImportError),
}

/// A linearizable read's place in a read-point round (`Server::join_read_round`).
pub type ReadRound = watch::Receiver<crate::raft::read_index::Point>;

/// What every connection shares.
pub struct Server {
    /// The configuration in force.
    pub config: Config,
    /// Applied state, watches, sessions, counters.
    pub shared: Arc<Shared>,
    /// The Raft node.
    pub raft: Raft,
    /// True while this server may serve clients (see `serving`).
    pub serving: watch::Receiver<bool>,
    /// How long this server may be out of touch with a quorum (from the config).
    pub lease: crate::serving::Lease,
    /// When the server started.
    pub started: Instant,
    /// This follower's link to the leader.
    pub forwarder: Forwarder,
    /// How peer connections are dialled and answered (plain, or `sslQuorum` TLS).
    pub links: Links,
    /// The leader's queue of transactions waiting to enter the log.
    pub batcher: Batcher,
    /// Read points for linearizable reads, one round for all waiting.
    pub read_rounds: crate::raft::read_index::ReadRounds,
    /// SASL mechanisms and users, when a JAAS file configures them.
    pub sasl: Option<Sasl>,
    /// Every open client connection's statistics (`cons`, `stat`, `crst`).
    pub connections: crate::network::stats::Connections,
    next_conn: AtomicU64,
    /// The lowest storage format among the members (`raft::formats`).
    pub formats: crate::raft::formats::ClusterFormat,
    /// Client connections the open-files limit leaves room for (`open_files`).
    pub client_budget: usize,
    /// Bytes of client writes that may wait for their outcome at once.
    pub write_budget: WriteBudget,
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
    /// log in that order. `trace` is the request's span (if traced), which
    /// the write's own spans go under. `hold`, the write's share of the
    /// write budget, is given back once its outcome is known.
    pub async fn propose(&self, session_id: i64, txn: Txn, trace: &Span, hold: Hold) -> Result<WriteReceiver, ZkError> {
        let proposal = Proposal { session_id, txn };
        let (leader, leader_addr) = {
            let m = self.raft.server_metrics();
            let m = m.borrow();
            let addr = m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
            (m.current_leader, addr)
        };
        match (leader, leader_addr) {
            (Some(l), _) if l == self.config.server_id || self.config.peers.is_empty() => {
                // As ZooKeeper's SessionMoved: the client has attached at
                // another server since it sent this on a connection here.
                // A single server has nowhere else a client could attach.
                let ensemble = !self.config.peers.is_empty();
                if ensemble && !self.shared.sessions.may_write(session_id, crate::session::HERE) {
                    return Err(ZkError::ConnectionLoss(format!("session {session_id:#x} moved to another server")));
                }
                let rx = self.batcher.submit(proposal, trace.child("log write", SpanKind::Internal), hold);
                Ok(WriteReceiver::Local(rx.map_err(ZkError::ConnectionLoss)?))
            }
            (Some(l), Some(addr)) => {
                let span = trace.child("forward to leader", SpanKind::Client);
                span.set(attr::LEADER, l as i64);
                Ok(WriteReceiver::Forwarded(l, self.forwarder.forward(l, &addr, proposal, span, hold).await?))
            }
            _ => Err(ZkError::ConnectionLoss("no leader".into())),
        }
    }

    /// Before a client is told its session is attached here: the leader
    /// learns it first (this server itself, or over the link that carries
    /// this server's forwarded writes, waiting at most a second for it to
    /// answer), so that a write still coming through a connection the
    /// client left elsewhere is refused (`SessionTracker::may_write`).
    ///
    /// With no leader known, or one whose link fails (its process is gone),
    /// it waits for the next leader, up to `ATTACH_WAIT`, and tells that
    /// one: the client then rides out the election here instead of being
    /// sent round every server while it lasts. False if no leader takes it
    /// in time, or no quorum can form at all (`quorum_gone`): the client is
    /// then not attached, as a ZooKeeper follower cannot revalidate a
    /// session without its leader, and tries another server. A leader
    /// that is reached but slow to answer is not waited for.
    pub async fn announce_attach(&self, session_id: i64) -> bool {
        let deadline = Instant::now() + ATTACH_WAIT;
        let mut failed: Option<u64> = None;
        loop {
            let leader = self.raft.server_metrics().borrow().current_leader;
            match leader {
                Some(me) if me == self.config.server_id => {
                    self.shared.sessions.claim(&[session_id], crate::session::HERE);
                    return true;
                }
                Some(leader) if failed != Some(leader) => {
                    if let Some((_, addr)) = self.remote_leader().filter(|(l, _)| *l == leader) {
                        let told = tokio::time::timeout(Duration::from_secs(1), self.forwarder.attach(leader, &addr, session_id)).await;
                        match told {
                            Ok(Ok(())) => return true,
                            Ok(Err(e)) => {
                                tracing::info!("cannot tell leader {leader} where session {session_id:#x} is, waiting for another: {e}");
                                failed = Some(leader);
                            }
                            Err(_) => {
                                tracing::debug!("leader {leader} did not hear where session {session_id:#x} is in time");
                                return true;
                            }
                        }
                    }
                }
                Some(_) => {}
                // An election: the leader that failed may win it again.
                None => failed = None,
            }
            if Instant::now() >= deadline || self.quorum_gone() {
                tracing::info!("no leader to attach session {session_id:#x} to: turning its client away");
                return false;
            }
            tokio::time::sleep(ATTACH_POLL).await;
        }
    }

    /// True while this server does not serve and knows that no quorum can
    /// form: too many voters refuse connections (`serving::quorum_possible`).
    /// A client is then turned away at once rather than kept waiting for an
    /// election that cannot happen.
    pub fn quorum_gone(&self) -> bool {
        if *self.serving.borrow() {
            return false;
        }
        let m = self.raft.server_metrics();
        let m = m.borrow();
        !crate::serving::quorum_possible(self.config.server_id, m.membership_config.membership().voter_ids(), |p| {
            self.shared.peers.refuses(p)
        })
    }

    /// Waits for a proposed write's outcome, applied on this server too (so
    /// the session's next read sees it); `trace` as for `propose`.
    pub async fn outcome(&self, rx: WriteReceiver, trace: &Span) -> Result<Response, ZkError> {
        let lost = |e: String| ZkError::ConnectionLoss(e);
        match rx {
            WriteReceiver::Local(rx) => rx.await.map_err(|_| lost("the proposer stopped".into()))?.map_err(lost),
            WriteReceiver::Forwarded(leader, rx) => {
                // The leader may die or go silent with the write in flight:
                // then its outcome is unknown, which the client learns as a
                // lost connection (as from ZooKeeper), instead of waiting on.
                // The server metrics: unlike the full ones they do not
                // change (and wake every write waiting here) with each write.
                let mut metrics = self.raft.server_metrics();
                let deposed = metrics.wait_for(|m| m.current_leader != Some(leader));
                let limit = self.lease.grace;
                let answer = tokio::select! {
                    r = rx => r.map_err(|_| lost("link to the leader lost".into())),
                    _ = deposed => Err(lost(format!("leader {leader} replaced with the write in flight"))),
                    _ = tokio::time::sleep(limit) => Err(lost(format!("no answer from leader {leader} in {limit:?}"))),
                };
                if answer.is_err() {
                    self.forwarder.abandon(leader).await;
                }
                let resp = answer?.map_err(lost)?;
                let apply = trace.child("apply here", SpanKind::Internal);
                let mut applied = self.shared.applied.subscribe();
                let caught_up =
                    tokio::time::timeout(Duration::from_secs(30), async { applied.wait_for(|z| *z >= resp.zxid).await.is_ok() })
                        .await
                        .unwrap_or(false);
                if !caught_up {
                    apply.fail("not applied in time");
                    return Err(lost(format!("zxid {:#x} not applied here in time", resp.zxid)));
                }
                Ok(resp)
            }
        }
    }

    /// Proposes and waits.
    pub async fn write(&self, session_id: i64, txn: Txn) -> Result<Response, ZkError> {
        self.write_traced(session_id, txn, &Span::none()).await
    }

    /// Proposes and waits, with the write's spans under `trace`.
    pub async fn write_traced(&self, session_id: i64, txn: Txn, trace: &Span) -> Result<Response, ZkError> {
        let rx = self.propose(session_id, txn, trace, None).await?;
        self.outcome(rx, trace).await
    }

    /// Joins the next round for a read point, as a linearizable read
    /// arrives (`linearizableReads=true`): the leader confirms it still
    /// leads with a heartbeat round to a quorum and names its commit point.
    /// Reads that arrive together share a round (`raft::read_index`).
    pub fn join_read_round(self: &Arc<Self>) -> ReadRound {
        let (round, start) = self.read_rounds.join();
        if start {
            let server = self.clone();
            tokio::spawn(async move { server.read_rounds.drive(|| server.read_point()).await });
        }
        round
    }

    /// Waits for `round`'s read point and until this server has applied up
    /// to it: then it holds every write acknowledged before the read
    /// arrived, anywhere in the ensemble, and the read is linearizable.
    pub async fn read_barrier(&self, round: ReadRound) -> Result<(), ZkError> {
        let index = crate::raft::read_index::outcome(round).await.map_err(ZkError::ConnectionLoss)?;
        self.raft
            .wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| ZkError::ConnectionLoss(e.to_string()))?;
        Ok(())
    }

    /// One read point: the leader's commit index, confirmed by a quorum
    /// (see [`Server::read_barrier`]).
    async fn read_point(&self) -> Result<u64, String> {
        Ok(match self.remote_leader() {
            Some((leader, addr)) => {
                let rx = self.forwarder.read_index(leader, &addr).await.map_err(|e| e.to_string())?;
                let limit = self.lease.grace;
                match tokio::time::timeout(limit, rx).await {
                    Ok(Ok(answer)) => answer?,
                    Ok(Err(_)) => {
                        self.forwarder.abandon(leader).await;
                        return Err("link to the leader lost".into());
                    }
                    Err(_) => {
                        self.forwarder.abandon(leader).await;
                        return Err(format!("no read point from leader {leader} in {limit:?}"));
                    }
                }
            }
            // The leader itself, or no leader (then this fails: not leader).
            None => self.raft.get_read_log_id().await.map_err(|e| e.to_string())?.0.map_or(0, |l| l.index),
        })
    }

    /// The current leader's id and peer address, if one is known and it is not this server.
    pub fn remote_leader(&self) -> Option<(u64, String)> {
        let m = self.raft.server_metrics();
        let m = m.borrow();
        let l = m.current_leader.filter(|l| *l != self.config.server_id)?;
        let addr = m.membership_config.membership().get_node(&l)?.addr.clone();
        Some((l, addr))
    }

    /// Whether read-only mode is configured (`readonlymode.enabled`, in an ensemble).
    pub fn read_only_enabled(&self) -> bool {
        self.config.read_only_mode && !self.config.peers.is_empty()
    }

    /// Serving under a known leader: a write can be logged.
    pub fn in_quorum(&self) -> bool {
        *self.serving.borrow() && self.raft.server_metrics().borrow().current_leader.is_some()
    }

    /// Whether this server is in read-only mode: read-only mode is enabled
    /// and it has no leader (an election, or no quorum at all), so it serves
    /// reads to the clients that allow it. Others it serves only while
    /// `serving` (the grace of `syncLimit` ticks), and only once a leader
    /// is back can they open sessions.
    pub fn read_only_now(&self) -> bool {
        self.read_only_enabled() && !self.in_quorum()
    }

    /// Whether clients are served at all, read-only or not (the four-letter
    /// words that describe a serving server answer then).
    pub fn answering(&self) -> bool {
        *self.serving.borrow() || self.read_only_now()
    }

    /// "leader", "follower", "observer", "read-only" or "standalone", as `srvr` reports it.
    pub fn mode(&self) -> &'static str {
        if self.read_only_now() {
            return "read-only";
        }
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let me = self.config.server_id;
        if membership.get_node(&me).is_some() && !membership.voter_ids().any(|v| v == me) {
            "observer"
        } else if membership.nodes().count() <= 1 {
            "standalone"
        } else if m.current_leader == Some(me) {
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
    /// The admin server's address, if it runs.
    pub admin_addr: Option<SocketAddr>,
    /// The TLS client port's address, if there is one.
    pub secure_addr: Option<SocketAddr>,
    /// The Prometheus metrics port's address, if it runs.
    pub metrics_addr: Option<SocketAddr>,
}

/// Purged log entries are deleted at least this many at a time: one range
/// delete per batch instead of one per applied entry.
const PURGE_BATCH: u64 = 64;

/// How long a connecting client may wait for a leader to attach its session
/// to (`Server::announce_attach`): about an election after a leader's death.
const ATTACH_WAIT: Duration = Duration::from_secs(3);

/// How often that wait looks again for a leader, or for a quorum gone.
const ATTACH_POLL: Duration = Duration::from_millis(50);

fn raft_config(cfg: &Config) -> Result<openraft::Config, StartError> {
    let (heartbeat, min, max) = cfg.raft_timing();
    let c = openraft::Config {
        cluster_name: "paddock".into(),
        heartbeat_interval: heartbeat,
        election_timeout_min: min,
        election_timeout_max: max,
        // snapCount counts transactions, as in ZooKeeper, and a log entry
        // carries a batch of them: raft::snapshots triggers snapshots.
        snapshot_policy: SnapshotPolicy::Never,
        // After each snapshot the log it covers is purged, keeping a tail so
        // a briefly lagging follower catches up from the log rather than by
        // a whole snapshot. The log on disk stays below about
        // snapCount + keep + purge batch entries.
        max_in_snapshot_log_to_keep: cfg.log_keep(),
        purge_batch_size: PURGE_BATCH,
        ..Default::default()
    };
    c.validate().map_err(|e| StartError::Raft(e.to_string()))
}

async fn any_peer_initialized(config: &Config, links: &Links) -> bool {
    for (peer_id, peer) in &config.peers {
        if *peer_id != config.server_id && crate::raft::peer_server::peer_initialized(links, &peer.peer_addr()).await {
            return true;
        }
    }
    false
}

/// Reads the SASL set-up from the configured JAAS file. As on ZooKeeper, a
/// file without the section means no SASL; an unreadable one, or a Kerberos
/// login that fails (a keytab without the principal), stops the start.
fn load_sasl(config: &Config) -> Result<Option<Sasl>, StartError> {
    let Some(path) = &config.jaas_login_config else { return Ok(None) };
    let section = &config.sasl_server_section;
    let mut naming = config.kerberos_naming.clone();
    let krb5_conf = config.krb5_conf.clone().unwrap_or_else(|| {
        let env = std::env::var("KRB5_CONFIG").ok();
        PathBuf::from(env.as_deref().and_then(|v| v.split(':').next()).unwrap_or("/etc/krb5.conf"))
    });
    naming.default_realm = crate::sasl::default_realm(&krb5_conf);
    let mut sasl = Sasl::load(path, section, &config.sasl_super_users, &naming)?;
    if let Some(users) = sasl.as_mut().and_then(|s| s.users.as_mut()) {
        users.set_super_password(config.sasl_super_password.clone());
    }
    let Some(s) = &sasl else {
        // A file for quorum SASL alone is no mistake.
        if config.quorum_auth.enable_sasl {
            tracing::info!("no JAAS section named {section} in {}: client SASL authentication is off", path.display());
        } else {
            tracing::warn!("no JAAS section named {section} in {}: SASL authentication is off", path.display());
        }
        return Ok(None);
    };
    if let Some(users) = &s.users {
        tracing::info!("SASL DIGEST-MD5: {} user(s) from section {section} of {}", users.len(), path.display());
    }
    if let Some(k) = &s.kerberos {
        tracing::info!(
            "SASL GSSAPI (Kerberos) as {} from section {section} of {}; default realm {:?}",
            k.principal,
            path.display(),
            naming.default_realm
        );
    }
    Ok(sasl)
}

/// Opens storage, starts Raft and the client listener.
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_importing(config, None).await
}

/// Starts the server as [`start`] does, first loading `import` (a
/// ZooKeeper data directory, read) if given: clients are served once it is in.
pub async fn start_importing(mut config: Config, import: Option<crate::import::Imported>) -> Result<Running, StartError> {
    config.validate()?;
    let sasl = load_sasl(&config)?;
    if let Some(id) = &config.any_sasl_user_id {
        crate::tree::acl::let_any_sasl_user_do(id);
    }
    let client_budget = open_files_budget();
    std::fs::create_dir_all(&config.data_dir)?;
    std::fs::create_dir_all(config.log_dir())?;
    let stores = storage::open_stores(&config.data_dir, config.log_dir())?;
    let state = StateMachine::load(&stores.state)?;
    let shared = Arc::new(Shared::new(state));
    shared.held_reads.start(config.server_id);
    let settled = Settled::default();
    shared.counters.slow_syncs.set_threshold_ms(config.fsync_warning_threshold_ms);
    let log = LogStore::open(stores.log, &stores.log_dir, settled.clone(), shared.counters.slow_syncs.clone())?;
    let sm = StateMachine::new(stores.state, shared.clone(), config.snap_count);
    let id = config.server_id;
    let links = Links::from_config(&config)?;
    let network = PeerNetwork::new(&config, links.clone(), shared.peers.clone());
    let raft = Raft::new(id, Arc::new(raft_config(&config)?), network, log, sm).await.map_err(|e| StartError::Raft(e.to_string()))?;
    // After the log's committed entries were applied again above: what
    // they did was written to the audit log when it was done.
    if config.audit_enabled {
        crate::audit::enable();
    }

    let backlog = config.client_port_listen_backlog;
    let listener = network::bind(config.client_addr()?, backlog)?;
    let client_addr = listener.local_addr()?;
    let tls = network::tls::acceptor(&config)?;
    let secure = match (&tls, config.secure_client_addr()?) {
        (Some(tls), Some(addr)) => Some((network::bind(addr, backlog)?, tls.clone())),
        _ => None,
    };
    let plain_mode = match tls {
        Some(tls) if config.port_unification => network::Listening::Unified(tls),
        _ => network::Listening::Plain,
    };
    let secure_addr = secure.as_ref().and_then(|(l, _)| l.local_addr().ok());
    let admin_listener = bind_http(config.admin_addr()?, "admin server", "admin.serverPort, or admin.enableServer=false").await;
    let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_listener = bind_http(config.metrics_addr()?, "metrics", "metricsProvider.httpPort").await;
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    // `conf` reports the ports actually bound (a configured 0 picks one).
    config.client_port = client_addr.port();
    if let Some(addr) = admin_addr {
        config.admin_port = addr.port();
    }
    if let Some(addr) = secure_addr {
        config.secure_client_port = Some(addr.port());
    }
    let peer_listener = match config.peers.get(&id) {
        Some(me) if config.quorum_listen_on_all_ips => Some(TcpListener::bind(("0.0.0.0", me.peer_port)).await?),
        Some(me) => Some(TcpListener::bind(me.peer_addr()).await?),
        None => None,
    };
    // The first start bootstraps membership; a restart finds it in the log.
    // In an ensemble only the lowest participant bootstraps, and only if no peer
    // already belongs to a formed ensemble: a member whose data was wiped
    // must rejoin (and catch up by snapshot), never found a second history.
    if !raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))? {
        let members: Option<BTreeMap<u64, BasicNode>> = if config.peers.is_empty() {
            Some(BTreeMap::from([(id, BasicNode::new(client_addr.to_string()))]))
        } else if config.participants().next().map(|(first, _)| *first) == Some(id) && !any_peer_initialized(&config, &links).await {
            // Observers join as learners once a leader is elected
            // (`membership::add_configured_observers`).
            Some(config.participants().map(|(id, p)| (*id, BasicNode::new(p.peer_addr()))).collect())
        } else {
            tracing::info!("empty state: waiting for the ensemble's leader to bring this server up to date");
            None
        };
        if let Some(members) = members {
            if let Err(e) = raft.initialize(members).await {
                tracing::info!("not initializing membership: {e}");
            }
        }
    }

    let config_has_observers = config.peers.values().any(|p| p.observer);
    let lease = crate::serving::Lease::from_config(&config);
    let serving = crate::serving::start(raft.clone(), lease, shared.peers.clone());
    let forwarder = Forwarder::from_config(&config, links.clone(), shared.clone());
    let server = Arc::new(Server {
        config,
        shared,
        raft: raft.clone(),
        serving,
        lease,
        started: Instant::now(),
        forwarder,
        links,
        batcher: Batcher::start(raft.clone(), settled),
        read_rounds: Default::default(),
        sasl,
        connections: Default::default(),
        next_conn: AtomicU64::new(1),
        formats: Default::default(),
        client_budget,
        write_budget: WriteBudget::default(),
    });
    if let Some(l) = peer_listener {
        tokio::spawn(crate::raft::peer_server::accept_loop(server.clone(), l));
    }

    tokio::spawn(session::expiry::run(server.clone()));
    tokio::spawn(reaper::run(server.clone()));
    tokio::spawn(crate::raft::snapshots::run(server.clone()));
    tokio::spawn(crate::raft::formats::run(server.clone()));
    if let Some(imported) = import {
        crate::import::run(&server, imported).await?;
    }
    tokio::spawn(network::accept_loop(server.clone(), listener, plain_mode));
    if let Some((l, tls)) = secure {
        tokio::spawn(network::accept_loop(server.clone(), l, network::Listening::Tls(tls)));
    }
    if let Some(l) = admin_listener {
        tokio::spawn(crate::admin::http::accept_loop(server.clone(), l, crate::admin::http::Site::Admin));
    }
    if let Some(l) = metrics_listener {
        tokio::spawn(crate::admin::http::accept_loop(server.clone(), l, crate::admin::http::Site::Metrics));
    }
    if config_has_observers {
        tokio::spawn(crate::raft::membership::add_configured_observers(server.clone()));
    }
    Ok(Running { server, client_addr, admin_addr, secure_addr, metrics_addr })
}

/// Raises the open-files limit as ZooKeeper's JVM does, and returns how
/// many client connections it leaves room for beside storage.
fn open_files_budget() -> usize {
    match crate::open_files::raise() {
        Ok(limit) => {
            let budget = limit.client_connections();
            if limit.now > limit.was {
                tracing::info!("open files limit raised from {} to {}: up to {budget} client connections", limit.was, limit.now);
            }
            if limit.now < 2 * crate::open_files::RESERVED {
                tracing::warn!(
                    "the open files limit is {}: at most {budget} client connections, and storage may run short; raise it (ulimit -n)",
                    limit.now
                );
            }
            budget
        }
        Err(e) => {
            tracing::warn!("cannot read the open files limit: {e}");
            usize::MAX
        }
    }
}

/// Binds an HTTP port (the admin server's, the metrics'), if it is enabled.
/// A port that is taken leaves the server without it (with a warning that
/// names the setting to change) rather than not serving clients at all.
async fn bind_http(addr: Option<SocketAddr>, what: &str, setting: &str) -> Option<TcpListener> {
    let addr = addr?;
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!("{what} not started: cannot bind {addr}: {e} (set {setting})");
            None
        }
    }
}

impl Running {
    /// Resolves, with the reason, once the Raft core has stopped on an error
    /// it cannot go on from (a log write the disk refused, say). The server
    /// then serves nothing and never will: the caller should exit.
    pub async fn fatal(&self) -> String {
        // The server metrics change only with the role, the leader or the
        // membership, and their channel closes when the core stops; the full
        // metrics change with every write, which would wake this (the main
        // thread) for each.
        let mut server_metrics = self.server.raft.server_metrics();
        while server_metrics.changed().await.is_ok() {}
        match &self.server.raft.metrics().borrow().running_state {
            Err(e) => e.to_string(),
            Ok(()) => "the Raft core stopped".into(),
        }
    }

    /// Stops Raft cleanly.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        // Give in-flight RocksDB writes a moment to settle before the process exits.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
