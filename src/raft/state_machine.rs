//! The Raft state machine: applies ZooKeeper transactions to the in-memory
//! tree and fires watches before anyone can read the new state.
//!
//! Applying writes nothing to disk: the committed log is the durable record
//! (as in ZooKeeper, whose transaction log plus snapshots are its only
//! persistence). What changed is remembered by node and written to RocksDB,
//! with the applied log id in the same batch, as a checkpoint every
//! [`CHECKPOINT_EVERY`] changes and at each snapshot. After a restart the
//! state is loaded as of the last checkpoint written and openraft re-applies
//! the committed log after it (it reads the committed id that the log store
//! saves).
//!
//! A snapshot is therefore already on disk when it is taken: building one
//! writes the last checkpoint and freezes the database with a RocksDB
//! checkpoint (hard links to its table files), which costs milliseconds
//! whatever the size of the tree. Only a follower that needs the snapshot
//! makes it be encoded, from that frozen copy.

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};

use super::{Applied, Request, Response, TypeConfig};
use crate::state::{Shared, SmState};
use crate::storage::{self, cf, CF_META, CF_SESSIONS, CF_TREE};
use crate::tree::{Changes, DataTree, Node, SessionInfo, StoredNode, TxnContext};

type StorageResult<T> = Result<T, StorageError<u64>>;

const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_ZXID: &[u8] = b"zxid";
/// Where snapshots were kept before meta and data were split; deleted on
/// the next save (the meta alone is read far more often than the data).
/// Snapshot data now lives beside the database (see [`snapshot_dir`]).
const KEY_SNAPSHOT_OLD: &[u8] = b"snapshot";
const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
const KEY_SNAPSHOT_DATA: &[u8] = b"snapshot_data";

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_state_machine(&e).into()
}

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_state_machine(&e).into()
}

/// The serialised form of a snapshot.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_zxid: i64,
    sessions: Vec<(i64, SessionInfo)>,
    nodes: Vec<(String, StoredNode<'static>)>,
}

/// Serialises every write of the persisted state and the stored snapshot.
/// A snapshot is built on its own task while the state machine may install
/// a newer one from the leader; checkpoints are written and the
/// check-then-write in [`save_snapshot`] runs under this lock, so an older
/// state never replaces a newer one.
type SnapshotLock = Arc<Mutex<()>>;

/// Proof that the [`SnapshotLock`] is held.
type SnapshotGuard<'a> = std::sync::MutexGuard<'a, ()>;

/// Takes the snapshot lock. A panic elsewhere while holding it leaves
/// nothing half-written (every write is one atomic batch), so a poisoned
/// lock is still usable.
fn lock_snapshots(lock: &SnapshotLock) -> SnapshotGuard<'_> {
    lock.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checkpoints taken but not yet written, oldest first. Taking one happens
/// on the state machine's task, between applies; writing it is left to a
/// blocking task, which writes every queued one in order (so a later
/// checkpoint never lands before an earlier one).
type Checkpoints = Arc<Mutex<CheckpointQueue>>;

/// The queue behind [`Checkpoints`].
#[derive(Default)]
struct CheckpointQueue {
    batches: Vec<WriteBatch>,
    /// Set when a checkpoint could not be written; the state machine then
    /// fails its applies (as ZooKeeper stops on a failed disk write) until
    /// an installed snapshot replaces the whole persisted state.
    failed: Option<String>,
}

/// Locks the checkpoint queue (a panic while holding it leaves the queue
/// itself whole, so a poisoned lock is still usable).
fn queue(checkpoints: &Checkpoints) -> std::sync::MutexGuard<'_, CheckpointQueue> {
    checkpoints.lock().unwrap_or_else(|e| e.into_inner())
}

/// Changed nodes that make the state machine take a checkpoint between
/// snapshots. Encoding every change since the last snapshot at once stalled
/// applies for ~100 ms per 75k nodes, every snapCount/2..snapCount writes
/// (the p99 of write workloads); 16k at a time cost ~20 ms.
const CHECKPOINT_EVERY: usize = 16_384;

/// Applies a checkpoint is encoded over, a slice after each: encoding all
/// 16k records at once held applies up for 6-10 ms, which was most of the
/// p99 of write workloads; 2k take about a millisecond. A larger one (the
/// tombstones of a session's million ephemerals) still ends within as many
/// applies, rather than slowing every apply for minutes.
const CHECKPOINT_SLICES: usize = 8;

/// Room reserved per record of a checkpoint batch: a path, a 100-byte
/// value and the stat make about 250 bytes.
const CHECKPOINT_RECORD_BYTES: usize = 320;

/// Longest the state machine holds the tree's write lock while applying
/// before it lets readers in (between two transactions).
const LOCK_SLICE: std::time::Duration = std::time::Duration::from_millis(20);

/// Nodes and sessions changed since the last checkpoint.
#[derive(Default)]
struct Dirty {
    /// The zxid the last checkpoint recorded, if this state machine took
    /// it: every node created at or before it that still existed then is
    /// stored, and none created after it is. None: any node may be stored.
    stored_upto: Option<i64>,
    /// Ids of nodes created or changed, one bit each (ids are dense).
    ids: Vec<u64>,
    /// Bits set in `ids`.
    marked: usize,
    /// Paths of nodes deleted that may be stored (need a tombstone).
    deleted: Vec<String>,
    sessions: HashSet<i64>,
}

impl Dirty {
    /// Remembers what a batch of applies changed.
    fn add(&mut self, changes: Changes) {
        for id in changes.nodes {
            let (word, bit) = (id as usize / 64, id % 64);
            if word >= self.ids.len() {
                self.ids.resize(word + 1, 0);
            }
            self.marked += usize::from(self.ids[word] & 1 << bit == 0);
            self.ids[word] |= 1 << bit;
        }
        // A node created since the last checkpoint was never stored, so its
        // deletion needs no tombstone (workloads that create and delete a
        // path per transaction wrote thousands per checkpoint). Its path may
        // still be stored for an older node: that node's own deletion, also
        // since the last checkpoint, has listed it already.
        let upto = self.stored_upto;
        let may_be_stored = |czxid: i64| upto.is_none_or(|upto| czxid <= upto);
        self.deleted.extend(changes.deleted.into_iter().filter(|(_, czxid)| may_be_stored(*czxid)).map(|(path, _)| path));
        self.sessions.extend(changes.sessions);
    }

    /// Roughly how many records a checkpoint would write now.
    fn len(&self) -> usize {
        self.marked + self.deleted.len() + self.sessions.len()
    }

