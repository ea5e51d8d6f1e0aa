//! A lock client as its own process (so the harness and the demo can pause
//! it with SIGSTOP, as a GC pause would): takes a lock with ZooKeeper's
//! sequential-ephemeral recipe, uses the czxid of its lock znode as the
//! fencing token, and writes to a fenced store while it believes it holds
//! the lock.
//!
//! It reports what it does on stdout, one event per line:
//! `EV <kind> t=<µs since epoch> key=value...`, read by `LockEvent::parse`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use jute::{event_type, CreateMode, ErrorCode};

use super::procs::now_us;
use super::store::{write_blocking, StoreReply};
use crate::client::{Client, ClientError};

/// Arguments of the hidden `lock-client` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct LockClientArgs {
    /// Client addresses of the ensemble, comma-separated.
    #[arg(long)]
    pub servers: String,
    /// Address of the fenced store.
    #[arg(long)]
    pub store: String,
    /// This client's name (in the store's log).
    #[arg(long)]
    pub name: String,
    /// The lock's znode (must exist).
    #[arg(long, default_value = "/lock")]
    pub lock: String,
    /// Session timeout asked for, ms.
    #[arg(long, default_value_t = 2000)]
    pub session_ms: i32,
    /// Lock tenures to run (0: until killed).
    #[arg(long, default_value_t = 0)]
    pub cycles: u64,
    /// Time between taking the lock and the first write ("work"), ms.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// Writes per tenure.
    #[arg(long, default_value_t = 3)]
    pub writes: u32,
    /// Pause between writes, ms.
    #[arg(long, default_value_t = 20)]
    pub gap_ms: u64,
}

/// Exit code when the last write was refused as stale.
pub const EXIT_STALE: u8 = 3;

fn emit(kind: &str, fields: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "EV {kind} t={} {fields}", now_us());
    let _ = out.flush();
}

/// Runs the client; see the module doc.
pub fn main(args: LockClientArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lock-client: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

async fn within<T>(limit: Duration, f: impl std::future::Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
    tokio::time::timeout(limit, f).await.unwrap_or(Err(ClientError::Timeout))
}

async fn run(args: LockClientArgs) -> ExitCode {
    let servers: Vec<String> = args.servers.split(',').map(str::to_string).collect();
    let limit = Duration::from_millis(2 * args.session_ms.max(100) as u64);
    let mut next_server = std::process::id() as usize;
    let mut session: Option<Client> = None;
    let mut cycle = 0u64;
    let mut last_exit = ExitCode::SUCCESS;
    while args.cycles == 0 || cycle < args.cycles {
        cycle += 1;
        let client = match session.take() {
            Some(c) => c,
            None => {
                next_server = next_server.wrapping_add(1);
                let addr = &servers[next_server % servers.len()];
                match within(limit, Client::connect(addr, args.session_ms)).await {
                    Ok(c) => {
                        emit("session", &format!("id={:x} server={addr} timeout_ms={}", c.session_id, c.timeout_ms));
                        c
                    }
                    Err(e) => {
                        emit("session-failed", &format!("server={addr} why={}", word(&e)));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        last_exit = ExitCode::FAILURE;
                        continue;
                    }
                }
            }
        };
        emit("acquire-invoke", "");
        let (node, token) = match within(limit, acquire(&client, &args.lock)).await {
            Ok(got) => got,
            Err(e) => {
                // The session may still hold a queued lock znode: it ends with the session.
                emit("session-lost", &format!("during=acquire why={}", word(&e)));
                last_exit = ExitCode::FAILURE;
                continue;
            }
        };
        emit("acquired", &format!("token={token} node={node} session={:x}", client.session_id));
        if args.hold_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.hold_ms)).await;
        }
        last_exit = ExitCode::SUCCESS;
        for w in 0..args.writes {
            let value = format!("{}-{token}-{w}", args.name);
            let t0 = now_us();
            let (store, name) = (args.store.clone(), args.name.clone());
            let value2 = value.clone();
            let reply = tokio::task::spawn_blocking(move || write_blocking(&store, token, &name, &value2)).await;
            let result = match reply {
                Ok(Ok(StoreReply::Ok)) => "ok".to_string(),
                Ok(Ok(StoreReply::Stale(h))) => {
                    last_exit = ExitCode::from(EXIT_STALE);
                    format!("stale highest={h}")
                }
                Ok(Err(e)) => {
                    last_exit = ExitCode::FAILURE;
                    format!("error why={}", e.to_string().replace(' ', "_"))
                }
                Err(_) => "error why=task".to_string(),
            };
            emit("write", &format!("t0={t0} token={token} value={value} result={result}"));
            if args.gap_ms > 0 {
                tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
            }
        }
        emit("release-invoke", &format!("token={token}"));
        match within(limit, client.delete(&node, -1)).await {
            Ok(()) => {
                emit("released", &format!("token={token}"));
                session = Some(client);
            }
            Err(e) => emit("session-lost", &format!("during=release token={token} why={}", word(&e))),
        }
    }
    last_exit
}

