//! Ensembles: replication through any member, failover, sessions that move.

mod common;

use std::time::{Duration, Instant};

use common::{connect_retrying, rt, Ensemble};
use jute::{CreateMode, ErrorCode, OpCode, SyncRequest};
use paddock::client::{Client, ClientError};

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
fn members_listed_in_a_dynamic_config_file_form_one_ensemble() {
    // ZooKeeper 3.5+ moves a reconfigurable ensemble's server.N lines into
    // the file zoo.cfg names as dynamicConfigFile: read as standalone
    // servers, the three would each take writes of their own.
    let dir = tempfile::tempdir().unwrap();
    let ens = Ensemble::start_dynamic(dir.path(), 3);
    let leader = ens.leader().expect("a leader");
    let modes: Vec<String> = (1..=3).map(|i| ens.nodes[i - 1].as_ref().unwrap().four_letter("srvr")).collect();
    assert_eq!(modes.iter().filter(|m| m.contains("Mode: follower")).count(), 2, "{modes:?}");
    let other = if leader == 1 { 2 } else { 1 };
    rt().block_on(async {
        let a = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        a.create("/shared", b"one", CreateMode::Persistent).await.unwrap();
        let b = Client::connect(&ens.addr(other), 10_000).await.unwrap();
        b.call(OpCode::Sync, Some(&SyncRequest { path: "/shared".into() })).await.unwrap();
        assert_eq!(b.get_data("/shared", false).await.unwrap().0, b"one");
        // As on ZooKeeper, /zookeeper/config shows the members from the
        // start (zkCli's `config`, Curator's EnsembleTracker read it).
        let (config, stat) = b.get_data("/zookeeper/config", false).await.unwrap();
        let config = String::from_utf8(config).unwrap();
        let lines: Vec<&str> = config.lines().collect();
        assert_eq!(lines.len(), 4, "{config}");
        for (i, line) in lines[..3].iter().enumerate() {
            let peer = ens.peer_addr(i + 1);
            assert!(line.starts_with(&format!("server.{}={peer}:", i + 1)) && line.ends_with(":participant"), "{config}");
        }
        assert_eq!(lines[3], "version=0");
        assert_eq!(stat.data_length as usize, config.len());
        // exists reports the same length.
        let exists = b.exists("/zookeeper/config", false).await.unwrap().expect("the node exists");
        assert_eq!(exists.data_length as usize, config.len());
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
        let c = Client::resume(&ens.addr(other), 6_000, id, passwd.clone(), 0).await.unwrap();
        // Kept alive through the new server well past the session timeout.
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.ping().await.unwrap();
        }
        assert_eq!(c.exists("/lock", false).await.unwrap().unwrap().ephemeral_owner, id);
        if let Err(e) = c.close().await {
            // On a loaded machine an election may cut the connection before
            // the reply: whether the close was applied is then unknown.
            // Resume the session and close it again; a refused resume means
            // it is already closed.
            eprintln!("close: {e}; resuming the session to close it again");
            let again = connect_retrying_session(&ens.addr(other), id, &passwd).await;
            if let Some(c) = again {
                c.close().await.unwrap();
            }
        }
        let d = connect_retrying(&ens.addr(other), 6_000).await;
        d.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        assert!(d.exists("/lock", false).await.unwrap().is_none());
    });
}

#[test]
fn a_write_through_a_connection_the_session_left_is_refused() {
    // A client that gave up on a server and resumed its session at another
    // may still have a write on its way through the old connection (a
    // retransmission after a partition heals). Applied, it would land after
    // writes the client sent later. As ZooKeeper (SessionMoved), the leader
    // refuses it and that connection closes. Moves: follower to follower,
    // follower to leader, leader to follower.
    let dir = tempfile::tempdir().unwrap();
    let ens = Ensemble::start(dir.path(), 3);
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let other = (1..=3).find(|i| *i != leader && *i != follower).unwrap();
    rt().block_on(async {
        let mut old = Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        let (id, passwd) = (old.session_id, old.passwd.clone());
        old.create("/before", b"", CreateMode::Persistent).await.unwrap();
        for (n, to) in [other, leader, follower].into_iter().enumerate() {
            let new = Client::resume(&ens.addr(to), 10_000, id, passwd.clone(), 0).await.unwrap();
            let stale = old.create(&format!("/stale-{n}"), b"", CreateMode::Persistent).await;
            assert!(stale.is_err(), "move {n}: a write through the connection the session left: {stale:?}");
            new.create(&format!("/moved-{n}"), b"", CreateMode::Persistent).await.unwrap();
            new.sync("/").await.unwrap();
            assert!(new.exists(&format!("/stale-{n}"), false).await.unwrap().is_none(), "move {n}");
            old = new;
        }
        old.close().await.unwrap();
    });
}

