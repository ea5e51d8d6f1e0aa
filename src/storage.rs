//! RocksDB: the Raft log in one database, the state machine's checkpoints
//! in another, each in column families (a checkpoint and the applied log id
//! it holds are written in one atomic batch).
//!
//! Two databases, not one, because each has its own write-ahead log: every
//! write waits for an fsync of the log's, and checkpoints (megabytes each,
//! not synced) would otherwise sit in that same file and make the next fsync
//! write them out too, as ZooKeeper keeps its snapshots out of its
//! transaction log. Nothing needs both in one batch: a checkpoint's entries
//! are durable in the log before they are applied. Data directories made
//! before the split keep everything in the state database ([`open_stores`]).

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, FlushOptions, Options, DB};

/// Raft log entries, keyed by big-endian index.
pub const CF_LOGS: &str = "logs";
/// Raft's own small records: vote, committed, last purged.
pub const CF_RAFT: &str = "raft";
/// Znodes, keyed by path.
pub const CF_TREE: &str = "tree";
/// Sessions, keyed by big-endian session id.
pub const CF_SESSIONS: &str = "sessions";
/// State-machine metadata: applied log id, membership, current snapshot.
pub const CF_META: &str = "meta";

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored record could not be decoded (corruption or a version mismatch).
    #[error("corrupt record in {cf}: {reason}")]
    Corrupt {
        /// Column family of the record.
        cf: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A column family is missing.
    #[error("missing column family {0}")]
    MissingCf(&'static str),
    /// An earlier checkpoint was not written: writing later ones would
    /// leave a gap in the persisted state, so none is written any more.
    #[error("an earlier checkpoint was not written: {0}")]
    CheckpointLost(String),
    /// The Raft log is not where the configuration says it is.
    #[error("{0}")]
    LogMisplaced(String),
    /// The Raft log lost entries it had made durable (see `raft::durable_mark`).
    #[error("{0}")]
    LogLost(String),
    /// A file beside the databases could not be read or written.
    #[error("{0}")]
    Io(std::io::Error),
    /// Another process holds the database open.
    #[error("{0} is in use: is another paddock running with this data directory? ({1})")]
    InUse(String, rocksdb::Error),
    /// The database was written by a newer paddock, in a format this build cannot read.
    #[error(
        "{dir} was written by a newer paddock (storage format {found}; this build reads up to {FORMAT}): run that version, or a later one"
    )]
    TooNew {
        /// The database's directory.
        dir: String,
        /// The format recorded in it.
        found: u32,
    },
}

/// The storage format this build writes, recorded in each database. Raise
/// it whenever a change writes records that an earlier build cannot decode
/// (a new `Txn` variant, a field added to a stored record): an earlier build
/// then refuses the data directory at start, saying why, instead of failing
/// on the first record it cannot read, maybe after serving for a while.
/// Databases written before the number existed read as format 1.
pub const FORMAT: u32 = 1;

/// Where a database records its [`FORMAT`], in each of the column families
/// that hold its metadata ([`CF_RAFT`] in the log's, [`CF_META`] in the state's).
const KEY_FORMAT: &[u8] = b"format";

/// Bytes of memtable across a database's column families before RocksDB flushes.
const MEMTABLE_BUDGET: usize = 4 << 20;
/// Bytes of memtable per column family. Only the log is written all the
/// time, and its entries are read back from the log store's cache, not from
/// here, so a small memtable costs a flush every few thousand transactions
/// and saves resident memory (a memtable's arena is only freed when it is
/// flushed). Checkpoints are flushed as soon as they are written (see
/// [`flush_if_full`]).
pub const CF_MEMTABLE: usize = 2 << 20;

/// Bytes of a file written before RocksDB asks the kernel to start writing
/// them to disk (see `open_with`).
const WRITEBACK_EVERY: u64 = 64 << 10;

/// Write-ahead log kept before RocksDB flushes the column families that
/// hold its oldest file (see `open_with`).
const MAX_WAL_BYTES: u64 = 64 << 20;

/// The Raft log's column families.
const LOG_CFS: [&str; 2] = [CF_LOGS, CF_RAFT];
/// The state machine's column families.
const STATE_CFS: [&str; 3] = [CF_TREE, CF_SESSIONS, CF_META];

