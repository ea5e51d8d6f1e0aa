//! Ensembles: replication through any member, failover, sessions that move.

mod common;

use std::time::{Duration, Instant};

use common::{rt, Ensemble};
use jute::{CreateMode, OpCode, SyncRequest};
use paddock::client::Client;

#[test]
fn three_nodes_replicate_fail_over_and_keep_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 3);
    let leader = ens.leader().expect("a leader");
    let followers: Vec<usize> = (1..=3).filter(|i| *i != leader).collect();
    let modes: Vec<String> = (1..=3).map(|i| ens.nodes[i - 1].as_ref().unwrap().four_letter("srvr")).collect();
    assert_eq!(modes.iter().filter(|m| m.contains("Mode: follower")).count(), 2, "{modes:?}");

    let acked = rt().block_on(async {
        // Writes through a follower are forwarded and read back at once there.
        let f = Client::connect(&ens.addr(followers[0]), 10_000).await.unwrap();
        f.create("/app", b"v0", CreateMode::Persistent).await.unwrap();
        assert_eq!(f.get_data("/app", false).await.unwrap().0, b"v0");
        let mut acked = Vec::new();
        for i in 0..200 {
            let p = f.create("/app/n", format!("{i}").as_bytes(), CreateMode::PersistentSequential).await.unwrap();
            acked.push(p);
        }
        // The other follower sees it all after sync.
        let g = Client::connect(&ens.addr(followers[1]), 10_000).await.unwrap();
        g.call(OpCode::Sync, Some(&SyncRequest { path: "/app".into() })).await.unwrap();
        assert_eq!(g.get_children("/app", false).await.unwrap().len(), 200);
        // A watch on one server fires for a write through another.
        g.get_data("/app", true).await.unwrap();
        f.set_data("/app", b"v1", -1).await.unwrap();
        let ev = g.next_event(Duration::from_secs(5)).await.expect("watch fired across servers");
        assert_eq!(ev.path, "/app");
        acked
    });

    // Kill the leader: a survivor takes writes again within seconds.
    ens.kill9(leader);
    let killed = Instant::now();
    let survivor = followers[0];
    let failover = rt().block_on(async {
        loop {
            assert!(killed.elapsed() < Duration::from_secs(30), "no write succeeded within 30 s of the leader's death");
            if let Ok(c) = Client::connect(&ens.addr(survivor), 10_000).await {
                if c.create("/after", b"", CreateMode::Persistent).await.is_ok() {
                    return killed.elapsed();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    eprintln!("failover: leader killed -> first successful write in {failover:?}");

    rt().block_on(async {
        for id in &followers {
            let c = Client::connect(&ens.addr(*id), 10_000).await.unwrap();
            c.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
            for p in &acked {
                assert!(c.exists(p, false).await.unwrap().is_some(), "{p} lost on server {id}");
            }
            assert_eq!(c.get_data("/app", false).await.unwrap().0, b"v1");
        }
    });

    // The old leader comes back as a follower and catches up.
    ens.restart(leader);
    rt().block_on(async {
        let c = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        c.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        assert!(c.exists("/after", false).await.unwrap().is_some());
        assert_eq!(c.get_children("/app", false).await.unwrap().len(), 200);
    });
}

#[test]
fn a_session_moves_to_another_server_with_its_ephemerals() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 3);
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let other = (1..=3).find(|i| *i != leader && *i != follower).unwrap();
    let (id, passwd) = rt().block_on(async {
        let c = Client::connect(&ens.addr(follower), 6_000).await.unwrap();
        c.create("/lock", b"", CreateMode::Ephemeral).await.unwrap();
        let ids = (c.session_id, c.passwd.clone());
        std::mem::forget(c);
        ids
    });
    ens.kill9(follower);
    rt().block_on(async {
        let c = Client::resume(&ens.addr(other), 6_000, id, passwd, 0).await.unwrap();
        // Kept alive through the new server well past the session timeout.
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.ping().await.unwrap();
        }
        assert_eq!(c.exists("/lock", false).await.unwrap().unwrap().ephemeral_owner, id);
        c.close().await.unwrap();
        let d = Client::connect(&ens.addr(leader), 6_000).await.unwrap();
        assert!(d.exists("/lock", false).await.unwrap().is_none());
    });
}

#[test]
fn five_nodes_tolerate_two_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 5);
    let leader = ens.leader().expect("a leader");
    // Kill the leader and one follower: three of five remain, a quorum.
    let follower = (1..=5).find(|i| *i != leader).unwrap();
    ens.kill9(leader);
    ens.kill9(follower);
    let alive: Vec<usize> = (1..=5).filter(|i| *i != leader && *i != follower).collect();
    rt().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            assert!(Instant::now() < deadline, "no write succeeded with 3 of 5 alive");
            if let Ok(c) = Client::connect(&ens.addr(alive[0]), 10_000).await {
                if c.create("/survived", b"", CreateMode::Persistent).await.is_ok() {
                    break c;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        c.set_data("/survived", b"yes", -1).await.unwrap();
        for id in &alive[1..] {
            let d = Client::connect(&ens.addr(*id), 10_000).await.unwrap();
            d.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
            assert_eq!(d.get_data("/survived", false).await.unwrap().0, b"yes");
        }
    });
}

#[test]
fn a_wiped_follower_rejoins_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start_cfg(dir.path(), 3, "snapCount=100\n");
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    rt().block_on(async {
        let c = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        c.create("/snap", b"", CreateMode::Persistent).await.unwrap();
        // Enough writes for several snapshots.
        for i in 0..600 {
            c.create(&format!("/snap/k{i}"), format!("{i}").as_bytes(), CreateMode::Persistent).await.unwrap();
        }
    });
    ens.kill9(follower);
    ens.wipe(follower);
    ens.restart(follower);
    rt().block_on(async {
        let c = Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        c.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        assert_eq!(c.get_children("/snap", false).await.unwrap().len(), 600);
        assert_eq!(c.get_data("/snap/k599", false).await.unwrap().0, b"599");
    });
}
