//! Fuzzing a live server: random and mutated frames over many connections.
//!
//! Workers open connections and send, bounded in number and time:
//! - pre-handshake noise and mutated connect requests,
//! - four-letter words, known and unknown,
//! - after a valid handshake, valid requests of every kind built with `jute`
//!   and then mutated (bit flips, truncations, hostile lengths and huge
//!   counts, random op codes and xids, inserted and deleted bytes), some with
//!   a corrupted frame length, each batch followed by a ping,
//! - frames that stop half-way (the server must drop them: handshake timeout
//!   or session expiry).
//!
//! Asserted: every connection is answered (its closing ping, or any byte
//! before a handshake) or closed within a bound; the process stays up; a
//! separate well-behaved session keeps working throughout (compare-and-set
//! writes, reads, a watch per round, its ephemeral) with its data intact.
//!
//! `PADDOCK_FUZZ_SEED` and `PADDOCK_FUZZ_FRAMES` vary the run (the seed is
//! printed; scheduling makes runs with one seed similar, not identical).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{rt, Paddock};
use jute::*;
use paddock::client::Client;

/// Fuzz frames to send in all (handshakes and closing pings not counted).
const FRAMES: usize = 3000;
/// Concurrent fuzzing connections.
const WORKERS: usize = 8;
/// The fuzzing phase stops after this, whatever the count.
const BUDGET: Duration = Duration::from_secs(15);
/// A connection must be answered or closed within this.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// A half-sent frame must be dropped within this (handshake timeout 10 s; session expiry).
const STALL_BOUND: Duration = Duration::from_secs(20);
/// The well-behaved session's calls must each finish within this.
const GOOD_OP_BOUND: Duration = Duration::from_secs(5);
/// jute.maxbuffer (paddock's default): longer frames close the connection.
const MAX_BUFFER: i64 = 0xfffff;

/// xorshift64*: the test's only source of randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Fewer than `max` random bytes.
    fn bytes_below(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().take(48).map(|x| format!("{x:02x}")).collect::<String>() + if b.len() > 48 { "..." } else { "" }
}

// ---- valid requests, built with jute -------------------------------------------

const PATHS: &[&str] = &[
    "/fz",
    "/fz/a",
    "/fz/a/b",
    "/fz/s-",
    "/fz/c",
    "/fz/t",
    "/",
    "/zookeeper",
    "/zookeeper/quota",
    "",
    "fz",
    "/fz/",
    "/fz//x",
    "/fz/\u{e9}",
];

fn acls(rng: &mut Rng) -> Vec<Acl> {
    match rng.below(4) {
        0 => Acl::open_unsafe(),
        1 => Acl::creator_all(),
        2 => vec![
            Acl::new(perms::ALL, Id::new("digest", "fz:+7K83PhyQ3ijGj0ADmljf0quVwQ=")),
            Acl::new(perms::READ, Id::new("ip", "127.0.0.1")),
        ],
        _ => vec![Acl::new(rng.next() as i32, Id::new("nosuchscheme", "x"))],
    }
}

fn data(rng: &mut Rng) -> Option<Vec<u8>> {
    match rng.below(5) {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(rng.bytes_below(2048)),
        _ => Some(rng.bytes_below(24)),
    }
}

fn paths(rng: &mut Rng) -> Vec<String> {
    (0..rng.below(5)).map(|_| rng.pick(PATHS).to_string()).collect()
}

fn create_req(rng: &mut Rng) -> CreateRequest {
    let path = rng.pick(PATHS).to_string();
    let flags = rng.pick(&[0, 1, 2, 3, 4, 5, 6, 7, -1]);
    CreateRequest { path, data: data(rng), acl: acls(rng), flags }
}

fn ttl_req(rng: &mut Rng) -> CreateTtlRequest {
    let path = rng.pick(PATHS).to_string();
    let flags = rng.pick(&[5, 6, 0, 1]);
    let ttl = rng.pick(&[1, 1000, 60_000, 0, -1, i64::MAX]);
    CreateTtlRequest { path, data: data(rng), acl: acls(rng), flags, ttl }
}

