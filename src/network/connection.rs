//! One client connection: the connect handshake, then a reader that decodes
//! requests in arrival order and a writer that answers them in that same
//! order.
//!
//! Writes are proposed to Raft as soon as they are read (so a session can
//! have many in flight), but every reply — and every read, which runs when
//! its turn comes — waits for all earlier requests of the session. A read
//! still queued when a later write of its session is proposed is held for
//! that write (`session::reads`): applying it, the state machine runs the
//! read first, if the writer has not. So a read sees neither less nor more
//! than the writes sent before it: ZooKeeper's FIFO order and
//! read-your-writes without a global lock, and without a session's writes
//! waiting on each other.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use jute::{
    xid, ConnectRequest, ConnectResponse, DecodeError, Reader, Record, ReplyHeader, RequestHeader, SetSaslResponse, SetWatches2,
    WatcherEvent,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::frame::{self, FrameError};
use super::stats::ConnStats;
use crate::admin;
use crate::audit::Audited;
use crate::error::ZkError;
use crate::metrics::Counters;
use crate::ops::{self, auth, Op, WriteReply};
use crate::sasl;
use crate::server::{Server, WriteReceiver};
use crate::session::reads::{QueuedRead, ReadCtx, Turn};
use crate::telemetry::{Span, SpanKind};
use crate::tree::acl::AuthId;
use crate::tree::txn::{Txn, TxnOutcome};
use crate::watch::{ConnId, EventSource};

/// Most requests a session may have outstanding before reading pauses.
const MAX_OUTSTANDING: usize = 1024;

/// How long a new connection may take to send its first packet, so
/// half-open connections cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection waits for a server that is not serving (starting,
/// or out of touch with a quorum) before it is closed.
const NOT_SERVING_WAIT: Duration = Duration::from_secs(3);
/// How long a connection whose session was closed waits for the close's
/// reply to be queued (it is already committed by then).
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(5);
/// A connection's read buffer: many small requests per read; a large one
/// is read past it. Every idle connection holds one, so it is modest.
const READ_BUF: usize = 16 * 1024;
/// A connection's reply buffer to start with (it grows under load).
const WRITE_BUF_START: usize = 8 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Socket error, peer gone, or a bad length.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A packet that does not decode.
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// The request could not be served (no quorum, shutting down).
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// The client stopped reading while its watches fired
    /// (`watch::MAX_UNSENT`): the events it missed cannot be skipped.
    #[error("the client left too many watch events unread")]
    Unread,
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Frame(FrameError::Io(e))
    }
}

/// A reply waiting for its turn.
enum Pending {
    /// Ready now; `zxid` None stands for the last applied one.
    Reply { xid: i32, zxid: Option<i64>, err: i32, body: BytesMut, close: bool },
    /// A write in the log; reply once applied.
    Write { xid: i32, reply: WriteReply, rx: WriteReceiver, started: Instant, trace: Span, audited: Option<Box<Audited>> },
    /// A read, run when its turn comes unless the state machine ran it
    /// before a later write (and, for a linearizable read, once its barrier
    /// is passed: see `Server::read_barrier`). `waited`: the session's next
    /// write waits for this read instead (a linearizable read, or any read
    /// while some member's build cannot read held reads: `raft::formats`).
    Read { xid: i32, read: Arc<QueuedRead>, started: Instant, barrier: Option<crate::server::ReadRound>, waited: bool, trace: Span },
    /// Re-registration of watches.
    SetWatches { xid: i32, req: SetWatches2 },
    /// A membership change: reply once it is done and applied here.
    Reconfig { xid: i32, req: jute::ReconfigRequest },
    /// closeSession: reply once applied, then hang up.
    Close { xid: i32, rx: WriteReceiver, trace: Span },
}

/// The session a connection serves.
#[derive(Clone)]
struct SessionCtx {
    id: i64,
    timeout: Duration,
    /// What `cons` shows of this connection.
    stats: Arc<ConnStats>,
    /// Served in read-only mode: reads only, until a leader is back.
    read_only: bool,
    /// The client's address.
    peer: std::net::IpAddr,
    /// Who its reads run as (its identities), and where its events fall
    /// among them.
    reads: Arc<ReadCtx>,
}

