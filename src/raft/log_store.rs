//! The Raft log in RocksDB (openraft's `RaftLogStorage`).
//!
//! An append writes its entries (so they can be read back at once), then
//! fsyncs the write-ahead log and reports them durable, inline. openraft 0.9
//! waits for that report before it does anything else, so handing the fsync
//! to another thread saved no time: it only added two thread wake-ups to
//! every write (a syncer thread and the callback back into openraft's task),
//! ~60 us of latency and of CPU per write on this machine's VM. The fsync
//! blocks the worker thread running openraft's core meanwhile; the other
//! workers serve clients. Group commit comes from the leader's batcher, which
//! puts everything that arrived during one fsync into the next entry (the
//! append tells it when the entry it proposed is durable).
//!
//! openraft reads every committed entry back from the log to apply it. The
//! newest entries are also kept in memory (their payloads are shared, so a
//! copy is cheap), which spares a RocksDB read and a decode per batch.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};

use super::batcher::Settled;
use super::durable_mark::DurableMark;
use super::TypeConfig;
use crate::metrics::SlowSyncs;
use crate::storage::{self, cf, CF_LOGS, CF_RAFT};

type StorageResult<T> = Result<T, StorageError<u64>>;

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// The RocksDB-backed Raft log; cheap to clone (it is also its own reader).
pub struct LogStore {
    db: Arc<DB>,
    /// Told when the batcher's entries are durable.
    settled: Settled,
    /// The newest appended entries, consecutive, oldest first.
    recent: Arc<Mutex<VecDeque<Entry<TypeConfig>>>>,
    /// How far the log is known durable, kept outside RocksDB.
    mark: DurableMark,
    /// Told how long each fsync of appended entries took.
    slow_syncs: Arc<SlowSyncs>,
    /// The committed id openraft last saved, not yet written: it goes into
    /// the next append's batch (see `save_committed`). Only the instance
    /// openraft's core owns ever holds one; clones (readers) start empty.
    unsaved_committed: Option<Option<LogId<u64>>>,
}

impl Clone for LogStore {
    fn clone(&self) -> Self {
        LogStore {
            db: self.db.clone(),
            settled: self.settled.clone(),
            recent: self.recent.clone(),
            mark: self.mark.clone(),
            slow_syncs: self.slow_syncs.clone(),
            unsaved_committed: None,
        }
    }
}

impl Drop for LogStore {
    /// Writes a committed id still waiting for an append (on shutdown), so a
    /// restart re-applies nothing it need not.
    fn drop(&mut self) {
        if let Some(committed) = self.unsaved_committed.take() {
            let mut batch = WriteBatch::default();
            let written = self.put_committed(&mut batch, &committed).and_then(|()| Ok(self.db.write(batch)?));
            if let Err(e) = written {
                tracing::warn!("could not save the committed log id on shutdown: {e}");
            }
        }
    }
}

/// Entries kept in memory: enough to cover what is appended but not yet
/// applied, even under load (a few batches are in flight).
const RECENT_MAX: usize = 128;
/// ...and at most this many transactions in them: the cache outlives the
/// load, and 128 full batches would pin ~100k transactions' data.
const RECENT_MAX_TXNS: usize = 4096;

/// Transactions an entry carries.
fn txns(entry: &Entry<TypeConfig>) -> usize {
    match &entry.payload {
        openraft::EntryPayload::Normal(request) => request.proposals.len(),
        _ => 1,
    }
}

fn lock_recent(recent: &Mutex<VecDeque<Entry<TypeConfig>>>) -> std::sync::MutexGuard<'_, VecDeque<Entry<TypeConfig>>> {
    recent.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cached entries for `[start, end)`, if all of them are cached.
