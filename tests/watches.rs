//! Watch events: right type, right path, once, and before any reply showing the change.

mod common;

use std::time::Duration;

use common::{new_session, read_frame, rt, write_frame, Ensemble, Paddock};
use jute::{event_type, CreateMode, OpCode, Record};
use paddock::client::Client;

#[test]
fn one_shot_watches_fire_once_with_zookeeper_event_types() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let w = Client::connect(&server.addr, 10_000).await.unwrap();
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert!(w.exists("/n", true).await.unwrap().is_none());
        c.create("/n", b"1", CreateMode::Persistent).await.unwrap();
        let ev = w.next_event(Duration::from_secs(5)).await.unwrap();
        assert_eq!((ev.event_type, ev.path.as_str()), (event_type::NODE_CREATED, "/n"));

        w.get_data("/n", true).await.unwrap();
        w.get_children("/n", true).await.unwrap();
        c.set_data("/n", b"2", -1).await.unwrap();
        c.set_data("/n", b"3", -1).await.unwrap();
        c.create("/n/kid", b"", CreateMode::Persistent).await.unwrap();
        let a = w.next_event(Duration::from_secs(5)).await.unwrap();
        let b = w.next_event(Duration::from_secs(5)).await.unwrap();
        assert_eq!((a.event_type, a.path.as_str()), (event_type::NODE_DATA_CHANGED, "/n"));
        assert_eq!((b.event_type, b.path.as_str()), (event_type::NODE_CHILDREN_CHANGED, "/n"));
        // One-shot: the second setData fired nothing more.
        assert!(w.next_event(Duration::from_millis(300)).await.is_none());
    });
}

#[test]
fn event_arrives_before_the_read_that_shows_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let w = Client::connect(&server.addr, 10_000).await.unwrap();
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/cfg", b"0", CreateMode::Persistent).await.unwrap();
        for round in 1..=50 {
            w.get_data("/cfg", true).await.unwrap();
            c.set_data("/cfg", round.to_string().as_bytes(), -1).await.unwrap();
            // The writer's reply came back, so the change is applied: the
            // watcher's next read shows it, and its event must already be there.
            let body = w.call(OpCode::GetData, Some(&jute::GetDataRequest { path: "/cfg".into(), watch: false })).await.unwrap();
            let data = jute::GetDataResponse::from_bytes(&body).unwrap().data;
            assert_eq!(data, Some(round.to_string().into_bytes()));
            let ev = w.next_event(Duration::from_millis(1)).await.expect("event queued before the read reply");
            assert_eq!(ev.event_type, event_type::NODE_DATA_CHANGED);
        }
    });
}

#[test]
fn persistent_recursive_watch_sees_every_descendant_change() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let w = Client::connect(&server.addr, 10_000).await.unwrap();
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/r", b"", CreateMode::Persistent).await.unwrap();
        w.call(OpCode::AddWatch, Some(&jute::AddWatchRequest { path: "/r".into(), mode: 1 })).await.unwrap();
        c.create("/r/a", b"", CreateMode::Persistent).await.unwrap();
        c.create("/r/a/b", b"", CreateMode::Persistent).await.unwrap();
        c.set_data("/r/a/b", b"x", -1).await.unwrap();
        c.set_data("/r/a/b", b"y", -1).await.unwrap();
        c.delete("/r/a/b", -1).await.unwrap();
        let mut got = Vec::new();
        while let Some(ev) = w.next_event(Duration::from_millis(500)).await {
            got.push((ev.event_type, ev.path));
        }
        assert_eq!(
            got,
            vec![
                (event_type::NODE_CREATED, "/r/a".to_string()),
                (event_type::NODE_CREATED, "/r/a/b".to_string()),
                (event_type::NODE_DATA_CHANGED, "/r/a/b".to_string()),
                (event_type::NODE_DATA_CHANGED, "/r/a/b".to_string()),
                (event_type::NODE_DELETED, "/r/a/b".to_string()),
            ]
        );
    });
}

