//! A single node serves ZooKeeper's basic operations as ZooKeeper does.

mod common;

use common::{rt, Paddock};
use jute::{CreateMode, ErrorCode};
use paddock::client::{Client, ClientError};

#[test]
fn crud_stat_sequential_and_ephemeral() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert!(c.exists("/zookeeper", false).await.unwrap().is_some());
        assert!(c.exists("/zookeeper/config", false).await.unwrap().is_some());

        assert_eq!(c.create("/app", b"v1", CreateMode::Persistent).await.unwrap(), "/app");
        let (data, stat) = c.get_data("/app", false).await.unwrap();
        assert_eq!(data, b"v1");
        assert_eq!((stat.version, stat.data_length, stat.num_children), (0, 2, 0));
        assert_eq!(stat.czxid, stat.mzxid);
        assert!(matches!(c.create("/app", b"", CreateMode::Persistent).await, Err(ClientError::Server(ErrorCode::NodeExists))));
        assert!(matches!(c.create("/nope/x", b"", CreateMode::Persistent).await, Err(ClientError::Server(ErrorCode::NoNode))));

        let stat2 = c.set_data("/app", b"v2", 0).await.unwrap();
        assert_eq!(stat2.version, 1);
        assert!(stat2.mzxid > stat.mzxid);
        assert!(matches!(c.set_data("/app", b"v3", 0).await, Err(ClientError::Server(ErrorCode::BadVersion))));

        // Sequential suffixes count creations, not deletions (ZooKeeper 3.8 behaviour).
        assert_eq!(c.create("/app/a", b"", CreateMode::PersistentSequential).await.unwrap(), "/app/a0000000000");
        c.create("/app/x", b"", CreateMode::Persistent).await.unwrap();
        c.delete("/app/x", -1).await.unwrap();
        assert_eq!(c.create("/app/a", b"", CreateMode::PersistentSequential).await.unwrap(), "/app/a0000000002");
        assert_eq!(c.exists("/app", false).await.unwrap().unwrap().cversion, 4);
        assert_eq!(c.get_children("/app", false).await.unwrap(), vec!["a0000000000", "a0000000002"]);
        assert!(matches!(c.delete("/app", -1).await, Err(ClientError::Server(ErrorCode::NotEmpty))));

        // An ephemeral lives as long as its session, and cannot have children.
        let owner = Client::connect(&server.addr, 10_000).await.unwrap();
        owner.create("/app/lock", b"", CreateMode::Ephemeral).await.unwrap();
        let seen = c.exists("/app/lock", false).await.unwrap().unwrap();
        assert_eq!(seen.ephemeral_owner, owner.session_id);
        assert!(matches!(
            owner.create("/app/lock/child", b"", CreateMode::Persistent).await,
            Err(ClientError::Server(ErrorCode::NoChildrenForEphemerals))
        ));
        owner.close().await.unwrap();
        assert!(c.exists("/app/lock", false).await.unwrap().is_none());

        // Zxids only grow: a later create has a larger czxid (the fencing token).
        let z1 = c.create("/app/t", b"", CreateMode::PersistentSequential).await.unwrap();
        let z2 = c.create("/app/t", b"", CreateMode::PersistentSequential).await.unwrap();
        let s1 = c.exists(&z1, false).await.unwrap().unwrap();
        let s2 = c.exists(&z2, false).await.unwrap().unwrap();
        assert!(s2.czxid > s1.czxid);
        c.close().await.unwrap();
    });
}

