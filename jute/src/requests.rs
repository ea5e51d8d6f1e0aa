//! Request bodies, one per op code, each following a `RequestHeader`.

use bytes::BytesMut;

use crate::data::Acl;
use crate::error::DecodeError;
use crate::reader::Reader;
use crate::record::{record, Record};
use crate::writer::{write_i64, write_nullable_string};

record! {
    /// Body of create (1), create2 (15) and createContainer (19).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CreateRequest {
        /// Path of the node to create (prefix, for sequential modes).
        pub path: String,
        /// Initial data (`None`: null on the wire).
        pub data: Option<Vec<u8>>,
        /// ACL of the new node.
        pub acl: Vec<Acl>,
        /// A `CreateMode` value.
        pub flags: i32,
    }
}

record! {
    /// Body of createTTL (21).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CreateTtlRequest {
        /// Path of the node to create.
        pub path: String,
        /// Initial data (`None`: null on the wire).
        pub data: Option<Vec<u8>>,
        /// ACL of the new node.
        pub acl: Vec<Acl>,
        /// A TTL `CreateMode` value.
        pub flags: i32,
        /// Time-to-live in milliseconds.
        pub ttl: i64,
    }
}

record! {
    /// Body of delete (2) and deleteContainer (20).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DeleteRequest {
        /// Path of the node to delete.
        pub path: String,
        /// Expected version, or -1 for any.
        pub version: i32,
    }
}

record! {
    /// Body of exists (3).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ExistsRequest {
        /// Path to stat.
        pub path: String,
        /// Whether to leave a watch.
        pub watch: bool,
    }
}

record! {
    /// Body of getData (4).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetDataRequest {
        /// Path to read.
        pub path: String,
        /// Whether to leave a data watch.
        pub watch: bool,
    }
}

record! {
    /// Body of setData (5).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetDataRequest {
        /// Path to write.
        pub path: String,
        /// New data (`None`: null on the wire).
        pub data: Option<Vec<u8>>,
        /// Expected version, or -1 for any.
        pub version: i32,
    }
}

record! {
    /// Body of getACL (6).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetAclRequest {
        /// Path whose ACL to read.
        pub path: String,
    }
}

record! {
    /// Body of setACL (7).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetAclRequest {
        /// Path whose ACL to replace.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version (aversion), or -1 for any.
        pub version: i32,
    }
}

record! {
    /// Body of getChildren (8).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetChildrenRequest {
        /// Path whose children to list.
        pub path: String,
        /// Whether to leave a child watch.
        pub watch: bool,
    }
}

record! {
    /// Body of getChildren2 (12).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetChildren2Request {
        /// Path whose children to list.
        pub path: String,
        /// Whether to leave a child watch.
        pub watch: bool,
    }
}

record! {
    /// Body of sync (9).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SyncRequest {
        /// Path to sync.
        pub path: String,
    }
}

record! {
    /// Body of check (13), used inside multi.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CheckVersionRequest {
        /// Path to check.
        pub path: String,
        /// Required version, or -1 for existence only.
        pub version: i32,
    }
}

record! {
    /// Body of getAllChildrenNumber (104).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetAllChildrenNumberRequest {
        /// Root of the subtree to count.
        pub path: String,
    }
}

record! {
    /// Body of getEphemerals (103).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetEphemeralsRequest {
        /// Only ephemerals whose path starts with this prefix are listed.
        pub prefix_path: String,
    }
}

record! {
    /// Body of addWatch (106); the real server replies with an `ErrorResponse`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct AddWatchRequest {
        /// Path to watch.
        pub path: String,
        /// 0 = persistent, 1 = persistent recursive (`ZooDefs.AddWatchModes`).
        pub mode: i32,
    }
}

record! {
    /// Body of removeWatches (18).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct RemoveWatchesRequest {
        /// Path whose watches to remove.
        pub path: String,
        /// `Watcher.WatcherType`: 1 = children, 2 = data, 3 = any.
        pub watch_type: i32,
    }
}

record! {
    /// Body of checkWatches (17).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CheckWatchesRequest {
        /// Path whose watches to check.
        pub path: String,
        /// `Watcher.WatcherType`: 1 = children, 2 = data, 3 = any.
        pub watch_type: i32,
    }
}

record! {
    /// Body of setWatches (101), sent on reconnect to re-arm watches.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetWatches {
        /// Last zxid the client saw; events after it fire immediately.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

record! {
    /// Body of setWatches2 (105): `SetWatches` plus persistent watches.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetWatches2 {
        /// Last zxid the client saw.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// Body of auth (100), sent with `xid::AUTH`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct AuthPacket {
        /// Unused by ZooKeeper (always 0).
        pub auth_type: i32,
        /// Auth scheme, e.g. `digest`.
        pub scheme: String,
        /// Scheme-specific credentials, e.g. `user:password`; null (`None`) is
        /// kept apart from empty because ZooKeeper refuses the one and accepts the other.
        pub auth: Option<Vec<u8>>,
    }
}