fn multi_op(rng: &mut Rng, reads: bool) -> MultiOp {
    let path = rng.pick(PATHS).to_string();
    if reads {
        return match rng.below(2) {
            0 => MultiOp::GetData(GetDataRequest { path, watch: rng.one_in(2) }),
            _ => MultiOp::GetChildren(GetChildrenRequest { path, watch: rng.one_in(2) }),
        };
    }
    match rng.below(7) {
        0 => MultiOp::Create(create_req(rng)),
        1 => MultiOp::Create2(create_req(rng)),
        2 => MultiOp::CreateContainer(create_req(rng)),
        3 => MultiOp::CreateTtl(ttl_req(rng)),
        4 => MultiOp::Delete(DeleteRequest { path, version: rng.pick(&[-1, 0, 1]) }),
        5 => MultiOp::SetData(SetDataRequest { path, data: data(rng), version: rng.pick(&[-1, 0, 1]) }),
        _ => MultiOp::Check(CheckVersionRequest { path, version: rng.pick(&[-1, 0, 1]) }),
    }
}

/// A valid request frame body (header + record) of a random kind.
fn valid_request(rng: &mut Rng, xid: i32) -> Vec<u8> {
    let path = rng.pick(PATHS).to_string();
    let watch = rng.one_in(2);
    let mut body = bytes::BytesMut::new();
    fn op(code: OpCode, xid: i32, body: &mut bytes::BytesMut) {
        RequestHeader { xid, op: code.code() }.write(body)
    }
    match rng.below(28) {
        0 => {
            op(OpCode::Create, xid, &mut body);
            create_req(rng).write(&mut body)
        }
        1 => {
            op(OpCode::Create2, xid, &mut body);
            create_req(rng).write(&mut body)
        }
        2 => {
            op(OpCode::CreateContainer, xid, &mut body);
            create_req(rng).write(&mut body)
        }
        3 => {
            op(OpCode::CreateTtl, xid, &mut body);
            ttl_req(rng).write(&mut body)
        }
        4 => {
            op(OpCode::Delete, xid, &mut body);
            DeleteRequest { path, version: rng.pick(&[-1, 0, 3]) }.write(&mut body)
        }
        5 => {
            op(OpCode::Exists, xid, &mut body);
            ExistsRequest { path, watch }.write(&mut body)
        }
        6 => {
            op(OpCode::GetData, xid, &mut body);
            GetDataRequest { path, watch }.write(&mut body)
        }
        7 => {
            op(OpCode::SetData, xid, &mut body);
            SetDataRequest { path, data: data(rng), version: rng.pick(&[-1, 0, 5]) }.write(&mut body)
        }
        8 => {
            op(OpCode::GetAcl, xid, &mut body);
            GetAclRequest { path }.write(&mut body)
        }
        9 => {
            // setACL only below /fz: an ACL on "/" would change what later tests may do
            op(OpCode::SetAcl, xid, &mut body);
            SetAclRequest { path: format!("/fz{}", if rng.one_in(2) { "/a" } else { "" }), acl: acls(rng), version: -1 }.write(&mut body)
        }
        10 => {
            op(OpCode::GetChildren, xid, &mut body);
            GetChildrenRequest { path, watch }.write(&mut body)
        }
        11 => {
            op(OpCode::GetChildren2, xid, &mut body);
            GetChildren2Request { path, watch }.write(&mut body)
        }
        12 => {
            op(OpCode::Sync, xid, &mut body);
            SyncRequest { path }.write(&mut body)
        }
        13 => {
            op(OpCode::Check, xid, &mut body);
            CheckVersionRequest { path, version: 0 }.write(&mut body)
        }
        14 => {
            op(OpCode::Multi, xid, &mut body);
            MultiRequest { ops: (0..rng.below(6)).map(|_| multi_op(rng, false)).collect() }.write(&mut body)
        }
        15 => {
            op(OpCode::MultiRead, xid, &mut body);
            MultiRequest { ops: (0..rng.below(6)).map(|_| multi_op(rng, true)).collect() }.write(&mut body)
        }
        16 => {
            op(OpCode::GetAllChildrenNumber, xid, &mut body);
            GetAllChildrenNumberRequest { path }.write(&mut body)
        }
        17 => {
            op(OpCode::GetEphemerals, xid, &mut body);
            GetEphemeralsRequest { prefix_path: path }.write(&mut body)
        }
        18 => {
            op(OpCode::AddWatch, xid, &mut body);
            AddWatchRequest { path, mode: rng.pick(&[0, 1, 2, -1]) }.write(&mut body)
        }
        19 => {
            op(OpCode::RemoveWatches, xid, &mut body);
            RemoveWatchesRequest { path, watch_type: rng.pick(&[1, 2, 3, 4, 5, 0]) }.write(&mut body)
        }
        20 => {
            op(OpCode::CheckWatches, xid, &mut body);
            CheckWatchesRequest { path, watch_type: rng.pick(&[1, 2, 3]) }.write(&mut body)
        }
        21 => {
            op(OpCode::SetWatches, xid::SET_WATCHES, &mut body);
            SetWatches {
                relative_zxid: rng.pick(&[0, 1, i64::MAX]),
                data_watches: paths(rng),
                exist_watches: paths(rng),
                child_watches: paths(rng),
            }
            .write(&mut body)
        }
        22 => {
            op(OpCode::SetWatches2, xid::SET_WATCHES, &mut body);
            SetWatches2 {
                relative_zxid: rng.pick(&[0, 1, i64::MAX]),
                data_watches: paths(rng),
                exist_watches: paths(rng),
                child_watches: paths(rng),
                persistent_watches: paths(rng),
                persistent_recursive_watches: paths(rng),
            }
            .write(&mut body)
        }
        23 => {
            op(OpCode::Auth, xid::AUTH, &mut body);
            let (scheme, auth) = rng.pick(&[
                ("digest", &b"fz:pw"[..]),
                ("digest", &b"nocolon"[..]),
                ("ip", &b"127.0.0.1"[..]),
                ("nosuchscheme", &b"x"[..]),
                ("", &b""[..]),
            ]);
            AuthPacket { auth_type: 0, scheme: scheme.into(), auth: Some(auth.to_vec()) }.write(&mut body)
        }
        24 => {
            op(OpCode::Sasl, xid, &mut body);
            GetSaslRequest { token: rng.bytes_below(40) }.write(&mut body)
        }
        25 => {
            op(OpCode::Reconfig, xid, &mut body);
            ReconfigRequest {
                joining_servers: "server.9=127.0.0.1:1:2".into(),
                leaving_servers: "1".into(),
                new_members: String::new(),
                cur_config_id: -1,
            }
            .write(&mut body)
        }
        26 => op(OpCode::WhoAmI, xid, &mut body),
        _ => op(
            rng.pick(&[
                OpCode::Ping,
                OpCode::CloseSession,
                OpCode::CreateSession,
                OpCode::Notification,
                OpCode::Error,
                OpCode::DeleteContainer,
            ]),
            xid,
            &mut body,
        ),
    }
    body.to_vec()
}

