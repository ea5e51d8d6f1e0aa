//! Read points for linearizable reads, shared by concurrent reads.
//!
//! A read point costs a heartbeat round from the leader to a quorum (and,
//! on a follower, a question to the leader). Reads that arrive while one
//! round is out join the next one, which starts only after all of them
//! arrived, so its point covers every write acknowledged before each of
//! them: one round serves them all, however many there are.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::watch;

/// One round's outcome: the log index to apply up to, or why there is none.
pub type Point = Option<Result<u64, String>>;

/// Rounds of read points: at most one running, and one gathering readers.
#[derive(Default)]
pub struct ReadRounds {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The round readers join: not started yet.
    next: Option<watch::Sender<Point>>,
    /// Whether a driver is running rounds.
    running: bool,
}

impl ReadRounds {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins the next round: its outcome, and whether the caller must start
    /// [`ReadRounds::drive`] (no driver is running).
    pub fn join(&self) -> (watch::Receiver<Point>, bool) {
        let mut s = self.lock();
        let rx = s.next.get_or_insert_with(|| watch::channel(None).0).subscribe();
        let start = !s.running;
        s.running = true;
        (rx, start)
    }

    /// Runs rounds, each with `fetch`, until no reader waits for one.
    pub async fn drive<F, Fut>(&self, fetch: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<u64, String>>,
    {
        loop {
            let round = {
                let mut s = self.lock();
                match s.next.take() {
                    Some(round) => round,
                    None => {
                        s.running = false;
                        return;
                    }
                }
            };
            let point = fetch().await;
            round.send_replace(Some(point));
        }
    }
}

/// Waits for a joined round's outcome.
pub async fn outcome(mut rx: watch::Receiver<Point>) -> Result<u64, String> {
    match rx.wait_for(Option::is_some).await {
        Ok(point) => point.clone().unwrap_or_else(|| Err("no read point".into())),
        Err(_) => Err("the read point's round was dropped".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn readers_that_arrive_during_a_round_share_the_next() {
        let rounds = Arc::new(ReadRounds::default());
        let fetched = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        // The first reader starts a round, which waits at the gate.
        let (first, start) = rounds.join();
        assert!(start);
        let driver = {
            let (rounds, fetched, gate) = (rounds.clone(), fetched.clone(), gate.clone());
            tokio::spawn(async move {
                rounds
                    .drive(|| {
                        let (fetched, gate) = (fetched.clone(), gate.clone());
                        async move {
                            gate.acquire().await.map_err(|e| e.to_string())?.forget();
                            Ok(fetched.fetch_add(1, Ordering::SeqCst) + 1)
                        }
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        // Ten more arrive while it is out: they join one later round.
        let later: Vec<_> = (0..10).map(|_| rounds.join()).collect();
        assert!(later.iter().all(|(_, start)| !start), "one driver only");
        gate.add_permits(2);
        assert_eq!(outcome(first).await, Ok(1));
        for (rx, _) in later {
            assert_eq!(outcome(rx).await, Ok(2), "the round after their arrival");
        }
        driver.await.unwrap();
        assert_eq!(fetched.load(Ordering::SeqCst), 2, "two rounds for eleven readers");
        // The driver stopped: the next reader starts one again.
        assert!(rounds.join().1);
    }
}
