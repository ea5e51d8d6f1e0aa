//! ACLs and quotas are decided where ZooKeeper's leader decides them: in log
//! order, against the state each write meets, one op of a multi at a time.

mod common;

use common::{new_session, read_frame, rt, write_frame, Ensemble, Paddock};
use jute::{
    perms, Acl, AuthPacket, CreateMode, CreateRequest, ErrorCode, GetAclRequest, GetAclResponse, Id, MultiOp, MultiRequest, MultiResponse,
    MultiResult, OpCode, Record, SetAclRequest, SetDataRequest, WhoAmIResponse,
};
use paddock::client::{Client, ClientError};

fn world(p: i32) -> Vec<Acl> {
    vec![Acl::new(p, Id::new("world", "anyone"))]
}

fn create(path: &str, acl: Vec<Acl>) -> CreateRequest {
    CreateRequest { path: path.into(), data: Some(b"d".to_vec()), acl, flags: 0 }
}

/// Sends `setACL` (taking away WRITE) and a `setData` back to back, without
/// waiting for the first reply: the setData must meet the new ACL.
async fn acl_then_write(c: &Client, path: &str) -> (i32, i32) {
    let set_acl = SetAclRequest { path: path.into(), acl: world(perms::READ), version: -1 };
    let set_data = SetDataRequest { path: path.into(), data: Some(b"late".to_vec()), version: -1 };
    let first = c.send(OpCode::SetAcl, Some(&set_acl)).await.unwrap();
    let second = c.send(OpCode::SetData, Some(&set_data)).await.unwrap();
    let (h1, _) = first.await.unwrap().unwrap();
    let (h2, _) = second.await.unwrap().unwrap();
    (h1.err, h2.err)
}

#[test]
fn a_write_meets_the_acl_of_the_writes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for round in 0..20 {
            let path = format!("/locked{round}");
            c.create(&path, b"d", CreateMode::Persistent).await.unwrap();
            // Checked when proposed (against a tree the setACL had not yet
            // reached), the setData went through; ZooKeeper refuses it.
            assert_eq!(acl_then_write(&c, &path).await, (0, ErrorCode::NoAuth as i32), "round {round}");
            assert_eq!(c.get_data(&path, false).await.unwrap().0, b"d");
        }
    });
}

#[test]
fn through_a_follower_too() {
    let dir = tempfile::tempdir().unwrap();
    let ensemble = Ensemble::start(dir.path(), 3);
    let follower = ensemble.follower_addr();
    rt().block_on(async {
        let c = common::connect_retrying(&follower, 10_000).await;
        c.create("/locked", b"d", CreateMode::Persistent).await.unwrap();
        assert_eq!(acl_then_write(&c, "/locked").await, (0, ErrorCode::NoAuth as i32));
        // Every member holds the same answer.
        for addr in (1..=3).map(|id| ensemble.addr(id)) {
            let r = common::connect_retrying(&addr, 10_000).await;
            r.sync("/locked").await.unwrap();
            assert_eq!(r.get_data("/locked", false).await.unwrap().0, b"d", "{addr}");
        }
    });
}

#[test]
fn a_multi_reports_refused_ops_in_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        let multi = |ops: Vec<MultiOp>| MultiRequest { ops };
        // An invalid ACL in the second op: as ZooKeeper, the reply is a
        // multi result (ok, the error, then "not run"), not an error header.
        let req = multi(vec![
            MultiOp::Create(create("/m", world(perms::ALL))),
            MultiOp::Create(create("/m/a", vec![])),
            MultiOp::Create(create("/m/b", world(perms::ALL))),
        ]);
        let body = c.call(OpCode::Multi, Some(&req)).await.unwrap();
        let results: Vec<i32> = MultiResponse::from_bytes(&body).unwrap().results.iter().map(MultiResult::err).collect();
        assert_eq!(results, [0, ErrorCode::InvalidAcl as i32, ErrorCode::RuntimeInconsistency as i32]);
        assert!(c.exists("/m", false).await.unwrap().is_none(), "a failed multi changes nothing");

        // Each op is checked against the ones before it: a parent created
        // read-only in the same multi refuses the child.
        let req = multi(vec![MultiOp::Create(create("/ro", world(perms::READ))), MultiOp::Create(create("/ro/kid", world(perms::ALL)))]);
        let body = c.call(OpCode::Multi, Some(&req)).await.unwrap();
        let results: Vec<i32> = MultiResponse::from_bytes(&body).unwrap().results.iter().map(MultiResult::err).collect();
        assert_eq!(results, [0, ErrorCode::NoAuth as i32]);

        // `auth` in an ACL takes the session's identities; without any it is invalid.
        let auth = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"alice:pw".to_vec()) };
        let anonymous = Client::connect(&server.addr, 10_000).await.unwrap();
        let auth_acl = vec![Acl::new(perms::ALL, Id::new("auth", ""))];
        match anonymous.call(OpCode::Create, Some(&create("/mine", auth_acl.clone()))).await {
            Err(ClientError::Server(ErrorCode::InvalidAcl)) => {}
            other => panic!("expected InvalidAcl, got {other:?}"),
        }
        c.call(OpCode::Auth, Some(&auth)).await.unwrap();
        c.call(OpCode::Create, Some(&create("/mine", auth_acl))).await.unwrap();
        match anonymous.set_data("/mine", b"x", -1).await {
            Err(ClientError::Server(ErrorCode::NoAuth)) => {}
            other => panic!("expected NoAuth, got {other:?}"),
        }
        c.set_data("/mine", b"x", -1).await.unwrap();
    });
}