/// A server's two databases; the same one twice in a data directory made
/// before they were split.
pub struct Stores {
    /// Holds the Raft log ([`CF_LOGS`], [`CF_RAFT`]).
    pub log: Arc<DB>,
    /// Holds the state machine's checkpoints ([`CF_TREE`], [`CF_SESSIONS`], [`CF_META`]).
    pub state: Arc<DB>,
    /// The directory of the log's database.
    pub log_dir: std::path::PathBuf,
}

/// Opens (creating if needed) a server's databases: `rocksdb` for the state
/// under the data directory, `raftlog` for the log under the data log
/// directory (ZooKeeper's `dataLogDir`: the same directory unless zoo.cfg
/// puts the log, and its fsyncs, on a disk of their own). A `rocksdb` that
/// already holds the log (made before the split) goes on holding both.
pub fn open_stores(data_dir: &Path, log_dir: &Path) -> Result<Stores, StorageError> {
    let state_dir = data_dir.join("rocksdb");
    // Only an existing database is asked for its column families, so a
    // failure to read one is reported, not taken for a new data directory.
    let existing = if state_dir.join("CURRENT").exists() { DB::list_cf(&Options::default(), &state_dir)? } else { Vec::new() };
    if existing.iter().any(|name| name == CF_LOGS) {
        let db = open(&state_dir)?;
        return Ok(Stores { log: db.clone(), state: db, log_dir: state_dir });
    }
    check_log_location(data_dir, log_dir)?;
    let log_dir = log_dir.join("raftlog");
    Ok(Stores { log: open_with(&log_dir, &LOG_CFS, true)?, state: open_with(&state_dir, &STATE_CFS, false)?, log_dir })
}

/// Refuses a state whose log is not where the configuration says: a log
/// left in the data directory after `dataLogDir` was set, or a state with
/// no log at all (`dataLogDir` changed or dropped, or the log's disk lost).
/// Starting would put a new, empty log under the old state.
fn check_log_location(data_dir: &Path, log_dir: &Path) -> Result<(), StorageError> {
    let (log, stray) = (log_dir.join("raftlog"), data_dir.join("raftlog"));
    if log.exists() {
        return Ok(());
    }
    if stray.exists() {
        return Err(StorageError::LogMisplaced(format!(
            "the Raft log is in {} but dataLogDir is {}: move it there (mv {} {}/) or remove dataLogDir from zoo.cfg",
            stray.display(),
            log_dir.display(),
            stray.display(),
            log_dir.display()
        )));
    }
    if data_dir.join("rocksdb").join("CURRENT").exists() {
        return Err(StorageError::LogMisplaced(format!(
            "{} holds a state but there is no Raft log in {}: is dataLogDir what it was when this server last ran?",
            data_dir.display(),
            log_dir.display()
        )));
    }
    Ok(())
}

/// Opens (creating if needed) one database under `dir` holding every column
/// family, the log's and the state's.
pub fn open(dir: &Path) -> Result<Arc<DB>, StorageError> {
    let all: Vec<&'static str> = LOG_CFS.into_iter().chain(STATE_CFS).collect();
    open_with(dir, &all, false)
}