#[test]
fn four_letter_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    assert_eq!(server.four_letter("ruok"), "imok");
    let srvr = server.four_letter("srvr");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(srvr.contains("Zookeeper version: 3.8.0"), "{srvr}");
    let mntr = server.four_letter("mntr");
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    // A fresh ZooKeeper 3.8 reports 5 for its 4 znodes (its map holds the
    // root twice), srvr and mntr alike, and a data size of 44.
    assert_eq!(server.mntr("zk_znode_count"), Some(5), "{mntr}");
    assert_eq!(server.mntr("zk_approximate_data_size"), Some(44), "{mntr}");
    assert!(srvr.contains("Node count: 5"), "{srvr}");
    // What monitoring (Datadog's check, Prometheus exporters) reads besides.
    let fds = |key: &str| mntr.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse::<u64>().ok());
    assert!(fds("zk_open_file_descriptor_count\t").is_some_and(|n| n > 3), "{mntr}");
    assert!(fds("zk_max_file_descriptor_count\t").is_some_and(|n| n >= 64), "{mntr}");
    assert!(server.four_letter("envi").contains("zookeeper.version=3.8.0"));
}

/// `recved=N` of the `cons` line of session `sid`, if it is listed.
fn received_by(cons: &str, sid: i64) -> Option<u64> {
    let line = cons.lines().find(|l| l.contains(&format!(",sid=0x{sid:x},")))?;
    line.split("recved=").nth(1)?.split(',').next()?.parse().ok()
}

#[test]
fn connections_and_sessions_in_four_letter_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 30_000).await.unwrap();
        c.create("/s", b"x", CreateMode::Persistent).await.unwrap();
        c.get_data("/s", false).await.unwrap();
        // As ZooKeeper: one line per connection, with the session's details.
        let cons = server.four_letter("cons");
        let line = cons.lines().find(|l| l.contains(&format!(",sid=0x{:x},", c.session_id))).unwrap_or_else(|| panic!("{cons}"));
        assert!(line.starts_with(" /127.0.0.1:") && line.contains("](queued=0,"), "{line}");
        assert!(line.contains(",lop=GETD,") && line.contains(",to=30000,lcxid=0x"), "{line}");
        // connect, create, getData (a ping may have come too)
        assert!(received_by(&cons, c.session_id).is_some_and(|n| n >= 3), "{cons}");
        let stat = server.four_letter("stat");
        assert!(stat.contains("Clients:\n /127.0.0.1:") && stat.contains("](queued=0,recved="), "{stat}");
        // Watchers are named by their session, as ZooKeeper names them.
        c.exists("/s", true).await.unwrap();
        let sid = format!("0x{:x}", c.session_id);
        // ZooKeeper's exact text, to its closing empty line.
        assert_eq!(server.four_letter("wchc"), format!("{sid}\n\t/s\n\n"));
        assert_eq!(server.four_letter("wchp"), format!("/s\n\t{sid}\n\n"));
        // Sessions by expiry time, then ephemerals, as ZooKeeper's dump.
        let dump = server.four_letter("dump");
        assert!(dump.starts_with("SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at "), "{dump}");
        assert!(dump.contains(" UTC 20") && dump.contains(&format!(":\n\t{sid}\nephemeral nodes dump:\n")), "{dump}");
        assert_eq!(server.four_letter("crst"), "Connection stats reset.\n");
        let cons = server.four_letter("cons");
        assert!(received_by(&cons, c.session_id).is_some_and(|n| n <= 1), "{cons}");
        c.close().await.unwrap();
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/p", b"", CreateMode::Persistent).await.unwrap();
        // Interleave writes and reads without waiting: each read must see the
        // writes sent before it (read-your-writes), and replies come back in order.
        let mut waits = Vec::new();
        for i in 0..200 {
            let set = jute::SetDataRequest { path: "/p".into(), data: Some(format!("{i}").into_bytes()), version: -1 };
            waits.push((true, c.send(jute::OpCode::SetData, Some(&set)).await.unwrap()));
            let get = jute::GetDataRequest { path: "/p".into(), watch: false };
            waits.push((false, c.send(jute::OpCode::GetData, Some(&get)).await.unwrap()));
        }
        let mut i = 0;
        for (is_set, rx) in waits {
            let (header, body) = rx.await.unwrap().unwrap();
            assert_eq!(header.err, 0);
            if !is_set {
                let r = <jute::GetDataResponse as jute::Record>::from_bytes(&body).unwrap();
                assert_eq!(r.data, Some(format!("{i}").into_bytes()));
                i += 1;
            }
        }
    });
}