// ---- mutations --------------------------------------------------------------------

fn hostile_i32(rng: &mut Rng, room: usize) -> i32 {
    let room = room as i32;
    let random = rng.next() as i32;
    rng.pick(&[-1, -2, 0, 1, i32::MIN, i32::MAX, 0x00ff_ffff, 0x0100_0000, 1 << 20, room, room + 1, random])
}

/// 1 to 3 mutations of a request frame body (xid at 0..4, op at 4..8).
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        let len = b.len();
        match rng.below(10) {
            0 if len > 0 => {
                for _ in 0..1 + rng.below(4) {
                    let bit = rng.below(len * 8);
                    b[bit / 8] ^= 1 << (bit % 8);
                }
            }
            1 => b.truncate(rng.below(len + 1)),
            2 if len >= 4 => {
                let pos = rng.below(len - 3);
                let v = hostile_i32(rng, len - pos);
                b[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
            }
            // a huge count or length in place of a small one
            3 if len >= 12 => {
                let small: Vec<usize> =
                    (8..len - 3).filter(|&p| (0..=32).contains(&i32::from_be_bytes(b[p..p + 4].try_into().unwrap()))).collect();
                if !small.is_empty() {
                    let pos = rng.pick(&small);
                    let v = rng.pick(&[i32::MAX, 0x1000_0000, 1_000_000, 65_536]);
                    b[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            // a random op code: known (with the wrong body) or not
            4 if len >= 8 => {
                let known = OpCode::ALL[rng.below(OpCode::ALL.len())].code();
                let random = rng.next() as i32;
                let small = rng.below(300) as i32 - 20;
                let op = rng.pick(&[known, known, random, small]);
                b[4..8].copy_from_slice(&op.to_be_bytes());
            }
            // a special or random xid
            5 if len >= 4 => {
                let random = rng.next() as i32;
                let x = rng.pick(&[-1, -2, -4, -8, 0, i32::MIN, i32::MAX, random]);
                b[0..4].copy_from_slice(&x.to_be_bytes());
            }
            6 => {
                let pos = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins = rng.bytes(n);
                b.splice(pos..pos, ins);
            }
            7 if len > 0 => {
                let a = rng.below(len);
                let e = (a + 1 + rng.below(8)).min(len);
                b.drain(a..e);
            }
            8 if len > 0 => {
                let pos = rng.below(len);
                let random = rng.next() as u8;
                b[pos] = rng.pick(&[0, 0xff, 0x80, 0xc3, random]);
            }
            _ => {
                let n = rng.below(24);
                let tail = rng.bytes(n);
                b.extend_from_slice(&tail);
            }
        }
    }
}

/// Appends `body` as a frame, sometimes with a corrupted length. A declared
/// length the server accepts is made true (padding or cutting the body), so
/// the stream stays in step; returns false when the declared length is out of
/// range, after which the server must hang up.
fn push_frame(rng: &mut Rng, wire: &mut Vec<u8>, mut body: Vec<u8>, corrupt_len: bool) -> bool {
    let real = body.len() as i64;
    let random = (rng.next() as i32) as i64;
    let declared: i64 = if corrupt_len {
        rng.pick(&[
            0,
            1,
            3,
            4,
            7,
            8,
            real / 2,
            real - 1,
            real + 1,
            real + 100,
            65_536,
            0x20_0000,
            i32::MAX as i64,
            -1,
            -2,
            i32::MIN as i64,
            random,
        ])
    } else {
        real
    };
    // Stay clear of the exact jute.maxbuffer boundary: either well inside or well outside.
    let declared = if (0xf_0000..0x11_0000).contains(&declared) && declared != 65_536 { 0x20_0000 } else { declared };
    wire.extend_from_slice(&(declared as i32).to_be_bytes());
    if !(0..=MAX_BUFFER).contains(&declared) {
        wire.extend_from_slice(&body);
        return false;
    }
    let declared = declared as usize;
    if declared <= body.len() {
        body.truncate(declared);
    } else {
        let pad = rng.bytes(declared - body.len());
        body.extend_from_slice(&pad);
    }
    wire.extend_from_slice(&body);
    true
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn ping_body() -> Vec<u8> {
    RequestHeader { xid: xid::PING, op: OpCode::Ping.code() }.to_bytes().to_vec()
}

// ---- connection outcomes -------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The wanted answer came.
    Answered,
    /// The server hung up (EOF or reset).
    Closed,
    /// Neither within the bound.
    Hung,
    /// The server sent something that is not a frame.
    Garbage(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    /// Any byte counts as an answer.
    AnyByte,
    /// The ConnectResponse frame (returned through `handshake`).
    ConnectResponse,
    /// The reply to the closing ping (xid -2); other frames are skipped.
    PingReply,
    /// Only a hang-up will do; frames are skipped.
    Close,
}

/// Reads until the wanted answer, a hang-up, or `bound`. For
/// `ConnectResponse`, the response frame body is stored in `connect`.
fn await_outcome(s: &mut TcpStream, bound: Duration, want: Want, connect: &mut Option<Vec<u8>>) -> Outcome {
    let deadline = Instant::now() + bound;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Hung;
        }
        let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(250))));
        match s.read(&mut chunk) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if want == Want::AnyByte {
                    return Outcome::Answered;
                }
                while buf.len() >= 4 {
                    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    if len > 64 << 20 {
                        return Outcome::Garbage(format!("frame length {len}"));
                    }
                    if buf.len() < 4 + len {
                        break;
                    }
                    let body: Vec<u8> = buf[4..4 + len].to_vec();
                    buf.drain(..4 + len);
                    match want {
                        Want::ConnectResponse => {
                            *connect = Some(body);
                            return Outcome::Answered;
                        }
                        Want::PingReply => match ReplyHeader::from_bytes(&body) {
                            Ok(h) if h.xid == xid::PING => return Outcome::Answered,
                            Ok(_) => {}
                            Err(e) => return Outcome::Garbage(format!("reply header: {e}")),
                        },
                        _ => {}
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return Outcome::Closed,
        }
    }
}

