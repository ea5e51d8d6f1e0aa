//! How far the Raft log had been made durable, kept outside RocksDB, so that
//! a log that lost entries is noticed at start.
//!
//! RocksDB recovers its write-ahead log up to the first damaged record
//! (point-in-time recovery, which recycled WAL files need): a bad sector or
//! flipped bits in the middle of the log end it there, every acknowledged
//! write after that point is gone, and the database opens without an error.
//! A server that carried on would serve, and vote with, a log that forgot
//! what it acknowledged. This file, a few bytes rewritten at most once a
//! second by a thread of its own, holds an index the log had made durable; a
//! log found ending before it has lost entries, and the server refuses to
//! start.
//!
//! The mark is never ahead of the log: it is written only after the log's
//! fsync of that index, and lowered (synced) before a truncation removes
//! entries. It may be a second behind, so damage among the last second's
//! writes goes unnoticed, as a torn last write must.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// The mark's file, inside the log database's directory (so that emptying
/// that directory to resync a member removes the mark with the log).
const FILE: &str = "PADDOCK-DURABLE";
/// How often the mark is rewritten while the log grows.
const EVERY: Duration = Duration::from_secs(1);
/// XORed with the index into the file's second half, so a torn or foreign
/// file is told from a mark.
const CHECK: u64 = 0x7061_6464_6f63_6b21;

/// The log's durable mark; cheap to clone.
#[derive(Clone)]
pub struct DurableMark {
    inner: Arc<Inner>,
}

struct Inner {
    /// The highest index known durable in the log.
    durable: AtomicU64,
    /// The file and the index it holds.
    written: Mutex<Written>,
}

struct Written {
    file: File,
    index: u64,
}

impl DurableMark {
    /// Opens (creating) the mark in `dir`, starts the thread that keeps it
    /// up to date, and returns it with the index it held (None for a new
    /// or unreadable mark: nothing to check against).
    pub fn open(dir: &Path) -> std::io::Result<(DurableMark, Option<u64>)> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(FILE))?;
        let mut bytes = [0u8; 16];
        let held = match file.read_exact_at(&mut bytes, 0) {
            Ok(()) => decode(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        if held.is_none() && file.metadata()?.len() > 0 {
            tracing::warn!(file = %dir.join(FILE).display(), "the log's durable mark is unreadable; not checking the log against it");
        }
        let index = held.unwrap_or(0);
        let inner = Arc::new(Inner { durable: AtomicU64::new(index), written: Mutex::new(Written { file, index }) });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new().name("durable-mark".into()).spawn(move || keep_up(weak))?;
        Ok((DurableMark { inner }, held))
    }

    /// Records that the log is durable up to `index` (written within a second).
    pub fn advance(&self, index: u64) {
        self.inner.durable.fetch_max(index, Ordering::Relaxed);
    }

    /// Before entries from `index` on are removed: brings the mark below
    /// them, on disk, so it never claims entries the log no longer holds.
    pub fn lower(&self, index: u64) -> std::io::Result<()> {
        let below = index.saturating_sub(1);
        let mut written = self.inner.lock();
        self.inner.durable.fetch_min(below, Ordering::Relaxed);
        if written.index > below {
            written.store(below)?;
        }
        Ok(())
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the mark if the log moved on since. The durable index is read
    /// under the lock that `lower` holds, so a lowered mark is never
    /// overwritten with an index from before the truncation.
    fn flush(&self) -> std::io::Result<()> {
        let mut written = self.lock();
        let durable = self.durable.load(Ordering::Relaxed);
        if durable > written.index {
            written.store(durable)?;
        }
        Ok(())
    }
}

/// The thread's loop: rewrites the mark every [`EVERY`] until the log store is gone.
fn keep_up(inner: Weak<Inner>) {
    loop {
        std::thread::sleep(EVERY);
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.flush() {
            tracing::warn!("cannot write the log's durable mark: {e}");
        }
    }
}

impl Written {
    /// Puts `index` in the file, synced.
    fn store(&mut self, index: u64) -> std::io::Result<()> {
        self.file.write_all_at(&encode(index), 0)?;
        self.file.sync_data()?;
        self.index = index;
        Ok(())
    }
}

fn encode(index: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    bytes[8..].copy_from_slice(&(index ^ CHECK).to_le_bytes());
    bytes
}

fn decode(bytes: &[u8; 16]) -> Option<u64> {
    let (index, check) = bytes.split_at(8);
    let index = u64::from_le_bytes(index.try_into().ok()?);
    let check = u64::from_le_bytes(check.try_into().ok()?);
    (index ^ CHECK == check).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_durable_and_is_lowered_before_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let (mark, held) = DurableMark::open(dir.path()).unwrap();
        assert_eq!(held, None, "a new mark holds nothing");
        mark.advance(42);
        mark.inner.flush().unwrap();
        mark.advance(40);
        mark.inner.flush().unwrap();
        drop(mark);
        let (mark, held) = DurableMark::open(dir.path()).unwrap();
        assert_eq!(held, Some(42), "the highest durable index");
        // Entries from 30 on are truncated: the mark drops to 29 at once,
        // and an append after that raises it again.
        mark.lower(30).unwrap();
        assert_eq!(DurableMark::open(dir.path()).unwrap().1, Some(29));
        mark.advance(31);
        mark.inner.flush().unwrap();
        assert_eq!(DurableMark::open(dir.path()).unwrap().1, Some(31));
    }

    #[test]
    fn a_damaged_mark_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"not a mark at all").unwrap();
        assert_eq!(DurableMark::open(dir.path()).unwrap().1, None);
        std::fs::write(dir.path().join(FILE), b"short").unwrap();
        assert_eq!(DurableMark::open(dir.path()).unwrap().1, None);
    }
}
