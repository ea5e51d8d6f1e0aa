//! The server side of the peer network: answers Raft RPCs, puts forwarded
//! client writes into the log in arrival order, and notes session liveness
//! reported by followers.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use openraft::raft::{VoteRequest, VoteResponse};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use super::leader_gone::LeaderWatch;
use super::link::Links;
use super::wire::{self, PeerRequest, PeerResponse, PeerStream};
use crate::server::Server;
use crate::telemetry::Span;

/// Asks a peer whether it already belongs to a formed ensemble (false if unreachable).
pub async fn peer_initialized(links: &Links, addr: &str) -> bool {
    match ask(links, addr, &PeerRequest::Status, Duration::from_secs(2)).await {
        Some(PeerResponse::Status { initialized }) => initialized,
        _ => false,
    }
}

/// One question to the peer at `addr` on a connection of its own, and its
/// answer; None if it could not be had within `within`.
pub async fn ask(links: &Links, addr: &str, req: &PeerRequest, within: Duration) -> Option<PeerResponse> {
    ask_why(links, addr, req, within).await.ok()
}

/// Why a question to a peer got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum NoAnswer {
    /// No connection, or no answer in time.
    Unreachable,
    /// The peer took the question and hung up (or answered nonsense): a
    /// build that does not know the question.
    HungUp,
}

/// As [`ask`], saying why there is no answer.
pub async fn ask_why(links: &Links, addr: &str, req: &PeerRequest, within: Duration) -> Result<PeerResponse, NoAnswer> {
    let exchange = async {
        let mut conn = links.connect(addr).await.map_err(|_| NoAnswer::Unreachable)?;
        wire::send(&mut conn, 1, req).await.map_err(|_| NoAnswer::Unreachable)?;
        wire::recv::<PeerResponse>(&mut conn).await.map(|(_, resp)| resp).map_err(|_| NoAnswer::HungUp)
    };
    tokio::time::timeout(within, exchange).await.unwrap_or(Err(NoAnswer::Unreachable))
}

/// Peer connections that may be in their handshake (TLS, quorum SASL, the
/// first request) at once. A member's connections pass it in milliseconds;
/// a flood of connections that never finish it would otherwise hold a
/// descriptor each for the handshake's time limit, out of the share kept
/// back for storage (`open_files::RESERVED`).
pub const MAX_HANDSHAKES: usize = 32;

/// Accepts peer connections until the process ends.
pub async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "peer connection refused: {MAX_HANDSHAKES} others are still in their handshake");
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let accepted = server.links.accept(stream).await;
                    drop(handshake);
                    let (conn, first) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::debug!(%peer, "peer connection ended: {e}");
                            return;
                        }
                    };
                    // Numbered from 1 (0 is this server's own clients, `session::HERE`).
                    let origin = server.next_conn_id();
                    if let Err(e) = serve(server.clone(), conn, first, origin).await {
                        tracing::debug!(%peer, "peer connection ended: {e}");
                    }
                    server.shared.sessions.release(origin);
                });
            }
            Err(e) => {
                tracing::warn!("peer accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A member whose data was wiped must not vote for a candidate of an
/// ensemble that already has history: it no longer remembers the vote it
/// may have cast in that term, nor the entries it acknowledged, so its vote
/// could elect a second leader of a term or a leader missing committed
/// writes. It votes again once a leader has brought it up to date (a log or
/// an installed snapshot). A candidate whose log is only the bootstrap
/// membership entry (index 0) is the first election of a fresh ensemble,
/// where every other member is empty too: that vote is answered normally.
fn refuse_vote_while_empty(server: &Server, rpc: &VoteRequest<u64>) -> Option<VoteResponse<u64>> {
    let m = server.raft.metrics().borrow().clone();
    let empty = m.last_log_index.is_none() && m.last_applied.is_none() && m.snapshot.is_none();
    let history = rpc.last_log_id.is_some_and(|l| l.index > 0);
    if !(empty && history) {
        return None;
    }
    tracing::info!(candidate = %rpc.vote, "refusing to vote: this server holds no data yet");
    Some(VoteResponse { vote: m.vote, vote_granted: false, last_log_id: None })
}

/// Puts a forwarded write into the leader's queue; its answer is sent on
/// `tx` once known. Returns the answer now only if it was refused: also
/// when its session's client has attached elsewhere since (the member then
/// closes that connection, as ZooKeeper does on SessionMoved).
fn forward(
    server: &Server,
    tx: &mpsc::UnboundedSender<(u64, PeerResponse)>,
    id: u64,
    proposal: super::Proposal,
    trace: Span,
    origin: u64,
) -> Option<PeerResponse> {
    if !server.shared.sessions.may_write(proposal.session_id, origin) {
        let moved = format!("session {:#x} moved to another server", proposal.session_id);
        trace.fail(moved.clone());
        return Some(PeerResponse::Forwarded(Err(moved)));
    }
    // Entering the leader's queue happens here, in arrival order (the
    // leader's clock stamps the batch); only the wait for the outcome runs
    // concurrently.
    match server.batcher.submit(proposal, trace, None) {
        Ok(pending) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = pending.await.unwrap_or_else(|_| Err("the leader's proposer stopped".into()));
                let _ = tx.send((id, PeerResponse::Forwarded(result)));
            });
            None
        }
        Err(e) => Some(PeerResponse::Forwarded(Err(e))),
    }
}