fn open(addr: &str) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// A valid handshake; the session's id on success.
fn handshake(s: &mut TcpStream) -> Result<i64, String> {
    s.write_all(&frame(&common::new_session(4000).to_bytes())).map_err(|e| format!("send connect: {e}"))?;
    let mut body = None;
    match await_outcome(s, ANSWER_BOUND, Want::ConnectResponse, &mut body) {
        Outcome::Answered => {}
        other => return Err(format!("valid connect request: {other:?}")),
    }
    let resp = ConnectResponse::from_bytes(&body.unwrap()).map_err(|e| format!("connect response: {e}"))?;
    if resp.session_id == 0 || resp.timeout <= 0 {
        return Err(format!("valid connect refused: {resp:?}"));
    }
    Ok(resp.session_id)
}

#[derive(Default)]
struct Tally {
    connections: AtomicUsize,
    frames: AtomicUsize,
    answered: AtomicUsize,
    closed: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, what: &str, wire: &[u8], outcome: Outcome, ok: &[Outcome]) {
        match outcome {
            Outcome::Answered => self.answered.fetch_add(1, Ordering::Relaxed),
            Outcome::Closed => self.closed.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if !ok.contains(&outcome) {
            self.failures.lock().unwrap().push(format!("{what}: {outcome:?} after sending {} bytes: {}", wire.len(), hex(wire)));
        }
    }
}

