//! The client side of the peer network: how openraft reaches other servers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::link::Links;
use super::wire::{self, PeerRequest, PeerResponse, PeerStream, WireError};
use super::TypeConfig;

/// When each peer last answered a Raft RPC: openraft's metrics tell how far
/// a follower's log matches, not whether it is still there, which `mntr`'s
/// zk_followers needs. Also when each leader last appended to this server,
/// over any connection (`leader_gone` asks whether it still does). And which
/// peers refused this server's last dial: no process listens there, so they
/// are gone, not merely quiet (`serving` counts them out of a quorum).
#[derive(Debug, Default)]
pub struct PeerHealth {
    last_answer: Mutex<HashMap<u64, Instant>>,
    last_append: Mutex<HashMap<u64, Instant>>,
    refused: Mutex<HashSet<u64>>,
}

impl PeerHealth {
    /// Notes an append from `leader` received `at`.
    pub fn appended(&self, leader: u64, at: Instant) {
        self.last_append.lock().unwrap_or_else(|e| e.into_inner()).insert(leader, at);
        self.heard_from(leader);
    }

    /// A request came from `peer`: it is up, whatever its port last answered.
    pub fn heard_from(&self, peer: u64) {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).remove(&peer);
    }

    /// When `leader` last appended to this server, if ever.
    pub fn last_append(&self, leader: u64) -> Option<Instant> {
        self.last_append.lock().unwrap_or_else(|e| e.into_inner()).get(&leader).copied()
    }

    fn answered(&self, peer: u64) {
        self.last_answer.lock().unwrap_or_else(|e| e.into_inner()).insert(peer, Instant::now());
        self.heard_from(peer);
    }

    /// Notes that `peer`'s port refused a connection from this server.
    fn refused_by(&self, peer: u64) {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).insert(peer);
    }

    /// True if `peer` refused this server's last dial and has not answered since.
    pub fn refuses(&self, peer: u64) -> bool {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).contains(&peer)
    }

    /// True if `peer` answered a Raft RPC from this server within `window`.
    pub fn answered_within(&self, peer: u64, window: Duration) -> bool {
        let seen = self.last_answer.lock().unwrap_or_else(|e| e.into_inner()).get(&peer).copied();
        seen.is_some_and(|t| t.elapsed() <= window)
    }
}

/// Creates connections to peers.
///
/// A peer is dialled at the address this server's own zoo.cfg gives it
/// (its `server.N` line), as ZooKeeper does; the address stored in the Raft
/// membership (bootstrapped from the lowest id's zoo.cfg) is the fallback for
/// members the local config does not list. Each server's view of where its
/// peers are is then its own: the fault harness relies on this to route each
/// directed link through a proxy it can cut, and an operator can move a
/// member behind a new address by editing the other members' configs.
#[derive(Clone)]
pub struct PeerNetwork {
    health: Arc<PeerHealth>,
    links: Links,
    /// Peer addresses from the local config, by server id.
    configured: Arc<std::collections::BTreeMap<u64, String>>,
    /// How long to wait before dialling an unreachable peer again.
    redial: Duration,
}

impl PeerNetwork {
    /// A network that dials the peers listed in `config` at their configured
    /// addresses through `links` and records their answers in `health`.
    pub fn new(config: &crate::config::Config, links: Links, health: Arc<PeerHealth>) -> Self {
        let configured = config.peers.iter().map(|(id, p)| (*id, p.peer_addr())).collect();
        // A member coming back waits out the leader lease and an election
        // timeout (at least 1.5 x election_timeout_max) before it calls an
        // election; the leader, redialling it every half of
        // election_timeout_max, reaches it first, so a restart moves no
        // leadership. openraft's default, 500 ms whatever the timing, lost
        // that race at small tickTimes.
        let redial = Duration::from_millis(config.raft_timing().2 / 2);
        PeerNetwork { health, links, configured: Arc::new(configured), redial }
    }
}

/// A connection to one peer, re-dialled after any failure.
pub struct PeerClient {
    health: Arc<PeerHealth>,
    redial: Duration,
    links: Links,
    target: u64,
    addr: String,
    conn: Option<PeerStream>,
    next_id: u64,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        let addr = self.configured.get(&target).cloned().unwrap_or_else(|| node.addr.clone());
        PeerClient { health: self.health.clone(), redial: self.redial, links: self.links.clone(), target, addr, conn: None, next_id: 0 }
    }
}

