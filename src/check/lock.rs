//! Lock safety, from the fenced store's log and the lock clients' events.
//!
//! - No stale token accepted: in the store's decision order, every accepted
//!   write carries a token at least as large as every token accepted before
//!   it — so the tenures the store saw (the runs of accepted writes of one
//!   token) never interleave.
//! - One token, one holder: no token is used by two clients.
//! - Mutual exclusion as ZooKeeper grants it: for two acquisitions X < Y (by
//!   token), if X released the lock with a successful delete, X asked for
//!   that delete before Y saw itself holding the lock (Y can only become the
//!   lowest child once X's znode is gone).
//! - Fencing tokens grow with real time: an acquisition that completed
//!   before another was asked for has the smaller token.

use std::collections::BTreeMap;

use super::Anomaly;
use crate::fault::store::StoreWrite;

/// One lock tenure as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenure {
    /// The client.
    pub client: String,
    /// When it asked for the lock, µs.
    pub asked_us: i64,
    /// When it saw itself holding it, µs.
    pub acquired_us: i64,
    /// The fencing token (czxid of its lock znode).
    pub token: i64,
    /// When it asked to release it (delete), µs, if it did.
    pub release_asked_us: Option<i64>,
    /// True if that delete succeeded (the lock was released, not lost with the session).
    pub released: bool,
}

/// What the lock checker looked at.
#[derive(Debug, Default)]
pub struct LockReport {
    /// Tenures (acquisitions) checked.
    pub tenures: usize,
    /// Store writes accepted.
    pub accepted: usize,
    /// Store writes refused as stale (the fencing at work).
    pub refused: usize,
    /// Violations.
    pub anomalies: Vec<Anomaly>,
}

/// Checks the store's log and the tenures.
pub fn check(store_log: &[StoreWrite], tenures: &[Tenure]) -> LockReport {
    let mut r = LockReport { tenures: tenures.len(), ..Default::default() };
    let mut highest: Option<&StoreWrite> = None;
    let mut owner: BTreeMap<i64, &str> = BTreeMap::new();
    for w in store_log {
        if !w.accepted {
            r.refused += 1;
            continue;
        }
        r.accepted += 1;
        if let Some(h) = highest {
            if w.token < h.token {
                r.anomalies.push(Anomaly {
                    kind: "stale-token-accepted",
                    detail: format!(
                        "{} wrote {:?} with token {} at {} after {} had written with token {}",
                        w.client, w.value, w.token, w.at_us, h.client, h.token
                    ),
                });
            }
        }
        if highest.is_none_or(|h| w.token >= h.token) {
            highest = Some(w);
        }
        check_owner(&mut owner, w.token, &w.client, &mut r.anomalies);
    }
    for t in tenures {
        check_owner(&mut owner, t.token, &t.client, &mut r.anomalies);
    }
    let mut by_token: Vec<&Tenure> = tenures.iter().collect();
    by_token.sort_by_key(|t| t.token);
    for (i, x) in by_token.iter().enumerate() {
        for y in &by_token[i + 1..] {
            if x.token == y.token {
                continue;
            }
            if let (true, Some(rel)) = (x.released, x.release_asked_us) {
                if rel > y.acquired_us {
                    r.anomalies.push(Anomaly {
                        kind: "overlapping-tenures",
                        detail: format!(
                            "{} (token {}) held the lock until it released it at {rel}, but {} (token {}) held it from {}",
                            x.client, x.token, y.client, y.token, y.acquired_us
                        ),
                    });
                }
            }
        }
    }
    // Real-time order of acquisitions against token order.
    let mut by_acquired: Vec<&Tenure> = tenures.iter().collect();
    by_acquired.sort_by_key(|t| t.acquired_us);
    let mut by_asked: Vec<&Tenure> = tenures.iter().collect();
    by_asked.sort_by_key(|t| t.asked_us);
    // For each y, the largest token among acquisitions completed before y was asked.
    let mut max_before: Option<&Tenure> = None;
    let mut k = 0;
    for y in by_asked {
        while k < by_acquired.len() && by_acquired[k].acquired_us < y.asked_us {
            if max_before.is_none_or(|m| by_acquired[k].token > m.token) {
                max_before = Some(by_acquired[k]);
            }
            k += 1;
        }
        if let Some(x) = max_before {
            if x.token >= y.token {
                r.anomalies.push(Anomaly {
                    kind: "token-not-monotonic",
                    detail: format!(
                        "{} acquired token {} at {}, before {} asked at {} and got the smaller token {}",
                        x.client, x.token, x.acquired_us, y.client, y.asked_us, y.token
                    ),
                });
            }
        }
    }
    r
}

fn check_owner<'a>(owner: &mut BTreeMap<i64, &'a str>, token: i64, client: &'a str, out: &mut Vec<Anomaly>) {
    match owner.get(&token) {
        Some(c) if *c != client => {
            out.push(Anomaly { kind: "token-shared", detail: format!("token {token} used by both {c} and {client}") })
        }
        Some(_) => {}
        None => {
            owner.insert(token, client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(at: i64, client: &str, token: i64, accepted: bool) -> StoreWrite {
        StoreWrite { at_us: at, client: client.into(), token, value: format!("{client}{at}"), accepted }
    }
    fn t(client: &str, asked: i64, acquired: i64, token: i64, release: Option<i64>, released: bool) -> Tenure {
        Tenure { client: client.into(), asked_us: asked, acquired_us: acquired, token, release_asked_us: release, released }
    }

    #[test]
    fn the_figure_8_4_history_is_safe() {
        // A takes 33, pauses; B takes 34 and writes; A's late write is refused.
        let log = [w(10, "B", 34, true), w(20, "A", 33, false)];
        let tenures = [t("A", 0, 1, 33, None, false), t("B", 5, 8, 34, Some(15), true)];
        let r = check(&log, &tenures);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!((r.accepted, r.refused, r.tenures), (1, 1, 2));
    }

    #[test]
    fn an_unfenced_store_accepting_the_late_write_is_caught() {
        let log = [w(10, "B", 34, true), w(20, "A", 33, true)];
        let r = check(&log, &[]);
        assert_eq!(r.anomalies.len(), 1);
        assert_eq!(r.anomalies[0].kind, "stale-token-accepted");
    }

    #[test]
    fn two_holders_with_one_token_are_caught() {
        let r = check(&[w(1, "A", 7, true), w(2, "B", 7, true)], &[]);
        assert_eq!(r.anomalies[0].kind, "token-shared");
    }

    #[test]
    fn a_grant_before_the_previous_release_is_caught() {
        // A releases at 50 but B already held the lock from 40.
        let tenures = [t("A", 0, 1, 10, Some(50), true), t("B", 5, 40, 12, Some(60), true)];
        let r = check(&[], &tenures);
        assert_eq!(r.anomalies.len(), 1);
        assert_eq!(r.anomalies[0].kind, "overlapping-tenures");
        // The same with A's session lost (no successful release) is not judged here.
        let tenures = [t("A", 0, 1, 10, Some(50), false), t("B", 5, 40, 12, Some(60), true)];
        assert!(check(&[], &tenures).anomalies.is_empty());
    }

    #[test]
    fn a_later_acquisition_with_a_smaller_token_is_caught() {
        let tenures = [t("A", 0, 10, 50, Some(20), true), t("B", 30, 40, 45, Some(50), true)];
        let r = check(&[], &tenures);
        assert!(r.anomalies.iter().any(|a| a.kind == "token-not-monotonic"), "{:?}", r.anomalies);
    }
}
