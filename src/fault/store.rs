//! A tiny fenced store: the "storage service" of DDIA Figure 8-4.
//!
//! It speaks one line per request over TCP:
//! `WRITE <token> <client> <value>` is answered `OK` when `token` is at least
//! the highest token it has accepted so far, else `STALE <highest>` and the
//! write is not applied. This is all a downstream system has to do to be
//! safe against a paused lock holder: remember the largest fencing token it
//! accepted and refuse anything older. Every request is logged with the time
//! it was decided, in decision order, for the lock checker.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::procs::now_us;

/// One write the store decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWrite {
    /// When it was decided, µs since the epoch.
    pub at_us: i64,
    /// Who wrote.
    pub client: String,
    /// The fencing token presented.
    pub token: i64,
    /// The value.
    pub value: String,
    /// Accepted (true) or refused as stale.
    pub accepted: bool,
}

#[derive(Default)]
struct Inner {
    highest: Option<i64>,
    log: Vec<StoreWrite>,
    /// Test-only: accept everything (to show the checker catches it).
    unfenced: bool,
}

/// The store; clone to share.
#[derive(Clone, Default)]
pub struct FencedStore {
    inner: Arc<Mutex<Inner>>,
}

impl FencedStore {
    /// A store that accepts every write, whatever its token: what an unfenced
    /// downstream does (the broken behaviour the checker must catch).
    pub fn unfenced() -> Self {
        let s = FencedStore::default();
        s.lock().unfenced = true;
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides one write: accepted unless `token` is below the highest accepted.
    pub fn write(&self, client: &str, token: i64, value: &str) -> bool {
        let mut s = self.lock();
        let accepted = s.unfenced || s.highest.is_none_or(|h| token >= h);
        if accepted {
            s.highest = Some(s.highest.map_or(token, |h| h.max(token)));
        }
        let at_us = now_us();
        s.log.push(StoreWrite { at_us, client: client.to_string(), token, value: value.to_string(), accepted });
        accepted
    }

    /// The highest token accepted so far.
    pub fn highest(&self) -> Option<i64> {
        self.lock().highest
    }

    /// Every write decided so far, in decision order.
    pub fn log(&self) -> Vec<StoreWrite> {
        self.lock().log.clone()
    }

    /// Serves the line protocol on a free 127.0.0.1 port; returns the address.
    pub async fn serve(&self) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let store = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { continue };
                let store = store.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let answer = match parse(&line) {
                            Some((token, client, value)) => {
                                if store.write(client, token, value) {
                                    "OK\n".to_string()
                                } else {
                                    format!("STALE {}\n", store.highest().unwrap_or(0))
                                }
                            }
                            None => "ERR expected: WRITE <token> <client> <value>\n".to_string(),
                        };
                        if wr.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok((addr, task))
    }
}

fn parse(line: &str) -> Option<(i64, &str, &str)> {
    let mut parts = line.trim_end().splitn(4, ' ');
    if parts.next()? != "WRITE" {
        return None;
    }
    let token = parts.next()?.parse().ok()?;
    Some((token, parts.next()?, parts.next().unwrap_or("")))
}

/// The store's answer to one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreReply {
    /// Applied.
    Ok,
    /// Refused: a larger token was accepted before.
    Stale(i64),
}

/// Client side (blocking, for the lock-client processes): one write.
pub fn write_blocking(addr: &str, token: i64, client: &str, value: &str) -> std::io::Result<StoreReply> {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    s.write_all(format!("WRITE {token} {client} {value}\n").as_bytes())?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    let line = line.trim();
    if line == "OK" {
        Ok(StoreReply::Ok)
    } else if let Some(h) = line.strip_prefix("STALE ") {
        Ok(StoreReply::Stale(h.parse().unwrap_or(0)))
    } else {
        Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("store answered {line:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_tokens_below_the_highest_accepted() {
        let s = FencedStore::default();
        assert!(s.write("a", 33, "x"));
        assert!(s.write("a", 33, "y"));
        assert!(s.write("b", 34, "z"));
        assert!(!s.write("a", 33, "late"));
        assert_eq!(s.highest(), Some(34));
        assert_eq!(s.log().iter().filter(|w| w.accepted).count(), 3);
        assert!(FencedStore::unfenced().write("a", 1, "") && FencedStore::unfenced().write("a", 0, ""));
    }

    #[test]
    fn parses_the_line_protocol() {
        assert_eq!(parse("WRITE 12 A hello world\n"), Some((12, "A", "hello world")));
        assert_eq!(parse("WRITE x A v"), None);
        assert_eq!(parse("READ 1 A"), None);
    }
}