/// Answers one member's connection; `origin` numbers it for the sessions
/// whose clients attached at that member (`session::SessionTracker::may_write`).
async fn serve(server: Arc<Server>, conn: PeerStream, first: Option<BytesMut>, origin: u64) -> Result<(), wire::WireError> {
    // However this connection ends, a leader that replicated over it may be gone.
    let mut leader_watch = LeaderWatch::new(server.clone());
    let (mut sink, source) = conn.split();
    // The first request, when the member did not open with quorum SASL, was read already.
    let mut source = futures::stream::iter(first.map(Ok)).chain(source);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, PeerResponse)>();
    let writer = tokio::spawn(async move {
        if let Err(e) = wire::pump(&mut rx, &mut sink).await {
            tracing::debug!("peer answers stopped: {e}");
        }
    });
    while let Some(frame) = source.next().await {
        let (id, req): (u64, PeerRequest) = bincode::deserialize(&frame?)?;
        let answer = match req {
            PeerRequest::Append(rpc) => {
                if let Some(leader) = rpc.vote.leader_id().voted_for().filter(|_| rpc.vote.is_committed()) {
                    leader_watch.appended(leader);
                }
                PeerResponse::Append(server.raft.append_entries(rpc).await)
            }
            PeerRequest::Vote(rpc) => {
                if let Some(candidate) = rpc.vote.leader_id().voted_for() {
                    server.shared.peers.heard_from(candidate);
                }
                match refuse_vote_while_empty(&server, &rpc) {
                    Some(refused) => PeerResponse::Vote(Ok(refused)),
                    None => PeerResponse::Vote(server.raft.vote(rpc).await),
                }
            }
            PeerRequest::Snapshot(rpc) => PeerResponse::Snapshot(server.raft.install_snapshot(rpc).await),
            PeerRequest::ReadIndex => {
                // A heartbeat round to a quorum: answered when it is back.
                let (server, tx) = (server.clone(), tx.clone());
                tokio::spawn(async move {
                    let index = server.raft.get_read_log_id().await;
                    let index = index.map(|(read, _)| read.map_or(0, |l| l.index)).map_err(|e| e.to_string());
                    let _ = tx.send((id, PeerResponse::ReadIndex(index)));
                });
                continue;
            }
            PeerRequest::LastLog => PeerResponse::LastLog(server.raft.data_metrics().borrow().last_log),
            PeerRequest::Format => PeerResponse::Format(crate::storage::FORMAT),
            PeerRequest::Status => PeerResponse::Status { initialized: server.raft.is_initialized().await.unwrap_or(false) },
            PeerRequest::Touch(ids) => {
                if let Some((&wire::ATTACHED, attached)) = ids.split_first() {
                    server.shared.sessions.claim(attached, origin);
                }
                let timeouts: Vec<(i64, i32)> = {
                    let state = server.shared.read_async().await;
                    ids.iter().filter_map(|id| state.tree.session(*id).map(|s| (*id, s.timeout_ms))).collect()
                };
                for (id, timeout_ms) in timeouts {
                    server.shared.sessions.touch(id, Duration::from_millis(timeout_ms.max(0) as u64));
                }
                PeerResponse::Touched
            }
            PeerRequest::Reconfig(change) => {
                // Slow (a joining server catches up first): answered when done.
                let (server, tx) = (server.clone(), tx.clone());
                tokio::spawn(async move {
                    let result = super::membership::lead(&server, &change).await.map_err(|e| e.raw());
                    let _ = tx.send((id, PeerResponse::Reconfigured(result)));
                });
                continue;
            }
            PeerRequest::Forward(proposal) => match forward(&server, &tx, id, proposal, Span::none(), origin) {
                Some(refused) => refused,
                None => continue,
            },
            PeerRequest::ForwardTraced(proposal, parent) => {
                match forward(&server, &tx, id, proposal, Span::remote_child("log write", parent), origin) {
                    Some(refused) => refused,
                    None => continue,
                }
            }
        };
        if tx.send((id, answer)).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}