/// Resumes session `id` at `addr`, retrying while the server is between
/// leaders; `None` if the session no longer exists.
async fn connect_retrying_session(addr: &str, id: i64, passwd: &[u8]) -> Option<Client> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Client::resume(addr, 6_000, id, passwd.to_vec(), 0).await {
            Ok(c) => return Some(c),
            Err(paddock::client::ClientError::SessionRefused) => return None,
            Err(e) if Instant::now() < deadline => {
                eprintln!("resume at {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("could not resume session {id:#x} at {addr} within 20 s: {e}"),
        }
    }
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

/// Every znode with its data and mzxid, in a fixed order, as `c` sees it.
async fn dump(c: &Client) -> Vec<(String, Vec<u8>, i64)> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let (data, stat) = c.get_data(&path, false).await.unwrap();
        let mut children = c.get_children(&path, false).await.unwrap();
        children.sort();
        for child in children.iter().rev() {
            stack.push(if path == "/" { format!("/{child}") } else { format!("{path}/{child}") });
        }
        out.push((path, data, stat.mzxid));
    }
    out
}

/// Polls `f` every 100 ms until it is true or `secs` pass.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// With snapCount=100 the log is compacted every 100 entries (10 kept), so
/// a wiped member can only catch up by snapshot; and a leader restarted on a
/// purged log comes back with everything.
#[test]
fn a_wiped_follower_catches_up_by_snapshot_after_the_log_is_purged() {
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
    let lead = |ens: &Ensemble| ens.nodes[leader - 1].as_ref().unwrap().mntr("zk_last_purged_index").unwrap_or(0);
    assert!(eventually(10, || lead(&ens) > 300), "the leader's log was never purged");
    let entries = ens.nodes[leader - 1].as_ref().unwrap().mntr("zk_log_entries").unwrap();
    assert!(entries < 300, "the leader keeps {entries} log entries");

    let followers = |ens: &Ensemble| {
        let l = ens.nodes[leader - 1].as_ref().unwrap();
        (l.mntr("zk_followers").unwrap_or(-1), l.mntr("zk_synced_followers").unwrap_or(-1))
    };
    assert!(eventually(10, || followers(&ens) == (2, 2)), "leader mntr: {:?}", followers(&ens));
    ens.kill9(follower);
    assert!(eventually(10, || followers(&ens) == (1, 1)), "leader mntr after a kill: {:?}", followers(&ens));
    ens.wipe(follower);
    ens.restart(follower);
    assert!(eventually(10, || followers(&ens) == (2, 2)), "leader mntr after rejoining: {:?}", followers(&ens));
    let expected = rt().block_on(async {
        let l = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        let f = Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        f.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        let expected = dump(&l).await;
        assert_eq!(dump(&f).await, expected, "the rejoined follower's tree differs from the leader's");
        expected
    });
    let snap = ens.nodes[follower - 1].as_ref().unwrap().mntr("zk_last_snapshot_index").unwrap();
    assert!(snap > 300, "the follower's state did not come from a snapshot (snapshot index {snap})");
    assert!(ens.nodes[leader - 1].as_mut().unwrap().alive(), "the leader died");

    // Writes keep flowing through the rejoined follower.
    rt().block_on(async {
        let f = Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        for i in 0..50 {
            f.set_data(&format!("/snap/k{i}"), b"again", -1).await.unwrap();
        }
    });

    // The leader restarts on its purged log and has it all.
    ens.kill9(leader);
    ens.restart(leader);
    rt().block_on(async {
        let l = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        let f = Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        l.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        f.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        let after = dump(&l).await;
        assert_eq!(after.len(), expected.len());
        assert_eq!(l.get_data("/snap/k49", false).await.unwrap().0, b"again");
        assert_eq!(dump(&f).await, after);
    });
}

