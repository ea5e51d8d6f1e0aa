//! Per-connection statistics, as the `cons`, `stat` and `crst` four-letter
//! words show and reset them.
//!
//! ZooKeeper keeps, for every client connection, its packet counts, its
//! session, its last operation, cxid and zxid and its response latencies;
//! monitoring tools (zktop, operators' scripts) read them from `cons` and
//! `stat`. Each connection updates its own counters with relaxed atomics
//! (nothing is shared between connections on the request path); the registry
//! is locked only when a connection comes or goes and when a word is answered.
//! The registry also counts open connections by client address, so that one
//! address can hold at most `maxClientCnxns` of them, as on ZooKeeper.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::metrics::Latencies;
use crate::server::{now_ms, Server};
use crate::watch::ConnId;

/// `last_op` before any request, shown as ZooKeeper's `lop=NA`.
const NO_OP: i32 = i32::MIN;

/// ZooKeeper's short name of an operation (`lop=`), "NA" for none it names.
fn op_name(op: i32) -> &'static str {
    use jute::OpCode::*;
    match jute::OpCode::from_i32(op) {
        Some(Ping) => "PING",
        Some(CreateSession) => "SESS",
        Some(Multi) => "MULT",
        Some(MultiRead) => "MLTR",
        Some(Create | Create2 | CreateContainer | CreateTtl) => "CREA",
        Some(Delete | DeleteContainer) => "DELE",
        Some(SetData) => "SETD",
        Some(Reconfig) => "RECO",
        Some(SetAcl) => "SETA",
        Some(CloseSession) => "CLOS",
        Some(Sync) => "SYNC",
        Some(Check) => "CHEC",
        Some(Exists) => "EXIS",
        Some(GetData) => "GETD",
        Some(SetWatches) => "SETW",
        Some(SetWatches2) => "STW2",
        Some(AddWatch) => "ADDW",
        Some(GetAcl) => "GETA",
        Some(GetChildren | GetChildren2) => "GETC",
        Some(GetAllChildrenNumber) => "GETACN",
        Some(CheckWatches) => "CHKW",
        Some(RemoveWatches) => "REMW",
        Some(WhoAmI) => "HOMI",
        Some(GetEphemerals) => "GETE",
        Some(Notification | Auth | Sasl | Error) | None => "NA",
    }
}

/// One connection's statistics.
pub struct ConnStats {
    peer: SocketAddr,
    established_ms: i64,
    session_id: AtomicI64,
    timeout_ms: AtomicI64,
    received: AtomicU64,
    sent: AtomicU64,
    queued: AtomicI64,
    /// The opcode of the last request (named only when `cons` asks).
    last_op: AtomicI32,
    last_cxid: AtomicI64,
    last_zxid: AtomicI64,
    last_response_ms: AtomicI64,
    last_latency_ms: AtomicU64,
    latency_ms: Latencies,
}

impl ConnStats {
    fn new(peer: SocketAddr) -> Self {
        ConnStats {
            peer,
            established_ms: now_ms(),
            session_id: AtomicI64::new(0),
            timeout_ms: AtomicI64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            last_op: AtomicI32::new(NO_OP),
            last_cxid: AtomicI64::new(-1),
            last_zxid: AtomicI64::new(-1),
            last_response_ms: AtomicI64::new(0),
            last_latency_ms: AtomicU64::new(0),
            latency_ms: Latencies::default(),
        }
    }

    /// The connection now serves this session.
    pub fn set_session(&self, session_id: i64, timeout_ms: i64) {
        self.session_id.store(session_id, Relaxed);
        self.timeout_ms.store(timeout_ms, Relaxed);
    }

    /// A packet arrived.
    pub fn packet_received(&self) {
        self.received.fetch_add(1, Relaxed);
    }

    /// A request with opcode `op` is now outstanding.
    pub fn request(&self, op: i32) {
        self.queued.fetch_add(1, Relaxed);
        self.last_op.store(op, Relaxed);
    }

    /// A packet (a reply or an event) was queued to the client.
    pub fn packet_sent(&self) {
        self.sent.fetch_add(1, Relaxed);
    }

    /// A request was answered, `latency_ms` after it arrived.
    pub fn responded(&self, xid: i32, zxid: i64, latency_ms: u64) {
        self.queued.fetch_sub(1, Relaxed);
        if xid >= 0 {
            self.last_cxid.store(xid.into(), Relaxed);
        }
        self.last_zxid.store(zxid, Relaxed);
        self.last_response_ms.store(now_ms(), Relaxed);
        self.last_latency_ms.store(latency_ms, Relaxed);
        self.latency_ms.record(latency_ms);
    }

