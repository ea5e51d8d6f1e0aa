//! ZooKeeper's tree as ZooKeeper itself restores it: a snapshot, then every
//! logged transaction after it applied the way `DataTree.processTxn` does.
//!
//! A snapshot is fuzzy (taken while transactions kept being applied), so a
//! replayed transaction may already be in it: errors (a create of a node
//! that exists, a delete of one that does not) are ignored, as ZooKeeper
//! ignores them when it restores, and stats are kept in ZooKeeper's stored
//! form (`cversion` counts creations) until [`ZkTree::into_nodes`] turns
//! them into paddock's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jute::txn::{
    CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn, CreateTxn, DeleteTxn, MultiTxn, SetAclTxn, SetDataTxn,
    StatPersisted, TxnHeader,
};
use jute::{OpCode, Record};

use super::files::{Logged, Snapshot, OPEN_ACL_KEY};
use super::ImportError;
use crate::tree::{path, quota, AclEntry, NodeKind, NodeStat, StoredNode, MAX_TTL_MS};

/// `ephemeralOwner` of a container node.
const CONTAINER_OWNER: i64 = i64::MIN;
/// The high byte that marks an extended `ephemeralOwner` (a TTL node).
const EXTENDED_MASK: u64 = 0xFF00_0000_0000_0000;
/// The bits between the marker and the value, zero for a TTL.
const RESERVED_MASK: u64 = 0x00FF_FF00_0000_0000;
/// ZooKeeper's own node, rewritten by every ensemble: paddock keeps its own.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// A node as ZooKeeper stores it.
#[derive(Debug, Clone)]
struct ZkNode {
    data: Option<Vec<u8>>,
    acl: Vec<AclEntry>,
    stat: StatPersisted,
    children: BTreeSet<String>,
}

/// ZooKeeper's tree and sessions, being restored.
#[derive(Debug, Default)]
pub struct ZkTree {
    nodes: HashMap<String, ZkNode>,
    /// Each session's ephemerals.
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Sessions and their timeouts, ms.
    sessions: BTreeMap<i64, i32>,
    /// The last zxid applied.
    last_zxid: i64,
    /// Transactions replayed.
    pub replayed: usize,
}

/// Why one transaction changed nothing (ignored, as in ZooKeeper's restore).
#[derive(Debug)]
enum Skip {
    NoNode,
    NodeExists,
    /// Not a znode path: nothing ZooKeeper could have created.
    BadPath,
}

/// A node's parent and name; none for the root.
fn split(p: &str) -> Option<(&str, &str)> {
    (p != "/").then(|| (path::parent(p), path::basename(p)))
}

impl ZkTree {
    /// The tree and sessions a snapshot holds.
    pub fn from_snapshot(snap: Snapshot) -> Result<ZkTree, ImportError> {
        let mut tree = ZkTree { last_zxid: snap.zxid, ..ZkTree::default() };
        tree.sessions.extend(snap.sessions);
        let bad = |what: String| ImportError::Corrupt { path: snap.path.clone(), what };
        for (path, node) in snap.nodes {
            if path::validate(&path).is_err() {
                return Err(bad(format!("{path:?} is not a znode path")));
            }
            let acl = match node.acl {
                OPEN_ACL_KEY => AclEntry::open(),
                key => snap.acls.get(&key).cloned().ok_or_else(|| bad(format!("{path}: ACL key {key} not in the table")))?,
            };
            if let Some((parent, name)) = split(&path) {
                let p = tree.nodes.get_mut(parent).ok_or_else(|| bad(format!("{path}: parent not before it")))?;
                p.children.insert(name.to_string());
            }
            tree.track_ephemeral(&path, node.stat.ephemeral_owner);
            tree.nodes.insert(path, ZkNode { data: node.data, acl, stat: node.stat, children: BTreeSet::new() });
        }
        if !tree.nodes.contains_key("/") {
            return Err(bad("no root node".into()));
        }
        Ok(tree)
    }

    /// The last zxid applied.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Records `path` under its owner if it is a session's ephemeral.
    fn track_ephemeral(&mut self, path: &str, owner: i64) {
        if owner != 0 && kind_of(owner) == NodeKind::Ephemeral(owner) {
            self.ephemerals.entry(owner).or_default().insert(path.to_string());
        }
    }

    /// Applies one logged transaction.
    pub fn replay(&mut self, t: &Logged) -> Result<(), ImportError> {
        let h = &t.header;
        self.apply(h, h.kind, &t.body, true)?;
        self.last_zxid = self.last_zxid.max(h.zxid);
        self.replayed += 1;
        Ok(())
    }