#[test]
fn reconfig_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        // ZooKeeper 3.8 with its default reconfigEnabled=false answers ReconfigDisabled.
        let req = jute::ReconfigRequest { joining_servers: "server.2=127.0.0.1:2888:3888".into(), ..Default::default() };
        let r = c.call(jute::OpCode::Reconfig, Some(&req)).await;
        assert!(matches!(r, Err(ClientError::Server(ErrorCode::ReconfigDisabled))), "{r:?}");
        // The session goes on.
        assert!(c.exists("/", false).await.unwrap().is_some());
        c.close().await.unwrap();
    });
}

#[test]
fn builtin_cversions_match_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        // DataNode.copyStat reports 2 x creations - children: -2 for /zookeeper, -1 for a fresh /.
        assert_eq!(c.exists("/zookeeper", false).await.unwrap().unwrap().cversion, -2);
        assert_eq!(c.exists("/", false).await.unwrap().unwrap().cversion, -1);
        c.create("/x", b"", CreateMode::Persistent).await.unwrap();
        assert_eq!(c.exists("/", false).await.unwrap().unwrap().cversion, 0);
        c.close().await.unwrap();
    });
}

/// Checks that `server` holds `limit` sessions from 127.0.0.1, closes one
/// more connection at once, unanswered, takes writes of `bytes` in all
/// while full, and takes a new connection once a session closes.
fn holds_at_most(server: &Paddock, limit: usize, bytes: usize) {
    use std::io::{Read, Write};
    rt().block_on(async {
        let mut sessions = Vec::new();
        for _ in 0..limit {
            sessions.push(Client::connect(&server.addr, 10_000).await.unwrap());
        }
        let mut over = std::net::TcpStream::connect(&server.addr).unwrap();
        over.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let _ = over.write_all(b"ruok");
        let mut answer = Vec::new();
        let _ = over.read_to_end(&mut answer);
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
        assert!(Client::connect(&server.addr, 10_000).await.is_err());
        // The sessions are unaffected, and a closed one frees its place.
        sessions[0].create("/limited", b"", CreateMode::Persistent).await.unwrap();
        let value = vec![b'v'; 4096];
        for _ in 0..bytes.div_ceil(value.len()) {
            sessions[0].set_data("/limited", &value, -1).await.unwrap();
        }
        sessions.remove(0).close().await.unwrap();
        let mut next = None;
        for _ in 0..50 {
            if let Ok(client) = Client::connect(&server.addr, 10_000).await {
                next = Some(client);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let next = next.expect("a connection once one of the sessions closed");
        assert!(next.exists("/limited", false).await.unwrap().is_some());
        sessions.push(next);
        for client in sessions {
            client.close().await.unwrap();
        }
    });
}

#[test]
fn one_address_holds_at_most_max_client_cnxns_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), "maxClientCnxns=3\nclientPortListenBacklog=50\n");
    holds_at_most(&server, 3, 0);
    // The limit shows in `conf`, as ZooKeeper's, and so does the backlog.
    let conf = server.four_letter("conf");
    assert!(conf.contains("maxClientCnxns=3\nminSessionTimeout="), "{conf}");
    assert!(conf.contains("maxSessionTimeout=40000\nclientPortListenBacklog=50\nserverId="), "{conf}");
}

#[test]
fn the_server_holds_at_most_max_cnxns_connections() {
    // No limit per address, so only the total (ZooKeeper's maxCnxns) refuses.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), "maxClientCnxns=0\nmaxCnxns=2\n");
    holds_at_most(&server, 2, 0);
}

