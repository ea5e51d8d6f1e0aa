//! Quota usage, kept as ZooKeeper keeps it.
//!
//! `setquota` (zkCli, Curator) writes `/zookeeper/quota<path>/zookeeper_limits`
//! and creates `/zookeeper/quota<path>/zookeeper_stats`; the server fills the
//! stats node with the usage of `<path>`'s subtree (`count=N,bytes=M`: its
//! znodes, itself included, and their data bytes) and updates it on every
//! create, delete and setData below, which `listquota` shows. As in
//! ZooKeeper, only the stats node's data changes (its Stat does not and no
//! watch fires) and a change counts towards the deepest quota'd path above
//! it. Hard limits (zkCli's `setquota -N`/`-B`: `countHardLimit`,
//! `byteHardLimit` in the limits node) are enforced only with
//! `enforceQuota=true`, as ZooKeeper 3.8 (`zookeeper.enforceQuota`, off by
//! default): a create or setData past one fails with QuotaExceeded, decided
//! before it is proposed ([`DataTree::hard_quota_exceeded`]). Soft limits
//! never refuse anything.
//!
//! The usage is part of the replicated state (a change to it is applied like
//! any other, and undone with a failed multi), so every server agrees on it.
//! Which paths have quotas is read from the tree itself, so there is nothing
//! to rebuild after a restart; without any quota a write costs one look at
//! `/zookeeper/quota`'s children.

use std::collections::BTreeMap;

use super::{path, Changes, DataTree, Undo};

/// Where quota nodes live.
pub(super) const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The node holding a path's limits.
const LIMITS: &str = "zookeeper_limits";
/// The node holding a path's usage.
const STATS: &str = "zookeeper_stats";

/// The stats node's path for quota'd `path`.
fn stats_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STATS}")
}

/// The limits node's path for quota'd `path`.
fn limits_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMITS}")
}

/// If `path` is a stats node, the quota'd path it describes.
pub fn stats_target(path: &str) -> Option<&str> {
    let target = path.strip_prefix(QUOTA_ROOT)?.strip_suffix(STATS)?.strip_suffix('/')?;
    target.starts_with('/').then_some(target)
}

/// The `key=number` pairs of a stats or limits node's text, read as
/// ZooKeeper's StatsTrack reads them: pairs split at runs of `,` and `;`,
/// a pair at `=` with anything after a second `=` ignored (3.8 writes
/// `count=4,bytes=5=;countHardLimit=10`), an empty value as -1, the last of
/// a repeated key kept. Where ZooKeeper throws on a pair it cannot read (and
/// fails the write), the pair is left out, so a client's odd text cannot
/// stop the server.
fn pairs(data: &[u8]) -> BTreeMap<String, i64> {
    let text = String::from_utf8_lossy(data);
    let mut out = BTreeMap::new();
    for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let key = parts.next().unwrap_or_default();
        let value = match parts.next() {
            Some("") => Some(-1),
            Some(v) => v.parse::<i64>().ok(),
            None => None,
        };
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    }
    out
}

/// Two values of `pairs`, -1 for one that is missing (StatsTrack's default).
fn two(pairs: &BTreeMap<String, i64>, keys: [&str; 2]) -> (i64, i64) {
    let get = |key| pairs.get(key).copied().unwrap_or(-1);
    (get(keys[0]), get(keys[1]))
}

/// Reads `count` and `bytes` from a stats node's text.
pub fn parse(data: &[u8]) -> (i64, i64) {
    two(&pairs(data), ["count", "bytes"])
}

/// Reads a limits node's hard limits: (`countHardLimit`, `byteHardLimit`),
/// -1 for none.
pub fn hard_limits(data: &[u8]) -> (i64, i64) {
    two(&pairs(data), ["countHardLimit", "byteHardLimit"])
}

/// A stats node's text, as ZooKeeper writes it.
pub fn format(count: i64, bytes: i64) -> String {
    format!("count={count},bytes={bytes}")
}

/// A stats node's text after a change of `count` znodes and `bytes` data
/// bytes, rewritten as ZooKeeper's StatsTrack rewrites it: `count` and
/// `bytes` first (-1 taken for one that is missing), then any other keys the
/// text held, in name order, after an extra `=` (`count=3,bytes=7=;x=1`).
pub fn recount(data: &[u8], count: i64, bytes: i64) -> String {
    let mut keys = pairs(data);
    let (used_count, used_bytes) = two(&keys, ["count", "bytes"]);
    keys.remove("count");
    keys.remove("bytes");
    let mut out = format(used_count.saturating_add(count), used_bytes.saturating_add(bytes));
    if !keys.is_empty() {
        out.push('=');
        for (key, value) in keys {
            out.push_str(&std::format!(";{key}={value}"));
        }
    }
    out
}

