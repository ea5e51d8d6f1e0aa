//! Reads: answered from the applied tree by the connection's writer, in
//! session order, so a read always sees the session's earlier writes.

use bytes::BytesMut;
use jute::{
    event_type, ClientInfo, ExistsResponse, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, MultiResponse, MultiResult, Record, SetWatches2, WhoAmIResponse,
};

use crate::error::ZkError;
use crate::tree::acl::{allowed, AuthId};
use crate::tree::{DataTree, Node};
use crate::watch::{ConnId, WatchKind, WatchManager, WatcherType};

/// A read request.
#[derive(Debug)]
pub enum ReadOp {
    /// exists, optionally leaving a watch.
    Exists {
        /// Path.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// getData.
    GetData {
        /// Path.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// getACL.
    GetAcl {
        /// Path.
        path: String,
    },
    /// getChildren / getChildren2.
    GetChildren {
        /// Path.
        path: String,
        /// Leave a watch.
        watch: bool,
        /// getChildren2: also return the Stat.
        with_stat: bool,
    },
    /// getAllChildrenNumber.
    AllChildrenNumber {
        /// Path.
        path: String,
    },
    /// getEphemerals of the caller's session.
    Ephemerals {
        /// Only paths starting with this.
        prefix: String,
    },
    /// whoAmI.
    WhoAmI,
    /// multiRead.
    MultiRead(Vec<MultiReadOp>),
    /// addWatch.
    AddWatch {
        /// Path.
        path: String,
        /// 0 = persistent, 1 = persistent recursive.
        mode: i32,
    },
    /// removeWatches.
    RemoveWatches {
        /// Path.
        path: String,
        /// 1 children, 2 data, 3 any, 4 persistent, 5 persistent recursive.
        watch_type: i32,
    },
    /// checkWatches.
    CheckWatches {
        /// Path.
        path: String,
        /// As for removeWatches.
        watch_type: i32,
    },
}

/// One op of a multiRead: getData or getChildren of a path, the only two
/// ZooKeeper runs there (ops::decode refuses a multiRead holding any other).
#[derive(Debug)]
pub enum MultiReadOp {
    /// getData.
    GetData(String),
    /// getChildren.
    GetChildren(String),
}

impl ReadOp {
    /// The znode this read names, if one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ReadOp::Exists { path, .. }
            | ReadOp::GetData { path, .. }
            | ReadOp::GetAcl { path }
            | ReadOp::GetChildren { path, .. }
            | ReadOp::AllChildrenNumber { path }
            | ReadOp::AddWatch { path, .. }
            | ReadOp::RemoveWatches { path, .. }
            | ReadOp::CheckWatches { path, .. } => Some(path),
            ReadOp::Ephemerals { .. } | ReadOp::WhoAmI | ReadOp::MultiRead(_) => None,
        }
    }
}

/// Who is reading: the connection, its session and its identities.
pub struct Reader<'a> {
    /// Applied tree.
    pub tree: &'a DataTree,
    /// This server's watches.
    pub watches: &'a WatchManager,
    /// The connection.
    pub conn: ConnId,
    /// The session.
    pub session_id: i64,
    /// Identities the connection has proven.
    pub ids: &'a [AuthId],
    /// No ACL is checked (`skipACL=yes`).
    pub skip_acl: bool,
    /// The ensemble of zoo.cfg, which `/zookeeper/config` shows until a
    /// reconfig writes it (see [`Reader::config_data`]).
    pub members: &'a std::collections::BTreeMap<u64, crate::config::Peer>,
}

