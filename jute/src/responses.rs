//! Reply bodies, each following a `ReplyHeader` whose `err` is 0.
//!
//! When the header's `err` is nonzero the real server sends no body at all.

use crate::data::{Acl, Stat};
use crate::record::{record, record_fields};

record! {
    /// Reply to create (1): the created path (with any sequence suffix).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct CreateResponse {
        /// The actual path created.
        pub path: String,
    }
}

record! {
    /// Reply to create2 (15), createContainer (19) and createTTL (21).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Create2Response {
        /// The actual path created.
        pub path: String,
        /// The new node's stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to exists (3) on an existing node (a missing node is err NoNode, no body).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ExistsResponse {
        /// The node's stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to getData (4), and to reconfig (16) with the new config as data.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetDataResponse {
        /// The node's data (`None`: null on the wire).
        pub data: Option<Vec<u8>>,
        /// The node's stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to setData (5).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetDataResponse {
        /// The node's stat after the write.
        pub stat: Stat,
    }
}

record! {
    /// Reply to getACL (6).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetAclResponse {
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// The node's stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to setACL (7).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetAclResponse {
        /// The node's stat after the ACL change.
        pub stat: Stat,
    }
}

record! {
    /// Reply to getChildren (8).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetChildrenResponse {
        /// Child names (not full paths), in no particular order.
        pub children: Vec<String>,
    }
}

record! {
    /// Reply to getChildren2 (12).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetChildren2Response {
        /// Child names (not full paths).
        pub children: Vec<String>,
        /// The parent node's stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to sync (9).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SyncResponse {
        /// The synced path.
        pub path: String,
    }
}

record! {
    /// Reply to getAllChildrenNumber (104).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants (not counting the node itself).
        pub total_number: i32,
    }
}

record! {
    /// Reply to getEphemerals (103).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GetEphemeralsResponse {
        /// Full paths of the session's ephemeral nodes.
        pub ephemerals: Vec<String>,
    }
}

record! {
    /// Reply to sasl (102): the server's SASL token.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SetSaslResponse {
        /// The SASL token; null where the server has none (GSSAPI's last
        /// reply, which the Java client waits for before other requests).
        pub token: Option<Vec<u8>>,
    }
}

record! {
    /// One authenticated identity of a session, as reported by whoAmI.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ClientInfo {
        /// Auth scheme, e.g. `digest` or `ip`.
        pub auth_scheme: String,
        /// The user within that scheme.
        pub user: String,
    }
}

record! {
    /// Reply to whoAmI (107).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct WhoAmIResponse {
        /// Every identity of the session (the real server lists `ip` too).
        pub client_info: Vec<ClientInfo>,
    }
}

record! {
    /// An error code as a body: inside multi results, and (with 0) the
    /// real server's reply body to addWatch.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ErrorResponse {
        /// An `ErrorCode` value.
        pub err: i32,
    }
}

record_fields!(ClientInfo);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Id;
    use crate::record::testing::{hostile_lengths, round_trip};
    use crate::record::Record;
    use std::fmt::Debug;

    fn check<T: Record + PartialEq + Debug>(value: T) {
        let bytes = round_trip(&value);
        hostile_lengths::<T>(&bytes);
    }

    fn stat() -> Stat {
        Stat { czxid: 5, mzxid: 6, version: 2, num_children: 3, pzxid: 7, ..Stat::default() }
    }

    #[test]
    fn every_response_round_trips() {
        check(CreateResponse { path: "/a0000000001".into() });
        check(Create2Response { path: "/a".into(), stat: stat() });
        check(ExistsResponse { stat: stat() });
        check(GetDataResponse { data: Some(b"hello".to_vec()), stat: stat() });
        check(GetDataResponse::default());
        check(SetDataResponse { stat: stat() });
        check(GetAclResponse { acl: vec![Acl::new(31, Id::new("digest", "alice:h="))], stat: stat() });
        check(SetAclResponse { stat: stat() });
        check(GetChildrenResponse { children: vec!["a".into(), "b".into()] });
        check(GetChildren2Response { children: vec![], stat: stat() });
        check(SyncResponse { path: "/a".into() });
        check(GetAllChildrenNumberResponse { total_number: 6 });
        check(GetEphemeralsResponse { ephemerals: vec!["/d/e".into()] });
        check(SetSaslResponse { token: Some(vec![1, 2, 3]) });
        check(SetSaslResponse { token: None });
        check(WhoAmIResponse {
            client_info: vec![
                ClientInfo { auth_scheme: "digest".into(), user: "alice".into() },
                ClientInfo { auth_scheme: "ip".into(), user: "127.0.0.1".into() },
            ],
        });
        check(ErrorResponse { err: -101 });
    }
}
