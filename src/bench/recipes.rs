//! The two workloads that follow a recipe rather than a request stream:
//! watch fan-out and the sequential-ephemeral lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::{event_type, CreateMode, ErrorCode};
use tokio::sync::mpsc;

use super::pipeline::REPLY_TIMEOUT;
use super::stats::{Live, Recorder, Window};
use crate::client::{Client, ClientError};

/// What the watch workload measured.
pub struct WatchOutcome {
    /// One sample per event delivered: time from the write's reply to the
    /// event's arrival (0 when the event came first).
    pub rec: Recorder,
    /// The same events timed from the moment the write was sent (commit
    /// and delivery together).
    pub from_send: Recorder,
    /// Writes made inside the measured window.
    pub writes: u64,
}

/// What a watcher tells the writer.
enum Ack {
    /// The watch is armed (first time).
    Armed,
    /// An event arrived at this instant and the watch is armed again.
    Event(Instant),
    /// The watcher stopped on an error.
    Failed(String),
}

/// One writer (the first client) sets `key` over and over; every other
/// client keeps a one-shot data watch on it, re-arming it after each event.
/// The writer waits until every watcher has re-armed before writing again,
/// so each write fires one event per watcher.
pub async fn watch(clients: &[Arc<Client>], key: &str, value: Bytes, window: Window, live: Arc<Live>) -> WatchOutcome {
    let (mut rec, mut from_send) = (Recorder::new(), Recorder::new());
    let Some((writer, watchers)) = clients.split_first() else {
        return WatchOutcome { rec, from_send, writes: 0 };
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (ack_tx, mut acks) = mpsc::unbounded_channel();
    let tasks: Vec<_> = watchers.iter().map(|c| tokio::spawn(watcher(c.clone(), key.to_string(), ack_tx.clone(), stop.clone()))).collect();
    drop(ack_tx);

    let mut alive = watchers.len();
    let mut armed = 0;
    while armed < alive {
        match tokio::time::timeout(REPLY_TIMEOUT, acks.recv()).await {
            Ok(Some(Ack::Armed)) => armed += 1,
            Ok(Some(Ack::Failed(why))) => {
                rec.failure(&live, &why);
                alive -= 1;
            }
            Ok(Some(Ack::Event(_))) => {}
            Ok(None) | Err(_) => {
                rec.failure(&live, "timeout");
                alive = 0;
            }
        }
    }

    let mut writes = 0;
    while alive > 0 && window.open(Instant::now()) {
        let sent = Instant::now();
        if let Err(e) = writer.set_data(key, &value, -1).await {
            rec.failure(&live, &failure_name(&e));
            break;
        }
        let replied = Instant::now();
        if window.measures(replied) {
            writes += 1;
        }
        let mut pending = alive;
        while pending > 0 {
            match tokio::time::timeout(REPLY_TIMEOUT, acks.recv()).await {
                Ok(Some(Ack::Event(at))) => {
                    rec.success_at(&window, &live, at, at.saturating_duration_since(replied));
                    from_send.sample(&window, at, at.saturating_duration_since(sent));
                    pending -= 1;
                }
                Ok(Some(Ack::Armed)) => {}
                Ok(Some(Ack::Failed(why))) => {
                    rec.failure(&live, &why);
                    alive -= 1;
                    pending -= 1;
                }
                Ok(None) | Err(_) => {
                    rec.failure(&live, "timeout (event missing)");
                    alive = 0;
                    pending = 0;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    WatchOutcome { rec, from_send, writes }
}

async fn watcher(client: Arc<Client>, key: String, acks: mpsc::UnboundedSender<Ack>, stop: Arc<AtomicBool>) {
    if let Err(e) = client.get_data(&key, true).await {
        let _ = acks.send(Ack::Failed(failure_name(&e)));
        return;
    }
    let _ = acks.send(Ack::Armed);
    while !stop.load(Ordering::Relaxed) {
        let Some(ev) = client.next_event(Duration::from_millis(100)).await else {
            continue;
        };
        let at = Instant::now();
        if ev.event_type != event_type::NODE_DATA_CHANGED || ev.path != key {
            continue;
        }
        if let Err(e) = client.get_data(&key, true).await {
            let _ = acks.send(Ack::Failed(failure_name(&e)));
            return;
        }
        let _ = acks.send(Ack::Event(at));
    }
}

/// What the lock workload measured.
pub struct LockOutcome {
    /// One sample per full cycle: create, wait for the turn, release.
    pub rec: Recorder,
    /// Times a session acquired the lock while another believed it held it
    /// (must be 0).
    pub violations: u64,
}

/// Every client runs lock cycles on one lock, the znode `dir`, with the
/// sequential-ephemeral recipe: create `dir/lk-` (ephemeral, sequential),
/// list the children; the lowest holds the lock; any other watches its
/// predecessor with exists and waits for its deletion. Release is a delete.
pub async fn lock(clients: &[Arc<Client>], dir: &str, window: Window, live: Arc<Live>) -> LockOutcome {
    let held = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let (client, dir, live) = (c.clone(), dir.to_string(), live.clone());
            let (held, violations) = (held.clone(), violations.clone());
            tokio::spawn(async move {
                let mut rec = Recorder::new();
                while window.open(Instant::now()) {
                    let t0 = Instant::now();
                    match lock_cycle(&client, &dir, &held, &violations).await {
                        Ok(()) => rec.success(&window, &live, t0, Instant::now()),
                        Err(e) => {
                            rec.failure(&live, &failure_name(&e));
                            break;
                        }
                    }
                }
                rec
            })
        })
        .collect();
    let mut rec = Recorder::new();
    for t in tasks {
        match t.await {
            Ok(r) => rec.merge(r),
            Err(_) => rec.failure(&live, "session task failed"),
        }
    }
    LockOutcome { rec, violations: violations.load(Ordering::Relaxed) }
}

async fn lock_cycle(client: &Client, dir: &str, held: &AtomicBool, violations: &AtomicU64) -> Result<(), ClientError> {
    let mine = client.create(&format!("{dir}/lk-"), b"", CreateMode::EphemeralSequential).await?;
    let my_name = mine.rsplit('/').next().unwrap_or(&mine).to_string();
    loop {
        let mut children = client.get_children(dir, false).await?;
        // Same prefix and a fixed-width counter: name order is sequence order.
        children.sort_unstable();
        let pos = children.iter().position(|c| *c == my_name).ok_or(ClientError::Server(ErrorCode::NoNode))?;
        let Some(pred) = pos.checked_sub(1).map(|p| format!("{dir}/{}", children[p])) else {
            break;
        };
        if client.exists(&pred, true).await?.is_some() {
            loop {
                match client.next_event(REPLY_TIMEOUT).await {
                    Some(ev) if ev.path == pred && ev.event_type == event_type::NODE_DELETED => break,
                    Some(_) => {}
                    None => return Err(ClientError::Timeout),
                }
            }
        }
    }
    if held.swap(true, Ordering::SeqCst) {
        violations.fetch_add(1, Ordering::Relaxed);
    }
    // Hold across a scheduling point so an overlapping holder would be seen.
    tokio::task::yield_now().await;
    held.store(false, Ordering::SeqCst);
    client.delete(&mine, -1).await
}

/// A short name for a client error, as counted in the report.
pub fn failure_name(e: &ClientError) -> String {
    match e {
        ClientError::Server(code) => code.name().to_string(),
        ClientError::Timeout => "timeout".to_string(),
        ClientError::Io(_) => "connection lost".to_string(),
        other => other.to_string(),
    }
}
