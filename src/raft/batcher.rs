//! The leader's proposer: batches concurrent transactions into log entries.
//!
//! Every write on the leader — from its own clients and forwarded by
//! followers — goes through one queue. openraft (0.9) appends one entry at a
//! time and waits for its fsync before taking the next, so an entry sent
//! while another is being made durable would only wait for its own fsync
//! after that one. Instead the batcher keeps one batch in the log's hands:
//! while it is being made durable, new transactions wait in the queue, and
//! the moment it is durable they all enter the log together as the next
//! entry, sharing its fsync (ZooKeeper's group commit). Under light load a
//! transaction is proposed at once, alone; under heavy load each entry
//! carries many, and Raft's per-entry costs (append, fsync, replication,
//! commit, apply, respond) are shared among them. Applying one batch
//! overlaps making the next durable.
//!
//! Order is kept: transactions enter the log in the order they were
//! submitted, which is what keeps each session's writes in the order it sent
//! them.

use std::sync::Arc;

use opentelemetry::KeyValue;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::write_budget::{self, Hold};
use super::{Proposal, Raft, Request, Response};
use crate::server::now_ms;
use crate::telemetry::{attr, Span};

/// Where the outcome of a submitted transaction arrives (an error is why it
/// has no known outcome).
pub type OutcomeReceiver = oneshot::Receiver<Result<Response, String>>;

/// Batches proposed but not yet answered. Only one at a time is waiting for
/// its fsync; this bounds the rest (durable, waiting for a quorum or to be
/// applied), e.g. on a leader that has lost its followers.
const MAX_IN_FLIGHT: usize = 8;
/// Most transactions in one log entry.
const MAX_TXNS: usize = 1024;
/// Most serialised bytes in one log entry (a single larger transaction still
/// goes alone), so entries stay well below the peer frame limit.
const MAX_BYTES: u64 = 4 << 20;

struct Queued {
    proposal: Proposal,
    size: u64,
    reply: oneshot::Sender<Result<Response, String>>,
    /// The transaction's `log write` span (see `telemetry`), usually none.
    span: Span,
    /// Its share of the write budget, given back with its outcome.
    hold: Hold,
}

/// The highest batch number that no longer holds up the next one: its entry
/// is durable in the log (reported by the log store), or its outcome is
/// known (it failed, or was never appended). Shared by the batcher and the
/// log store; cheap to clone.
#[derive(Clone)]
pub struct Settled(Arc<watch::Sender<u64>>);

impl Default for Settled {
    fn default() -> Self {
        Settled(Arc::new(watch::channel(0).0))
    }
}

impl Settled {
    /// Records that batches up to `batch` are settled (0 is no batch).
    pub fn advance(&self, batch: u64) {
        if batch > 0 {
            self.0.send_if_modified(|at| {
                let newer = batch > *at;
                if newer {
                    *at = batch;
                }
                newer
            });
        }
    }

    /// A view of the progress, for the one task that waits on it (which
    /// holds this `Settled` too, so the channel stays open).
    fn subscribe(&self) -> Progress {
        Progress(self.0.subscribe())
    }
}

/// Waits on [`Settled`] (one receiver for the batcher's lifetime).
struct Progress(watch::Receiver<u64>);

impl Progress {
    /// Waits until `batch` is settled.
    async fn reached(&mut self, batch: u64) {
        let _ = self.0.wait_for(|at| *at >= batch).await;
    }
}

/// The handle to the leader's batching queue.
pub struct Batcher {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Batcher {
    /// Starts the batching task for this server's Raft node; `settled` is
    /// the one its log store advances.
    pub fn start(raft: Raft, settled: Settled) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx, settled));
        Batcher { tx }
    }

    /// Queues a transaction for the log. Not async, so calls made in order
    /// are queued — and enter the log — in that order. `span` (the
    /// transaction's `log write` span, if traced) ends with its outcome, and
    /// `hold` is given back then.
    pub fn submit(&self, proposal: Proposal, span: Span, hold: Hold) -> Result<OutcomeReceiver, String> {
        let size = bincode::serialized_size(&proposal).map_err(|e| e.to_string())?;
        let (reply, rx) = oneshot::channel();
        self.tx.send(Queued { proposal, size, reply, span, hold }).map_err(|_| "the proposer has stopped".to_string())?;
        Ok(rx)
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Queued>, settled: Settled) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carried: Option<Queued> = None;
    let mut batch_no = 0u64;
    let mut progress = settled.subscribe();
    loop {
        let first = match carried.take() {
            Some(q) => q,
            None => match rx.recv().await {
                Some(q) => q,
                None => return,
            },
        };
        // Waiting here for the previous batch to be durable is what lets the
        // next one grow.
        progress.reached(batch_no).await;
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
        let txns = batch.len() as i64;
        let traced = batch.iter().any(|q| q.span.is_on());
        let mut proposals = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        // One share for the batch: given back in one step, not one per write.
        let mut hold: Hold = None;
        for q in batch {
            if traced {
                q.span.event("proposed", vec![KeyValue::new(attr::BATCH_SIZE, txns)]);
            }
            proposals.push(q.proposal);
            replies.push((q.reply, q.span));
            hold = write_budget::join(hold, q.hold);
        }
        batch_no += 1;
        let this = batch_no;
        match raft.client_write_ff(Request { time_ms: now_ms(), proposals: proposals.into(), batch: this }).await {
            Ok(mut pending) => {
                let settled = settled.clone();
                tokio::spawn(async move {
                    let result = match traced {
                        false => pending.await,
                        // A traced write also notes when its entry is durable
                        // here (always before it is applied), unless the
                        // outcome comes first: it never reached the log.
                        true => {
                            let mut progress = settled.subscribe();
                            tokio::select! {
                                biased;
                                _ = progress.reached(this) => {
                                    replies.iter().for_each(|(_, span)| span.event("durable", Vec::new()));
                                    pending.await
                                }
                                result = &mut pending => result,
                            }
                        }
                    };
                    // Usually long settled by now; not if it never reached
                    // the log (leadership lost first).
                    settled.advance(this);
                    drop(permit);
                    match result {
                        Ok(Ok(resp)) => {
                            let index = resp.log_id.index as i64;
                            let mut outcomes = resp.data.0.into_iter();
                            for (reply, span) in replies {
                                span.set(attr::LOG_INDEX, index);
                                span.event("applied", Vec::new());
                                let _ = reply.send(outcomes.next().ok_or_else(|| "no outcome for this transaction".to_string()));
                            }
                        }
                        Ok(Err(e)) => fail(replies, &e.to_string()),
                        Err(e) => fail(replies, &e.to_string()),
                    }
                    // Their outcomes are out: the budget may take new writes.
                    drop(hold);
                });
            }
            Err(e) => {
                settled.advance(this);
                fail(replies, &e.to_string());
            }
        }
    }
}

fn fail(replies: Vec<(oneshot::Sender<Result<Response, String>>, Span)>, why: &str) {
    for (reply, span) in replies {
        span.fail(why);
        let _ = reply.send(Err(why.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_next_batch_waits_until_the_previous_one_is_settled() {
        let settled = Settled::default();
        // Nothing comes before the first batch.
        settled.subscribe().reached(0).await;
        let waiting = tokio::spawn({
            let mut progress = settled.subscribe();
            async move { progress.reached(2).await }
        });
        settled.advance(1);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "batch 2 was released when only batch 1 was settled");
        settled.advance(3);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        // Older news changes nothing.
        settled.advance(2);
        assert_eq!(*settled.0.borrow(), 3);
    }
}
