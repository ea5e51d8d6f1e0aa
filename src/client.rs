//! A small ZooKeeper client on top of `jute`, used by paddock's own tests,
//! benchmark and demos. It pipelines: many requests may be in flight, and
//! since servers answer a session in order, replies are matched to requests
//! by arrival order (the xid is checked, as the Java client does).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use jute::{
    xid, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, DecodeError, DeleteRequest, ErrorCode, ExistsRequest,
    GetChildrenRequest, GetDataRequest, GetDataResponse, OpCode, Reader, Record, ReplyHeader, RequestHeader, SetDataRequest, Stat,
    WatcherEvent,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed or the server hung up.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server's bytes did not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered with an error code.
    #[error("server error {0:?}")]
    Server(ErrorCode),
    /// The server refused the session (expired or wrong password).
    #[error("session refused")]
    SessionRefused,
    /// A reply's xid did not match the oldest outstanding request.
    #[error("xid out of order: expected {expected}, got {got}")]
    OutOfOrder {
        /// The xid expected.
        expected: i32,
        /// The xid received.
        got: i32,
    },
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

type Waiter = (i32, oneshot::Sender<Result<(ReplyHeader, Bytes), ClientError>>);

struct Outbox {
    writer: OwnedWriteHalf,
    next_xid: i32,
    waiting: Arc<Mutex<VecDeque<Waiter>>>,
    /// Set once the reader saw the connection end: later sends fail at once.
    closed: Arc<AtomicBool>,
}

/// A connected session.
pub struct Client {
    outbox: Arc<tokio::sync::Mutex<Outbox>>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<WatcherEvent>>,
    /// The session id.
    pub session_id: i64,
    /// The session password.
    pub passwd: Vec<u8>,
    /// The negotiated timeout, ms.
    pub timeout_ms: i32,
    /// The server took the session read-only (it has no quorum).
    pub read_only: bool,
    reader: tokio::task::JoinHandle<()>,
    pinger: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
        self.pinger.abort();
    }
}

