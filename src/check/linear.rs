//! Linearizability of a register workload, checked with the Wing–Gong–Lowe
//! algorithm (G. Lowe, "Testing for linearizability", 2017: the
//! just-in-time search over a doubly linked list of call and return entries,
//! with a cache of (linearized set, state) pairs already explored).
//!
//! The register is a ZooKeeper znode's (data, version): reads are `sync` +
//! `getData`, writes are `setData` with version -1, compare-and-sets are
//! `setData` with an expected version. An operation whose outcome is unknown
//! (connection lost, timed out) may have taken effect at any time after its
//! invocation, or never: it gets no return entry and the search may leave it
//! unlinearized. Keys are independent registers, checked one by one.

use std::collections::{BTreeMap, HashSet};

use super::Anomaly;

/// The register's state: the value written last and the znode version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegState {
    /// Value (each write writes a unique number).
    pub value: u64,
    /// ZooKeeper's data version.
    pub version: i32,
}

/// What a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegOp {
    /// sync + getData.
    Read,
    /// setData(value, -1).
    Write(u64),
    /// setData(value, expected version).
    Cas {
        /// The version the client expects.
        expect: i32,
        /// The new value.
        value: u64,
    },
}

/// What it got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegResult {
    /// A read's value and version.
    Read(RegState),
    /// A write or CAS applied; the new version.
    Written(i32),
    /// A CAS refused with BadVersion (definitely not applied).
    CasFailed,
    /// No answer: it may or may not have been applied.
    Unknown,
}

/// One completed (or abandoned) operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegEvent {
    /// The client (session) that ran it.
    pub process: u64,
    /// The register (znode path).
    pub key: String,
    /// The operation.
    pub op: RegOp,
    /// Invocation time, µs.
    pub invoke_us: i64,
    /// Completion time, µs (ignored for `Unknown`).
    pub complete_us: i64,
    /// The outcome.
    pub result: RegResult,
}

/// Applies `op` with outcome `res` to `s`: the next state if the pair is
/// possible from `s`.
pub fn step(s: RegState, op: RegOp, res: RegResult) -> Option<RegState> {
    match (op, res) {
        (RegOp::Read, RegResult::Read(seen)) => (seen == s).then_some(s),
        (RegOp::Read, _) => None,
        (RegOp::Write(v), RegResult::Written(ver)) => (ver == s.version + 1).then_some(RegState { value: v, version: ver }),
        (RegOp::Write(v), RegResult::Unknown) => Some(RegState { value: v, version: s.version + 1 }),
        (RegOp::Cas { expect, value }, RegResult::Written(ver)) => {
            (s.version == expect && ver == expect + 1).then_some(RegState { value, version: ver })
        }
        (RegOp::Cas { expect, value }, RegResult::Unknown) => (s.version == expect).then_some(RegState { value, version: expect + 1 }),
        (RegOp::Cas { expect, .. }, RegResult::CasFailed) => (s.version != expect).then_some(s),
        (RegOp::Write(_), _) => None,
        (RegOp::Cas { .. }, RegResult::Read(_)) => None,
    }
}

/// The outcome for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists; the deepest partial linearization found and the
    /// operation that could not follow it.
    NotLinearizable {
        /// Operations linearized before getting stuck (history indices), in order.
        prefix: Vec<usize>,
        /// The state after them.
        state: RegState,
        /// The operation that had to complete next but fits no order.
        stuck: usize,
    },
    /// The search gave up after its step budget.
    Unknown,
}

/// A summary over all keys.
#[derive(Debug, Default)]
pub struct Report {
    /// Operations checked (unknown reads are dropped: they say nothing).
    pub ops: usize,
    /// Keys checked.
    pub keys: usize,
    /// Keys whose search ran out of budget.
    pub unknown_keys: Vec<String>,
    /// Violations.
    pub anomalies: Vec<Anomaly>,
}

struct Entry {
    op: usize,
    is_call: bool,
    /// For a call: its return entry, if the op completed.
    ret: Option<usize>,
}

