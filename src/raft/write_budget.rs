//! The bytes of client writes whose outcome is not known yet, and how many
//! may be.
//!
//! A write is proposed as soon as its connection reads it, and its request
//! stays in memory until it is applied (in the leader's queue, in the log's
//! entry in flight, on a follower in its link to the leader). Clients can
//! send faster than the log's disk takes writes in: four connections each
//! pipelining 512 setData requests of 1 MB made a server hold 2 GiB at its
//! peak (ZooKeeper 3.8: 6 GiB; its `globalOutstandingLimit` counts requests,
//! not bytes). So a connection reads on only once its write fits within
//! [`WRITE_BUDGET`], as ZooKeeper stops reading connections past its limit.
//! The share is given back once the outcome is known, not when the client
//! reads the reply: a client that stops reading holds none of it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of client write requests that may wait for their outcome at once.
/// Far more than the log takes in one fsync (`batcher`: 4 MiB an entry, 8
/// entries in flight), so that it never waits for want of writes.
pub const WRITE_BUDGET: usize = 64 << 20;

/// A write's share of the budget, held until its outcome is known; none
/// for the server's own writes (sessions, expiry).
pub type Hold = Option<OwnedSemaphorePermit>;

/// The budget, shared by all client connections of this server.
#[derive(Clone)]
pub struct WriteBudget(Arc<Semaphore>);

impl Default for WriteBudget {
    fn default() -> Self {
        WriteBudget(Arc::new(Semaphore::new(WRITE_BUDGET)))
    }
}

impl WriteBudget {
    /// Waits until a write request of `bytes` fits, and takes its share (a
    /// request larger than the whole budget takes all of it).
    pub async fn hold(&self, bytes: usize) -> Hold {
        let share = u32::try_from(bytes.clamp(1, WRITE_BUDGET)).unwrap_or(u32::MAX);
        self.0.clone().acquire_many_owned(share).await.ok()
    }
}

/// The shares of two writes as one, given back together.
pub fn join(a: Hold, b: Hold) -> Hold {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            a.merge(b);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Bytes of writes whose outcome is not known yet.
    fn held(budget: &WriteBudget) -> usize {
        WRITE_BUDGET - budget.0.available_permits()
    }

    #[tokio::test]
    async fn a_write_waits_until_earlier_ones_give_their_share_back() {
        let budget = WriteBudget::default();
        let first = budget.hold(WRITE_BUDGET - 10).await;
        let small = budget.hold(10).await;
        assert_eq!(held(&budget), WRITE_BUDGET);
        let waiting = tokio::time::timeout(Duration::from_millis(50), budget.hold(1)).await;
        assert!(waiting.is_err(), "a write beyond the budget was let through");
        drop(first);
        assert!(budget.hold(WRITE_BUDGET - 10).await.is_some());
        drop(small);
        // Larger than the whole budget: it takes all of it, and still goes.
        assert!(budget.hold(2 * WRITE_BUDGET).await.is_some());
    }

    #[tokio::test]
    async fn joined_shares_go_back_together() {
        let budget = WriteBudget::default();
        let joined = join(join(None, budget.hold(100).await), budget.hold(200).await);
        assert_eq!(held(&budget), 300);
        drop(joined);
        assert_eq!(held(&budget), 0);
    }
}
