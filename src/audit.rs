//! The audit log, as ZooKeeper 3.6+ writes it with `audit.enable=true`: a
//! line for each change a client asks for, written by the server that
//! client is connected to, with who asked (the session's identities: its
//! address first, then digest users, SASL principals, certificate
//! subjects), from where, what and on which znode, and whether it was done.
//! Ephemerals deleted because their session ended are written by every
//! server as it applies the end (ZooKeeper's `DataTree.killSession` does
//! the same), under the server's own user, as are the server's start and
//! stop.
//!
//! The lines are tab-separated `key=value` pairs in ZooKeeper's order and
//! words (session, user, ip, operation, znode, znode_type, acl, result:
//! `user=127.0.0.1,alice`, `operation=create`, `znode_type=persistent`,
//! `result=success`), sent to the log under the target `audit`: successes
//! at INFO, failures at ERROR, as ZooKeeper's `Slf4jAuditLogger` does. One
//! difference: TTL creates are written too (ZooKeeper 3.8 leaves them out).

use std::net::IpAddr;
use std::sync::OnceLock;

use crate::tree::acl::AuthId;
use crate::tree::txn::{CreateKind, Txn, TxnOutcome};

/// The server's user name, once the audit log is on.
static SERVER_USER: OnceLock<String> = OnceLock::new();

/// Turns the audit log on for this process and writes the server's start.
pub fn enable() {
    let user = SERVER_USER.get_or_init(system_user);
    emit(&line(&[("user", Some(user)), ("operation", Some("serverStart"))], Outcome::Success), Outcome::Success);
}

/// Whether the audit log is on.
pub fn enabled() -> bool {
    SERVER_USER.get().is_some()
}

/// Writes the server's stop (before it stops: "invoked", as ZooKeeper).
pub fn server_stop() {
    if let Some(user) = SERVER_USER.get() {
        emit(&line(&[("user", Some(user)), ("operation", Some("serverStop"))], Outcome::Invoked), Outcome::Invoked);
    }
}

/// Writes the deletion of `path`, an ephemeral of `session`, as the session ended.
pub fn ephemeral_deleted(session: i64, path: &str) {
    if let Some(user) = SERVER_USER.get() {
        let session = format!("{session:#x}");
        let fields = [
            ("session", Some(session.as_str())),
            ("user", Some(user.as_str())),
            ("operation", Some("ephemeralZNodeDeletionOnSessionCloseOrExpire")),
            ("znode", Some(path)),
        ];
        emit(&line(&fields, Outcome::Success), Outcome::Success);
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused or failed.
    Failure,
    /// Begun (a stop).
    Invoked,
}

/// The client an action came from.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// Its session.
    pub session: i64,
    /// Its identities, in the order they were gained.
    pub ids: &'a [AuthId],
    /// Its address.
    pub ip: IpAddr,
}

/// A client's write as the audit log names it (kept from the request until
/// its outcome is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    /// ZooKeeper's operation word.
    operation: &'static str,
    /// The znode asked for (for a sequential create, without its suffix).
    path: Option<String>,
    /// For creates, the create mode in ZooKeeper's words.
    znode_type: Option<&'static str>,
    /// For setAcl, the ACL as ZooKeeper prints it.
    acl: Option<String>,
    /// For a multi, its audited operations.
    ops: Vec<Audited>,
}

impl Audited {
    /// What of `txn` the audit log writes, if anything (checks, syncs and
    /// session bookkeeping are not written).
    pub fn of(txn: &Txn) -> Option<Audited> {
        let plain =
            |operation, path: &str| Audited { operation, path: Some(path.to_string()), znode_type: None, acl: None, ops: Vec::new() };
        Some(match txn {
            Txn::Create(c) => Audited { znode_type: Some(create_mode(c.kind, c.sequential)), ..plain("create", &c.path) },
            Txn::Delete { path, .. } => plain("delete", path),
            Txn::SetData { path, .. } => plain("setData", path),
            Txn::SetAcl { path, acl, .. } => {
                let acl = acl.iter().map(|a| format!("{}:{}:{}", a.scheme, a.id, perms(a.perms))).collect::<Vec<_>>().join(",");
                Audited { acl: Some(acl), ..plain("setAcl", path) }
            }
            Txn::Multi(ops) => Audited {
                operation: "multiOperation",
                path: None,
                znode_type: None,
                acl: None,
                ops: ops.iter().filter(|op| !matches!(op, Txn::SetAcl { .. })).filter_map(Audited::of).collect(),
            },
            _ => return None,
        })
    }

    /// A reconfig, on `/zookeeper/config`.
    pub fn reconfig() -> Audited {
        Audited { operation: "reconfig", path: Some("/zookeeper/config".into()), znode_type: None, acl: None, ops: Vec::new() }
    }