/// Under a steady write load every member's log stays near snapCount
/// entries instead of growing with the number of writes.
#[test]
fn the_log_stays_bounded_under_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ens = Ensemble::start_cfg(dir.path(), 3, "snapCount=100\n");
    let leader = ens.leader().expect("a leader");
    let mut most = 0;
    rt().block_on(async {
        let mut c = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        c.create("/b", b"", CreateMode::Persistent).await.unwrap();
        // 170 writes a round: samples fall at every point of the snapshot cycle.
        for round in 0..12 {
            for _ in 0..170 {
                // On a loaded machine an election may move the leadership,
                // and the old leader's clients are disconnected: reconnect
                // as a ZooKeeper client would and write again (the write is
                // an unconditional set, so repeating it is harmless).
                let mut tries = 0;
                while let Err(e) = c.set_data("/b", format!("{round}").as_bytes(), -1).await {
                    tries += 1;
                    assert!(tries < 5, "set /b kept failing: {e}");
                    eprintln!("set /b: {e}; reconnecting");
                    let leader = ens.leader().expect("a leader");
                    c = connect_retrying(&ens.addr(leader), 10_000).await;
                }
            }
            for n in ens.nodes.iter().flatten() {
                most = most.max(n.mntr("zk_log_entries").expect("mntr zk_log_entries"));
            }
        }
    });
    eprintln!("most log entries held by a member: {most}");
    // snapCount (100) + kept (10) + purge batch (64), plus snapshots that
    // are still being built when sampled.
    assert!(most < 300, "a member held {most} log entries after 2040 writes");
    assert!(most > 0);
}

/// A rolling restart moves no leadership: a member that comes back hears
/// the leader before its own election timer runs out, as ZooKeeper's
/// followers rejoin, so the leader's clients never wait out an election.
#[test]
fn restarted_followers_rejoin_without_an_election() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 3);
    let leader = ens.leader().expect("a leader");
    let term = |ens: &Ensemble| ens.nodes[leader - 1].as_ref().unwrap().mntr("zk_raft_term").expect("zk_raft_term in mntr");
    let before = term(&ens);
    let rt = rt();
    let c = rt.block_on(Client::connect(&ens.addr(leader), 10_000)).unwrap();
    for round in 0..3 {
        for follower in (1..=3).filter(|i| *i != leader) {
            rt.block_on(c.create(&format!("/r{round}-{follower}"), b"", CreateMode::Persistent)).unwrap();
            if round % 2 == 0 {
                ens.kill9(follower);
            } else if let Some(n) = ens.nodes[follower - 1].take() {
                n.stop();
            }
            ens.restart(follower);
            // Longer than any election timeout (80-160 ms at tickTime=200)
            // plus the leader lease a restarted member first waits out.
            std::thread::sleep(Duration::from_millis(800));
            assert_eq!(term(&ens), before, "round {round}: restarting server {follower} called an election");
            assert_eq!(ens.leader(), Some(leader));
        }
    }
    rt.block_on(async {
        for id in 1..=3 {
            let d = Client::connect(&ens.addr(id), 10_000).await.unwrap();
            d.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
            assert_eq!(d.get_children("/", false).await.unwrap().len(), 1 + 6, "server {id}: /zookeeper and six nodes");
        }
    });
}

/// When the leader's process dies, its peer port refuses connections: as
/// soon as the others' lease on the old leader is out, the survivor with
/// the longest log, and the lowest id among equals, calls an election and
/// wins it, rather than all waiting out random election timeouts on top
/// (src/raft/leader_gone.rs). Here the logs are equal, so the lowest id
/// calls, at ~0.9 s after the last append at tickTime=2000, while the
/// others' timers run out at 1.2-1.6 s at the earliest: without it the
/// lowest id would win about half of the time.
#[test]
fn the_lowest_survivor_takes_over_from_a_dead_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start_cfg(dir.path(), 3, "tickTime=2000\n");
    for round in 0..3 {
        let leader = ens.leader().expect("a leader");
        let survivors: Vec<usize> = (1..=3).filter(|i| *i != leader).collect();
        ens.kill9(leader);
        let mut next = None;
        eventually(20, || {
            next = survivors.iter().copied().find(|id| ens.nodes[id - 1].as_ref().unwrap().four_letter("srvr").contains("Mode: leader"));
            next.is_some()
        });
        assert_eq!(next, Some(survivors[0]), "round {round}: server {leader} died, survivors {survivors:?}");
        ens.restart(leader);
        // Only a member that the new leader has replicated to since knows
        // whom to watch: a sync through the restarted one waits for that.
        rt().block_on(async {
            let c = connect_retrying(&ens.addr(leader), 10_000).await;
            c.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        });
    }
}

/// A connection to the peer port that never sends a request is closed
/// after syncLimit x tickTime, at least 1 s (1 s here), as ZooKeeper's quorum port does:
/// port scans and half-open connections hold nothing for long.
#[test]
fn a_silent_peer_connection_is_closed() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let ens = Ensemble::start(dir.path(), 1);
    let mut silent = std::net::TcpStream::connect(ens.peer_addr(1)).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the member sent {n} bytes to a silent dialler"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("still open after {:?}: {e}", opened.elapsed()),
    }
    // The member still answers its peers.
    assert!(answers(&paddock::raft::link::Links::default(), &ens, 1));
}

