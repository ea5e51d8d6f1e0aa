//! The random script: which request each step sends, on which session.
//!
//! Paths come from a small set under the run's own root, so that requests
//! collide (create on an existing node, delete of a parent, a version that
//! just moved on) as often as they succeed. Sequential names the servers
//! hand out join the set, and a few paths are malformed on purpose: the
//! point is to see both servers refuse the same things with the same code.

use bytes::Bytes;
use jute::{
    perms, Acl, AddWatchRequest, AuthPacket, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ExistsRequest,
    GetAclRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, Id, MultiOp,
    MultiRequest, OpCode, Record, RemoveWatchesRequest, SetAclRequest, SetDataRequest, SetWatches2, SyncRequest,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// The users the authenticated sessions log in as (digest scheme).
pub const USERS: [(&str, &str); 2] = [("alice", "alice-pw"), ("bob", "bob-pw")];

/// Sessions per server: slot 0 has no credentials, slots 1 and 2 log in as `USERS`.
pub const SESSIONS: usize = 3;

/// One step of the script.
#[derive(Debug, Clone)]
pub enum Step {
    /// A request, sent on session `slot`.
    Request {
        /// Which session sends it.
        slot: usize,
        /// The op code.
        op: OpCode,
        /// The request's body, encoded.
        body: Bytes,
        /// What it is, for the report.
        what: String,
    },
    /// Session `slot` closes (its ephemerals go) and a new one takes the slot.
    Reopen {
        /// Which session.
        slot: usize,
    },
    /// Session `slot`'s connection drops and the session resumes on a new
    /// one: its ephemerals stay, its watches and credentials do not (the
    /// client logs in again, and may set watches again).
    Reconnect {
        /// Which session.
        slot: usize,
        /// The watches the client sets again on the new connection, as a
        /// client does after a reconnect, if any.
        rewatch: Option<Rewatch>,
    },
}

/// A setWatches sent after a reconnect. Its relative zxid is each server's
/// own: the last zxid that server had handed out `since` steps ago, so the
/// watches fire for the same changes on both.
#[derive(Debug, Clone)]
pub struct Rewatch {
    /// Where the relative zxid comes from.
    pub since: Since,
    /// setWatches2 (105) rather than setWatches (101), which has no
    /// persistent watches.
    pub v2: bool,
    /// The paths; `relative_zxid` is filled in per server.
    pub watches: SetWatches2,
}

impl Rewatch {
    /// The request for the report (the relative zxid is each server's own).
    pub fn describe(&self) -> String {
        let w = &self.watches;
        let op = if self.v2 { "setWatches2" } else { "setWatches" };
        let mut text =
            format!("{op} since {:?}: data {:?}, exist {:?}, child {:?}", self.since, w.data_watches, w.exist_watches, w.child_watches);
        if self.v2 {
            text.push_str(&format!(", persistent {:?}, recursive {:?}", w.persistent_watches, w.persistent_recursive_watches));
        }
        text
    }
}

/// Which zxid a setWatches names as the last one its client saw.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    /// Zero: every watched node changed since.
    Start,
    /// The server's last zxid as of this many steps ago (0: the step before this one).
    StepsAgo(usize),
}

/// The kinds of watch ZooKeeper 3.8 keeps one of per session and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One-shot (exists, getData, getChildren).
    Standard,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    Recursive,
}

/// Draws steps for one run under `root`.
pub struct Script {
    rng: StdRng,
    root: String,
    /// Paths a step may name: the fixed set, then names the servers created.
    paths: Vec<String>,
    fixed: usize,
    /// The watch mode each session first asked for on each path. ZooKeeper
    /// 3.8 keeps one mode per session and path, the last one asked for
    /// (a one-shot read after addWatch makes the persistent watch one-shot;
    /// ZOOKEEPER-4466, changed in 3.9), where paddock keeps each: the
    /// script never mixes modes on one path.
    modes: std::collections::HashMap<(usize, String), Mode>,
}

impl Script {
    /// A script under `root` (which the run creates first), seeded by `rng`.
    pub fn new(rng: StdRng, root: &str) -> Script {
        let paths: Vec<String> = ["", "/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/c"].iter().map(|p| format!("{root}{p}")).collect();
        let fixed = paths.len();
        Script { rng, root: root.to_string(), paths, fixed, modes: Default::default() }
    }

