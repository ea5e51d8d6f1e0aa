//! Decodes every frame captured off a real ZooKeeper 3.8 server (see
//! `tests/golden/README.md`) and checks it re-encodes byte for byte.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::PathBuf;

use bytes::BytesMut;

use crate::*;

/// One captured frame body (length prefix stripped) and its file name.
struct Frame {
    name: String,
    bytes: Vec<u8>,
}

/// Both directions of one captured TCP connection.
#[derive(Default)]
struct Conn {
    c2s: Vec<Frame>,
    s2c: Vec<Frame>,
}

fn golden_dir() -> PathBuf {
    // Cargo sets the variable when it runs the test, too: prefer that, since a
    // binary reused from a checkout elsewhere (same target dir) has a stale
    // compile-time path baked in.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    PathBuf::from(dir).join("tests").join("golden")
}

/// Loads `connNN-{c2s,s2c}-SEQ-what.bin`, grouped by connection, in order.
fn load() -> BTreeMap<String, Conn> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("conn") && n.ends_with(".bin"))
        .collect();
    names.sort();
    let mut conns: BTreeMap<String, Conn> = BTreeMap::new();
    for name in names {
        let bytes = std::fs::read(golden_dir().join(&name)).expect("readable frame");
        let mut parts = name.splitn(3, '-');
        let conn = parts.next().expect("conn part").to_owned();
        let dir = parts.next().expect("direction part").to_owned();
        let entry = conns.entry(conn).or_default();
        let frame = Frame { name, bytes };
        match dir.as_str() {
            "c2s" => entry.c2s.push(frame),
            "s2c" => entry.s2c.push(frame),
            other => panic!("bad direction {other} in {}", frame.name),
        }
    }
    conns
}

/// Decodes a `T` from `r` and appends its re-encoding to `out`.
fn again<T: Record + Debug>(r: &mut Reader<'_>, out: &mut BytesMut, name: &str) -> T {
    let value = T::read(r).unwrap_or_else(|e| panic!("{name}: {e}"));
    value.write(out);
    value
}

/// Equal, except that a null (-1) length in `orig` may be a zero length in
/// `ours` (buffers and strings decode null as empty). Returns whether any
/// such substitution was needed, or None if the bytes differ otherwise.
fn compare_modulo_nulls(orig: &[u8], ours: &[u8]) -> Option<bool> {
    if orig.len() != ours.len() {
        return None;
    }
    let mut normalized = false;
    let mut i = 0;
    while i < orig.len() {
        if orig.get(i..i + 4) == Some(&[0xff; 4][..]) && ours.get(i..i + 4) == Some(&[0; 4][..]) {
            normalized = true;
            i += 4;
        } else if orig[i] == ours[i] {
            i += 1;
        } else {
            return None;
        }
    }
    Some(normalized)
}

/// Facts about the capture worth pinning down, gathered while decoding.
#[derive(Default)]
struct Seen {
    request_ops: BTreeSet<i32>,
    reply_ops: BTreeSet<i32>,
    normalized: BTreeSet<String>,
    frames: usize,
}

fn check_frame(frame: &Frame, out: &BytesMut, r: &Reader<'_>, seen: &mut Seen) {
    assert!(r.is_empty(), "{}: {} trailing bytes", frame.name, r.remaining());
    match compare_modulo_nulls(&frame.bytes, out) {
        Some(false) => {}
        Some(true) => {
            seen.normalized.insert(frame.name.clone());
        }
        None => panic!("{}: re-encoding differs\n original {:02x?}\n ours     {:02x?}", frame.name, frame.bytes, &out[..]),
    }
    seen.frames += 1;
}

