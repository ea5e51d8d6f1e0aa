//! One znode: its data, ACL, kind and the bookkeeping ZooKeeper reports in `Stat`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
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
        jute::Acl { perms: self.perms, id: jute::Id { scheme: self.scheme.clone(), id: self.id.clone() } }
    }

    /// `world:anyone` with every permission, ZooKeeper's OPEN_ACL_UNSAFE.
    pub fn open() -> Vec<AclEntry> {
        vec![AclEntry { perms: jute::perms::ALL, scheme: "world".into(), id: "anyone".into() }]
    }
}

/// An ACL list as stored and interned: the tree keeps one copy of each
/// distinct list, and a node names it by a [`AclId`].
pub type Acl = Arc<[AclEntry]>;

/// Index of an interned ACL list in the tree's table.
pub type AclId = u32;

/// The hasher of a node's child set: node ids are small dense integers, so
/// a multiply spreads them well enough and costs next to nothing.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A node's children, as the ids of their nodes; nothing is allocated for a
/// leaf. Unordered, as in ZooKeeper: readers sort the names they return.
#[derive(Debug, Clone, Default)]
#[allow(clippy::box_collection)] // boxed: one pointer per node instead of a whole empty set
pub struct Children(Option<Box<HashSet<u32, BuildHasherDefault<IdHasher>>>>);

impl Children {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |c| c.len())
    }

    /// True for a leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a child by its node id.
    pub fn insert(&mut self, id: u32) {
        self.0.get_or_insert_with(Default::default).insert(id);
    }

    /// Removes a child by its node id.
    pub fn remove(&mut self, id: u32) {
        if let Some(set) = self.0.as_mut() {
            set.remove(&id);
            if set.is_empty() {
                self.0 = None;
            }
        }
    }

    /// The children's node ids, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|c| c.iter().copied())
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
    /// Child creations so far: the next sequential suffix. Kept here, where
    /// it fills the struct's padding, but stored beside the stat (see
    /// [`StoredNode`]), as it always was.
    #[serde(skip)]
    pub seq: i32,
}

/// How a node is kept on disk and in snapshots: everything but its
/// children, which are rebuilt from the paths when loading. The field order
/// is the storage format; do not change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNode<'a> {
    /// The node's data (`None` for null).
    pub data: Option<Cow<'a, [u8]>>,
    /// The node's ACL.
    pub acl: Cow<'a, [AclEntry]>,
    /// Kind, and for ephemerals the owner.
    pub kind: NodeKind,
    /// Bookkeeping (its `seq` is skipped: it follows).
    pub stat: NodeStat,
    /// Child creations so far.
    pub seq: i32,
}

impl StoredNode<'static> {
    /// A new node's record, created at `zxid`, `time_ms` (for tests and tools).
    pub fn new(data: Option<Vec<u8>>, acl: Vec<AclEntry>, kind: NodeKind, zxid: i64, time_ms: i64) -> Self {
        StoredNode { data: data.map(Cow::Owned), acl: Cow::Owned(acl), kind, stat: NodeStat::created(zxid, time_ms), seq: 0 }
    }
}

impl NodeStat {
    /// The stat of a node created at `zxid`, `time_ms`.
    pub fn created(zxid: i64, time_ms: i64) -> Self {
        NodeStat { czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time_ms, mtime: time_ms, ..Default::default() }
    }
}

/// The tag of a [`NodeKind`], the first byte of a node's packed bytes.
const TAG_PERSISTENT: u8 = 0;
const TAG_EPHEMERAL: u8 = 1;
const TAG_CONTAINER: u8 = 2;
const TAG_TTL: u8 = 3;
/// Set in the first byte when the data is not null.
const HAS_DATA: u8 = 0x80;

