//! Four-letter words (`ruok`, `srvr`, `mntr`...), answered on the client port
//! in ZooKeeper's own formats so existing monitoring keeps working.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::server::Server;

/// The version string clients see; kazoo parses the leading `3.8.0`.
pub const VERSION: &str = concat!("3.8.0-paddock-", env!("CARGO_PKG_VERSION"));

const WORDS: [&str; 16] = [
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "envi", "wchs", "wchc", "wchp", "dump", "isro", "srst", "dirs",
    "hash",
];

/// If the first four bytes of a connection spell a known word, that word.
pub fn four_letter_word(first: u32) -> Option<&'static str> {
    let bytes = first.to_be_bytes();
    WORDS.iter().copied().find(|w| w.as_bytes() == bytes)
}

/// The answer to a four-letter word.
pub fn answer(server: &Server, word: &str) -> String {
    if !server.config.four_letter_allowed(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let serving = *server.serving.borrow();
    if !serving && !matches!(word, "ruok" | "conf" | "envi" | "isro" | "dirs") {
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    match word {
        "ruok" => "imok".into(),
        "srvr" => srvr(server, false),
        "stat" => srvr(server, true),
        "mntr" => mntr(server),
        "conf" => conf(server),
        "cons" => format!("{}\n", server.connections.describe(true)),
        "crst" => {
            server.connections.reset();
            "Connection stats reset.\n".into()
        }
        "envi" => envi(),
        "wchs" => wchs(server),
        "wchc" => {
            let mut s = String::new();
            // As ZooKeeper, watchers are named by their session.
            for (conn, paths) in server.shared.watches.by_connection() {
                let _ = writeln!(s, "0x{:x}", server.connections.session_of(conn));
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
            s
        }
        "wchp" => {
            let mut s = String::new();
            for (path, conns) in server.shared.watches.by_path() {
                let _ = writeln!(s, "{path}");
                for c in conns {
                    let _ = writeln!(s, "\t0x{:x}", server.connections.session_of(c));
                }
            }
            s
        }
        "dump" => dump(server),
        "isro" => "rw".into(),
        "srst" => {
            let c = &server.shared.counters;
            for a in [&c.packets_received, &c.packets_sent] {
                a.store(0, Ordering::Relaxed);
            }
            c.latency.reset();
            "Server stats reset.\n".into()
        }
        // As ZooKeeper's `hash`: the digest of the applied tree at its zxid.
        "hash" => {
            let state = server.shared.read();
            format!("{:x}: {}\n", state.tree.last_zxid(), crate::digest::tree_digest(&state.tree))
        }
        "dirs" => format!("datadir_size: {}\nlogdir_size: 0\n", dir_size(&server.config.data_dir)),
        _ => String::new(),
    }
}

/// Request latencies as ZooKeeper reports them: min, average and max, ms.
fn latency(server: &Server) -> (u64, f64, u64) {
    let l = &server.shared.counters.latency;
    (l.min() / 1000, l.mean() / 1000.0, l.max() / 1000)
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

fn srvr(server: &Server, with_clients: bool) -> String {
    let c = &server.shared.counters;
    let (min, avg, max) = latency(server);
    let (zxid, nodes) = {
        let state = server.shared.read();
        (state.tree.last_zxid(), state.tree.node_count())
    };
    let mut s = format!("Zookeeper version: {VERSION}, built for paddock\n");
    if with_clients {
        s.push_str("Clients:\n");
        let _ = writeln!(s, "{}", server.connections.describe(false));
    }
    let _ = writeln!(s, "Latency min/avg/max: {min}/{avg:.4}/{max}");
    let _ = writeln!(s, "Received: {}", c.packets_received.load(Ordering::Relaxed));
    let _ = writeln!(s, "Sent: {}", c.packets_sent.load(Ordering::Relaxed));
    let _ = writeln!(s, "Connections: {}", c.connections.load(Ordering::Relaxed));
    let _ = writeln!(s, "Outstanding: {}", c.outstanding.load(Ordering::Relaxed));
    let _ = writeln!(s, "Zxid: 0x{zxid:x}");
    let _ = writeln!(s, "Mode: {}", server.mode());
    let _ = writeln!(s, "Node count: {nodes}");
    s
}

/// How long since its last answer a follower still counts as present: a few
/// heartbeats, well past one slow answer, well short of a human noticing.
const FOLLOWER_SILENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// On the leader: (members other than itself that answer Raft RPCs, those of
/// them that are voters replicating from the log). A voter counts as synced
/// once its log matches the leader's past the purged point, i.e. it follows
/// from the log and no longer needs (or waits for) a snapshot.
fn follower_counts(server: &Server, raft: &openraft::RaftMetrics<u64, openraft::BasicNode>) -> (usize, usize) {
    let membership = raft.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let purged = raft.purged.map(|l| l.index);
    let matching = raft.replication.as_ref();
    let (mut followers, mut synced) = (0, 0);
    for (id, _) in membership.nodes().filter(|(id, _)| **id != raft.id) {
        if !server.shared.peers.answered_within(*id, FOLLOWER_SILENCE) {
            continue;
        }
        followers += 1;
        let matched = matching.and_then(|m| m.get(id)).copied().flatten().map(|l| l.index);
        if voters.contains(id) && matched.is_some() && matched >= purged {
            synced += 1;
        }
    }
    (followers, synced)
}

fn mntr(server: &Server) -> String {
    let c = &server.shared.counters;
    let (min, avg, max) = latency(server);
    let (open_fds, max_fds) = file_descriptors();
    let (nodes, ephemerals, data_size, sessions) = {
        let state = server.shared.read();
        let eph: usize = state.tree.sessions().values().map(|s| s.ephemerals.len()).sum();
        let mut size = 0;
        state.tree.walk(|path, n| size += path.len() + n.data_len());
        (state.tree.node_count(), eph, size, state.tree.sessions().len())
    };
    let mode = server.mode();
    let raft = server.raft.metrics().borrow().clone();
    // Entries on disk are (purged, last]; the first entry has index 0.
    let first_kept = raft.purged.map(|p| p.index + 1).unwrap_or(0);
    let log_entries = raft.last_log_index.map(|last| (last + 1).saturating_sub(first_kept)).unwrap_or(0);
    let mut rows: Vec<(&str, String)> = vec![
        ("zk_version", VERSION.to_string()),
        ("zk_server_state", mode.to_string()),
        ("zk_avg_latency", format!("{avg:.4}")),
        ("zk_max_latency", max.to_string()),
        ("zk_min_latency", min.to_string()),
        ("zk_packets_received", c.packets_received.load(Ordering::Relaxed).to_string()),
        ("zk_packets_sent", c.packets_sent.load(Ordering::Relaxed).to_string()),
        ("zk_num_alive_connections", c.connections.load(Ordering::Relaxed).to_string()),
        ("zk_outstanding_requests", c.outstanding.load(Ordering::Relaxed).to_string()),
        ("zk_znode_count", nodes.to_string()),
        ("zk_watch_count", server.shared.watches.count().to_string()),
        ("zk_ephemerals_count", ephemerals.to_string()),
        ("zk_approximate_data_size", data_size.to_string()),
        ("zk_global_sessions", sessions.to_string()),
        // Every session is global here: none is local to one server.
        ("zk_local_sessions", "0".into()),
        ("zk_uptime", server.started.elapsed().as_millis().to_string()),
        // Not in ZooKeeper: the Raft log (in log entries and indexes, not zxids:
        // an entry carries a batch of transactions), to watch that compaction
        // keeps it bounded.
        ("zk_log_entries", log_entries.to_string()),
        ("zk_last_snapshot_index", raft.snapshot.map(|l| l.index).unwrap_or(0).to_string()),
        ("zk_last_purged_index", raft.purged.map(|l| l.index).unwrap_or(0).to_string()),
    ];
    if let Some(open) = open_fds {
        rows.push(("zk_open_file_descriptor_count", open.to_string()));
    }
    if let Some(max) = max_fds {
        rows.push(("zk_max_file_descriptor_count", max.to_string()));
    }
    if mode == "leader" {
        let (followers, synced) = follower_counts(server, &raft);
        rows.push(("zk_followers", followers.to_string()));
        rows.push(("zk_synced_followers", synced.to_string()));
    }
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{k}\t{v}");
    }
    s
}

fn conf(server: &Server) -> String {
    let c = &server.config;
    format!(
        "clientPort={}\nclientPortAddress={}\ndataDir={}\ndataLogDir={}\ntickTime={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nserverId={}\n",
        c.client_port,
        c.client_address,
        c.data_dir.display(),
        c.data_dir.display(),
        c.tick_time_ms,
        c.min_session_timeout().as_millis(),
        c.max_session_timeout().as_millis(),
        c.server_id
    )
}

fn envi() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    format!(
        "Environment:\nzookeeper.version={VERSION}\nhost.name={}\nos.name={}\nos.arch={}\nuser.dir={}\n",
        host.trim(),
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
    )
}

fn wchs(server: &Server) -> String {
    let by_conn = server.shared.watches.by_connection();
    let paths = server.shared.watches.by_path().len();
    format!("{} connections watching {} paths\nTotal watches:{}\n", by_conn.len(), paths, server.shared.watches.count())
}

fn dump(server: &Server) -> String {
    let state = server.shared.read();
    // As ZooKeeper's session tracker: sessions in buckets by expiry time,
    // rounded up to the next tick. A session this server has no deadline
    // for yet (one of another server's clients) is not in a bucket.
    let tick = server.config.tick_time_ms.max(1) as i64;
    let now = crate::server::now_ms();
    let mut buckets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, left) in server.shared.sessions.remaining() {
        if state.tree.session(id).is_some() {
            let at = now + left.as_millis() as i64;
            buckets.entry((at / tick + 1) * tick).or_default().push(id);
        }
    }
    let sessions: usize = buckets.values().map(Vec::len).sum();
    let mut s = format!("SessionTracker dump:\nSession Sets ({})/({sessions}):\n", buckets.len());
    for (at, mut ids) in buckets {
        ids.sort_unstable();
        let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(at));
        for id in ids {
            let _ = writeln!(s, "\t0x{id:x}");
        }
    }
    s.push_str("ephemeral nodes dump:\nSessions with Ephemerals (");
    let with: Vec<_> = state.tree.sessions().iter().filter(|(_, v)| !v.ephemerals.is_empty()).collect();
    let _ = writeln!(s, "{}):", with.len());
    for (id, info) in with {
        let _ = writeln!(s, "0x{id:x}:");
        for p in &info.ephemerals {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    s
}

/// Epoch milliseconds as Java's `Date.toString()` writes them in UTC
/// (`Sat Dec 05 13:17:54 UTC 2026`), the form ZooKeeper's `dump` uses.
fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (a Thursday), in 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_java_writes_them() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_796_477_874_000), "Sat Dec 05 13:37:54 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn recognises_words_only() {
        assert_eq!(four_letter_word(u32::from_be_bytes(*b"ruok")), Some("ruok"));
        assert_eq!(four_letter_word(u32::from_be_bytes(*b"mntr")), Some("mntr"));
        assert_eq!(four_letter_word(45), None);
    }
}
