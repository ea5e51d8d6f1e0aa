//! ZooKeeper's snapshot format, written: the file `FileSnap.serialize` of
//! ZooKeeper 3.8 writes, so that a ZooKeeper server started on it serves
//! paddock's tree.
//!
//! In order: the file header; the sessions (id, timeout); the ACL table
//! (key, list); every node from the root (path "") down, parents before
//! children, as (path, data, ACL key, stored stat); the path "/"; the seal
//! (the Adler-32 of every byte so far, then "/" again); the digest
//! ZooKeeper 3.6+ compares with the tree it loaded (zxid, digest version,
//! the tree's digest); a second seal. The stored stat differs from the one
//! clients see in `cversion`, which counts child creations there (ZooKeeper
//! reports twice that minus the children): paddock keeps that count as each
//! node's next sequence number.

use std::io::{self, Write};

use bytes::BytesMut;
use jute::txn::{FileHeader, StatPersisted};
use jute::{write_i32, write_i64, write_opt_buffer, write_string, write_vec, Record};

use crate::import::files::{Adler32, FORMAT_VERSION, SNAP_MAGIC};
use crate::import::replay::{owner_of, CONFIG_NODE};
use crate::tree::{DataTree, Node, NodeKind};

/// The digest version ZooKeeper 3.8's `DigestCalculator` writes and checks.
const DIGEST_VERSION: i32 = 2;
/// Nodes under this prefix are left out of ZooKeeper's digest (each server
/// updates its quota statistics on its own).
const UNDIGESTED: &str = "/zookeeper/";
/// Encoded bytes gathered before they are written out.
const CHUNK: usize = 64 << 10;

/// What a written snapshot holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// The zxid it is at (its file is named for it).
    pub zxid: i64,
    /// Nodes, the root and `/zookeeper` included.
    pub nodes: usize,
    /// Sessions.
    pub sessions: usize,
    /// TTL nodes: ZooKeeper keeps them only with extended types enabled.
    pub ttl_nodes: usize,
    /// The file's length.
    pub bytes: u64,
    /// ZooKeeper's digest of the tree, as written.
    pub digest: i64,
}

/// The output, with the checksum of every byte passed on so far (Java's
/// `CheckedOutputStream`, which ZooKeeper writes through).
struct Checked<W> {
    out: W,
    sum: Adler32,
    buf: BytesMut,
    bytes: u64,
}