    /// The ids of nodes created or changed (checkpoints walk them with
    /// [`Dirty::next_id`]).
    #[cfg(test)]
    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(self.next_id(0), |&id| self.next_id(u64::from(id) + 1))
    }

    /// The first id marked at or after `from`.
    fn next_id(&self, from: u64) -> Option<u32> {
        let mut word = usize::try_from(from / 64).ok()?;
        let mut bits = self.ids.get(word)? & (!0u64 << (from % 64));
        while bits == 0 {
            word += 1;
            bits = *self.ids.get(word)?;
        }
        Some(word as u32 * 64 + bits.trailing_zeros())
    }

    /// Adds what an abandoned checkpoint was to write, which is older than
    /// what is here (so `stored_upto` stays: it bounds both).
    fn merge(&mut self, older: Dirty) {
        if older.ids.len() > self.ids.len() {
            self.ids.resize(older.ids.len(), 0);
        }
        for (word, bits) in self.ids.iter_mut().zip(older.ids) {
            *word |= bits;
        }
        self.marked = self.ids.iter().map(|w| w.count_ones() as usize).sum();
        self.deleted.extend(older.deleted);
        self.sessions.extend(older.sessions);
    }
}

/// A checkpoint being encoded a slice at a time, between applies.
///
/// It is written as the state at the zxid applied when its last slice is
/// encoded. The slices encode what was dirty when it began, as it is when
/// each runs; what changes meanwhile is dirty again, and the last step
/// encodes that over them (in a batch, a key's last write wins) with the
/// sessions and the applied point. A node created after it began is left
/// to the last step: the dirty set records no tombstone for its deletion
/// (its `stored_upto` is the zxid this began at), so a slice must not
/// store it.
struct Encoding {
    /// What was dirty when it began, less the sessions (the last step
    /// encodes those).
    dirty: Dirty,
    /// The zxid applied when it began.
    began_at: i64,
    /// The records encoded so far.
    batch: WriteBatch,
    /// Records to encode per slice.
    per_slice: usize,
    /// How far the slices have got through `dirty`.
    at: DirtyCursor,
}

impl Encoding {
    /// Encodes its next slice from `tree` (all that is left if `whole`);
    /// true when none is left.
    fn slice(&mut self, db: &DB, tree: &DataTree, whole: bool) -> Result<bool, storage::StorageError> {
        let budget = if whole { usize::MAX } else { self.per_slice };
        put_dirty(&mut self.batch, cf(db, CF_TREE)?, tree, &self.dirty, self.began_at, &mut self.at, budget)
    }
}

/// A position in a [`Dirty`] set: its deleted paths first, then its ids.
#[derive(Default)]
struct DirtyCursor {
    /// The next of `deleted` to encode.
    next_deleted: usize,
    /// The least id still to encode (`u64::MAX`: none is left).
    next_id: u64,
}

/// Adds up to `budget` records of `dirty`, from `at` on, to `batch` as they
/// are in `tree`: each deleted path's node now, or a tombstone, and each
/// marked id's node. Nodes created after zxid `upto` count as absent (see
/// [`Encoding`]). True when `at` has reached the end.
fn put_dirty(
    batch: &mut WriteBatch,
    tree_cf: &rocksdb::ColumnFamily,
    tree: &DataTree,
    dirty: &Dirty,
    upto: i64,
    at: &mut DirtyCursor,
    budget: usize,
) -> Result<bool, storage::StorageError> {
    // A deleted path may have a node again; an id names whatever node
    // holds it now (see `Changes`).
    let older = |node: &&Node| node.stat.czxid <= upto;
    let mut done = 0;
    while done < budget {
        let Some(path) = dirty.deleted.get(at.next_deleted) else { break };
        at.next_deleted += 1;
        done += 1;
        match tree.get(path).filter(older) {
            Some(node) => put_node(batch, tree_cf, tree, path, node)?,
            None => batch.delete_cf(tree_cf, path.as_bytes()),
        }
    }
    while done < budget {
        let Some(id) = dirty.next_id(at.next_id) else {
            at.next_id = u64::MAX;
            break;
        };
        at.next_id = u64::from(id) + 1;
        done += 1;
        if let (Some(node), Some(path)) = (tree.get_by_id(id).filter(older), tree.path_of(id)) {
            put_node(batch, tree_cf, tree, &path, node)?;
        }
    }
    Ok(at.next_id == u64::MAX)
}

/// Adds `node`, at `path`, to a checkpoint batch.
fn put_node(
    batch: &mut WriteBatch,
    tree_cf: &rocksdb::ColumnFamily,
    tree: &DataTree,
    path: &str,
    node: &Node,
) -> Result<(), storage::StorageError> {
    batch.put_cf(tree_cf, path.as_bytes(), storage::encode(CF_TREE, &tree.stored(node))?);
    Ok(())
}

/// paddock's `RaftStateMachine`.
pub struct StateMachine {
    db: Arc<DB>,
    shared: Arc<Shared>,
    snapshot_seq: u64,
    snapshot_lock: SnapshotLock,
    checkpoints: Checkpoints,
    dirty: Dirty,
    /// The checkpoint being encoded, if one is. Only ever reached through
    /// `&mut self` (`Mutex::get_mut`, no locking): the mutex just makes the
    /// state machine `Sync`, which a RocksDB batch alone is not.
    encoding: Mutex<Option<Encoding>>,
    /// Records dirty that begin a checkpoint ([`CHECKPOINT_EVERY`]).
    checkpoint_every: usize,
    /// Applies a checkpoint is encoded over ([`CHECKPOINT_SLICES`]).
    checkpoint_slices: usize,
}

impl StateMachine {
    /// Loads the applied state from RocksDB.
    pub fn load(db: &DB) -> Result<SmState, storage::StorageError> {
        let mut tree = DataTree::new();
        // Sessions come first, so each ephemeral finds its owner.
        let persisted = read_persisted(db, &ReadOptions::default, |record| match record {
            Record::Session(id, info) => tree.insert_session(id, info),
            Record::Node(path, node) => {
                tree.insert_loaded(path, node);
            }
        })?;
        tree.set_last_zxid(persisted.last_zxid);
        Ok(SmState { tree, last_applied: persisted.last_applied, membership: persisted.membership })
    }

    /// Wraps the state's database and the shared state it was loaded into; the first
    /// snapshot is asked for after `snap_count` transactions (`raft::snapshots`
    /// moves the mark).
    pub fn new(db: Arc<DB>, shared: Arc<Shared>, snap_count: u64) -> Self {
        shared.snapshot_at.store(snap_count, Ordering::Relaxed);
        StateMachine {
            db,
            shared,
            snapshot_seq: 0,
            snapshot_lock: SnapshotLock::default(),
            checkpoints: Checkpoints::default(),
            dirty: Dirty::default(),
            encoding: Mutex::default(),
            checkpoint_every: CHECKPOINT_EVERY,
            checkpoint_slices: CHECKPOINT_SLICES,
        }
    }

