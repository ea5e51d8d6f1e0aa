//! The Raft state machine: applies ZooKeeper transactions to the in-memory
//! tree, persists what changed to RocksDB in the same atomic batch as the
//! applied log id, and fires watches before anyone can read the new state.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use rocksdb::{IteratorMode, WriteBatch, DB};
use serde::{Deserialize, Serialize};

use super::{Applied, Response, TypeConfig};
use crate::state::{Shared, SmState};
use crate::storage::{self, cf, CF_META, CF_SESSIONS, CF_TREE};
use crate::tree::{Changes, DataTree, Node, SessionInfo, TxnContext};

type StorageResult<T> = Result<T, StorageError<u64>>;

const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const KEY_ZXID: &[u8] = b"zxid";

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_state_machine(&e).into()
}

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_state_machine(&e).into()
}

/// The serialised form of a snapshot.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_zxid: i64,
    sessions: Vec<(i64, SessionInfo)>,
    nodes: Vec<(String, Node)>,
}

/// A snapshot kept for followers that need one.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

/// paddock's `RaftStateMachine`.
pub struct StateMachine {
    db: Arc<DB>,
    shared: Arc<Shared>,
    snapshot_seq: u64,
}

impl StateMachine {
    /// Loads the applied state from RocksDB.
    pub fn load(db: &DB) -> Result<SmState, storage::StorageError> {
        let meta = cf(db, CF_META)?;
        let last_applied: Option<LogId<u64>> = match db.get_cf(meta, KEY_APPLIED)? {
            Some(b) => storage::decode(CF_META, &b)?,
            None => None,
        };
        let membership: StoredMembership<u64, BasicNode> = match db.get_cf(meta, KEY_MEMBERSHIP)? {
            Some(b) => storage::decode(CF_META, &b)?,
            None => StoredMembership::default(),
        };
        let mut tree = DataTree::new();
        for item in db.iterator_cf(cf(db, CF_SESSIONS)?, IteratorMode::Start) {
            let (k, v) = item?;
            let id = storage::key_u64(CF_SESSIONS, &k)? as i64;
            tree.insert_session(id, storage::decode(CF_SESSIONS, &v)?);
        }
        // Keys are paths, so parents sort before their children.
        for item in db.iterator_cf(cf(db, CF_TREE)?, IteratorMode::Start) {
            let (k, v) = item?;
            let path = String::from_utf8(k.to_vec())
                .map_err(|e| storage::StorageError::Corrupt { cf: CF_TREE, reason: e.to_string() })?;
            tree.insert_loaded(path, storage::decode(CF_TREE, &v)?);
        }
        let last_zxid: i64 = match db.get_cf(meta, KEY_ZXID)? {
            Some(b) => storage::decode(CF_META, &b)?,
            None => 0,
        };
        tree.set_last_zxid(last_zxid);
        Ok(SmState { tree, last_applied, membership })
    }

    /// Wraps the database and the shared state it was loaded into.
    pub fn new(db: Arc<DB>, shared: Arc<Shared>) -> Self {
        StateMachine { db, shared, snapshot_seq: 0 }
    }