record! {
    /// Body of sasl (102): one client SASL token.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetSaslRequest {
        /// The SASL token.
        pub token: Vec<u8>,
    }
}

/// Body of reconfig (16).
///
/// Absent lists are null strings on the wire; they decode as `""`, and an
/// empty string is encoded back as null (-1), exactly as the Java client
/// sends an absent list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconfigRequest {
    /// Servers to add (incremental reconfig), or "".
    pub joining_servers: String,
    /// Server ids to remove (incremental reconfig), or "".
    pub leaving_servers: String,
    /// Full new membership (non-incremental reconfig), or "".
    pub new_members: String,
    /// Expected current config version, or -1 for any.
    pub cur_config_id: i64,
}

impl Record for ReconfigRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReconfigRequest {
            joining_servers: r.read_string()?,
            leaving_servers: r.read_string()?,
            new_members: r.read_string()?,
            cur_config_id: r.read_i64()?,
        })
    }

    fn write(&self, buf: &mut BytesMut) {
        write_nullable_string(buf, &self.joining_servers);
        write_nullable_string(buf, &self.leaving_servers);
        write_nullable_string(buf, &self.new_members);
        write_i64(buf, self.cur_config_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Id;
    use crate::record::testing::{hostile_lengths, round_trip};
    use std::fmt::Debug;

    fn check<T: Record + PartialEq + Debug>(value: T) {
        let bytes = round_trip(&value);
        hostile_lengths::<T>(&bytes);
    }

    fn acl() -> Vec<Acl> {
        let mut acl = Acl::open_unsafe();
        acl.push(Acl::new(7, Id::new("digest", "alice:xyz=")));
        acl
    }

    #[test]
    fn every_request_round_trips() {
        check(CreateRequest { path: "/a".into(), data: Some(b"x".to_vec()), acl: acl(), flags: 3 });
        check(CreateRequest::default());
        check(CreateTtlRequest { path: "/t".into(), data: Some(vec![0, 1, 2]), acl: acl(), flags: 5, ttl: 60_000 });
        check(DeleteRequest { path: "/a".into(), version: -1 });
        check(ExistsRequest { path: "/a".into(), watch: true });
        check(GetDataRequest { path: "/a".into(), watch: false });
        check(SetDataRequest { path: "/a".into(), data: Some(b"y".to_vec()), version: 4 });
        check(GetAclRequest { path: "/a".into() });
        check(SetAclRequest { path: "/a".into(), acl: acl(), version: 0 });
        check(GetChildrenRequest { path: "/".into(), watch: true });
        check(GetChildren2Request { path: "/".into(), watch: false });
        check(SyncRequest { path: "/a".into() });
        check(CheckVersionRequest { path: "/a".into(), version: 2 });
        check(GetAllChildrenNumberRequest { path: "/a".into() });
        check(GetEphemeralsRequest { prefix_path: "/".into() });
        check(AddWatchRequest { path: "/a".into(), mode: 1 });
        check(RemoveWatchesRequest { path: "/a".into(), watch_type: 3 });
        check(CheckWatchesRequest { path: "/a".into(), watch_type: 2 });
        check(SetWatches {
            relative_zxid: 0x32,
            data_watches: vec!["/a".into()],
            exist_watches: vec!["/nope".into(), "/x".into()],
            child_watches: vec![],
        });
        check(SetWatches2 {
            relative_zxid: 1,
            data_watches: vec![],
            exist_watches: vec!["/e".into()],
            child_watches: vec!["/c".into()],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec!["/r".into(), "/s".into()],
        });
        check(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"alice:secret".to_vec()) });
        check(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: None });
        check(GetSaslRequest { token: vec![0x60, 0x82] });
        check(ReconfigRequest {
            joining_servers: "server.5=127.0.0.1:1234:1235;1236".into(),
            leaving_servers: "3,4".into(),
            new_members: "".into(),
            cur_config_id: -1,
        });
        check(ReconfigRequest::default());
    }

    #[test]
    fn null_buffer_decodes_as_none() {
        // path "/n", data null, acl null, flags 0
        let bytes = b"\x00\x00\x00\x02/n\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00";
        assert_eq!(CreateRequest::from_bytes(bytes), Ok(CreateRequest { path: "/n".into(), ..Default::default() }));
    }

    #[test]
    fn reconfig_nulls() {
        let req = ReconfigRequest { leaving_servers: "2".into(), ..Default::default() };
        let bytes = req.to_bytes();
        assert_eq!(&bytes[..], b"\xff\xff\xff\xff\x00\x00\x00\x012\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00");
        // A zero-length string decodes to "" as well.
        let explicit = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07";
        assert_eq!(ReconfigRequest::from_bytes(explicit), Ok(ReconfigRequest { cur_config_id: 7, ..Default::default() }));
    }
}