/// Connections that have not finished their handshake hold a descriptor
/// each from the share kept back for storage: past
/// `MAX_HANDSHAKES` of them at once, a member closes a new one at once
/// instead of waiting out its time limit, and it answers its peers again
/// once they are gone.
#[test]
fn peer_connections_beyond_the_handshake_limit_are_closed_at_once() {
    use paddock::raft::peer_server::MAX_HANDSHAKES;
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    // A silent dialler is given syncLimit x tickTime: 10 s here.
    let ens = Ensemble::start_cfg(dir.path(), 1, "syncLimit=50\n");
    let silent: Vec<_> = (0..MAX_HANDSHAKES).map(|_| std::net::TcpStream::connect(ens.peer_addr(1)).unwrap()).collect();
    let mut beyond = std::net::TcpStream::connect(ens.peer_addr(1)).unwrap();
    beyond.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    match beyond.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the member sent {n} bytes to a silent dialler"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("a connection beyond {MAX_HANDSHAKES} in their handshake was kept: {e}"),
    }
    drop(silent);
    assert!(eventually(10, || answers(&paddock::raft::link::Links::default(), &ens, 1)));
}

/// A wiped member votes for nobody until a leader has brought it up to date:
/// with the leader also down, the survivor might lack writes that only the
/// dead leader and the wiped disk held, so the two elect nobody; once the
/// old leader is back the ensemble serves again and the wiped member
/// catches up.
#[test]
fn a_wiped_member_does_not_vote_until_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start_cfg(dir.path(), 3, "snapCount=100\n");
    let leader = ens.leader().expect("a leader");
    let wiped = (1..=3).find(|i| *i != leader).unwrap();
    let other = (1..=3).find(|i| *i != leader && *i != wiped).unwrap();
    rt().block_on(async {
        let c = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        for i in 0..300 {
            c.create(&format!("/v{i}"), b"", CreateMode::Persistent).await.unwrap();
        }
    });
    ens.kill9(wiped);
    ens.wipe(wiped);
    ens.kill9(leader);
    ens.restart_no_wait(wiped);
    // Several election timeouts (400-800 ms): nobody becomes leader.
    let elected =
        eventually(4, || [wiped, other].iter().any(|id| ens.nodes[id - 1].as_ref().unwrap().four_letter("srvr").contains("Mode: leader")));
    assert!(!elected, "an empty member helped elect a leader");
    ens.restart(leader);
    ens.nodes[wiped - 1].as_ref().unwrap().wait_serving();
    rt().block_on(async {
        // The restarted leader may force one more election, during which
        // the wiped member turns new connections away.
        let c = connect_retrying(&ens.addr(wiped), 10_000).await;
        c.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        assert!(c.exists("/v299", false).await.unwrap().is_some());
        c.create("/after", b"", CreateMode::Persistent).await.unwrap();
    });
}

/// After the leader dies, the new leader keeps the sessions that are kept
/// alive through the survivors, and expires (with their ephemerals) the ones
/// that only the dead leader's connections kept alive: session expiry is the
/// leader's job, and it must take over the sessions it learned from the log.
#[test]
fn a_new_leader_keeps_live_sessions_and_expires_orphaned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 3);
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let timeout_ms = 3_000;
    rt().block_on(async {
        let mut kept = Client::connect(&ens.addr(follower), timeout_ms).await.unwrap();
        kept.create("/kept", b"", CreateMode::Ephemeral).await.unwrap();
        let orphan = Client::connect(&ens.addr(leader), timeout_ms).await.unwrap();
        orphan.create("/orphan", b"", CreateMode::Ephemeral).await.unwrap();
        // Its only connection dies with the leader, without a close.
        std::mem::forget(orphan);
        ens.kill9(leader);
        let killed = Instant::now();
        let mut gone = None;
        // Three session timeouts, pinging through the follower all along. A
        // ZooKeeper follower drops its clients when the leader goes; should
        // this one, the client resumes its session there, as clients do.
        while killed.elapsed() < Duration::from_millis(3 * timeout_ms as u64) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if kept.ping().await.is_err() {
                let (id, passwd) = (kept.session_id, kept.passwd.clone());
                match Client::resume(&ens.addr(follower), timeout_ms, id, passwd, 0).await {
                    Ok(c) => kept = c,
                    Err(e) => eprintln!("resuming through the follower: {e:?}"),
                }
                continue;
            }
            if gone.is_none() && matches!(kept.exists("/orphan", false).await, Ok(None)) {
                gone = Some(killed.elapsed());
            }
        }
        let gone = gone.expect("the orphaned session's ephemeral expired under the new leader");
        eprintln!("orphaned ephemeral gone {gone:?} after the leader's death");
        let stat = kept.exists("/kept", false).await.unwrap().expect("the live session's ephemeral stays");
        assert_eq!(stat.ephemeral_owner, kept.session_id);
    });
}