fn cached(recent: &VecDeque<Entry<TypeConfig>>, start: u64, end: u64) -> Option<Vec<Entry<TypeConfig>>> {
    let first = recent.front()?.log_id.index;
    let last = recent.back()?.log_id.index;
    if start < first || end > last + 1 || start > end {
        return None;
    }
    let from = usize::try_from(start - first).ok()?;
    let to = usize::try_from(end - first).ok()?;
    Some(recent.range(from..to).cloned().collect())
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(&e).into()
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

impl LogStore {
    /// Wraps the log's database, kept in `dir` (see `storage::open_stores`);
    /// `settled` learns when the batcher's entries are durable, `slow_syncs`
    /// how long each fsync took. Refuses a
    /// log that ends before the index its durable mark says it had made
    /// durable: RocksDB recovered only the part before a damaged record
    /// (see `durable_mark`).
    pub fn open(db: Arc<DB>, dir: &std::path::Path, settled: Settled, slow_syncs: Arc<SlowSyncs>) -> Result<Self, storage::StorageError> {
        let (mark, held) = DurableMark::open(dir).map_err(storage::StorageError::Io)?;
        let store = LogStore { db, settled, recent: Arc::default(), mark, slow_syncs, unsaved_committed: None };
        let last = store.log_state()?.last_log_id.map_or(0, |id| id.index);
        match held {
            Some(durable) if durable > last => Err(storage::StorageError::LogLost(format!(
                "the Raft log in {} ends at index {last}, but it had made index {durable} durable: a damaged record \
                 in its write-ahead log cut it short, and the acknowledged writes after it are gone. Not starting on \
                 it: restore this directory from a backup or, on an ensemble member, empty it so that the member \
                 copies the log from the leader",
                dir.display()
            ))),
            _ => Ok(store),
        }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, storage::StorageError> {
        let cf = cf(&self.db, CF_RAFT)?;
        match self.db.get_cf(cf, key)? {
            Some(bytes) => Ok(Some(storage::decode(CF_RAFT, &bytes)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), storage::StorageError> {
        let cf = cf(&self.db, CF_RAFT)?;
        let bytes = storage::encode(CF_RAFT, value)?;
        self.db.put_cf_opt(cf, key, bytes, &synced())?;
        Ok(())
    }

    /// Puts `committed` into `batch`: the next append's, or the one written on shutdown.
    fn put_committed(&self, batch: &mut WriteBatch, committed: &Option<LogId<u64>>) -> Result<(), storage::StorageError> {
        batch.put_cf(cf(&self.db, CF_RAFT)?, KEY_COMMITTED, storage::encode(CF_RAFT, committed)?);
        Ok(())
    }

    /// The last purged entry's id, and the last entry's (else the last
    /// purged one's).
    fn log_state(&self) -> Result<LogState<TypeConfig>, storage::StorageError> {
        let last_purged_log_id: Option<LogId<u64>> = self.get_meta(KEY_LAST_PURGED)?;
        let last_log_id = self.last_entry()?.map(|e| e.log_id).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, storage::StorageError> {
        let cf = cf(&self.db, CF_LOGS)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, value) = item?;
                Ok(Some(storage::decode(CF_LOGS, &value)?))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Some(i.saturating_add(1)),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        if let Some(end) = end {
            if let Some(entries) = cached(&lock_recent(&self.recent), start, end) {
                return Ok(entries);
            }
        }
        let cf = cf(&self.db, CF_LOGS).map_err(read_err)?;
        let mut out = Vec::new();
        let key = storage::u64_key(start);
        for item in self.db.iterator_cf(cf, IteratorMode::From(&key, Direction::Forward)) {
            let (k, v) = item.map_err(read_err)?;
            let index = storage::key_u64(CF_LOGS, &k).map_err(read_err)?;
            if !range.contains(&index) {
                break;
            }
            out.push(storage::decode(CF_LOGS, &v).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        self.log_state().map_err(read_err)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        self.put_meta(KEY_VOTE, vote).map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        self.get_meta(KEY_VOTE).map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        // Kept until the next append, which writes it in its own batch and
        // fsyncs it with its entries: a separate write here cost every commit
        // a RocksDB write and a write(2) on the way to applying, for no gain
        // in durability (unsynced, it too became durable only with the next
        // append's fsync). Losing it in a crash only means re-applying from
        // the state machine's own point, as openraft allows: entries that
        // were committed are on a quorum and get committed again.
        self.unsaved_committed = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        if let Some(committed) = self.unsaved_committed {
            return Ok(committed);
        }
        Ok(self.get_meta::<Option<LogId<u64>>>(KEY_COMMITTED).map_err(read_err)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = cf(&self.db, CF_LOGS).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let batch_no = entries
            .iter()
            .filter_map(|e| match &e.payload {
                openraft::EntryPayload::Normal(request) => Some(request.batch),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        for entry in &entries {
            let bytes = storage::encode(CF_LOGS, entry).map_err(write_err)?;
            batch.put_cf(cf, storage::u64_key(entry.log_id.index), bytes);
        }
        if let Some(committed) = self.unsaved_committed.take() {
            self.put_committed(&mut batch, &committed).map_err(write_err)?;
        }
        // Written to RocksDB (readable) and cached under one lock, so a reader
        // never finds the cache ahead of the database.
        let mut recent = lock_recent(&self.recent);
        if let Err(e) = self.db.write(batch) {
            recent.clear();
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return Err(write_err(e));
        }
        let last_index = entries.last().map(|e| e.log_id.index);
        for entry in entries {
            if recent.back().is_some_and(|b| b.log_id.index.checked_add(1) != Some(entry.log_id.index)) {
                recent.clear();
            }
            recent.push_back(entry);
        }
        let mut held: usize = recent.iter().map(txns).sum();
        while recent.len() > 1 && (recent.len() > RECENT_MAX || held > RECENT_MAX_TXNS) {
            if let Some(old) = recent.pop_front() {
                held -= txns(&old);
            }
        }
        drop(recent);
        // Outside the cache's lock: readers need not wait for the disk.
        let syncing = std::time::Instant::now();
        let result = self.db.flush_wal(true).map_err(|e| std::io::Error::other(e.to_string()));
        self.slow_syncs.record(syncing.elapsed());
        if let (Ok(()), Some(last)) = (&result, last_index) {
            self.mark.advance(last);
        }
        callback.log_io_completed(result);
        self.settled.advance(batch_no);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        let cf = cf(&self.db, CF_LOGS).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, storage::u64_key(log_id.index), storage::u64_key(u64::MAX));
        // The mark first: it must never claim entries the log no longer has.
        self.mark.lower(log_id.index).map_err(write_err)?;
        let mut recent = lock_recent(&self.recent);
        while recent.back().is_some_and(|b| b.log_id.index >= log_id.index) {
            recent.pop_back();
        }
        self.db.write_opt(batch, &synced()).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        // The purge mark and the deletion go in one batch, so after a crash
        // get_log_state never reports entries at or below the mark, nor a
        // mark that the entries above it do not follow. Not fsynced: losing
        // both together only brings back entries that are still valid.
        let (logs, raft) = (cf(&self.db, CF_LOGS).map_err(write_err)?, cf(&self.db, CF_RAFT).map_err(write_err)?);
        let mut batch = WriteBatch::default();
        batch.put_cf(raft, KEY_LAST_PURGED, storage::encode(CF_RAFT, &log_id).map_err(write_err)?);
        batch.delete_range_cf(logs, storage::u64_key(0), storage::u64_key(log_id.index.saturating_add(1)));
        let mut recent = lock_recent(&self.recent);
        while recent.front().is_some_and(|f| f.log_id.index <= log_id.index) {
            recent.pop_front();
        }
        self.db.write(batch).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, LogId};

    use super::LogStore;
    use crate::storage;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn a_committed_id_with_no_append_after_it_is_written_on_shutdown_and_never_by_a_reader() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = storage::open(&dir.path().join("rocksdb")).expect("open");
        let open = || LogStore::open(db.clone(), dir.path(), Default::default(), Default::default()).expect("log store");
        let committed = Some(LogId::new(CommittedLeaderId::new(3, 1), 42));
        block_on(async {
            let mut store = open();
            store.save_committed(committed).await.expect("save");
            assert_eq!(store.read_committed().await.expect("read"), committed, "the owner sees what it saved");
            // A reader (openraft clones the store for them) going away must
            // not write: its copy could be older than the owner's.
            let reader = store.get_log_reader().await;
            drop(reader);
            assert_eq!(open().read_committed().await.expect("read"), None, "written before any append or shutdown");
            drop(store);
            assert_eq!(open().read_committed().await.expect("read"), committed, "written when the owner shut down");
        });
    }
}
