//! Malformed and oversized packets close only their own connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{rt, Paddock};
use jute::{CreateMode, OpCode};
use paddock::client::Client;

fn raw(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    // The server must hang up: read returns 0 (or a reset), never hangs.
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn garbage_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Paddock::start(dir.path());
    rt().block_on(async {
        let good = Client::connect(&server.addr, 10_000).await.unwrap();
        good.create("/safe", b"x", CreateMode::Persistent).await.unwrap();

        // Oversized length, negative length, truncated connect, junk connect body.
        assert!(raw(&server.addr, &0x7fff_ffffu32.to_be_bytes()));
        assert!(raw(&server.addr, &(-5i32).to_be_bytes()));
        assert!(raw(&server.addr, &[0, 0, 0, 40, 1, 2, 3]));
        assert!(raw(&server.addr, &[0, 0, 0, 3, 1, 2, 3]));

        // Inside a session: a request too large for jute.maxbuffer, then a malformed body.
        let victim = Client::connect(&server.addr, 10_000).await.unwrap();
        let huge = jute::SetDataRequest { path: "/safe".into(), data: Some(vec![7; 2 << 20]), version: -1 };
        assert!(victim.call(OpCode::SetData, Some(&huge)).await.is_err());
        let victim2 = Client::connect(&server.addr, 10_000).await.unwrap();
        let mut bad = Vec::new();
        bad.extend_from_slice(&5i32.to_be_bytes()); // xid
        bad.extend_from_slice(&(OpCode::Create.code()).to_be_bytes());
        bad.extend_from_slice(&1000i32.to_be_bytes()); // path length past the end
        victim2.send_raw(&bad).await.unwrap();
        assert!(victim2.ping().await.is_err());

        // The oversized write changed nothing; the other session never noticed.
        assert_eq!(good.get_data("/safe", false).await.unwrap().0, b"x");
        good.set_data("/safe", b"y", -1).await.unwrap();
        good.close().await.unwrap();
    });
    assert!(server.alive());
}

#[test]
fn session_survives_an_oversized_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/e", b"", CreateMode::Ephemeral).await.unwrap();
        let huge = jute::SetDataRequest { path: "/e".into(), data: Some(vec![1; 2 << 20]), version: -1 };
        assert!(c.call(OpCode::SetData, Some(&huge)).await.is_err());
        // As on ZooKeeper: the connection is gone but the session is not.
        let again = Client::resume(&server.addr, 10_000, c.session_id, c.passwd.clone(), 0).await.unwrap();
        assert_eq!(again.exists("/e", false).await.unwrap().unwrap().ephemeral_owner, c.session_id);
    });
}
