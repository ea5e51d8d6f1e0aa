//! ZooKeeper's AdminServer: the reports of the four-letter words as JSON
//! over HTTP (`GET /commands/monitor`, `/commands/ruok`...), for the health
//! probes, exporters and scripts that read it rather than the client port.
//!
//! As ZooKeeper's (3.8, no authentication): `GET` (or `HEAD`) of the command
//! URL lists the commands, of `<url>/<name>` runs one by its name or its
//! four-letter alias and answers `200` with a JSON object that always holds
//! `command` and `error` (null, or why it did not run). Each connection
//! carries one request and is closed after the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{Figure, VERSION};
use crate::network::stats::ConnView;
use crate::server::Server;

/// The longest request head read; a longer one is answered 431.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, and how many further bytes, the server reads after answering.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;
/// Connections one HTTP port serves at once. Each holds a file descriptor
/// from the share the server keeps back for storage and the ensemble
/// (`open_files::RESERVED`); a flood of idle connections to a monitoring
/// port must not take the descriptors RocksDB needs to write.
pub const MAX_CONNECTIONS: usize = 32;

/// The commands: ZooKeeper's name, and the four-letter word it mirrors
/// (also accepted as its name, as ZooKeeper does).
const COMMANDS: [(&str, &str); 17] = [
    ("configuration", "conf"),
    ("connection_stat_reset", "crst"),
    ("connections", "cons"),
    ("dirs", "dirs"),
    ("dump", "dump"),
    ("environment", "envi"),
    ("hash", "hash"),
    ("is_read_only", "isro"),
    ("leader", "lead"),
    ("monitor", "mntr"),
    ("ruok", "ruok"),
    ("server_stats", "srvr"),
    ("stat_reset", "srst"),
    ("stats", "stat"),
    ("watch_summary", "wchs"),
    ("watches", "wchc"),
    ("watches_by_path", "wchp"),
];

/// What an HTTP port serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// The AdminServer's commands, as JSON.
    Admin,
    /// `/metrics`, in Prometheus's text format (ZooKeeper's PrometheusMetricsProvider).
    Metrics,
}