    /// Writes the changed nodes and sessions plus the applied point in one batch.
    fn persist(&self, state: &SmState, changes: &Changes) -> Result<(), storage::StorageError> {
        let db = &self.db;
        let (tree_cf, sess_cf, meta_cf) = (cf(db, CF_TREE)?, cf(db, CF_SESSIONS)?, cf(db, CF_META)?);
        let mut batch = WriteBatch::default();
        for path in &changes.nodes {
            match state.tree.get(path) {
                Some(node) => batch.put_cf(tree_cf, path.as_bytes(), storage::encode(CF_TREE, node)?),
                None => batch.delete_cf(tree_cf, path.as_bytes()),
            }
        }
        for id in &changes.sessions {
            let key = storage::u64_key(*id as u64);
            match state.tree.session(*id) {
                Some(info) => batch.put_cf(sess_cf, key, storage::encode(CF_SESSIONS, info)?),
                None => batch.delete_cf(sess_cf, key),
            }
        }
        batch.put_cf(meta_cf, KEY_APPLIED, storage::encode(CF_META, &state.last_applied)?);
        batch.put_cf(meta_cf, KEY_ZXID, storage::encode(CF_META, &state.tree.last_zxid())?);
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, storage::encode(CF_META, &state.membership)?);
        // Not fsynced here: the log entries being applied are already durable
        // and are re-applied after a crash from the last persisted point.
        db.write(batch)?;
        Ok(())
    }

    /// Replaces everything in the tree and session column families with `state`.
    fn persist_all(&self, state: &SmState) -> Result<(), storage::StorageError> {
        let db = &self.db;
        let (tree_cf, sess_cf, meta_cf) = (cf(db, CF_TREE)?, cf(db, CF_SESSIONS)?, cf(db, CF_META)?);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(tree_cf, [0u8].as_slice(), [0xFFu8; 8].as_slice());
        batch.delete_range_cf(sess_cf, storage::u64_key(0), storage::u64_key(u64::MAX));
        for (path, node) in state.tree.nodes() {
            batch.put_cf(tree_cf, path.as_bytes(), storage::encode(CF_TREE, node)?);
        }
        for (id, info) in state.tree.sessions() {
            batch.put_cf(sess_cf, storage::u64_key(*id as u64), storage::encode(CF_SESSIONS, info)?);
        }
        batch.put_cf(meta_cf, KEY_APPLIED, storage::encode(CF_META, &state.last_applied)?);
        batch.put_cf(meta_cf, KEY_ZXID, storage::encode(CF_META, &state.tree.last_zxid())?);
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, storage::encode(CF_META, &state.membership)?);
        db.write(batch)?;
        db.flush_wal(true)?;
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        let state = self.shared.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut changes = Changes::default();
        let mut applied = Vec::new();
        let mut state = self.shared.write();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let responses = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Membership(m) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
                EntryPayload::Normal(req) => {
                    // Each transaction gets the next zxid, so zxids are dense
                    // and the same on every server, whatever the batching.
                    let mut responses = Vec::with_capacity(req.proposals.len());
                    for p in &req.proposals {
                        let zxid = state.tree.last_zxid() + 1;
                        let ctx = TxnContext { zxid, time_ms: req.time_ms, session_id: p.session_id };
                        let outcome = state.tree.apply(ctx, &p.txn, &mut changes);
                        responses.push(Response { zxid, outcome });
                    }
                    responses
                }
            };
            applied.push(Applied(responses));
        }
        self.persist(&state, &changes).map_err(sm_write_err)?;
        // Still under the write lock: events are queued before any reader can
        // observe the state that caused them.
        self.shared.watches.fire(&changes.triggers);
        for id in &changes.closed_sessions {
            self.shared.sessions.ended(*id);
        }
        let zxid = state.tree.last_zxid();
        drop(state);
        self.shared.applied.send_replace(zxid);
        Ok(applied)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        SnapshotBuilder { db: self.db.clone(), shared: self.shared.clone(), seq: self.snapshot_seq }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = storage::decode(CF_META, &bytes).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let mut tree = DataTree::new();
        for (id, info) in data.sessions {
            tree.insert_session(id, info);
        }
        for (path, node) in data.nodes {
            tree.insert_loaded(path, node);
        }
        tree.set_last_zxid(data.last_zxid);
        let mut state = self.shared.write();
        *state = SmState { tree, last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        self.persist_all(&state).map_err(sm_write_err)?;
        let stored = StoredSnapshot { meta: meta.clone(), data: bytes };
        save_snapshot(&self.db, &stored).map_err(sm_write_err)?;
        let zxid = state.tree.last_zxid();
        drop(state);
        self.shared.applied.send_replace(zxid);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let meta_cf = cf(&self.db, CF_META).map_err(sm_read_err)?;
        let Some(bytes) = self.db.get_cf(meta_cf, KEY_SNAPSHOT).map_err(sm_read_err)? else { return Ok(None) };
        let stored: StoredSnapshot = storage::decode(CF_META, &bytes).map_err(sm_read_err)?;
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) }))
    }
}

fn save_snapshot(db: &DB, stored: &StoredSnapshot) -> Result<(), storage::StorageError> {
    let meta_cf = cf(db, CF_META)?;
    db.put_cf(meta_cf, KEY_SNAPSHOT, storage::encode(CF_META, stored)?)?;
    db.flush_wal(true)?;
    Ok(())
}

/// Builds a snapshot of the applied state.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    shared: Arc<Shared>,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let (meta, data) = {
            let state = self.shared.read();
            let data = SnapshotData {
                last_zxid: state.tree.last_zxid(),
                sessions: state.tree.sessions().iter().map(|(k, v)| (*k, v.clone())).collect(),
                nodes: state.tree.nodes().map(|(p, n)| (p.to_string(), n.clone())).collect(),
            };
            let snapshot_id = match state.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.seq),
                None => format!("none-{}", self.seq),
            };
            let meta = SnapshotMeta { last_log_id: state.last_applied, last_membership: state.membership.clone(), snapshot_id };
            (meta, data)
        };
        let bytes = storage::encode(CF_META, &data).map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot { meta: meta.clone(), data: bytes.clone() };
        // The snapshot (and everything applied before it) must be durable
        // before openraft purges the logs it covers.
        save_snapshot(&self.db, &stored).map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}