    /// Queues the watch events of `changes` and ends its closed sessions'
    /// connections, leaving the rest (what is dirty) to be recorded. Called
    /// with the write lock held, before readers can see the state.
    fn publish(&self, changes: &mut Changes) {
        self.shared.watches.fire(&changes.triggers);
        changes.triggers.clear();
        for id in changes.closed_sessions.drain(..) {
            self.shared.sessions.ended(id);
        }
        for (session, path) in changes.ended_ephemerals.drain(..) {
            crate::audit::ephemeral_deleted(session, &path);
        }
    }

    /// The checkpoint being encoded, if one is.
    fn encoding(&mut self) -> &mut Option<Encoding> {
        // Never locked, so never poisoned.
        self.encoding.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes a slice of a checkpoint (the rest of it if `whole`),
    /// beginning one if none is under way, and queues it for writing once
    /// all is encoded; true if one was queued. Runs between applies, so a
    /// checkpoint is exactly the state at the applied log id it records.
    fn checkpoint_step(&mut self, whole: bool) -> bool {
        let started = std::time::Instant::now();
        let shared = self.shared.clone();
        let state = shared.read();
        let zxid = state.tree.last_zxid();
        let mut encoding = self.encoding().take().unwrap_or_else(|| {
            let mut dirty = std::mem::replace(&mut self.dirty, Dirty { stored_upto: Some(zxid), ..Dirty::default() });
            self.dirty.sessions = std::mem::take(&mut dirty.sessions);
            // Sized up front: growing a batch of megabytes by doubling
            // copied it each time. Space reserved beyond what is written
            // is never touched, so it costs no memory.
            let batch = WriteBatch::with_capacity_bytes(dirty.len().saturating_mul(CHECKPOINT_RECORD_BYTES));
            let per_slice = (dirty.len() / self.checkpoint_slices.max(1)).max(1);
            Encoding { dirty, began_at: zxid, batch, per_slice, at: DirtyCursor::default() }
        });
        let encoded = match encoding.slice(&self.db, &state.tree, whole) {
            Ok(true) => self.checkpoint(&state, &mut encoding.batch).map(|()| true),
            other => other,
        };
        match encoded {
            Ok(false) => {
                *self.encoding() = Some(encoding);
                false
            }
            Ok(true) => {
                let batch = encoding.batch;
                tracing::debug!(bytes = batch.size_in_bytes(), last_slice_ms = started.elapsed().as_millis() as u64, "checkpoint encoded");
                queue(&self.checkpoints).batches.push(batch);
                self.dirty = Dirty { stored_upto: Some(zxid), ..Dirty::default() };
                true
            }
            // What was dirty is remembered for the next one; a snapshot
            // builder finds nothing new and snapshots the last checkpoint.
            Err(e) => {
                tracing::error!("checkpoint not taken: {e}");
                self.dirty.merge(encoding.dirty);
                false
            }
        }
    }

    /// Adds the nodes and sessions dirty now plus the applied point to
    /// `batch`: the last step of a checkpoint.
    fn checkpoint(&self, state: &SmState, batch: &mut WriteBatch) -> Result<(), storage::StorageError> {
        let db = &self.db;
        let (tree_cf, sess_cf, meta_cf) = (cf(db, CF_TREE)?, cf(db, CF_SESSIONS)?, cf(db, CF_META)?);
        // Every node exists as of now: none is too new to store.
        put_dirty(batch, tree_cf, &state.tree, &self.dirty, i64::MAX, &mut DirtyCursor::default(), usize::MAX)?;
        for id in &self.dirty.sessions {
            let key = storage::u64_key(*id as u64);
            match state.tree.session(*id) {
                Some(info) => batch.put_cf(sess_cf, key, storage::encode(CF_SESSIONS, info)?),
                None => batch.delete_cf(sess_cf, key),
            }
        }
        batch.put_cf(meta_cf, KEY_APPLIED, storage::encode(CF_META, &state.last_applied)?);
        batch.put_cf(meta_cf, KEY_ZXID, storage::encode(CF_META, &state.tree.last_zxid())?);
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, storage::encode(CF_META, &state.membership)?);
        Ok(())
    }

    /// A batch that replaces everything in the tree and session column
    /// families, the applied point and the membership with `state`.
    fn replace_all(&self, state: &SmState) -> Result<WriteBatch, storage::StorageError> {
        let db = &self.db;
        let (tree_cf, sess_cf, meta_cf) = (cf(db, CF_TREE)?, cf(db, CF_SESSIONS)?, cf(db, CF_META)?);
        let mut batch = WriteBatch::default();
        // Tree keys are znode paths, UTF-8 text starting with '/': they all
        // sort between these bounds (0xFF never occurs in UTF-8).
        batch.delete_range_cf(tree_cf, [0u8].as_slice(), [0xFFu8; 8].as_slice());
        batch.delete_range_cf(sess_cf, storage::u64_key(0), storage::u64_key(u64::MAX));
        batch.delete_cf(sess_cf, storage::u64_key(u64::MAX));
        let mut failed = Ok(());
        state.tree.walk(|path, node| {
            if failed.is_ok() {
                failed = put_node(&mut batch, tree_cf, &state.tree, path, node);
            }
        });
        failed?;
        for (id, info) in state.tree.sessions() {
            batch.put_cf(sess_cf, storage::u64_key(*id as u64), storage::encode(CF_SESSIONS, info)?);
        }
        batch.put_cf(meta_cf, KEY_APPLIED, storage::encode(CF_META, &state.last_applied)?);
        batch.put_cf(meta_cf, KEY_ZXID, storage::encode(CF_META, &state.tree.last_zxid())?);
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, storage::encode(CF_META, &state.membership)?);
        Ok(batch)
    }
}

/// A log entry whose transactions are being applied, across lock slices.
struct Open {
    req: Request,
    next: usize,
    responses: Vec<Response>,
}