/// Opens (creating if needed) the database under `dir` with column families
/// `names`; `flush_together` for the log's (see below).
fn open_with(dir: &Path, names: &[&'static str], flush_together: bool) -> Result<Arc<DB>, StorageError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(4);
    // Every write waits for an fsync of the write-ahead log. Reusing old
    // WAL files overwrites blocks that are already allocated, so that fsync
    // need not also write the file's inode (measured here: fdatasync p50
    // 0.21 -> 0.14 ms). Safe with the default point-in-time recovery; we
    // never write without the WAL, which recycling forbids.
    opts.set_recycle_log_file_num(4);
    // Memtables are resident memory on top of the in-memory tree, and
    // RocksDB's default (64 MiB per column family) would cost more than the
    // tree itself. Everything is also in memory or in the log, so small
    // memtables flushed often lose nothing: cap them all together.
    opts.set_db_write_buffer_size(MEMTABLE_BUDGET);
    // Hand written data to the disk every 64 KiB (sync_file_range) rather
    // than leave megabytes of a flush, a compaction or the state's WAL dirty
    // in the page cache: ext4 writes those out when any file is fsynced, so
    // the log's fsync, which every write waits for, took 4-35 ms whenever a
    // checkpoint's flush was under way (~250 times in 24 s of creates; p99.9
    // 30-70 ms). Measured: create-seq-ephemeral p99 13-16 vs 19-21 ms.
    opts.set_bytes_per_sync(WRITEBACK_EVERY);
    opts.set_wal_bytes_per_sync(WRITEBACK_EVERY);
    // A write-ahead log file is deleted only once every column family has
    // flushed what it holds, and the small ones (the vote, the sessions) can
    // go minutes without filling a memtable. RocksDB forces them out only
    // past 4x all memtables, the default column family's unused 64 MiB
    // ones included: ~550 MiB of log files were kept, and replayed at each
    // start. Capped, the small column families are flushed instead.
    opts.set_max_total_wal_size(MAX_WAL_BYTES);
    // Uncapped, RocksDB keeps every table file open; capped, the open-files
    // limit can keep a share for it that client connections cannot take
    // (`open_files`).
    opts.set_max_open_files(crate::open_files::TABLE_FILES_PER_DB);
    if flush_together {
        // Each write fsyncs the log's WAL, and that fsync also writes the
        // file's inode whenever the write made the file longer: only a
        // recycled WAL file (see above) is overwritten in place. But a WAL
        // file is recycled only once every column family has flushed what it
        // holds, and the committed point, written with every entry, kept
        // them all until `MAX_WAL_BYTES`: nearly every file was new. Flushing
        // the log's two column families together frees each WAL file as soon
        // as the log's memtable is flushed. Measured here: fdatasync p50
        // 126 -> 88 us, lock cycles +28%, set at depth 1 p50 -10%.
        opts.set_atomic_flush(true);
    }
    let cfs = names.iter().map(|&name| {
        let mut cf_opts = Options::default();
        cf_opts.set_write_buffer_size(CF_MEMTABLE);
        // Nothing reads these column families while serving (the tree is in
        // memory; the log's recent entries are read back once), so many
        // level-0 files cost nothing; compacting them less often saves CPU
        // that the small memtables would otherwise spend.
        cf_opts.set_level_zero_file_num_compaction_trigger(16);
        cf_opts.set_level_zero_slowdown_writes_trigger(48);
        cf_opts.set_level_zero_stop_writes_trigger(64);
        if name == CF_TREE {
            // Checkpoints land here a few MiB at a time, and each level-0
            // compaction rewrites the level below (the whole tree): let
            // more files gather first. Only snapshots and restarts read
            // them, and one merge over more files costs them little.
            cf_opts.set_level_zero_file_num_compaction_trigger(64);
            cf_opts.set_level_zero_slowdown_writes_trigger(160);
            cf_opts.set_level_zero_stop_writes_trigger(200);
        }
        ColumnFamilyDescriptor::new(name, cf_opts)
    });
    let db = match DB::open_cf_descriptors(&opts, dir, cfs) {
        Ok(db) => db,
        // RocksDB's lock on the directory (flock of its LOCK file).
        Err(e) if e.as_ref().contains("While lock file") => return Err(StorageError::InUse(dir.display().to_string(), e)),
        Err(e) => return Err(e.into()),
    };
    for name in names.iter().filter(|&&n| n == CF_RAFT || n == CF_META) {
        check_format(&db, dir, name)?;
    }
    Ok(Arc::new(db))
}

/// Refuses a database that a newer build wrote ([`FORMAT`]), and records
/// this build's format in one that has none yet or an older one.
fn check_format(db: &DB, dir: &Path, name: &'static str) -> Result<(), StorageError> {
    let handle = cf(db, name)?;
    let found = match db.get_cf(handle, KEY_FORMAT)? {
        None => None,
        Some(bytes) => {
            let bytes: [u8; 4] = bytes[..]
                .try_into()
                .map_err(|_| StorageError::Corrupt { cf: name, reason: format!("format record of {} bytes", bytes.len()) })?;
            Some(u32::from_be_bytes(bytes))
        }
    };
    match found {
        Some(found) if found > FORMAT => Err(StorageError::TooNew { dir: dir.display().to_string(), found }),
        Some(found) if found == FORMAT => Ok(()),
        // Older formats, and databases from before the record, need no
        // conversion yet: this build reads them as they are.
        _ => {
            let mut sync = rocksdb::WriteOptions::default();
            sync.set_sync(true);
            db.put_cf_opt(handle, KEY_FORMAT, FORMAT.to_be_bytes(), &sync)?;
            Ok(())
        }
    }
}

/// Looks up a column family handle.
pub fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a rocksdb::ColumnFamily, StorageError> {
    db.cf_handle(name).ok_or(StorageError::MissingCf(name))
}

/// Starts flushing the column family's memtable, without waiting, if it
/// has reached its size. RocksDB notices a full memtable only at the
/// database's next write, and the state's database is written once per
/// checkpoint: after a burst of writes the last checkpoint's records
/// (megabytes, and the log writer's buffer grown to hold them) stayed
/// resident until the next one, maybe minutes later. That was the ~6 MiB by
/// which resident memory after 100,000 creates read high in most runs.
pub fn flush_if_full(db: &DB, name: &'static str) -> Result<(), StorageError> {
    let handle = cf(db, name)?;
    let size = db.property_int_value_cf(handle, "rocksdb.cur-size-active-mem-table")?.unwrap_or(0);
    if size >= CF_MEMTABLE as u64 {
        let mut opts = FlushOptions::default();
        opts.set_wait(false);
        db.flush_cf_opt(handle, &opts)?;
    }
    Ok(())
}

/// Big-endian key for an index or id, so RocksDB's order is numeric order.
pub fn u64_key(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Decodes a key written by [`u64_key`].
pub fn key_u64(cf: &'static str, key: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| StorageError::Corrupt { cf, reason: format!("key of {} bytes", key.len()) })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Serialises a record for storage.
pub fn encode<T: serde::Serialize>(cf: &'static str, value: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serialize(value).map_err(|e| StorageError::Corrupt { cf, reason: e.to_string() })
}

/// Deserialises a stored record.
pub fn decode<T: serde::de::DeserializeOwned>(cf: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    bincode::deserialize(bytes).map_err(|e| StorageError::Corrupt { cf, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_data_dir_gets_a_log_and_a_state_database() {
        let dir = tempfile::tempdir().unwrap();
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        assert!(!Arc::ptr_eq(&stores.log, &stores.state));
        assert!(stores.log.cf_handle(CF_LOGS).is_some() && stores.log.cf_handle(CF_TREE).is_none());
        assert!(stores.state.cf_handle(CF_TREE).is_some() && stores.state.cf_handle(CF_LOGS).is_none());
        drop(stores);
        // Reopened, it is the same split.
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        assert!(!Arc::ptr_eq(&stores.log, &stores.state));
    }

    #[test]
    fn the_log_goes_to_the_data_log_dir_and_is_not_lost_by_moving_it() {
        let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        drop(open_stores(data.path(), logs.path()).unwrap());
        assert!(logs.path().join("raftlog").exists() && !data.path().join("raftlog").exists());
        // dataLogDir dropped from the config: a state without its log.
        assert!(matches!(open_stores(data.path(), data.path()), Err(StorageError::LogMisplaced(_))));
        // A log left in the data directory when dataLogDir is set.
        let other = tempfile::tempdir().unwrap();
        drop(open_stores(other.path(), other.path()).unwrap());
        assert!(matches!(open_stores(other.path(), logs.path().join("elsewhere").as_path()), Err(StorageError::LogMisplaced(_))));
        // Moved as the message says, it opens.
        let moved = logs.path().join("moved");
        std::fs::create_dir(&moved).unwrap();
        std::fs::rename(other.path().join("raftlog"), moved.join("raftlog")).unwrap();
        assert!(open_stores(other.path(), &moved).is_ok());
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused_and_an_unmarked_one_is_marked() {
        let dir = tempfile::tempdir().unwrap();
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        let format = |db: &DB, name| db.get_cf(cf(db, name).unwrap(), KEY_FORMAT).unwrap();
        assert_eq!(format(&stores.log, CF_RAFT).as_deref(), Some(&FORMAT.to_be_bytes()[..]));
        assert_eq!(format(&stores.state, CF_META).as_deref(), Some(&FORMAT.to_be_bytes()[..]));
        // As a build from before the record left it: no format, data in place.
        stores.state.delete_cf(cf(&stores.state, CF_META).unwrap(), KEY_FORMAT).unwrap();
        stores.log.put_cf(cf(&stores.log, CF_RAFT).unwrap(), b"vote", b"v").unwrap();
        drop(stores);
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        assert_eq!(format(&stores.state, CF_META).as_deref(), Some(&FORMAT.to_be_bytes()[..]));
        assert_eq!(stores.log.get_cf(cf(&stores.log, CF_RAFT).unwrap(), b"vote").unwrap().as_deref(), Some(&b"v"[..]));
        // A newer build's log: refused, naming the directory and both formats.
        stores.log.put_cf(cf(&stores.log, CF_RAFT).unwrap(), KEY_FORMAT, (FORMAT + 1).to_be_bytes()).unwrap();
        drop(stores);
        let err = open_stores(dir.path(), dir.path()).err().expect("a newer format is refused");
        assert!(matches!(err, StorageError::TooNew { found, .. } if found == FORMAT + 1), "{err}");
        let message = err.to_string();
        assert!(message.contains("raftlog") && message.contains(&format!("format {}", FORMAT + 1)), "{message}");
        // A mangled record is reported, not taken for a format.
        let db = open_with(&dir.path().join("rocksdb"), &STATE_CFS, false).unwrap();
        db.put_cf(cf(&db, CF_META).unwrap(), KEY_FORMAT, b"x").unwrap();
        drop(db);
        assert!(matches!(open_with(&dir.path().join("rocksdb"), &STATE_CFS, false), Err(StorageError::Corrupt { .. })));
    }

    /// Bytes in each entry of [`append_like_the_log_store`].
    const ENTRY_BYTES: usize = 100 << 10;

    /// Writes as the log store does: `entries` entries, each with the
    /// committed point, synced.
    fn append_like_the_log_store(db: &DB, entries: u64) {
        let entry = vec![7u8; ENTRY_BYTES];
        for i in 0..entries {
            db.put_cf(cf(db, CF_LOGS).unwrap(), u64_key(i), &entry).unwrap();
            db.put_cf(cf(db, CF_RAFT).unwrap(), b"committed", u64_key(i)).unwrap();
            db.flush_wal(true).unwrap();
        }
    }

    /// Waits up to 10 s for `done` (flushes run in the background); its last answer.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        done()
    }

    /// Bytes of write-ahead log files in `dir`.
    fn wal_bytes(dir: &Path) -> u64 {
        let files = std::fs::read_dir(dir).unwrap().map(|f| f.unwrap());
        files.filter(|f| f.path().extension().is_some_and(|e| e == "log")).map(|f| f.metadata().unwrap().len()).sum()
    }

    #[test]
    fn a_rarely_written_column_family_does_not_keep_the_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        let (db, wal_dir) = (&stores.log, dir.path().join("raftlog"));
        // As the log store writes: an entry (a batch of transactions) and
        // the committed point, synced, 200 MiB in all; the vote only once.
        db.put_cf(cf(db, CF_RAFT).unwrap(), b"vote", b"v").unwrap();
        append_like_the_log_store(db, 2_000);
        assert!(eventually(|| wal_bytes(&wal_dir) <= 2 * MAX_WAL_BYTES), "{} MiB of log files kept", wal_bytes(&wal_dir) >> 20);
        assert_eq!(db.get_cf(cf(db, CF_RAFT).unwrap(), b"vote").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn the_log_frees_its_write_ahead_files_when_its_memtable_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        let db = &stores.log;
        let oldest_kept = || db.property_int_value("rocksdb.min-log-number-to-keep").unwrap().unwrap();
        // The WAL file the database started with.
        let first = std::fs::read_dir(dir.path().join("raftlog"))
            .unwrap()
            .filter_map(|f| f.unwrap().path().file_name()?.to_str()?.strip_suffix(".log")?.parse::<u64>().ok())
            .min()
            .unwrap();
        // A few memtables' worth, so that the log's memtable is flushed.
        append_like_the_log_store(db, 3 * CF_MEMTABLE as u64 / ENTRY_BYTES as u64);
        // The first file is no longer needed, so it can be recycled.
        assert!(eventually(|| oldest_kept() > first), "WAL file {first} still kept");
    }

    #[test]
    fn a_data_dir_from_before_the_split_keeps_its_one_database() {
        let dir = tempfile::tempdir().unwrap();
        let old = open(&dir.path().join("rocksdb")).unwrap();
        old.put_cf(cf(&old, CF_RAFT).unwrap(), b"vote", b"v").unwrap();
        drop(old);
        let stores = open_stores(dir.path(), dir.path()).unwrap();
        assert!(Arc::ptr_eq(&stores.log, &stores.state));
        assert_eq!(stores.log.get_cf(cf(&stores.log, CF_RAFT).unwrap(), b"vote").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(!dir.path().join("raftlog").exists());
    }
}
