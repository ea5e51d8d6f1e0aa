//! One znode: its data, ACL, kind and the bookkeeping ZooKeeper reports in `Stat`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One ACL entry, as stored (the wire type lives in `jute`; this one is serialisable).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    /// Permission bits (READ=1, WRITE=2, CREATE=4, DELETE=8, ADMIN=16).
    pub perms: i32,
    /// Scheme: world, auth, digest, ip, sasl, super.
    pub scheme: String,
    /// Scheme-specific identity.
    pub id: String,
}

impl AclEntry {
    /// Converts from the wire record.
    pub fn from_wire(acl: &jute::Acl) -> Self {
        AclEntry { perms: acl.perms, scheme: acl.id.scheme.clone(), id: acl.id.id.clone() }
    }

    /// Converts to the wire record.
    pub fn to_wire(&self) -> jute::Acl {
        jute::Acl {
            perms: self.perms,
            id: jute::Id { scheme: self.scheme.clone(), id: self.id.clone() },
        }
    }

    /// `world:anyone` with every permission, ZooKeeper's OPEN_ACL_UNSAFE.
    pub fn open() -> Vec<AclEntry> {
        vec![AclEntry { perms: jute::perms::ALL, scheme: "world".into(), id: "anyone".into() }]
    }
}

/// A node's ACL. Lists are interned by the tree, so the thousands of nodes
/// that share one (usually `world:anyone`) hold one copy between them.
pub type Acl = Arc<[AclEntry]>;

/// A node's children, as their full paths (the same allocations as the
/// tree's keys); nothing is allocated for a leaf.
#[derive(Debug, Clone, Default)]
pub struct Children(Option<Box<BTreeSet<Arc<str>>>>);

impl Children {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |c| c.len())
    }

    /// True for a leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a child by its full path.
    pub fn insert(&mut self, path: Arc<str>) {
        self.0.get_or_insert_with(Default::default).insert(path);
    }

    /// Removes a child by its full path.
    pub fn remove(&mut self, path: &str) {
        if let Some(set) = self.0.as_mut() {
            set.remove(path);
            if set.is_empty() {
                self.0 = None;
            }
        }
    }

    /// The children's full paths, in order.
    pub fn paths(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().flat_map(|c| c.iter())
    }

    /// The children's names (last path component), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.paths().map(|p| super::path::basename(p))
    }
}

/// What kind of znode this is; decides its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// Lives until deleted.
    Persistent,
    /// Deleted when the owning session ends.
    Ephemeral(i64),
    /// Deleted by the leader once it has had children and has none left.
    Container,
    /// Deleted by the leader when unmodified and childless for this many ms.
    Ttl(i64),
}

/// The persistent part of ZooKeeper's `Stat` (dataLength and numChildren are derived).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// zxid of the last change to the children list.
    pub pzxid: i64,
    /// Leader time of the create, ms.
    pub ctime: i64,
    /// Leader time of the last data change, ms.
    pub mtime: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of children-list changes (creations and deletions).
    pub cversion: i32,
    /// Number of ACL changes.
    pub aversion: i32,
}

/// A znode held in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// The node's data; `None` when created or set with null, which
    /// ZooKeeper hands back as null.
    pub data: Option<Box<[u8]>>,
    /// The node's ACL (interned, see [`Acl`]).
    pub acl: Acl,
    /// Kind, and for ephemerals the owner.
    pub kind: NodeKind,
    /// Bookkeeping.
    pub stat: NodeStat,
    /// Child creations so far: the next sequential suffix.
    pub seq: i32,
    /// Children (not persisted: rebuilt from the paths on load).
    #[serde(skip)]
    pub children: Children,
}

impl Node {
    /// A new node created at `zxid`, `time_ms`.
    pub fn new(data: Option<Box<[u8]>>, acl: Acl, kind: NodeKind, zxid: i64, time_ms: i64) -> Self {
        Node {
            data,
            acl,
            kind,
            stat: NodeStat {
                czxid: zxid,
                mzxid: zxid,
                pzxid: zxid,
                ctime: time_ms,
                mtime: time_ms,
                version: 0,
                cversion: 0,
                aversion: 0,
            },
            seq: 0,
            children: Children::default(),
        }
    }

    /// Length of the data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The session owning this node if it is ephemeral, else 0.
    pub fn ephemeral_owner(&self) -> i64 {
        match self.kind {
            NodeKind::Ephemeral(owner) => owner,
            // ZooKeeper 3.8 reports 0 for containers and TTL nodes too.
            _ => 0,
        }
    }

    /// The `Stat` a client sees.
    pub fn wire_stat(&self) -> jute::Stat {
        jute::Stat {
            czxid: self.stat.czxid,
            mzxid: self.stat.mzxid,
            ctime: self.stat.ctime,
            mtime: self.stat.mtime,
            version: self.stat.version,
            cversion: self.stat.cversion,
            aversion: self.stat.aversion,
            ephemeral_owner: self.ephemeral_owner(),
            data_length: self.data_len() as i32,
            num_children: self.children.len() as i32,
            pzxid: self.stat.pzxid,
        }
    }
}
