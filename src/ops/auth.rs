//! addAuthInfo: turning credentials into the identities ACLs are checked against.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::error::ZkError;
use crate::tree::acl::AuthId;

/// The `digest` scheme's id for `user:password`: `user:base64(sha1(user:password))`.
///
/// As ZooKeeper's `generateDigest`, the user is what comes before the first
/// colon, or the whole text when there is none: `blah` is the user `blah`
/// hashing `blah` (the Go client's own tests authenticate that way).
pub fn digest_id(credentials: &str) -> String {
    let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
    let hash = Sha1::digest(credentials.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Authenticates one addAuthInfo packet; `super_digest` is the configured
/// `super:...` digest id, if any.
///
/// The schemes are ZooKeeper's built-in providers. `digest` takes any
/// credentials but null ones (ZooKeeper fails on those), read as UTF-8 with
/// invalid bytes replaced, as Java's `new String(bytes)` does. `ip` adds the
/// connection's own address, which every connection holds from its start, so
/// it adds nothing and succeeds whatever it is given. Anything else fails.
pub fn authenticate(scheme: &str, auth: Option<&[u8]>, super_digest: Option<&str>) -> Result<Vec<AuthId>, ZkError> {
    match (scheme, auth) {
        ("digest", Some(auth)) => {
            let id = digest_id(&String::from_utf8_lossy(auth));
            // In the order ZooKeeper adds them: super first.
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(id.as_str()) {
                ids.push(AuthId { scheme: "super".into(), id: String::new() });
            }
            ids.push(AuthId { scheme: "digest".into(), id });
            Ok(ids)
        }
        ("ip", _) => Ok(Vec::new()),
        _ => Err(ZkError::AuthFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // The value ZooKeeper's DigestAuthenticationProvider.generateDigest gives for super:test.
        assert_eq!(digest_id("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        let ids = authenticate("digest", Some(b"super:test"), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")).unwrap();
        assert!(ids.iter().any(|i| i.scheme == "super"));
        assert!(authenticate("weird", Some(b"a:b"), None).is_err());
    }

    #[test]
    fn credentials_without_a_colon_or_empty_are_accepted_and_null_ones_refused_as_on_zookeeper() {
        // As generateDigest: no colon, the whole text is the user; empty, the user is empty.
        let only = |auth: &[u8]| authenticate("digest", Some(auth), None).unwrap().remove(0).id;
        assert_eq!(only(b"blah"), "blah:W/H9kn37hnlJai5s8Ay+UMHIcUU=");
        assert_eq!(only(b""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert!(only(b"a:b:c").starts_with("a:"));
        assert_eq!(authenticate("digest", None, None), Err(ZkError::AuthFailed));
        // ip adds nothing the connection does not hold already, and succeeds.
        assert_eq!(authenticate("ip", Some(b"10.1.2.3"), None), Ok(vec![]));
        assert_eq!(authenticate("world", Some(b"anyone"), None), Err(ZkError::AuthFailed));
    }
}