    /// Remembers a path a server created (a sequential name), so later steps use it.
    pub fn learn(&mut self, path: &str) {
        if path.starts_with(&self.root) && !self.paths.iter().any(|p| p == path) {
            // Keep the set small: old sequential names drop out.
            if self.paths.len() >= self.fixed + 24 {
                self.paths.remove(self.fixed);
            }
            self.paths.push(path.to_string());
        }
    }

    /// True if session `slot` may ask for a `mode` watch on `path` (and
    /// remembers that it did).
    fn may_watch(&mut self, slot: usize, path: &str, mode: Mode) -> bool {
        *self.modes.entry((slot, path.to_string())).or_insert(mode) == mode
    }

    fn path(&mut self) -> String {
        let r = self.rng.gen_range(0..100);
        if r < 4 {
            // Malformed or special paths: the server's own validation.
            let root = &self.root;
            let odd = [
                format!("{root}/"),
                format!("{root}//a"),
                format!("{root}/./a"),
                format!("{root}/a/.."),
                format!("{root}/a\u{1}"),
                "relative".to_string(),
                String::new(),
                "/".to_string(),
                "/zookeeper".to_string(),
                "/zookeeper/quota".to_string(),
            ];
            return odd.choose(&mut self.rng).cloned().unwrap_or_default();
        }
        if r < 11 {
            // Quota nodes for the run's root and /a (nested, as the server
            // allows): their stats follow every change below.
            let target = if self.rng.gen_bool(0.5) { String::new() } else { "/a".to_string() };
            let node =
                ["", "", "/zookeeper_limits", "/zookeeper_stats", "/zookeeper_stats"].choose(&mut self.rng).copied().unwrap_or_default();
            return format!("/zookeeper/quota{}{target}{node}", self.root);
        }
        if r < 15 {
            // A child of a created sequential node (often an ephemeral: no children allowed).
            let base = self.paths.choose(&mut self.rng).cloned().unwrap_or_default();
            return format!("{base}/k");
        }
        self.paths.choose(&mut self.rng).cloned().unwrap_or_default()
    }

    /// Data to write to `path`. Under `/zookeeper/quota`, only what
    /// setquota writes: ZooKeeper 3.8.0 parses a quota node's data on every
    /// later change below its path, and junk there (a missing value, a
    /// number it cannot read, null data) makes it throw applying those
    /// changes and close the client's connection.
    fn data(&mut self, path: &str) -> Option<Vec<u8>> {
        if path.starts_with("/zookeeper/quota/") {
            let quota =
                ["count=3,bytes=-1", "count=-1,bytes=40", "count=2,bytes=10,countHardLimit=4", "count=0,bytes=0=;byteHardLimit=9", ""];
            return quota.choose(&mut self.rng).map(|q| q.as_bytes().to_vec());
        }
        match self.rng.gen_range(0..6) {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(b"v1".to_vec()),
            3 => Some(b"v2".to_vec()),
            _ => {
                let n = self.rng.gen_range(0..24);
                Some((0..n).map(|_| self.rng.gen()).collect())
            }
        }
    }

    fn set_data_request(&mut self) -> SetDataRequest {
        let path = self.path();
        SetDataRequest { data: self.data(&path), path, version: self.version() }
    }

    fn version(&mut self) -> i32 {
        if self.rng.gen_bool(0.5) {
            -1
        } else {
            self.rng.gen_range(-2..4)
        }
    }

    fn acl(&mut self) -> Vec<Acl> {
        let world = |p| Acl::new(p, Id::new("world", "anyone"));
        let digest = |user: &str, pw: &str| crate::ops::auth::digest_id(&format!("{user}:{pw}"));
        match self.rng.gen_range(0..12) {
            0..=4 => vec![world(perms::ALL)],
            5 => vec![world(perms::READ)],
            6 => vec![Acl::new(perms::ALL, Id::new("auth", ""))],
            7 => vec![Acl::new(perms::ALL, Id::new("digest", digest(USERS[0].0, USERS[0].1))), world(perms::READ)],
            8 => vec![Acl::new(perms::ALL, Id::new("ip", "127.0.0.1"))],
            9 => vec![world(perms::READ | perms::CREATE | perms::DELETE)],
            10 => vec![],
            _ => vec![Acl::new(perms::ALL, Id::new("nosuchscheme", "x"))],
        }
    }

