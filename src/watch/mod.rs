//! Watches: who asked to hear about which path, and delivery of events.
//!
//! Watches are local to the server a client is connected to; they are not
//! replicated. The state machine fires triggers while it still holds the tree
//! write lock, so an event is queued to a connection before any read that can
//! see the new state — the ordering ZooKeeper promises.

mod queue;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use jute::{event_type, keeper_state, WatcherEvent};
pub use queue::{queue, EventSink, EventSource, MAX_UNSENT};

use crate::tree::acl::{allowed, AuthId};
use crate::tree::{path, Event, Trigger};

/// Identifies one client connection.
pub type ConnId = u64;

/// A connection's identities, as it proves more of them (addAuth, SASL).
pub type Identities = Arc<RwLock<Vec<AuthId>>>;

/// How many events were sent to a connection: where its events fall
/// among the reads the state machine runs for it (`session::reads`).
pub type EventCount = Arc<std::sync::atomic::AtomicU64>;

/// Where one connection's events go, and who it is (None: it hears every
/// event, as with skipACL).
struct Listener {
    sink: EventSink,
    ids: Option<Identities>,
    sent: EventCount,
}

/// The kinds of watch a client can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// One-shot, set by getData or exists.
    Data,
    /// One-shot, set by getChildren.
    Child,
    /// addWatch PERSISTENT: data and child events of one node, until removed.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: data events of a node and all below it.
    PersistentRecursive,
}

#[derive(Default)]
struct Table {
    by_path: HashMap<String, HashSet<ConnId>>,
}

impl Table {
    fn add(&mut self, path: &str, conn: ConnId) {
        self.by_path.entry(path.to_string()).or_default().insert(conn);
    }

    fn remove(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(set) = self.by_path.get_mut(path) else { return false };
        let removed = set.remove(&conn);
        if set.is_empty() {
            self.by_path.remove(path);
        }
        removed
    }

    fn contains(&self, path: &str, conn: ConnId) -> bool {
        self.by_path.get(path).is_some_and(|s| s.contains(&conn))
    }

    fn take(&mut self, path: &str) -> HashSet<ConnId> {
        self.by_path.remove(path).unwrap_or_default()
    }

    fn peek(&self, path: &str) -> impl Iterator<Item = &ConnId> {
        self.by_path.get(path).into_iter().flatten()
    }

    fn count(&self) -> usize {
        self.by_path.values().map(|s| s.len()).sum()
    }
}

/// Which watches a removeWatches or checkWatches request names
/// (ZooKeeper's `WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherType {
    /// 1: child watches, and the child half of persistent ones.
    Children,
    /// 2: data watches, and the data half of persistent ones.
    Data,
    /// 3: every watch on the path.
    Any,
    /// 4: the persistent watch, both halves (ZooKeeper 3.9).
    Persistent,
    /// 5: the persistent recursive watch, both halves (ZooKeeper 3.9).
    PersistentRecursive,
}

impl WatcherType {
    /// The type a request's number names, if any.
    pub fn from_wire(t: i32) -> Option<WatcherType> {
        Some(match t {
            1 => WatcherType::Children,
            2 => WatcherType::Data,
            3 => WatcherType::Any,
            4 => WatcherType::Persistent,
            5 => WatcherType::PersistentRecursive,
            _ => return None,
        })
    }
}

/// The watch tables. As on ZooKeeper 3.8, a persistent (or recursive) watch
/// sits in both the data and the child table, as two halves: removing
/// watches of one type takes only that half, and the other keeps firing.
#[derive(Default)]
struct Watches {
    data: Table,
    child: Table,
    persistent: Table,
    persistent_child: Table,
    recursive: Table,
    recursive_child: Table,
    listeners: HashMap<ConnId, Listener>,
}

impl Watches {
    /// The tables a watch of `kind` is added to.
    fn tables(&mut self, kind: WatchKind) -> Vec<&mut Table> {
        match kind {
            WatchKind::Data => vec![&mut self.data],
            WatchKind::Child => vec![&mut self.child],
            WatchKind::Persistent => vec![&mut self.persistent, &mut self.persistent_child],
            WatchKind::PersistentRecursive => vec![&mut self.recursive, &mut self.recursive_child],
        }
    }

    /// The tables a removeWatches or checkWatches of `t` looks in.
    fn tables_of(&mut self, t: WatcherType) -> Vec<&mut Table> {
        match t {
            WatcherType::Children => vec![&mut self.child, &mut self.persistent_child, &mut self.recursive_child],
            WatcherType::Data => vec![&mut self.data, &mut self.persistent, &mut self.recursive],
            WatcherType::Any => self.all_mut().into(),
            WatcherType::Persistent => vec![&mut self.persistent, &mut self.persistent_child],
            WatcherType::PersistentRecursive => vec![&mut self.recursive, &mut self.recursive_child],
        }
    }

