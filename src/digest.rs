//! A digest of the replicated state, to compare servers: two servers that
//! applied the same log prefix must report the same digest at the same zxid.
//!
//! It covers every znode (path, data, ACL, kind and owner, the whole Stat
//! bookkeeping, the sequential counter) in path order, and the session table
//! (id, timeout, password) in id order. It is answered by the `hash`
//! four-letter word as `zxid digest` and used by the fault harness to check
//! that an ensemble converges after faults heal.

use sha1::{Digest, Sha1};

use crate::tree::DataTree;

/// The tree's digest: SHA-1 over a canonical encoding, as 40 hex digits.
pub fn tree_digest(tree: &DataTree) -> String {
    let mut h = Sha1::new();
    let mut nodes: Vec<(String, &crate::tree::node::Node)> = Vec::with_capacity(tree.node_count());
    tree.walk(|path, node| nodes.push((path.to_string(), node)));
    nodes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (path, node) in nodes {
        h.update((path.len() as u64).to_be_bytes());
        h.update(path.as_bytes());
        // The stored form is deterministic (children are derived and left out).
        match bincode::serialize(&tree.stored(node)) {
            Ok(bytes) => {
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(&bytes);
            }
            Err(e) => h.update(format!("unencodable node: {e}").as_bytes()),
        }
    }
    h.update(b"sessions");
    for (id, s) in tree.sessions() {
        h.update(id.to_be_bytes());
        h.update(s.timeout_ms.to_be_bytes());
        h.update((s.passwd.len() as u64).to_be_bytes());
        h.update(&s.passwd);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::node::{AclEntry, NodeKind, StoredNode};

    #[test]
    fn equal_trees_equal_digests_and_any_difference_shows() {
        let mut a = DataTree::new();
        let mut b = DataTree::new();
        // Insertion order must not matter.
        a.insert_loaded("/x".into(), StoredNode::new(Some(b"1".to_vec()), AclEntry::open(), NodeKind::Persistent, 5, 9));
        a.insert_loaded("/y".into(), StoredNode::new(None, AclEntry::open(), NodeKind::Persistent, 6, 9));
        b.insert_loaded("/y".into(), StoredNode::new(None, AclEntry::open(), NodeKind::Persistent, 6, 9));
        b.insert_loaded("/x".into(), StoredNode::new(Some(b"1".to_vec()), AclEntry::open(), NodeKind::Persistent, 5, 9));
        assert_eq!(tree_digest(&a), tree_digest(&b));
        // Data, stat and null-versus-empty all count.
        let mut c = DataTree::new();
        c.insert_loaded("/x".into(), StoredNode::new(Some(b"2".to_vec()), AclEntry::open(), NodeKind::Persistent, 5, 9));
        c.insert_loaded("/y".into(), StoredNode::new(None, AclEntry::open(), NodeKind::Persistent, 6, 9));
        assert_ne!(tree_digest(&a), tree_digest(&c));
        let mut d = DataTree::new();
        d.insert_loaded("/x".into(), StoredNode::new(Some(b"1".to_vec()), AclEntry::open(), NodeKind::Persistent, 5, 9));
        d.insert_loaded("/y".into(), StoredNode::new(Some(Vec::new()), AclEntry::open(), NodeKind::Persistent, 6, 9));
        assert_ne!(tree_digest(&a), tree_digest(&d));
    }
}