/// One fuzzing connection; returns the number of fuzz frames it sent.
fn fuzz_connection(addr: &str, rng: &mut Rng, tally: &Tally) -> usize {
    let mut s = match open(addr) {
        Ok(s) => s,
        Err(e) => {
            tally.failures.lock().unwrap().push(format!("connect: {e}"));
            return 1;
        }
    };
    tally.connections.fetch_add(1, Ordering::Relaxed);
    let mut none = None;
    let scenario = rng.below(100);
    if scenario < 8 {
        // noise before any handshake; a length the server accepts is made true
        let mut wire = Vec::new();
        let noise = rng.bytes_below(64);
        let corrupt = rng.one_in(2);
        let raw = rng.one_in(3);
        if !push_frame(rng, &mut wire, noise, corrupt) || raw {
            wire = rng.bytes_below(60);
            wire.extend_from_slice(&[0; 4]);
            // an announced length the noise does not fill would leave the server waiting: keep it out of range
            wire[0] |= 0x80;
        }
        let _ = s.write_all(&wire);
        let o = await_outcome(&mut s, ANSWER_BOUND, Want::AnyByte, &mut none);
        tally.record("pre-handshake noise", &wire, o, &[Outcome::Answered, Outcome::Closed]);
        return 1;
    }
    if scenario < 12 {
        // four-letter words, known and unknown
        let known = rng.pick(&["ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp", "dump", "isro", "dirs"]);
        let random: String = (0..4).map(|_| (b'a' + rng.below(26) as u8) as char).collect();
        let word = if rng.one_in(3) { random } else { known.to_string() };
        let _ = s.write_all(word.as_bytes());
        let o = await_outcome(&mut s, ANSWER_BOUND, Want::AnyByte, &mut none);
        tally.record(&format!("four-letter word {word}"), word.as_bytes(), o, &[Outcome::Answered, Outcome::Closed]);
        return 1;
    }
    if scenario < 25 {
        // a mutated connect request
        let mut req = common::new_session(rng.pick(&[4000, 0, -1, i32::MAX, 1]));
        if rng.one_in(3) {
            req.session_id = rng.next() as i64;
            req.passwd = rng.bytes(16);
        }
        if rng.one_in(4) {
            req.read_only = None;
        }
        if rng.one_in(8) {
            req.last_zxid_seen = rng.pick(&[i64::MAX, -1, 1 << 40]);
        }
        let mut body = req.to_bytes().to_vec();
        if !rng.one_in(4) {
            mutate(rng, &mut body);
        }
        let mut wire = Vec::new();
        let corrupt = rng.one_in(5);
        let in_range = push_frame(rng, &mut wire, body, corrupt);
        let _ = s.write_all(&wire);
        let want = if in_range { Want::AnyByte } else { Want::Close };
        let o = await_outcome(&mut s, ANSWER_BOUND, want, &mut none);
        tally.record("mutated connect", &wire, o, &[Outcome::Answered, Outcome::Closed]);
        return 1;
    }
    // a session, then a batch of (mostly mutated) requests and a ping
    if let Err(e) = handshake(&mut s) {
        tally.failures.lock().unwrap().push(e);
        return 1;
    }
    let mut wire = Vec::new();
    let mut in_range = true;
    let n = 1 + rng.below(6);
    let mut sent = 0;
    for next_xid in 1..=n as i32 {
        let mut body = valid_request(rng, next_xid);
        // 40% go as built (random paths, flags, ACLs, versions: the server's semantics), 60% mutated
        if rng.below(10) < 6 {
            mutate(rng, &mut body);
        }
        sent += 1;
        let corrupt = rng.one_in(8);
        in_range = push_frame(rng, &mut wire, body, corrupt);
        if !in_range {
            break;
        }
    }
    if in_range {
        wire.extend_from_slice(&frame(&ping_body()));
    }
    let _ = s.write_all(&wire);
    let (want, ok): (Want, &[Outcome]) =
        if in_range { (Want::PingReply, &[Outcome::Answered, Outcome::Closed]) } else { (Want::Close, &[Outcome::Closed]) };
    let o = await_outcome(&mut s, ANSWER_BOUND, want, &mut none);
    tally.record(if in_range { "request batch" } else { "request batch with an out-of-range length" }, &wire, o, ok);
    // Now and then end the session politely; otherwise it expires.
    if rng.one_in(3) {
        let close = RequestHeader { xid: 99_999, op: OpCode::CloseSession.code() }.to_bytes();
        let _ = s.write_all(&frame(&close));
    }
    sent
}

