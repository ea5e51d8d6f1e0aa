//! The leader's proposer: batches concurrent transactions into log entries.
//!
//! Every write on the leader — from its own clients and forwarded by
//! followers — goes through one queue. While earlier batches are in flight
//! (being fsynced, replicated, applied), new transactions wait in the queue
//! and enter the log together as the next entry. Under light load a
//! transaction is proposed at once, alone; under heavy load each entry carries
//! many, and Raft's per-entry costs (append, fsync, replication, commit,
//! apply, respond) are shared among them.
//!
//! Order is kept: transactions enter the log in the order they were
//! submitted, which is what keeps each session's writes in the order it sent
//! them.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{Proposal, Raft, Request, Response};
use crate::server::now_ms;

/// Where the outcome of a submitted transaction arrives (an error is why it
/// has no known outcome).
pub type OutcomeReceiver = oneshot::Receiver<Result<Response, String>>;

/// Batches in flight at once. One is being applied while the next is being
/// made durable and a third forms: more would only add queueing.
const MAX_IN_FLIGHT: usize = 3;
/// Most transactions in one log entry.
const MAX_TXNS: usize = 1024;
/// Most serialised bytes in one log entry (a single larger transaction still
/// goes alone), so entries stay well below the peer frame limit.
const MAX_BYTES: u64 = 4 << 20;

struct Queued {
    proposal: Proposal,
    size: u64,
    reply: oneshot::Sender<Result<Response, String>>,
}

/// The handle to the leader's batching queue.
pub struct Batcher {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Batcher {
    /// Starts the batching task for this server's Raft node.
    pub fn start(raft: Raft) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Batcher { tx }
    }

    /// Queues a transaction for the log. Not async, so calls made in order
    /// are queued — and enter the log — in that order.
    pub fn submit(&self, proposal: Proposal) -> Result<OutcomeReceiver, String> {
        let size = bincode::serialized_size(&proposal).map_err(|e| e.to_string())?;
        let (reply, rx) = oneshot::channel();
        self.tx.send(Queued { proposal, size, reply }).map_err(|_| "the proposer has stopped".to_string())?;
        Ok(rx)
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carried: Option<Queued> = None;
    loop {
        let first = match carried.take() {
            Some(q) => q,
            None => match rx.recv().await {
                Some(q) => q,
                None => return,
            },
        };
        // Waiting here for a batch in flight to finish is what lets the next
        // one grow.
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let mut bytes = first.size;
        let mut batch = vec![first];
        while batch.len() < MAX_TXNS {
            let Ok(q) = rx.try_recv() else { break };
            if bytes + q.size > MAX_BYTES {
                carried = Some(q);
                break;
            }
            bytes += q.size;
            batch.push(q);
        }
        let (proposals, replies): (Vec<Proposal>, Vec<_>) = batch.into_iter().map(|q| (q.proposal, q.reply)).unzip();
        match raft.client_write_ff(Request { time_ms: now_ms(), proposals: proposals.into() }).await {
            Ok(pending) => {
                tokio::spawn(async move {
                    let result = pending.await;
                    drop(permit);
                    match result {
                        Ok(Ok(resp)) => {
                            let mut outcomes = resp.data.0.into_iter();
                            for reply in replies {
                                let _ = reply.send(outcomes.next().ok_or_else(|| "no outcome for this transaction".to_string()));
                            }
                        }
                        Ok(Err(e)) => fail(replies, &e.to_string()),
                        Err(e) => fail(replies, &e.to_string()),
                    }
                });
            }
            Err(e) => fail(replies, &e.to_string()),
        }
    }
}

fn fail(replies: Vec<oneshot::Sender<Result<Response, String>>>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(why.to_string()));
    }
}
