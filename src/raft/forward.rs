//! Forwarding from a follower to the leader: client writes (which only the
//! leader may put in the log) and session liveness (which only the leader's
//! clock judges).
//!
//! One connection to the current leader carries every forwarded write in the
//! order the connections proposed them, so a session's writes enter the log
//! in the order it sent them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::wire::{self, PeerRequest, PeerResponse};
use super::batcher::OutcomeReceiver;
use super::link::Links;
use super::{Proposal, Response};
use crate::error::ZkError;

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, String>>>>>;
/// Followers' questions for the leader's read point, by request id.
type ReadWaiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<u64, String>>>>>;

struct Link {
    leader: u64,
    tx: mpsc::UnboundedSender<(u64, PeerRequest)>,
    waiters: Waiters,
    reads: ReadWaiters,
    alive: Arc<AtomicBool>,
    /// The reading task, stopped with the link: a link that went silent
    /// would otherwise wait on its socket forever.
    reader: tokio::task::AbortHandle,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
        // Dropping the senders tells every waiter the outcome is unknown.
        lock(&self.waiters).clear();
        lock(&self.reads).clear();
    }
}

/// The follower's link to the leader.
#[derive(Default)]
pub struct Forwarder {
    link: tokio::sync::Mutex<Option<Link>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Peer addresses from the local zoo.cfg, preferred over the membership's
    /// (see `network::PeerNetwork` for why).
    configured: std::collections::BTreeMap<u64, String>,
    links: Links,
}

fn lock<T>(w: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forwarder {
    /// A forwarder that dials the leader through `links` at the address the
    /// local config gives it.
    pub fn from_config(config: &crate::config::Config, links: Links) -> Self {
        let configured = config.peers.iter().map(|(id, p)| (*id, p.peer_addr())).collect();
        Forwarder { configured, links, ..Default::default() }
    }

    /// Where to dial the leader: its address in the local zoo.cfg if listed
    /// there, else the one its membership entry gives (`addr`).
    pub fn leader_addr<'a>(&'a self, leader: u64, addr: &'a str) -> &'a str {
        self.configured.get(&leader).map_or(addr, String::as_str)
    }

    /// Sends a write to the leader; the receiver yields the leader's outcome.
    pub async fn forward(&self, leader: u64, addr: &str, proposal: Proposal) -> Result<OutcomeReceiver, ZkError> {
        match self.send(leader, addr, PeerRequest::Forward(proposal), true).await? {
            Some(rx) => Ok(rx),
            None => Err(ZkError::System("forwarded write without a receiver".into())),
        }
    }

    /// Drops the link to `leader` (gone, or silent): the writes waiting on it
    /// learn that their outcome is unknown, and the next write dials again.
    pub async fn abandon(&self, leader: u64) {
        let mut link = self.link.lock().await;
        if link.as_ref().is_some_and(|l| l.leader == leader) {
            *link = None;
        }
    }

    /// Asks the leader for its read point (see `PeerRequest::ReadIndex`).
    pub async fn read_index(&self, leader: u64, addr: &str) -> Result<oneshot::Receiver<Result<u64, String>>, ZkError> {
        let mut link = self.link.lock().await;
        let l = self.usable(&mut link, leader, addr).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        lock(&l.reads).insert(id, tx);
        if l.tx.send((id, PeerRequest::ReadIndex)).is_err() {
            lock(&l.reads).remove(&id);
            return Err(ZkError::ConnectionLoss("link to the leader closed".into()));
        }
        Ok(rx)
    }

    /// The link to `leader`, dialled anew unless the current one is to it and alive.
    async fn usable<'a>(&self, link: &'a mut Option<Link>, leader: u64, addr: &str) -> Result<&'a Link, ZkError> {
        let usable = link.as_ref().is_some_and(|l| l.leader == leader && l.alive.load(Ordering::Acquire));
        if !usable {
            *link = Some(connect(&self.links, leader, self.leader_addr(leader, addr)).await?);
        }
        link.as_ref().ok_or_else(|| ZkError::ConnectionLoss("no link to the leader".into()))
    }

    /// Reports sessions whose clients were heard from (no answer awaited).
    pub async fn touch(&self, leader: u64, addr: &str, ids: Vec<i64>) -> Result<(), ZkError> {
        self.send(leader, addr, PeerRequest::Touch(ids), false).await.map(|_| ())
    }

    async fn send(&self, leader: u64, addr: &str, msg: PeerRequest, wait: bool) -> Result<Option<OutcomeReceiver>, ZkError> {
        let mut link = self.link.lock().await;
        let l = self.usable(&mut link, leader, addr).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let rx = if wait {
            let (tx, rx) = oneshot::channel();
            lock(&l.waiters).insert(id, tx);
            Some(rx)
        } else {
            None
        };
        if l.tx.send((id, msg)).is_err() {
            lock(&l.waiters).remove(&id);
            return Err(ZkError::ConnectionLoss("link to the leader closed".into()));
        }
        Ok(rx)
    }
}

async fn connect(links: &Links, leader: u64, addr: &str) -> Result<Link, ZkError> {
    let stream = tokio::time::timeout(Duration::from_secs(2), links.connect(addr))
        .await
        .map_err(|_| ZkError::ConnectionLoss(format!("leader {leader} at {addr}: connect timed out")))?
        .map_err(|e| ZkError::ConnectionLoss(format!("leader {leader} at {addr}: {e}")))?;
    let (mut sink, mut source) = stream.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, PeerRequest)>();
    let waiters: Waiters = Arc::default();
    let reads: ReadWaiters = Arc::default();
    let alive = Arc::new(AtomicBool::new(true));
    let (w_alive, r_alive) = (alive.clone(), alive.clone());
    tokio::spawn(async move {
        let _ = wire::pump(&mut rx, &mut sink).await;
        w_alive.store(false, Ordering::Release);
    });
    let (r_waiters, r_reads) = (waiters.clone(), reads.clone());
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = source.next().await {
            let Ok((id, resp)) = bincode::deserialize::<(u64, PeerResponse)>(&frame) else { break };
            match resp {
                PeerResponse::Forwarded(result) => {
                    if let Some(tx) = lock(&r_waiters).remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                PeerResponse::ReadIndex(result) => {
                    if let Some(tx) = lock(&r_reads).remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                _ => {}
            }
        }
        r_alive.store(false, Ordering::Release);
        // Dropping the senders tells every waiter the outcome is unknown.
        lock(&r_waiters).clear();
        lock(&r_reads).clear();
    });
    Ok(Link { leader, tx, waiters, reads, alive, reader: reader.abort_handle() })
}
