//! Every acknowledged write survives a clean restart and a `kill -9`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{rt, Paddock};
use jute::CreateMode;
use paddock::client::Client;

const WRITES: usize = 1_200;

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let acked = rt().block_on(async {
        let c = Arc::new(Client::connect(&server.addr, 10_000).await.unwrap());
        c.create("/d", b"", CreateMode::Persistent).await.unwrap();
        // Several sessions writing concurrently, so writes share fsyncs.
        let mut tasks = Vec::new();
        for w in 0..4 {
            let addr = server.addr.clone();
            tasks.push(tokio::spawn(async move {
                let c = Client::connect(&addr, 10_000).await.unwrap();
                let mut acked = Vec::new();
                for i in 0..WRITES / 4 {
                    let path = format!("/d/w{w}-{i}");
                    c.create(&path, format!("value-{w}-{i}").as_bytes(), CreateMode::Persistent).await.unwrap();
                    acked.push(path);
                }
                acked
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        c.set_data("/d", b"last", -1).await.unwrap();
        all
    });
    assert_eq!(acked.len(), WRITES);
    server.kill9();

    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for path in &acked {
            let (data, _) = c.get_data(path, false).await.unwrap_or_else(|e| panic!("{path} lost: {e}"));
            let suffix = path.trim_start_matches("/d/w");
            let (w, i) = suffix.split_once('-').unwrap();
            assert_eq!(data, format!("value-{w}-{i}").into_bytes());
        }
        assert_eq!(c.get_data("/d", false).await.unwrap().0, b"last");
        assert_eq!(c.get_children("/d", false).await.unwrap().len(), WRITES);
        // New writes get zxids above everything before the crash.
        let before = c.exists(&acked[acked.len() - 1], false).await.unwrap().unwrap().czxid;
        let path = c.create("/d/after", b"", CreateMode::Persistent).await.unwrap();
        assert!(c.exists(&path, false).await.unwrap().unwrap().czxid > before);
    });
}

/// A disk that refuses the log's writes ends the process with an error, as
/// ZooKeeper's critical threads do, instead of leaving a server up that
/// serves nothing and that a supervisor would not restart; started again
/// with room, it has every write it acknowledged.
#[test]
fn a_write_the_disk_refuses_ends_the_process_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("stderr.log");
    let mut server = Paddock::start_with_file_size_limit(&data, 1 << 20, &log);
    let (acked, refused) = rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        let value = vec![b'v'; 64 * 1024];
        let mut acked = Vec::new();
        // 64 MiB in all: far past the limit of any one file.
        for i in 0..1_024 {
            match c.create(&format!("/n{i}"), &value, CreateMode::Persistent).await {
                Ok(path) => acked.push(path),
                Err(e) => return (acked, Some(e.to_string())),
            }
        }
        (acked, None)
    });
    assert!(refused.is_some(), "{} writes of 64 KiB were all taken past a 1 MiB file-size limit", acked.len());
    assert!(!acked.is_empty(), "no write was taken before the limit: {refused:?}");
    let status = server.exited_within(Duration::from_secs(30)).expect("the server exits once its disk refuses a write");
    assert!(!status.success(), "it exits with a failure status: {status}");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("paddock: cannot go on:"), "it says why:\n{stderr}");
    drop(server);

    let server = Paddock::start(&data);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        for path in &acked {
            let (data, _) = c.get_data(path, false).await.unwrap_or_else(|e| panic!("{path} lost: {e}"));
            assert_eq!(data.len(), 64 * 1024, "{path}");
        }
        c.create("/after", b"", CreateMode::Persistent).await.expect("a write once there is room");
    });
}