    /// Flags for a create or create2: persistent or ephemeral, sequential or
    /// not, and now and then the container flag, which makes a container
    /// inside a multi and a persistent node outside one (ZooKeeper 3.8).
    fn create_flags(&mut self) -> i32 {
        if self.rng.gen_ratio(1, 10) {
            4
        } else {
            self.rng.gen_range(0..4)
        }
    }

    fn create_request(&mut self, flags: i32) -> CreateRequest {
        let path = self.path();
        CreateRequest { data: self.data(&path), path, acl: self.acl(), flags }
    }

    /// A TTL create: persistent (5) or persistent sequential (6); the TTLs
    /// outlive any run (or are invalid), so no node expires mid-run. Only
    /// TTL modes, as clients send: ZooKeeper 3.8 turns a createTTL with
    /// another mode into a plain create inside a multi (`write_op` sends some
    /// there), and outside one logs a transaction its own tree then fails to
    /// apply.
    fn ttl_request(&mut self) -> CreateTtlRequest {
        let ttl = *[3_600_000, 86_400_000, 0, -5].choose(&mut self.rng).unwrap_or(&3_600_000);
        let flags = if self.rng.gen_bool(0.5) { 5 } else { 6 };
        let path = self.path();
        CreateTtlRequest { data: self.data(&path), path, acl: self.acl(), flags, ttl }
    }

    fn write_op(&mut self) -> MultiOp {
        match self.rng.gen_range(0..9) {
            0 | 1 => {
                let flags = self.create_flags();
                MultiOp::Create(self.create_request(flags))
            }
            2 => {
                let flags = self.create_flags();
                MultiOp::Create2(self.create_request(flags))
            }
            // Inside a multi ZooKeeper rebuilds every create from its flags, so
            // a createContainer or createTTL with another mode is a plain create
            // (or a container, for the container flag).
            3 => {
                let flags = if self.rng.gen_ratio(1, 5) { self.rng.gen_range(0..4) } else { 4 };
                MultiOp::CreateContainer(self.create_request(flags))
            }
            4 => {
                let mut ttl = self.ttl_request();
                if self.rng.gen_ratio(1, 5) {
                    ttl.flags = self.rng.gen_range(0..5);
                }
                MultiOp::CreateTtl(ttl)
            }
            5 => MultiOp::Delete(DeleteRequest { path: self.path(), version: self.version() }),
            6 | 7 => MultiOp::SetData(self.set_data_request()),
            _ => MultiOp::Check(CheckVersionRequest { path: self.path(), version: self.version() }),
        }
    }

    /// A multiRead's op. It may ask for a watch, which ZooKeeper 3.8
    /// ignores in a multiRead (so no watch mode is taken on the path).
    fn read_op(&mut self) -> MultiOp {
        let path = self.path();
        let watch = self.rng.gen_bool(0.3);
        if self.rng.gen_bool(0.5) {
            MultiOp::GetData(GetDataRequest { path, watch })
        } else {
            MultiOp::GetChildren(GetChildrenRequest { path, watch })
        }
    }

