//! addAuthInfo: turning credentials into the identities ACLs are checked against.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::error::ZkError;
use crate::tree::acl::AuthId;

/// The `digest` scheme's id for `user:password`: `user:base64(sha1(user:password))`.
pub fn digest_id(credentials: &str) -> Result<String, ZkError> {
    let (user, _) = credentials.split_once(':').ok_or(ZkError::AuthFailed)?;
    let hash = Sha1::digest(credentials.as_bytes());
    Ok(format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash)))
}

/// Authenticates one addAuthInfo packet; `super_digest` is the configured
/// `super:...` digest id, if any.
pub fn authenticate(scheme: &str, auth: &[u8], super_digest: Option<&str>) -> Result<Vec<AuthId>, ZkError> {
    match scheme {
        "digest" => {
            let creds = std::str::from_utf8(auth).map_err(|_| ZkError::AuthFailed)?;
            let id = digest_id(creds)?;
            let mut ids = vec![AuthId { scheme: "digest".into(), id: id.clone() }];
            if super_digest == Some(id.as_str()) {
                ids.push(AuthId { scheme: "super".into(), id: String::new() });
            }
            Ok(ids)
        }
        _ => Err(ZkError::AuthFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // The value ZooKeeper's DigestAuthenticationProvider.generateDigest gives for super:test.
        assert_eq!(digest_id("super:test").unwrap(), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert!(authenticate("digest", b"nocolon", None).is_err());
        assert!(authenticate("weird", b"a:b", None).is_err());
        let ids = authenticate("digest", b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")).unwrap();
        assert!(ids.iter().any(|i| i.scheme == "super"));
    }
}