/// A damaged record in the middle of the log's write-ahead file makes
/// RocksDB recover only the part before it, without an error. The server
/// notices that its log ends before the index it had made durable and
/// refuses to start, rather than serve without writes it acknowledged.
#[test]
fn a_log_cut_short_by_a_damaged_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/c", b"", CreateMode::Persistent).await.unwrap();
        for i in 0..3_000 {
            c.create(&format!("/c/n{i}"), &[b'x'; 200], CreateMode::Persistent).await.unwrap();
        }
    });
    // The mark is rewritten once a second.
    std::thread::sleep(Duration::from_millis(2_500));
    server.kill9();
    let raftlog = dir.path().join("raftlog");
    assert!(raftlog.join("PADDOCK-DURABLE").is_file(), "no durable mark beside the log");

    // Eight bytes flipped halfway through the newest write-ahead file.
    let newest = std::fs::read_dir(&raftlog)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .expect("a write-ahead file");
    let mut bytes = std::fs::read(&newest).unwrap();
    assert!(bytes.len() > 256 * 1024, "{} holds only {} bytes", newest.display(), bytes.len());
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8] {
        *b ^= 0xff;
    }
    std::fs::write(&newest, bytes).unwrap();

    let stderr = Paddock::refused(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(stderr.contains("acknowledged writes after it are gone"), "{stderr}");
    // And it goes on refusing: RocksDB's recovery has since dropped the damage.
    let stderr = Paddock::refused(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(stderr.contains("acknowledged writes after it are gone"), "{stderr}");
}

#[test]
fn state_and_sessions_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let (session_id, passwd) = rt().block_on(async {
        let c = Client::connect(&server.addr, 30_000).await.unwrap();
        c.create("/keep", b"kept", CreateMode::Persistent).await.unwrap();
        c.create("/keep/eph", b"", CreateMode::Ephemeral).await.unwrap();
        let ids = (c.session_id, c.passwd.clone());
        std::mem::forget(c); // leave the session open, as a crashed client would
        ids
    });
    server.stop();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        // The session is replicated state: it resumes, with its ephemeral.
        let c = Client::resume(&server.addr, 30_000, session_id, passwd, 0).await.unwrap();
        assert_eq!(c.get_data("/keep", false).await.unwrap().0, b"kept");
        assert_eq!(c.exists("/keep/eph", false).await.unwrap().unwrap().ephemeral_owner, session_id);
        c.close().await.unwrap();
    });
}

/// State is persisted only at snapshots; everything after the last one is
/// re-applied from the log on start-up. Writes, overwrites and deletes on
/// both sides of several snapshots come back exactly, across two crashes.
#[test]
fn writes_on_both_sides_of_snapshots_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "snapCount=20\n").unwrap();
    let data = dir.path().join("data");
    let args = ["--config", cfg.to_str().unwrap()];
    let server = Paddock::start_with(&data, &args);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/s", b"", CreateMode::Persistent).await.unwrap();
        for i in 0..200 {
            c.create(&format!("/s/n{i}"), format!("v{i}").as_bytes(), CreateMode::Persistent).await.unwrap();
        }
        for i in 0..50 {
            c.delete(&format!("/s/n{i}"), -1).await.unwrap();
        }
        for i in 50..100 {
            c.set_data(&format!("/s/n{i}"), format!("w{i}").as_bytes(), -1).await.unwrap();
        }
    });
    let snapshots = std::fs::read_dir(data.join("snapshots")).map(|d| d.count()).unwrap_or(0);
    assert!(snapshots > 0, "300 writes at snapCount=20 took no snapshot");
    server.kill9();

    let expect = |c: Client, deleted: std::ops::Range<usize>| async move {
        let children = c.get_children("/s", false).await.unwrap();
        assert_eq!(children.len(), 200 - deleted.len(), "{children:?}");
        for i in 0..200 {
            let path = format!("/s/n{i}");
            let got = c.get_data(&path, false).await.ok().map(|(d, _)| d);
            let want = if deleted.contains(&i) {
                None
            } else if (50..100).contains(&i) {
                Some(format!("w{i}").into_bytes())
            } else {
                Some(format!("v{i}").into_bytes())
            };
            assert_eq!(got, want, "{path}");
        }
        c
    };
    let server = Paddock::start_with(&data, &args);
    rt().block_on(async {
        let c = expect(Client::connect(&server.addr, 10_000).await.unwrap(), 0..50).await;
        for i in 50..60 {
            c.delete(&format!("/s/n{i}"), -1).await.unwrap();
        }
    });
    server.kill9();

    let server = Paddock::start_with(&data, &args);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        let c = expect(c, 0..60).await;
        c.close().await.unwrap();
    });
}

