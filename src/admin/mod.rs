//! What operators and monitoring ask a server, in ZooKeeper's two forms:
//! four-letter words on the client port (`words`) and the HTTP admin
//! server's JSON commands (`http`).
//!
//! Both render the same reports, gathered here, so `mntr` and
//! `/commands/monitor` (or `dump` and `/commands/dump`) can never disagree.

pub mod http;
pub mod words;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::server::Server;

pub use words::{answer, four_letter_word};

/// The version string clients see; kazoo parses the leading `3.8.0`.
pub const VERSION: &str = concat!("3.8.0-paddock-", env!("CARGO_PKG_VERSION"));

/// Whether a command (by its four-letter name) may answer while the server
/// is not serving clients; the others say it is not serving, as ZooKeeper's.
fn answers_when_not_serving(word: &str) -> bool {
    matches!(word, "ruok" | "conf" | "envi" | "isro" | "dirs")
}

/// One figure of a report: numbers stay numbers in JSON.
#[derive(Debug, Clone, PartialEq)]
enum Figure {
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Figure::Int(n) => write!(f, "{n}"),
            Figure::Float(x) => write!(f, "{x:.4}"),
            Figure::Text(s) => f.write_str(s),
        }
    }
}

impl From<&Figure> for serde_json::Value {
    fn from(fig: &Figure) -> Self {
        match fig {
            Figure::Int(n) => (*n).into(),
            Figure::Float(x) => (*x).into(),
            Figure::Text(s) => s.as_str().into(),
        }
    }
}

fn int<T: TryInto<i64>>(n: T) -> Figure {
    Figure::Int(n.try_into().unwrap_or(i64::MAX))
}

fn count(counter: &std::sync::atomic::AtomicU64) -> Figure {
    int(counter.load(Ordering::Relaxed))
}

/// Request latencies as ZooKeeper reports them: min, average and max, ms.
fn latency(server: &Server) -> (u64, f64, u64) {
    let l = &server.shared.counters.latency;
    (l.min() / 1000, l.mean() / 1000.0, l.max() / 1000)
}

/// What `srvr` and `/commands/server_stats` report.
struct Summary {
    latency: (u64, f64, u64),
    received: u64,
    sent: u64,
    connections: u64,
    outstanding: u64,
    zxid: i64,
    mode: &'static str,
    nodes: usize,
}

/// The node count as ZooKeeper reports it (`srvr`, `mntr`, the admin
/// server, metrics): its map holds the root under both "" and "/", so a
/// fresh ZooKeeper says 5 for its 4 znodes, and monitoring that compares
/// counts across a move from ZooKeeper should see the same figure.
fn reported_node_count(tree: &crate::tree::DataTree) -> usize {
    tree.node_count() + 1
}

fn summary(server: &Server) -> Summary {
    let c = &server.shared.counters;
    let (zxid, nodes) = {
        let state = server.shared.read();
        (state.tree.last_zxid(), reported_node_count(&state.tree))
    };
    Summary {
        latency: latency(server),
        received: c.packets_received.load(Ordering::Relaxed),
        sent: c.packets_sent.load(Ordering::Relaxed),
        connections: c.connections.load(Ordering::Relaxed),
        outstanding: c.outstanding.load(Ordering::Relaxed),
        zxid,
        mode: server.mode(),
        nodes,
    }
}

/// This process's open file descriptors and their limit, as the JVM
/// reports them to ZooKeeper's `mntr` (None where /proc does not tell).
fn file_descriptors() -> (Option<usize>, Option<u64>) {
    // The directory's own descriptor is in the listing while it is read.
    let open = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count().saturating_sub(1));
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok());
    (open, max)
}

/// How long since its last answer a follower still counts as present: a few
/// heartbeats, well past one slow answer, well short of a human noticing.
const FOLLOWER_SILENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the leader sees of the other members.
#[derive(Debug, Default)]
struct Learners {
    /// Members other than itself that answer Raft RPCs (ZooKeeper's `learners`).
    present: usize,
    /// Present participants replicating from the log (`synced_followers`).
    synced_followers: usize,
    /// Present observers replicating from the log (`synced_observers`).
    synced_observers: usize,
}

/// On the leader: who of the other members is there and in sync. A member
/// counts as synced once its log matches the leader's past the purged point,
/// i.e. it follows from the log and no longer needs (or waits for) a snapshot.
fn learners(server: &Server, raft: &openraft::RaftMetrics<u64, openraft::BasicNode>) -> Learners {
    let membership = raft.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let purged = raft.purged.map(|l| l.index);
    let mut seen = Learners::default();
    for (id, _) in membership.nodes().filter(|(id, _)| **id != raft.id) {
        if !server.shared.peers.answered_within(*id, FOLLOWER_SILENCE) {
            continue;
        }
        seen.present += 1;
        let matched = crate::raft::matched_index(raft, *id);
        if matched.is_some() && matched >= purged {
            match voters.contains(id) {
                true => seen.synced_followers += 1,
                false => seen.synced_observers += 1,
            }
        }
    }
    seen
}