#[test]
fn an_observer_serves_clients_but_never_votes() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start_roles(dir.path(), &["", "", "", ":observer"], "");
    let observer = 4;
    let word = |ens: &Ensemble, id: usize, w: &str| ens.nodes[id - 1].as_ref().unwrap().four_letter(w);
    assert!(word(&ens, observer, "srvr").contains("Mode: observer"), "{}", word(&ens, observer, "srvr"));
    assert!(word(&ens, observer, "mntr").contains("zk_server_state\tobserver"), "{}", word(&ens, observer, "mntr"));
    let leader = ens.leader().expect("a leader");
    assert_ne!(leader, observer);
    let learners = |ens: &Ensemble| {
        let l = ens.nodes[leader - 1].as_ref().unwrap();
        (l.mntr("zk_learners"), l.mntr("zk_synced_followers"), l.mntr("zk_synced_observers"))
    };
    assert!(eventually(10, || learners(&ens) == (Some(3), Some(2), Some(1))), "leader mntr: {:?}", learners(&ens));

    rt().block_on(async {
        // Writes through the observer go to the leader; its watches fire.
        let o = Client::connect(&ens.addr(observer), 10_000).await.unwrap();
        o.create("/obs", b"v0", CreateMode::Persistent).await.unwrap();
        assert_eq!(o.get_data("/obs", true).await.unwrap().0, b"v0");
        let l = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        l.set_data("/obs", b"v1", -1).await.unwrap();
        let ev = o.next_event(Duration::from_secs(5)).await.expect("the observer's watch fired");
        assert_eq!(ev.path, "/obs");
    });

    // The observer and one follower gone, two of the three voters remain, a
    // quorum. Had the observer a vote, four voters would need three.
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    ens.kill9(observer);
    ens.kill9(follower);
    rt().block_on(async {
        let c = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        let write = tokio::time::timeout(Duration::from_secs(10), c.create("/quorum", b"", CreateMode::Persistent)).await;
        assert!(matches!(write, Ok(Ok(_))), "two of three voters did not commit a write: {write:?}");
    });

    // Back, the observer catches up and is an observer still.
    ens.restart(observer);
    rt().block_on(async {
        let o = Client::connect(&ens.addr(observer), 10_000).await.unwrap();
        o.call(OpCode::Sync, Some(&SyncRequest { path: "/".into() })).await.unwrap();
        assert!(o.exists("/quorum", false).await.unwrap().is_some());
    });
    assert!(word(&ens, observer, "srvr").contains("Mode: observer"));
}

#[test]
fn quorum_listen_on_all_ips_answers_peers_on_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let ens = Ensemble::start_cfg(dir.path(), 3, "quorumListenOnAllIPs=true\n");
    // The server.N lines say 127.0.0.1; the peer port answers on 127.0.0.2 too.
    let peer = ens.peer_addr(1).replace("127.0.0.1", "127.0.0.2");
    let links = paddock::raft::link::Links::default();
    assert!(rt().block_on(paddock::raft::peer_server::peer_initialized(&links, &peer)), "no answer at {peer}");
}

#[test]
fn read_only_mode_serves_reads_while_out_of_a_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start_cfg(dir.path(), 3, "readonlymode.enabled=true\n");
    let leader = ens.leader().expect("a leader");
    let survivor = (1..=3).find(|i| *i != leader).unwrap();
    let runtime = rt();
    runtime.block_on(async {
        let c = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        c.create("/ro", b"kept", CreateMode::Persistent).await.unwrap();
        // Applied on the survivor before the others go.
        let s = Client::connect(&ens.addr(survivor), 10_000).await.unwrap();
        s.sync("/").await.unwrap();
        assert_eq!(s.get_data("/ro", false).await.unwrap().0, b"kept");
    });
    // Two of the three gone: the survivor has no quorum.
    let gone: Vec<usize> = (1..=3).filter(|i| *i != survivor).collect();
    for id in &gone {
        ens.kill9(*id);
    }
    let word = |ens: &Ensemble, w: &str| ens.nodes[survivor - 1].as_ref().unwrap().four_letter(w);
    assert!(eventually(15, || word(&ens, "isro") == "ro"), "isro: {}", word(&ens, "isro"));
    assert!(word(&ens, "srvr").contains("Mode: read-only"), "{}", word(&ens, "srvr"));
    let addr = ens.addr(survivor);
    let ro = runtime.block_on(async {
        assert!(Client::connect(&addr, 10_000).await.is_err(), "a client that wants writes was served");
        let ro = Client::connect_read_only(&addr, 10_000).await.unwrap();
        assert!(ro.read_only);
        assert_eq!(ro.get_data("/ro", false).await.unwrap().0, b"kept");
        let write = ro.create("/not-logged", b"", CreateMode::Persistent).await;
        assert!(matches!(write, Err(ClientError::Server(ErrorCode::NotReadOnly))), "{write:?}");
        ro
    });

    // The quorum back, the read-only connection is closed, and a new
    // session reads and writes.
    for id in &gone {
        ens.restart_no_wait(*id);
    }
    runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(20);
        while ro.get_data("/ro", false).await.is_ok() {
            assert!(Instant::now() < until, "the read-only connection outlived the quorum's return");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let c = connect_retrying(&addr, 10_000).await;
        assert!(!c.read_only);
        c.create("/logged", b"", CreateMode::Persistent).await.unwrap();
    });
    assert_eq!(word(&ens, "isro"), "rw");
}