/// Sends a ConnectRequest and, right behind it (before reading its answer),
/// an AuthPacket under `xid`; returns the auth reply's header (after the
/// ConnectResponse).
fn auth_on_a_raw_connection(addr: &str, xid: i32, auth: &AuthPacket) -> jute::ReplyHeader {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let connect = new_session(10_000);
    write_frame(&mut s, &[&|b| connect.write(b)]);
    write_frame(&mut s, &[&|b| jute::RequestHeader { xid, op: OpCode::Auth as i32 }.write(b), &|b| auth.write(b)]);
    read_frame(&mut s);
    jute::ReplyHeader::from_bytes(&read_frame(&mut s)[..16]).unwrap()
}

#[test]
fn an_auth_reply_carries_the_request_xid_as_on_zookeeper() {
    // The Java client sends every AuthPacket as xid -4; zookeeper-client (Rust)
    // counts it like any request and waits for that xid in the reply.
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let good = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"user:secret".to_vec()) };
    for xid in [1, 7, jute::xid::AUTH] {
        let reply = auth_on_a_raw_connection(&server.addr, xid, &good);
        assert_eq!((reply.xid, reply.zxid, reply.err), (xid, 0, 0), "auth as xid {xid}");
    }
    let bad = AuthPacket { auth_type: 0, scheme: "nosuchscheme".into(), auth: Some(b"x".to_vec()) };
    let reply = auth_on_a_raw_connection(&server.addr, 3, &bad);
    assert_eq!((reply.xid, reply.err), (3, ErrorCode::AuthFailed as i32), "a refused auth too");
}

#[test]
fn digest_credentials_without_a_colon_and_ip_auth_are_accepted_as_on_zookeeper() {
    // go-zookeeper's own tests authenticate as `digest` with "blah", and
    // zkCli's `addauth ip ...` is accepted: ZooKeeper's providers take both.
    // Only null credentials fail (ZooKeeper's provider throws on them).
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let auth = |scheme: &str, creds: Option<&[u8]>| AuthPacket { auth_type: 0, scheme: scheme.into(), auth: creds.map(<[u8]>::to_vec) };
    for (packet, err) in [
        (auth("digest", Some(b"blah")), 0),
        (auth("digest", Some(b"")), 0),
        (auth("ip", Some(b"10.9.8.7")), 0),
        (auth("digest", None), ErrorCode::AuthFailed as i32),
        (auth("world", Some(b"anyone")), ErrorCode::AuthFailed as i32),
    ] {
        assert_eq!(auth_on_a_raw_connection(&server.addr, jute::xid::AUTH, &packet).err, err, "{packet:?}");
    }
    rt().block_on(async {
        // The identity is ZooKeeper's generateDigest of "blah": the whole text is the user.
        let only_blah = vec![Acl::new(perms::ALL, Id::new("digest", "blah:W/H9kn37hnlJai5s8Ay+UMHIcUU="))];
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.call(OpCode::Create, Some(&create("/blah", only_blah))).await.unwrap();
        match c.get_data("/blah", false).await {
            Err(ClientError::Server(ErrorCode::NoAuth)) => {}
            other => panic!("expected NoAuth, got {other:?}"),
        }
        c.call(OpCode::Auth, Some(&auth("digest", Some(b"blah")))).await.unwrap();
        assert_eq!(c.get_data("/blah", false).await.unwrap().0, b"d");
        // An ip auth leaves the connection open and its identities as they were.
        c.call(OpCode::Auth, Some(&auth("ip", Some(b"10.9.8.7")))).await.unwrap();
        assert_eq!(c.get_data("/blah", false).await.unwrap().0, b"d");
    });
}

#[test]
fn identities_are_listed_and_expanded_in_zookeepers_order() {
    // ZooKeeper keeps a connection's identities in a hash set: a session
    // that logs in as dave and then as bob lists bob first, in whoAmI and in
    // the ACL an `auth` entry expands to (checked against ZooKeeper 3.8).
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for creds in [&b"dave"[..], b"bob:bob-pw"] {
            let packet = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(creds.to_vec()) };
            c.call(OpCode::Auth, Some(&packet)).await.unwrap();
        }
        let who = WhoAmIResponse::from_bytes(&c.call::<GetAclRequest>(OpCode::WhoAmI, None).await.unwrap()).unwrap();
        let who: Vec<String> = who.client_info.into_iter().map(|i| format!("{}:{}", i.auth_scheme, i.user)).collect();
        assert_eq!(who, ["digest:bob", "ip:127.0.0.1", "digest:dave"]);
        let auth_acl = vec![Acl::new(perms::ALL, Id::new("auth", ""))];
        c.call(OpCode::Create, Some(&create("/ours", auth_acl))).await.unwrap();
        let body = c.call(OpCode::GetAcl, Some(&GetAclRequest { path: "/ours".into() })).await.unwrap();
        let ids: Vec<String> = GetAclResponse::from_bytes(&body).unwrap().acl.into_iter().map(|a| a.id.id).collect();
        assert_eq!(ids, ["bob:EXcpcQQk6JBIDFnxSqkpDLIhkxw=", "dave:v83z5sps70VUO/u1dQnJKuyaOfs="]);
    });
}