/// `mntr`'s figures, named without ZooKeeper's `zk_` text prefix (as the
/// JSON `monitor` command names them).
fn monitor(server: &Server) -> Vec<(&'static str, Figure)> {
    let c = &server.shared.counters;
    let (min, avg, max) = latency(server);
    let (open_fds, max_fds) = file_descriptors();
    let (nodes, ephemerals, data_size, sessions) = {
        let state = server.shared.read();
        let eph: usize = state.tree.sessions().values().map(|s| s.ephemerals.len()).sum();
        let mut size = 0;
        state.tree.walk(|path, n| size += path.len() + n.data_len());
        (reported_node_count(&state.tree), eph, size, state.tree.sessions().len())
    };
    let mode = server.mode();
    let raft = server.raft.metrics().borrow().clone();
    // Entries on disk are (purged, last]; the first entry has index 0.
    let first_kept = raft.purged.map(|p| p.index + 1).unwrap_or(0);
    let log_entries = raft.last_log_index.map(|last| (last + 1).saturating_sub(first_kept)).unwrap_or(0);
    let mut rows = vec![
        ("version", Figure::Text(VERSION.into())),
        ("server_state", Figure::Text(mode.into())),
        ("avg_latency", Figure::Float(avg)),
        ("max_latency", int(max)),
        ("min_latency", int(min)),
        ("packets_received", count(&c.packets_received)),
        ("packets_sent", count(&c.packets_sent)),
        ("num_alive_connections", count(&c.connections)),
        ("outstanding_requests", count(&c.outstanding)),
        ("znode_count", int(nodes)),
        ("watch_count", int(server.shared.watches.count())),
        ("ephemerals_count", int(ephemerals)),
        ("approximate_data_size", int(data_size)),
        ("global_sessions", int(sessions)),
        // Every session is global here: none is local to one server.
        ("local_sessions", Figure::Int(0)),
        ("uptime", int(server.started.elapsed().as_millis())),
        ("fsync_threshold_exceed_count", int(c.slow_syncs.exceeded())),
        // Not in ZooKeeper: the Raft log (in log entries and indexes, not zxids:
        // an entry carries a batch of transactions), to watch that compaction
        // keeps it bounded.
        ("log_entries", int(log_entries)),
        ("last_snapshot_index", int(raft.snapshot.map(|l| l.index).unwrap_or(0))),
        ("last_purged_index", int(raft.purged.map(|l| l.index).unwrap_or(0))),
        // The Raft term (ZooKeeper's epoch): it grows by one per election,
        // so a monitor sees elections that moved no leadership too.
        ("raft_term", int(raft.current_term)),
    ];
    if let Some(open) = open_fds {
        rows.push(("open_file_descriptor_count", int(open)));
    }
    if let Some(max) = max_fds {
        rows.push(("max_file_descriptor_count", int(max)));
    }
    if mode == "leader" {
        // ZooKeeper 3.8's names, and `followers` as ZooKeeper 3.4 named
        // `learners`, for older probes.
        let seen = learners(server, &raft);
        rows.push(("learners", int(seen.present)));
        rows.push(("followers", int(seen.present)));
        rows.push(("synced_followers", int(seen.synced_followers)));
        rows.push(("synced_non_voting_followers", Figure::Int(0)));
        rows.push(("synced_observers", int(seen.synced_observers)));
    }
    rows
}

/// `mntr`'s figures in Prometheus's text format, as ZooKeeper's
/// PrometheusMetricsProvider names them (its gauges carry mntr's names
/// without the `zk_` prefix); text figures (version, state) are left out.
pub fn prometheus(server: &Server) -> String {
    let mut out = String::new();
    for (name, figure) in monitor(server) {
        let value = match figure {
            Figure::Int(v) => v.to_string(),
            Figure::Float(v) => v.to_string(),
            Figure::Text(_) => continue,
        };
        out.push_str(&format!("# HELP {name} {name}\n# TYPE {name} gauge\n{name} {value}\n"));
    }
    out
}