    /// Writes the lines for this action ending with `outcome`: a multi that
    /// committed gives a line per create, delete and setData in it, one
    /// that failed a single `multiOperation` failure, as in ZooKeeper.
    pub fn write(&self, client: Client<'_>, outcome: &TxnOutcome) {
        for (audited, created, result) in self.lines(outcome) {
            emit(&audited.line(client, created, result), result);
        }
    }

    /// The lines for `outcome`: each audited action, the path it made (for
    /// creates), and its result.
    fn lines<'a>(&'a self, outcome: &'a TxnOutcome) -> Vec<(Audited, Option<&'a str>, Outcome)> {
        let created = |o: &'a TxnOutcome| match o {
            TxnOutcome::Created { path, .. } => Some(path.as_str()),
            _ => None,
        };
        match outcome {
            TxnOutcome::Error(_) => vec![(self.without_ops(), None, Outcome::Failure)],
            TxnOutcome::Multi(results) if self.operation == "multiOperation" => {
                if results.iter().any(|r| matches!(r, TxnOutcome::Error(_))) {
                    return vec![(self.without_ops(), None, Outcome::Failure)];
                }
                // Checks (and setACLs) are not audited: match the audited
                // ops to their results by kind, in order.
                let mut results =
                    results.iter().filter(|r| matches!(r, TxnOutcome::Created { .. } | TxnOutcome::Deleted | TxnOutcome::Stat(_)));
                self.ops.iter().map(|op| (op.clone(), results.next().and_then(created), Outcome::Success)).collect()
            }
            other => vec![(self.clone(), created(other), Outcome::Success)],
        }
    }

    fn without_ops(&self) -> Audited {
        Audited { ops: Vec::new(), ..self.clone() }
    }

    /// This action's line; `created` is the path a create made.
    fn line(&self, client: Client<'_>, created: Option<&str>, result: Outcome) -> String {
        let session = format!("{:#x}", client.session);
        let users = client.ids.iter().filter_map(user_name).collect::<Vec<_>>().join(",");
        let ip = client.ip.to_string();
        let fields = [
            ("session", Some(session.as_str())),
            ("user", Some(users.as_str()).filter(|u| !u.is_empty())),
            ("ip", Some(ip.as_str())),
            ("operation", Some(self.operation)),
            ("znode", created.or(self.path.as_deref())),
            ("znode_type", self.znode_type),
            ("acl", self.acl.as_deref()),
        ];
        line(&fields, result)
    }
}

/// The name an identity gives in the audit log (ZooKeeper's
/// `AuthenticationProvider.getUserName`): a digest identity's user without
/// its hash; the others as they are.
fn user_name(id: &AuthId) -> Option<&str> {
    let name = match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default(),
        _ => id.id.as_str(),
    };
    (!name.trim().is_empty()).then_some(name)
}

/// ZooKeeper's `CreateMode` in lower case.
fn create_mode(kind: CreateKind, sequential: bool) -> &'static str {
    match (kind, sequential) {
        (CreateKind::Persistent, false) => "persistent",
        (CreateKind::Persistent, true) => "persistent_sequential",
        (CreateKind::Ephemeral, false) => "ephemeral",
        (CreateKind::Ephemeral, true) => "ephemeral_sequential",
        (CreateKind::Container, _) => "container",
        (CreateKind::Ttl(_), false) => "persistent_with_ttl",
        (CreateKind::Ttl(_), true) => "persistent_sequential_with_ttl",
    }
}