async fn write_frame(w: &mut OwnedWriteHalf, body: &[u8]) -> std::io::Result<()> {
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    w.write_all(&out).await
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let len = r.read_u32().await? as usize;
    if len > 64 << 20 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

impl Client {
    /// Opens a new session.
    pub async fn connect(addr: &str, timeout_ms: i32) -> Result<Client, ClientError> {
        Self::resume(addr, timeout_ms, 0, vec![0; 16], 0).await
    }

    /// Opens a new session that a server without a quorum may serve
    /// read-only (ZooKeeper's `canBeReadOnly`); `read_only` says if it did.
    pub async fn connect_read_only(addr: &str, timeout_ms: i32) -> Result<Client, ClientError> {
        Self::open(addr, timeout_ms, 0, vec![0; 16], 0, true).await
    }

    /// Reconnects to an existing session (or a new one with id 0).
    pub async fn resume(addr: &str, timeout_ms: i32, session_id: i64, passwd: Vec<u8>, last_zxid: i64) -> Result<Client, ClientError> {
        Self::open(addr, timeout_ms, session_id, passwd, last_zxid, false).await
    }

    async fn open(
        addr: &str,
        timeout_ms: i32,
        session_id: i64,
        passwd: Vec<u8>,
        last_zxid: i64,
        can_be_read_only: bool,
    ) -> Result<Client, ClientError> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await.map_err(|_| ClientError::Timeout)??;
        stream.set_nodelay(true)?;
        let (mut rd, mut wr) = stream.into_split();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout: timeout_ms,
            session_id,
            passwd,
            read_only: Some(can_be_read_only),
        };
        write_frame(&mut wr, &req.to_bytes()).await?;
        let frame = tokio::time::timeout(Duration::from_secs(30), read_frame(&mut rd)).await.map_err(|_| ClientError::Timeout)??;
        let resp = ConnectResponse::from_bytes(&frame)?;
        if resp.timeout <= 0 || resp.session_id == 0 {
            return Err(ClientError::SessionRefused);
        }
        let waiting: Arc<Mutex<VecDeque<Waiter>>> = Arc::new(Mutex::new(VecDeque::new()));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(rd, waiting.clone(), events_tx, closed.clone()));
        let outbox = Arc::new(tokio::sync::Mutex::new(Outbox { writer: wr, next_xid: 1, waiting, closed }));
        // Like every real client, ping at a third of the session timeout.
        let pinger = tokio::spawn(ping_loop(Arc::downgrade(&outbox), Duration::from_millis((resp.timeout / 3).max(1) as u64)));
        Ok(Client {
            outbox,
            pinger,
            events: tokio::sync::Mutex::new(events_rx),
            session_id: resp.session_id,
            passwd: resp.passwd,
            timeout_ms: resp.timeout,
            read_only: resp.read_only == Some(true),
            reader,
        })
    }

    /// Sends a request; the returned receiver yields its reply.
    pub async fn send<R: Record>(
        &self,
        op: OpCode,
        req: Option<&R>,
    ) -> Result<oneshot::Receiver<Result<(ReplyHeader, Bytes), ClientError>>, ClientError> {
        send_on(&self.outbox, op, req).await
    }

    /// Sends raw bytes as one frame (for tests of malformed input).
    pub async fn send_raw(&self, frame_body: &[u8]) -> Result<(), ClientError> {
        let mut out = self.outbox.lock().await;
        write_frame(&mut out.writer, frame_body).await?;
        Ok(())
    }

    /// Sends a request and waits for its reply; a non-zero error code is an `Err`.
    pub async fn call<R: Record>(&self, op: OpCode, req: Option<&R>) -> Result<Bytes, ClientError> {
        let rx = self.send(op, req).await?;
        let (header, body) = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(|_| ClientError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed")))??;
        if header.err != 0 {
            return Err(ClientError::Server(ErrorCode::from_i32(header.err).unwrap_or(ErrorCode::SystemError)));
        }
        Ok(body)
    }

    /// Creates a node; returns the created path.
    pub async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String, ClientError> {
        let req = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: jute::Acl::open_unsafe(), flags: mode.flags() };
        let body = self.call(OpCode::Create, Some(&req)).await?;
        Ok(jute::CreateResponse::from_bytes(&body)?.path)
    }

    /// Reads a node's data and Stat.
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat), ClientError> {
        let body = self.call(OpCode::GetData, Some(&GetDataRequest { path: path.into(), watch })).await?;
        let r = GetDataResponse::from_bytes(&body)?;
        Ok((r.data.unwrap_or_default(), r.stat))
    }

    /// Replaces a node's data.
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat, ClientError> {
        let body = self.call(OpCode::SetData, Some(&SetDataRequest { path: path.into(), data: Some(data.to_vec()), version })).await?;
        Ok(jute::SetDataResponse::from_bytes(&body)?.stat)
    }

    /// Deletes a node.
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        self.call(OpCode::Delete, Some(&DeleteRequest { path: path.into(), version })).await.map(|_| ())
    }

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        match self.call(OpCode::Exists, Some(&ExistsRequest { path: path.into(), watch })).await {
            Ok(body) => Ok(Some(jute::ExistsResponse::from_bytes(&body)?.stat)),
            Err(ClientError::Server(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's children.
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, ClientError> {
        let body = self.call(OpCode::GetChildren, Some(&GetChildrenRequest { path: path.into(), watch })).await?;
        Ok(jute::GetChildrenResponse::from_bytes(&body)?.children)
    }

    /// Waits until this session's server has applied every write the leader
    /// had committed when the sync reached it (ZooKeeper's sync).
    pub async fn sync(&self, path: &str) -> Result<(), ClientError> {
        self.call(OpCode::Sync, Some(&jute::SyncRequest { path: path.into() })).await.map(|_| ())
    }

    /// Pings the server.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.call::<jute::SyncRequest>(OpCode::Ping, None).await.map(|_| ())
    }

    /// Ends the session.
    pub async fn close(self) -> Result<(), ClientError> {
        self.call::<jute::SyncRequest>(OpCode::CloseSession, None).await.map(|_| ())
    }

    /// The next watch event, waiting up to `timeout` (woken as soon as one
    /// arrives, so the wait itself adds no latency).
    pub async fn next_event(&self, timeout: Duration) -> Option<WatcherEvent> {
        let mut events = self.events.lock().await;
        tokio::time::timeout(timeout, events.recv()).await.ok().flatten()
    }
}

/// Sends one request on a connection's outbox.
async fn send_on<R: Record>(
    outbox: &tokio::sync::Mutex<Outbox>,
    op: OpCode,
    req: Option<&R>,
) -> Result<oneshot::Receiver<Result<(ReplyHeader, Bytes), ClientError>>, ClientError> {
    let mut out = outbox.lock().await;
    if out.closed.load(Ordering::Acquire) {
        return Err(ClientError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed")));
    }
    let xid = match op {
        OpCode::Ping => xid::PING,
        _ => {
            out.next_xid = out.next_xid.wrapping_add(1).max(1);
            out.next_xid
        }
    };
    let mut body = BytesMut::new();
    RequestHeader { xid, op: op.code() }.write(&mut body);
    if let Some(req) = req {
        req.write(&mut body);
    }
    let (tx, rx) = oneshot::channel();
    out.waiting.lock().unwrap_or_else(|e| e.into_inner()).push_back((xid, tx));
    write_frame(&mut out.writer, &body).await?;
    Ok(rx)
}

/// Pings every `every` while the client lives.
async fn ping_loop(outbox: std::sync::Weak<tokio::sync::Mutex<Outbox>>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(outbox) = outbox.upgrade() else { return };
        if send_on::<jute::SyncRequest>(&outbox, OpCode::Ping, None).await.is_err() {
            return;
        }
    }
}

async fn read_loop(
    rd: tokio::net::tcp::OwnedReadHalf,
    waiting: Arc<Mutex<VecDeque<Waiter>>>,
    events: mpsc::UnboundedSender<WatcherEvent>,
    closed: Arc<AtomicBool>,
) {
    let fail_all = |waiting: &Arc<Mutex<VecDeque<Waiter>>>, why: &str| {
        closed.store(true, Ordering::Release);
        for (_, tx) in waiting.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = tx.send(Err(ClientError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, why.to_string()))));
        }
    };
    // Buffered: one read system call takes in many pipelined replies.
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    loop {
        let frame = match read_frame(&mut rd).await {
            Ok(f) => f,
            Err(e) => {
                fail_all(&waiting, &e.to_string());
                return;
            }
        };
        let mut r = Reader::new(&frame);
        let header = match ReplyHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => {
                fail_all(&waiting, &e.to_string());
                return;
            }
        };
        let offset = frame.len() - r.remaining();
        let body = Bytes::from(frame).slice(offset..);
        if header.xid == xid::NOTIFICATION {
            if let Ok(ev) = WatcherEvent::from_bytes(&body) {
                let _ = events.send(ev);
            }
            continue;
        }
        let next = waiting.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        match next {
            // Every reply, an auth reply too, carries its request's xid.
            Some((expected, tx)) if expected == header.xid => {
                let _ = tx.send(Ok((header, body)));
            }
            Some((expected, tx)) => {
                let _ = tx.send(Err(ClientError::OutOfOrder { expected, got: header.xid }));
                fail_all(&waiting, "xid out of order");
                return;
            }
            None => {}
        }
    }
}