impl Reader<'_> {
    /// The node at `p`, if this connection may read it with one of `perms`.
    /// As on ZooKeeper, reads do not check a path's form: a malformed path
    /// names no node.
    fn permitted(&self, p: &str, perms: i32) -> Result<&Node, ZkError> {
        let node = self.lookup(p).ok_or(ZkError::NoNode)?;
        if !self.may(node, perms) {
            return Err(ZkError::NoAuth);
        }
        Ok(node)
    }

    /// The node a read names. ZooKeeper's tree also holds the root under
    /// "" (a path no client library sends), and its reads answer for it.
    fn lookup(&self, p: &str) -> Option<&Node> {
        self.tree.get(if p.is_empty() { "/" } else { p })
    }

    fn may(&self, node: &Node, perms: i32) -> bool {
        self.skip_acl || allowed(self.tree.acl(node), perms, self.ids)
    }

    fn readable(&self, p: &str) -> Result<&Node, ZkError> {
        self.permitted(p, jute::perms::READ)
    }

    /// What `/zookeeper/config` holds on an ensemble that no reconfig has
    /// written yet: as on ZooKeeper, where every member sets it from its
    /// zoo.cfg as it starts, its `server.N` lines (the role always given)
    /// and `version=0`. None for other nodes, a single server, or once a
    /// reconfig has written the node (the log's then).
    fn config_data(&self, path: &str, node: &Node) -> Option<Vec<u8>> {
        if path != crate::raft::membership::CONFIG_PATH || self.members.is_empty() || node.data_len() > 0 {
            return None;
        }
        let servers = self.members.iter().map(|(id, peer)| (*id, peer.spec.clone())).collect();
        Some(crate::raft::membership::render(&servers, 0).into_bytes())
    }

    /// A node's stat as answered: `/zookeeper/config`'s data length is that
    /// of the text [`Reader::config_data`] answers, as ZooKeeper's stat of it.
    fn stat(&self, path: &str, node: &Node) -> jute::Stat {
        let stat = node.wire_stat();
        match self.config_data(path, node) {
            Some(data) => jute::Stat { data_length: data.len() as i32, ..stat },
            None => stat,
        }
    }

    /// A node's data and stat as answered, `/zookeeper/config`'s text
    /// rendered once for both.
    fn data_and_stat(&self, path: &str, node: &Node) -> (Option<Vec<u8>>, jute::Stat) {
        match self.config_data(path, node) {
            Some(data) => {
                let stat = jute::Stat { data_length: data.len() as i32, ..node.wire_stat() };
                (Some(data), stat)
            }
            None => (node.data().map(<[u8]>::to_vec), node.wire_stat()),
        }
    }

    fn sorted_children(&self, node: &Node) -> Vec<String> {
        self.tree.child_names(node)
    }

    /// Runs one read, writing the response body into `buf`.
    pub fn execute(&self, op: &ReadOp, buf: &mut BytesMut) -> Result<(), ZkError> {
        match op {
            ReadOp::Exists { path, watch } => {
                // ZooKeeper's exists refuses only a NUL in the path.
                if path.contains('\0') {
                    return Err(ZkError::BadArguments(format!("invalid path {path:?}")));
                }
                if *watch {
                    self.watches.add(self.conn, WatchKind::Data, path);
                }
                let node = self.lookup(path).ok_or(ZkError::NoNode)?;
                ExistsResponse { stat: self.stat(path, node) }.write(buf);
            }
            ReadOp::GetData { path, watch } => {
                let node = self.readable(path)?;
                if *watch {
                    self.watches.add(self.conn, WatchKind::Data, path);
                }
                let (data, stat) = self.data_and_stat(path, node);
                GetDataResponse { data, stat }.write(buf);
            }
            ReadOp::GetAcl { path } => {
                // As ZooKeeper: READ or ADMIN lets one see the ACL, but
                // digest hashes only with ADMIN (`user:x` otherwise).
                let node = self.permitted(path, jute::perms::READ | jute::perms::ADMIN)?;
                let admin = self.may(node, jute::perms::ADMIN);
                let acl = self
                    .tree
                    .acl(node)
                    .iter()
                    .map(|a| {
                        let mut wire = a.to_wire();
                        if !admin && wire.id.scheme == "digest" {
                            let user = wire.id.id.split(':').next().unwrap_or_default();
                            wire.id.id = format!("{user}:x");
                        }
                        wire
                    })
                    .collect();
                GetAclResponse { acl, stat: self.stat(path, node) }.write(buf);
            }
            ReadOp::GetChildren { path, watch, with_stat } => {
                let node = self.readable(path)?;
                if *watch {
                    self.watches.add(self.conn, WatchKind::Child, path);
                }
                let children = self.sorted_children(node);
                if *with_stat {
                    GetChildren2Response { children, stat: self.stat(path, node) }.write(buf);
                } else {
                    GetChildrenResponse { children }.write(buf);
                }
            }
            ReadOp::AllChildrenNumber { path } => {
                self.readable(path)?;
                let total = self.tree.count_descendants(path) as i32;
                GetAllChildrenNumberResponse { total_number: total }.write(buf);
            }
            ReadOp::Ephemerals { prefix } => {
                // As ZooKeeper: a blank prefix (or "/") means all.
                let all = prefix.trim().is_empty() || prefix.trim() == "/";
                let ephemerals = self
                    .tree
                    .session(self.session_id)
                    .map(|s| s.ephemerals.iter().filter(|p| all || p.starts_with(prefix.as_str())).cloned().collect())
                    .unwrap_or_default();
                GetEphemeralsResponse { ephemerals }.write(buf);
            }
            ReadOp::WhoAmI => {
                let client_info = self
                    .ids
                    .iter()
                    .map(|id| {
                        // As ZooKeeper's whoAmI: a digest identity shows only its
                        // user name; `super` (which has no provider) an empty one.
                        let user = match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                            "super" => String::new(),
                            _ => id.id.clone(),
                        };
                        ClientInfo { auth_scheme: id.scheme.clone(), user }
                    })
                    .collect();
                WhoAmIResponse { client_info }.write(buf);
            }
            ReadOp::MultiRead(ops) => {
                // No watch is set: ops::decode dropped the ops' flags.
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    let r = match op {
                        MultiReadOp::GetData(path) => self.readable(path).map(|n| {
                            let (data, stat) = self.data_and_stat(path, n);
                            MultiResult::GetData { data, stat }
                        }),
                        MultiReadOp::GetChildren(path) => self.readable(path).map(|n| MultiResult::GetChildren(self.sorted_children(n))),
                    };
                    results.push(r.unwrap_or_else(|e| MultiResult::Error(e.raw())));
                }
                MultiResponse { results }.write(buf);
            }
            ReadOp::AddWatch { path, mode } => {
                let kind = match mode {
                    0 => WatchKind::Persistent,
                    1 => WatchKind::PersistentRecursive,
                    _ => return Err(ZkError::BadArguments(format!("addWatch mode {mode}"))),
                };
                self.watches.add(self.conn, kind, path);
                // ZooKeeper 3.8 answers addWatch with an ErrorResponse{0} body.
                jute::ErrorResponse { err: 0 }.write(buf);
            }
            ReadOp::RemoveWatches { path, watch_type } => {
                if !self.watches.remove(self.conn, watcher_type(*watch_type)?, path) {
                    return Err(ZkError::NoWatcher);
                }
            }
            ReadOp::CheckWatches { path, watch_type } => {
                if !self.watches.has(self.conn, watcher_type(*watch_type)?, path) {
                    return Err(ZkError::NoWatcher);
                }
            }
        }
        Ok(())
    }

    /// Re-registers watches after a reconnect, firing at once those whose
    /// condition changed after `relative_zxid` (what the client missed).
    pub fn set_watches(&self, req: &SetWatches2) {
        let z = req.relative_zxid;
        for p in &req.data_watches {
            match self.tree.get(p) {
                None => self.watches.notify(self.conn, event_type::NODE_DELETED, p),
                Some(n) if n.stat.mzxid > z => self.watches.notify(self.conn, event_type::NODE_DATA_CHANGED, p),
                Some(_) => self.watches.add(self.conn, WatchKind::Data, p),
            }
        }
        for p in &req.exist_watches {
            match self.tree.get(p) {
                Some(_) => self.watches.notify(self.conn, event_type::NODE_CREATED, p),
                None => self.watches.add(self.conn, WatchKind::Data, p),
            }
        }
        for p in &req.child_watches {
            match self.tree.get(p) {
                None => self.watches.notify(self.conn, event_type::NODE_DELETED, p),
                Some(n) if n.stat.pzxid > z => self.watches.notify(self.conn, event_type::NODE_CHILDREN_CHANGED, p),
                Some(_) => self.watches.add(self.conn, WatchKind::Child, p),
            }
        }
        for p in &req.persistent_watches {
            self.watches.add(self.conn, WatchKind::Persistent, p);
        }
        for p in &req.persistent_recursive_watches {
            self.watches.add(self.conn, WatchKind::PersistentRecursive, p);
        }
    }
}

/// The watches a removeWatches/checkWatches type names.
fn watcher_type(watch_type: i32) -> Result<WatcherType, ZkError> {
    WatcherType::from_wire(watch_type).ok_or_else(|| ZkError::BadArguments(format!("watch type {watch_type}")))
}