/// Checks one key's history from `initial`, giving up after `budget` search steps.
pub fn check_key(history: &[RegEvent], initial: RegState, budget: u64) -> Verdict {
    // Entries sorted by time; at equal times calls come first, so touching
    // intervals count as concurrent (never a false alarm).
    let mut times: Vec<(i64, bool, usize)> = Vec::new();
    for (i, e) in history.iter().enumerate() {
        times.push((e.invoke_us, false, i));
        if e.result != RegResult::Unknown {
            times.push((e.complete_us.max(e.invoke_us), true, i));
        }
    }
    times.sort_unstable();
    let n = times.len();
    let mut entries: Vec<Entry> = Vec::with_capacity(n);
    let mut ret_of = vec![None; history.len()];
    for (idx, (_, is_ret, op)) in times.iter().enumerate() {
        entries.push(Entry { op: *op, is_call: !is_ret, ret: None });
        if *is_ret {
            ret_of[*op] = Some(idx);
        }
    }
    for e in entries.iter_mut() {
        if e.is_call {
            e.ret = ret_of[e.op];
        }
    }
    // Doubly linked list over entries with a head sentinel at index n.
    let head = n;
    let mut next: Vec<usize> = (1..=n + 1).collect();
    let mut prev: Vec<usize> = vec![0; n + 1];
    for (i, p) in prev.iter_mut().enumerate().take(n) {
        *p = if i == 0 { head } else { i - 1 };
    }
    next[n - 1] = usize::MAX;
    next[head] = if n == 0 { usize::MAX } else { 0 };
    if n == 0 {
        return Verdict::Linearizable;
    }
    let unlink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, nx) = (prev[i], next[i]);
        next[p] = nx;
        if nx != usize::MAX {
            prev[nx] = p;
        }
    };
    let relink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, nx) = (prev[i], next[i]);
        next[p] = i;
        if nx != usize::MAX {
            prev[nx] = i;
        }
    };

    let words = history.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, RegState)> = HashSet::new();
    let mut stack: Vec<(usize, RegState)> = Vec::new();
    let mut state = initial;
    let mut returns_left = entries.iter().filter(|e| !e.is_call).count();
    let mut best: Option<(Vec<usize>, RegState, usize)> = None;
    let mut entry = next[head];
    let mut steps = 0u64;
    loop {
        if returns_left == 0 {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Unknown;
        }
        let at_return = entry == usize::MAX || !entries[entry].is_call;
        if !at_return {
            let e = &entries[entry];
            let ev = &history[e.op];
            if let Some(new_state) = step(state, ev.op, ev.result) {
                let mut lin = linearized.clone();
                lin[e.op / 64] |= 1 << (e.op % 64);
                if cache.insert((lin.clone(), new_state)) {
                    stack.push((entry, state));
                    state = new_state;
                    linearized = lin;
                    unlink(entry, &mut next, &mut prev);
                    if let Some(r) = e.ret {
                        unlink(r, &mut next, &mut prev);
                        returns_left -= 1;
                    }
                    entry = next[head];
                    continue;
                }
            }
            entry = next[entry];
            continue;
        }
        // A return entry whose call is not linearized: backtrack.
        if entry != usize::MAX && best.as_ref().is_none_or(|b| stack.len() > b.0.len()) {
            best = Some((stack.iter().map(|(en, _)| entries[*en].op).collect(), state, entries[entry].op));
        }
        let Some((call, old_state)) = stack.pop() else {
            let (prefix, state, stuck) = best.unwrap_or((Vec::new(), initial, entries[0].op));
            return Verdict::NotLinearizable { prefix, state, stuck };
        };
        let e = &entries[call];
        if let Some(r) = e.ret {
            relink(r, &mut next, &mut prev);
            returns_left += 1;
        }
        relink(call, &mut next, &mut prev);
        linearized[e.op / 64] &= !(1 << (e.op % 64));
        state = old_state;
        entry = next[call];
    }
}

/// Checks every key of `history` (each starting from `initial`).
pub fn check(history: &[RegEvent], initial: RegState, budget_per_key: u64) -> Report {
    let mut by_key: BTreeMap<&str, Vec<RegEvent>> = BTreeMap::new();
    for e in history {
        if e.op == RegOp::Read && e.result == RegResult::Unknown {
            continue;
        }
        by_key.entry(&e.key).or_default().push(e.clone());
    }
    let mut report = Report { keys: by_key.len(), ..Default::default() };
    for (key, ops) in by_key {
        report.ops += ops.len();
        match check_key(&ops, initial, budget_per_key) {
            Verdict::Linearizable => {}
            Verdict::Unknown => report.unknown_keys.push(key.to_string()),
            Verdict::NotLinearizable { prefix, state, stuck } => {
                let tail: Vec<String> = prefix.iter().rev().take(5).rev().map(|i| describe(&ops[*i])).collect();
                report.anomalies.push(Anomaly {
                    kind: "linearizability",
                    detail: format!(
                        "{key}: after {} operations (last: {}) the register is {:?}, and {} fits no order",
                        prefix.len(),
                        tail.join("; "),
                        state,
                        describe(&ops[stuck])
                    ),
                });
            }
        }
    }
    report
}