fn decode_request(frame: &Frame, seen: &mut Seen) -> RequestHeader {
    let name = frame.name.as_str();
    let mut r = Reader::new(&frame.bytes);
    let mut out = BytesMut::new();
    let header: RequestHeader = again(&mut r, &mut out, name);
    let op = OpCode::from_i32(header.op).unwrap_or_else(|| panic!("{name}: op {}", header.op));
    match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
            again::<CreateRequest>(&mut r, &mut out, name);
        }
        OpCode::CreateTtl => {
            again::<CreateTtlRequest>(&mut r, &mut out, name);
        }
        OpCode::Delete | OpCode::DeleteContainer => {
            again::<DeleteRequest>(&mut r, &mut out, name);
        }
        OpCode::Exists => {
            again::<ExistsRequest>(&mut r, &mut out, name);
        }
        OpCode::GetData => {
            again::<GetDataRequest>(&mut r, &mut out, name);
        }
        OpCode::SetData => {
            again::<SetDataRequest>(&mut r, &mut out, name);
        }
        OpCode::GetAcl => {
            again::<GetAclRequest>(&mut r, &mut out, name);
        }
        OpCode::SetAcl => {
            again::<SetAclRequest>(&mut r, &mut out, name);
        }
        OpCode::GetChildren => {
            again::<GetChildrenRequest>(&mut r, &mut out, name);
        }
        OpCode::GetChildren2 => {
            again::<GetChildren2Request>(&mut r, &mut out, name);
        }
        OpCode::Sync => {
            again::<SyncRequest>(&mut r, &mut out, name);
        }
        OpCode::Check => {
            again::<CheckVersionRequest>(&mut r, &mut out, name);
        }
        OpCode::Multi | OpCode::MultiRead => {
            let multi: MultiRequest = again(&mut r, &mut out, name);
            assert_eq!(multi.is_read(), op == OpCode::MultiRead, "{name}");
        }
        OpCode::Reconfig => {
            let req: ReconfigRequest = again(&mut r, &mut out, name);
            assert!(req.leaving_servers.is_empty() && req.new_members.is_empty());
        }
        OpCode::CheckWatches => {
            again::<CheckWatchesRequest>(&mut r, &mut out, name);
        }
        OpCode::RemoveWatches => {
            again::<RemoveWatchesRequest>(&mut r, &mut out, name);
        }
        OpCode::Auth => {
            again::<AuthPacket>(&mut r, &mut out, name);
        }
        OpCode::SetWatches => {
            again::<SetWatches>(&mut r, &mut out, name);
        }
        OpCode::SetWatches2 => {
            again::<SetWatches2>(&mut r, &mut out, name);
        }
        OpCode::Sasl => {
            again::<GetSaslRequest>(&mut r, &mut out, name);
        }
        OpCode::GetEphemerals => {
            again::<GetEphemeralsRequest>(&mut r, &mut out, name);
        }
        OpCode::GetAllChildrenNumber => {
            again::<GetAllChildrenNumberRequest>(&mut r, &mut out, name);
        }
        OpCode::AddWatch => {
            again::<AddWatchRequest>(&mut r, &mut out, name);
        }
        OpCode::Ping | OpCode::CloseSession | OpCode::WhoAmI => {}
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
            panic!("{name}: clients do not send {op}")
        }
    }
    check_frame(frame, &out, &r, seen);
    seen.request_ops.insert(header.op);
    header
}

fn decode_reply(frame: &Frame, xid_ops: &HashMap<i32, OpCode>, seen: &mut Seen) -> ReplyHeader {
    let name = frame.name.as_str();
    let mut r = Reader::new(&frame.bytes);
    let mut out = BytesMut::new();
    let header: ReplyHeader = again(&mut r, &mut out, name);
    if header.xid == xid::NOTIFICATION {
        assert_eq!(header.zxid, -1, "{name}");
        let ev: WatcherEvent = again(&mut r, &mut out, name);
        assert_eq!(ev.state, keeper_state::SYNC_CONNECTED, "{name}");
    } else if header.err != 0 {
        assert!(ErrorCode::from_i32(header.err).is_some(), "{name}: err {}", header.err);
        // Error replies carry no body.
    } else {
        let op = *xid_ops.get(&header.xid).unwrap_or_else(|| panic!("{name}: xid {}", header.xid));
        match op {
            OpCode::Create => {
                again::<CreateResponse>(&mut r, &mut out, name);
            }
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                again::<Create2Response>(&mut r, &mut out, name);
            }
            OpCode::Exists => {
                again::<ExistsResponse>(&mut r, &mut out, name);
            }
            OpCode::GetData | OpCode::Reconfig => {
                again::<GetDataResponse>(&mut r, &mut out, name);
            }
            OpCode::SetData => {
                again::<SetDataResponse>(&mut r, &mut out, name);
            }
            OpCode::GetAcl => {
                again::<GetAclResponse>(&mut r, &mut out, name);
            }
            OpCode::SetAcl => {
                again::<SetAclResponse>(&mut r, &mut out, name);
            }
            OpCode::GetChildren => {
                again::<GetChildrenResponse>(&mut r, &mut out, name);
            }
            OpCode::GetChildren2 => {
                again::<GetChildren2Response>(&mut r, &mut out, name);
            }
            OpCode::Sync => {
                again::<SyncResponse>(&mut r, &mut out, name);
            }
            OpCode::Multi | OpCode::MultiRead => {
                again::<MultiResponse>(&mut r, &mut out, name);
            }
            OpCode::GetAllChildrenNumber => {
                again::<GetAllChildrenNumberResponse>(&mut r, &mut out, name);
            }
            OpCode::GetEphemerals => {
                again::<GetEphemeralsResponse>(&mut r, &mut out, name);
            }
            OpCode::WhoAmI => {
                again::<WhoAmIResponse>(&mut r, &mut out, name);
            }
            OpCode::Sasl => {
                again::<SetSaslResponse>(&mut r, &mut out, name);
            }
            OpCode::AddWatch => {
                let body: ErrorResponse = again(&mut r, &mut out, name);
                assert_eq!(body.err, 0, "{name}");
            }
            OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Check
            | OpCode::Ping
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CloseSession => {}
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                panic!("{name}: no reply expected for {op}")
            }
        }
        seen.reply_ops.insert(op.code());
    }
    check_frame(frame, &out, &r, seen);
    header
}