#[test]
fn an_event_never_overtakes_the_reply_that_set_its_watch() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let addr = server.addr.clone();
    rt().block_on(async {
        let c = Client::connect(&addr, 10_000).await.unwrap();
        c.create("/q", b"", CreateMode::Persistent).await.unwrap();
    });
    // Another session keeps changing /q's children, so changes land while
    // the watcher's reads run.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, addr) = (stop.clone(), addr.clone());
        std::thread::spawn(move || {
            rt().block_on(async {
                let c = Client::connect(&addr, 10_000).await.unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    c.create(&format!("/q/c{i}"), b"", CreateMode::Persistent).await.unwrap();
                    i += 1;
                }
            })
        })
    };
    // The watcher, on a raw connection to see the exact order of packets:
    // getChildren(watch) with no other watch armed, so any event that comes
    // before its reply is that watch's, and a client (which arms its watcher
    // on the reply) would drop it and wait forever.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let connect = new_session(30_000);
    write_frame(&mut s, &[&|b| connect.write(b)]);
    read_frame(&mut s);
    let get = jute::GetChildrenRequest { path: "/q".into(), watch: true };
    for xid in 1..=3000 {
        let header = jute::RequestHeader { xid, op: OpCode::GetChildren as i32 };
        write_frame(&mut s, &[&|b| header.write(b), &|b| get.write(b)]);
        loop {
            let reply = jute::ReplyHeader::from_bytes(&read_frame(&mut s)[..16]).unwrap();
            assert_ne!(reply.xid, jute::xid::NOTIFICATION, "read {xid}: its watch's event came before its reply");
            if reply.xid == xid {
                break;
            }
        }
        // The writer soon changes /q: the event of this read's watch.
        while jute::ReplyHeader::from_bytes(&read_frame(&mut s)[..16]).unwrap().xid != jute::xid::NOTIFICATION {}
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

/// Sends rounds of setData, getData with a watch, setData on one raw
/// connection to `addr` without waiting, and checks each round's packets:
/// the read sees the first write and not the second, and the event of the
/// second write (which fires the read's watch) comes after the read's reply
/// and before the second write's.
fn a_read_between_pipelined_writes_sees_the_first_and_hears_the_second(addr: &str) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let connect = new_session(30_000);
    write_frame(&mut s, &[&|b| connect.write(b)]);
    read_frame(&mut s);
    let create = jute::CreateRequest { path: "/w".into(), data: None, acl: jute::Acl::open_unsafe(), flags: 0 };
    write_frame(&mut s, &[&|b| jute::RequestHeader { xid: 1, op: OpCode::Create as i32 }.write(b), &|b| create.write(b)]);
    read_frame(&mut s);
    let set = |data: String| jute::SetDataRequest { path: "/w".into(), data: Some(data.into_bytes()), version: -1 };
    let get = jute::GetDataRequest { path: "/w".into(), watch: true };
    let rounds: i32 = 300;
    // All rounds at once, so the reads are still queued when the writes after them are proposed.
    for round in 0..rounds {
        let xid = 10 + 3 * round;
        let (first, second) = (set(format!("{round}a")), set(format!("{round}b")));
        write_frame(&mut s, &[&|b| jute::RequestHeader { xid, op: OpCode::SetData as i32 }.write(b), &|b| first.write(b)]);
        write_frame(&mut s, &[&|b| jute::RequestHeader { xid: xid + 1, op: OpCode::GetData as i32 }.write(b), &|b| get.write(b)]);
        write_frame(&mut s, &[&|b| jute::RequestHeader { xid: xid + 2, op: OpCode::SetData as i32 }.write(b), &|b| second.write(b)]);
    }
    for round in 0..rounds {
        let xid = 10 + 3 * round;
        let mut packets = Vec::new();
        for _ in 0..4 {
            let frame = read_frame(&mut s);
            let header = jute::ReplyHeader::from_bytes(&frame[..16]).unwrap();
            assert_eq!(header.err, 0, "round {round}: {header:?}");
            if header.xid == xid + 1 {
                let r = jute::GetDataResponse::from_bytes(&frame[16..]).unwrap();
                assert_eq!(r.data, Some(format!("{round}a").into_bytes()), "round {round}: the read saw too little or too much");
            }
            packets.push(header.xid);
        }
        assert_eq!(packets, [xid, xid + 1, jute::xid::NOTIFICATION, xid + 2], "round {round}: packets out of order");
    }
}