#[test]
fn client_connections_leave_storage_its_open_files() {
    // A server whose every descriptor went to clients could not create the
    // files a flush of its log writes, and would stop. Under a limit of 600
    // it keeps half for storage: it holds 300 sessions, refuses the next,
    // and while full takes 8 MiB of writes (its log's memtables, 4 MiB in
    // all, flush to new files at least once).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "maxClientCnxns=0\n").unwrap();
    let log = dir.path().join("stderr.log");
    let limit = 600;
    let mut server = Paddock::start_with_open_files_limit(&dir.path().join("data"), &["--config", cfg.to_str().unwrap()], limit, &log);
    let budget = paddock::open_files::Limit { was: limit, now: limit }.client_connections();
    assert_eq!(budget, 300);
    // This process holds the other end of every connection.
    paddock::open_files::raise().unwrap();
    holds_at_most(&server, budget, 8 << 20);
    assert!(server.alive(), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("the open files limit leaves room for 300 beside storage"), "{logged}");
}

#[test]
fn fsyncs_over_the_warning_threshold_are_counted_in_mntr() {
    // The default threshold is a second: the key is there from the start.
    let dir = tempfile::tempdir().unwrap();
    let plain = Paddock::start(dir.path());
    assert!(plain.mntr("zk_fsync_threshold_exceed_count").is_some(), "{}", plain.four_letter("mntr"));
    // As ZooKeeper, a negative threshold counts every fsync of the log.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), "fsync.warningthresholdms=-1\n");
    let before = server.mntr("zk_fsync_threshold_exceed_count").expect("the count");
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for i in 0..3 {
            c.create(&format!("/synced-{i}"), b"", CreateMode::Persistent).await.unwrap();
        }
        c.close().await.unwrap();
    });
    let after = server.mntr("zk_fsync_threshold_exceed_count").expect("the count");
    assert!(after >= before + 3, "{before} -> {after}");
}

/// A single paddock in `dir` started with a zoo.cfg of `text`.
fn start_with_zoo_cfg(dir: &std::path::Path, text: &str) -> Paddock {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, text).unwrap();
    Paddock::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

#[test]
fn linearizable_reads_on_a_single_node_serve_as_usual() {
    // The leader confirms its own read point (a quorum of one): reads,
    // pipelined or not, answer as without the setting.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), "linearizableReads=true\n");
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/l", b"v1", CreateMode::Persistent).await.unwrap();
        assert_eq!(c.get_data("/l", false).await.unwrap().0, b"v1");
        let (set, get) = tokio::join!(c.set_data("/l", b"v2", -1), c.get_data("/l", false));
        set.unwrap();
        assert_eq!(get.unwrap().0, b"v2", "a read after a write of the same session sees it");
        assert_eq!(c.get_children("/", false).await.unwrap().len(), 2);
    });
}

/// Creates `/locked` open only to a digest user nobody here has, then
/// reads and writes it from an unauthenticated session: what that got.
fn use_a_locked_node(extra_cfg: &str) -> Result<(), ClientError> {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), extra_cfg);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        let acl = vec![jute::Acl::new(jute::perms::ALL, jute::Id::new("digest", "someone:R1ZzXkn0/1y/Nm4Q6HuPDHAAXaA="))];
        let req = jute::CreateRequest { path: "/locked".into(), data: Some(b"x".to_vec()), acl, flags: 0 };
        c.call(jute::OpCode::Create, Some(&req)).await?;
        let other = Client::connect(&server.addr, 10_000).await.unwrap();
        other.get_data("/locked", false).await?;
        other.set_data("/locked", b"y", -1).await?;
        other.create("/locked/child", b"", CreateMode::Persistent).await?;
        other.delete("/locked/child", -1).await
    })
}

#[test]
fn skip_acl_lets_everyone_do_everything_as_zookeeper_does() {
    assert!(matches!(use_a_locked_node(""), Err(ClientError::Server(ErrorCode::NoAuth))), "the ACL holds by default");
    assert!(use_a_locked_node("skipACL=yes\n").is_ok(), "skipACL=yes checks no ACL");
}