impl StateMachine {
    /// Applies `entries` (after finishing `open`) until all are applied
    /// (true) or [`LOCK_SLICE`] has passed (false: `open` and `entries` hold
    /// the rest), recording each entry's responses in `applied`.
    fn apply_slice(
        &self,
        state: &mut SmState,
        entries: &mut impl Iterator<Item = Entry<TypeConfig>>,
        open: &mut Option<Open>,
        applied: &mut Vec<Applied>,
        changes: &mut Changes,
    ) -> bool {
        let started = std::time::Instant::now();
        loop {
            if let Some(o) = open.as_mut() {
                while let Some(p) = o.req.proposals.get(o.next) {
                    o.next += 1;
                    if let Some(reads) = p.txn.held_reads().and_then(|seq| self.shared.held_reads.take(p.session_id, seq)) {
                        // The session's reads sent before this write, not run
                        // yet: they see everything before it, and the events
                        // of what they saw are queued first.
                        self.publish(changes);
                        for read in reads {
                            read.run_here(&state.tree, &self.shared.watches);
                        }
                    }
                    // Each transaction gets the next zxid, so zxids are
                    // dense and the same on every server, whatever the
                    // batching.
                    let zxid = state.tree.last_zxid() + 1;
                    let ctx = TxnContext { zxid, time_ms: o.req.time_ms, session_id: p.session_id };
                    let outcome = state.tree.apply(ctx, &p.txn, changes);
                    o.responses.push(Response { zxid, outcome });
                    if started.elapsed() >= LOCK_SLICE {
                        return false;
                    }
                }
                applied.push(Applied(std::mem::take(&mut o.responses)));
                *open = None;
            }
            let Some(entry) = entries.next() else { return true };
            state.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => applied.push(Applied::default()),
                EntryPayload::Membership(m) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), m);
                    applied.push(Applied::default());
                }
                EntryPayload::Normal(req) => {
                    let n = req.proposals.len() as u64;
                    let before = self.shared.txns_since_snapshot.fetch_add(n, Ordering::Relaxed);
                    let due = self.shared.snapshot_at.load(Ordering::Relaxed);
                    if before < due && before + n >= due {
                        self.shared.snapshot_due.notify_one();
                    }
                    *open = Some(Open { responses: Vec::with_capacity(req.proposals.len()), req, next: 0 });
                }
            }
        }
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
        if let Some(e) = &queue(&self.checkpoints).failed {
            return Err(sm_write_err(storage::StorageError::CheckpointLost(e.clone())));
        }
        let mut changes = Changes::default();
        let mut applied = Vec::new();
        let (mut entries, mut open) = (entries.into_iter(), None);
        let zxid = loop {
            // The guard lives in this block only: it must not be held across
            // the await below (it is not Send).
            let done = {
                let mut state = self.shared.write();
                let done = self.apply_slice(&mut state, &mut entries, &mut open, &mut applied, &mut changes);
                // Still under the write lock: events are queued before any
                // reader can observe the state that caused them.
                self.publish(&mut changes);
                done.then(|| state.tree.last_zxid())
            };
            if let Some(zxid) = done {
                break zxid;
            }
            // A long batch (sessions closing with many ephemerals) would
            // keep every reader waiting: the release woke them, and they run
            // before this task takes the lock again.
            tokio::task::yield_now().await;
        };
        self.dirty.add(changes);
        self.shared.applied.send_replace(zxid);
        let checkpointing = self.encoding().is_some() || self.dirty.len() >= self.checkpoint_every;
        if checkpointing && self.checkpoint_step(false) {
            let (db, lock, checkpoints) = (self.db.clone(), self.snapshot_lock.clone(), self.checkpoints.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = write_checkpoints(&db, &lock_snapshots(&lock), &checkpoints) {
                    // Left for the next snapshot to report: it writes
                    // (or fails to write) what is still queued.
                    tracing::warn!("checkpoint not written yet: {e}");
                }
            });
        }
        Ok(applied)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        // The builder writes this last checkpoint with the queued ones.
        self.checkpoint_step(true);
        SnapshotBuilder {
            db: self.db.clone(),
            shared: self.shared.clone(),
            seq: self.snapshot_seq,
            lock: self.snapshot_lock.clone(),
            checkpoints: self.checkpoints.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta<u64, BasicNode>, snapshot: Box<Cursor<Vec<u8>>>) -> StorageResult<()> {
        let write_err = |e: storage::StorageError| StorageIOError::write_snapshot(Some(meta.signature()), &e);
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
        self.shared.txns_since_snapshot.store(0, Ordering::Relaxed);
        let new_state = SmState { tree, last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        // One synced batch replaces the state, the applied point and the
        // stored snapshot together: a crash leaves either the old state or
        // the new one, never a mix, and openraft purges the log it covers
        // only after this returns.
        let mut batch = self.replace_all(&new_state).map_err(write_err)?;
        let write_bytes = || write_snapshot_file(&self.db, &meta.snapshot_id, |w| std::io::Write::write_all(w, &bytes).map_err(file_err));
        let locked = lock_snapshots(&self.snapshot_lock);
        // Checkpoints not yet written are of the state being replaced, and
        // a lost one no longer matters: the whole state is written anew.
        *queue(&self.checkpoints) = CheckpointQueue::default();
        save_snapshot(&self.db, &locked, &mut batch, meta, write_bytes).map_err(write_err)?;
        drop(locked);
        self.dirty = Dirty::default();
        *self.encoding() = None;
        let mut state = self.shared.write();
        *state = new_state;
        // Reads held for writes the snapshot covers can no longer run between them.
        self.shared.held_reads.lose_all();
        let zxid = state.tree.last_zxid();
        drop(state);
        self.shared.applied.send_replace(zxid);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let Some(meta) = stored_snapshot_meta(&self.db).map_err(sm_read_err)? else { return Ok(None) };
        // Encoding a frozen copy reads the whole tree: not on a worker that
        // serves clients.
        let (db, id) = (self.db.clone(), meta.snapshot_id.clone());
        let data = tokio::task::spawn_blocking(move || read_snapshot_data(&db, &id))
            .await
            .unwrap_or_else(|stopped| Err(file_err(std::io::Error::other(stopped))))
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

/// The encoded data of the stored snapshot `snapshot_id`: a snapshot
/// received from the leader is kept as its bytes, one built here as a
/// frozen copy of the database, encoded now.
fn read_snapshot_data(db: &DB, snapshot_id: &str) -> Result<Vec<u8>, storage::StorageError> {
    match std::fs::read(snapshot_file(db, snapshot_id)) {
        Ok(data) => return Ok(data),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_err(e)),
        Err(_) => {}
    }
    let frozen = checkpoint_dir(db, snapshot_id);
    if frozen.is_dir() {
        return encode_frozen(&frozen);
    }
    // Stored before snapshots moved out of the database.
    match db.get_cf(cf(db, CF_META)?, KEY_SNAPSHOT_DATA)? {
        Some(data) => Ok(data),
        None => Err(file_err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no data for snapshot {snapshot_id}")))),
    }
}

/// Opens a frozen copy of the database read-only and encodes the state it
/// holds as [`SnapshotData`].
fn encode_frozen(dir: &std::path::Path) -> Result<Vec<u8>, storage::StorageError> {
    let opts = rocksdb::Options::default();
    let names = DB::list_cf(&opts, dir)?;
    let frozen = DB::open_cf_for_read_only(&opts, dir, names, false)?;
    let read_opts = || {
        let mut o = ReadOptions::default();
        o.fill_cache(false);
        o
    };
    let last_zxid = read_meta(&frozen, &read_opts)?.last_zxid;
    let mut out = Cursor::new(Vec::new());
    stream_snapshot(&frozen, &read_opts, last_zxid, &mut out)?;
    Ok(out.into_inner())
}

/// The meta of the stored snapshot, if there is one.
fn stored_snapshot_meta(db: &DB) -> Result<Option<SnapshotMeta<u64, BasicNode>>, storage::StorageError> {
    let meta_cf = cf(db, CF_META)?;
    match db.get_cf(meta_cf, KEY_SNAPSHOT_META)? {
        Some(bytes) => Ok(Some(storage::decode(CF_META, &bytes)?)),
        None => Ok(None),
    }
}

/// Stores the snapshot's data with `store`, then adds its meta to `batch`
/// and writes it, fsynced, unless a newer snapshot is already stored (then
/// nothing is written: that snapshot already covers `batch`'s state and the
/// log before it may be purged).
///
/// Returns whether it was written. Everything written before, including
/// the applied state the snapshot was taken from, is durable once this
/// returns: the write-ahead log is synced in order.
fn save_snapshot(
    db: &DB,
    _locked: &SnapshotGuard,
    batch: &mut WriteBatch,
    meta: &SnapshotMeta<u64, BasicNode>,
    store: impl FnOnce() -> Result<(), storage::StorageError>,
) -> Result<bool, storage::StorageError> {
    let meta_cf = cf(db, CF_META)?;
    if let Some(stored) = stored_snapshot_meta(db)? {
        if stored.last_log_id > meta.last_log_id {
            return Ok(false);
        }
    }
    batch.put_cf(meta_cf, KEY_SNAPSHOT_META, storage::encode(CF_META, meta)?);
    batch.delete_cf(meta_cf, KEY_SNAPSHOT_DATA);
    batch.delete_cf(meta_cf, KEY_SNAPSHOT_OLD);
    // The data stays out of RocksDB's write path: one huge value would
    // hold up every log append behind it in RocksDB's write queue.
    store()?;
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    write_state(db, std::mem::take(batch), &opts)?;
    remove_other_snapshot_files(db, &meta.snapshot_id);
    Ok(true)
}

/// Where snapshot files live: beside the RocksDB directory, in the data
/// directory (the state's database is always opened at `<dataDir>/rocksdb`).
fn snapshot_dir(db: &DB) -> std::path::PathBuf {
    db.path().parent().unwrap_or(db.path()).join("snapshots")
}

/// A snapshot id as a file name.
fn file_name(snapshot_id: &str) -> String {
    snapshot_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// Where a snapshot received from the leader is kept, as its bytes.
fn snapshot_file(db: &DB, snapshot_id: &str) -> std::path::PathBuf {
    snapshot_dir(db).join(format!("snapshot-{}", file_name(snapshot_id)))
}

/// Where a snapshot built here is kept, as a RocksDB checkpoint of the
/// database at the moment it was taken.
fn checkpoint_dir(db: &DB, snapshot_id: &str) -> std::path::PathBuf {
    snapshot_dir(db).join(format!("checkpoint-{}", file_name(snapshot_id)))
}

/// Freezes the database as it is now into [`checkpoint_dir`]: RocksDB
/// flushes its memtables and hard-links the table files, so this costs
/// about the same for ten znodes or ten million. Made aside and renamed, so
/// the directory under its final name is always complete.
fn freeze(db: &DB, snapshot_id: &str) -> Result<(), storage::StorageError> {
    let dir = snapshot_dir(db);
    std::fs::create_dir_all(&dir).map_err(file_err)?;
    let path = checkpoint_dir(db, snapshot_id);
    let tmp = path.with_extension("tmp");
    for leftover in [&tmp, &path] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).map_err(file_err)?;
        }
    }
    rocksdb::checkpoint::Checkpoint::new(db)?.create_checkpoint(&tmp)?;
    std::fs::rename(&tmp, &path).map_err(file_err)?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(file_err)?;
    Ok(())
}