/// A connection that sends part of a frame and then nothing: it must be closed.
fn stalled_connection(addr: &str, after_handshake: bool) -> Result<(), String> {
    let mut s = open(addr).map_err(|e| e.to_string())?;
    if after_handshake {
        handshake(&mut s)?;
    }
    let mut partial = 200u32.to_be_bytes().to_vec();
    partial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 4, 0, 0]);
    s.write_all(&partial).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    match await_outcome(&mut s, STALL_BOUND, Want::Close, &mut None) {
        Outcome::Closed => Ok(()),
        other => Err(format!(
            "a half-sent frame ({} the handshake) left the connection open: {other:?} after {:?}",
            if after_handshake { "after" } else { "before" },
            t0.elapsed()
        )),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---- the well-behaved session -----------------------------------------------------------

async fn bounded<T, E: std::fmt::Debug>(what: &str, f: impl std::future::Future<Output = Result<T, E>>) -> Result<T, String> {
    match tokio::time::timeout(GOOD_OP_BOUND, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e:?}")),
        Err(_) => Err(format!("{what}: no answer within {GOOD_OP_BOUND:?}")),
    }
}

struct GoodReport {
    rounds: u64,
    max_round: Duration,
}

/// Keeps a session busy until `stop`, checking every answer; Err describes the first problem.
async fn good_session(addr: String, root: String, ready: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Result<GoodReport, String> {
    let c = bounded("connect", Client::connect(&addr, 10_000)).await?;
    bounded("create /fz", async {
        match c.create("/fz", b"", CreateMode::Persistent).await {
            Err(paddock::client::ClientError::Server(ErrorCode::NodeExists)) => Ok(String::new()),
            r => r,
        }
    })
    .await?;
    bounded("create root", c.create(&root, b"root", CreateMode::Persistent)).await?;
    for i in 0..16 {
        bounded("create node", c.create(&format!("{root}/n{i}"), format!("data-{i}").as_bytes(), CreateMode::Persistent)).await?;
    }
    let counter = format!("{root}/counter");
    let eph = format!("{root}/eph");
    bounded("create counter", c.create(&counter, b"0", CreateMode::Persistent)).await?;
    bounded("create ephemeral", c.create(&eph, b"mine", CreateMode::Ephemeral)).await?;
    ready.store(true, Ordering::Release);

    let mut n: i32 = 0;
    let mut max_round = Duration::ZERO;
    while !stop.load(Ordering::Acquire) {
        let t0 = Instant::now();
        // a watched compare-and-set write: nobody else may have touched the counter
        bounded("getData+watch", c.get_data(&counter, true)).await?;
        n += 1;
        let st = bounded("setData", c.set_data(&counter, n.to_string().as_bytes(), n - 1)).await?;
        if st.version != n {
            return Err(format!("counter version {} after {n} writes", st.version));
        }
        let ev = c.next_event(GOOD_OP_BOUND).await.ok_or_else(|| format!("no watch event for write {n}"))?;
        if (ev.event_type, ev.path.as_str()) != (event_type::NODE_DATA_CHANGED, counter.as_str()) {
            return Err(format!("unexpected event {ev:?} for write {n}"));
        }
        let (d, _) = bounded("getData", c.get_data(&counter, false)).await?;
        if d != n.to_string().as_bytes() {
            return Err(format!("counter reads {:?} after writing {n}", String::from_utf8_lossy(&d)));
        }
        let i = n % 16;
        let (d, st) = bounded("getData node", c.get_data(&format!("{root}/n{i}"), false)).await?;
        if d != format!("data-{i}").as_bytes() || st.version != 0 {
            return Err(format!("{root}/n{i} changed: {:?} version {}", String::from_utf8_lossy(&d), st.version));
        }
        let owner = bounded("exists ephemeral", c.exists(&eph, false)).await?.map(|s| s.ephemeral_owner);
        if owner != Some(c.session_id) {
            return Err(format!("ephemeral owner {owner:?}, session {:#x}", c.session_id));
        }
        max_round = max_round.max(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Everything is as it was left.
    let mut kids = bounded("getChildren", c.get_children(&root, false)).await?;
    kids.sort();
    let mut want: Vec<String> = (0..16).map(|i| format!("n{i}")).chain(["counter".to_string(), "eph".to_string()]).collect();
    want.sort();
    if kids != want {
        return Err(format!("children of {root}: {kids:?}"));
    }
    for i in 0..16 {
        let (d, _) = bounded("getData node", c.get_data(&format!("{root}/n{i}"), false)).await?;
        if d != format!("data-{i}").as_bytes() {
            return Err(format!("{root}/n{i} holds {:?}", String::from_utf8_lossy(&d)));
        }
    }
    let (d, st) = bounded("getData counter", c.get_data(&counter, false)).await?;
    if d != n.to_string().as_bytes() || st.version != n {
        return Err(format!("counter {:?} version {} after {n} writes", String::from_utf8_lossy(&d), st.version));
    }
    bounded("close", c.close()).await?;
    Ok(GoodReport { rounds: n as u64, max_round })
}

#[test]
fn fuzzed_frames_leave_the_server_and_other_sessions_unharmed() {
    let t_start = Instant::now();
    let seed: u64 = std::env::var("PADDOCK_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x00f0_2201);
    let frames: usize = std::env::var("PADDOCK_FUZZ_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(FRAMES);
    eprintln!("fuzz: PADDOCK_FUZZ_SEED={seed} PADDOCK_FUZZ_FRAMES={frames}");

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let stderr_log = dir.path().join("paddock.stderr");
    let mut server = Paddock::start_logging_to(&data_dir, &stderr_log);
    let addr = server.addr.clone();
    let root = format!("/good-{seed:016x}");

    let ready = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let (addr, root, ready, stop) = (addr.clone(), root.clone(), ready.clone(), stop.clone());
        std::thread::spawn(move || rt().block_on(good_session(addr, root, ready, stop)))
    };
    let t_ready = Instant::now();
    while !ready.load(Ordering::Acquire) {
        assert!(!good.is_finished(), "the well-behaved session failed to set up: {:?}", good.join().unwrap().err());
        assert!(t_ready.elapsed() < Duration::from_secs(20), "the well-behaved session did not set up within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }

    // Half-sent frames, before and after a handshake, watched in the background.
    let stalled: Vec<_> = [false, false, true, true]
        .into_iter()
        .map(|after| {
            let addr = addr.clone();
            std::thread::spawn(move || stalled_connection(&addr, after))
        })
        .collect();

    let tally = Arc::new(Tally::default());
    let budget_end = Instant::now() + BUDGET;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (addr, tally) = (addr.clone(), tally.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed.wrapping_add(w as u64 * 0x1000_0001));
                while Instant::now() < budget_end && tally.frames.load(Ordering::Relaxed) < frames {
                    let sent = fuzz_connection(&addr, &mut rng, &tally);
                    tally.frames.fetch_add(sent, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("fuzz worker panicked");
    }
    let fuzz_time = t_start.elapsed();
    assert!(server.alive(), "paddock died during fuzzing");

    let stall_results: Vec<Result<(), String>> = stalled.into_iter().map(|h| h.join().expect("stall thread panicked")).collect();
    stop.store(true, Ordering::Release);
    let report = good.join().expect("well-behaved session thread panicked");

    // The server still takes new sessions and answers four-letter words.
    assert_eq!(server.four_letter("ruok"), "imok");
    rt().block_on(async {
        let c = Client::connect(&addr, 10_000).await.expect("a fresh session after fuzzing");
        let (d, _) = c.get_data(&format!("{root}/n3"), false).await.expect("read after fuzzing");
        assert_eq!(d, b"data-3");
        c.close().await.unwrap();
    });
    assert!(server.alive(), "paddock died");
    // A panicking connection task would not take the process down: look for its message.
    let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
    assert!(!log.contains("panicked"), "paddock panicked on client input (seed {seed}):\n{}", tail(&log, 40));

    let failures = tally.failures.lock().unwrap().clone();
    eprintln!(
        "fuzz: {} frames over {} connections in {:.1?} ({} answered, {} closed by the server); well-behaved session: {}; paddock stderr {} lines; total {:.1?}",
        tally.frames.load(Ordering::Relaxed),
        tally.connections.load(Ordering::Relaxed),
        fuzz_time,
        tally.answered.load(Ordering::Relaxed),
        tally.closed.load(Ordering::Relaxed),
        match &report {
            Ok(r) => format!("{} rounds, slowest {:.1?}", r.rounds, r.max_round),
            Err(e) => format!("FAILED: {e}"),
        },
        log.lines().count(),
        t_start.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} connections misbehaved (seed {seed}); first ones:\n{}",
        failures.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    for r in stall_results {
        r.unwrap();
    }
    let report = report.unwrap_or_else(|e| panic!("the well-behaved session broke during fuzzing (seed {seed}): {e}"));
    assert!(report.rounds >= 20, "the well-behaved session made only {} rounds", report.rounds);
    assert!(tally.frames.load(Ordering::Relaxed) >= frames.min(500), "only {} frames sent", tally.frames.load(Ordering::Relaxed));
}
