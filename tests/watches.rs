//! Watch events: right type, right path, once, and before any reply showing the change.

mod common;

use std::time::Duration;

use common::{rt, Paddock};
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