fn decode_connect<T: Record + Debug>(frame: &Frame, seen: &mut Seen) -> T {
    let mut r = Reader::new(&frame.bytes);
    let mut out = BytesMut::new();
    let value = again::<T>(&mut r, &mut out, &frame.name);
    check_frame(frame, &out, &r, seen);
    value
}

#[test]
fn golden_frames_round_trip() {
    let conns = load();
    assert!(conns.len() >= 19, "golden frames missing: {}", conns.len());
    let mut seen = Seen::default();
    for (conn, frames) in &conns {
        let (first_req, reqs) = frames.c2s.split_first().unwrap_or_else(|| panic!("{conn}: no c2s"));
        let connect: ConnectRequest = decode_connect(first_req, &mut seen);
        assert_eq!(connect.passwd.len(), 16, "{conn}");
        let mut xid_ops = HashMap::new();
        for frame in reqs {
            let header = decode_request(frame, &mut seen);
            let op = OpCode::from_i32(header.op).expect("checked in decode_request");
            xid_ops.insert(header.xid, op);
        }
        let (first_rep, reps) = frames.s2c.split_first().unwrap_or_else(|| panic!("{conn}: no s2c"));
        let accepted: ConnectResponse = decode_connect(first_rep, &mut seen);
        // The server echoes the read-only byte only to clients that sent one.
        assert_eq!(accepted.read_only.is_some(), connect.read_only.is_some(), "{conn}");
        assert_ne!(accepted.session_id, 0, "{conn}");
        for frame in reps {
            decode_reply(frame, &xid_ops, &mut seen);
        }
    }
    assert!(seen.frames >= 180, "only {} frames", seen.frames);

    let must_have = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 100, 101, 103, 104, 105, 106, 107, -11];
    for op in must_have {
        assert!(seen.request_ops.contains(&op), "no request with op {op}");
    }
    for op in [1, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 19, 21, 22, 103, 104, 106, 107] {
        assert!(seen.reply_ops.contains(&op), "no successful reply to op {op}");
    }
    // Null data buffers are kept apart from empty ones, so every frame —
    // including creates with null data and the server's null getData reply —
    // re-encodes byte for byte.
    assert!(seen.normalized.is_empty(), "frames re-encoded with null -> empty: {:?}", seen.normalized);
}

