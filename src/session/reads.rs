//! A session's queued reads, which the state machine runs before the
//! session's next write if the connection has not run them by then.
//!
//! A read sent between two writes of a session must see the first write and
//! not the second. Holding the second write back until the read has run
//! would serialise the session's writes: each would wait a whole commit
//! round trip for the one before it. Instead the connection proposes the
//! write at once, as `Txn::AfterReads` with a number this server gives it,
//! and leaves the reads still queued before it here under that number;
//! applying that write, this server's state machine first runs them.
//! Whoever takes a read first, under the state lock, runs it: the
//! connection's writer (when the read's turn comes before the write is
//! applied) or the state machine.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;

use crate::config::Peer;
use crate::ops::read::{ReadOp, Reader};
use crate::tree::acl::AuthId;
use crate::tree::DataTree;
use crate::watch::{ConnId, EventCount, Identities, WatchManager};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who a connection's reads run as, wherever they run.
pub struct ReadCtx {
    conn: ConnId,
    session_id: i64,
    /// The identities the connection has proven.
    pub ids: Identities,
    /// `skipACL=yes`.
    skip_acl: bool,
    /// The ensemble of zoo.cfg (see `Reader::members`).
    members: std::collections::BTreeMap<u64, Peer>,
    /// Events sent to the connection so far (counted by the watch manager).
    events_sent: EventCount,
    /// For each read the state machine ran and the writer has not answered
    /// yet, oldest first: how many events had been sent to the connection
    /// when it ran. Later events must follow that read's reply (it may
    /// have set the watch they fire).
    fences: Mutex<VecDeque<u64>>,
}

impl ReadCtx {
    /// The context of a connection's reads.
    pub fn new(
        conn: ConnId,
        session_id: i64,
        ids: Identities,
        skip_acl: bool,
        members: std::collections::BTreeMap<u64, Peer>,
        events_sent: EventCount,
    ) -> Self {
        ReadCtx { conn, session_id, ids, skip_acl, members, events_sent, fences: Mutex::default() }
    }

    /// How many of the connection's events may be sent before the oldest
    /// unanswered read the state machine ran (None: any number).
    pub fn fence(&self) -> Option<u64> {
        lock(&self.fences).front().copied()
    }

    /// The writer answered the oldest read the state machine ran.
    pub fn answered_fence(&self) {
        lock(&self.fences).pop_front();
    }

    /// The connection's view of `tree`, with `ids` (a copy of its identities).
    pub fn reader<'a>(&'a self, tree: &'a DataTree, watches: &'a WatchManager, ids: &'a [AuthId]) -> Reader<'a> {
        Reader { tree, watches, conn: self.conn, session_id: self.session_id, ids, skip_acl: self.skip_acl, members: &self.members }
    }

    /// A copy of the identities the connection has proven.
    pub fn ids(&self) -> Vec<AuthId> {
        self.ids.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `op` on `tree` as this connection.
    fn run(&self, tree: &DataTree, watches: &WatchManager, op: &ReadOp, body: &mut BytesMut) -> i32 {
        let ids = self.ids();
        match self.reader(tree, watches, &ids).execute(op, body) {
            Ok(()) => 0,
            Err(e) => {
                body.clear();
                e.raw()
            }
        }
    }
}

/// What a read the state machine ran gave.
pub struct Ran {
    /// The zxid its reply carries: the last applied when it ran.
    pub zxid: i64,
    /// Its error code (0: none).
    pub err: i32,
    /// Its reply body.
    pub body: BytesMut,
}

enum State {
    Waiting(ReadOp),
    Taken,
    Ran(Ran),
    /// Its write was applied in a snapshot, so no state between its writes
    /// was ever here to run it on.
    Lost,
}

/// One queued read: either side may run it, once.
pub struct QueuedRead {
    ctx: Arc<ReadCtx>,
    state: Mutex<State>,
}

/// What the writer finds when a read's turn comes.
pub enum Turn {
    /// Not run yet: the writer runs it (holding the state lock it took
    /// before asking).
    Run(ReadOp),
    /// The state machine ran it.
    Ran(Ran),
    /// It cannot be answered: the connection must close, leaving the
    /// client to retry (see `HeldReads::lose_all`).
    Lost,
}

impl QueuedRead {
    /// A read of the connection `ctx`, not run yet.
    pub fn new(ctx: Arc<ReadCtx>, op: ReadOp) -> Arc<Self> {
        Arc::new(QueuedRead { ctx, state: Mutex::new(State::Waiting(op)) })
    }

    /// The writer's turn: takes the read to run it, or what the state
    /// machine got. Call it holding the state's read lock, so the state
    /// machine cannot run the read meanwhile.
    pub fn take(&self) -> Turn {
        match std::mem::replace(&mut *lock(&self.state), State::Taken) {
            State::Waiting(op) => Turn::Run(op),
            State::Ran(ran) => Turn::Ran(ran),
            // The writer takes each read once: a second take has nothing to
            // answer with, and the connection closes as for a lost one.
            State::Lost | State::Taken => Turn::Lost,
        }
    }

    /// Runs the read unless the writer took it; the state machine calls it
    /// holding the state's write lock, with the triggers of what it
    /// applied so far already fired.
    pub fn run_here(&self, tree: &DataTree, watches: &WatchManager) {
        let mut state = lock(&self.state);
        let State::Waiting(op) = &*state else { return };
        let mut body = BytesMut::new();
        let err = self.ctx.run(tree, watches, op, &mut body);
        // Nothing is sent to the connection while the state machine holds
        // the lock and runs this, so the count is exact.
        lock(&self.ctx.fences).push_back(self.ctx.events_sent.load(Ordering::Acquire));
        *state = State::Ran(Ran { zxid: tree.last_zxid(), err, body });
    }

