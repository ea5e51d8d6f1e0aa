//! A connection's queue of watch events, which counts what it holds.
//!
//! Events are queued while the state machine applies a write, and it cannot
//! wait for a client to read them: the queue is unbounded. A client that
//! stops reading while its watches keep firing (a persistent recursive watch
//! on a busy tree) would make it grow without end. So the queue counts the
//! bytes it holds, and past [`MAX_UNSENT`] it refuses the next event: the
//! watch manager then stops sending to that connection, and the connection
//! closes once it has written what it queued before (never a later reply
//! without the events before it). The client reconnects and sets its
//! watches again (setWatches), hearing of every change since the last zxid
//! it saw, as after any lost connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jute::WatcherEvent;
use tokio::sync::mpsc;

/// Bytes of events a connection may hold unsent before it is closed. Far
/// more than any one request can set off: a setWatches of a whole 1 MiB
/// request is a few MiB of events, and its connection sends them before it
/// reads the next.
pub const MAX_UNSENT: usize = 64 << 20;

/// What an event costs beyond its path while it waits: the event itself
/// and its slot in the queue.
const EVENT_COST: usize = 64;

/// The bytes an event is counted as.
fn cost(ev: &WatcherEvent) -> usize {
    ev.path.len() + EVENT_COST
}

/// Where the watch manager puts a connection's events.
pub struct EventSink {
    tx: mpsc::UnboundedSender<WatcherEvent>,
    unsent: Arc<AtomicUsize>,
}

/// The connection's end: the events, in the order they were sent.
pub struct EventSource {
    rx: mpsc::UnboundedReceiver<WatcherEvent>,
    unsent: Arc<AtomicUsize>,
}

/// A new queue for one connection.
pub fn queue() -> (EventSink, EventSource) {
    let (tx, rx) = mpsc::unbounded_channel();
    let unsent = Arc::new(AtomicUsize::new(0));
    (EventSink { tx, unsent: unsent.clone() }, EventSource { rx, unsent })
}

/// An event the queue would not take: the connection left too many unread.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl EventSink {
    /// Queues `ev`, unless that would make the queue hold more than
    /// [`MAX_UNSENT`]. A connection already gone takes it and drops it.
    pub fn send(&self, ev: WatcherEvent) -> Result<(), Full> {
        let size = cost(&ev);
        if self.unsent.fetch_add(size, Ordering::AcqRel) + size > MAX_UNSENT {
            self.unsent.fetch_sub(size, Ordering::AcqRel);
            return Err(Full);
        }
        if let Err(lost) = self.tx.send(ev) {
            self.unsent.fetch_sub(cost(&lost.0), Ordering::AcqRel);
        }
        Ok(())
    }
}

impl EventSource {
    /// The next event, waiting for one; None once the sink is dropped and
    /// every event before that was taken.
    pub async fn recv(&mut self) -> Option<WatcherEvent> {
        let ev = self.rx.recv().await?;
        self.unsent.fetch_sub(cost(&ev), Ordering::AcqRel);
        Some(ev)
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<WatcherEvent> {
        let ev = self.rx.try_recv().ok()?;
        self.unsent.fetch_sub(cost(&ev), Ordering::AcqRel);
        Some(ev)
    }

    /// True once the sink is dropped and every event was taken: the watch
    /// manager gave up on this connection (or it is going away).
    pub fn ended(&self) -> bool {
        self.rx.is_closed() && self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(path_len: usize) -> WatcherEvent {
        WatcherEvent { event_type: 3, state: 3, path: "x".repeat(path_len) }
    }

    #[test]
    fn refuses_past_the_limit_and_takes_again_once_read() {
        let (sink, mut source) = queue();
        let each = MAX_UNSENT / 4;
        let big = event(each - EVENT_COST);
        for _ in 0..4 {
            assert_eq!(sink.send(big.clone()), Ok(()));
        }
        assert_eq!(sink.send(event(0)), Err(Full));
        assert_eq!(source.try_recv().map(|e| e.path.len()), Some(each - EVENT_COST));
        assert_eq!(sink.send(event(0)), Ok(()));
        drop(sink);
        assert!(!source.ended());
        let mut left = 0;
        while source.try_recv().is_some() {
            left += 1;
        }
        assert_eq!(left, 4);
        assert!(source.ended());
    }
}