/// Permission bits as ZooKeeper prints them (`ZKUtil.getPermString`: cdrwa).
fn perms(bits: i32) -> String {
    [(jute::perms::CREATE, 'c'), (jute::perms::DELETE, 'd'), (jute::perms::READ, 'r'), (jute::perms::WRITE, 'w'), (jute::perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The fields that have values, tab-separated, then the result.
fn line(fields: &[(&str, Option<&str>)], result: Outcome) -> String {
    let mut out = String::new();
    for (key, value) in fields {
        if let Some(value) = value {
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            out.push('\t');
        }
    }
    out.push_str("result=");
    out.push_str(match result {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Invoked => "invoked",
    });
    out
}

fn emit(line: &str, result: Outcome) {
    match result {
        Outcome::Failure => tracing::error!(target: "audit", "{line}"),
        _ => tracing::info!(target: "audit", "{line}"),
    }
}

/// The user this process runs as (Java's `user.name`).
fn system_user() -> String {
    // SAFETY: geteuid cannot fail; getpwuid_r writes only into `pwd` and
    // `buf`, which outlive the call, and `found` points into `pwd` or is null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) == 0
            && !found.is_null()
            && !pwd.pw_name.is_null()
        {
            return std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "<NA>".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::txn::CreateOp;
    use crate::tree::AclEntry;

    fn client(ids: &[AuthId]) -> Client<'_> {
        Client { session: 0x0100_00d5_a3c2_0000, ids, ip: "127.0.0.1".parse().unwrap() }
    }

    fn create(path: &str, kind: CreateKind, sequential: bool) -> Txn {
        Txn::Create(CreateOp { path: path.into(), data: None, acl: AclEntry::open(), kind, sequential })
    }

    fn created(path: &str) -> TxnOutcome {
        TxnOutcome::Created { path: path.into(), stat: jute::Stat::default() }
    }

    #[test]
    fn lines_read_as_zookeepers() {
        // As ZooKeeper 3.8 wrote them for the same requests from zkCli.
        let ip = AuthId { scheme: "ip".into(), id: "127.0.0.1".into() };
        let digest = AuthId { scheme: "digest".into(), id: "u:hash=".into() };
        let ids = [ip.clone()];
        let c = client(&ids);
        let seq = Audited::of(&create("/s", CreateKind::Persistent, true)).unwrap();
        assert_eq!(
            seq.lines(&created("/s0000000002")).iter().map(|(a, p, r)| a.line(c, *p, *r)).collect::<Vec<_>>(),
            ["session=0x10000d5a3c20000\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/s0000000002\tznode_type=persistent_sequential\tresult=success"]
        );
        let acl = Audited::of(&Txn::SetAcl { path: "/a".into(), acl: AclEntry::open(), version: -1 }).unwrap();
        assert_eq!(
            acl.line(c, None, Outcome::Success),
            "session=0x10000d5a3c20000\tuser=127.0.0.1\tip=127.0.0.1\toperation=setAcl\tznode=/a\tacl=world:anyone:cdrwa\tresult=success"
        );
        let ids = [ip, digest];
        let delete = Audited::of(&Txn::Delete { path: "/nope".into(), version: -1 }).unwrap();
        assert_eq!(
            delete.lines(&TxnOutcome::Error(-101)).iter().map(|(a, p, r)| a.line(client(&ids), *p, *r)).collect::<Vec<_>>(),
            ["session=0x10000d5a3c20000\tuser=127.0.0.1,u\tip=127.0.0.1\toperation=delete\tznode=/nope\tresult=failure"]
        );
        assert_eq!(
            line(&[("user", Some("zookeeper")), ("operation", Some("serverStop"))], Outcome::Invoked),
            "user=zookeeper\toperation=serverStop\tresult=invoked"
        );
        assert_eq!(Audited::of(&Txn::Check { path: "/a".into(), version: 1 }), None);
    }

    #[test]
    fn a_multi_is_its_changes_or_one_failure() {
        let ids = [AuthId { scheme: "ip".into(), id: "127.0.0.1".into() }];
        let multi = Audited::of(&Txn::Multi(vec![
            Txn::Check { path: "/a".into(), version: 0 },
            create("/m-", CreateKind::Ephemeral, true),
            Txn::SetData { path: "/a".into(), data: None, version: -1 },
            Txn::Delete { path: "/b".into(), version: -1 },
        ]))
        .unwrap();
        let done = TxnOutcome::Multi(vec![
            TxnOutcome::Checked,
            created("/m-0000000007"),
            TxnOutcome::Stat(jute::Stat::default()),
            TxnOutcome::Deleted,
        ]);
        let lines: Vec<String> = multi.lines(&done).iter().map(|(a, p, r)| a.line(client(&ids), *p, *r)).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].contains("operation=create\tznode=/m-0000000007\tznode_type=ephemeral_sequential\tresult=success"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("operation=setData\tznode=/a\tresult=success"), "{}", lines[1]);
        assert!(lines[2].contains("operation=delete\tznode=/b\tresult=success"), "{}", lines[2]);
        let failed = TxnOutcome::Multi(vec![TxnOutcome::Error(-103), TxnOutcome::Error(-2), TxnOutcome::Error(-2), TxnOutcome::Error(-2)]);
        let lines: Vec<String> = multi.lines(&failed).iter().map(|(a, p, r)| a.line(client(&ids), *p, *r)).collect();
        assert_eq!(lines, ["session=0x10000d5a3c20000\tuser=127.0.0.1\tip=127.0.0.1\toperation=multiOperation\tresult=failure"]);
    }

    #[test]
    fn permissions_print_as_zookeeper_does() {
        assert_eq!(perms(jute::perms::ALL), "cdrwa");
        assert_eq!(perms(jute::perms::READ | jute::perms::ADMIN), "ra");
        assert_eq!(perms(0), "");
    }
}