    /// Runs `op` for the writer that took it (see `take`).
    pub fn run_taken(&self, tree: &DataTree, watches: &WatchManager, op: &ReadOp, body: &mut BytesMut) -> i32 {
        self.ctx.run(tree, watches, op, body)
    }
}

/// A write's session and this server's number for it.
type WriteKey = (i64, u64);

/// The reads waiting for a write, by the write's session and number.
#[derive(Default)]
pub struct HeldReads {
    by_write: Mutex<HashMap<WriteKey, Vec<Arc<QueuedRead>>>>,
    /// Entries in `by_write`: the state machine looks only if there are.
    len: AtomicUsize,
    next_seq: AtomicU64,
}

impl HeldReads {
    /// Numbers this server gives its writes begin with its id in the top
    /// bits, so no other server's write has one of them; the low bits start
    /// from the clock, so those of an earlier run are not met again.
    pub fn start(&self, server_id: u64) {
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        self.next_seq.store((server_id << 48) | (clock & ((1 << 48) - 1)) | 1, Ordering::Relaxed);
    }

    /// A number for a write proposed here with reads held for it.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Leaves `reads` to run before the write `seq` of `session_id` is applied.
    pub fn hold(&self, session_id: i64, seq: u64, reads: Vec<Arc<QueuedRead>>) {
        if lock(&self.by_write).insert((session_id, seq), reads).is_none() {
            self.len.fetch_add(1, Ordering::Release);
        }
    }

    /// Takes the reads held for the write `seq` of `session_id`, about to
    /// be applied: the state machine runs each (`QueuedRead::run_here`).
    pub fn take(&self, session_id: i64, seq: u64) -> Option<Vec<Arc<QueuedRead>>> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let reads = lock(&self.by_write).remove(&(session_id, seq))?;
        self.len.fetch_sub(1, Ordering::Release);
        Some(reads)
    }

    /// Marks every held read lost: a snapshot is replacing the state, and
    /// the writes they were held for may be in it, applied without them.
    pub fn lose_all(&self) {
        let mut map = lock(&self.by_write);
        for read in map.drain().flat_map(|(_, reads)| reads) {
            let mut state = lock(&read.state);
            if matches!(*state, State::Waiting(_)) {
                *state = State::Lost;
            }
        }
        self.len.store(0, Ordering::Release);
    }

    /// Forgets the reads of a connection that ended.
    pub fn release(&self, conn: ConnId) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut map = lock(&self.by_write);
        map.retain(|_, reads| reads.first().is_some_and(|r| r.ctx.conn != conn));
        self.len.store(map.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(conn: ConnId, session_id: i64) -> Arc<ReadCtx> {
        Arc::new(ReadCtx::new(conn, session_id, Identities::default(), false, Default::default(), EventCount::default()))
    }

    fn get(path: &str) -> ReadOp {
        ReadOp::GetData { path: path.into(), watch: false }
    }

    #[test]
    fn the_state_machine_runs_a_read_the_writer_has_not_taken_and_marks_its_events() {
        let (tree, watches) = (DataTree::new(), WatchManager::default());
        let c = ctx(1, 7);
        c.events_sent.store(5, Ordering::Release);
        let read = QueuedRead::new(c.clone(), get("/zookeeper"));
        read.run_here(&tree, &watches);
        // Events sent after it ran wait for its reply.
        assert_eq!(c.fence(), Some(5));
        match read.take() {
            Turn::Ran(ran) => assert_eq!((ran.err, ran.zxid), (0, tree.last_zxid())),
            _ => panic!("the state machine's result was not handed to the writer"),
        }
        c.answered_fence();
        assert_eq!(c.fence(), None);
    }

    #[test]
    fn a_read_the_writer_took_is_not_run_again() {
        let (tree, watches) = (DataTree::new(), WatchManager::default());
        let c = ctx(1, 7);
        let read = QueuedRead::new(c.clone(), get("/missing"));
        let Turn::Run(op) = read.take() else { panic!("a fresh read was not the writer's to run") };
        let mut body = BytesMut::new();
        assert_eq!(read.run_taken(&tree, &watches, &op, &mut body), crate::error::ZkError::NoNode.raw());
        read.run_here(&tree, &watches);
        assert_eq!(c.fence(), None, "the state machine ran a read the writer had taken");
    }

    #[test]
    fn held_reads_wait_for_their_own_write_and_go_with_their_connection() {
        let held = HeldReads::default();
        held.start(3);
        let (a, b) = (held.next_seq(), held.next_seq());
        assert!(b > a && a >> 48 == 3, "{a:#x} {b:#x}");
        held.hold(7, a, vec![QueuedRead::new(ctx(1, 7), get("/"))]);
        held.hold(8, b, vec![QueuedRead::new(ctx(2, 8), get("/"))]);
        // Another session's write, or another number, takes nothing.
        assert!(held.take(8, a).is_none() && held.take(7, b).is_none());
        assert_eq!(held.take(7, a).map(|r| r.len()), Some(1));
        assert!(held.take(7, a).is_none(), "held reads were handed out twice");
        // A connection that ends takes its held reads with it.
        held.release(2);
        assert!(held.take(8, b).is_none());
    }

    #[test]
    fn a_snapshot_loses_the_reads_still_held() {
        let held = HeldReads::default();
        let read = QueuedRead::new(ctx(1, 7), get("/"));
        held.hold(7, 1, vec![read.clone()]);
        held.lose_all();
        assert!(held.take(7, 1).is_none());
        assert!(matches!(read.take(), Turn::Lost), "a read held for a write inside the snapshot would run past it");
    }
}
