//! Session expiry, reconnection and passwords.

mod common;

use std::time::{Duration, Instant};

use common::{rt, Paddock};
use jute::{event_type, CreateMode};
use paddock::client::{Client, ClientError};

fn fast_ticks(dir: &std::path::Path) -> Paddock {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, format!("tickTime=200\ndataDir={}\n", dir.join("data").display())).unwrap();
    Paddock::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

#[test]
fn silent_session_expires_and_its_ephemerals_go() {
    let dir = tempfile::tempdir().unwrap();
    let server = fast_ticks(dir.path());
    rt().block_on(async {
        let watcher = Client::connect(&server.addr, 4_000).await.unwrap();
        let doomed = Client::connect(&server.addr, 1_000).await.unwrap();
        assert_eq!(doomed.timeout_ms, 1_000);
        doomed.create("/leader", b"me", CreateMode::Ephemeral).await.unwrap();
        assert!(watcher.exists("/leader", true).await.unwrap().is_some());
        let (id, passwd) = (doomed.session_id, doomed.passwd.clone());
        drop(doomed); // the client vanishes without closing: no more pings

        let start = Instant::now();
        let ev = watcher.next_event(Duration::from_secs(15)).await.expect("NodeDeleted within 15 s");
        assert_eq!((ev.event_type, ev.path.as_str()), (event_type::NODE_DELETED, "/leader"));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(500), "expired after only {waited:?}");
        assert!(watcher.exists("/leader", false).await.unwrap().is_none());
        // The expired session cannot be resumed.
        assert!(matches!(Client::resume(&server.addr, 1_000, id, passwd, 0).await, Err(ClientError::SessionRefused)));
    });
}

#[test]
fn reconnect_keeps_session_and_wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = fast_ticks(dir.path());
    rt().block_on(async {
        let first = Client::connect(&server.addr, 4_000).await.unwrap();
        first.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
        let (id, passwd) = (first.session_id, first.passwd.clone());
        let mut wrong = passwd.clone();
        wrong[0] ^= 0xff;
        assert!(matches!(Client::resume(&server.addr, 4_000, id, wrong, 0).await, Err(ClientError::SessionRefused)));
        drop(first);
        // Keep the session alive from a new connection, well past its timeout.
        let second = Client::resume(&server.addr, 4_000, id, passwd, 0).await.unwrap();
        for _ in 0..10 {
            second.ping().await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        assert_eq!(second.exists("/mine", false).await.unwrap().unwrap().ephemeral_owner, id);
        second.close().await.unwrap();
        let other = Client::connect(&server.addr, 4_000).await.unwrap();
        assert!(other.exists("/mine", false).await.unwrap().is_none());
    });
}

#[test]
fn timeouts_are_negotiated_within_2_to_20_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let server = fast_ticks(dir.path());
    rt().block_on(async {
        assert_eq!(Client::connect(&server.addr, 10).await.unwrap().timeout_ms, 400);
        assert_eq!(Client::connect(&server.addr, 100_000).await.unwrap().timeout_ms, 4_000);
    });
}