/// Writes a snapshot's data durably under its final name (written aside,
/// fsynced, renamed, directory fsynced), before RocksDB refers to it.
fn write_snapshot_file(
    db: &DB,
    snapshot_id: &str,
    data: impl FnOnce(&mut SnapshotFile) -> Result<(), storage::StorageError>,
) -> Result<(), storage::StorageError> {
    let dir = snapshot_dir(db);
    std::fs::create_dir_all(&dir).map_err(file_err)?;
    let path = snapshot_file(db, snapshot_id);
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(file_err)?);
    data(&mut w)?;
    let f = w.into_inner().map_err(|e| file_err(e.into_error()))?;
    f.sync_all().map_err(file_err)?;
    std::fs::rename(&tmp, &path).map_err(file_err)?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(file_err)?;
    Ok(())
}

/// A snapshot file being written.
type SnapshotFile = std::io::BufWriter<std::fs::File>;

fn file_err(e: std::io::Error) -> storage::StorageError {
    storage::StorageError::Corrupt { cf: CF_META, reason: format!("snapshot file: {e}") }
}

/// Writes the state that `opts` sees as the bincode encoding of
/// [`SnapshotData`], record by record, copying the stored bytes of each
/// session and node (they are the bincode encodings of the same types): the
/// state is never held in memory a second time, and nothing is decoded.
fn stream_snapshot(
    db: &DB,
    opts: &dyn Fn() -> ReadOptions,
    last_zxid: i64,
    w: &mut (impl std::io::Write + std::io::Seek),
) -> Result<(), storage::StorageError> {
    use std::io::SeekFrom;
    w.write_all(&last_zxid.to_le_bytes()).map_err(file_err)?;
    for name in [CF_SESSIONS, CF_TREE] {
        // A sequence is its length, then its items; the length is known at the end.
        let length_at = w.stream_position().map_err(file_err)?;
        w.write_all(&0u64.to_le_bytes()).map_err(file_err)?;
        let mut n = 0u64;
        for item in db.iterator_cf_opt(cf(db, name)?, opts(), IteratorMode::Start) {
            let (k, v) = item?;
            if name == CF_SESSIONS {
                w.write_all(&(storage::key_u64(CF_SESSIONS, &k)? as i64).to_le_bytes()).map_err(file_err)?;
            } else {
                w.write_all(&(k.len() as u64).to_le_bytes()).map_err(file_err)?;
                w.write_all(&k).map_err(file_err)?;
            }
            w.write_all(&v).map_err(file_err)?;
            n += 1;
        }
        let end = w.stream_position().map_err(file_err)?;
        w.seek(SeekFrom::Start(length_at)).map_err(file_err)?;
        w.write_all(&n.to_le_bytes()).map_err(file_err)?;
        w.seek(SeekFrom::Start(end)).map_err(file_err)?;
    }
    Ok(())
}

/// Deletes snapshot files and frozen copies other than the current
/// snapshot's (best effort: a leftover is only disk space).
fn remove_other_snapshot_files(db: &DB, current: &str) {
    let keep = [snapshot_file(db, current), checkpoint_dir(db, current)];
    let Ok(entries) = std::fs::read_dir(snapshot_dir(db)) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if keep.contains(&path) {
            continue;
        }
        let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
}