/// Serves `site`'s requests on `listener` for as long as the server runs.
pub async fn accept_loop(server: Arc<Server>, listener: TcpListener, site: Site) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let server = server.clone();
                    tokio::spawn(async move {
                        serve(server, stream, peer, site).await;
                        drop(slot);
                    });
                }
                Err(_) => {
                    // The socket's send buffer is empty: the answer fits
                    // without waiting, and the descriptor is freed at once.
                    let _ = stream.try_write(&reply("503 Service Unavailable", "text/plain", b"too many connections\n"));
                    tracing::warn!(%peer, ?site, "HTTP connection refused: {MAX_CONNECTIONS} already open");
                }
            },
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!("admin server accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
enum HeadError {
    #[error("request head over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("connection closed before the request ended")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

async fn serve(server: Arc<Server>, mut stream: TcpStream, peer: SocketAddr, site: Site) {
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => respond(&server, &head, site),
        Ok(Err(HeadError::TooLarge)) => reply("431 Request Header Fields Too Large", "text/plain", b"request head too large\n"),
        Ok(Err(e)) => {
            tracing::debug!(%peer, "admin request: {e}");
            return;
        }
        Err(_) => return,
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
    // Read what the client still sends until it hangs up (bounded), so the
    // close does not reset the connection and lose the answer on its way.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

/// Reads up to the blank line that ends an HTTP request head.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// The whole HTTP response to one request head.
fn respond(server: &Server, head: &[u8], site: Site) -> Vec<u8> {
    let head = String::from_utf8_lossy(head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return reply("400 Bad Request", "text/plain", b"malformed request line\n");
    };
    if method != "GET" && method != "HEAD" {
        return reply("405 Method Not Allowed", "text/plain", b"only GET is supported\n");
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let base = server.config.admin_command_url.trim_end_matches('/');
    let mut response = if site == Site::Metrics {
        match path {
            "/metrics" => reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", super::prometheus(server).as_bytes()),
            _ => reply("404 Not Found", "text/plain", b"not found: metrics are at /metrics\n"),
        }
    } else if path == base || path.strip_prefix(base) == Some("/") {
        let mut list = String::new();
        for (name, _) in COMMANDS {
            list.push_str(&format!("<a href=\"{base}/{name}\">{name}</a>\n<br/>\n"));
        }
        reply("200 OK", "text/html", list.as_bytes())
    } else if let Some(name) = path.strip_prefix(base).and_then(|p| p.strip_prefix('/')) {
        let body = serde_json::to_string_pretty(&command(server, name)).unwrap_or_default();
        reply("200 OK", "application/json", body.as_bytes())
    } else {
        reply("404 Not Found", "text/plain", b"not found\n")
    };
    if method == "HEAD" {
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            response.truncate(end + 4);
        }
    }
    response
}

fn reply(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
            .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Runs the command `name` (its name or four-letter alias) into its JSON object.
fn command(server: &Server, name: &str) -> Value {
    let Some((long, word)) = COMMANDS.iter().copied().find(|(long, word)| *long == name || *word == name) else {
        return json!({ "command": name, "error": format!("Unknown command: {name}") });
    };
    if !server.answering() && !super::answers_when_not_serving(word) {
        return json!({ "command": long, "error": "This ZooKeeper instance is not currently serving requests" });
    }
    let mut out = fields(server, word);
    out.insert("command".into(), long.into());
    out.entry("error").or_insert(Value::Null);
    Value::Object(out)
}

/// The figures a command reports, by its four-letter word.
fn fields(server: &Server, word: &str) -> Map<String, Value> {
    let mut out = Map::new();
    match word {
        "crst" => server.connections.reset(),
        "srst" => super::reset_server_stats(server),
        "conf" => {
            for (_, key, value) in super::configuration(server) {
                if let Some(key) = key {
                    out.insert(key.into(), Value::from(&value));
                }
            }
        }
        "cons" => connections(server, true, &mut out),
        "dirs" => {
            out.insert("datadir_size".into(), super::dir_size(&server.config.data_dir).into());
            out.insert("logdir_size".into(), super::log_size(server).into());
        }
        "dump" => {
            let dump = super::session_dump(server);
            let expiring: Map<String, Value> = dump.expiring.into_iter().map(|(at, ids)| (at.to_string(), ids.into())).collect();
            let ephemerals: Map<String, Value> = dump.ephemerals.into_iter().map(|(id, paths)| (id.to_string(), paths.into())).collect();
            out.insert("expiry_time_to_session_ids".into(), expiring.into());
            out.insert("session_id_to_ephemeral_paths".into(), ephemerals.into());
        }
        "envi" => {
            for (key, value) in super::environment() {
                out.insert(key.into(), value.into());
            }
        }
        "hash" => {
            let (zxid, digest) = super::tree_hash(server);
            out.insert("digests".into(), json!([{ "zxid": zxid, "digest": digest }]));
        }
        "isro" => {
            out.insert("read_only".into(), server.read_only_now().into());
        }
        "lead" => leader(server, &mut out),
        "mntr" => {
            for (key, value) in super::monitor(server) {
                out.insert(key.into(), Value::from(&value));
            }
        }
        "srvr" => server_stats(server, &mut out),
        "stat" => {
            server_stats(server, &mut out);
            connections(server, false, &mut out);
        }
        "wchs" => {
            let (conns, paths, watches) = super::watch_summary(server);
            out.insert("num_connections".into(), conns.into());
            out.insert("num_paths".into(), paths.into());
            out.insert("num_total_watches".into(), watches.into());
        }
        "wchc" => {
            let by_session: Map<String, Value> =
                super::watches_by_session(server).into_iter().map(|(id, paths)| (id.to_string(), paths.into())).collect();
            out.insert("session_id_to_watched_paths".into(), by_session.into());
        }
        "wchp" => {
            let by_path: Map<String, Value> = super::watches_by_path(server).into_iter().map(|(path, ids)| (path, ids.into())).collect();
            out.insert("path_to_session_ids".into(), by_path.into());
        }
        _ => {}
    }
    out
}

/// `server_stats` (and the first part of `stats`), in ZooKeeper's shape.
fn server_stats(server: &Server, out: &mut Map<String, Value>) {
    let sum = super::summary(server);
    let (min, avg, max) = sum.latency;
    let stats = json!({
        "packets_sent": sum.sent,
        "packets_received": sum.received,
        "uptime": server.started.elapsed().as_millis() as u64,
        "data_dir_size": super::dir_size(&server.config.data_dir),
        "log_dir_size": super::log_size(server),
        "server_state": sum.mode,
        "last_processed_zxid": sum.zxid,
        "outstanding_requests": sum.outstanding,
        "avg_latency": Value::from(&Figure::Float(avg)),
        "max_latency": max,
        "min_latency": min,
        "num_alive_client_connections": sum.connections,
    });
    out.insert("version".into(), VERSION.into());
    out.insert("read_only".into(), server.read_only_now().into());
    out.insert("server_stats".into(), stats);
    out.insert("node_count".into(), sum.nodes.into());
}

/// One connection as ZooKeeper's `connections` (full) and `stats` (brief) list it.
fn connection(v: &ConnView, full: bool) -> Value {
    let mut c = Map::new();
    c.insert("remote_socket_address".into(), v.peer.to_string().into());
    c.insert("outstanding_requests".into(), v.queued.into());
    c.insert("packets_received".into(), v.received.into());
    c.insert("packets_sent".into(), v.sent.into());
    if full && v.session_id != 0 {
        c.insert("session_id".into(), v.session_id.into());
        c.insert("last_operation".into(), v.last_op.into());
        c.insert("established".into(), v.established_ms.into());
        c.insert("session_timeout".into(), v.timeout_ms.into());
        c.insert("last_cxid".into(), v.last_cxid.into());
        c.insert("last_zxid".into(), v.last_zxid.into());
        c.insert("last_response_time".into(), v.last_response_ms.into());
        c.insert("last_latency".into(), v.last_latency_ms.into());
        c.insert("min_latency".into(), v.min_latency_ms.into());
        c.insert("avg_latency".into(), v.avg_latency_ms.into());
        c.insert("max_latency".into(), v.max_latency_ms.into());
    }
    Value::Object(c)
}

/// Every open connection, as `connections` (full) and `stats` (brief) list them.
fn connections(server: &Server, full: bool, out: &mut Map<String, Value>) {
    let conns: Vec<Value> = server.connections.views().iter().map(|v| connection(v, full)).collect();
    out.insert("connections".into(), conns.into());
    out.insert("secure_connections".into(), Value::Array(Vec::new()));
}

/// `leader`: whether this server leads, and which server does.
fn leader(server: &Server, out: &mut Map<String, Value>) {
    let raft = server.raft.metrics().borrow().clone();
    let Some(id) = raft.current_leader else {
        out.insert("error".into(), "no leader is known".into());
        return;
    };
    let addr = raft.membership_config.membership().get_node(&id).map(|n| n.addr.clone()).unwrap_or_default();
    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(host, _)| host);
    out.insert("is_leader".into(), (id == server.config.server_id).into());
    out.insert("leader_id".into(), id.into());
    out.insert("leader_ip".into(), host.trim_start_matches('[').trim_end_matches(']').into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_distinct_name_and_alias() {
        let mut names: Vec<&str> = COMMANDS.iter().flat_map(|(long, word)| [*long, *word]).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        // "dirs", "dump", "hash" and "ruok" are their own aliases.
        assert_eq!(before - names.len(), 4);
    }

    #[test]
    fn replies_carry_their_length() {
        let r = String::from_utf8(reply("200 OK", "application/json", b"{}")).unwrap();
        assert_eq!(r, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    }
}