    /// The watches a reconnecting client sets again: valid paths only (a
    /// client sends those it watched), each in one mode per session.
    fn rewatch(&mut self, slot: usize) -> Rewatch {
        let v2 = self.rng.gen_bool(0.5);
        let since = match self.rng.gen_range(0..4) {
            0 => Since::Start,
            1 => Since::StepsAgo(0),
            _ => Since::StepsAgo(self.rng.gen_range(1..60)),
        };
        let mut w = SetWatches2::default();
        for _ in 0..self.rng.gen_range(1..7) {
            let mut path = self.paths.choose(&mut self.rng).cloned().unwrap_or_default();
            if self.rng.gen_bool(0.1) {
                path.push_str("/k");
            }
            let kind = self.rng.gen_range(0..if v2 { 5 } else { 3 });
            let mode = match kind {
                0..=2 => Mode::Standard,
                3 => Mode::Persistent,
                _ => Mode::Recursive,
            };
            if !self.may_watch(slot, &path, mode) {
                continue;
            }
            let list = match kind {
                0 => &mut w.data_watches,
                1 => &mut w.exist_watches,
                2 => &mut w.child_watches,
                3 => &mut w.persistent_watches,
                _ => &mut w.persistent_recursive_watches,
            };
            if !list.contains(&path) {
                list.push(path);
            }
        }
        Rewatch { since, v2, watches: w }
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let slot = self.rng.gen_range(0..SESSIONS);
        match self.rng.gen_range(0..200) {
            0 => return Step::Reopen { slot },
            1 | 2 => {
                let rewatch = self.rng.gen_bool(0.8).then(|| self.rewatch(slot));
                return Step::Reconnect { slot, rewatch };
            }
            _ => {}
        }
        let (op, body, what) = match self.rng.gen_range(0..100) {
            0..=17 => {
                let flags = self.create_flags();
                let op = if self.rng.gen_bool(0.5) { OpCode::Create } else { OpCode::Create2 };
                encoded(op, &self.create_request(flags))
            }
            18..=20 => encoded(OpCode::CreateContainer, &self.create_request(4)),
            21..=22 => encoded(OpCode::CreateTtl, &self.ttl_request()),
            23..=32 => encoded(OpCode::Delete, &DeleteRequest { path: self.path(), version: self.version() }),
            33..=42 => encoded(OpCode::SetData, &self.set_data_request()),
            r @ 43..=61 => {
                // Reads that may leave a one-shot watch.
                let path = self.path();
                let watch = self.rng.gen_bool(0.3) && self.may_watch(slot, &path, Mode::Standard);
                match r {
                    43..=48 => encoded(OpCode::Exists, &ExistsRequest { path, watch }),
                    49..=54 => encoded(OpCode::GetData, &GetDataRequest { path, watch }),
                    55..=58 => encoded(OpCode::GetChildren, &GetChildrenRequest { path, watch }),
                    _ => encoded(OpCode::GetChildren2, &GetChildren2Request { path, watch }),
                }
            }
            62..=63 => encoded(OpCode::GetAcl, &GetAclRequest { path: self.path() }),
            64..=67 => encoded(OpCode::SetAcl, &SetAclRequest { path: self.path(), acl: self.acl(), version: self.version() }),
            68..=77 => {
                let n = self.rng.gen_range(1..5);
                // Now and then a read among the writes, which the server refuses.
                let ops = (0..n).map(|_| if self.rng.gen_bool(0.03) { self.read_op() } else { self.write_op() }).collect();
                encoded(OpCode::Multi, &MultiRequest { ops })
            }
            78..=80 => {
                let n = self.rng.gen_range(1..4);
                // Now and then a write among the reads, which the server refuses.
                let ops = (0..n).map(|_| if self.rng.gen_bool(0.05) { self.write_op() } else { self.read_op() }).collect();
                encoded(OpCode::MultiRead, &MultiRequest { ops })
            }
            81..=82 => encoded(OpCode::Sync, &SyncRequest { path: self.path() }),
            83..=84 => {
                // Not "": ZooKeeper's tree holds the root under both "" and
                // "/", and its count for "" includes the second key.
                let path = Some(self.path()).filter(|p| !p.is_empty()).unwrap_or_else(|| "/".to_string());
                encoded(OpCode::GetAllChildrenNumber, &GetAllChildrenNumberRequest { path })
            }
            85..=86 => {
                let prefix_path = if self.rng.gen_bool(0.5) { self.root.clone() } else { self.path() };
                encoded(OpCode::GetEphemerals, &GetEphemeralsRequest { prefix_path })
            }
            87..=90 => {
                let (path, mode) = (self.path(), self.rng.gen_range(0..2));
                if !self.may_watch(slot, &path, if mode == 0 { Mode::Persistent } else { Mode::Recursive }) {
                    return Step::Request { slot, op: OpCode::WhoAmI, body: Bytes::new(), what: "whoAmI".to_string() };
                }
                encoded(OpCode::AddWatch, &AddWatchRequest { path, mode })
            }
            91..=93 => encoded(OpCode::RemoveWatches, &RemoveWatchesRequest { path: self.path(), watch_type: self.rng.gen_range(1..4) }),
            94 => {
                // More credentials on this connection: ACLs with `auth`
                // then name every digest user it has proven. Also the ones
                // ZooKeeper takes that look wrong: digest credentials
                // without a colon (the whole text is the user) and an ip
                // auth (the connection's own address, held already).
                let (scheme, creds) = match self.rng.gen_range(0..6) {
                    0 => ("digest", "dave".to_string()),
                    1 => ("ip", "10.1.2.3".to_string()),
                    _ => {
                        let (user, pw) = *[USERS[0], USERS[1], ("carol", "carol-pw")].choose(&mut self.rng).unwrap_or(&USERS[0]);
                        ("digest", format!("{user}:{pw}"))
                    }
                };
                let what = format!("addAuth {scheme} {}", creds.split(':').next().unwrap_or_default());
                let r = AuthPacket { auth_type: 0, scheme: scheme.into(), auth: Some(creds.into_bytes()) };
                (OpCode::Auth, r.to_bytes(), what)
            }
            // No checkWatches: ZooKeeper 3.8's answers OK when any session
            // watches the path (WatchManager.containsWatcher). No standalone
            // check (op 13): ZooKeeper 3.8 takes it, then its sync thread
            // dies on the transaction, taking the server down.
            _ => (OpCode::WhoAmI, Bytes::new(), "whoAmI".to_string()),
        };
        Step::Request { slot, op, body, what }
    }
}