/// Builds a snapshot of the applied state.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    shared: Arc<Shared>,
    seq: u64,
    lock: SnapshotLock,
    checkpoints: Checkpoints,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        self.shared.txns_since_snapshot.store(0, Ordering::Relaxed);
        let (db, lock, seq, checkpoints) = (self.db.clone(), self.lock.clone(), self.seq, self.checkpoints.clone());
        // Writing the last checkpoint, flushing and linking files is
        // blocking I/O: keep it off the async workers that serve clients.
        #[allow(clippy::result_large_err)] // openraft's StorageError, as its trait asks
        let build = move || {
            let built = build_from_disk(&db, &lock, &checkpoints, seq);
            release_freed_memory();
            built
        };
        match tokio::task::spawn_blocking(build).await {
            Ok(built) => built,
            Err(e) => Err(StorageIOError::write_snapshot(None, &e).into()),
        }
    }
}

/// Hands memory freed after a snapshot build back to the OS: the build runs
/// in a blocking thread whose glibc arena otherwise keeps the pages of its
/// buffers (and of RocksDB's iterators) resident for good.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas
    // to the OS; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The applied point of the persisted state.
struct Persisted {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    last_zxid: i64,
}

/// One record of the persisted state.
enum Record {
    Session(i64, SessionInfo),
    Node(String, StoredNode<'static>),
}

/// Reads the persisted state as the read options from `opts` see it (the
/// live database, or a point-in-time view): every session, then every node
/// in path order (parents before children), goes to `each`.
fn read_persisted(db: &DB, opts: &dyn Fn() -> ReadOptions, mut each: impl FnMut(Record)) -> Result<Persisted, storage::StorageError> {
    let persisted = read_meta(db, opts)?;
    for item in db.iterator_cf_opt(cf(db, CF_SESSIONS)?, opts(), IteratorMode::Start) {
        let (k, v) = item?;
        each(Record::Session(storage::key_u64(CF_SESSIONS, &k)? as i64, storage::decode(CF_SESSIONS, &v)?));
    }
    for item in db.iterator_cf_opt(cf(db, CF_TREE)?, opts(), IteratorMode::Start) {
        let (k, v) = item?;
        let path = String::from_utf8(k.to_vec()).map_err(|e| storage::StorageError::Corrupt { cf: CF_TREE, reason: e.to_string() })?;
        each(Record::Node(path, storage::decode(CF_TREE, &v)?));
    }
    Ok(persisted)
}

/// Reads the applied point, membership and zxid as `opts` sees the database.
fn read_meta(db: &DB, opts: &dyn Fn() -> ReadOptions) -> Result<Persisted, storage::StorageError> {
    let last_applied = get_meta::<Option<LogId<u64>>>(db, KEY_APPLIED, &opts())?.flatten();
    let membership = get_meta(db, KEY_MEMBERSHIP, &opts())?.unwrap_or_default();
    let last_zxid = get_meta(db, KEY_ZXID, &opts())?.unwrap_or(0);
    Ok(Persisted { last_applied, membership, last_zxid })
}

/// Reads a record of the meta column family as `opts` sees the database.
fn get_meta<T: serde::de::DeserializeOwned>(db: &DB, key: &[u8], opts: &ReadOptions) -> Result<Option<T>, storage::StorageError> {
    match db.get_cf_opt(cf(db, CF_META)?, key, opts)? {
        Some(bytes) => Ok(Some(storage::decode(CF_META, &bytes)?)),
        None => Ok(None),
    }
}

/// Writes a batch to the state's database, then starts flushing the tree's
/// memtable if the batch filled it (a checkpoint, an installed snapshot's
/// whole tree): nothing else writes here soon, and RocksDB would flush it
/// only at the next write (see [`storage::flush_if_full`]).
fn write_state(db: &DB, batch: WriteBatch, opts: &WriteOptions) -> Result<(), rocksdb::Error> {
    db.write_opt(batch, opts)?;
    // Written is enough; the flush only gives the memory back sooner.
    if let Err(e) = storage::flush_if_full(db, CF_TREE) {
        tracing::warn!("state written, its memtable not flushed: {e}");
    }
    Ok(())
}

/// Writes the queued checkpoints in order, under the snapshot lock (so an
/// installed snapshot, which drops the queue, is never overwritten by an
/// older state); true if there were any. Not synced: a snapshot's own batch
/// is, and RocksDB's write-ahead log is synced in order, so a crash loses at
/// most the newest checkpoints, whose changes the log still holds.
fn write_checkpoints(db: &DB, _locked: &SnapshotGuard<'_>, checkpoints: &Checkpoints) -> Result<bool, storage::StorageError> {
    let queued = {
        let mut q = queue(checkpoints);
        if let Some(e) = &q.failed {
            return Err(storage::StorageError::CheckpointLost(e.clone()));
        }
        std::mem::take(&mut q.batches)
    };
    let wrote = !queued.is_empty();
    for batch in queued {
        if let Err(e) = write_state(db, batch, &WriteOptions::default()) {
            queue(checkpoints).failed = Some(e.to_string());
            return Err(e.into());
        }
    }
    Ok(wrote)
}

/// Writes the queued checkpoints, then takes a snapshot by freezing the
/// database (see [`freeze`]), not by copying the tree in memory: applying
/// writes never waits for the snapshot (cloning the tree under its lock
/// stalled every write for as long as the copy took), and nothing is encoded
/// until a follower needs it. Each checkpoint holds its changes and the
/// applied log id in one batch, and none is written while the lock is held,
/// so the frozen copy holds exactly the state at the applied log id it shows.
#[allow(clippy::result_large_err)] // openraft's StorageError, as its trait asks
fn build_from_disk(db: &DB, lock: &SnapshotLock, checkpoints: &Checkpoints, seq: u64) -> StorageResult<Snapshot<TypeConfig>> {
    let err = |e: storage::StorageError| -> StorageError<u64> { StorageIOError::write_snapshot(None, &e).into() };
    let locked = lock_snapshots(lock);
    let started = std::time::Instant::now();
    write_checkpoints(db, &locked, checkpoints).map_err(err)?;
    let Persisted { last_applied, membership: last_membership, .. } = read_meta(db, &ReadOptions::default).map_err(err)?;
    let snapshot_id = match last_applied {
        Some(l) => format!("{}-{}-{}", l.leader_id, l.index, seq),
        None => format!("none-{seq}"),
    };
    let meta = SnapshotMeta { last_log_id: last_applied, last_membership, snapshot_id };
    let write_err = |e: storage::StorageError| StorageIOError::write_snapshot(Some(meta.signature()), &e);
    // Durable before openraft purges the log it covers. If a newer
    // snapshot was installed meanwhile this one is not stored; openraft
    // ignores a built snapshot older than the one it knows.
    if !save_snapshot(db, &locked, &mut WriteBatch::default(), &meta, || freeze(db, &meta.snapshot_id)).map_err(write_err)? {
        tracing::debug!(snapshot = %meta.snapshot_id, "a newer snapshot is already stored");
    }
    tracing::debug!(snapshot = %meta.snapshot_id, ms = started.elapsed().as_millis() as u64, "snapshot built");
    // openraft 0.9 keeps only the meta of a built snapshot (its state
    // machine worker drops the data); a snapshot sent to a follower is read
    // by `get_current_snapshot`.
    Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(Vec::new())) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Proposal;
    use crate::tree::node::{AclEntry, NodeKind};
    use crate::tree::txn::{CreateKind, CreateOp, Txn};

