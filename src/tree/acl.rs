//! ACL evaluation: does a set of authenticated identities hold a permission on a node?

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::node::AclEntry;
use crate::error::ZkError;

/// ZooKeeper's `zookeeper.letAnySaslUserDoX`: a `sasl` ACL entry with this
/// id is held by every SASL-authenticated client. A process-wide setting,
/// as the system property is; set once at start from zoo.cfg.
static ANY_SASL_USER: OnceLock<String> = OnceLock::new();

/// Makes `sasl:<id>` entries match every SASL-authenticated client
/// (`letAnySaslUserDoX`). The first call wins.
pub fn let_any_sasl_user_do(id: &str) {
    let _ = ANY_SASL_USER.set(id.to_string());
}

/// One identity a connection has proven (`digest:user:hash`, `ip:127.0.0.1`, `super:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthId {
    /// Scheme of the identity.
    pub scheme: String,
    /// The identity within the scheme.
    pub id: String,
}

/// True if `ids` grant `perm` on a node with `acl`, as ZooKeeper's `checkACL`
/// decides, with this server's `letAnySaslUserDoX`.
pub fn allowed(acl: &[AclEntry], perm: i32, ids: &[AuthId]) -> bool {
    allowed_as(acl, perm, ids, ANY_SASL_USER.get().map(String::as_str))
}

/// As [`allowed`], with the `letAnySaslUserDoX` id given (a write carries
/// its proposer's, so every server decides it alike).
pub fn allowed_as(acl: &[AclEntry], perm: i32, ids: &[AuthId], any_sasl_user: Option<&str>) -> bool {
    if ids.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().filter(|e| e.perms & perm != 0).any(|e| match e.scheme.as_str() {
        "world" => e.id == "anyone",
        "ip" => ids.iter().any(|id| id.scheme == "ip" && ip_matches(&e.id, &id.id)),
        // ZooKeeper's SASLAuthenticationProvider: a SASL user named "super"
        // matches every sasl entry, and any SASL user the letAnySaslUserDoX one.
        "sasl" => ids.iter().any(|id| id.scheme == "sasl" && (id.id == e.id || id.id == "super" || any_sasl_user == Some(e.id.as_str()))),
        scheme => ids.iter().any(|id| id.scheme == scheme && id.id == e.id),
    })
}

/// Replaces `auth` ACL entries with one entry per authenticated identity, and
/// validates the rest, as ZooKeeper's `fixupACL` does. Like ZooKeeper (since
/// 3.5, ZOOKEEPER-1877) it first drops repeated entries of the request's list,
/// keeping the first of each; entries that only become equal once `auth` is
/// expanded are kept, as there.
pub fn resolve<'a>(acl: &'a [AclEntry], ids: &[AuthId]) -> Result<Cow<'a, [AclEntry]>, ZkError> {
    // The usual list (no `auth`, no repeats, all well formed) stays as sent.
    let plain = |i: usize, e: &AclEntry| e.scheme != "auth" && valid(e) && !acl[..i].contains(e);
    if !acl.is_empty() && acl.iter().enumerate().all(|(i, e)| plain(i, e)) {
        return Ok(Cow::Borrowed(acl));
    }
    let mut unique: Vec<&AclEntry> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ZkError::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for entry in unique {
        match entry.scheme.as_str() {
            "auth" => {
                let mut any = false;
                for id in ids.iter().filter(|id| id.scheme != "ip" && id.scheme != "world" && id.scheme != "super") {
                    out.push(AclEntry { perms: entry.perms, scheme: id.scheme.clone(), id: id.id.clone() });
                    any = true;
                }
                if !any {
                    return Err(ZkError::InvalidAcl);
                }
            }
            _ if valid(entry) => out.push(entry.clone()),
            _ => return Err(ZkError::InvalidAcl),
        }
    }
    Ok(Cow::Owned(out))
}

/// True if an entry of a scheme other than `auth` is well formed.
fn valid(entry: &AclEntry) -> bool {
    match entry.scheme.as_str() {
        "world" => entry.id == "anyone",
        "digest" => entry.id.split_once(':').is_some(),
        "ip" | "sasl" | "x509" => !entry.id.is_empty(),
        _ => false,
    }
}

