//! The order of a connection's identities, as ZooKeeper lists them.
//!
//! ZooKeeper keeps a connection's identities in a set backed by Java's
//! `ConcurrentHashMap`, and lists them in that map's iteration order: by hash
//! bucket, and within a bucket in the order they were added, reshuffled each
//! time the table doubles. Clients see that order twice: in `whoAmI`, and in
//! the ACL a node gets when it is created with the `auth` scheme, which
//! expands to one entry per identity in that order (and `getACL` then
//! returns them so). A connection that logged in as `dave` and then as `bob`
//! gets `[bob, dave]` from ZooKeeper, so paddock lists them the same way.
//!
//! The ordered list is the whole state of the map: entries sit in bucket
//! order, so the bucket boundaries follow from each entry's hash and the
//! table size, and the table size from the count. `add` therefore works on
//! the list itself.

use crate::tree::acl::AuthId;

/// A table's first size (`ConcurrentHashMap`'s default capacity).
const FIRST_TABLE: usize = 16;

/// Adds `id` to `ids` (kept in ZooKeeper's order) unless it is there already.
pub fn add(ids: &mut Vec<AuthId>, id: AuthId) {
    if ids.contains(&id) {
        return;
    }
    let table = table_size(ids.len());
    let at_bucket = bucket(&id, table);
    // After the last entry of this bucket or an earlier one: the tail of its bucket.
    let at = ids.iter().rposition(|other| bucket(other, table) <= at_bucket).map_or(0, |i| i + 1);
    ids.insert(at, id);
    if ids.len() >= threshold(table) {
        double(ids, table);
    }
}

/// The table size while `count` entries are held: it doubles when the count
/// reaches three quarters of it.
fn table_size(count: usize) -> usize {
    let mut table = FIRST_TABLE;
    while count >= threshold(table) {
        table *= 2;
    }
    table
}

/// The count at which a table of `table` buckets doubles.
fn threshold(table: usize) -> usize {
    table - table / 4
}

/// Moves `ids` from a table of `table` buckets to one of twice that, as
/// `ConcurrentHashMap.transfer` does: each bucket splits into the entries
/// whose hash has the bit `table` clear (they stay at index i) and set (they
/// move to i + table). The longest tail of the bucket whose entries all go
/// the same way moves as it is; the entries before it are taken one at a
/// time and put in front of their half, which reverses them.
fn double(ids: &mut Vec<AuthId>, table: usize) {
    let mut low: Vec<AuthId> = Vec::with_capacity(ids.len());
    let mut high: Vec<AuthId> = Vec::new();
    let mut rest = std::mem::take(ids).into_iter().peekable();
    while let Some(first) = rest.next() {
        let first_bucket = bucket(&first, table);
        let mut bin = vec![first];
        while let Some(next) = rest.next_if(|n| bucket(n, table) == first_bucket) {
            bin.push(next);
        }
        let goes_high = |id: &AuthId| spread(id) as usize & table != 0;
        let mut last_run = 0;
        for i in 1..bin.len() {
            if goes_high(&bin[i]) != goes_high(&bin[i - 1]) {
                last_run = i;
            }
        }
        let tail = bin.split_off(last_run);
        let (mut lo, mut hi): (Vec<AuthId>, Vec<AuthId>) = if goes_high(&tail[0]) { (Vec::new(), tail) } else { (tail, Vec::new()) };
        for id in bin {
            if goes_high(&id) {
                hi.insert(0, id);
            } else {
                lo.insert(0, id);
            }
        }
        low.extend(lo);
        high.extend(hi);
    }
    low.extend(high);
    *ids = low;
}

/// The bucket `id` sits in, in a table of `table` buckets.
fn bucket(id: &AuthId, table: usize) -> usize {
    spread(id) as usize & (table - 1)
}

/// The hash `ConcurrentHashMap` places an identity by: the jute-generated
/// `Id.hashCode` of scheme and id, its high half folded into the low one.
fn spread(id: &AuthId) -> u32 {
    let hash = 17i32.wrapping_mul(37).wrapping_add(java_hash(&id.scheme)).wrapping_mul(37).wrapping_add(java_hash(&id.id)) as u32;
    (hash ^ (hash >> 16)) & 0x7fff_ffff
}

/// Java's `String.hashCode`: over the UTF-16 code units.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::auth::digest_id;

    fn digest(credentials: &str) -> AuthId {
        AuthId { scheme: "digest".into(), id: digest_id(credentials) }
    }

    fn listed(creds: &[&str]) -> Vec<String> {
        let mut ids = Vec::new();
        add(&mut ids, AuthId { scheme: "ip".into(), id: "127.0.0.1".into() });
        for c in creds {
            add(&mut ids, digest(c));
        }
        ids.iter().map(|id| id.id.split(':').next().unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn java_string_hash() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("ip"), 3367);
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
    }

    // The expected lists are what ZooKeeper 3.8 listed (whoami, and the
    // ACL of a node created with `auth`) for a connection that added the
    // same identities in the same order. (zkCli.sh sends the addauths it
    // is given before its connection is up in reverse: the lists here are
    // in the order the server received them.)
    #[test]
    fn listed_as_zookeeper_lists_them() {
        assert_eq!(listed(&["dave", "bob:bob-pw"]), ["bob", "127.0.0.1", "dave"]);
        // One bucket: the order added.
        assert_eq!(listed(&["u2:p", "u27:p", "u3:p", "u44:p"]), ["u2", "u27", "u3", "u44", "127.0.0.1"]);
        assert_eq!(listed(&["f:6", "e:5", "d:4", "c:3", "b:2", "a:1"]), ["a", "f", "b", "e", "127.0.0.1", "c", "d"]);
    }

    #[test]
    fn the_table_doubles_as_zookeepers_does() {
        let creds: Vec<String> = (0..15).rev().map(|k| format!("u{k}:p")).collect();
        let creds: Vec<&str> = creds.iter().map(String::as_str).collect();
        let expected = "u3 u5 u7 u11 127.0.0.1 u14 u9 u2 u12 u8 u1 u0 u13 u6 u4 u10";
        assert_eq!(listed(&creds).join(" "), expected);
    }

    #[test]
    fn an_identity_is_listed_once() {
        let mut ids = Vec::new();
        add(&mut ids, digest("a:1"));
        add(&mut ids, digest("a:1"));
        assert_eq!(ids.len(), 1);
    }
}