#[test]
fn pipelined_reads_sit_between_their_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    a_read_between_pipelined_writes_sees_the_first_and_hears_the_second(&server.addr);
}

#[test]
fn pipelined_reads_sit_between_their_writes_on_a_follower() {
    let dir = tempfile::tempdir().unwrap();
    let ensemble = Ensemble::start(dir.path(), 3);
    a_read_between_pipelined_writes_sees_the_first_and_hears_the_second(&ensemble.follower_addr());
}

#[test]
fn events_go_only_to_watchers_who_may_read_the_node() {
    use jute::{perms, Acl, AuthPacket, CreateRequest, Id};
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let owner = Client::connect(&server.addr, 10_000).await.unwrap();
        let auth = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"alice:pw".to_vec()) };
        owner.call(OpCode::Auth, Some(&auth)).await.unwrap();
        let stranger = Client::connect(&server.addr, 10_000).await.unwrap();
        let friend = Client::connect(&server.addr, 10_000).await.unwrap();
        friend.call(OpCode::Auth, Some(&auth)).await.unwrap();
        // Both watch everything below / and the node to come.
        for w in [&stranger, &friend] {
            let add = jute::AddWatchRequest { path: "/".into(), mode: 1 };
            w.call(OpCode::AddWatch, Some(&add)).await.unwrap();
            assert!(w.exists("/secret", true).await.unwrap().is_none());
        }
        // Only alice may read /secret (CVE-2024-23944: ZooKeeper 3.8.4 and
        // later tell a watcher nothing about a node it cannot read).
        let private = vec![Acl::new(perms::ALL, Id::new("auth", ""))];
        let req = CreateRequest { path: "/secret".into(), data: Some(b"s".to_vec()), acl: private, flags: 0 };
        owner.call(OpCode::Create, Some(&req)).await.unwrap();
        owner.set_data("/secret", b"t", -1).await.unwrap();
        owner.create("/open", b"", CreateMode::Persistent).await.unwrap();
        let mut heard = Vec::new();
        while let Some(e) = friend.next_event(Duration::from_millis(300)).await {
            heard.push((e.event_type, e.path));
        }
        assert_eq!(
            heard,
            [
                (event_type::NODE_CREATED, "/secret".to_string()),
                (event_type::NODE_DATA_CHANGED, "/secret".to_string()),
                (event_type::NODE_CREATED, "/open".to_string()),
            ],
            "one event per watch: the one-shot exists watch and the recursive one coincide"
        );
        let mut heard = Vec::new();
        while let Some(e) = stranger.next_event(Duration::from_millis(300)).await {
            heard.push((e.event_type, e.path));
        }
        assert_eq!(heard, [(event_type::NODE_CREATED, "/open".to_string())]);
    });
}