/// The bench's short name for the error, as one word for the event line.
fn word(e: &ClientError) -> String {
    crate::bench::recipes::failure_name(e).replace(' ', "_")
}

/// The recipe: create `lock/lk-` ephemeral-sequential; the lowest child
/// holds the lock; the others wait for the deletion of their predecessor.
/// Returns the lock znode and its czxid, the fencing token.
pub async fn acquire(client: &Client, lock: &str) -> Result<(String, i64), ClientError> {
    let mine = client.create(&format!("{lock}/lk-"), b"", CreateMode::EphemeralSequential).await?;
    let token = client.exists(&mine, false).await?.ok_or(ClientError::Server(ErrorCode::NoNode))?.czxid;
    let my_name = mine.rsplit('/').next().unwrap_or(&mine).to_string();
    loop {
        let mut children = client.get_children(lock, false).await?;
        children.sort_unstable();
        let pos = children.iter().position(|c| *c == my_name).ok_or(ClientError::Server(ErrorCode::NoNode))?;
        let Some(pred) = pos.checked_sub(1).map(|p| format!("{lock}/{}", children[p])) else {
            return Ok((mine, token));
        };
        if client.exists(&pred, true).await?.is_some() {
            // Re-list at least every second, whatever happens to events.
            let until = tokio::time::Instant::now() + Duration::from_secs(1);
            while let Some(ev) = client.next_event(until.saturating_duration_since(tokio::time::Instant::now())).await {
                if ev.path == pred && ev.event_type == event_type::NODE_DELETED {
                    break;
                }
            }
        }
    }
}

/// One parsed event line of a lock client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEvent {
    /// The event kind (`acquired`, `write`...).
    pub kind: String,
    /// When it was emitted, µs since the epoch.
    pub t: i64,
    /// The other `key=value` fields.
    pub fields: Vec<(String, String)>,
}

impl LockEvent {
    /// Parses an `EV kind t=... k=v` line.
    pub fn parse(line: &str) -> Option<LockEvent> {
        let mut parts = line.split_whitespace();
        if parts.next()? != "EV" {
            return None;
        }
        let kind = parts.next()?.to_string();
        let mut t = None;
        let mut fields = Vec::new();
        for p in parts {
            let (k, v) = p.split_once('=')?;
            if k == "t" {
                t = v.parse().ok();
            } else {
                fields.push((k.to_string(), v.to_string()));
            }
        }
        Some(LockEvent { kind, t: t?, fields })
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A numeric field.
    pub fn num(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_event_lines() {
        let e = LockEvent::parse("EV write t=17 t0=15 token=42 value=A-42-0 result=stale highest=50").unwrap();
        assert_eq!((e.kind.as_str(), e.t, e.num("token"), e.get("result")), ("write", 17, Some(42), Some("stale")));
        assert_eq!(LockEvent::parse("hello"), None);
    }
}