    /// Applies one transaction (or one op of a multi) of type `kind`.
    fn apply(&mut self, h: &TxnHeader, kind: i32, body: &[u8], top: bool) -> Result<(), ImportError> {
        let bad = |e: jute::DecodeError| ImportError::Txn { zxid: h.zxid, what: e.to_string() };
        let op = OpCode::from_i32(kind);
        let skipped = match op {
            Some(OpCode::Create | OpCode::Create2) => {
                let c = CreateTxn::from_bytes(body).map_err(bad)?;
                let owner = if c.ephemeral { h.client_id } else { 0 };
                let result = self.create(&c.path, c.data, &c.acl, owner, c.parent_c_version, h);
                // A create replayed over a node the fuzzy snapshot already
                // has still brings its parent's child count up to date.
                if top && op == Some(OpCode::Create) && matches!(result, Err(Skip::NodeExists)) {
                    if let Some((parent, _)) = split(&c.path) {
                        self.raise_cversion(parent, c.parent_c_version, h.zxid);
                    }
                }
                result
            }
            Some(OpCode::CreateContainer) => {
                let c = CreateContainerTxn::from_bytes(body).map_err(bad)?;
                self.create(&c.path, c.data, &c.acl, CONTAINER_OWNER, c.parent_c_version, h)
            }
            Some(OpCode::CreateTtl) => {
                let c = CreateTtlTxn::from_bytes(body).map_err(bad)?;
                let owner = (EXTENDED_MASK | (c.ttl as u64 & MAX_TTL_MS as u64)) as i64;
                self.create(&c.path, c.data, &c.acl, owner, c.parent_c_version, h)
            }
            Some(OpCode::Delete | OpCode::DeleteContainer) => self.delete(&DeleteTxn::from_bytes(body).map_err(bad)?.path, h.zxid),
            Some(OpCode::SetData | OpCode::Reconfig) => {
                let s = SetDataTxn::from_bytes(body).map_err(bad)?;
                self.node(&s.path).map(|n| {
                    n.data = s.data;
                    n.stat.version = s.version;
                    n.stat.mzxid = h.zxid;
                    n.stat.mtime = h.time;
                })
            }
            Some(OpCode::SetAcl) => {
                let s = SetAclTxn::from_bytes(body).map_err(bad)?;
                self.node(&s.path).map(|n| {
                    n.acl = s.acl.iter().map(AclEntry::from_wire).collect();
                    n.stat.aversion = s.version;
                })
            }
            Some(OpCode::CreateSession) => {
                let s = CreateSessionTxn::from_bytes(body).map_err(bad)?;
                self.sessions.insert(h.client_id, s.time_out);
                Ok(())
            }
            Some(OpCode::CloseSession) => {
                // Since 3.6 the body lists the ephemerals; before, it is empty.
                let listed = CloseSessionTxn::from_bytes(body).map(|c| c.paths2_delete).unwrap_or_default();
                self.close_session(h.client_id, listed, h.zxid);
                Ok(())
            }
            Some(OpCode::Multi) => {
                let m = MultiTxn::from_bytes(body).map_err(bad)?;
                // A multi with a failed op was logged with every op an error:
                // it changed nothing.
                if m.txns.iter().all(|op| op.kind != OpCode::Error.code()) {
                    for op in &m.txns {
                        self.apply(h, op.kind, &op.data, false)?;
                    }
                }
                Ok(())
            }
            Some(OpCode::Error | OpCode::Check) => Ok(()),
            _ => return Err(ImportError::UnknownTxn { zxid: h.zxid, kind }),
        };
        if let Err(skip) = skipped {
            tracing::debug!(zxid = h.zxid, kind, "replayed transaction changed nothing: {skip:?}");
        }
        Ok(())
    }

    fn node(&mut self, path: &str) -> Result<&mut ZkNode, Skip> {
        self.nodes.get_mut(path).ok_or(Skip::NoNode)
    }

