//! SASL authentication over the `sasl` request (op 102), as ZooKeeper's
//! server does it: DIGEST-MD5 with users and passwords from the `Server`
//! section of a JAAS file (`user_<name>="<password>"` options of
//! `org.apache.zookeeper.server.auth.DigestLoginModule`).
//!
//! A connection that completes the exchange gains the identity
//! `sasl:<user name>` (and `super:` when the name is one of the configured
//! super users), checked by the `sasl` ACL scheme. A failed exchange is
//! answered with AuthFailed and the connection is closed; the session lives
//! on, as on ZooKeeper.

pub mod digest_md5;
pub mod jaas;

use std::collections::HashMap;
use std::path::Path;

use crate::tree::acl::AuthId;
pub use digest_md5::{DigestError, DigestMd5Server};
pub use jaas::{JaasConfig, JaasError};

/// The option prefix that names a user in a JAAS `Server` section.
const USER_PREFIX: &str = "user_";

/// The SASL users this server accepts.
#[derive(Debug, Clone, Default)]
pub struct SaslUsers {
    passwords: HashMap<String, String>,
    super_users: Vec<String>,
}

/// Why a SASL step failed; every one ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// This server has no SASL users configured.
    #[error("SASL is not configured on this server")]
    NotConfigured,
    /// The DIGEST-MD5 exchange failed.
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// The answer to one sasl request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslReply {
    /// The server token for the reply.
    pub token: Vec<u8>,
    /// Identities the connection gained (empty until the exchange completes).
    pub ids: Vec<AuthId>,
}

impl SaslUsers {
    /// Reads the users of `section` from the JAAS file at `path`, as
    /// ZooKeeper's `SaslServerCallbackHandler` does: every `user_<name>`
    /// option of every login module there. `Ok(None)` when the file has no
    /// such section (ZooKeeper then runs without SASL too); an unreadable or
    /// malformed file is an error.
    pub fn load(path: &Path, section: &str, super_users: &[String]) -> Result<Option<Self>, JaasError> {
        let config = JaasConfig::load(path)?;
        Ok(Self::from_config(&config, section, super_users))
    }

    /// The users of `section` of a parsed JAAS file.
    pub fn from_config(config: &JaasConfig, section: &str, super_users: &[String]) -> Option<Self> {
        let section = config.section(section)?;
        let passwords = section
            .modules
            .iter()
            .flat_map(|m| m.options.iter())
            .filter_map(|(k, v)| k.strip_prefix(USER_PREFIX).map(|user| (user.to_string(), v.clone())))
            .collect();
        Some(SaslUsers { passwords, super_users: super_users.to_vec() })
    }

    /// How many users are known.
    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    /// True if the section named no user.
    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }

    /// The identities a user authenticated as `user` holds.
    pub fn ids_for(&self, user: &str) -> Vec<AuthId> {
        let mut ids = vec![AuthId { scheme: "sasl".into(), id: user.to_string() }];
        if self.super_users.iter().any(|s| s == user) {
            ids.push(AuthId { scheme: "super".into(), id: String::new() });
        }
        ids
    }
}

/// Runs one sasl request of a connection; `state` is the connection's
/// exchange (started by its first sasl request).
pub fn step(users: Option<&SaslUsers>, state: &mut Option<DigestMd5Server>, token: &[u8]) -> Result<SaslReply, SaslError> {
    let users = users.ok_or(SaslError::NotConfigured)?;
    let exchange = state.get_or_insert_with(DigestMd5Server::for_zookeeper);
    match exchange.step(token, |user| users.passwords.get(user).cloned())? {
        digest_md5::Step::Challenge(token) => Ok(SaslReply { token, ids: Vec::new() }),
        digest_md5::Step::Complete { token, user } => Ok(SaslReply { token, ids: users.ids_for(&user) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> SaslUsers {
        let text = "Server { org.apache.zookeeper.server.auth.DigestLoginModule required \
                    user_bob=\"bobsecret\" user_admin=\"x\" debug=true; };";
        SaslUsers::from_config(&JaasConfig::parse(text, "t").unwrap(), "Server", &["admin".to_string()]).unwrap()
    }

    #[test]
    fn users_come_from_user_options_of_the_section() {
        let u = users();
        assert_eq!(u.len(), 2);
        assert_eq!(u.passwords.get("bob").map(String::as_str), Some("bobsecret"));
        assert_eq!(u.ids_for("bob"), vec![AuthId { scheme: "sasl".into(), id: "bob".into() }]);
        assert!(u.ids_for("admin").iter().any(|i| i.scheme == "super"));
        let other = JaasConfig::parse("Client { a.B required username=\"bob\"; };", "t").unwrap();
        assert!(SaslUsers::from_config(&other, "Server", &[]).is_none());
    }

    #[test]
    fn unconfigured_server_refuses() {
        let mut state = None;
        assert!(matches!(step(None, &mut state, b""), Err(SaslError::NotConfigured)));
    }

    #[test]
    fn a_full_exchange_yields_the_sasl_identity() {
        let u = users();
        let mut state = None;
        let challenge = step(Some(&u), &mut state, b"").unwrap();
        assert!(challenge.ids.is_empty());
        let text = String::from_utf8(challenge.token).unwrap();
        let nonce = text.split("nonce=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
        // Compute the client's answer the way RFC 2831 says.
        let md5 = |b: &[u8]| -> Vec<u8> { use md5::Digest; md5::Md5::digest(b).to_vec() };
        let hex = |b: &[u8]| -> String { md5(b).iter().map(|x| format!("{x:02x}")).collect() };
        let mut a1 = md5(b"bob:zk-sasl-md5:bobsecret");
        a1.extend_from_slice(format!(":{nonce}:cn").as_bytes());
        let ha2 = hex(b"AUTHENTICATE:zookeeper/zk-sasl-md5");
        let response = hex(format!("{}:{nonce}:00000001:cn:auth:{ha2}", hex(&a1)).as_bytes());
        let answer = format!(
            "username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",cnonce=\"cn\",nc=00000001,qop=auth,\
             digest-uri=\"zookeeper/zk-sasl-md5\",response={response}"
        );
        let done = step(Some(&u), &mut state, answer.as_bytes()).unwrap();
        assert!(done.token.starts_with(b"rspauth="));
        assert_eq!(done.ids, vec![AuthId { scheme: "sasl".into(), id: "bob".into() }]);
        assert!(step(Some(&u), &mut state, b"").is_err(), "a finished exchange takes no more tokens");
    }
}