/// Puts a hard count quota of 3 on `/q` (as zkCli's `setquota -N 3 /q`
/// writes it), then creates children of `/q` until one is refused: how many
/// went in, and the error.
fn fill_a_quota(extra_cfg: &str) -> (usize, Option<ClientError>) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), extra_cfg);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/q", b"", CreateMode::Persistent).await.unwrap();
        c.create("/zookeeper/quota/q", b"", CreateMode::Persistent).await.unwrap();
        c.create("/zookeeper/quota/q/zookeeper_limits", b"count=-1,bytes=-1=;countHardLimit=3", CreateMode::Persistent).await.unwrap();
        c.create("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0", CreateMode::Persistent).await.unwrap();
        for i in 0..5 {
            if let Err(e) = c.create(&format!("/q/n{i}"), b"x", CreateMode::Persistent).await {
                return (i, Some(e));
            }
        }
        (5, None)
    })
}

#[test]
fn hard_quotas_refuse_writes_only_with_enforce_quota() {
    // /q itself counts: two children fill a hard limit of 3.
    let (made, err) = fill_a_quota("enforceQuota=true\n");
    assert_eq!(made, 2);
    assert!(matches!(err, Some(ClientError::Server(ErrorCode::QuotaExceeded))), "{err:?}");
    let (made, err) = fill_a_quota("");
    assert!(made == 5 && err.is_none(), "ZooKeeper's default: quotas are counted, not enforced ({made}, {err:?})");
}

/// Clients can send writes faster than the log's disk takes them in. The
/// server reads on only while the writes waiting for their outcome fit in
/// its budget (`raft::write_budget`) instead of holding every one: here
/// four connections pipeline 2 GB of 1 MB setData requests (before the
/// budget the server's resident memory peaked at 2 GiB; with it, about
/// 0.7 GiB, most of it freed pages the allocator returns within a second).
#[test]
fn pipelined_large_writes_wait_for_room_instead_of_filling_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let value = vec![b'v'; 1_000_000];
    rt().block_on(async {
        let mut clients = Vec::new();
        for i in 0..4 {
            let c = Client::connect(&server.addr, 30_000).await.unwrap();
            c.create(&format!("/big{i}"), b"", CreateMode::Persistent).await.unwrap();
            clients.push(c);
        }
        let floods = clients.iter().enumerate().map(|(i, c)| {
            let set = jute::SetDataRequest { path: format!("/big{i}"), data: Some(value.clone()), version: -1 };
            async move {
                let mut replies = Vec::new();
                for _ in 0..512 {
                    replies.push(c.send(jute::OpCode::SetData, Some(&set)).await.unwrap());
                }
                for reply in replies {
                    let (header, _) = reply.await.unwrap().unwrap();
                    assert_eq!(header.err, 0);
                }
            }
        });
        futures::future::join_all(floods).await;
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let peak_kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap();
    assert!(peak_kib < 1 << 20, "the server's resident memory peaked at {} MiB", peak_kib >> 10);
}

#[test]
fn only_create_container_makes_a_container_as_zookeeper_does() {
    // A plain create carrying the container flag (4) is what aiozk sends for
    // `create(container=True)`. ZooKeeper 3.8 logs it as a plain create, so
    // the node is persistent and is never swept; only the createContainer op
    // makes a container. The sweep runs every 200 ms here.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_zoo_cfg(dir.path(), "znode.container.checkIntervalMs=200\n");
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for (op, path) in
            [(jute::OpCode::Create, "/flagged"), (jute::OpCode::Create2, "/flagged2"), (jute::OpCode::CreateContainer, "/box")]
        {
            let req = jute::CreateRequest { path: path.into(), data: None, acl: jute::Acl::open_unsafe(), flags: 4 };
            c.call(op, Some(&req)).await.unwrap();
            c.create(&format!("{path}/child"), b"", CreateMode::Persistent).await.unwrap();
            c.delete(&format!("{path}/child"), -1).await.unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while c.exists("/box", false).await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "the container was not swept once empty");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Swept containers and these two were equally due: two more sweeps to be sure.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(c.exists("/flagged", false).await.unwrap().is_some(), "create with the container flag makes a persistent node");
        assert!(c.exists("/flagged2", false).await.unwrap().is_some(), "so does create2");
    });
}
