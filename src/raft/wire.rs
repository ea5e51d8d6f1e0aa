//! What servers say to each other, and how it is framed.
//!
//! Framing is tokio-util's `LengthDelimitedCodec` (4-byte length prefix) with
//! bincode bodies: a well-kept, already-used library, and all the protocol
//! there is to it, because openraft defines the messages and drives one
//! request at a time per peer connection. Every message carries an id so a
//! connection can also carry pipelined, forwarded client writes whose
//! answers come back out of order.

use futures::{SinkExt, StreamExt};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::either::Either;

use super::{Proposal, Response, TypeConfig};

/// Largest peer frame: a batch of log entries or a snapshot chunk.
pub const MAX_FRAME: usize = 256 << 20;

/// A request from one server to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Raft log replication and heartbeats.
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<u64>),
    /// A chunk of a Raft snapshot.
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write received by a follower, for the leader to put in the log.
    Forward(Proposal),
    /// Sessions whose clients a follower heard from, for the leader's expiry
    /// clock. Led by [`ATTACHED`]: sessions whose clients attached there (a
    /// member from before that mark finds no session 0 and just touches).
    Touch(Vec<i64>),
    /// Does this server already belong to a formed ensemble?
    Status,
    /// A client's reconfig received by a follower, for the leader to carry out.
    Reconfig(super::membership::Change),
    /// The leader's read point, for a linearizable read on a follower
    /// (`linearizableReads=true`).
    ReadIndex,
    /// `Forward` of a traced write, with the trace to continue (a variant of
    /// its own, so members that predate tracing still read `Forward`).
    ForwardTraced(Proposal, crate::telemetry::TraceParent),
    /// The id of this member's last log entry: the survivors of a leader
    /// that is gone compare theirs to pick who calls the election
    /// (`leader_gone`). Last, so older members' variants keep their tags.
    LastLog,
    /// The storage format this member reads (`raft::formats`).
    Format,
}

/// First in a [`PeerRequest::Touch`]: the sessions after it are attached at
/// the sender, whose writes of theirs the leader takes from now on
/// (`session::SessionTracker::may_write`). No session has id 0.
pub const ATTACHED: i64 = 0;

/// The answer to a [`PeerRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// Answer to `Append`.
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// Answer to `Vote`.
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// Answer to `Snapshot`.
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The forwarded write, applied on the leader (or why not).
    Forwarded(Result<Response, String>),
    /// `Touch` noted.
    Touched,
    /// Answer to `Reconfig`: the zxid of the new `/zookeeper/config`, or the error code.
    Reconfigured(Result<i64, i32>),
    /// Answer to `Status`: whether this server's Raft state is initialized.
    Status {
        /// True once membership is in its log.
        initialized: bool,
    },
    /// Answer to `ReadIndex`: the log index every write acknowledged before
    /// the question is at or below, confirmed by a quorum (or why not).
    ReadIndex(Result<u64, String>),
    /// Answer to `LastLog`.
    LastLog(Option<openraft::LogId<u64>>),
    /// Answer to `Format`: `storage::FORMAT` of this member's build.
    Format(u32),
}

/// A connection between members: plain, or TLS in either direction (`link`).
pub type PeerIo = Either<TcpStream, tokio_rustls::TlsStream<TcpStream>>;

/// A framed peer connection.
pub type PeerStream = Framed<PeerIo, LengthDelimitedCodec>;

/// Why a peer exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed.
    #[error("peer i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame did not decode.
    #[error("peer message: {0}")]
    Codec(#[from] bincode::Error),
    /// The peer hung up.
    #[error("peer closed the connection")]
    Closed,
}

/// Wraps a connection (made by `link::Links`) in the peer framing.
pub fn framed(stream: PeerIo) -> PeerStream {
    let codec = LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec();
    Framed::new(stream, codec)
}

/// Sends one message with its id.
pub async fn send<T: Serialize>(stream: &mut PeerStream, id: u64, msg: &T) -> Result<(), WireError> {
    let bytes = bincode::serialize(&(id, msg))?;
    stream.send(bytes::Bytes::from(bytes)).await?;
    Ok(())
}

/// Writes every message queued on `rx` to `sink` until either closes,
/// flushing only when the queue is empty: the messages that queued up
/// meanwhile (forwarded writes, their answers) go out in one write instead
/// of one system call and one wake-up of the reader each.
pub async fn pump<T: Serialize>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    sink: &mut futures::stream::SplitSink<PeerStream, bytes::Bytes>,
) -> Result<(), WireError> {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            sink.feed(bytes::Bytes::from(bincode::serialize(&msg)?)).await?;
            next = rx.try_recv().ok();
        }
        sink.flush().await?;
    }
    Ok(())
}

/// Receives one message and its id.
pub async fn recv<T: for<'de> Deserialize<'de>>(stream: &mut PeerStream) -> Result<(u64, T), WireError> {
    match stream.next().await {
        Some(frame) => Ok(bincode::deserialize(&frame?)?),
        None => Err(WireError::Closed),
    }
}