impl SessionCtx {
    fn ids(&self) -> Vec<AuthId> {
        self.reads.ids()
    }

    /// Writes `audited`'s lines for `outcome`.
    fn audit(&self, audited: Option<&Audited>, outcome: &TxnOutcome) {
        let Some(audited) = audited else { return };
        let ids = self.ids();
        audited.write(crate::audit::Client { session: self.id, ids: &ids, ip: self.peer }, outcome);
    }

    /// True if the connection holds an identity of one of `schemes`.
    fn has_scheme(&self, schemes: &[String]) -> bool {
        self.reads.ids.read().unwrap_or_else(|e| e.into_inner()).iter().any(|id| schemes.contains(&id.scheme))
    }

    /// Adds authenticated identities (addAuthInfo, SASL), each once.
    fn add_ids(&self, new_ids: Vec<AuthId>) {
        let mut ids = self.reads.ids.write().unwrap_or_else(|e| e.into_inner());
        for id in new_ids {
            ops::identities::add(&mut ids, id);
        }
    }
}

/// Serves one accepted connection to its end.
pub async fn serve(server: Arc<Server>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    serve_halves(server, rd, wr, peer, Vec::new()).await
}

/// Serves one connection on the secure client port, once its TLS handshake is done.
/// A client certificate gives the session an `x509` identity (and `super`
/// if it is the configured x509 super user), as on ZooKeeper.
pub async fn serve_tls(server: Arc<Server>, stream: tokio_rustls::server::TlsStream<TcpStream>, peer: SocketAddr) {
    let certificate = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
    let mut ids = Vec::new();
    if let Some(dn) = certificate.and_then(|c| super::x509::subject_rfc2253(c)) {
        if server.config.x509_super_user.as_deref() == Some(dn.as_str()) {
            ids.push(AuthId { scheme: "super".into(), id: dn.clone() });
        }
        ids.push(AuthId { scheme: "x509".into(), id: dn });
    }
    let (rd, wr) = tokio::io::split(stream);
    serve_halves(server, rd, wr, peer, ids).await
}

/// A connection's byte stream, plain or TLS, read and written by two tasks.
async fn serve_halves<R, W>(server: Arc<Server>, rd: R, wr: W, peer: SocketAddr, cert_ids: Vec<AuthId>)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let conn = server.next_conn_id();
    let counters = &server.shared.counters;
    Counters::incr(&counters.connections);
    let span = tracing::debug_span!("conn", id = conn, %peer);
    match run(&server, rd, wr, peer, conn, cert_ids).instrument(span).await {
        Ok(()) => tracing::debug!(conn, %peer, "connection closed"),
        Err(e) => tracing::debug!(conn, %peer, "connection closed: {e}"),
    }
    server.shared.watches.disconnect(conn);
    server.shared.held_reads.release(conn);
    Counters::decr(&counters.connections);
}