    fn create(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: &[jute::Acl],
        owner: i64,
        parent_c_version: i32,
        h: &TxnHeader,
    ) -> Result<(), Skip> {
        path::validate(path).map_err(|_| Skip::BadPath)?;
        let (parent, name) = split(path).ok_or(Skip::NodeExists)?;
        let acl: Vec<AclEntry> = acl.iter().map(AclEntry::from_wire).collect();
        if let Some(existing) = self.nodes.get_mut(path) {
            // ZooKeeper takes the replayed ACL even then.
            existing.acl = acl;
            return Err(Skip::NodeExists);
        }
        let p = self.node(parent)?;
        let cversion = if parent_c_version == -1 { p.stat.cversion + 1 } else { parent_c_version };
        // A node created and deleted within the fuzzy range must not take
        // its parent's count back.
        if cversion > p.stat.cversion {
            p.stat.cversion = cversion;
            p.stat.pzxid = h.zxid;
        }
        p.children.insert(name.to_string());
        let stat = StatPersisted {
            czxid: h.zxid,
            mzxid: h.zxid,
            pzxid: h.zxid,
            ctime: h.time,
            mtime: h.time,
            ephemeral_owner: owner,
            ..StatPersisted::default()
        };
        self.track_ephemeral(path, owner);
        self.nodes.insert(path.to_string(), ZkNode { data, acl, stat, children: BTreeSet::new() });
        Ok(())
    }

    fn raise_cversion(&mut self, path: &str, cversion: i32, zxid: i64) {
        if let Some(n) = self.nodes.get_mut(path) {
            let cversion = if cversion == -1 { n.stat.cversion + 1 } else { cversion };
            if cversion > n.stat.cversion {
                n.stat.cversion = cversion;
                n.stat.pzxid = zxid;
            }
        }
    }

    fn delete(&mut self, path: &str, zxid: i64) -> Result<(), Skip> {
        let (parent, name) = split(path).ok_or(Skip::NoNode)?;
        let node = self.nodes.remove(path).ok_or(Skip::NoNode)?;
        if let Some(p) = self.nodes.get_mut(parent) {
            p.children.remove(name);
            if zxid > p.stat.pzxid {
                p.stat.pzxid = zxid;
            }
        }
        let owner = node.stat.ephemeral_owner;
        if let Some(set) = self.ephemerals.get_mut(&owner) {
            set.remove(path);
        }
        Ok(())
    }

    fn close_session(&mut self, id: i64, listed: Vec<String>, zxid: i64) {
        self.sessions.remove(&id);
        let mine = self.ephemerals.remove(&id).unwrap_or_default();
        for path in listed.iter().chain(mine.iter().filter(|p| !listed.contains(p))) {
            let _ = self.delete(path, zxid);
        }
    }

    /// The end of ZooKeeper's restore: ephemerals of sessions that no
    /// longer exist are deleted (as `ZooKeeperServer.loadData` does), and
    /// every quota's usage is counted afresh (as `DataTree.setupQuota`).
    pub fn finish(&mut self) {
        let dead: Vec<i64> = self.ephemerals.keys().filter(|id| !self.sessions.contains_key(id)).copied().collect();
        for id in dead {
            self.close_session(id, Vec::new(), self.last_zxid);
        }
        let stats: Vec<(String, String)> =
            self.nodes.keys().filter_map(|p| quota::stats_target(p).map(|t| (p.clone(), t.to_string()))).collect();
        for (stats_path, target) in stats {
            let (count, bytes) = self.usage(&target);
            if let Some(n) = self.nodes.get_mut(&stats_path) {
                n.data = Some(quota::format(count, bytes).into_bytes());
            }
        }
    }

    /// Nodes and data bytes in the subtree at `path` (itself included).
    fn usage(&self, path: &str) -> (i64, i64) {
        let Some(node) = self.nodes.get(path) else { return (0, 0) };
        let mine = (1, node.data.as_ref().map_or(0, |d| d.len() as i64));
        node.children.iter().fold(mine, |(c, b), name| {
            let (cc, cb) = self.usage(&path::join(path, name));
            (c + cc, b + cb)
        })
    }

    /// Sessions and their timeouts, ms.
    pub fn sessions(&self) -> &BTreeMap<i64, i32> {
        &self.sessions
    }