#[test]
fn a_multi_read_sets_no_watch_and_a_multi_of_the_wrong_kind_is_refused() {
    use jute::{DeleteRequest, ErrorCode, GetChildrenRequest, GetDataRequest, MultiOp, MultiRequest};
    use paddock::client::ClientError;
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let w = Client::connect(&server.addr, 10_000).await.unwrap();
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/m", b"1", CreateMode::Persistent).await.unwrap();
        let get = || MultiOp::GetData(GetDataRequest { path: "/m".into(), watch: true });
        let kids = MultiOp::GetChildren(GetChildrenRequest { path: "/m".into(), watch: true });
        w.call(OpCode::MultiRead, Some(&MultiRequest { ops: vec![get(), kids] })).await.unwrap();
        // ZooKeeper 3.8 drops a multiRead op's watch flag: nothing fires.
        c.set_data("/m", b"2", -1).await.unwrap();
        c.create("/m/k", b"", CreateMode::Persistent).await.unwrap();
        assert!(w.next_event(Duration::from_millis(300)).await.is_none(), "a multiRead left a watch");

        // A read in a multi, or a write in a multiRead: MarshallingError,
        // nothing applied, and the connection goes on.
        let delete = || MultiOp::Delete(DeleteRequest { path: "/m/k".into(), version: -1 });
        for (op, ops) in [(OpCode::Multi, vec![delete(), get()]), (OpCode::MultiRead, vec![get(), delete()])] {
            match w.call(op, Some(&MultiRequest { ops })).await {
                Err(ClientError::Server(code)) => assert_eq!(code, ErrorCode::MarshallingError, "{op:?}"),
                other => panic!("{op:?}: {other:?}"),
            }
        }
        assert!(w.exists("/m/k", false).await.unwrap().is_some(), "the refused multi deleted /m/k");
    });
}

/// A client that stops reading while its persistent recursive watch keeps
/// firing is cut off once it has left `watch::MAX_UNSENT` bytes of events
/// unread, instead of the server holding every event until it reads again.
/// It gets what was sent before, then the end of the connection, never a
/// reply without the events before it; its session lives on, and resumed
/// on a new connection it hears of changes again.
#[test]
fn a_client_that_stops_reading_its_events_is_cut_off() {
    use paddock::watch::MAX_UNSENT;
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    let connect = new_session(40_000);
    write_frame(&mut s, &[&|b| connect.write(b)]);
    let session = jute::ConnectResponse::from_bytes(&read_frame(&mut s)).unwrap();
    let header = jute::RequestHeader { xid: 1, op: OpCode::AddWatch as i32 };
    let add = jute::AddWatchRequest { path: "/".into(), mode: 1 };
    write_frame(&mut s, &[&|b| header.write(b), &|b| add.write(b)]);
    let reply = jute::ReplyHeader::from_bytes(&read_frame(&mut s)[..16]).unwrap();
    assert_eq!((reply.xid, reply.err), (1, 0));

    // Events of 4 KB paths, twice the limit's worth, while the watcher reads nothing.
    let paths: Vec<String> = (0..100).map(|i| format!("/e{i}-{}", "x".repeat(4000))).collect();
    let total = 2 * MAX_UNSENT / 4000;
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for p in &paths {
            c.create(p, b"", CreateMode::Persistent).await.unwrap();
        }
        for _ in 0..total / paths.len() {
            let mut replies = Vec::new();
            for p in &paths {
                let set = jute::SetDataRequest { path: p.clone(), data: Some(b"v".to_vec()), version: -1 };
                replies.push(c.send(OpCode::SetData, Some(&set)).await.unwrap());
            }
            for r in replies {
                r.await.unwrap().unwrap();
            }
        }
    });

    // Now the watcher reads: some events, then the end.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut heard = 0;
    loop {
        let mut len = [0u8; 4];
        match s.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => break,
            Err(e) => panic!("the connection stayed open after {heard} events: {e}"),
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).expect("a whole frame");
        let reply = jute::ReplyHeader::from_bytes(&body[..16]).unwrap();
        assert_eq!(reply.xid, jute::xid::NOTIFICATION, "only events were due");
        heard += 1;
    }
    assert!(heard < total, "heard all {total} events");
    assert!(server.four_letter("ruok").contains("imok"));

    rt().block_on(async {
        let w = Client::resume(&server.addr, 40_000, session.session_id, session.passwd.clone(), 0).await.unwrap();
        w.call(OpCode::AddWatch, Some(&jute::AddWatchRequest { path: "/".into(), mode: 1 })).await.unwrap();
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.set_data(&paths[0], b"after", -1).await.unwrap();
        let ev = w.next_event(Duration::from_secs(10)).await.expect("an event on the resumed session");
        assert_eq!((ev.event_type, ev.path), (event_type::NODE_DATA_CHANGED, paths[0].clone()));
    });
}
