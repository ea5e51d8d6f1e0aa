//! Watches: who asked to hear about which path, and delivery of events.
//!
//! Watches are local to the server a client is connected to; they are not
//! replicated. The state machine fires triggers while it still holds the tree
//! write lock, so an event is queued to a connection before any read that can
//! see the new state — the ordering ZooKeeper promises.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use jute::{event_type, keeper_state, WatcherEvent};
use tokio::sync::mpsc;

use crate::tree::{path, Trigger};

/// Identifies one client connection.
pub type ConnId = u64;

/// Where a connection's events go.
pub type EventSink = mpsc::UnboundedSender<WatcherEvent>;

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

#[derive(Default)]
struct Watches {
    data: Table,
    child: Table,
    persistent: Table,
    recursive: Table,
    sinks: HashMap<ConnId, EventSink>,
}

impl Watches {
    fn table(&mut self, kind: WatchKind) -> &mut Table {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    fn send(&self, conn: ConnId, kind: i32, path: &str) {
        if let Some(sink) = self.sinks.get(&conn) {
            // A closed receiver means the connection is going away; nothing to do.
            let _ = sink.send(WatcherEvent { event_type: kind, state: keeper_state::SYNC_CONNECTED, path: path.to_string() });
        }
    }

    /// Connections with a recursive watch on `path` or any ancestor.
    fn recursive_watchers(&self, path: &str, out: &mut HashSet<ConnId>) {
        let mut p = path;
        loop {
            out.extend(self.recursive.peek(p));
            if p == "/" {
                break;
            }
            p = path::parent(p);
        }
    }

    fn fire(&mut self, trigger: &Trigger) {
        let (path, kind) = match trigger {
            Trigger::Created(p) => (p, event_type::NODE_CREATED),
            Trigger::Deleted(p) => (p, event_type::NODE_DELETED),
            Trigger::DataChanged(p) => (p, event_type::NODE_DATA_CHANGED),
            Trigger::ChildrenChanged(p) => (p, event_type::NODE_CHILDREN_CHANGED),
        };
        let mut targets: HashSet<ConnId> = HashSet::new();
        if kind == event_type::NODE_CHILDREN_CHANGED {
            targets.extend(self.child.take(path));
            targets.extend(self.persistent.peek(path));
        } else {
            targets.extend(self.data.take(path));
            targets.extend(self.persistent.peek(path));
            self.recursive_watchers(path, &mut targets);
            if kind == event_type::NODE_DELETED {
                targets.extend(self.child.take(path));
            }
        }
        for conn in targets {
            self.send(conn, kind, path);
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

    /// Registers a connection's event sink.
    pub fn connect(&self, conn: ConnId, sink: EventSink) {
        self.lock().sinks.insert(conn, sink);
    }

    /// Drops every watch of a connection that went away.
    pub fn disconnect(&self, conn: ConnId) {
        let mut guard = self.lock();
        let w = &mut *guard;
        w.sinks.remove(&conn);
        for table in [&mut w.data, &mut w.child, &mut w.persistent, &mut w.recursive] {
            table.by_path.retain(|_, set| {
                set.remove(&conn);
                !set.is_empty()
            });
        }
    }

    /// Adds a watch.
    pub fn add(&self, conn: ConnId, kind: WatchKind, path: &str) {
        self.lock().table(kind).add(path, conn);
    }

    /// Removes a watch; true if it was there.
    pub fn remove(&self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        self.lock().table(kind).remove(path, conn)
    }

    /// True if the connection has this watch.
    pub fn has(&self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        self.lock().table(kind).contains(path, conn)
    }

    /// Sends one event straight to a connection (used by setWatches catch-up).
    pub fn notify(&self, conn: ConnId, event_kind: i32, path: &str) {
        self.lock().send(conn, event_kind, path);
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

    /// Total number of watches (for `mntr`/`wchs`).
    pub fn count(&self) -> usize {
        let w = self.lock();
        w.data.count() + w.child.count() + w.persistent.count() + w.recursive.count()
    }

    /// Watched paths per connection (for `wchc`).
    pub fn by_connection(&self) -> Vec<(ConnId, Vec<String>)> {
        let w = self.lock();
        let mut map: HashMap<ConnId, Vec<String>> = HashMap::new();
        for table in [&w.data, &w.child, &w.persistent, &w.recursive] {
            for (p, set) in &table.by_path {
                for c in set {
                    map.entry(*c).or_default().push(p.clone());
                }
            }
        }
        let mut v: Vec<_> = map.into_iter().collect();
        v.sort();
        v
    }

    /// Watching connections per path (for `wchp`).
    pub fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let w = self.lock();
        let mut map: HashMap<String, HashSet<ConnId>> = HashMap::new();
        for table in [&w.data, &w.child, &w.persistent, &w.recursive] {
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

    fn setup() -> (WatchManager, mpsc::UnboundedReceiver<WatcherEvent>) {
        let wm = WatchManager::default();
        let (tx, rx) = mpsc::unbounded_channel();
        wm.connect(1, tx);
        (wm, rx)
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<WatcherEvent>) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push((e.event_type, e.path));
        }
        out
    }

    #[test]
    fn one_shot_fires_once() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Data, "/a");
        wm.fire(&[Trigger::DataChanged("/a".into()), Trigger::DataChanged("/a".into())]);
        assert_eq!(drain(&mut rx), vec![(event_type::NODE_DATA_CHANGED, "/a".to_string())]);
    }

    #[test]
    fn delete_fires_data_and_child_watch_once() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Data, "/a");
        wm.add(1, WatchKind::Child, "/a");
        wm.fire(&[Trigger::Deleted("/a".into())]);
        assert_eq!(drain(&mut rx), vec![(event_type::NODE_DELETED, "/a".to_string())]);
        assert_eq!(wm.count(), 0);
    }

    #[test]
    fn persistent_and_recursive_stay() {
        let (wm, mut rx) = setup();
        wm.add(1, WatchKind::Persistent, "/p");
        wm.add(1, WatchKind::PersistentRecursive, "/r");
        wm.fire(&[
            Trigger::DataChanged("/p".into()),
            Trigger::ChildrenChanged("/p".into()),
            Trigger::Created("/r/x/y".into()),
            Trigger::ChildrenChanged("/r".into()),
            Trigger::DataChanged("/p".into()),
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
        assert_eq!(wm.count(), 2);
        wm.disconnect(1);
        assert_eq!(wm.count(), 0);
    }
}