/// Matches an address against an `ip` ACL id, which may carry a `/bits` prefix length.
fn ip_matches(pattern: &str, addr: &str) -> bool {
    let (net, bits) = match pattern.split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().unwrap_or(32)),
        None => (pattern, 32),
    };
    match (net.parse::<std::net::Ipv4Addr>(), addr.parse::<std::net::Ipv4Addr>()) {
        (Ok(net), Ok(addr)) => {
            let bits = bits.min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(net) & mask == u32::from(addr) & mask
        }
        _ => pattern == addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(perms: i32, scheme: &str, id: &str) -> AclEntry {
        AclEntry { perms, scheme: scheme.into(), id: id.into() }
    }

    #[test]
    fn world_digest_ip_and_super() {
        let open = vec![entry(31, "world", "anyone")];
        assert!(allowed(&open, 1, &[]));
        let digest = vec![entry(1, "digest", "bob:hash")];
        assert!(!allowed(&digest, 1, &[]));
        assert!(allowed(&digest, 1, &[AuthId { scheme: "digest".into(), id: "bob:hash".into() }]));
        assert!(!allowed(&digest, 2, &[AuthId { scheme: "digest".into(), id: "bob:hash".into() }]));
        let ip = vec![entry(31, "ip", "127.0.0.0/8")];
        assert!(allowed(&ip, 2, &[AuthId { scheme: "ip".into(), id: "127.1.2.3".into() }]));
        assert!(!allowed(&ip, 2, &[AuthId { scheme: "ip".into(), id: "10.0.0.1".into() }]));
        assert!(allowed(&digest, 16, &[AuthId { scheme: "super".into(), id: String::new() }]));
        let sasl = vec![entry(31, "sasl", "bob")];
        let as_sasl = |name: &str| [AuthId { scheme: "sasl".into(), id: name.into() }];
        assert!(allowed(&sasl, 1, &as_sasl("bob")));
        assert!(!allowed(&sasl, 1, &as_sasl("alice")));
        assert!(allowed(&sasl, 1, &as_sasl("super")), "ZooKeeper lets the SASL user super match any sasl entry");
        assert!(!allowed(&sasl, 1, &[AuthId { scheme: "digest".into(), id: "bob".into() }]));
        assert!(allowed_as(&sasl, 1, &as_sasl("alice"), Some("bob")), "letAnySaslUserDoX=bob lets any SASL user match");
    }

    #[test]
    fn repeated_acl_entries_are_dropped() {
        let open = entry(31, "world", "anyone");
        let digest = entry(1, "digest", "bob:hash");
        let acl = vec![open.clone(), digest.clone(), open.clone(), digest.clone()];
        assert_eq!(resolve(&acl, &[]).unwrap().to_vec(), vec![open.clone(), digest]);
        // Same id with other permissions is a different entry.
        let read_only = entry(1, "world", "anyone");
        assert!(matches!(resolve(&[open.clone(), read_only.clone()], &[]).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn auth_expansion_after_dedup() {
        let ids = [AuthId { scheme: "digest".into(), id: "bob:hash".into() }];
        let acl = vec![entry(31, "auth", ""), entry(31, "auth", ""), entry(31, "digest", "bob:hash")];
        // The two `auth` entries collapse first; the expanded one equals the
        // explicit digest entry and stays, as on ZooKeeper.
        let out = resolve(&acl, &ids).unwrap();
        assert_eq!(out.to_vec(), vec![entry(31, "digest", "bob:hash"), entry(31, "digest", "bob:hash")]);
        assert!(matches!(resolve(&[entry(31, "auth", "")], &[]), Err(ZkError::InvalidAcl)));
        assert!(matches!(resolve(&[], &ids), Err(ZkError::InvalidAcl)));
        assert!(matches!(resolve(&[entry(31, "nosuchscheme", "x")], &ids), Err(ZkError::InvalidAcl)));
    }
}