impl DataTree {
    /// The quota'd path that `path` counts towards: the deepest of `path`
    /// and its ancestors (`/` aside) that has a limits node.
    pub(super) fn quota_owner(&self, path: &str) -> Option<String> {
        if self.quota_root.and_then(|id| self.slot(id))?.children.is_empty() {
            return None;
        }
        let mut at = path;
        while at != "/" && !at.is_empty() {
            if self.id_of(&limits_path(at)).is_some() {
                return Some(at.to_string());
            }
            at = path::parent(at);
        }
        None
    }

    /// The quota'd path whose hard limit a change of `count` znodes and
    /// `bytes` data bytes at `path` would break, if one would (ZooKeeper's
    /// `checkQuota`: the deepest quota'd path above, its limits node against
    /// its stats node).
    pub fn hard_quota_exceeded(&self, path: &str, count: i64, bytes: i64) -> Option<String> {
        let owner = self.quota_owner(path)?;
        let (count_limit, byte_limit) = hard_limits(self.get(&limits_path(&owner))?.data().unwrap_or_default());
        let (used_count, used_bytes) = parse(self.get(&stats_path(&owner))?.data().unwrap_or_default());
        let over = |diff: i64, used: i64, limit: i64| diff != 0 && limit > -1 && used.saturating_add(diff) > limit;
        (over(count, used_count, count_limit) || over(bytes, used_bytes, byte_limit)).then_some(owner)
    }

    /// The usage of the subtree at `path`: its znodes (itself included) and
    /// their data bytes; nothing if it does not exist.
    pub(super) fn usage(&self, path: &str) -> (i64, i64) {
        self.subtree(path).fold((0, 0), |(count, bytes), node| (count + 1, bytes + node.data().map_or(0, |d| d.len() as i64)))
    }

    /// Charges a change of `path` to the usage of its quota'd path, if it
    /// has one (nothing if that path's stats node is missing, as in ZooKeeper).
    pub(super) fn charge_change(&mut self, path: &str, count: i64, bytes: i64, changes: &mut Changes, undo: &mut Vec<Undo>) {
        let Some(owner) = self.quota_owner(path) else { return };
        let stats = stats_path(&owner);
        let Some(id) = self.id_of(&stats) else { return };
        let Some(node) = self.slot_mut(id) else { return };
        let text = recount(node.data().unwrap_or_default(), count, bytes);
        let old = node.replace_data(Some(text.as_bytes()));
        undo.push(Undo::Data { path: stats, old, stat: node.stat });
        changes.nodes.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_limits_read_as_zookeeper_writes_them() {
        assert_eq!(hard_limits(b"count=-1,bytes=-1=;countHardLimit=3;byteHardLimit=-1"), (3, -1));
        assert_eq!(hard_limits(b"count=10,bytes=-1"), (-1, -1));
        assert_eq!(hard_limits(b"count=-1,bytes=-1;byteHardLimit=100"), (-1, 100));
        // Read as StatsTrack reads: no trimming, a run of separators is one,
        // a value past a second "=" ignored, an empty value is -1.
        assert_eq!(hard_limits(b"countHardLimit = 5,,;byteHardLimit=7=9"), (-1, 7));
        assert_eq!(hard_limits(b"countHardLimit==3;byteHardLimit=x"), (-1, -1));
        assert_eq!(hard_limits(b"countHardLimit=2;countHardLimit=4"), (4, -1));
    }

    #[test]
    fn stats_nodes_are_recognised() {
        assert_eq!(stats_target("/zookeeper/quota/a/b/zookeeper_stats"), Some("/a/b"));
        assert_eq!(stats_target("/zookeeper/quota/zookeeper_stats"), None);
        assert_eq!(stats_target("/zookeeper/quota/a/zookeeper_limits"), None);
        assert_eq!(stats_target("/a/zookeeper_stats"), None);
    }

    #[test]
    fn stats_text_reads_and_writes_as_zookeeper_does() {
        assert_eq!(parse(b"count=4,bytes=12"), (4, 12));
        // A limits node's text, in 3.8's odd format.
        assert_eq!(parse(b"count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"), (5, -1));
        assert_eq!(parse(b"garbage"), (-1, -1));
        assert_eq!(parse(b""), (-1, -1));
        assert_eq!(format(4, 12), "count=4,bytes=12");
    }

    #[test]
    fn a_change_rewrites_the_stats_text_as_statstrack_does() {
        assert_eq!(recount(b"count=4,bytes=12", 1, 3), "count=5,bytes=15");
        // Other keys stay, sorted, after the extra "=" that old parsers stop at.
        assert_eq!(recount(b"count=2,bytes=10,zeta=1,countHardLimit=4", -1, 0), "count=1,bytes=10=;countHardLimit=4;zeta=1");
        assert_eq!(recount(b"count=0,bytes=0=;byteHardLimit=9", 1, 2), "count=1,bytes=2=;byteHardLimit=9");
        // A missing count or bytes is taken as -1.
        assert_eq!(recount(b"", 1, 5), "count=0,bytes=4");
        assert_eq!(recount(b"bytes=7", 1, 0), "count=0,bytes=7");
    }
}