async fn run<R, W>(server: &Arc<Server>, rd: R, mut wr: W, peer: SocketAddr, conn: ConnId, cert_ids: Vec<AuthId>) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let registered = server.connections.register(conn, peer);
    let stats = registered.stats.clone();
    let mut rd = BufReader::with_capacity(READ_BUF, rd);
    let first = async {
        let first = frame::read_len(&mut rd).await?;
        if let Some(word) = admin::four_letter_word(first) {
            return Ok::<_, ConnError>(Err(word));
        }
        let len = frame::check_len(first, server.config.max_buffer)?;
        Ok(Ok(frame::read_body(&mut rd, len).await?))
    };
    let body = match tokio::time::timeout(HANDSHAKE_TIMEOUT, first).await {
        Err(_) => return Ok(()),
        Ok(r) => r?,
    };
    stats.packet_received();
    let body = match body {
        Ok(body) => body,
        Err(word) => {
            let text = admin::answer(server, word);
            wr.write_all(text.as_bytes()).await?;
            wr.shutdown().await?;
            return Ok(());
        }
    };
    let connect = ConnectRequest::from_bytes(&body)?;
    // A server that cannot serve closes the connection soon, as ZooKeeper
    // does, so the client tries another server instead of waiting here.
    // In read-only mode a client that allows it is served reads instead,
    // unless a leader turns up within the wait (an election, not a lost quorum).
    let mut serving = server.serving.clone();
    let wants_read_only = connect.read_only == Some(true) && server.read_only_enabled();
    let ready = if wants_read_only {
        tokio::time::timeout(NOT_SERVING_WAIT, until(|| server.in_quorum())).await.is_ok()
    } else if server.quorum_gone() {
        false
    } else {
        matches!(tokio::time::timeout(NOT_SERVING_WAIT, serving.wait_for(|s| *s)).await, Ok(Ok(_)))
    };
    let read_only = !ready && wants_read_only;
    if !ready && !read_only {
        return Ok(());
    }
    let connecting = Instant::now();
    let Some((id, timeout)) = handshake(server, &connect, &mut wr, read_only).await? else { return Ok(()) };
    stats.set_session(id, timeout.as_millis() as i64);
    stats.request(jute::OpCode::CreateSession as i32);
    stats.packet_sent();
    stats.responded(0, *server.shared.applied.borrow(), connecting.elapsed().as_millis() as u64);

    // Added as ZooKeeper adds them: the address when the connection is
    // made, the certificate's identities once its handshake is done.
    let mut first = Vec::with_capacity(1 + cert_ids.len());
    for id in [AuthId { scheme: "ip".into(), id: peer.ip().to_string() }].into_iter().chain(cert_ids) {
        ops::identities::add(&mut first, id);
    }
    let ids: crate::watch::Identities = Arc::new(RwLock::new(first));
    let events_sent = crate::watch::EventCount::default();
    let reads = ReadCtx::new(conn, id, ids, server.config.skip_acl, server.config.peers.clone(), events_sent.clone());
    let ctx = SessionCtx { id, timeout, stats, read_only, peer: peer.ip(), reads: Arc::new(reads) };
    let (events_tx, events_rx) = crate::watch::queue();
    // Events about nodes this connection may not read are not sent to it
    // (unless skipACL), so the watch manager reads its identities.
    let readers = (!server.config.skip_acl).then(|| ctx.reads.ids.clone());
    server.shared.watches.connect(conn, events_tx, readers, events_sent);
    let closer = CancellationToken::new();
    server.shared.sessions.attach(id, conn, closer.clone());
    server.shared.sessions.touch(id, timeout);

    let (queue_tx, queue_rx) = mpsc::channel(MAX_OUTSTANDING);
    let (reads_done_tx, reads_done) = tokio::sync::watch::channel(0u64);
    // Cancelled once the writer is done: it closes the connection (a reply
    // that ends it, or a client that left too many events unread).
    let written = CancellationToken::new();
    let mut writer = tokio::spawn({
        let written = written.clone();
        let write = write_loop(server.clone(), ctx.clone(), wr, queue_rx, events_rx, reads_done_tx);
        async move {
            let result = write.await;
            written.cancel();
            result
        }
        .in_current_span()
    });
    // Set once the client asked to close its session: applying that close
    // cancels `closer`, possibly before the read loop has queued the reply
    // (a follower forwards the close and may apply it before the leader's
    // answer arrives), and the client must still get its reply.
    let closing = AtomicBool::new(false);
    let result = {
        let read = read_loop(server, &ctx, &mut rd, &queue_tx, reads_done, &closing);
        tokio::pin!(read);
        let ended = tokio::select! {
            r = &mut read => Some(r),
            _ = closer.cancelled() => None,
            _ = written.cancelled() => Some(Ok(())),
            // Out of touch with a quorum: the client should move to a server
            // that is not.
            _ = serving.wait_for(|s| !*s), if !read_only => Some(Ok(())),
            // A read-only client is closed once a leader is back, to
            // reconnect for reads and writes.
            _ = until(|| server.in_quorum()), if read_only => Some(Ok(())),
        };
        match ended {
            Some(r) => r,
            None if closing.load(Ordering::Relaxed) => tokio::time::timeout(CLOSE_REPLY_WAIT, &mut read).await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    };
    drop(queue_tx);
    // The writer sends what is queued, unless the client stopped reading:
    // then nothing would ever end its write, and it is cut off.
    if tokio::time::timeout(CLOSE_REPLY_WAIT, &mut writer).await.is_err() {
        writer.abort();
    }
    server.shared.sessions.detach(id, conn);
    result
}

