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

use super::batcher::OutcomeReceiver;
use super::link::Links;
use super::wire::{self, PeerRequest, PeerResponse};
use super::write_budget::Hold;
use super::{Proposal, Response};
use crate::error::ZkError;
use crate::telemetry::Span;

/// Who waits for the leader's answer to a request, and for which kind.
enum Waiter {
    /// A forwarded write's outcome, and its `forward to leader` span
    /// (`telemetry`), which ends as the answer arrives; its share of the
    /// write budget is given back then.
    Outcome(oneshot::Sender<Result<Response, String>>, Span, Hold),
    /// A read point (`PeerRequest::ReadIndex`).
    ReadIndex(oneshot::Sender<Result<u64, String>>),
    /// The leader's note of where sessions are attached (`Forwarder::attach`).
    Touched(oneshot::Sender<()>),
}

/// The requests waiting for an answer, by request id.
type Waiters = Arc<Mutex<HashMap<u64, Waiter>>>;

struct Link {
    leader: u64,
    tx: mpsc::UnboundedSender<(u64, PeerRequest)>,
    waiters: Waiters,
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
    }
}

/// The follower's link to the leader.
pub struct Forwarder {
    link: tokio::sync::Mutex<Option<Link>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Peer addresses from the local zoo.cfg, preferred over the membership's
    /// (see `network::PeerNetwork` for why).
    configured: std::collections::BTreeMap<u64, String>,
    links: Links,
    /// This server's sessions, named to a leader on each new link before
    /// anything else (`PeerRequest::Touch` with `wire::ATTACHED`).
    shared: Arc<crate::state::Shared>,
}

fn lock<T>(w: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forwarder {
    /// A forwarder that dials the leader through `links` at the address the
    /// local config gives it.
    pub fn from_config(config: &crate::config::Config, links: Links, shared: Arc<crate::state::Shared>) -> Self {
        let configured = config.peers.iter().map(|(id, p)| (*id, p.peer_addr())).collect();
        Forwarder { link: Default::default(), next_id: Default::default(), configured, links, shared }
    }

    /// Where to dial the leader: its address in the local zoo.cfg if listed
    /// there, else the one its membership entry gives (`addr`).
    pub fn leader_addr<'a>(&'a self, leader: u64, addr: &'a str) -> &'a str {
        self.configured.get(&leader).map_or(addr, String::as_str)
    }

    /// Sends a write to the leader; the receiver yields the leader's
    /// outcome. If traced, `span` (the write's `forward to leader`) is the
    /// parent of the leader's spans and ends when the answer arrives; `hold`
    /// is given back then (or once the link is lost).
    pub async fn forward(&self, leader: u64, addr: &str, proposal: Proposal, span: Span, hold: Hold) -> Result<OutcomeReceiver, ZkError> {
        let (tx, rx) = oneshot::channel();
        let msg = match span.parent() {
            Some(trace) => PeerRequest::ForwardTraced(proposal, trace),
            None => PeerRequest::Forward(proposal),
        };
        self.send(leader, addr, msg, Some(Waiter::Outcome(tx, span, hold))).await?;
        Ok(rx)
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
        let (tx, rx) = oneshot::channel();
        self.send(leader, addr, PeerRequest::ReadIndex, Some(Waiter::ReadIndex(tx))).await?;
        Ok(rx)
    }

    /// Reports sessions whose clients were heard from (no answer awaited).
    pub async fn touch(&self, leader: u64, addr: &str, ids: Vec<i64>) -> Result<(), ZkError> {
        self.send(leader, addr, PeerRequest::Touch(ids), None).await
    }

    /// Tells the leader that `session`'s client attached here, and returns
    /// once it has noted it.
    pub async fn attach(&self, leader: u64, addr: &str, session: i64) -> Result<(), ZkError> {
        let (tx, rx) = oneshot::channel();
        self.send(leader, addr, PeerRequest::Touch(vec![super::wire::ATTACHED, session]), Some(Waiter::Touched(tx))).await?;
        rx.await.map_err(|_| ZkError::ConnectionLoss("link to the leader lost".into()))
    }

    /// Sends `msg` on the link to `leader` (dialled anew unless the current
    /// one is to it and alive), with `waiter` told the answer.
    async fn send(&self, leader: u64, addr: &str, msg: PeerRequest, waiter: Option<Waiter>) -> Result<(), ZkError> {
        let mut link = self.link.lock().await;
        let usable = link.as_ref().is_some_and(|l| l.leader == leader && l.alive.load(Ordering::Acquire));
        if !usable {
            let fresh = connect(&self.links, leader, self.leader_addr(leader, addr)).await?;
            // A new link is new to the leader: it learns first which sessions
            // write through it, or it would take their writes for ones from
            // connections their clients left.
            let mut attached = vec![super::wire::ATTACHED];
            attached.extend(self.shared.sessions.attached());
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = fresh.tx.send((id, PeerRequest::Touch(attached)));
            *link = Some(fresh);
        }
        let Some(l) = link.as_ref() else { return Err(ZkError::ConnectionLoss("no link to the leader".into())) };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(waiter) = waiter {
            lock(&l.waiters).insert(id, waiter);
        }
        if l.tx.send((id, msg)).is_err() {
            lock(&l.waiters).remove(&id);
            return Err(ZkError::ConnectionLoss("link to the leader closed".into()));
        }
        Ok(())
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
    let alive = Arc::new(AtomicBool::new(true));
    let (w_alive, r_alive) = (alive.clone(), alive.clone());
    tokio::spawn(async move {
        let _ = wire::pump(&mut rx, &mut sink).await;
        w_alive.store(false, Ordering::Release);
    });
    let r_waiters = waiters.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = source.next().await {
            let Ok((id, resp)) = bincode::deserialize::<(u64, PeerResponse)>(&frame) else { break };
            let waiter = lock(&r_waiters).remove(&id);
            match (waiter, resp) {
                (Some(Waiter::Outcome(tx, span, _hold)), PeerResponse::Forwarded(result)) => {
                    if let Err(e) = &result {
                        span.fail(e.clone());
                    }
                    span.end();
                    let _ = tx.send(result);
                }
                (Some(Waiter::ReadIndex(tx)), PeerResponse::ReadIndex(result)) => {
                    let _ = tx.send(result);
                }
                (Some(Waiter::Touched(tx)), PeerResponse::Touched) => {
                    let _ = tx.send(());
                }
                _ => {}
            }
        }
        r_alive.store(false, Ordering::Release);
        // Dropping the senders tells every waiter the outcome is unknown.
        lock(&r_waiters).clear();
    });
    Ok(Link { leader, tx, waiters, alive, reader: reader.abort_handle() })
}
