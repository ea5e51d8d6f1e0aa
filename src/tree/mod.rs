//! The znode tree: an in-memory map of znodes and sessions that the Raft state
//! machine applies transactions to, deterministically.
//!
//! Every mutation records an undo step so that a failed `multi` leaves nothing
//! behind, and names the paths it dirtied so the state machine can persist
//! exactly those at its next checkpoint.

pub mod acl;
pub mod node;
pub mod path;
pub mod txn;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ZkError;
pub use node::{Acl, AclEntry, Children, Node, NodeKind, NodeStat};
use txn::{CreateKind, CreateOp, Txn, TxnOutcome};

/// Largest TTL ZooKeeper accepts (40 bits of milliseconds).
pub const MAX_TTL_MS: i64 = 0x00FF_FFFF_FFFF;

/// A replicated session: what every server knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Negotiated timeout, ms.
    pub timeout_ms: i32,
    /// Password presented on reconnect.
    pub passwd: Vec<u8>,
    /// Paths of the session's ephemerals (rebuilt on load, not persisted).
    #[serde(skip)]
    pub ephemerals: BTreeSet<String>,
}

/// A watch trigger produced by applying a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A node was created.
    Created(String),
    /// A node was deleted.
    Deleted(String),
    /// A node's data changed.
    DataChanged(String),
    /// A node's children list changed.
    ChildrenChanged(String),
}

/// What one batch of applied transactions changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths whose node was created, changed or deleted (the tree's own
    /// key allocations: remembering a path until the next checkpoint costs
    /// no copy of it).
    pub nodes: HashSet<Arc<str>>,
    /// Sessions created or removed.
    pub sessions: HashSet<i64>,
    /// Watch triggers, in order.
    pub triggers: Vec<Trigger>,
    /// Sessions that ended (their connections must be closed).
    pub closed_sessions: Vec<i64>,
}

/// How to reverse one mutation of a failed multi.
enum Undo {
    Created { path: String, parent_stat: NodeStat, parent_seq: i32 },
    Deleted { path: String, node: Box<Node>, parent_stat: NodeStat },
    Data { path: String, data: Option<Box<[u8]>>, stat: NodeStat },
    Acl { path: String, acl: Acl, stat: NodeStat },
}

/// The context of the transaction being applied.
#[derive(Debug, Clone, Copy)]
pub struct TxnContext {
    /// The transaction's zxid (dense: one per transaction, in log order).
    pub zxid: i64,
    /// Leader time of the entry, ms.
    pub time_ms: i64,
    /// Session that issued it.
    pub session_id: i64,
}