    fn all(&self) -> [&Table; 6] {
        [&self.data, &self.child, &self.persistent, &self.persistent_child, &self.recursive, &self.recursive_child]
    }

    fn all_mut(&mut self) -> [&mut Table; 6] {
        [&mut self.data, &mut self.child, &mut self.persistent, &mut self.persistent_child, &mut self.recursive, &mut self.recursive_child]
    }

    /// Sends an event to `conn` if it may read a node with `readers`
    /// (None: anyone may).
    fn send(&mut self, conn: ConnId, kind: i32, path: &str, readers: Option<&[crate::tree::AclEntry]>) {
        let Some(listener) = self.listeners.get(&conn) else { return };
        if let (Some(acl), Some(ids)) = (readers, &listener.ids) {
            let ids = ids.read().unwrap_or_else(|e| e.into_inner());
            if !allowed(acl, jute::perms::READ, &ids) {
                return;
            }
        }
        listener.sent.fetch_add(1, std::sync::atomic::Ordering::Release);
        let event = WatcherEvent { event_type: kind, state: keeper_state::SYNC_CONNECTED, path: path.to_string() };
        if listener.sink.send(event).is_ok() {
            return;
        }
        // The client stopped reading: it hears nothing more here, and its
        // connection closes once the events before this one are out.
        tracing::warn!(conn, "closing a connection that left {} MiB of watch events unread", MAX_UNSENT >> 20);
        self.listeners.remove(&conn);
    }

    /// Connections with a recursive watch (in `table`: one of its halves)
    /// on `path` or any ancestor.
    fn recursive_watchers(table: &Table, path: &str, out: &mut HashSet<ConnId>) {
        let mut p = path;
        loop {
            out.extend(table.peek(p));
            if p == "/" {
                break;
            }
            p = path::parent(p);
        }
    }

    fn fire(&mut self, trigger: &Trigger) {
        let path = &trigger.path;
        let kind = match trigger.event {
            Event::Created => event_type::NODE_CREATED,
            Event::Deleted => event_type::NODE_DELETED,
            Event::DataChanged => event_type::NODE_DATA_CHANGED,
            Event::ChildrenChanged => event_type::NODE_CHILDREN_CHANGED,
        };
        // As ZooKeeper: a child event goes to the child table (recursive
        // watches never see one); a deletion to both tables, once.
        let mut targets: HashSet<ConnId> = HashSet::new();
        if kind == event_type::NODE_CHILDREN_CHANGED {
            targets.extend(self.child.take(path));
            targets.extend(self.persistent_child.peek(path));
        } else {
            targets.extend(self.data.take(path));
            targets.extend(self.persistent.peek(path));
            Self::recursive_watchers(&self.recursive, path, &mut targets);
            if kind == event_type::NODE_DELETED {
                targets.extend(self.child.take(path));
                targets.extend(self.persistent_child.peek(path));
                Self::recursive_watchers(&self.recursive_child, path, &mut targets);
            }
        }
        // A one-shot watch that may not hear the event is used up all the
        // same, as on ZooKeeper.
        for conn in targets {
            self.send(conn, kind, path, trigger.readers.as_deref());
        }
    }
}

/// All watches of this server.
#[derive(Default)]
pub struct WatchManager {
    inner: Mutex<Watches>,
}