    /// Every node (but `/zookeeper/config`) in paddock's stored form,
    /// parents before children.
    pub fn into_nodes(self) -> Vec<(String, StoredNode<'static>)> {
        let mut out: Vec<(String, StoredNode<'static>)> = self
            .nodes
            .into_iter()
            .filter(|(path, _)| path != CONFIG_NODE)
            .map(|(path, n)| {
                let s = n.stat;
                // paddock keeps the cversion a client sees (creations plus
                // deletions), and the creations apart as the next sequence.
                let stat = NodeStat {
                    czxid: s.czxid,
                    mzxid: s.mzxid,
                    pzxid: s.pzxid,
                    ctime: s.ctime,
                    mtime: s.mtime,
                    version: s.version,
                    cversion: s.cversion.wrapping_mul(2).wrapping_sub(n.children.len() as i32),
                    aversion: s.aversion,
                    seq: s.cversion,
                };
                let node = StoredNode {
                    data: n.data.map(std::borrow::Cow::Owned),
                    acl: std::borrow::Cow::Owned(n.acl),
                    kind: kind_of(s.ephemeral_owner),
                    stat,
                    seq: s.cversion,
                };
                (path, node)
            })
            .collect();
        // A parent's path is a prefix of its children's, so it sorts first.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// What an `ephemeralOwner` says a node is.
fn kind_of(owner: i64) -> NodeKind {
    let bits = owner as u64;
    match owner {
        0 => NodeKind::Persistent,
        CONTAINER_OWNER => NodeKind::Container,
        _ if bits & EXTENDED_MASK == EXTENDED_MASK && bits & RESERVED_MASK == 0 => NodeKind::Ttl((bits & !EXTENDED_MASK) as i64),
        _ => NodeKind::Ephemeral(owner),
    }
}

/// The `ephemeralOwner` ZooKeeper stores for a node of `kind` (the
/// inverse of [`kind_of`]).
pub fn owner_of(kind: NodeKind) -> i64 {
    match kind {
        NodeKind::Persistent => 0,
        NodeKind::Ephemeral(owner) => owner,
        NodeKind::Container => CONTAINER_OWNER,
        NodeKind::Ttl(ms) => (EXTENDED_MASK | (ms as u64 & MAX_TTL_MS as u64)) as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn header(zxid: i64, kind: OpCode, client_id: i64) -> TxnHeader {
        TxnHeader { client_id, cxid: 1, zxid, time: zxid * 10, kind: kind.code() }
    }

    fn logged(zxid: i64, kind: OpCode, client_id: i64, body: &impl Record) -> Logged {
        Logged { header: header(zxid, kind, client_id), body: body.to_bytes().to_vec() }
    }

    fn create(path: &str, parent_c_version: i32, ephemeral: bool) -> CreateTxn {
        CreateTxn { path: path.into(), data: Some(b"v".to_vec()), acl: jute::Acl::open_unsafe(), ephemeral, parent_c_version }
    }

    fn fresh() -> ZkTree {
        let root = jute::txn::SnapshotNode { data: None, acl: -1, stat: StatPersisted::default() };
        let snap = Snapshot { zxid: 0, nodes: vec![("/".into(), root)], ..Snapshot::default() };
        ZkTree::from_snapshot(snap).expect("snapshot")
    }

    fn stored(tree: ZkTree, path: &str) -> StoredNode<'static> {
        tree.into_nodes().into_iter().find(|(p, _)| p == path).map(|(_, n)| n).expect("node")
    }

    #[test]
    fn replay_keeps_zookeepers_stats_and_reports_cversion_as_changes() {
        let mut t = fresh();
        t.replay(&logged(1, OpCode::Create, 0, &create("/a", 1, false))).expect("replay");
        t.replay(&logged(2, OpCode::Create, 0, &create("/a/x", 1, false))).expect("replay");
        t.replay(&logged(3, OpCode::Create, 0, &create("/a/y", 2, false))).expect("replay");
        t.replay(&logged(4, OpCode::Delete, 0, &DeleteTxn { path: "/a/x".into() })).expect("replay");
        let set = SetDataTxn { path: "/a/y".into(), data: Some(b"w".to_vec()), version: 1 };
        t.replay(&logged(5, OpCode::SetData, 0, &set)).expect("replay");
        // Replayed again (a fuzzy snapshot): ignored.
        t.replay(&logged(3, OpCode::Create, 0, &create("/a/y", 2, false))).expect("replay");
        assert_eq!(t.last_zxid(), 5);
        let a = stored(t, "/a");
        // Two creations, one deletion: three changes; next sequence 2.
        assert_eq!((a.stat.cversion, a.seq, a.stat.pzxid, a.stat.czxid), (3, 2, 4, 1));
        let mut t = fresh();
        t.replay(&logged(1, OpCode::Create, 0, &create("/a", 1, false))).expect("replay");
        t.replay(&logged(2, OpCode::SetData, 0, &set)).expect("replay");
        let y = stored(t, "/a");
        assert_eq!(y.stat.mzxid, 1);
    }

    #[test]
    fn sessions_own_their_ephemerals_until_closed() {
        let mut t = fresh();
        t.replay(&logged(1, OpCode::CreateSession, 7, &CreateSessionTxn { time_out: 10_000 })).expect("replay");
        t.replay(&logged(2, OpCode::CreateSession, 8, &CreateSessionTxn { time_out: 20_000 })).expect("replay");
        t.replay(&logged(3, OpCode::Create, 7, &create("/e7", 1, true))).expect("replay");
        t.replay(&logged(4, OpCode::Create, 8, &create("/e8", 2, true))).expect("replay");
        t.replay(&logged(5, OpCode::CloseSession, 8, &CloseSessionTxn { paths2_delete: vec!["/e8".into()] })).expect("replay");
        t.finish();
        assert_eq!(t.sessions().keys().copied().collect::<Vec<_>>(), vec![7]);
        let nodes = t.into_nodes();
        let paths: Vec<&str> = nodes.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["/", "/e7"]);
        assert_eq!(nodes[1].1.kind, NodeKind::Ephemeral(7));
    }

    #[test]
    fn a_failed_multi_changes_nothing_and_a_good_one_everything() {
        let op = |kind: OpCode, r: &dyn Fn(&mut BytesMut)| {
            let mut b = BytesMut::new();
            r(&mut b);
            jute::txn::Txn { kind: kind.code(), data: b.to_vec() }
        };
        let good = MultiTxn {
            txns: vec![
                op(OpCode::Create, &|b| create("/m", 1, false).write(b)),
                op(OpCode::CreateContainer, &|b| {
                    CreateContainerTxn { path: "/c".into(), data: None, acl: jute::Acl::open_unsafe(), parent_c_version: 2 }.write(b)
                }),
                op(OpCode::CreateTtl, &|b| {
                    CreateTtlTxn { path: "/t".into(), data: None, acl: jute::Acl::open_unsafe(), parent_c_version: 3, ttl: 500 }.write(b)
                }),
            ],
        };
        let failed = MultiTxn {
            txns: vec![op(OpCode::Create, &|b| create("/n", 4, false).write(b)), op(OpCode::Error, &|b| jute::write_i32(b, -101))],
        };
        let mut t = fresh();
        t.replay(&logged(1, OpCode::Multi, 0, &good)).expect("replay");
        t.replay(&logged(2, OpCode::Multi, 0, &failed)).expect("replay");
        let nodes = t.into_nodes();
        let kinds: Vec<(&str, NodeKind)> = nodes.iter().map(|(p, n)| (p.as_str(), n.kind)).collect();
        assert_eq!(
            kinds,
            vec![("/", NodeKind::Persistent), ("/c", NodeKind::Container), ("/m", NodeKind::Persistent), ("/t", NodeKind::Ttl(500))]
        );
    }

    #[test]
    fn paths_that_are_not_znode_paths_are_refused_or_ignored() {
        let node = jute::txn::SnapshotNode { data: None, acl: -1, stat: StatPersisted::default() };
        for bad in ["a", "/a/", "/a//b", "/."] {
            let snap = Snapshot { nodes: vec![("/".into(), node.clone()), (bad.into(), node.clone())], ..Snapshot::default() };
            assert!(matches!(ZkTree::from_snapshot(snap), Err(ImportError::Corrupt { .. })), "{bad}");
        }
        let mut t = fresh();
        t.replay(&logged(1, OpCode::Create, 0, &create("/x/", 1, false))).expect("replay");
        assert_eq!(t.into_nodes().len(), 1, "nothing created");
    }

    #[test]
    fn owners_say_the_kind_both_ways() {
        for kind in [NodeKind::Persistent, NodeKind::Ephemeral(0x1234_5678), NodeKind::Container, NodeKind::Ttl(600_000)] {
            assert_eq!(kind_of(owner_of(kind)), kind);
        }
        // As ZooKeeper's EphemeralType encodes them.
        assert_eq!(owner_of(NodeKind::Container), i64::MIN);
        assert_eq!(owner_of(NodeKind::Ttl(600_000)) as u64, 0xFF00_0000_0009_27C0);
    }

    #[test]
    fn unknown_transactions_stop_the_import() {
        let mut t = fresh();
        let odd = Logged { header: header(1, OpCode::Ping, 0), body: Vec::new() };
        assert!(matches!(t.replay(&odd), Err(ImportError::UnknownTxn { .. })));
    }
}