    #[test]
    fn the_dirty_set_counts_each_node_once() {
        let mut dirty = Dirty::default();
        dirty.add(Changes { nodes: vec![3, 70, 3], deleted: vec![("/x".into(), 5)], sessions: vec![9], ..Default::default() });
        dirty.add(Changes { nodes: vec![70, 4], sessions: vec![9], ..Default::default() });
        assert_eq!(dirty.len(), 3 + 1 + 1);
        assert_eq!(dirty.ids().collect::<Vec<_>>(), [3, 4, 70]);
        let after = |from| dirty.next_id(from);
        assert_eq!(
            [after(0), after(4), after(5), after(64), after(71), after(1 << 40)],
            [Some(3), Some(4), Some(70), Some(70), None, None]
        );
    }

    #[test]
    fn only_deletions_of_nodes_that_may_be_stored_are_recorded() {
        // Not since a checkpoint of ours: a tombstone for every deletion.
        let mut dirty = Dirty::default();
        dirty.add(Changes { deleted: vec![("/old".into(), 5), ("/new".into(), 50)], ..Default::default() });
        assert_eq!(dirty.deleted, ["/old", "/new"]);
        // After one at zxid 10: /a was stored, deleted, created again at 12
        // and deleted again; /b was created at 11 and deleted.
        let mut dirty = Dirty { stored_upto: Some(10), ..Dirty::default() };
        dirty.add(Changes { deleted: vec![("/a".into(), 3), ("/b".into(), 11)], ..Default::default() });
        dirty.add(Changes { deleted: vec![("/a".into(), 12), ("/c".into(), 10)], ..Default::default() });
        assert_eq!(dirty.deleted, ["/a", "/c"]);
    }

    /// Every node (path, encoded as stored), every session, and the zxid.
    type Contents = (Vec<(String, Vec<u8>)>, Vec<(i64, SessionInfo)>, i64);

    /// Every node (encoded as stored) and session of `tree`, and its zxid.
    fn contents(tree: &DataTree) -> Contents {
        let mut nodes = Vec::new();
        tree.walk(|path, node| nodes.push((path.to_string(), storage::encode(CF_TREE, &tree.stored(node)).unwrap())));
        nodes.sort();
        let sessions = tree.sessions().iter().map(|(id, info)| (*id, info.clone())).collect();
        (nodes, sessions, tree.last_zxid())
    }

    /// A random transaction on a few paths, so that paths are deleted and
    /// created again and node ids are reused, while checkpoints are encoded.
    fn random_proposal(next: &mut impl FnMut(u64) -> u64) -> Proposal {
        let path = |n: &mut dyn FnMut(u64) -> u64| match n(3) {
            0 => format!("/n{}", n(40)),
            _ => format!("/n{}/c{}", n(40), n(8)),
        };
        let create = |path: String, kind, n: &mut dyn FnMut(u64) -> u64| {
            let data = Some(vec![n(256) as u8; n(40) as usize]);
            Txn::Create(CreateOp { path, data, acl: AclEntry::open(), kind, sequential: false })
        };
        let session_id = 1 + next(3) as i64;
        let txn = match next(10) {
            0..=2 => create(path(next), CreateKind::Persistent, next),
            3 => create(path(next), CreateKind::Ephemeral, next),
            4..=6 => Txn::Delete { path: path(next), version: -1 },
            7 => Txn::SetData { path: path(next), data: Some(vec![next(256) as u8; 8]), version: -1 },
            8 => Txn::CreateSession { timeout_ms: 4000, passwd: vec![1] },
            _ => Txn::CloseSession,
        };
        Proposal { session_id, txn }
    }

    #[tokio::test]
    async fn a_checkpoint_encoded_in_slices_is_the_state_when_it_ends() {
        let (_dir, db, shared, mut sm) = checkpointing(40, 10);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let (mut compared, mut sliced, mut stored_zxid) = (0, 0, 0);
        for index in 1..=20_000 {
            let proposals = (0..1 + next(6)).map(|_| random_proposal(&mut next)).collect();
            apply_entry(&mut sm, index, proposals).await;
            sliced += usize::from(sm.encoding().is_some());
            let persisted = read_meta(&db, &ReadOptions::default).unwrap().last_zxid;
            if persisted != stored_zxid {
                // A checkpoint ended in this apply: it holds the state now.
                stored_zxid = persisted;
                assert_eq!(contents(&StateMachine::load(&db).unwrap().tree), contents(&shared.read().tree), "at entry {index}");
                compared += 1;
            }
        }
        assert!(compared > 500 && sliced > 2000, "{compared} checkpoints compared, {sliced} applies mid-checkpoint");
        // A snapshot finishes the one under way at once.
        let mut index = 20_000;
        while sm.encoding().is_none() {
            index += 1;
            apply_entry(&mut sm, index, vec![random_proposal(&mut next)]).await;
        }
        let snapshot = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(snapshot.meta.last_log_id.map(|id| id.index), Some(index));
        assert_eq!(contents(&StateMachine::load(&db).unwrap().tree), contents(&shared.read().tree));
    }

