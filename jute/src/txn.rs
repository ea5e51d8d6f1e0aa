//! The records of ZooKeeper's own files: the transaction log's entries and
//! the snapshot's nodes (zookeeper.jute's `org.apache.zookeeper.txn` and
//! `persistence` modules, and `StatPersisted`). A server never sends these to
//! a client; paddock reads them to import a ZooKeeper data directory.

use crate::data::Acl;
use crate::record::{record, record_fields};

record! {
    /// The header of a snapshot or transaction log file.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct FileHeader {
        /// "ZKSN" for snapshots, "ZKLG" for logs, as a big-endian int.
        pub magic: i32,
        /// Format version (2 since ZooKeeper 3.0).
        pub version: i32,
        /// Database id (always 0 in practice).
        pub dbid: i64,
    }
}

record! {
    /// A node's stored metadata: `Stat` without the derived fields, with
    /// `cversion` counting child creations only.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct StatPersisted {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last data change.
        pub mzxid: i64,
        /// Create time, ms.
        pub ctime: i64,
        /// Last data change time, ms.
        pub mtime: i64,
        /// Number of data changes.
        pub version: i32,
        /// Number of children created (not changes: see `DataNode.copyStat`).
        pub cversion: i32,
        /// Number of ACL changes.
        pub aversion: i32,
        /// Owning session; or the container marker, or a TTL (extended types).
        pub ephemeral_owner: i64,
        /// zxid of the last change to the children list.
        pub pzxid: i64,
    }
}

record! {
    /// One node in a snapshot (after its path).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SnapshotNode {
        /// The node's data (`None`: null).
        pub data: Option<Vec<u8>>,
        /// Key into the snapshot's ACL table (-1: open to everyone).
        pub acl: i64,
        /// Its stored stat.
        pub stat: StatPersisted,
    }
}

record! {
    /// The header of every logged transaction.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct TxnHeader {
        /// Session that issued it.
        pub client_id: i64,
        /// The client's request number.
        pub cxid: i32,
        /// The transaction's zxid.
        pub zxid: i64,
        /// Leader time, ms.
        pub time: i64,
        /// Operation code (`OpCode`), or -1 for an error.
        pub kind: i32,
    }
}

record! {
    /// `create` and `create2`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CreateTxn {
        /// Final path (with any sequential suffix).
        pub path: String,
        /// Data (`None`: null).
        pub data: Option<Vec<u8>>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// Owned by the header's session.
        pub ephemeral: bool,
        /// The parent's stored cversion after this create (-1: one more).
        pub parent_c_version: i32,
    }
}

record! {
    /// `createContainer`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CreateContainerTxn {
        /// Path.
        pub path: String,
        /// Data (`None`: null).
        pub data: Option<Vec<u8>>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// The parent's stored cversion after this create.
        pub parent_c_version: i32,
    }
}

record! {
    /// `createTTL`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CreateTtlTxn {
        /// Final path.
        pub path: String,
        /// Data (`None`: null).
        pub data: Option<Vec<u8>>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// The parent's stored cversion after this create.
        pub parent_c_version: i32,
        /// Time to live, ms.
        pub ttl: i64,
    }
}

record! {
    /// `delete` and `deleteContainer`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DeleteTxn {
        /// Path.
        pub path: String,
    }
}

record! {
    /// `setData` (and `reconfig`, on `/zookeeper/config`).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetDataTxn {
        /// Path.
        pub path: String,
        /// New data (`None`: null).
        pub data: Option<Vec<u8>>,
        /// The node's version after the change.
        pub version: i32,
    }
}

record! {
    /// `setACL`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetAclTxn {
        /// Path.
        pub path: String,
        /// New ACL.
        pub acl: Vec<Acl>,
        /// The node's ACL version after the change.
        pub version: i32,
    }
}

record! {
    /// `createSession`.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct CreateSessionTxn {
        /// Negotiated timeout, ms.
        pub time_out: i32,
    }
}

record! {
    /// `closeSession` (since 3.6; older logs have no body).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CloseSessionTxn {
        /// The session's ephemerals to delete.
        pub paths2_delete: Vec<String>,
    }
}

record! {
    /// One operation of a `multi`: its type and its own encoded record.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Txn {
        /// Operation code, -1 for a failed op.
        pub kind: i32,
        /// The op's record (`CreateTxn`, `DeleteTxn`, ...).
        pub data: Vec<u8>,
    }
}

record_fields!(StatPersisted, Txn);

record! {
    /// `multi`: every op of a transaction, all applied or (when any is an
    /// error) none.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct MultiTxn {
        /// The ops, in order.
        pub txns: Vec<Txn>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::testing::{hostile_lengths, round_trip};
    use crate::record::Record;

    #[test]
    fn records_round_trip_and_survive_hostile_lengths() {
        let create =
            CreateTxn { path: "/a/b".into(), data: Some(b"x".to_vec()), acl: Acl::open_unsafe(), ephemeral: true, parent_c_version: 3 };
        hostile_lengths::<CreateTxn>(&round_trip(&create));
        let multi = MultiTxn { txns: vec![Txn { kind: 1, data: create.to_bytes().to_vec() }, Txn { kind: -1, data: vec![0, 0, 0, 1] }] };
        hostile_lengths::<MultiTxn>(&round_trip(&multi));
        let node = SnapshotNode { data: None, acl: -1, stat: StatPersisted { czxid: 1, cversion: 2, ..Default::default() } };
        hostile_lengths::<SnapshotNode>(&round_trip(&node));
        round_trip(&CloseSessionTxn { paths2_delete: vec!["/e".into()] });
    }

    #[test]
    fn the_header_reads_as_zookeeper_writes_it() {
        // "ZKLG", version 2, dbid 0.
        let bytes = [b'Z', b'K', b'L', b'G', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        let h = FileHeader::from_bytes(&bytes).expect("header");
        assert_eq!(h, FileHeader { magic: i32::from_be_bytes(*b"ZKLG"), version: 2, dbid: 0 });
    }
}