/// How a call failed, before mapping into openraft's error types.
enum CallError {
    Unreachable(std::io::Error),
    Broken(WireError),
    TimedOut,
    Mismatch,
}

impl PeerClient {
    async fn call(&mut self, req: PeerRequest, ttl: Duration) -> Result<PeerResponse, CallError> {
        let result = tokio::time::timeout(ttl, self.exchange(req)).await.unwrap_or(Err(CallError::TimedOut));
        if result.is_ok() {
            self.health.answered(self.target);
        }
        result
    }

    /// One request and its answer. The stream is taken out for the exchange
    /// and put back only after a whole answer: whatever goes wrong, and
    /// also when openraft's own timeout (one heartbeat interval for an
    /// append) drops the call half-way, the next call dials afresh instead
    /// of finding half a request sent or a stale answer waiting.
    async fn exchange(&mut self, req: PeerRequest) -> Result<PeerResponse, CallError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.links.connect(&self.addr).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    self.health.refused_by(self.target);
                }
                CallError::Unreachable(e)
            })?,
        };
        self.next_id += 1;
        let id = self.next_id;
        wire::send(&mut conn, id, &req).await.map_err(CallError::Broken)?;
        let (got, resp): (u64, PeerResponse) = wire::recv(&mut conn).await.map_err(CallError::Broken)?;
        if got != id {
            return Err(CallError::Mismatch);
        }
        self.conn = Some(conn);
        Ok(resp)
    }

    fn error<E: std::error::Error>(&self, e: CallError) -> RPCError<u64, BasicNode, E> {
        match e {
            CallError::Unreachable(io) => RPCError::Unreachable(Unreachable::new(&io)),
            CallError::Broken(w) => RPCError::Network(NetworkError::new(&w)),
            CallError::TimedOut => {
                RPCError::Network(NetworkError::new(&std::io::Error::new(std::io::ErrorKind::TimedOut, "peer timed out")))
            }
            CallError::Mismatch => RPCError::Network(NetworkError::new(&std::io::Error::other("answer to another request"))),
        }
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<u64, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<u64, BasicNode, E> {
        RPCError::Network(NetworkError::new(&std::io::Error::other("unexpected answer kind")))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.redial))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.call(PeerRequest::Append(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Append(Ok(r))) => Ok(r),
            Ok(PeerResponse::Append(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>> {
        match self.call(PeerRequest::Snapshot(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Snapshot(Ok(r))) => Ok(r),
            Ok(PeerResponse::Snapshot(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.call(PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Vote(Ok(r))) => Ok(r),
            Ok(PeerResponse::Vote(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::net::TcpListener;
    use tokio_util::either::Either;

    use super::*;

    /// A peer that answers `Status`, the very first request late.
    async fn slow_once_peer() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let first = Arc::new(AtomicBool::new(true));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let first = first.clone();
                tokio::spawn(async move {
                    let mut conn = wire::framed(Either::Left(stream));
                    while let Ok((id, PeerRequest::Status)) = wire::recv::<PeerRequest>(&mut conn).await {
                        if first.swap(false, Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        if wire::send(&mut conn, id, &PeerResponse::Status { initialized: true }).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_call_dropped_half_way_leaves_nothing_for_the_next() {
        let addr = slow_once_peer().await;
        let mut client = PeerClient {
            health: Arc::default(),
            redial: Duration::from_millis(10),
            links: Links::default(),
            target: 2,
            addr,
            conn: None,
            next_id: 0,
        };
        // As openraft's own timeout drops an append that outlives a heartbeat.
        let dropped = tokio::time::timeout(Duration::from_millis(50), client.call(PeerRequest::Status, Duration::from_secs(5))).await;
        assert!(dropped.is_err(), "the first call was to be cut short");
        // The next call gets its own answer, not the late one to the first.
        match client.call(PeerRequest::Status, Duration::from_secs(5)).await {
            Ok(PeerResponse::Status { initialized: true }) => {}
            Ok(other) => panic!("unexpected answer {other:?}"),
            Err(_) => panic!("the call after a dropped one failed"),
        }
    }
}
