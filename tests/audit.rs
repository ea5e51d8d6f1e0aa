//! The audit log (`audit.enable=true`): ZooKeeper's lines for what clients
//! change, on the server they are connected to. compat/audit.sh compares
//! them with the real ZooKeeper's for the same zkCli session.

mod common;

use common::{rt, Paddock};
use jute::{Acl, CreateMode, CreateRequest, Id, OpCode};
use paddock::client::Client;

/// The audit lines in a server log, each from its first field on, with
/// the terminal's colour codes taken out.
fn audit_lines(log: &str) -> Vec<String> {
    let plain = strip_ansi(log);
    plain.lines().filter_map(|l| l.split_once(" audit: ").map(|(_, line)| line.trim_end().to_string())).collect()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn changes_are_written_with_who_asked_and_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "audit.enable=true\n").unwrap();
    let log = dir.path().join("server.log");
    let server = Paddock::start_with_log(&dir.path().join("data"), &["--config", cfg.to_str().unwrap()], &log);
    let session = rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/a", b"x", CreateMode::Persistent).await.unwrap();
        assert!(c.create("/a", b"x", CreateMode::Persistent).await.is_err());
        c.set_data("/a", b"y", -1).await.unwrap();
        c.create("/a/e-", b"", CreateMode::EphemeralSequential).await.unwrap();
        assert!(c.delete("/nope", -1).await.is_err());
        // Reads are not written.
        c.get_data("/a", false).await.unwrap();
        // Pipelined: a write that goes through the log, then one refused
        // before it (no WRITE permission): written in request order.
        let read_only = vec![Acl { perms: jute::perms::READ, id: Id { scheme: "world".into(), id: "anyone".into() } }];
        let locked = CreateRequest { path: "/locked".into(), data: None, acl: read_only, flags: 0 };
        c.call(OpCode::Create, Some(&locked)).await.unwrap();
        let (made, refused) = tokio::join!(c.create("/p", b"", CreateMode::Persistent), c.set_data("/locked", b"x", -1));
        assert!(made.is_ok() && refused.is_err());
        let session = c.session_id;
        c.close().await.unwrap();
        session
    });
    server.stop();
    let lines = audit_lines(&std::fs::read_to_string(&log).unwrap());
    let client = format!("session={session:#x}\tuser=127.0.0.1\tip=127.0.0.1");
    let user = lines.first().and_then(|l| l.strip_prefix("user=")).and_then(|l| l.split('\t').next()).unwrap_or_default().to_string();
    assert!(!user.is_empty(), "{lines:?}");
    let want = [
        format!("user={user}\toperation=serverStart\tresult=success"),
        format!("{client}\toperation=create\tznode=/a\tznode_type=persistent\tresult=success"),
        format!("{client}\toperation=create\tznode=/a\tznode_type=persistent\tresult=failure"),
        format!("{client}\toperation=setData\tznode=/a\tresult=success"),
        format!("{client}\toperation=create\tznode=/a/e-0000000000\tznode_type=ephemeral_sequential\tresult=success"),
        format!("{client}\toperation=delete\tznode=/nope\tresult=failure"),
        format!("{client}\toperation=create\tznode=/locked\tznode_type=persistent\tresult=success"),
        format!("{client}\toperation=create\tznode=/p\tznode_type=persistent\tresult=success"),
        format!("{client}\toperation=setData\tznode=/locked\tresult=failure"),
        format!("session={session:#x}\tuser={user}\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/a/e-0000000000\tresult=success"),
        format!("user={user}\toperation=serverStop\tresult=invoked"),
    ];
    assert_eq!(lines, want);
}

#[test]
fn without_audit_enable_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Paddock::start_logging_to(&dir.path().join("data"), &log);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        c.create("/a", b"x", CreateMode::Persistent).await.unwrap();
    });
    server.stop();
    assert_eq!(audit_lines(&std::fs::read_to_string(&log).unwrap()), Vec::<String>::new());
}