/// A JAAS file with the quorum SASL sections of ZooKeeper's documentation:
/// members accept user `member` and log in as `member` with `password`.
fn quorum_jaas(dir: &std::path::Path, password: &str) -> std::path::PathBuf {
    let path = dir.join(format!("quorum-jaas-{password}.conf"));
    let text = format!(
        "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_member=\"secret\";\n}};\n\
         QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"member\"\n  password=\"{password}\";\n}};\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Peer links as a member with these zoo.cfg lines would dial.
fn links_with(cfg: &str) -> paddock::raft::link::Links {
    let mut config = paddock::config::Config::default();
    config.apply_zoo_cfg(cfg, "zoo.cfg").unwrap();
    config.validate().unwrap();
    paddock::raft::link::Links::from_config(&config).unwrap()
}

fn answers(links: &paddock::raft::link::Links, ens: &Ensemble, id: usize) -> bool {
    rt().block_on(paddock::raft::peer_server::peer_initialized(links, &ens.peer_addr(id)))
}

#[test]
fn members_authenticate_each_other_with_quorum_sasl() {
    // ZooKeeper's quorum.auth.* with DIGEST-MD5: every peer connection
    // (replication, forwarded writes, votes) starts with the dialler's login.
    let dir = tempfile::tempdir().unwrap();
    let jaas = quorum_jaas(dir.path(), "secret");
    let auth = format!("jaasLoginConfig={}\nquorum.auth.enableSasl=true\n", jaas.display());
    let required = format!("{auth}quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n");
    let ens = Ensemble::start_cfg(dir.path(), 3, &required);
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    rt().block_on(async {
        let f = Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        f.create("/authenticated", b"x", CreateMode::Persistent).await.unwrap();
        let l = Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        assert_eq!(l.get_data("/authenticated", false).await.unwrap().0, b"x");
    });
    // A dialler with the members' login is answered; one with a wrong
    // password, or none, is not.
    assert!(answers(&links_with(&required), &ens, leader));
    let wrong = quorum_jaas(dir.path(), "guess");
    assert!(!answers(&links_with(&required.replace(&jaas.display().to_string(), &wrong.display().to_string())), &ens, leader));
    assert!(!answers(&paddock::raft::link::Links::default(), &ens, leader));
}

#[test]
fn quorum_sasl_can_be_turned_on_one_member_at_a_time() {
    // ZooKeeper's steps: enableSasl everywhere (nothing required yet), then
    // learnerRequireSasl, then serverRequireSasl. A member in the first step
    // serves members that do not log in yet, and a member that does not run
    // quorum SASL tells a dialler so.
    let dir = tempfile::tempdir().unwrap();
    let jaas = quorum_jaas(dir.path(), "secret");
    let auth = format!("jaasLoginConfig={}\nquorum.auth.enableSasl=true\n", jaas.display());
    let ens = Ensemble::start_cfg(dir.path(), 3, &auth);
    assert!(answers(&paddock::raft::link::Links::default(), &ens, 1), "a member not logging in yet is served");
    assert!(answers(&links_with(&auth), &ens, 1));
    let wrong = quorum_jaas(dir.path(), "guess");
    assert!(!answers(&links_with(&auth.replace(&jaas.display().to_string(), &wrong.display().to_string())), &ens, 1));
    drop(ens);

    let plain_dir = tempfile::tempdir().unwrap();
    let plain = Ensemble::start(plain_dir.path(), 3);
    assert!(answers(&links_with(&auth), &plain, 1), "without learnerRequireSasl, talks to a member without quorum SASL");
    let learner_requires = format!("{auth}quorum.auth.learnerRequireSasl=true\n");
    assert!(!answers(&links_with(&learner_requires), &plain, 1), "with it, does not");
}

#[test]
fn quorum_sasl_settings_that_cannot_work_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let data = dir.path().join("data");
    let args = ["--config", cfg.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    std::fs::write(&cfg, "quorum.auth.serverRequireSasl=true\n").unwrap();
    assert!(common::Paddock::refused(&args).contains("quorum.auth.enableSasl is disabled"));
    std::fs::write(&cfg, "quorum.auth.enableSasl=true\n").unwrap();
    assert!(common::Paddock::refused(&args).contains("needs jaasLoginConfig"));
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(&jaas, "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_a=\"b\"; };").unwrap();
    std::fs::write(&cfg, format!("quorum.auth.enableSasl=true\njaasLoginConfig={}\n", jaas.display())).unwrap();
    assert!(common::Paddock::refused(&args).contains("no section QuorumLearner"));
}

/// What the stand-in member of `a_member_on_an_older_build_never_gets_a_held_read`
/// does and saw.
#[derive(Default)]
struct Stranger {
    /// Answer `Format` as this build does (else hang up, as builds before it).
    answers_format: std::sync::atomic::AtomicBool,
    /// An append carried a write with held reads (`Txn::AfterReads`).
    saw_held_reads: std::sync::atomic::AtomicBool,
    /// Appends that carried entries.
    appends: std::sync::atomic::AtomicU64,
}

/// Plays member `addr` of an ensemble: acknowledges every append (so the
/// leader goes on sending new entries) and notes what they carry; hangs up
/// on anything else.
async fn play_member(listener: tokio::net::TcpListener, me: std::sync::Arc<Stranger>) {
    use paddock::raft::wire::{self, PeerRequest, PeerResponse};
    use std::sync::atomic::Ordering;
    while let Ok((stream, _)) = listener.accept().await {
        let me = me.clone();
        tokio::spawn(async move {
            let mut conn = wire::framed(tokio_util::either::Either::Left(stream));
            while let Ok((id, req)) = wire::recv::<PeerRequest>(&mut conn).await {
                let answer = match req {
                    PeerRequest::Append(append) => {
                        if !append.entries.is_empty() {
                            me.appends.fetch_add(1, Ordering::SeqCst);
                        }
                        let held = |e: &openraft::Entry<paddock::raft::TypeConfig>| match &e.payload {
                            openraft::EntryPayload::Normal(batch) => batch.proposals.iter().any(|p| p.txn.held_reads().is_some()),
                            _ => false,
                        };
                        if append.entries.iter().any(held) {
                            me.saw_held_reads.store(true, Ordering::SeqCst);
                        }
                        PeerResponse::Append(Ok(openraft::raft::AppendEntriesResponse::Success))
                    }
                    PeerRequest::Format if me.answers_format.load(Ordering::SeqCst) => PeerResponse::Format(paddock::storage::FORMAT),
                    _ => return,
                };
                if wire::send(&mut conn, id, &answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Rolling upgrade: while one member runs a build that cannot read a write
/// carrying held reads (it hangs up on the format question, as builds
/// before it do), no such write reaches it, and a session's pipelined reads
/// and writes still see what they should; once it answers, they do reach it.
#[test]
fn a_member_on_an_older_build_never_gets_a_held_read() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let stranger = std::sync::Arc::new(Stranger::default());
    let ens = Ensemble::start_listing(dir.path(), 4, 3);
    let listener = rt.block_on(tokio::net::TcpListener::bind(ens.peer_addr(4))).unwrap();
    rt.spawn(play_member(listener, stranger.clone()));

    rt.block_on(async {
        let c = connect_retrying(&ens.addr(1), 10_000).await;
        c.create("/up", b"", CreateMode::Persistent).await.unwrap();
        // Long enough for every member to have asked the stranger twice.
        pipelined_rounds(&c, 1, 200).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        pipelined_rounds(&c, 201, 200).await;
        assert!(stranger.appends.load(Ordering::SeqCst) > 0, "the stand-in member got no entries at all");
        assert!(!stranger.saw_held_reads.load(Ordering::SeqCst), "a write with held reads reached a member that cannot read it");

        // Upgraded: members learn it within their next ask (2 s), and held
        // reads start to travel.
        stranger.answers_format.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let mut next = 401;
        while !stranger.saw_held_reads.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(30), "held reads never resumed once every member reads them");
            pipelined_rounds(&c, next, 50).await;
            next += 50;
        }
    });
}

/// Rounds `from..from + n` of setData, getData, setData of `/up`, sent
/// without waiting: the read, still queued when the second write arrives,
/// must see the first write and not the second.
async fn pipelined_rounds(c: &Client, from: usize, n: usize) {
    use jute::Record;
    let set = |value: String| jute::SetDataRequest { path: "/up".into(), data: Some(value.into_bytes()), version: -1 };
    for i in from..from + n {
        let first = c.send(OpCode::SetData, Some(&set(format!("a{i}")))).await.unwrap();
        let get = c.send(OpCode::GetData, Some(&jute::GetDataRequest { path: "/up".into(), watch: false })).await.unwrap();
        let second = c.send(OpCode::SetData, Some(&set(format!("b{i}")))).await.unwrap();
        assert_eq!(first.await.unwrap().unwrap().0.err, 0);
        let (header, body) = get.await.unwrap().unwrap();
        assert_eq!(header.err, 0);
        let seen = jute::GetDataResponse::from_bytes(&body).unwrap().data.unwrap_or_default();
        assert_eq!(seen, format!("a{i}").into_bytes(), "round {i}");
        assert_eq!(second.await.unwrap().unwrap().0.err, 0);
    }
}

/// A client that loses its server to a dead leader and reconnects through a
/// follower at once, before the survivors have elected the next leader, is
/// attached only once that leader is known (the follower cannot tell the
/// dead one where the session is), and its next write then goes through.
/// Until it was, the follower attached it anyway and the write, forwarded
/// to the dead leader, came back as a lost connection: go-zookeeper's
/// TestDNSHostProviderReconnect failed its create that way.
#[test]
fn a_session_resumed_during_an_election_is_attached_to_the_next_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 3);
    for round in 0..3 {
        let leader = ens.leader().expect("a leader");
        let follower = (1..=3).find(|i| *i != leader).unwrap();
        rt().block_on(async {
            let c = Client::connect(&ens.addr(leader), 4_000).await.unwrap();
            let before = format!("/before{round}");
            c.create(&before, b"", CreateMode::Persistent).await.unwrap();
            // What the client has seen, as a client tells it when it reconnects.
            let seen = c.exists(&before, false).await.unwrap().expect("created").czxid;
            let (id, passwd) = (c.session_id, c.passwd.clone());
            ens.kill9(leader);
            let c = Client::resume(&ens.addr(follower), 4_000, id, passwd, seen).await.expect("resumed through the follower");
            assert_eq!(c.session_id, id);
            c.create(&format!("/after{round}"), b"", CreateMode::Persistent).await.expect("a write right after resuming");
        });
        ens.restart(leader);
    }
}

/// When the processes that would make a quorum are gone, the survivor
/// stops serving and turns clients away, as a ZooKeeper server does whose
/// quorum's connections closed; and once a quorum is back, sessions are
/// still there although the outage outlasted their timeout. A leader back
/// in touch starts every session afresh, as a newly elected one does;
/// before, the survivor (leader all along, openraft 0.9 does not step down)
/// expired them the moment its quorum returned (go-zookeeper's TestNoQuorum).
#[test]
fn sessions_outlive_an_outage_of_the_quorum_on_a_survivor_that_turns_clients_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start(dir.path(), 3);
    let survivor = ens.leader().expect("a leader");
    let others: Vec<usize> = (1..=3).filter(|i| *i != survivor).collect();
    let timeout_ms = 4_000;
    rt().block_on(async {
        let c = Client::connect(&ens.addr(survivor), timeout_ms).await.unwrap();
        c.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
        let (id, passwd) = (c.session_id, c.passwd.clone());
        drop(c);
        let down = Instant::now();
        for other in &others {
            ens.kill9(*other);
        }
        let node = ens.nodes[survivor - 1].as_ref().unwrap();
        assert!(eventually(10, || !node.four_letter("srvr").contains("Mode:")), "the survivor stopped serving");
        let asked = Instant::now();
        match Client::resume(&ens.addr(survivor), timeout_ms, id, passwd.clone(), 0).await {
            Ok(_) => panic!("a server without a quorum attached a session"),
            Err(e) => eprintln!("turned away after {:?}: {e:?}", asked.elapsed()),
        }
        // Longer than the session's timeout without a quorum.
        tokio::time::sleep(Duration::from_millis(timeout_ms as u64 + 1_000).saturating_sub(down.elapsed())).await;
        ens.restart(others[0]);
        // As a client does, it tries again while the quorum re-forms (the
        // survivor has not yet heard from the restarted member, nor it from a leader).
        let mut resumed = Err(ClientError::Timeout);
        for _ in 0..100 {
            resumed = Client::resume(&ens.addr(survivor), timeout_ms, id, passwd.clone(), 0).await;
            if resumed.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let c = resumed.expect("the session is still there");
        let stat = c.exists("/mine", false).await.unwrap().expect("and so is its ephemeral");
        assert_eq!(stat.ephemeral_owner, id);
    });
}
