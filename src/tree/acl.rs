//! ACL evaluation: does a set of authenticated identities hold a permission on a node?

use std::sync::OnceLock;

use super::node::AclEntry;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthId {
    /// Scheme of the identity.
    pub scheme: String,
    /// The identity within the scheme.
    pub id: String,
}

/// True if `ids` grant `perm` on a node with `acl`, as ZooKeeper's `checkACL` decides.
pub fn allowed(acl: &[AclEntry], perm: i32, ids: &[AuthId]) -> bool {
    if ids.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().filter(|e| e.perms & perm != 0).any(|e| match e.scheme.as_str() {
        "world" => e.id == "anyone",
        "ip" => ids.iter().any(|id| id.scheme == "ip" && ip_matches(&e.id, &id.id)),
        // ZooKeeper's SASLAuthenticationProvider: a SASL user named "super"
        // matches every sasl entry, and any SASL user the letAnySaslUserDoX one.
        "sasl" => ids.iter().any(|id| {
            id.scheme == "sasl" && (id.id == e.id || id.id == "super" || ANY_SASL_USER.get() == Some(&e.id))
        }),
        scheme => ids.iter().any(|id| id.scheme == scheme && id.id == e.id),
    })
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
    }
}
