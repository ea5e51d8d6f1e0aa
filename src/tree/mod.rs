//! The znode tree: an in-memory map of znodes and sessions that the Raft state
//! machine applies transactions to, deterministically.
//!
//! Every mutation records an undo step so that a failed `multi` leaves nothing
//! behind, and names the nodes it changed so the state machine can persist
//! exactly those at its next checkpoint.
//!
//! Nodes live in a slab and are named by a `u32` id. A node knows its
//! parent's id and its own name; an index maps (parent id, name) to the id,
//! so finding `/a/b/c` takes one probe per segment, and a parent holds its
//! children's ids. A node's name and data are one allocation beside its 80
//! bytes, so the tree spends about 100 bytes per znode beyond its name and
//! data (see `node`).

pub mod acl;
pub mod node;
pub mod path;
pub mod quota;
pub mod slab;
pub mod txn;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::error::ZkError;
pub use node::{Acl, AclEntry, AclId, Children, Node, NodeKind, NodeStat, StoredNode};
use slab::Slab;
use txn::{Caller, CreateKind, CreateOp, Txn, TxnOutcome};

/// The nodes every tree has: `/`, `/zookeeper` and its `quota` and `config`.
pub const BUILT_IN_NODES: usize = 4;

/// The first zxid of the epoch after an import's (see [`crate::import`]):
/// an imported tree's zxids are at least this, and paddock's own count up
/// from 1, so a tree at or past it has had an import (or 4 billion writes).
pub const IMPORTED_ZXID: i64 = 1 << 32;

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

/// What a watch trigger says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A node was created.
    Created,
    /// A node was deleted.
    Deleted,
    /// A node's data changed.
    DataChanged,
    /// A node's children list changed.
    ChildrenChanged,
}

/// A watch trigger produced by applying a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// What happened.
    pub event: Event,
    /// The node it happened to (for a children change, the parent).
    pub path: String,
    /// That node's ACL when it does not let everyone read (None when it
    /// does): as ZooKeeper since 3.8.4 (CVE-2024-23944), only watchers who
    /// may read the node hear of it.
    pub readers: Option<Acl>,
}

impl Trigger {
    /// A trigger any watcher may hear.
    pub fn open(event: Event, path: impl Into<String>) -> Trigger {
        Trigger { event, path: path.into(), readers: None }
    }
}

/// What one batch of applied transactions changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Ids of nodes created or changed (repeats are fine). An id names
    /// whatever node holds it when the changes are persisted: a node deleted
    /// since is also in `deleted`, and a node that took its id is new.
    pub nodes: Vec<u32>,
    /// Paths of deleted nodes, each with the zxid that created the node
    /// (a path may have a node again by the time the changes are persisted:
    /// look it up).
    pub deleted: Vec<(String, i64)>,
    /// Sessions created or removed.
    pub sessions: Vec<i64>,
    /// Watch triggers, in order.
    pub triggers: Vec<Trigger>,
    /// Sessions that ended (their connections must be closed).
    pub closed_sessions: Vec<i64>,
    /// Ephemerals deleted because their session ended: (session, path),
    /// for the audit log.
    pub ended_ephemerals: Vec<(i64, String)>,
}

/// How to reverse one mutation of a failed multi.
enum Undo {
    Created { path: String, parent_stat: NodeStat },
    Deleted { path: String, node: Node, parent_stat: NodeStat },
    // By path: within a multi an id may be freed and taken by another node.
    Data { path: String, old: Box<[u8]>, stat: NodeStat },
    Acl { path: String, old: Box<[u8]>, stat: NodeStat },
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
    /// Every node, by id; an empty slot marks a free id (listed in `free`).
    slots: Slab<Node>,
    free: Vec<u32>,
    /// Node ids by the hash of their parent's id and their name.
    index: HashTable<Indexed>,
    /// Seeded per tree, so clients cannot choose names that collide; much
    /// cheaper than the standard library's SipHash, which was ~4% of the
    /// server's CPU on multi (every op finds each segment of its path).
    hasher: foldhash::fast::RandomState,
    sessions: BTreeMap<i64, SessionInfo>,
    last_zxid: i64,
    /// Every distinct ACL list in use, by id (and some no longer in use:
    /// they are few and small, so none are dropped).
    acls: Vec<Acl>,
    acl_ids: HashMap<Acl, AclId>,
    /// `/zookeeper/quota`'s id: a built-in node keeps its id for good (it
    /// cannot be deleted, and loading replaces it in place), so whether any
    /// quota is set is one look at its children.
    quota_root: Option<u32>,
}