impl WatchManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, Watches> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection's event sink and identities (None: it hears
    /// events about every node), and what counts the events sent to it.
    pub fn connect(&self, conn: ConnId, sink: EventSink, ids: Option<Identities>, sent: EventCount) {
        self.lock().listeners.insert(conn, Listener { sink, ids, sent });
    }

    /// Drops every watch of a connection that went away.
    pub fn disconnect(&self, conn: ConnId) {
        let mut guard = self.lock();
        let w = &mut *guard;
        w.listeners.remove(&conn);
        for table in w.all_mut() {
            table.by_path.retain(|_, set| {
                set.remove(&conn);
                !set.is_empty()
            });
        }
    }

    /// Adds a watch.
    pub fn add(&self, conn: ConnId, kind: WatchKind, path: &str) {
        for table in self.lock().tables(kind) {
            table.add(path, conn);
        }
    }

    /// Removes the connection's watches of type `t` on `path`; true if there were any.
    pub fn remove(&self, conn: ConnId, t: WatcherType, path: &str) -> bool {
        let mut removed = false;
        for table in self.lock().tables_of(t) {
            removed |= table.remove(path, conn);
        }
        removed
    }

    /// True if the connection has a watch of type `t` on `path`.
    pub fn has(&self, conn: ConnId, t: WatcherType, path: &str) -> bool {
        self.lock().tables_of(t).iter().any(|table| table.contains(path, conn))
    }

    /// Sends one event straight to a connection (used by setWatches catch-up).
    pub fn notify(&self, conn: ConnId, event_kind: i32, path: &str) {
        // ZooKeeper checks no ACL on these either.
        self.lock().send(conn, event_kind, path, None);
    }

    /// Fires the triggers of an applied batch, in order.
    pub fn fire(&self, triggers: &[Trigger]) {
        if triggers.is_empty() {
            return;
        }
        let mut w = self.lock();
        for t in triggers {
            w.fire(t);
        }
    }

    /// Total number of watches (for `mntr`/`wchs`): as ZooKeeper counts
    /// them, a persistent watch's two halves count twice.
    pub fn count(&self) -> usize {
        self.lock().all().iter().map(|t| t.count()).sum()
    }

    /// Watched paths per connection (for `wchc`).
    pub fn by_connection(&self) -> Vec<(ConnId, Vec<String>)> {
        let w = self.lock();
        let mut map: HashMap<ConnId, Vec<String>> = HashMap::new();
        for table in w.all() {
            for (p, set) in &table.by_path {
                for c in set {
                    map.entry(*c).or_default().push(p.clone());
                }
            }
        }
        for paths in map.values_mut() {
            paths.sort();
            paths.dedup();
        }
        let mut v: Vec<_> = map.into_iter().collect();
        v.sort();
        v
    }

    /// Watching connections per path (for `wchp`).
    pub fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let w = self.lock();
        let mut map: HashMap<String, HashSet<ConnId>> = HashMap::new();
        for table in w.all() {
            for (p, set) in &table.by_path {
                map.entry(p.clone()).or_default().extend(set.iter().copied());
            }
        }
        let mut v: Vec<_> = map.into_iter().map(|(p, s)| (p, s.into_iter().collect())).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (WatchManager, EventSource) {
        let wm = WatchManager::default();
        let (tx, rx) = queue();
        wm.connect(1, tx, None, Default::default());
        (wm, rx)
    }

    fn drain(rx: &mut EventSource) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        while let Some(e) = rx.try_recv() {
            out.push((e.event_type, e.path));
        }
        out
    }

    #[test]
    fn one_shot_fires_once() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Data, "/a");
        wm.fire(&[Trigger::open(Event::DataChanged, "/a"), Trigger::open(Event::DataChanged, "/a")]);
        assert_eq!(drain(&mut rx), vec![(event_type::NODE_DATA_CHANGED, "/a".to_string())]);
    }

    #[test]
    fn delete_fires_data_and_child_watch_once() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Data, "/a");
        wm.add(1, WatchKind::Child, "/a");
        wm.fire(&[Trigger::open(Event::Deleted, "/a")]);
        assert_eq!(drain(&mut rx), vec![(event_type::NODE_DELETED, "/a".to_string())]);
        assert_eq!(wm.count(), 0);
    }

    #[test]
    fn persistent_and_recursive_stay() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Persistent, "/p");
        wm.add(1, WatchKind::PersistentRecursive, "/r");
        wm.fire(&[
            Trigger::open(Event::DataChanged, "/p"),
            Trigger::open(Event::ChildrenChanged, "/p"),
            Trigger::open(Event::Created, "/r/x/y"),
            Trigger::open(Event::ChildrenChanged, "/r"),
            Trigger::open(Event::DataChanged, "/p"),
        ]);
        assert_eq!(
            drain(&mut rx),
            vec![
                (event_type::NODE_DATA_CHANGED, "/p".to_string()),
                (event_type::NODE_CHILDREN_CHANGED, "/p".to_string()),
                (event_type::NODE_CREATED, "/r/x/y".to_string()),
                (event_type::NODE_DATA_CHANGED, "/p".to_string()),
            ]
        );
        assert_eq!(wm.count(), 4, "each persistent watch counts in both tables");
        wm.disconnect(1);
        assert_eq!(wm.count(), 0);
    }

    #[test]
    fn removing_one_type_takes_one_half_of_a_persistent_watch() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Persistent, "/p");
        assert!(wm.remove(1, WatcherType::Data, "/p"));
        assert!(!wm.has(1, WatcherType::Data, "/p"));
        assert!(wm.has(1, WatcherType::Children, "/p"));
        wm.fire(&[Trigger::open(Event::DataChanged, "/p"), Trigger::open(Event::ChildrenChanged, "/p")]);
        assert_eq!(drain(&mut rx), vec![(event_type::NODE_CHILDREN_CHANGED, "/p".to_string())]);
        assert!(wm.remove(1, WatcherType::Any, "/p"));
        assert!(!wm.remove(1, WatcherType::Any, "/p"));
        // A recursive watch's child half still hears deletions below it.
        wm.add(1, WatchKind::PersistentRecursive, "/r");
        assert!(wm.remove(1, WatcherType::Data, "/r"));
        wm.fire(&[
            Trigger::open(Event::Created, "/r/x"),
            Trigger::open(Event::Deleted, "/r/x"),
            Trigger::open(Event::ChildrenChanged, "/r"),
        ]);
        assert_eq!(drain(&mut rx), vec![(event_type::NODE_DELETED, "/r/x".to_string())]);
    }
}