    /// Back to a fresh connection's figures (`crst`); the session stays.
    fn reset(&self) {
        self.received.store(0, Relaxed);
        self.sent.store(0, Relaxed);
        self.last_op.store(NO_OP, Relaxed);
        self.last_cxid.store(-1, Relaxed);
        self.last_zxid.store(-1, Relaxed);
        self.last_response_ms.store(0, Relaxed);
        self.last_latency_ms.store(0, Relaxed);
        self.latency_ms.reset();
    }

    /// The figures as they stand now.
    fn view(&self) -> ConnView {
        ConnView {
            peer: self.peer,
            queued: self.queued.load(Relaxed).max(0),
            received: self.received.load(Relaxed),
            sent: self.sent.load(Relaxed),
            session_id: self.session_id.load(Relaxed),
            last_op: op_name(self.last_op.load(Relaxed)),
            established_ms: self.established_ms,
            timeout_ms: self.timeout_ms.load(Relaxed),
            last_cxid: self.last_cxid.load(Relaxed),
            last_zxid: self.last_zxid.load(Relaxed),
            last_response_ms: self.last_response_ms.load(Relaxed),
            last_latency_ms: self.last_latency_ms.load(Relaxed),
            min_latency_ms: self.latency_ms.min(),
            avg_latency_ms: self.latency_ms.mean_floor(),
            max_latency_ms: self.latency_ms.max(),
        }
    }
}

/// One connection's statistics at one moment, for `cons` and the admin
/// server's `connections`.
#[derive(Debug, Clone)]
pub struct ConnView {
    /// The client's address.
    pub peer: SocketAddr,
    /// Requests read and not yet answered.
    pub queued: i64,
    /// Packets received.
    pub received: u64,
    /// Packets (replies and events) sent.
    pub sent: u64,
    /// The session served (0 before the handshake).
    pub session_id: i64,
    /// ZooKeeper's short name of the last operation (`NA` for none).
    pub last_op: &'static str,
    /// When the connection was accepted, epoch ms.
    pub established_ms: i64,
    /// The session's negotiated timeout, ms.
    pub timeout_ms: i64,
    /// The xid of the last reply (-1 for none).
    pub last_cxid: i64,
    /// The zxid of the last reply (-1 for none).
    pub last_zxid: i64,
    /// When the last reply left, epoch ms (0 for none).
    pub last_response_ms: i64,
    /// The last reply's latency, ms.
    pub last_latency_ms: u64,
    /// The lowest latency, ms.
    pub min_latency_ms: u64,
    /// The average latency, ms, rounded down.
    pub avg_latency_ms: u64,
    /// The highest latency, ms.
    pub max_latency_ms: u64,
}

impl ConnView {
    /// One line in ZooKeeper's format: brief for `stat`, full for `cons`.
    fn describe(&self, out: &mut String, full: bool) {
        let _ = write!(out, " /{}[1](queued={},recved={},sent={}", self.peer, self.queued, self.received, self.sent);
        if full && self.session_id != 0 {
            let _ = write!(out, ",sid=0x{:x},lop={},est={},to={}", self.session_id, self.last_op, self.established_ms, self.timeout_ms);
            if self.last_cxid >= 0 {
                let _ = write!(out, ",lcxid=0x{:x}", self.last_cxid);
            }
            let _ = write!(
                out,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                self.last_zxid, self.last_response_ms, self.last_latency_ms, self.min_latency_ms, self.avg_latency_ms, self.max_latency_ms
            );
        }
        out.push_str(")\n");
    }
}

/// Every open client connection's statistics.
#[derive(Default)]
pub struct Connections {
    open: Mutex<BTreeMap<ConnId, Arc<ConnStats>>>,
    /// Admitted connections, for `maxClientCnxns` and `maxCnxns`.
    admitted: Mutex<Admissions>,
}

/// Open connections, in all and by client address.
#[derive(Default)]
struct Admissions {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a new connection was closed at once.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Its address already holds `maxClientCnxns`.
    #[error("Too many connections from {ip} - max is {max}")]
    PerAddress {
        /// The client's address.
        ip: IpAddr,
        /// The limit.
        max: usize,
    },
    /// The server already holds `maxCnxns`.
    #[error("Too many connections {open} - max is {max}")]
    Total {
        /// Connections open.
        open: usize,
        /// The limit.
        max: usize,
    },
    /// The server already holds what the open-files limit leaves for clients.
    #[error("Too many connections {open} - the open files limit leaves room for {max} beside storage (raise it: ulimit -n)")]
    OpenFiles {
        /// Connections open.
        open: usize,
        /// Connections the limit leaves room for.
        max: usize,
    },
}

/// The limits a new connection is admitted under (0: no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections one client address may hold (`maxClientCnxns`).
    pub per_ip: usize,
    /// Connections the server may hold (`maxCnxns`).
    pub total: usize,
    /// Connections the open-files limit leaves room for (`open_files`).
    pub open_files: usize,
}