/// The log's write-ahead files are recycled: a new one is an old file
/// overwritten in place, with the old records still behind the new ones. A
/// crash while writing into one loses no acknowledged write and brings back
/// none of the records it overwrote.
#[test]
fn a_crash_in_a_recycled_log_file_loses_nothing_and_revives_nothing() {
    const BIG: usize = 500 << 10;
    const ROUNDS: usize = 40;
    const TAIL: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/r", b"", CreateMode::Persistent).await.unwrap();
        c.create("/r/big", b"", CreateMode::Persistent).await.unwrap();
        // ~20 MiB of log: the log's memtable is flushed every few rounds and
        // its files go round the recycle list.
        for i in 0..ROUNDS {
            c.set_data("/r/big", &vec![i as u8; BIG], -1).await.unwrap();
            c.create(&format!("/r/n{i}"), format!("v{i}").as_bytes(), CreateMode::Persistent).await.unwrap();
        }
        // Small records, written over the big ones of an older file.
        for j in 0..TAIL {
            c.create(&format!("/r/t{j}"), format!("t{j}").as_bytes(), CreateMode::Persistent).await.unwrap();
        }
    });
    let info_log = std::fs::read_to_string(dir.path().join("raftlog").join("LOG")).unwrap();
    assert!(last_log_file_was_recycled(&info_log), "the log file written last is a new one: the crash below would not test a recycled one");
    server.kill9();

    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(c.get_data("/r/big", false).await.unwrap().0, vec![(ROUNDS - 1) as u8; BIG]);
        for i in 0..ROUNDS {
            assert_eq!(c.get_data(&format!("/r/n{i}"), false).await.unwrap().0, format!("v{i}").into_bytes());
        }
        for j in 0..TAIL {
            assert_eq!(c.get_data(&format!("/r/t{j}"), false).await.unwrap().0, format!("t{j}").into_bytes());
        }
        assert_eq!(c.get_children("/r", false).await.unwrap().len(), 1 + ROUNDS + TAIL);
    });
}

/// Whether RocksDB's info log says the newest write-ahead file was taken from
/// its recycle list: "reusing log N from recycle list" comes just before the
/// "New memtable created with log file: #M" lines of the switch to file M.
fn last_log_file_was_recycled(info_log: &str) -> bool {
    let events: Vec<&str> =
        info_log.lines().filter(|l| l.contains("from recycle list") || l.contains("New memtable created with log file")).collect();
    let file_of = |l: &str| l.split("log file: #").nth(1).and_then(|r| r.split('.').next()).map(str::to_string);
    let Some(newest) = events.iter().rev().find_map(|l| file_of(l)) else { return false };
    let first_of_switch = events.iter().position(|l| file_of(l).as_deref() == Some(newest.as_str()));
    first_of_switch.and_then(|i| i.checked_sub(1)).is_some_and(|i| events[i].contains("from recycle list"))
}

#[test]
fn the_log_lives_in_data_log_dir_and_a_moved_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, logs) = (dir.path().join("data"), dir.path().join("logs"));
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, format!("dataLogDir={}\n", logs.display())).unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let server = Paddock::start_with(&data, &args);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/kept", b"v", CreateMode::Persistent).await.unwrap();
    });
    assert!(logs.join("raftlog").is_dir() && !data.join("raftlog").exists(), "the log is not in dataLogDir");
    assert!(server.four_letter("conf").contains(&format!("dataLogDir={}\n", logs.display())));
    let dirs = server.four_letter("dirs");
    let logdir_size: u64 = dirs.lines().find_map(|l| l.strip_prefix("logdir_size: ")).unwrap().parse().unwrap();
    assert!(logdir_size > 0, "{dirs}");
    server.stop();

    // Started without dataLogDir, the state's log is missing: it refuses.
    let stderr = Paddock::refused(&["--data-dir", data.to_str().unwrap()]);
    assert!(stderr.contains("no Raft log"), "{stderr}");

    // With it again, everything is there.
    let server = Paddock::start_with(&data, &args);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(c.get_data("/kept", false).await.unwrap().0, b"v");
    });

    // A second server on the same directories is refused, and told why.
    let stderr = Paddock::refused(&["--data-dir", data.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert!(stderr.contains("is another paddock running with this data directory?"), "{stderr}");
    server.stop();
}

/// A data directory written by a newer build (a higher storage format) is
/// refused at start with a message that says so, and is left as it was:
/// put back to this build's format, it serves its data again.
#[test]
fn a_data_dir_from_a_newer_build_is_refused_untouched() {
    use paddock::storage::{CF_RAFT, FORMAT};
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/kept", b"v", CreateMode::Persistent).await.unwrap();
    });
    server.stop();

    // Written with RocksDB itself, as another build would: paddock's own
    // opening would refuse the newer format.
    let mark = |format: u32| {
        let (opts, path) = (rocksdb::Options::default(), dir.path().join("raftlog"));
        let db = rocksdb::DB::open_cf(&opts, &path, rocksdb::DB::list_cf(&opts, &path).unwrap()).unwrap();
        db.put_cf(db.cf_handle(CF_RAFT).unwrap(), b"format", format.to_be_bytes()).unwrap();
    };
    mark(FORMAT + 1);
    let stderr = Paddock::refused(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(stderr.contains(&format!("written by a newer paddock (storage format {}", FORMAT + 1)), "{stderr}");

    mark(FORMAT);
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(c.get_data("/kept", false).await.unwrap().0, b"v");
    });
    server.stop();
}