/// True if id `id` in `slots` is the node named `name` under `parent`.
fn holds(slots: &Slab<Node>, id: u32, parent: Option<u32>, name: &str) -> bool {
    slots.get(id).is_some_and(|n| n.place() == (parent, name))
}

/// An entry of the tree's index: a node's id and the hash of its place.
/// The hash is kept so that growing the table rehashes from the entries
/// alone: hashing every node's parent and name again (a random read of its
/// slot and its name for each) stalled the apply for ~200 ms at 1.5 million
/// znodes, the p99.9 of create workloads.
#[derive(Debug, Clone, Copy)]
struct Indexed {
    id: u32,
    hash: u32,
}

/// The index's hash of a node's place (its parent's id and its name),
/// folded to the 32 bits an [`Indexed`] keeps.
fn place_hash(hasher: &foldhash::fast::RandomState, (parent, name): (Option<u32>, &str)) -> u32 {
    let h = hasher.hash_one((parent, name));
    (h ^ (h >> 32)) as u32
}

/// A place hash as the table reads it: the low bits pick the bucket and
/// the top seven are the tag, so the 32 bits fill both.
fn table_hash(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree with `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> Self {
        let mut tree = DataTree {
            slots: Slab::default(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
            acls: Vec::new(),
            acl_ids: HashMap::new(),
            quota_root: None,
        };
        let open = tree.intern_acl(&AclEntry::open());
        let read_only = tree.intern_acl(&[AclEntry { perms: jute::perms::READ, scheme: "world".into(), id: "anyone".into() }]);
        // ZooKeeper counts child creations and reports 2 x creations - children
        // (DataNode.copyStat). Built-in children were never "created", so a
        // fresh `/` reports -1 and `/zookeeper` -2; starting them there makes
        // our creations-plus-deletions count report the same from then on.
        // Their data is empty, not null, as ZooKeeper's (`new byte[0]`).
        for (path, acl, cversion) in
            [("/", open, -1), ("/zookeeper", open, -2), ("/zookeeper/quota", open, 0), ("/zookeeper/config", read_only, 0)]
        {
            let stat = NodeStat { cversion, ..NodeStat::default() };
            tree.link(path, |parent, name| Node::from_parts(parent, name, Some(&[]), acl, NodeKind::Persistent, stat));
        }
        tree.quota_root = tree.id_of(quota::QUOTA_ROOT);
        tree
    }

    /// The id of the node named `name` under `parent` (the root is `None`, "").
    fn find(&self, parent: Option<u32>, name: &str) -> Option<u32> {
        let hash = place_hash(&self.hasher, (parent, name));
        self.index.find(table_hash(hash), |e| e.hash == hash && holds(&self.slots, e.id, parent, name)).map(|e| e.id)
    }

    /// The id of the node at `path`, found segment by segment from the root.
    fn id_of(&self, path: &str) -> Option<u32> {
        let root = self.find(None, "")?;
        match path.strip_prefix('/')? {
            "" => Some(root),
            rest => rest.split('/').try_fold(root, |id, name| self.find(Some(id), name)),
        }
    }

    /// The full path of the node with id `id`, rebuilt by walking up.
    pub fn path_of(&self, id: u32) -> Option<String> {
        let mut names = Vec::new();
        let mut node = self.slot(id)?;
        while let (Some(parent), name) = node.place() {
            names.push(name);
            // A parent chain longer than the tree is a cycle: a damaged tree.
            if names.len() > self.slots.len() {
                return None;
            }
            node = self.slot(parent)?;
        }
        if names.is_empty() {
            return Some("/".into());
        }
        let mut path = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        Some(path)
    }

    /// Calls `visit` with every node reachable from the root and its path,
    /// parents before children, building each path once in one buffer.
    pub fn walk<'a>(&'a self, mut visit: impl FnMut(&str, &'a Node)) {
        let mut path = String::new();
        let mut stack: Vec<(u32, usize)> = self.find(None, "").map(|root| (root, 0)).into_iter().collect();
        while let Some((id, len)) = stack.pop() {
            let Some(node) = self.slot(id) else { continue };
            path.truncate(len);
            if len != 1 {
                // The root's children follow its "/"; deeper ones need one.
                path.push('/');
            }
            path.push_str(node.name());
            visit(&path, node);
            let here = path.len();
            stack.extend(node.children.ids().map(|child| (child, here)));
        }
    }

    fn slot(&self, id: u32) -> Option<&Node> {
        self.slots.get(id)
    }

    fn slot_mut(&mut self, id: u32) -> Option<&mut Node> {
        self.slots.get_mut(id)
    }

    /// Puts a node (whose place is free) in the slab and the index.
    fn insert(&mut self, node: Node) -> u32 {
        let hash = place_hash(&self.hasher, node.place());
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slots.slot_mut(id) {
                    *slot = Some(node);
                }
                id
            }
            None => self.slots.push(node),
        };
        self.index.insert_unique(table_hash(hash), Indexed { id, hash }, |e| table_hash(e.hash));
        id
    }

    /// Takes the node with id `id` out of the slab and the index (its
    /// parent still lists it).
    fn remove_id(&mut self, id: u32) -> Option<Node> {
        let hash = place_hash(&self.hasher, self.slot(id)?.place());
        self.index.find_entry(table_hash(hash), |e| e.id == id).ok()?.remove();
        let node = self.slots.slot_mut(id)?.take()?;
        self.free.push(id);
        Some(node)
    }

    /// Inserts the node that `make` builds from its parent's id and its
    /// name at `path` (which has no node), and adds it to its parent's
    /// children, creating a placeholder parent if there is none (only when
    /// loading: a stored tree always has its parents, but a damaged one
    /// must still load).
    fn link(&mut self, path: &str, make: impl FnOnce(Option<u32>, &str) -> Node) -> u32 {
        if path == "/" {
            return self.insert(make(None, ""));
        }
        let parent_id = self.existing_or_placeholder(path::parent(path));
        let id = self.insert(make(Some(parent_id), path::basename(path)));
        if let Some(p) = self.slot_mut(parent_id) {
            p.children.insert(id);
        }
        id
    }

    /// The id of the node at `path`, made an empty persistent node (with
    /// its missing ancestors) if there is none.
    fn existing_or_placeholder(&mut self, path: &str) -> u32 {
        if let Some(id) = self.id_of(path) {
            return id;
        }
        let open = self.intern_acl(&AclEntry::open());
        self.link(path, |parent, name| Node::new(parent, name, None, open, NodeKind::Persistent, 0, 0))
    }

    /// Puts a node read from storage (or a snapshot) in place, linking it
    /// to its parent; returns its id.
    pub fn insert_loaded(&mut self, path: String, stored: StoredNode) -> u32 {
        let acl = self.intern_acl(&stored.acl);
        let stat = NodeStat { seq: stored.seq, ..stored.stat };
        let make = |parent: Option<u32>, name: &str| Node::from_parts(parent, name, stored.data.as_deref(), acl, stored.kind, stat);
        let id = match self.id_of(&path) {
            // A built-in node (or a repeated record): replace it where it
            // is, keeping its id, so its children's parent ids stay right.
            Some(id) => {
                if let Some(old) = self.slot_mut(id) {
                    let children = std::mem::take(&mut old.children);
                    let (parent, name) = old.place();
                    *old = make(parent, name);
                    old.children = children;
                }
                id
            }
            None => self.link(&path, make),
        };
        if let NodeKind::Ephemeral(owner) = stored.kind {
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.insert(path);
            }
        }
        id
    }

    /// The id of an ACL list's shared copy.
    pub fn intern_acl(&mut self, acl: &[AclEntry]) -> AclId {
        if let Some(id) = self.acl_ids.get(acl) {
            return *id;
        }
        let shared: Acl = Arc::from(acl);
        let id = self.acls.len() as AclId;
        self.acls.push(shared.clone());
        self.acl_ids.insert(shared, id);
        id
    }

    /// A node's stored record (for checkpoints, snapshots and the digest).
    pub fn stored<'a>(&'a self, node: &'a Node) -> StoredNode<'a> {
        node.stored(self.acl(node))
    }

    /// Every interned ACL list with its id (lists no node uses any more
    /// included: the table only grows).
    pub fn acl_table(&self) -> impl Iterator<Item = (AclId, &[AclEntry])> {
        self.acls.iter().enumerate().map(|(id, acl)| (id as AclId, &acl[..]))
    }

    /// A node's ACL list (empty, which only `super` passes, if the id is unknown).
    pub fn acl(&self, node: &Node) -> &[AclEntry] {
        self.acls.get(node.acl() as usize).map_or(&[], |a| a)
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
        self.slot(self.id_of(path)?)
    }

    /// Looks up a node by id (ids come from [`Changes::nodes`]).
    pub fn get_by_id(&self, id: u32) -> Option<&Node> {
        self.slot(id)
    }

    /// A node's children's names, sorted.
    pub fn child_names(&self, node: &Node) -> Vec<String> {
        let mut names: Vec<String> = node.children.ids().filter_map(|id| self.slot(id)).map(|c| c.name().to_string()).collect();
        names.sort_unstable();
        names
    }

    /// Number of znodes.
    pub fn node_count(&self) -> usize {
        self.slots.len() - self.free.len()
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
        self.subtree(path).count().saturating_sub(1)
    }

    /// The node at `path` and all its descendants, in no particular order
    /// (nothing if there is no such node).
    fn subtree(&self, path: &str) -> impl Iterator<Item = &Node> + '_ {
        let mut stack: Vec<u32> = self.id_of(path).into_iter().collect();
        std::iter::from_fn(move || {
            while let Some(id) = stack.pop() {
                if let Some(node) = self.slot(id) {
                    stack.extend(node.children.ids());
                    return Some(node);
                }
            }
            None
        })
    }

    /// True if `path` is an empty container that has had children, or a
    /// childless TTL node unmodified for its TTL as of `now_ms`.
    pub fn is_reapable(&self, path: &str, now_ms: i64) -> bool {
        self.get(path).is_some_and(|n| Self::due(n, now_ms))
    }

    fn due(n: &Node, now_ms: i64) -> bool {
        n.children.is_empty()
            && match n.kind() {
                NodeKind::Container => n.stat.cversion > 0,
                NodeKind::Ttl(ttl) => now_ms.saturating_sub(n.stat.mtime) >= ttl,
                _ => false,
            }
    }

    /// Paths of containers and TTL nodes that are reapable as of `now_ms`.
    pub fn reapable(&self, now_ms: i64) -> Vec<String> {
        let due = self.slots.iter().filter(|(_, n)| Self::due(n, now_ms));
        due.filter_map(|(id, _)| self.path_of(id)).collect()
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
                    if let Err(e) = self.delete(ctx, path, -1, None, changes, &mut undo) {
                        return TxnOutcome::Error(e.raw());
                    }
                    return TxnOutcome::Deleted;
                }
                TxnOutcome::Nothing
            }
            Txn::Multi(ops) => self.apply_multi(ctx, ops, None, changes),
            Txn::Import(chunk) => self.import(ctx, chunk, changes),
            Txn::Checked { caller, txn } => match &**txn {
                Txn::Multi(ops) => self.apply_multi(ctx, ops, Some(caller), changes),
                single => self.apply_single(ctx, single, Some(caller), changes),
            },
            Txn::AfterReads { txn, .. } => self.apply(ctx, txn, changes),
            single => self.apply_single(ctx, single, None, changes),
        }
    }

    fn apply_single(&mut self, ctx: TxnContext, op: &Txn, caller: Option<&Caller>, changes: &mut Changes) -> TxnOutcome {
        let mut undo = Vec::new();
        match self.apply_op(ctx, op, caller, changes, &mut undo) {
            Ok(outcome) => outcome,
            Err(e) => TxnOutcome::Error(e.raw()),
        }
    }

    /// A trigger about `path`, whose node has the ACL `acl`.
    fn trigger(&self, event: Event, path: String, acl: AclId) -> Trigger {
        let list = self.acls.get(acl as usize);
        // Readable with no identity at all: `world:anyone` holds READ.
        let everyone = list.is_some_and(|l| acl::allowed_as(l, jute::perms::READ, &[], None));
        // An unknown id reads as an empty ACL, as `acl` does: only super passes it.
        let readers = (!everyone).then(|| list.cloned().unwrap_or_else(|| Arc::from(Vec::new())));
        Trigger { event, path, readers }
    }

    /// The ACL a create or setACL asks for: a client's with its `auth`
    /// entries resolved to `caller`'s identities (see [`acl::resolve`]); the
    /// server's own as written, if not empty.
    fn requested_acl<'a>(caller: Option<&Caller>, acl: &'a [AclEntry]) -> Result<std::borrow::Cow<'a, [AclEntry]>, ZkError> {
        match caller {
            Some(caller) => acl::resolve(acl, &caller.ids),
            None if acl.is_empty() => Err(ZkError::InvalidAcl),
            None => Ok(std::borrow::Cow::Borrowed(acl)),
        }
    }

    /// Fails with NoAuth unless `caller` holds `perm` on `node`. Writes
    /// without a caller (the server's own, or logged before writes carried
    /// one and checked when proposed) pass.
    fn permit(&self, caller: Option<&Caller>, node: &Node, perm: i32) -> Result<(), ZkError> {
        match caller {
            Some(c) if !c.skip_acl && !acl::allowed_as(self.acl(node), perm, &c.ids, c.any_sasl_user.as_deref()) => Err(ZkError::NoAuth),
            _ => Ok(()),
        }
    }

    /// Fails with QuotaExceeded if `caller`'s server enforces quotas and
    /// `path` growing by `count` nodes and `bytes` would pass a hard limit.
    fn within_quota(&self, caller: Option<&Caller>, path: &str, count: i64, bytes: i64) -> Result<(), ZkError> {
        match caller {
            Some(c) if c.enforce_quota => {
                self.hard_quota_exceeded(path, count, bytes).map_or(Ok(()), |owner| Err(ZkError::QuotaExceeded(owner)))
            }
            _ => Ok(()),
        }
    }

    /// Loads one part of an imported ZooKeeper tree (see [`crate::import`]).
    fn import(&mut self, ctx: TxnContext, chunk: &txn::ImportChunk, changes: &mut Changes) -> TxnOutcome {
        // Only into a tree without znodes of its own and not imported
        // (sessions opened meanwhile are kept).
        if chunk.first && (self.node_count() != BUILT_IN_NODES || ctx.zxid > IMPORTED_ZXID) {
            return TxnOutcome::Error(ZkError::NodeExists.raw());
        }
        for (id, info) in &chunk.sessions {
            self.insert_session(*id, info.clone());
            changes.sessions.push(*id);
        }
        for (path, node) in &chunk.nodes {
            let id = self.insert_loaded(path.clone(), node.clone());
            changes.nodes.push(id);
        }
        // As a ZooKeeper ensemble would after an election, the zxids go on
        // in the next epoch, past every zxid ZooKeeper's clients have seen.
        if let Some(zxid) = chunk.last_zxid {
            self.last_zxid = self.last_zxid.max(((zxid >> 32) + 1) << 32);
        }
        TxnOutcome::Nothing
    }

    fn create_session(&mut self, ctx: TxnContext, timeout_ms: i32, passwd: &[u8], changes: &mut Changes) -> TxnOutcome {
        // Unique and deterministic: leader time in the high bits, the log
        // index in the low ones, so ids never repeat across restarts.
        let mut id = (((ctx.time_ms as u64) & 0x7FF_FFFF_FFFF) << 20 | (ctx.zxid as u64 & 0xF_FFFF)) as i64;
        while id == 0 || self.sessions.contains_key(&id) {
            id = id.wrapping_add(1) & i64::MAX;
        }
        self.sessions.insert(id, SessionInfo { timeout_ms, passwd: passwd.to_vec(), ephemerals: BTreeSet::new() });
        changes.sessions.push(id);
        TxnOutcome::SessionCreated { session_id: id, timeout_ms, passwd: passwd.to_vec() }
    }

    fn close_session(&mut self, ctx: TxnContext, id: i64, changes: &mut Changes) {
        let Some(info) = self.sessions.remove(&id) else { return };
        changes.sessions.push(id);
        changes.closed_sessions.push(id);
        let mut undo = Vec::new();
        for path in info.ephemerals.iter().rev() {
            // Ephemerals have no children, so these deletes cannot fail.
            if self.delete(ctx, path, -1, None, changes, &mut undo).is_ok() && crate::audit::enabled() {
                changes.ended_ephemerals.push((id, path.clone()));
            }
        }
    }

    fn apply_multi(&mut self, ctx: TxnContext, ops: &[Txn], caller: Option<&Caller>, changes: &mut Changes) -> TxnOutcome {
        let mut undo = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        let trigger_mark = changes.triggers.len();
        for (i, op) in ops.iter().enumerate() {
            match self.apply_op(ctx, op, caller, changes, &mut undo) {
                Ok(outcome) => results.push(outcome),
                Err(e) => {
                    self.rollback(undo, changes);
                    changes.triggers.truncate(trigger_mark);
                    let mut failed = vec![TxnOutcome::Error(0); i];
                    failed.push(TxnOutcome::Error(e.raw()));
                    failed.extend(std::iter::repeat_n(TxnOutcome::Error(ZkError::RuntimeInconsistency.raw()), ops.len() - i - 1));
                    return TxnOutcome::Multi(failed);
                }
            }
        }
        TxnOutcome::Multi(results)
    }

    /// Applies one op. Each checks in the order ZooKeeper's
    /// PrepRequestProcessor does, so the first failure is the same error.
    fn apply_op(
        &mut self,
        ctx: TxnContext,
        op: &Txn,
        caller: Option<&Caller>,
        changes: &mut Changes,
        undo: &mut Vec<Undo>,
    ) -> Result<TxnOutcome, ZkError> {
        match op {
            Txn::Create(c) => self.create(ctx, c, caller, changes, undo),
            Txn::Delete { path, version } => self.delete(ctx, path, *version, caller, changes, undo).map(|_| TxnOutcome::Deleted),
            Txn::SetData { path, data, version } => self.set_data(ctx, path, data, *version, caller, changes, undo),
            Txn::SetAcl { path, acl, version } => self.set_acl(path, acl, *version, caller, changes, undo),
            Txn::Check { path, version } => {
                path::validate(path)?;
                let node = self.get(path).ok_or(ZkError::NoNode)?;
                self.permit(caller, node, jute::perms::READ)?;
                if *version != -1 && node.stat.version != *version {
                    return Err(ZkError::BadVersion);
                }
                Ok(TxnOutcome::Checked)
            }
            other => Err(ZkError::BadArguments(format!("{} is not allowed here", other.name()))),
        }
    }

    fn create(
        &mut self,
        ctx: TxnContext,
        c: &CreateOp,
        caller: Option<&Caller>,
        changes: &mut Changes,
        undo: &mut Vec<Undo>,
    ) -> Result<TxnOutcome, ZkError> {
        // ZooKeeper's order: the mode (TTL), enough of the path to find the
        // parent, the ACL, the parent, permission on it, the whole path,
        // then what the tree already holds, and the quota last.
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
        if !c.path.contains('/') || c.path.contains('\0') {
            return Err(ZkError::BadArguments(format!("invalid path {:?}", c.path)));
        }
        let acl = Self::requested_acl(caller, &c.acl)?;
        let parent_path = if c.sequential && c.path.ends_with('/') { c.path.trim_end_matches('/') } else { path::parent(&c.path) };
        let parent_path = if parent_path.is_empty() { "/" } else { parent_path };
        let parent_id = self.id_of(parent_path).ok_or(ZkError::NoNode)?;
        let parent = self.slot(parent_id).ok_or(ZkError::NoNode)?;
        self.permit(caller, parent, jute::perms::CREATE)?;
        // The whole path is checked with its sequence number, as ZooKeeper
        // does (so `/a/..` sequential is `/a/..0000000001`, a fine name).
        let full = if c.sequential { format!("{}{:010}", c.path, parent.stat.seq) } else { c.path.clone() };
        path::validate(&full)?;
        if full == "/" {
            return Err(ZkError::NodeExists);
        }
        if matches!(parent.kind(), NodeKind::Ephemeral(_)) {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        let name = path::basename(&full);
        if self.find(Some(parent_id), name).is_some() {
            return Err(ZkError::NodeExists);
        }
        self.within_quota(caller, &full, 1, c.data.as_ref().map_or(0, |d| d.len() as i64))?;
        // A quota's stats node starts with the usage of the subtree it describes.
        let usage = quota::stats_target(&full).map(|target| {
            let (count, bytes) = self.usage(target);
            quota::format(count, bytes)
        });
        let data = match &usage {
            Some(text) => Some(text.as_bytes()),
            None => c.data.as_deref(),
        };
        let acl = self.intern_acl(&acl);
        let node = Node::new(Some(parent_id), name, data, acl, kind, ctx.zxid, ctx.time_ms);
        let mut stat = node.wire_stat();
        if usage.is_some() {
            // ZooKeeper answers with the Stat of the data the client sent,
            // taken before it writes the usage in.
            stat.data_length = c.data.as_ref().map_or(0, |d| d.len() as i32);
        }
        let id = self.insert(node);
        let parent = self.slot_mut(parent_id).ok_or(ZkError::NoNode)?;
        let parent_acl = parent.acl();
        undo.push(Undo::Created { path: full.clone(), parent_stat: parent.stat });
        parent.children.insert(id);
        parent.stat.seq = parent.stat.seq.wrapping_add(1);
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = ctx.zxid;
        if let NodeKind::Ephemeral(owner) = kind {
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.insert(full.clone());
            }
        }
        changes.nodes.extend([parent_id, id]);
        changes.triggers.push(self.trigger(Event::Created, full.clone(), acl));
        changes.triggers.push(self.trigger(Event::ChildrenChanged, parent_path.to_string(), parent_acl));
        self.charge_change(&full, 1, c.data.as_ref().map_or(0, |d| d.len() as i64), changes, undo);
        Ok(TxnOutcome::Created { path: full, stat })
    }

    fn delete(
        &mut self,
        ctx: TxnContext,
        path: &str,
        version: i32,
        caller: Option<&Caller>,
        changes: &mut Changes,
        undo: &mut Vec<Undo>,
    ) -> Result<(), ZkError> {
        // As ZooKeeper, only as much of the path as finding the parent
        // needs (a malformed path names no node, so it ends in NoNode),
        // the parent, permission on it, then the node.
        if !path.contains('/') || path.contains('\0') || path == "/" || path == "/zookeeper" || self.is_builtin(path) {
            return Err(ZkError::BadArguments(format!("cannot delete {path:?}")));
        }
        let parent = self.get(path::parent(path)).ok_or(ZkError::NoNode)?;
        self.permit(caller, parent, jute::perms::DELETE)?;
        let id = self.id_of(path).ok_or(ZkError::NoNode)?;
        let node = self.slot(id).ok_or(ZkError::NoNode)?;
        if version != -1 && node.stat.version != version {
            return Err(ZkError::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ZkError::NotEmpty);
        }
        let parent_path = path::parent(path);
        let parent_id = node.parent().ok_or_else(|| ZkError::System(format!("orphan {path}")))?;
        let bytes = node.data().map_or(0, |d| d.len() as i64);
        let node = self.remove_id(id).ok_or(ZkError::NoNode)?;
        if let NodeKind::Ephemeral(owner) = node.kind() {
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.remove(path);
            }
        }
        let czxid = node.stat.czxid;
        let node_acl = node.acl();
        let parent = self.slot_mut(parent_id).ok_or_else(|| ZkError::System(format!("orphan {path}")))?;
        let parent_acl = parent.acl();
        undo.push(Undo::Deleted { path: path.to_string(), node, parent_stat: parent.stat });
        parent.children.remove(id);
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = ctx.zxid;
        changes.nodes.push(parent_id);
        changes.deleted.push((path.to_string(), czxid));
        changes.triggers.push(self.trigger(Event::Deleted, path.to_string(), node_acl));
        changes.triggers.push(self.trigger(Event::ChildrenChanged, parent_path.to_string(), parent_acl));
        self.charge_change(path, -1, -bytes, changes, undo);
        Ok(())
    }

    fn is_builtin(&self, path: &str) -> bool {
        path == "/zookeeper/quota" || path == "/zookeeper/config"
    }

    #[allow(clippy::too_many_arguments)]
    fn set_data(
        &mut self,
        ctx: TxnContext,
        path: &str,
        data: &Option<Vec<u8>>,
        version: i32,
        caller: Option<&Caller>,
        changes: &mut Changes,
        undo: &mut Vec<Undo>,
    ) -> Result<TxnOutcome, ZkError> {
        path::validate(path)?;
        let id = self.id_of(path).ok_or(ZkError::NoNode)?;
        let node = self.slot(id).ok_or(ZkError::NoNode)?;
        self.permit(caller, node, jute::perms::WRITE)?;
        let grown = data.as_ref().map_or(0, |d| d.len() as i64) - node.data().map_or(0, |d| d.len() as i64);
        self.within_quota(caller, path, 0, grown)?;
        let node = self.slot_mut(id).ok_or(ZkError::NoNode)?;
        if version != -1 && node.stat.version != version {
            return Err(ZkError::BadVersion);
        }
        let acl = node.acl();
        let old = node.replace_data(data.as_deref());
        undo.push(Undo::Data { path: path.to_string(), old, stat: node.stat });
        node.stat.version = node.stat.version.wrapping_add(1);
        node.stat.mzxid = ctx.zxid;
        node.stat.mtime = ctx.time_ms;
        let stat = node.wire_stat();
        changes.nodes.push(id);
        changes.triggers.push(self.trigger(Event::DataChanged, path.to_string(), acl));
        self.charge_change(path, 0, grown, changes, undo);
        Ok(TxnOutcome::Stat(stat))
    }

    fn set_acl(
        &mut self,
        path: &str,
        acl: &[AclEntry],
        version: i32,
        caller: Option<&Caller>,
        changes: &mut Changes,
        undo: &mut Vec<Undo>,
    ) -> Result<TxnOutcome, ZkError> {
        path::validate(path)?;
        let acl = Self::requested_acl(caller, acl)?;
        let id = self.id_of(path).ok_or(ZkError::NoNode)?;
        self.permit(caller, self.slot(id).ok_or(ZkError::NoNode)?, jute::perms::ADMIN)?;
        let acl = self.intern_acl(&acl);
        let node = self.slot_mut(id).ok_or(ZkError::NoNode)?;
        if version != -1 && node.stat.aversion != version {
            return Err(ZkError::BadVersion);
        }
        let old = node.replace_acl(acl);
        undo.push(Undo::Acl { path: path.to_string(), old, stat: node.stat });
        node.stat.aversion = node.stat.aversion.wrapping_add(1);
        let stat = node.wire_stat();
        changes.nodes.push(id);
        Ok(TxnOutcome::Stat(stat))
    }

    /// Reverses a failed multi's steps, newest first. Node ids change (a
    /// restored node gets a new one), so the changes name restored nodes
    /// again; ids of undone creations name nothing, or a node made later.
    fn rollback(&mut self, undo: Vec<Undo>, changes: &mut Changes) {
        for step in undo.into_iter().rev() {
            match step {
                Undo::Created { path, parent_stat } => {
                    let Some(id) = self.id_of(&path) else { continue };
                    if let Some(node) = self.remove_id(id) {
                        if let NodeKind::Ephemeral(owner) = node.kind() {
                            if let Some(s) = self.sessions.get_mut(&owner) {
                                s.ephemerals.remove(&path);
                            }
                        }
                        if let Some(parent) = node.parent().and_then(|pid| self.slot_mut(pid)) {
                            parent.children.remove(id);
                            parent.stat = parent_stat;
                        }
                    }
                }
                Undo::Deleted { path, mut node, parent_stat } => {
                    if let NodeKind::Ephemeral(owner) = node.kind() {
                        if let Some(s) = self.sessions.get_mut(&owner) {
                            s.ephemerals.insert(path.clone());
                        }
                    }
                    // The parent may be back under a new id itself.
                    let id = self.link(&path, |parent, _| {
                        node.set_parent(parent);
                        node
                    });
                    changes.nodes.push(id);
                    if let Some(parent) = self.id_of(path::parent(&path)).and_then(|pid| self.slot_mut(pid)) {
                        parent.stat = parent_stat;
                    }
                }
                Undo::Data { path, old, stat } => {
                    if let Some(node) = self.id_of(&path).and_then(|id| self.slot_mut(id)) {
                        node.restore(old);
                        node.stat = stat;
                    }
                }
                Undo::Acl { path, old, stat } => {
                    if let Some(node) = self.id_of(&path).and_then(|id| self.slot_mut(id)) {
                        node.restore(old);
                        node.stat = stat;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