/// Returns once `condition` holds (checked every 50 ms).
async fn until(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Answers the connect request; `None` if the session was refused.
/// `read_only`: the server has no quorum, and the client allows reads only.
async fn handshake<W: AsyncWrite + Unpin>(
    server: &Server,
    req: &ConnectRequest,
    wr: &mut W,
    read_only: bool,
) -> Result<Option<(i64, Duration)>, ConnError> {
    // A client that has seen a newer state than ours must not be served older state.
    let mut applied = server.shared.applied.subscribe();
    let caught_up = tokio::time::timeout(Duration::from_secs(2), async { applied.wait_for(|z| *z >= req.last_zxid_seen).await.is_ok() })
        .await
        .unwrap_or(false);
    if !caught_up {
        tracing::info!(seen = req.last_zxid_seen, "refusing a client that has seen a newer zxid than this server");
        return Ok(None);
    }
    let answer_read_only = req.read_only.map(|_| read_only);
    let (session_id, timeout_ms, passwd) = if req.session_id == 0 && read_only {
        // Without a quorum nothing can be logged: a session of this
        // connection alone, as ZooKeeper's read-only server gives (its
        // client starts afresh once it finds a server with a quorum).
        let local = (rand::random::<u64>() >> 1) as i64;
        (local, server.config.negotiate_timeout(req.timeout), rand::random::<[u8; 16]>().to_vec())
    } else if req.session_id == 0 {
        let timeout_ms = server.config.negotiate_timeout(req.timeout);
        let passwd: [u8; 16] = rand::random();
        let trace = Span::request(jute::OpCode::CreateSession.code(), 0, 0);
        let txn = Txn::CreateSession { timeout_ms, passwd: passwd.to_vec() };
        let resp = server.write_traced(0, txn, &trace).await?;
        match resp.outcome {
            TxnOutcome::SessionCreated { session_id, timeout_ms, passwd } => {
                trace.set(crate::telemetry::attr::SESSION, format!("{session_id:#x}"));
                trace.reply(resp.zxid, 0);
                (session_id, timeout_ms, passwd)
            }
            other => return Err(ZkError::System(format!("createSession gave {other:?}")).into()),
        }
    } else {
        let known = server.shared.read_async().await.tree.session(req.session_id).map(|s| (s.timeout_ms, s.passwd.clone()));
        match known {
            Some((timeout_ms, passwd)) if passwd == req.passwd => (req.session_id, timeout_ms, passwd),
            _ => {
                // Timeout 0 tells the client its session is expired (or the password wrong).
                let refuse =
                    ConnectResponse { protocol_version: 0, timeout: 0, session_id: 0, passwd: vec![0; 16], read_only: answer_read_only };
                let mut out = BytesMut::new();
                frame::put_record(&mut out, &refuse);
                wr.write_all(&out).await?;
                let _ = wr.shutdown().await;
                return Ok(None);
            }
        }
    };
    if !read_only && !server.announce_attach(session_id).await {
        let _ = wr.shutdown().await;
        return Ok(None);
    }
    let resp = ConnectResponse { protocol_version: 0, timeout: timeout_ms, session_id, passwd, read_only: answer_read_only };
    let mut out = BytesMut::new();
    frame::put_record(&mut out, &resp);
    wr.write_all(&out).await?;
    Ok(Some((session_id, Duration::from_millis(timeout_ms.max(0) as u64))))
}

/// Reads requests and queues their replies, in arrival order.
async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
    server: &Arc<Server>,
    ctx: &SessionCtx,
    rd: &mut R,
    queue: &mpsc::Sender<Pending>,
    mut reads_done: tokio::sync::watch::Receiver<u64>,
    closing: &AtomicBool,
) -> Result<(), ConnError> {
    // Linearizable reads and watch re-registrations queued so far: a write
    // waits until the writer has run them all (the state machine cannot run
    // them for it).
    let mut waited_for = 0u64;
    // Other reads queued since the session's last write: the next write
    // holds those not answered yet (`session::reads`).
    let mut unheld: Vec<Arc<QueuedRead>> = Vec::new();
    // The connection's SASL exchange, from its first sasl request on.
    let mut sasl_exchange = None;
    // enforce.auth: the schemes one of which the connection must hold.
    let enforced = server.config.enforced_auth_schemes();
    let sasl_required = enforced.as_ref().is_some_and(|s| s.iter().any(|s| s == "sasl"));
    loop {
        let body = match frame::read_frame(rd, server.config.max_buffer).await {
            Ok(body) => body,
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        Counters::incr(&server.shared.counters.packets_received);
        ctx.stats.packet_received();
        server.shared.sessions.touch(ctx.id, ctx.timeout);
        let mut r = Reader::new(&body);
        let header = RequestHeader::read(&mut r)?;
        let started = Instant::now();
        ctx.stats.request(header.op);
        let op = ops::decode(header.op, &mut r)?;
        if let (Some(schemes), false) = (&enforced, matches!(op, Op::Auth(_) | Op::Sasl(_))) {
            if !ctx.has_scheme(schemes) {
                // As ZooKeeper's AuthenticationHelper: answered, then the
                // connection (not the session) is closed.
                tracing::info!(session = %format!("{:#x}", ctx.id), ?schemes, "request before the required authentication");
                let err = ZkError::AuthRequired.raw();
                let _ = queue.send(Pending::Reply { xid: header.xid, zxid: Some(0), err, body: BytesMut::new(), close: true }).await;
                return Ok(());
            }
        }
        let (pending, last) = match op {
            Op::Ping => (Pending::Reply { xid: header.xid, zxid: None, err: 0, body: BytesMut::new(), close: false }, false),
            Op::Auth(packet) => match auth::authenticate(&packet.scheme, packet.auth.as_deref(), server.config.super_digest.as_deref()) {
                Ok(new_ids) => {
                    ctx.add_ids(new_ids);
                    // Auth replies carry zxid 0 and, as on ZooKeeper, the request's
                    // xid: the Java client always sends -4 (xid::AUTH), others
                    // (zookeeper-client for Rust) a counted one and wait for it.
                    (Pending::Reply { xid: header.xid, zxid: Some(0), err: 0, body: BytesMut::new(), close: false }, false)
                }
                Err(e) => (Pending::Reply { xid: header.xid, zxid: Some(0), err: e.raw(), body: BytesMut::new(), close: true }, true),
            },
            Op::Sasl(token) => {
                // As ZooKeeper's processSasl: the reply has the request's xid and
                // zxid 0; a failure answers AuthFailed (SessionClosedRequireSasl
                // where SASL is required) with a null token and closes the
                // connection (the session lives on), unless allowSaslFailedClients.
                match sasl::step(server.sasl.as_ref(), &mut sasl_exchange, &token) {
                    Ok(reply) => {
                        if !reply.ids.is_empty() {
                            tracing::info!(session = %format!("{:#x}", ctx.id), ids = ?reply.ids, "SASL authenticated");
                            ctx.add_ids(reply.ids);
                        }
                        let mut body = BytesMut::new();
                        SetSaslResponse { token: reply.token }.write(&mut body);
                        (Pending::Reply { xid: header.xid, zxid: Some(0), err: 0, body, close: false }, false)
                    }
                    Err(e) => {
                        tracing::info!(session = %format!("{:#x}", ctx.id), "SASL authentication failed: {e}");
                        let mut body = BytesMut::new();
                        SetSaslResponse { token: None }.write(&mut body);
                        if server.config.allow_sasl_failed && !sasl_required {
                            // allowSaslFailedClients: the connection goes on unauthenticated.
                            (Pending::Reply { xid: header.xid, zxid: Some(0), err: 0, body, close: false }, false)
                        } else {
                            let err = if sasl_required { ZkError::AuthRequired } else { ZkError::AuthFailed }.raw();
                            (Pending::Reply { xid: header.xid, zxid: Some(0), err, body, close: true }, true)
                        }
                    }
                }
            }
            Op::SetWatches(req) => {
                waited_for += 1;
                (Pending::SetWatches { xid: header.xid, req }, false)
            }
            // Without a quorum nothing is logged: writes, sync and reconfig
            // are refused, and a close ends only this connection.
            Op::Write(..) | Op::Reconfig(_) if ctx.read_only => {
                let err = ZkError::NotReadOnly.raw();
                (Pending::Reply { xid: header.xid, zxid: None, err, body: BytesMut::new(), close: false }, false)
            }
            Op::Close if ctx.read_only => {
                (Pending::Reply { xid: header.xid, zxid: None, err: 0, body: BytesMut::new(), close: true }, true)
            }
            Op::Reconfig(req) => (Pending::Reconfig { xid: header.xid, req }, false),
            Op::Close => {
                closing.store(true, Ordering::Relaxed);
                let trace = Span::request(header.op, ctx.id, header.xid);
                let txn = hold_reads(server, ctx, &mut unheld, Txn::CloseSession);
                (Pending::Close { xid: header.xid, rx: server.propose(ctx.id, txn, &trace, None).await?, trace }, true)
            }
            Op::Write(txn, reply) => {
                let behind = *reads_done.borrow() < waited_for;
                if behind && reads_done.wait_for(|n| *n >= waited_for).await.is_err() {
                    return Ok(());
                }
                let trace = Span::request(header.op, ctx.id, header.xid);
                trace.path(txn.path());
                let audited = crate::audit::enabled().then(|| Audited::of(&txn).map(Box::new)).flatten();
                let txn = ops::write::as_caller(txn, ctx.ids(), &server.config);
                let txn = hold_reads(server, ctx, &mut unheld, txn);
                // Past the budget, reading waits (`raft::write_budget`).
                let hold = server.write_budget.hold(body.len()).await;
                let rx = server.propose(ctx.id, txn, &trace, hold).await?;
                (Pending::Write { xid: header.xid, reply, rx, started, trace, audited }, false)
            }
            Op::Read(op) => {
                // The read point is taken now, as the request arrives; the
                // reply waits for it in turn. (A read-only session asked for
                // what a partitioned server has.)
                let barrier = (server.config.linearizable_reads && !ctx.read_only).then(|| server.join_read_round());
                let trace = Span::request(header.op, ctx.id, header.xid);
                trace.path(op.path());
                let read = QueuedRead::new(ctx.reads.clone(), op);
                // A write carries the reads it follows only once every
                // member can read such a write (`raft::formats`); until
                // then it waits for them, as for a linearizable read.
                let waited = barrier.is_some() || !server.formats.allows(crate::raft::formats::AFTER_READS);
                if waited {
                    waited_for += 1;
                } else if !ctx.read_only {
                    // Those answered since are dropped now and then, so a
                    // session that only reads keeps a short list.
                    if unheld.len() >= 64 {
                        unheld.retain(|r| Arc::strong_count(r) > 1);
                    }
                    unheld.push(read.clone());
                }
                (Pending::Read { xid: header.xid, read, started, barrier, waited, trace }, false)
            }
            Op::Reject(e) => (Pending::Reply { xid: header.xid, zxid: None, err: e.raw(), body: BytesMut::new(), close: false }, false),
        };
        Counters::incr(&server.shared.counters.outstanding);
        if queue.send(pending).await.is_err() || last {
            return Ok(());
        }
    }
}

/// Leaves the reads in `unheld` still queued with the state machine, to run
/// before `txn`, the write about to be proposed; `txn` as it is to be
/// proposed (marked `Txn::AfterReads` if reads are held for it).
fn hold_reads(server: &Server, ctx: &SessionCtx, unheld: &mut Vec<Arc<QueuedRead>>, txn: Txn) -> Txn {
    // The writer drops a read once it has answered it.
    unheld.retain(|r| Arc::strong_count(r) > 1);
    if unheld.is_empty() {
        return txn;
    }
    let seq = server.shared.held_reads.next_seq();
    server.shared.held_reads.hold(ctx.id, seq, std::mem::take(unheld));
    Txn::AfterReads { seq, txn: Box::new(txn) }
}

/// Writes replies in request order, with watch events queued before any
/// reply that follows them.
async fn write_loop<W: AsyncWrite + Unpin>(
    server: Arc<Server>,
    ctx: SessionCtx,
    wr: W,
    mut queue: mpsc::Receiver<Pending>,
    events: EventSource,
    reads_done: tokio::sync::watch::Sender<u64>,
) -> Result<(), ConnError> {
    let mut events = Events { rx: events, held: VecDeque::new(), received: 0, reads: ctx.reads.clone(), lost: false };
    // Replies are gathered in `buf` and written straight to the socket
    // (a BufWriter in between would only copy them once more). It starts
    // small and grows to what the connection's bursts need.
    let mut out = wr;
    let mut buf = BytesMut::with_capacity(WRITE_BUF_START);
    loop {
        let item = match queue.try_recv() {
            Ok(item) => item,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                events.drain(&server, &ctx.stats, &mut buf);
                // What is in `buf` is unsent: dropping it loses only the end
                // of what the client would have read, as a lost connection does.
                if events.lost {
                    return Err(ConnError::Unread);
                }
                out.write_all(&buf).await?;
                buf.clear();
                out.flush().await?;
                tokio::select! {
                    biased;
                    ev = events.rx.recv() => {
                        match ev {
                            Some(ev) => events.held.push_back(ev),
                            None => return Err(ConnError::Unread),
                        }
                        continue;
                    }
                    item = queue.recv() => match item {
                        Some(item) => item,
                        None => break,
                    },
                }
            }
        };
        Counters::decr(&server.shared.counters.outstanding);
        let is_read = matches!(item, Pending::Read { waited: true, .. } | Pending::SetWatches { .. });
        let close = answer(&server, &ctx, item, &mut events, &mut buf).await?;
        if events.lost {
            return Err(ConnError::Unread);
        }
        if is_read {
            reads_done.send_modify(|n| *n += 1);
        }
        if buf.len() >= 32 * 1024 || close {
            out.write_all(&buf).await?;
            buf.clear();
        }
        if close {
            break;
        }
    }
    out.write_all(&buf).await?;
    out.flush().await?;
    let _ = out.shutdown().await;
    Ok(())
}