/// One operation, for messages.
pub fn describe(e: &RegEvent) -> String {
    format!("p{} {:?} -> {:?} [{}..{}]", e.process, e.op, e.result, e.invoke_us, e.complete_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: RegState = RegState { value: 0, version: 0 };

    fn ev(p: u64, op: RegOp, inv: i64, comp: i64, result: RegResult) -> RegEvent {
        RegEvent { process: p, key: "/k".into(), op, invoke_us: inv, complete_us: comp, result }
    }
    fn read(value: u64, version: i32) -> RegResult {
        RegResult::Read(RegState { value, version })
    }
    fn lin(h: &[RegEvent]) -> Verdict {
        check_key(h, INIT, 1_000_000)
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            ev(1, RegOp::Write(1), 0, 10, RegResult::Written(1)),
            ev(1, RegOp::Read, 20, 30, read(1, 1)),
            ev(2, RegOp::Cas { expect: 1, value: 2 }, 40, 50, RegResult::Written(2)),
            ev(2, RegOp::Cas { expect: 1, value: 3 }, 60, 70, RegResult::CasFailed),
            ev(1, RegOp::Read, 80, 90, read(2, 2)),
        ];
        assert_eq!(lin(&h), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // Two overlapping writes; reads after both see the one ordered last.
        let h = [
            ev(1, RegOp::Write(1), 0, 100, RegResult::Written(2)),
            ev(2, RegOp::Write(2), 10, 90, RegResult::Written(1)),
            ev(3, RegOp::Read, 50, 60, read(2, 1)),
            ev(3, RegOp::Read, 110, 120, read(1, 2)),
        ];
        assert_eq!(lin(&h), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_is_caught() {
        // The write completed before the read began, yet the read misses it.
        let h = [ev(1, RegOp::Write(1), 0, 10, RegResult::Written(1)), ev(2, RegOp::Read, 20, 30, read(0, 0))];
        assert!(matches!(lin(&h), Verdict::NotLinearizable { stuck: 1, .. }));
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        // Acknowledged, then every later read shows the value before it.
        let h = [
            ev(1, RegOp::Write(1), 0, 10, RegResult::Written(1)),
            ev(1, RegOp::Write(2), 20, 30, RegResult::Written(2)),
            ev(2, RegOp::Read, 40, 50, read(1, 1)),
        ];
        assert!(matches!(lin(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn reads_cannot_go_back_in_time() {
        // Non-monotonic reads across clients while a write is in flight:
        // once one client has seen the new value, a later read must too.
        let h = [
            ev(1, RegOp::Write(1), 0, 100, RegResult::Written(1)),
            ev(2, RegOp::Read, 10, 20, read(1, 1)),
            ev(3, RegOp::Read, 30, 40, read(0, 0)),
        ];
        assert!(matches!(lin(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn two_successful_cas_on_one_version_is_caught() {
        let h = [
            ev(1, RegOp::Cas { expect: 0, value: 1 }, 0, 50, RegResult::Written(1)),
            ev(2, RegOp::Cas { expect: 0, value: 2 }, 10, 60, RegResult::Written(1)),
        ];
        assert!(matches!(lin(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn unknown_writes_may_or_may_not_have_happened() {
        let took_effect = [ev(1, RegOp::Write(1), 0, 0, RegResult::Unknown), ev(2, RegOp::Read, 100, 110, read(1, 1))];
        assert_eq!(lin(&took_effect), Verdict::Linearizable);
        let never = [ev(1, RegOp::Write(1), 0, 0, RegResult::Unknown), ev(2, RegOp::Read, 100, 110, read(0, 0))];
        assert_eq!(lin(&never), Verdict::Linearizable);
        // ...but not before it was invoked.
        let too_early = [ev(2, RegOp::Read, 0, 10, read(1, 1)), ev(1, RegOp::Write(1), 20, 0, RegResult::Unknown)];
        assert!(matches!(lin(&too_early), Verdict::NotLinearizable { .. }));
        // ...and not undone once seen.
        let flicker = [
            ev(1, RegOp::Write(1), 0, 0, RegResult::Unknown),
            ev(2, RegOp::Read, 100, 110, read(1, 1)),
            ev(2, RegOp::Read, 120, 130, read(0, 0)),
        ];
        assert!(matches!(lin(&flicker), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn a_version_skipped_is_caught() {
        let h = [ev(1, RegOp::Write(1), 0, 10, RegResult::Written(2))];
        assert!(matches!(lin(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn many_concurrent_clients_finish_within_budget() {
        // 8 clients, 400 ops, heavily overlapping, generated from a real
        // sequential execution: must be found linearizable quickly.
        let mut h = Vec::new();
        let mut s = INIT;
        let mut t = 0;
        for i in 0..400u64 {
            let p = i % 8;
            let (op, res) = match i % 3 {
                0 => {
                    s = RegState { value: i, version: s.version + 1 };
                    (RegOp::Write(i), RegResult::Written(s.version))
                }
                1 => (RegOp::Read, RegResult::Read(s)),
                _ => (RegOp::Cas { expect: s.version - 1, value: i }, RegResult::CasFailed),
            };
            // Each op's linearization point is t; its interval spans 7 neighbours.
            h.push(ev(p, op, t - 35, t + 35, res));
            t += 10;
        }
        assert_eq!(check_key(&h, INIT, 5_000_000), Verdict::Linearizable);
    }

    #[test]
    fn report_groups_by_key_and_names_the_problem() {
        let mut h = vec![ev(1, RegOp::Write(1), 0, 10, RegResult::Written(1)), ev(2, RegOp::Read, 20, 30, read(0, 0))];
        h.push(RegEvent { key: "/other".into(), ..ev(3, RegOp::Read, 0, 5, read(0, 0)) });
        let r = check(&h, INIT, 1_000_000);
        assert_eq!((r.keys, r.ops, r.anomalies.len()), (2, 3, 1));
        assert!(r.anomalies[0].detail.starts_with("/k:"), "{}", r.anomalies[0]);
    }
}