    /// A state machine on a new database that checkpoints after
    /// `every` dirty records, over `slices` applies.
    fn checkpointing(every: usize, slices: usize) -> (tempfile::TempDir, Arc<DB>, Arc<Shared>, StateMachine) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::open(&dir.path().join("rocksdb")).unwrap();
        let shared = Arc::new(Shared::new(StateMachine::load(&db).unwrap()));
        let mut sm = StateMachine::new(db.clone(), shared.clone(), u64::MAX);
        (sm.checkpoint_every, sm.checkpoint_slices) = (every, slices);
        (dir, db, shared, sm)
    }

    /// Applies one entry of `proposals` at `index`, then writes what
    /// checkpoints it queued.
    async fn apply_entry(sm: &mut StateMachine, index: u64, proposals: Vec<Proposal>) {
        let request = Request { time_ms: index as i64, proposals: proposals.into(), batch: 0 };
        let entry = Entry { log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(request) };
        sm.apply([entry]).await.unwrap();
        write_checkpoints(&sm.db, &lock_snapshots(&sm.snapshot_lock), &sm.checkpoints).unwrap();
    }

    #[tokio::test]
    async fn a_checkpoint_larger_than_a_memtable_does_not_stay_in_memory() {
        // 3,000 nodes of 1 KiB: one checkpoint of ~3 MiB, more than a memtable holds.
        let (_dir, db, shared, mut sm) = checkpointing(3_000, 1);
        let create = |i: usize| Proposal {
            session_id: 0,
            txn: Txn::Create(CreateOp {
                path: format!("/n{i}"),
                data: Some(vec![7; 1024]),
                acl: AclEntry::open(),
                kind: CreateKind::Persistent,
                sequential: false,
            }),
        };
        apply_entry(&mut sm, 1, (0..3_000).map(create).collect()).await;
        let mut index = 1;
        while sm.encoding().is_some() || read_meta(&db, &ReadOptions::default).unwrap().last_zxid == 0 {
            index += 1;
            apply_entry(&mut sm, index, vec![Proposal { session_id: 0, txn: Txn::Sync }]).await;
        }
        // Nothing is written after it: its memtable must still be flushed
        // (in the background: give it a moment).
        let memtable = || db.property_int_value_cf(cf(&db, CF_TREE).unwrap(), "rocksdb.cur-size-active-mem-table").unwrap().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while memtable() >= storage::CF_MEMTABLE as u64 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(memtable() < storage::CF_MEMTABLE as u64, "{} KiB of checkpoint stay in the memtable", memtable() >> 10);
        assert_eq!(contents(&StateMachine::load(&db).unwrap().tree), contents(&shared.read().tree));
    }

    #[tokio::test]
    async fn a_node_created_while_a_checkpoint_is_encoded_is_left_to_its_last_step() {
        let create = |path: &str| Proposal {
            session_id: 0,
            txn: Txn::Create(CreateOp {
                path: path.into(),
                data: None,
                acl: AclEntry::open(),
                kind: CreateKind::Persistent,
                sequential: false,
            }),
        };
        let delete = |path: &str| Proposal { session_id: 0, txn: Txn::Delete { path: path.into(), version: -1 } };
        let sync = || vec![Proposal { session_id: 0, txn: Txn::Sync }];
        // One record per apply, from two dirty records on.
        let (_dir, db, shared, mut sm) = checkpointing(2, usize::MAX);
        let mut index = 0;
        let mut apply = async |sm: &mut StateMachine, proposals| {
            index += 1;
            apply_entry(sm, index, proposals).await;
        };
        // A checkpoint of the root, /x and /y begins; /x is deleted and /z
        // takes its id before a slice reaches it, then /z is deleted too.
        apply(&mut sm, vec![create("/x"), create("/y")]).await;
        apply(&mut sm, vec![delete("/x"), create("/z")]).await;
        apply(&mut sm, vec![delete("/z")]).await;
        while sm.encoding().is_some() {
            apply(&mut sm, sync()).await;
        }
        assert_eq!(contents(&StateMachine::load(&db).unwrap().tree), contents(&shared.read().tree));
        // A checkpoint of /p's and /q's deletions begins; /p is created
        // again before a slice reaches its path, then deleted again.
        apply(&mut sm, vec![create("/p"), create("/q")]).await;
        while sm.encoding().is_some() {
            apply(&mut sm, sync()).await;
        }
        apply(&mut sm, vec![delete("/q"), delete("/p")]).await;
        apply(&mut sm, vec![create("/p")]).await;
        apply(&mut sm, vec![delete("/p")]).await;
        while sm.encoding().is_some() {
            apply(&mut sm, sync()).await;
        }
        assert_eq!(contents(&StateMachine::load(&db).unwrap().tree), contents(&shared.read().tree));
        assert!(shared.read().tree.get("/p").is_none() && shared.read().tree.get("/z").is_none());
    }

    #[test]
    fn after_a_lost_checkpoint_no_later_one_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::open(&dir.path().join("rocksdb")).unwrap();
        let (lock, checkpoints) = (SnapshotLock::default(), Checkpoints::default());
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&db, CF_TREE).unwrap(), b"/a", b"1");
        queue(&checkpoints).batches.push(batch);
        queue(&checkpoints).failed = Some("disk full".into());
        let out = write_checkpoints(&db, &lock_snapshots(&lock), &checkpoints);
        assert!(matches!(out, Err(storage::StorageError::CheckpointLost(_))), "{out:?}");
        assert!(db.get_cf(cf(&db, CF_TREE).unwrap(), b"/a").unwrap().is_none());
        queue(&checkpoints).failed = None;
        assert!(write_checkpoints(&db, &lock_snapshots(&lock), &checkpoints).unwrap());
        assert!(db.get_cf(cf(&db, CF_TREE).unwrap(), b"/a").unwrap().is_some());
    }

    #[test]
    fn a_frozen_snapshot_encodes_the_whole_state_as_it_was_when_taken() {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::open(&dir.path().join("rocksdb")).unwrap();
        let sessions = vec![(7i64, SessionInfo { timeout_ms: 4000, passwd: vec![1, 2], ephemerals: Default::default() })];
        let nodes: Vec<(String, StoredNode)> = ["/a", "/a/b", "/c"]
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let kind = if i == 1 { NodeKind::Ephemeral(7) } else { NodeKind::Persistent };
                (p.to_string(), StoredNode::new(Some(vec![i as u8; 3]), AclEntry::open(), kind, i as i64 + 1, 1000))
            })
            .collect();
        let mut batch = WriteBatch::default();
        for (id, info) in &sessions {
            batch.put_cf(cf(&db, CF_SESSIONS).unwrap(), storage::u64_key(*id as u64), storage::encode(CF_SESSIONS, info).unwrap());
        }
        for (path, node) in &nodes {
            batch.put_cf(cf(&db, CF_TREE).unwrap(), path.as_bytes(), storage::encode(CF_TREE, node).unwrap());
        }
        batch.put_cf(cf(&db, CF_META).unwrap(), KEY_ZXID, storage::encode(CF_META, &42i64).unwrap());
        db.write(batch).unwrap();
        freeze(&db, "1-9-1").unwrap();
        // Later writes to the live database are not in the frozen copy.
        db.put_cf(cf(&db, CF_TREE).unwrap(), b"/later", storage::encode(CF_TREE, &nodes[0].1).unwrap()).unwrap();
        db.delete_cf(cf(&db, CF_TREE).unwrap(), b"/c").unwrap();

        let expected = storage::encode(CF_META, &SnapshotData { last_zxid: 42, sessions, nodes }).unwrap();
        assert_eq!(read_snapshot_data(&db, "1-9-1").unwrap(), expected);
        // A newer snapshot replaces the frozen copy on disk.
        freeze(&db, "1-12-2").unwrap();
        remove_other_snapshot_files(&db, "1-12-2");
        assert!(!checkpoint_dir(&db, "1-9-1").exists());
        assert!(read_snapshot_data(&db, "1-12-2").unwrap() != expected);
    }
}