/// A connection counted against the limits until dropped.
pub struct Admitted {
    server: Arc<Server>,
    ip: IpAddr,
}

impl Admitted {
    /// Counts a new connection from `ip`, unless `ip` or the server already
    /// holds what `limits` allow, as ZooKeeper's `maxClientCnxns` and
    /// `maxCnxns`.
    pub fn new(server: &Arc<Server>, ip: IpAddr, limits: Limits) -> Result<Admitted, Refused> {
        let mut admitted = server.connections.admitted.lock().unwrap_or_else(|e| e.into_inner());
        if limits.total > 0 && admitted.total >= limits.total {
            return Err(Refused::Total { open: admitted.total, max: limits.total });
        }
        if limits.open_files > 0 && admitted.total >= limits.open_files {
            return Err(Refused::OpenFiles { open: admitted.total, max: limits.open_files });
        }
        let open = admitted.per_ip.get(&ip).copied().unwrap_or(0);
        if limits.per_ip > 0 && open >= limits.per_ip {
            return Err(Refused::PerAddress { ip, max: limits.per_ip });
        }
        admitted.per_ip.insert(ip, open + 1);
        admitted.total += 1;
        Ok(Admitted { server: server.clone(), ip })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut admitted = self.server.connections.admitted.lock().unwrap_or_else(|e| e.into_inner());
        admitted.total = admitted.total.saturating_sub(1);
        if let Some(open) = admitted.per_ip.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                admitted.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection's place in the registry; leaving it drops the entry.
pub struct Registered<'a> {
    registry: &'a Connections,
    conn: ConnId,
    /// The connection's statistics.
    pub stats: Arc<ConnStats>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.conn);
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ConnId, Arc<ConnStats>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new connection from `peer`, listed until the guard is dropped.
    pub fn register(&self, conn: ConnId, peer: SocketAddr) -> Registered<'_> {
        let stats = Arc::new(ConnStats::new(peer));
        self.lock().insert(conn, stats.clone());
        Registered { registry: self, conn, stats }
    }

    /// One line per connection (`cons` with `full`, `stat`'s clients without).
    pub fn describe(&self, full: bool) -> String {
        let mut out = String::new();
        for view in self.views() {
            view.describe(&mut out, full);
        }
        out
    }

    /// Every open connection's figures, in the order they were accepted.
    pub fn views(&self) -> Vec<ConnView> {
        self.lock().values().map(|s| s.view()).collect()
    }

    /// The session connection `conn` serves (0 before its handshake or once
    /// it has closed), as `wchc` and `wchp` name watchers.
    pub fn session_of(&self, conn: ConnId) -> i64 {
        self.lock().get(&conn).map_or(0, |s| s.session_id.load(Relaxed))
    }

    /// Resets every connection's statistics (`crst`).
    pub fn reset(&self) {
        for stats in self.lock().values() {
            stats.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_zookeeper_writes_them() {
        let registry = Connections::default();
        let peer: SocketAddr = "127.0.0.1:51658".parse().unwrap();
        let conn = registry.register(7, peer);
        conn.stats.packet_received();
        assert_eq!(registry.describe(true), " /127.0.0.1:51658[1](queued=0,recved=1,sent=0)\n");
        conn.stats.set_session(0x1000_27df_8e00_0000, 30_000);
        conn.stats.request(8);
        conn.stats.packet_sent();
        conn.stats.responded(3, 2, 7);
        let line = registry.describe(true);
        assert!(line.starts_with(" /127.0.0.1:51658[1](queued=0,recved=1,sent=1,sid=0x100027df8e000000,lop=GETC,est="), "{line}");
        assert!(line.contains(",to=30000,lcxid=0x3,lzxid=0x2,lresp="), "{line}");
        assert!(line.ends_with(",llat=7,minlat=7,avglat=7,maxlat=7)\n"), "{line}");
        assert_eq!(registry.describe(false), " /127.0.0.1:51658[1](queued=0,recved=1,sent=1)\n");
        registry.reset();
        let line = registry.describe(true);
        assert!(line.contains("recved=0,sent=0,sid=0x100027df8e000000,lop=NA,"), "{line}");
        assert!(line.contains(",lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)"), "{line}");
        assert!(!line.contains("lcxid"), "{line}");
        drop(conn);
        assert_eq!(registry.describe(true), "");
    }

    #[test]
    fn every_named_opcode_has_its_name() {
        for (op, name) in [(11, "PING"), (4, "GETD"), (12, "GETC"), (104, "GETACN"), (107, "HOMI"), (103, "GETE"), (999, "NA")] {
            assert_eq!(op_name(op), name);
        }
    }
}