/// The whole znode tree plus the session table.
#[derive(Debug)]
pub struct DataTree {
    /// Keyed by full path; the same allocation is the parent's child entry.
    /// Nodes are boxed so that growing the map moves 24-byte entries, not
    /// whole nodes: a resize happens under the apply lock, and moving
    /// hundreds of thousands of inline nodes stalled every request for tens
    /// of milliseconds (it also leaves less slack in the table).
    nodes: HashMap<Arc<str>, Box<Node>>,
    sessions: BTreeMap<i64, SessionInfo>,
    last_zxid: i64,
    /// Every distinct ACL list in use (and some no longer in use: they are
    /// few and small, so none are dropped).
    acls: HashSet<Acl>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree with `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> Self {
        let mut tree = DataTree { nodes: HashMap::new(), sessions: BTreeMap::new(), last_zxid: 0, acls: HashSet::new() };
        let open = tree.intern_acl(&AclEntry::open());
        tree.nodes.insert("/".into(), Box::new(Node::new(None, open.clone(), NodeKind::Persistent, 0, 0)));
        for path in ["/zookeeper", "/zookeeper/quota"] {
            tree.insert_loaded(path.into(), Node::new(None, open.clone(), NodeKind::Persistent, 0, 0));
        }
        let read_only = tree.intern_acl(&[AclEntry { perms: jute::perms::READ, scheme: "world".into(), id: "anyone".into() }]);
        tree.insert_loaded(
            "/zookeeper/config".into(),
            Node::new(None, read_only, NodeKind::Persistent, 0, 0),
        );
        // ZooKeeper counts child creations and reports 2 x creations - children
        // (DataNode.copyStat). Built-in children were never "created", so a
        // fresh `/` reports -1 and `/zookeeper` -2; starting them there makes
        // our creations-plus-deletions count report the same from then on.
        for (path, start) in [("/", -1), ("/zookeeper", -2)] {
            if let Some(n) = tree.nodes.get_mut(path) {
                n.stat.cversion = start;
            }
        }
        tree
    }

    /// Puts a node read from storage (or a built-in one) in place, linking it to its parent.
    pub fn insert_loaded(&mut self, path: String, mut node: Node) {
        node.acl = self.intern_acl(&node.acl);
        if let Some(old) = self.nodes.remove(path.as_str()) {
            node.children = old.children;
        }
        if let NodeKind::Ephemeral(owner) = node.kind {
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.insert(path.clone());
            }
        }
        let path: Arc<str> = Arc::from(path);
        if &*path != "/" {
            let parent = path::parent(&path);
            if !self.nodes.contains_key(parent) {
                let open = self.intern_acl(&AclEntry::open());
                self.nodes.insert(Arc::from(parent), Box::new(Node::new(None, open, NodeKind::Persistent, 0, 0)));
            }
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.insert(path.clone());
            }
        }
        self.nodes.insert(path, Box::new(node));
    }

    /// The shared copy of an ACL list.
    pub fn intern_acl(&mut self, acl: &[AclEntry]) -> Acl {
        if let Some(shared) = self.acls.get(acl) {
            return shared.clone();
        }
        let shared: Acl = Arc::from(acl);
        self.acls.insert(shared.clone());
        shared
    }

    /// Puts a session read from storage in place (load sessions before nodes).
    pub fn insert_session(&mut self, id: i64, info: SessionInfo) {
        self.sessions.insert(id, info);
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Records the zxid of the last applied entry (also for entries without a txn).
    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }

    /// Looks up a node.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// Number of znodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Iterates over every node (for snapshots).
    pub fn nodes(&self) -> impl Iterator<Item = (&Arc<str>, &Node)> {
        self.nodes.iter().map(|(p, n)| (p, &**n))
    }

    /// The replicated session table.
    pub fn sessions(&self) -> &BTreeMap<i64, SessionInfo> {
        &self.sessions
    }

    /// Looks up a session.
    pub fn session(&self, id: i64) -> Option<&SessionInfo> {
        self.sessions.get(&id)
    }

    /// Every descendant of `path`, not counting itself.
    pub fn count_descendants(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack: Vec<&Arc<str>> = Vec::new();
        if let Some((key, _)) = self.nodes.get_key_value(path) {
            stack.push(key);
        }
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p) {
                for child in node.children.paths() {
                    count += 1;
                    stack.push(child);
                }
            }
        }
        count
    }

    /// True if `path` is an empty container that has had children, or a
    /// childless TTL node unmodified for its TTL as of `now_ms`.
    pub fn is_reapable(&self, path: &str, now_ms: i64) -> bool {
        match self.nodes.get(path) {
            Some(n) if n.children.is_empty() => match n.kind {
                NodeKind::Container => n.stat.cversion > 0,
                NodeKind::Ttl(ttl) => now_ms.saturating_sub(n.stat.mtime) >= ttl,
                _ => false,
            },
            _ => false,
        }
    }

    /// Paths of containers and TTL nodes that are reapable as of `now_ms`.
    pub fn reapable(&self, now_ms: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n.kind, NodeKind::Container | NodeKind::Ttl(_)))
            .map(|(p, _)| p)
            .filter(|p| self.is_reapable(p, now_ms))
            .map(|p| p.to_string())
            .collect()
    }

    /// Applies one transaction at `ctx`, recording what changed.
    pub fn apply(&mut self, ctx: TxnContext, txn: &Txn, changes: &mut Changes) -> TxnOutcome {
        self.last_zxid = ctx.zxid;
        match txn {
            Txn::CreateSession { timeout_ms, passwd } => self.create_session(ctx, *timeout_ms, passwd, changes),
            Txn::CloseSession => {
                self.close_session(ctx, ctx.session_id, changes);
                TxnOutcome::SessionClosed
            }
            Txn::ExpireSessions(ids) => {
                for id in ids {
                    self.close_session(ctx, *id, changes);
                }
                TxnOutcome::Expired
            }
            Txn::Sync => TxnOutcome::Synced,
            Txn::Reap { path } => {
                if self.is_reapable(path, ctx.time_ms) {
                    let mut undo = Vec::new();
                    if let Err(e) = self.delete(ctx, path, -1, changes, &mut undo) {
                        return TxnOutcome::Error(e.raw());
                    }
                    return TxnOutcome::Deleted;
                }
                TxnOutcome::Nothing
            }
            Txn::Multi(ops) => self.apply_multi(ctx, ops, changes),
            single => {
                let mut undo = Vec::new();
                match self.apply_op(ctx, single, changes, &mut undo) {
                    Ok(outcome) => outcome,
                    Err(e) => TxnOutcome::Error(e.raw()),
                }
            }
        }
    }

    fn create_session(&mut self, ctx: TxnContext, timeout_ms: i32, passwd: &[u8], changes: &mut Changes) -> TxnOutcome {
        // Unique and deterministic: leader time in the high bits, the log
        // index in the low ones, so ids never repeat across restarts.
        let mut id = (((ctx.time_ms as u64) & 0x7FF_FFFF_FFFF) << 20 | (ctx.zxid as u64 & 0xF_FFFF)) as i64;
        while id == 0 || self.sessions.contains_key(&id) {
            id = id.wrapping_add(1) & i64::MAX;
        }
        self.sessions.insert(id, SessionInfo { timeout_ms, passwd: passwd.to_vec(), ephemerals: BTreeSet::new() });
        changes.sessions.insert(id);
        TxnOutcome::SessionCreated { session_id: id, timeout_ms, passwd: passwd.to_vec() }
    }

    fn close_session(&mut self, ctx: TxnContext, id: i64, changes: &mut Changes) {
        let Some(info) = self.sessions.remove(&id) else { return };
        changes.sessions.insert(id);
        changes.closed_sessions.push(id);
        let mut undo = Vec::new();
        for path in info.ephemerals.iter().rev() {
            // Ephemerals have no children, so these deletes cannot fail.
            let _ = self.delete(ctx, path, -1, changes, &mut undo);
        }
    }

    fn apply_multi(&mut self, ctx: TxnContext, ops: &[Txn], changes: &mut Changes) -> TxnOutcome {
        let mut undo = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        let trigger_mark = changes.triggers.len();
        for (i, op) in ops.iter().enumerate() {
            match self.apply_op(ctx, op, changes, &mut undo) {
                Ok(outcome) => results.push(outcome),
                Err(e) => {
                    self.rollback(undo);
                    changes.triggers.truncate(trigger_mark);
                    let mut failed = vec![TxnOutcome::Error(0); i];
                    failed.push(TxnOutcome::Error(e.raw()));
                    failed.extend(std::iter::repeat(TxnOutcome::Error(ZkError::RuntimeInconsistency.raw())).take(ops.len() - i - 1));
                    return TxnOutcome::Multi(failed);
                }
            }
        }
        TxnOutcome::Multi(results)
    }

    fn apply_op(&mut self, ctx: TxnContext, op: &Txn, changes: &mut Changes, undo: &mut Vec<Undo>) -> Result<TxnOutcome, ZkError> {
        match op {
            Txn::Create(c) => self.create(ctx, c, changes, undo),
            Txn::Delete { path, version } => self.delete(ctx, path, *version, changes, undo).map(|_| TxnOutcome::Deleted),
            Txn::SetData { path, data, version } => self.set_data(ctx, path, data, *version, changes, undo),
            Txn::SetAcl { path, acl, version } => self.set_acl(path, acl, *version, changes, undo),
            Txn::Check { path, version } => {
                let node = self.nodes.get(path.as_str()).ok_or(ZkError::NoNode)?;
                if *version != -1 && node.stat.version != *version {
                    return Err(ZkError::BadVersion);
                }
                Ok(TxnOutcome::Checked)
            }
            other => Err(ZkError::BadArguments(format!("{} is not allowed here", other.name()))),
        }
    }

    fn create(&mut self, ctx: TxnContext, c: &CreateOp, changes: &mut Changes, undo: &mut Vec<Undo>) -> Result<TxnOutcome, ZkError> {
        path::validate(&c.path, c.sequential)?;
        if c.path == "/" && !c.sequential {
            return Err(ZkError::NodeExists);
        }
        if c.acl.is_empty() {
            return Err(ZkError::InvalidAcl);
        }
        let kind = match c.kind {
            CreateKind::Persistent => NodeKind::Persistent,
            CreateKind::Container => NodeKind::Container,
            CreateKind::Ttl(ttl) => {
                if ttl <= 0 || ttl > MAX_TTL_MS {
                    return Err(ZkError::BadArguments(format!("ttl {ttl} out of range")));
                }
                NodeKind::Ttl(ttl)
            }
            CreateKind::Ephemeral => {
                if !self.sessions.contains_key(&ctx.session_id) {
                    return Err(ZkError::SessionExpired);
                }
                NodeKind::Ephemeral(ctx.session_id)
            }
        };
        let parent_path = if c.sequential && c.path.ends_with('/') {
            c.path.trim_end_matches('/').to_string()
        } else {
            path::parent(&c.path).to_string()
        };
        let parent_path = if parent_path.is_empty() { "/".to_string() } else { parent_path };
        let parent = self.nodes.get(parent_path.as_str()).ok_or(ZkError::NoNode)?;
        if matches!(parent.kind, NodeKind::Ephemeral(_)) {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        let full = if c.sequential { format!("{}{:010}", c.path, parent.seq) } else { c.path.clone() };
        if self.nodes.contains_key(full.as_str()) {
            return Err(ZkError::NodeExists);
        }
        let acl = self.intern_acl(&c.acl);
        let key: Arc<str> = Arc::from(full.as_str());
        changes.nodes.insert(self.key_of(&parent_path)?);
        let parent = self.nodes.get_mut(parent_path.as_str()).ok_or(ZkError::NoNode)?;
        undo.push(Undo::Created { path: full.clone(), parent_stat: parent.stat, parent_seq: parent.seq });
        parent.children.insert(key.clone());
        parent.seq = parent.seq.wrapping_add(1);
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = ctx.zxid;
        let node = Node::new(c.data.as_deref().map(Box::from), acl, kind, ctx.zxid, ctx.time_ms);
        let stat = node.wire_stat();
        if let NodeKind::Ephemeral(owner) = kind {
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.insert(full.clone());
            }
        }
        changes.nodes.insert(key.clone());
        self.nodes.insert(key, Box::new(node));
        changes.triggers.push(Trigger::Created(full.clone()));
        changes.triggers.push(Trigger::ChildrenChanged(parent_path));
        Ok(TxnOutcome::Created { path: full, stat })
    }

    fn delete(&mut self, ctx: TxnContext, path: &str, version: i32, changes: &mut Changes, undo: &mut Vec<Undo>) -> Result<(), ZkError> {
        path::validate(path, false)?;
        if path == "/" || path == "/zookeeper" || path.starts_with("/zookeeper/") && self.is_builtin(path) {
            return Err(ZkError::BadArguments(format!("cannot delete {path}")));
        }
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if version != -1 && node.stat.version != version {
            return Err(ZkError::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ZkError::NotEmpty);
        }
        let parent_path = path::parent(path).to_string();
        let (key, node) = self.nodes.remove_entry(path).ok_or(ZkError::NoNode)?;
        changes.nodes.insert(key);
        if let NodeKind::Ephemeral(owner) = node.kind {
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.remove(path);
            }
        }
        let parent = self.nodes.get_mut(parent_path.as_str()).ok_or_else(|| ZkError::System(format!("orphan {path}")))?;
        undo.push(Undo::Deleted { path: path.to_string(), node, parent_stat: parent.stat });
        parent.children.remove(path);
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = ctx.zxid;
        changes.nodes.insert(self.key_of(&parent_path)?);
        changes.triggers.push(Trigger::Deleted(path.to_string()));
        changes.triggers.push(Trigger::ChildrenChanged(parent_path));
        Ok(())
    }

    /// The tree's own key for an existing node's path.
    fn key_of(&self, path: &str) -> Result<Arc<str>, ZkError> {
        self.nodes.get_key_value(path).map(|(k, _)| k.clone()).ok_or(ZkError::NoNode)
    }

    fn is_builtin(&self, path: &str) -> bool {
        path == "/zookeeper/quota" || path == "/zookeeper/config"
    }

    fn set_data(&mut self, ctx: TxnContext, path: &str, data: &Option<Vec<u8>>, version: i32, changes: &mut Changes, undo: &mut Vec<Undo>) -> Result<TxnOutcome, ZkError> {
        path::validate(path, false)?;
        let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
        if version != -1 && node.stat.version != version {
            return Err(ZkError::BadVersion);
        }
        let old = std::mem::replace(&mut node.data, data.as_deref().map(Box::from));
        undo.push(Undo::Data { path: path.to_string(), data: old, stat: node.stat });
        node.stat.version = node.stat.version.wrapping_add(1);
        node.stat.mzxid = ctx.zxid;
        node.stat.mtime = ctx.time_ms;
        let stat = node.wire_stat();
        changes.nodes.insert(self.key_of(path)?);
        changes.triggers.push(Trigger::DataChanged(path.to_string()));
        Ok(TxnOutcome::Stat(stat))
    }

    fn set_acl(&mut self, path: &str, acl: &[AclEntry], version: i32, changes: &mut Changes, undo: &mut Vec<Undo>) -> Result<TxnOutcome, ZkError> {
        path::validate(path, false)?;
        if acl.is_empty() {
            return Err(ZkError::InvalidAcl);
        }
        let acl = self.intern_acl(acl);
        let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
        if version != -1 && node.stat.aversion != version {
            return Err(ZkError::BadVersion);
        }
        let old = std::mem::replace(&mut node.acl, acl);
        undo.push(Undo::Acl { path: path.to_string(), acl: old, stat: node.stat });
        node.stat.aversion = node.stat.aversion.wrapping_add(1);
        let stat = node.wire_stat();
        changes.nodes.insert(self.key_of(path)?);
        Ok(TxnOutcome::Stat(stat))
    }

    fn rollback(&mut self, undo: Vec<Undo>) {
        for step in undo.into_iter().rev() {
            match step {
                Undo::Created { path, parent_stat, parent_seq } => {
                    if let Some(node) = self.nodes.remove(path.as_str()) {
                        if let NodeKind::Ephemeral(owner) = node.kind {
                            if let Some(s) = self.sessions.get_mut(&owner) {
                                s.ephemerals.remove(&path);
                            }
                        }
                    }
                    if let Some(parent) = self.nodes.get_mut(path::parent(&path)) {
                        parent.children.remove(&path);
                        parent.stat = parent_stat;
                        parent.seq = parent_seq;
                    }
                }
                Undo::Deleted { path, node, parent_stat } => {
                    if let NodeKind::Ephemeral(owner) = node.kind {
                        if let Some(s) = self.sessions.get_mut(&owner) {
                            s.ephemerals.insert(path.clone());
                        }
                    }
                    let key: Arc<str> = Arc::from(path.as_str());
                    if let Some(parent) = self.nodes.get_mut(path::parent(&path)) {
                        parent.children.insert(key.clone());
                        parent.stat = parent_stat;
                    }
                    self.nodes.insert(key, node);
                }
                Undo::Data { path, data, stat } => {
                    if let Some(node) = self.nodes.get_mut(path.as_str()) {
                        node.data = data;
                        node.stat = stat;
                    }
                }
                Undo::Acl { path, acl, stat } => {
                    if let Some(node) = self.nodes.get_mut(path.as_str()) {
                        node.acl = acl;
                        node.stat = stat;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