/// `conf`'s settings, in ZooKeeper's order: (name in the word's text, name
/// in the JSON `configuration` if it is there too, value).
fn configuration(server: &Server) -> Vec<(&'static str, Option<&'static str>, Figure)> {
    let c = &server.config;
    let dir = Figure::Text(c.data_dir.display().to_string());
    vec![
        ("clientPort", Some("client_port"), int(c.client_port)),
        ("secureClientPort", Some("secure_client_port"), c.secure_client_port.map_or(Figure::Int(-1), int)),
        ("dataDir", Some("data_dir"), dir.clone()),
        ("dataDirSize", None, int(dir_size(&c.data_dir))),
        ("dataLogDir", Some("data_log_dir"), Figure::Text(c.log_dir().display().to_string())),
        // As ZooKeeper's, counted again in dataDirSize when it lies inside it.
        ("dataLogSize", None, int(log_size(server))),
        ("tickTime", Some("tick_time"), int(c.tick_time_ms)),
        ("maxClientCnxns", Some("max_client_cnxns"), int(c.max_client_cnxns)),
        ("minSessionTimeout", Some("min_session_timeout"), int(c.min_session_timeout().as_millis())),
        ("maxSessionTimeout", Some("max_session_timeout"), int(c.max_session_timeout().as_millis())),
        ("clientPortListenBacklog", Some("client_port_listen_backlog"), int(c.client_port_listen_backlog)),
        ("serverId", Some("server_id"), int(c.server_id)),
        // Not in ZooKeeper's `conf`: where the client port is bound.
        ("clientPortAddress", Some("client_port_address"), Figure::Text(c.client_address.clone())),
    ]
}

/// `envi`'s environment, as ZooKeeper names its Java properties.
fn environment() -> Vec<(&'static str, String)> {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default();
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    vec![
        ("zookeeper.version", VERSION.to_string()),
        ("host.name", read("/etc/hostname")),
        ("os.name", std::env::consts::OS.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", read("/proc/sys/kernel/osrelease")),
        ("user.name", user_name().unwrap_or_else(|| var("USER"))),
        ("user.home", var("HOME")),
        ("user.dir", std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()),
    ]
}

/// This process's user, from /etc/passwd (as Java's `user.name`).
fn user_name() -> Option<String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.get(2) == Some(&uid.as_str())).map(|f| f[0].to_string())
}

/// Watched paths by the session watching them (`wchc`), as ZooKeeper names watchers.
fn watches_by_session(server: &Server) -> Vec<(i64, Vec<String>)> {
    let by_conn = server.shared.watches.by_connection();
    by_conn.into_iter().map(|(conn, paths)| (server.connections.session_of(conn), paths)).collect()
}

/// The sessions watching each path (`wchp`).
fn watches_by_path(server: &Server) -> Vec<(String, Vec<i64>)> {
    let by_path = server.shared.watches.by_path();
    by_path.into_iter().map(|(path, conns)| (path, conns.into_iter().map(|c| server.connections.session_of(c)).collect())).collect()
}

/// (connections watching, paths watched, watches), as `wchs` counts them.
fn watch_summary(server: &Server) -> (usize, usize, usize) {
    let w = &server.shared.watches;
    (w.by_connection().len(), w.by_path().len(), w.count())
}

/// What `dump` shows: sessions by expiry time, and each session's ephemerals.
struct SessionDump {
    /// Session ids by the time (epoch ms, rounded up to the tick) they expire.
    expiring: BTreeMap<i64, Vec<i64>>,
    /// Sessions that own ephemeral nodes, with their paths.
    ephemerals: Vec<(i64, Vec<String>)>,
}

fn session_dump(server: &Server) -> SessionDump {
    let state = server.shared.read();
    // As ZooKeeper's session tracker: sessions in buckets by expiry time,
    // rounded up to the next tick. A session this server has no deadline
    // for yet (one of another server's clients) is not in a bucket.
    let tick = server.config.tick_time_ms.max(1) as i64;
    let now = crate::server::now_ms();
    let mut expiring: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, left) in server.shared.sessions.remaining() {
        if state.tree.session(id).is_some() {
            let at = now + left.as_millis() as i64;
            expiring.entry((at / tick + 1) * tick).or_default().push(id);
        }
    }
    for ids in expiring.values_mut() {
        ids.sort_unstable();
    }
    let ephemerals = state
        .tree
        .sessions()
        .iter()
        .filter(|(_, v)| !v.ephemerals.is_empty())
        .map(|(id, v)| (*id, v.ephemerals.iter().cloned().collect()))
        .collect();
    SessionDump { expiring, ephemerals }
}

/// Clears the server-wide request statistics (`srst`).
fn reset_server_stats(server: &Server) {
    let c = &server.shared.counters;
    for a in [&c.packets_received, &c.packets_sent] {
        a.store(0, Ordering::Relaxed);
    }
    c.latency.reset();
}

/// The applied tree's zxid and digest, as ZooKeeper's `hash`.
fn tree_hash(server: &Server) -> (i64, String) {
    let state = server.shared.read();
    (state.tree.last_zxid(), crate::digest::tree_digest(&state.tree))
}

/// Bytes of the Raft log (`dirs`, `conf`).
fn log_size(server: &Server) -> u64 {
    dir_size(&server.config.log_dir().join("raftlog"))
}

/// Bytes under a directory (`dirs`, `conf`).
fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