fn frame(name: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reply(name: &str) -> (ReplyHeader, Vec<u8>) {
    let bytes = frame(name);
    let mut r = Reader::new(&bytes);
    let header = ReplyHeader::read(&mut r).expect("reply header");
    (header, r.rest().to_vec())
}

#[test]
fn golden_connect_handshake() {
    let req = ConnectRequest::from_bytes(&frame("conn01-c2s-000-connect.bin")).expect("decodes");
    assert_eq!(req.session_id, 0);
    assert_eq!(req.passwd, vec![0; 16], "fresh sessions send 16 zero bytes");
    assert_eq!(req.read_only, Some(false));
    let resp = ConnectResponse::from_bytes(&frame("conn01-s2c-000-connect.bin")).expect("decodes");
    assert_eq!(resp.timeout, 30000);
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(resp.read_only, Some(false));

    // A reconnect presents the session id and password it was given.
    let again = ConnectRequest::from_bytes(&frame("conn16-c2s-000-connect.bin")).expect("decodes");
    let given = ConnectResponse::from_bytes(&frame("conn15-s2c-000-connect.bin")).expect("decodes");
    assert_eq!((again.session_id, &again.passwd), (given.session_id, &given.passwd));
    assert_ne!(again.last_zxid_seen, 0);

    // An old-style client (no read-only byte) gets a reply without one.
    let old = frame("conn19-c2s-000-connect.bin");
    assert_eq!(old.len(), 44);
    assert_eq!(ConnectRequest::from_bytes(&old).expect("decodes").read_only, None);
    let old_resp = frame("conn19-s2c-000-connect.bin");
    assert_eq!(old_resp.len(), 36);
    assert_eq!(ConnectResponse::from_bytes(&old_resp).expect("decodes").read_only, None);
}

#[test]
fn golden_error_replies_have_no_body() {
    for name in [
        "conn09-s2c-001-exists-err101.bin",
        "conn10-s2c-001-getData-err101.bin",
        "conn14-s2c-001-create-err110.bin",
        "conn18-s2c-001-reconfig-err123.bin",
    ] {
        let (header, body) = reply(name);
        assert!(body.is_empty(), "{name}");
        assert_ne!(header.err, 0, "{name}");
    }
    let (header, _) = reply("conn09-s2c-001-exists-err101.bin");
    assert_eq!(ErrorCode::from_i32(header.err), Some(ErrorCode::NoNode));
    assert!(header.zxid > 0, "error replies still carry the last zxid");
}

#[test]
fn golden_multi_results() {
    // Successful multi: create, create (sequential), setData, check, delete.
    let (header, body) = reply("conn15-s2c-022-multi.bin");
    assert_eq!(header.err, 0);
    let resp = MultiResponse::from_bytes(&body).expect("decodes");
    let ops: Vec<OpCode> = resp.results.iter().map(MultiResult::op_code).collect();
    assert_eq!(ops, [OpCode::Create, OpCode::Create, OpCode::SetData, OpCode::Check, OpCode::Delete]);

    // Container and TTL creates answer as create2 (path + stat).
    let (_, body) = reply("conn15-s2c-023-multi.bin");
    let resp = MultiResponse::from_bytes(&body).expect("decodes");
    assert!(matches!(resp.results[0], MultiResult::Create2 { .. }));
    assert!(matches!(resp.results[1], MultiResult::Create2 { .. }));
    assert_eq!(resp.results[2], MultiResult::Delete);

    // A create sent with header op 15 but plain flags answers as op 1.
    let req_bytes = frame("conn19-c2s-002-multi.bin");
    let req = MultiRequest::from_bytes(&req_bytes[8..]).expect("decodes");
    assert!(matches!(req.ops[0], MultiOp::Create2(_)));
    let (_, body) = reply("conn19-s2c-002-multi.bin");
    let resp = MultiResponse::from_bytes(&body).expect("decodes");
    assert_eq!(resp.results[0], MultiResult::Create("/py/a".into()));
    assert_eq!(resp.results[1], MultiResult::Create("/py/s-0000000001".into()));
    assert!(matches!(resp.results[2], MultiResult::Create2 { .. }));

    // A failed transaction: reply header err 0, every op an error result.
    let (header, body) = reply("conn15-s2c-024-multi.bin");
    assert_eq!(header.err, 0);
    let resp = MultiResponse::from_bytes(&body).expect("decodes");
    assert_eq!(
        resp.results,
        [
            MultiResult::Error(ErrorCode::Ok.code()),
            MultiResult::Error(ErrorCode::BadVersion.code()),
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
        ]
    );

    // multiRead: independent results, a missing node is just an error entry.
    let (_, body) = reply("conn15-s2c-025-multiRead.bin");
    let resp = MultiResponse::from_bytes(&body).expect("decodes");
    assert!(matches!(&resp.results[0], MultiResult::GetData { data: Some(data), .. } if data == b"multi"));
    assert!(matches!(resp.results[1], MultiResult::GetChildren(_)));
    assert_eq!(resp.results[2], MultiResult::Error(ErrorCode::NoNode.code()));
}

#[test]
fn golden_special_xids() {
    // The Java client sends SetWatches/SetWatches2 under an ordinary xid...
    for name in ["conn16-c2s-002-setWatches.bin", "conn17-c2s-002-setWatches2.bin"] {
        let header = RequestHeader::from_bytes(&frame(name)).expect("decodes");
        assert!(header.xid > 0, "{name}");
    }
    // ...while -8 (used by other clients) is echoed back as is.
    let header = RequestHeader::from_bytes(&frame("conn19-c2s-005-setWatches.bin")).expect("ok");
    assert_eq!(header.xid, xid::SET_WATCHES);
    assert_eq!(reply("conn19-s2c-006-setWatches.bin").0.xid, xid::SET_WATCHES);
    // Auth and ping keep their reserved xids; auth replies carry zxid 0.
    let (auth, _) = reply("conn15-s2c-001-auth.bin");
    assert_eq!((auth.xid, auth.zxid, auth.err), (xid::AUTH, 0, 0));
    let (ping, body) = reply("conn17-s2c-008-ping.bin");
    assert_eq!(ping.xid, xid::PING);
    assert!(body.is_empty());
}