/// Resolves one pending reply into `buf`; true if the connection must close after it.
async fn answer(server: &Server, ctx: &SessionCtx, item: Pending, events: &mut Events, buf: &mut BytesMut) -> Result<bool, ConnError> {
    let mut body = BytesMut::new();
    let mut drained = false;
    // The request's span (if traced) ends once its reply is queued.
    let mut trace = Span::none();
    let (xid, zxid, err, close, started) = match item {
        Pending::Reply { xid, zxid, err, body: b, close } => {
            body = b;
            let zxid = match zxid {
                Some(zxid) => zxid,
                None => server.shared.read_async().await.tree.last_zxid(),
            };
            (xid, zxid, err, close, None)
        }
        Pending::Write { xid, reply, rx, started, trace: span, audited } => {
            trace = span;
            let resp = server.outcome(rx, &trace).await.inspect_err(|e| trace.fail(e.to_string()))?;
            ctx.audit(audited.as_deref(), &resp.outcome);
            let err = ops::write::encode_reply(&reply, &resp.outcome, &mut body);
            (xid, resp.zxid, err, false, Some(started))
        }
        Pending::Reconfig { xid, req } => {
            let audited = crate::audit::enabled().then(Audited::reconfig);
            match crate::raft::membership::reconfig(server, &req, &ctx.ids()).await {
                Ok((zxid, b)) => {
                    body = b;
                    ctx.audit(audited.as_ref(), &TxnOutcome::Nothing);
                    (xid, zxid, 0, false, None)
                }
                Err(e) => {
                    ctx.audit(audited.as_ref(), &TxnOutcome::Error(e.raw()));
                    (xid, server.shared.read_async().await.tree.last_zxid(), e.raw(), false, None)
                }
            }
        }
        Pending::Read { xid, read, started, barrier, trace: span, .. } => {
            trace = span;
            let passed = match barrier {
                Some(round) => {
                    let _point = trace.child("read point", SpanKind::Internal);
                    server.read_barrier(round).await
                }
                None => Ok(()),
            };
            match passed {
                // No read point (no leader, or it lost its quorum): the read
                // fails rather than answer from a state that may be stale.
                Err(e) => {
                    tracing::debug!("linearizable read refused: {e}");
                    (xid, server.shared.read_async().await.tree.last_zxid(), e.raw(), false, Some(started))
                }
                Ok(()) => {
                    // Taken under the lock, so the state machine cannot run it meanwhile.
                    let state = server.shared.read_async().await;
                    match read.take() {
                        Turn::Run(op) => {
                            let err = read.run_taken(&state.tree, &server.shared.watches, &op, &mut body);
                            // While the state is still locked: the events queued now are of
                            // changes this read saw, and go first. An event queued once the
                            // lock is gone may be of a watch this very read set, and the
                            // client must have its reply (which arms the watch on its side)
                            // before that event, or it drops the event and waits forever.
                            events.drain(server, &ctx.stats, buf);
                            drained = true;
                            (xid, state.tree.last_zxid(), err, false, Some(started))
                        }
                        Turn::Lost => {
                            return Err(ZkError::ConnectionLoss(
                                "this read can no longer be answered (a snapshot replaced the state it was to see)".into(),
                            )
                            .into());
                        }
                        Turn::Ran(ran) => {
                            drop(state);
                            // The same for a read the state machine ran: the
                            // events queued before it ran go first, the rest after.
                            events.drain(server, &ctx.stats, buf);
                            ctx.reads.answered_fence();
                            drained = true;
                            body = ran.body;
                            (xid, ran.zxid, ran.err, false, Some(started))
                        }
                    }
                }
            }
        }
        Pending::SetWatches { xid, req } => {
            let state = server.shared.read_async().await;
            let ids = ctx.ids();
            ctx.reads.reader(&state.tree, &server.shared.watches, &ids).set_watches(&req);
            // As for a read: only the events of what these watches saw go first.
            events.drain(server, &ctx.stats, buf);
            drained = true;
            (xid, state.tree.last_zxid(), 0, false, None)
        }
        Pending::Close { xid, rx, trace: span } => {
            trace = span;
            let resp = server.outcome(rx, &trace).await.inspect_err(|e| trace.fail(e.to_string()))?;
            (xid, resp.zxid, 0, true, None)
        }
    };
    // Events already queued describe states this reply may show: they go first.
    if !drained {
        events.drain(server, &ctx.stats, buf);
    }
    frame::put_reply(buf, &ReplyHeader { xid, zxid, err }, &body);
    trace.reply(zxid, err);
    trace.end();
    Counters::incr(&server.shared.counters.packets_sent);
    ctx.stats.packet_sent();
    let elapsed = started.map(|s| s.elapsed());
    if let Some(elapsed) = elapsed {
        server.shared.counters.latency.record(elapsed.as_micros() as u64);
    }
    ctx.stats.responded(xid, zxid, elapsed.map_or(0, |e| e.as_millis() as u64));
    Ok(close)
}