impl<W: Write> Checked<W> {
    /// Writes out what is gathered, adding it to the checksum.
    fn pass(&mut self) -> io::Result<()> {
        self.sum.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// ZooKeeper's `SnapStream.sealStream`: the checksum so far, then "/".
    fn seal(&mut self) -> io::Result<()> {
        self.pass()?;
        write_i64(&mut self.buf, i64::from(self.sum.value()));
        write_string(&mut self.buf, "/");
        self.pass()
    }
}

/// Writes `tree` and its sessions to `out` as a ZooKeeper snapshot at the
/// tree's last zxid.
pub fn write(tree: &DataTree, out: impl Write) -> io::Result<Written> {
    let mut w = Checked { out, sum: Adler32::default(), buf: BytesMut::with_capacity(CHUNK * 2), bytes: 0 };
    let zxid = tree.last_zxid();
    FileHeader { magic: SNAP_MAGIC, version: FORMAT_VERSION, dbid: 0 }.write(&mut w.buf);
    write_i32(&mut w.buf, tree.sessions().len() as i32);
    for (id, session) in tree.sessions() {
        write_i64(&mut w.buf, *id);
        write_i32(&mut w.buf, session.timeout_ms);
    }
    let acls: Vec<_> = tree.acl_table().collect();
    write_i32(&mut w.buf, acls.len() as i32);
    for (id, list) in acls {
        write_i64(&mut w.buf, acl_key(id));
        write_vec(&mut w.buf, &list.iter().map(|a| a.to_wire()).collect::<Vec<_>>());
    }
    let mut written = Written { zxid, sessions: tree.sessions().len(), ..Written::default() };
    let mut failed = None;
    tree.walk(|path, node| {
        if failed.is_some() {
            return;
        }
        // ZooKeeper names the root "" here. Its own ensemble description
        // is rewritten by every ZooKeeper member as it starts; a standalone
        // one has none, so paddock's is not passed on.
        let path = if path == "/" { "" } else { path };
        let data = if path == CONFIG_NODE { Some(&[][..]) } else { node.data() };
        let stat = stored_stat(node);
        write_string(&mut w.buf, path);
        write_opt_buffer(&mut w.buf, data);
        write_i64(&mut w.buf, acl_key(node.acl()));
        stat.write(&mut w.buf);
        if !path.starts_with(UNDIGESTED) {
            written.digest = written.digest.wrapping_add(node_digest(path, data, &stat));
        }
        written.nodes += 1;
        written.ttl_nodes += usize::from(matches!(node.kind(), NodeKind::Ttl(_)));
        if w.buf.len() >= CHUNK {
            failed = w.pass().err();
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    write_string(&mut w.buf, "/");
    w.seal()?;
    write_i64(&mut w.buf, zxid);
    write_i32(&mut w.buf, DIGEST_VERSION);
    write_i64(&mut w.buf, written.digest);
    w.seal()?;
    w.out.flush()?;
    written.bytes = w.bytes;
    Ok(written)
}

/// The key of ACL list `id` in the snapshot's table (keys start at 1; -1
/// is ZooKeeper's own for "open", not needed here).
fn acl_key(id: crate::tree::AclId) -> i64 {
    i64::from(id) + 1
}

/// A node's stat as ZooKeeper stores it.
fn stored_stat(node: &Node) -> StatPersisted {
    let s = node.stat;
    StatPersisted {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.seq,
        aversion: s.aversion,
        ephemeral_owner: owner_of(node.kind()),
        pzxid: s.pzxid,
    }
}

/// One node's part of ZooKeeper's tree digest (`DigestCalculator`, version
/// 2): the CRC-32 of its path, data and stored stat. The tree's digest is
/// the sum of its nodes'.
fn node_digest(path: &str, data: Option<&[u8]>, s: &StatPersisted) -> i64 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    crc.update(data.unwrap_or_default());
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
        crc.update(&v.to_be_bytes());
    }
    for v in [s.version, s.cversion, s.aversion] {
        crc.update(&v.to_be_bytes());
    }
    crc.update(&s.ephemeral_owner.to_be_bytes());
    i64::from(crc.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::files::read_snapshot;
    use crate::tree::txn::{CreateKind, CreateOp, Txn};
    use crate::tree::{AclEntry, Changes, SessionInfo, TxnContext};

    fn apply(tree: &mut DataTree, zxid: i64, session_id: i64, txn: Txn) {
        let ctx = TxnContext { zxid, time_ms: 1_700_000_000_000 + zxid, session_id };
        tree.apply(ctx, &txn, &mut Changes::default());
    }

    fn create(path: &str, data: &[u8], kind: CreateKind, acl: Vec<AclEntry>) -> Txn {
        Txn::Create(CreateOp { path: path.into(), data: Some(data.to_vec()), acl, kind, sequential: false })
    }

    #[test]
    fn a_written_snapshot_reads_back_as_zookeeper_stores_the_tree() {
        let mut tree = DataTree::new();
        tree.insert_session(0x77, SessionInfo { timeout_ms: 30_000, passwd: vec![1; 16], ephemerals: Default::default() });
        let secret = vec![AclEntry { perms: 31, scheme: "digest".into(), id: "u:hash".into() }];
        apply(&mut tree, 1, 0x77, create("/app", b"v0", CreateKind::Persistent, AclEntry::open()));
        let seq = CreateOp { path: "/app/seq-".into(), data: None, acl: secret.clone(), kind: CreateKind::Persistent, sequential: true };
        apply(&mut tree, 2, 0x77, Txn::Create(seq));
        apply(&mut tree, 3, 0x77, create("/app/x", b"", CreateKind::Persistent, AclEntry::open()));
        apply(&mut tree, 4, 0x77, Txn::Delete { path: "/app/x".into(), version: -1 });
        apply(&mut tree, 5, 0x77, create("/app/e", b"held", CreateKind::Ephemeral, AclEntry::open()));
        apply(&mut tree, 6, 0x77, create("/c", b"", CreateKind::Container, AclEntry::open()));
        apply(&mut tree, 7, 0x77, create("/t", b"", CreateKind::Ttl(60_000), AclEntry::open()));

        let mut file = tempfile::NamedTempFile::new().unwrap();
        let written = write(&tree, &mut file).unwrap();
        assert_eq!(written.zxid, 7);
        assert_eq!(written.sessions, 1);
        assert_eq!(written.ttl_nodes, 1);
        assert_eq!(written.bytes, std::fs::metadata(file.path()).unwrap().len());
        // The import's reader checks the header and the first seal.
        let snap = read_snapshot(file.path(), 7).unwrap();
        assert_eq!(snap.sessions, vec![(0x77, 30_000)]);
        let node = |p: &str| &snap.nodes.iter().find(|(path, _)| path == p).unwrap_or_else(|| panic!("{p} missing")).1;
        // Parents come before children, the root first.
        assert_eq!(snap.nodes[0].0, "/");
        assert_eq!(snap.nodes.len(), written.nodes);
        let app = node("/app");
        assert_eq!(app.data.as_deref(), Some(&b"v0"[..]));
        // Three creations under /app (seq-, x, e), x deleted: ZooKeeper
        // stores 3 and reports 2 x 3 - 2 children = 4, as paddock does.
        assert_eq!(app.stat.cversion, 3);
        assert_eq!(tree.get("/app").unwrap().wire_stat().cversion, 4);
        assert_eq!(snap.acls[&app.acl], AclEntry::open());
        assert_eq!(snap.acls[&node("/app/seq-0000000000").acl], secret);
        assert_eq!(node("/app/e").stat.ephemeral_owner, 0x77);
        assert_eq!(node("/c").stat.ephemeral_owner, i64::MIN);
        assert_eq!(node("/t").stat.ephemeral_owner as u64, 0xFF00_0000_0000_EA60);
        assert_eq!(node("/zookeeper/config").data.as_deref(), Some(&[][..]));

        // After the first seal: the digest and a second seal, to the end.
        let bytes = std::fs::read(file.path()).unwrap();
        let tail = &bytes[bytes.len() - (8 + 4 + 8 + 8 + 5)..];
        assert_eq!(&tail[..8], &7i64.to_be_bytes());
        assert_eq!(&tail[8..12], &DIGEST_VERSION.to_be_bytes());
        assert_eq!(&tail[12..20], &written.digest.to_be_bytes());
        let sealed = crate::import::files::adler32(&bytes[..bytes.len() - 13]);
        assert_eq!(&tail[20..28], &i64::from(sealed).to_be_bytes());
        assert_eq!(&tail[28..], b"\0\0\0\x01/");
    }

    #[test]
    fn the_digest_is_zookeepers() {
        // DigestCalculator's node digest for path "/a", data "x", czxid 1,
        // mzxid 2, pzxid 3, ctime 4, mtime 5, versions 6, 7, 8, owner 9:
        // the CRC-32 of "/a", "x" and the stat's 60 big-endian bytes
        // (Python's zlib.crc32 of the same bytes).
        let stat =
            StatPersisted { czxid: 1, mzxid: 2, ctime: 4, mtime: 5, version: 6, cversion: 7, aversion: 8, ephemeral_owner: 9, pzxid: 3 };
        assert_eq!(node_digest("/a", Some(b"x"), &stat), 0x6045_5818);
        assert_eq!(node_digest("/a", None, &stat), node_digest("/a", Some(b""), &stat));
    }
}