/// A znode held in memory: 80 bytes plus one allocation that holds
/// everything else, so with 100-byte values a znode costs well under half
/// of what separate boxes for the node, its key and its data did. It keeps
/// its name and its parent's id rather than its whole path: the tree
/// rebuilds a path by walking up, and a deep tree does not repeat its
/// prefixes in every node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Bookkeeping, and the next sequential suffix.
    pub stat: NodeStat,
    /// Packed, in order: kind tag and null flag (one byte); the ACL id
    /// (varint); for ephemerals the owner and for TTL nodes the TTL (8
    /// bytes); the parent's id plus one, 0 for the root (varint); the
    /// name's length (varint); the name; the data.
    bytes: Box<[u8]>,
    /// Children, by node id.
    pub children: Children,
}

/// Appends `v` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let low = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Bytes that [`put_varint`] writes for `v`.
fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

/// Reads a LEB128 varint at `*at`, moving past it (0 past the end).
fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0u32);
    while let Some(b) = bytes.get(*at) {
        *at += 1;
        v |= u64::from(b & 0x7F).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

/// A node's packed bytes, decoded.
struct Layout {
    tag: u8,
    has_data: bool,
    acl: AclId,
    number: i64,
    parent: Option<u32>,
    /// Where the name starts and ends; the data follows it.
    name: std::ops::Range<usize>,
}

fn pack(parent: Option<u32>, name: &str, data: Option<&[u8]>, acl: AclId, kind: NodeKind) -> Box<[u8]> {
    let (tag, number) = match kind {
        NodeKind::Persistent => (TAG_PERSISTENT, None),
        NodeKind::Ephemeral(owner) => (TAG_EPHEMERAL, Some(owner)),
        NodeKind::Container => (TAG_CONTAINER, None),
        NodeKind::Ttl(ms) => (TAG_TTL, Some(ms)),
    };
    let payload = data.unwrap_or_default();
    let parent = parent.map_or(0, |p| u64::from(p) + 1);
    // Exactly the size needed: a Vec shrunk by `into_boxed_slice` keeps
    // its allocator chunk, and the spare bytes would stay with the node.
    let len = 1
        + varint_len(u64::from(acl))
        + number.map_or(0, |_| 8)
        + varint_len(parent)
        + varint_len(name.len() as u64)
        + name.len()
        + payload.len();
    let mut out = Vec::with_capacity(len);
    out.push(tag | if data.is_some() { HAS_DATA } else { 0 });
    put_varint(&mut out, u64::from(acl));
    if let Some(n) = number {
        out.extend_from_slice(&n.to_le_bytes());
    }
    put_varint(&mut out, parent);
    put_varint(&mut out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(payload);
    debug_assert_eq!(out.len(), len);
    out.into_boxed_slice()
}

impl Node {
    /// A node named `name` under the node with id `parent` (`None` and ""
    /// for the root), created at `zxid`, `time_ms`.
    pub fn new(parent: Option<u32>, name: &str, data: Option<&[u8]>, acl: AclId, kind: NodeKind, zxid: i64, time_ms: i64) -> Self {
        Self::from_parts(parent, name, data, acl, kind, NodeStat::created(zxid, time_ms))
    }

    /// A node with the given bookkeeping.
    pub fn from_parts(parent: Option<u32>, name: &str, data: Option<&[u8]>, acl: AclId, kind: NodeKind, stat: NodeStat) -> Self {
        Node { stat, bytes: pack(parent, name, data, acl, kind), children: Children::default() }
    }

    fn layout(&self) -> Layout {
        let b = &self.bytes;
        let first = b.first().copied().unwrap_or_default();
        let tag = first & 0x0F;
        let mut at = 1;
        let acl = get_varint(b, &mut at) as AclId;
        let mut number = 0;
        if tag == TAG_EPHEMERAL || tag == TAG_TTL {
            let mut n = [0u8; 8];
            if let Some(src) = b.get(at..at + 8) {
                n.copy_from_slice(src);
            }
            number = i64::from_le_bytes(n);
            at += 8;
        }
        let parent = (get_varint(b, &mut at) as u32).checked_sub(1);
        let len = get_varint(b, &mut at) as usize;
        let start = at.min(b.len());
        let end = start.saturating_add(len).min(b.len());
        Layout { tag, has_data: first & HAS_DATA != 0, acl, number, parent, name: start..end }
    }

    /// The node's name: the last segment of its path ("" for the root).
    pub fn name(&self) -> &str {
        self.place().1
    }

    /// The id of the node's parent (`None` for the root).
    pub fn parent(&self) -> Option<u32> {
        self.layout().parent
    }

    /// The parent's id and the name together, decoding the packed bytes
    /// once (what the tree's index hashes and compares).
    pub fn place(&self) -> (Option<u32>, &str) {
        let l = self.layout();
        // Packed from a &str, so always UTF-8.
        (l.parent, std::str::from_utf8(&self.bytes[l.name]).unwrap_or_default())
    }

    /// Moves the node under another parent id (a node put back by a
    /// rollback, whose parent was itself put back under a new id).
    pub fn set_parent(&mut self, parent: Option<u32>) {
        if parent != self.parent() {
            self.bytes = pack(parent, self.name(), self.data(), self.acl(), self.kind());
        }
    }

    /// The node's data; `None` when it is null.
    pub fn data(&self) -> Option<&[u8]> {
        let l = self.layout();
        l.has_data.then(|| &self.bytes[l.name.end..])
    }

    /// The interned ACL's id.
    pub fn acl(&self) -> AclId {
        self.layout().acl
    }

    /// Kind, and for ephemerals the owner.
    pub fn kind(&self) -> NodeKind {
        let l = self.layout();
        match l.tag {
            TAG_EPHEMERAL => NodeKind::Ephemeral(l.number),
            TAG_CONTAINER => NodeKind::Container,
            TAG_TTL => NodeKind::Ttl(l.number),
            _ => NodeKind::Persistent,
        }
    }

    /// Replaces the data, handing back the old packed bytes (for [`Node::restore`]).
    pub fn replace_data(&mut self, data: Option<&[u8]>) -> Box<[u8]> {
        let bytes = self.repacked(data, self.acl());
        std::mem::replace(&mut self.bytes, bytes)
    }

    /// Replaces the ACL, handing back the old packed bytes (for [`Node::restore`]).
    pub fn replace_acl(&mut self, acl: AclId) -> Box<[u8]> {
        let bytes = self.repacked(self.data(), acl);
        std::mem::replace(&mut self.bytes, bytes)
    }

    /// This node's place and kind packed with `data` and `acl`.
    fn repacked(&self, data: Option<&[u8]>, acl: AclId) -> Box<[u8]> {
        pack(self.parent(), self.name(), data, acl, self.kind())
    }

    /// Puts back what [`Node::replace_data`] or [`Node::replace_acl`] handed out.
    pub fn restore(&mut self, bytes: Box<[u8]>) {
        self.bytes = bytes;
    }

    /// Length of the data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    /// The session owning this node if it is ephemeral, else 0.
    pub fn ephemeral_owner(&self) -> i64 {
        // ZooKeeper 3.8 reports 0 for containers and TTL nodes too.
        match self.kind() {
            NodeKind::Ephemeral(owner) => owner,
            _ => 0,
        }
    }

    /// The record to store, borrowing the data and `acl` (the node's interned list).
    pub fn stored<'a>(&'a self, acl: &'a [AclEntry]) -> StoredNode<'a> {
        StoredNode { data: self.data().map(Cow::Borrowed), acl: Cow::Borrowed(acl), kind: self.kind(), stat: self.stat, seq: self.stat.seq }
    }

    /// The `Stat` a client sees.
    pub fn wire_stat(&self) -> jute::Stat {
        let l = self.layout();
        jute::Stat {
            czxid: self.stat.czxid,
            mzxid: self.stat.mzxid,
            ctime: self.stat.ctime,
            mtime: self.stat.mtime,
            version: self.stat.version,
            cversion: self.stat.cversion,
            aversion: self.stat.aversion,
            ephemeral_owner: if l.tag == TAG_EPHEMERAL { l.number } else { 0 },
            data_length: if l.has_data { (self.bytes.len() - l.name.end) as i32 } else { 0 },
            num_children: self.children.len() as i32,
            pzxid: self.stat.pzxid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_fits_in_80_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 80);
        assert_eq!(std::mem::size_of::<Option<Node>>(), 80);
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
            assert_eq!(get_varint(&out, &mut 0), v);
        }
    }

    #[test]
    fn name_parent_and_data_share_one_allocation() {
        let long = "x".repeat(300);
        let kinds = [NodeKind::Persistent, NodeKind::Ephemeral(i64::MAX - 3), NodeKind::Container, NodeKind::Ttl(60_000)];
        let cases = [
            (None, "", None),
            (Some(0), "a", Some(&b""[..])),
            (Some(127), "b", Some(&b"value"[..])),
            (Some(u32::MAX - 1), long.as_str(), Some(&[0x80u8, 0xFF][..])),
        ];
        for (i, (kind, (parent, name, data))) in kinds.into_iter().cycle().zip(cases).enumerate() {
            let acl = [0, 5, 300, u32::MAX][i];
            let mut n = Node::new(parent, name, data, acl, kind, 1, 2);
            assert_eq!((n.parent(), n.name(), n.data(), n.acl(), n.kind()), (parent, name, data, acl, kind));
            assert_eq!(n.wire_stat().data_length as usize, n.data_len());
            let old = n.replace_data(Some(b"new"));
            assert_eq!((n.name(), n.data(), n.data_len(), n.acl()), (name, Some(&b"new"[..]), 3, acl));
            n.restore(old);
            let old = n.replace_acl(7);
            assert_eq!((n.parent(), n.name(), n.data(), n.acl(), n.kind()), (parent, name, data, 7, kind));
            n.restore(old);
            assert_eq!((n.parent(), n.name(), n.data(), n.acl(), n.kind()), (parent, name, data, acl, kind));
            n.set_parent(Some(9));
            assert_eq!((n.parent(), n.name(), n.data(), n.acl(), n.kind()), (Some(9), name, data, acl, kind));
            let owner = if let NodeKind::Ephemeral(o) = kind { o } else { 0 };
            assert_eq!(n.wire_stat().ephemeral_owner, owner);
        }
    }

    #[test]
    fn the_stored_form_is_the_old_encoding() {
        // What older versions wrote for a node: data, acl, kind, stat (no seq), seq.
        #[derive(Serialize)]
        struct Old {
            data: Option<Vec<u8>>,
            acl: Vec<AclEntry>,
            kind: NodeKind,
            stat: (i64, i64, i64, i64, i64, i32, i32, i32),
            seq: i32,
        }
        let stat = NodeStat { czxid: 1, mzxid: 2, pzxid: 3, ctime: 4, mtime: 5, version: 6, cversion: 7, aversion: 8, seq: 9 };
        let n = Node::from_parts(Some(0), "p", Some(b"abc"), 0, NodeKind::Ttl(60), stat);
        let acl = AclEntry::open();
        let old = Old { data: Some(b"abc".to_vec()), acl: acl.clone(), kind: NodeKind::Ttl(60), stat: (1, 2, 3, 4, 5, 6, 7, 8), seq: 9 };
        let bytes = bincode::serialize(&n.stored(&acl)).unwrap();
        assert_eq!(bytes, bincode::serialize(&old).unwrap());
        let back: StoredNode = bincode::deserialize(&bytes).unwrap();
        assert_eq!((back.stat.czxid, back.stat.seq, back.seq), (1, 0, 9));
    }
}