/// A connection's watch events on their way to the socket.
struct Events {
    rx: EventSource,
    /// Received, but not to be sent yet (see `drain`).
    held: VecDeque<WatcherEvent>,
    /// How many were sent on.
    received: u64,
    /// Where the reads the state machine ran fall among the events.
    reads: Arc<ReadCtx>,
    /// The watch manager stopped sending (the client left too many events
    /// unread) and every event before that was taken: no reply may follow,
    /// since the events it might come after are gone.
    lost: bool,
}

impl Events {
    /// Puts into `buf` every event queued, except those that follow a read
    /// the state machine ran and the writer has not answered yet: they go
    /// after its reply.
    fn drain(&mut self, server: &Server, stats: &ConnStats, buf: &mut BytesMut) {
        loop {
            let ev = match self.held.pop_front() {
                Some(ev) => ev,
                None => match self.rx.try_recv() {
                    Some(ev) => ev,
                    None => {
                        self.lost = self.rx.ended();
                        return;
                    }
                },
            };
            // Checked after receiving: a read the state machine ran before
            // sending this event has already left its fence.
            if self.reads.fence().is_some_and(|fence| self.received >= fence) {
                self.held.push_front(ev);
                return;
            }
            self.received += 1;
            put_event(server, stats, buf, &ev);
        }
    }
}

fn put_event(server: &Server, stats: &ConnStats, buf: &mut BytesMut, ev: &WatcherEvent) {
    stats.packet_sent();
    let mut body = BytesMut::new();
    ev.write(&mut body);
    frame::put_reply(buf, &ReplyHeader { xid: xid::NOTIFICATION, zxid: -1, err: 0 }, &body);
    Counters::incr(&server.shared.counters.packets_sent);
}