/// A request's op, body and description.
fn encoded<R: Record + std::fmt::Debug>(op: OpCode, r: &R) -> (OpCode, Bytes, String) {
    let what = match op {
        OpCode::Multi | OpCode::MultiRead => format!("{} {r:?}", op.name()),
        _ => format!("{r:?}"),
    };
    (op, r.to_bytes(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn describe(step: &Step) -> String {
        match step {
            Step::Request { slot, what, .. } => format!("{slot} {what}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_seed_repeats_its_script_and_modes_never_mix_on_a_path() {
        let script = |seed| Script::new(StdRng::seed_from_u64(seed), "/r");
        let (mut a, mut b, mut c) = (script(7), script(7), script(8));
        let (mut same, mut other) = (true, false);
        for _ in 0..2000 {
            let (x, y, z) = (describe(&a.next_step()), describe(&b.next_step()), describe(&c.next_step()));
            same &= x == y;
            other |= x != z;
        }
        assert!(same, "--seed must repeat a run");
        assert!(other, "another seed, another script");
        // Each session and path got one mode of watch only (ZooKeeper 3.8
        // keeps one): from reads, addWatch and setWatches.
        let mut s = script(9);
        let mut seen: std::collections::HashMap<(usize, String), &str> = Default::default();
        let mut watched: std::collections::HashMap<&str, usize> = Default::default();
        for _ in 0..8000 {
            let (slot, asked): (usize, Vec<(String, &str)>) = match s.next_step() {
                Step::Request { slot, what, .. } if what.starts_with("AddWatchRequest") => {
                    let mode = if what.contains("mode: 0") { "persistent" } else { "recursive" };
                    (slot, vec![(what.split('"').nth(1).unwrap_or_default().to_string(), mode)])
                }
                // A multi's or multiRead's read ops set no watch.
                Step::Request { what, .. } if what.starts_with("multi") => continue,
                Step::Request { slot, what, .. } => {
                    // Every `path: "..", watch: true` in the request.
                    let asked = what
                        .split("path: \"")
                        .skip(1)
                        .filter_map(|rest| rest.split_once('"'))
                        .filter(|(_, after)| after.starts_with(", watch: true"))
                        .map(|(path, _)| (path.to_string(), "standard"))
                        .collect();
                    (slot, asked)
                }
                Step::Reconnect { slot, rewatch: Some(r) } => {
                    let w = r.watches;
                    let lists = [
                        (w.data_watches, "standard"),
                        (w.exist_watches, "standard"),
                        (w.child_watches, "standard"),
                        (w.persistent_watches, "persistent"),
                        (w.persistent_recursive_watches, "recursive"),
                    ];
                    (slot, lists.into_iter().flat_map(|(paths, mode)| paths.into_iter().map(move |p| (p, mode))).collect())
                }
                _ => continue,
            };
            for (path, mode) in asked {
                *watched.entry(mode).or_default() += 1;
                assert_eq!(*seen.entry((slot, path.clone())).or_insert(mode), mode, "{path}");
            }
        }
        assert_eq!(watched.len(), 3, "every mode is asked for: {watched:?}");
    }
}
