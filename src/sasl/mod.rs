//! SASL authentication over the `sasl` request (op 102), as ZooKeeper's
//! server does it, with the login modules of the `Server` section of a JAAS
//! file:
//!
//! - DIGEST-MD5, with users and passwords from the `user_<name>="<password>"`
//!   options of `org.apache.zookeeper.server.auth.DigestLoginModule`;
//! - GSSAPI (Kerberos V5), with the server's principal and keytab from the
//!   `principal` and `keyTab` options of `Krb5LoginModule`, as Kafka- and
//!   HBase-era deployments configure it.
//!
//! ZooKeeper runs one mechanism, GSSAPI when the section logs in with
//! Kerberos; paddock takes both when both are configured, telling them
//! apart by the client's first token (empty for DIGEST-MD5, which has no
//! initial response; a Kerberos AP-REQ for GSSAPI).
//!
//! A connection that completes the exchange gains the identity
//! `sasl:<user name>` (for Kerberos, the principal mapped as
//! [`kerberos_name`] says; and `super:` when the name is one of the
//! configured super users), checked by the `sasl` ACL scheme. A failed
//! exchange is answered with AuthFailed and the connection is closed; the
//! session lives on, as on ZooKeeper.

pub mod digest_md5;
pub mod gss;
pub mod gssapi;
pub mod jaas;
pub mod kerberos_name;

use std::collections::HashMap;
use std::path::Path;

use crate::tree::acl::AuthId;
pub use digest_md5::{DigestError, DigestMd5Server};
pub use gssapi::{GssapiError, GssapiServer};
pub use jaas::{JaasConfig, JaasError};
pub use kerberos_name::PrincipalMapper;

/// The option prefix that names a user in a JAAS `Server` section.
const USER_PREFIX: &str = "user_";

/// The SASL DIGEST-MD5 users this server accepts.
#[derive(Debug, Clone, Default)]
pub struct SaslUsers {
    passwords: HashMap<String, String>,
    /// `SASLAuthenticationProvider.superPassword`: replaces the password of
    /// a listed user `super`.
    super_password: Option<String>,
}

/// The server's Kerberos login: its acceptor credential and how client
/// principals become identities.
#[derive(Debug)]
pub struct Kerberos {
    /// The server's principal, `service/host@REALM`.
    pub principal: String,
    cred: gss::Cred,
    mapper: PrincipalMapper,
}

/// Everything SASL on this server: the mechanisms configured and the super users.
#[derive(Debug, Default)]
pub struct Sasl {
    /// DIGEST-MD5 users, when the section has a DigestLoginModule's.
    pub users: Option<SaslUsers>,
    /// The Kerberos login, when the section has a Krb5LoginModule.
    pub kerberos: Option<Kerberos>,
    /// Names that gain `super` when they authenticate.
    pub super_users: Vec<String>,
}

/// One connection's exchange, by mechanism.
#[derive(Debug)]
pub enum Exchange {
    /// DIGEST-MD5.
    Digest(DigestMd5Server),
    /// GSSAPI.
    Gssapi(Box<GssapiServer>),
}

/// Why a SASL step failed; every one ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// This server has no SASL users configured.
    #[error("SASL is not configured on this server")]
    NotConfigured,
    /// The client's mechanism is not configured here.
    #[error("SASL {0} is not configured on this server")]
    Mechanism(&'static str),
    /// The DIGEST-MD5 exchange failed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The GSSAPI exchange failed.
    #[error("GSSAPI: {0}")]
    Gssapi(#[from] GssapiError),
}

/// Why the Kerberos login could not be set up; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum KerberosError {
    /// The Krb5LoginModule names no principal.
    #[error("Krb5LoginModule in section {0} has no principal option")]
    NoPrincipal(String),
    /// The auth_to_local rules do not parse.
    #[error(transparent)]
    Rules(#[from] kerberos_name::RuleError),
    /// The keytab does not hold the principal, or krb5 is missing.
    #[error("Kerberos login as {principal}: {source}")]
    Gss {
        /// The server principal.
        principal: String,
        /// What the library said.
        source: gss::GssError,
    },
}

/// How client principals map to identities (zoo.cfg keys named after
/// ZooKeeper's system properties).
#[derive(Debug, Clone, Default)]
pub struct KerberosNaming {
    /// `zookeeper.security.auth_to_local` (default `DEFAULT`).
    pub auth_to_local: Option<String>,
    /// `zookeeper.kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
    /// The default realm (krb5.conf's `default_realm`), for `DEFAULT` rules.
    pub default_realm: String,
}

/// The answer to one sasl request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslReply {
    /// The server token for the reply; `None` is sent as a null buffer,
    /// as ZooKeeper answers the last GSSAPI message.
    pub token: Option<Vec<u8>>,
    /// Identities the connection gained (empty until the exchange completes).
    pub ids: Vec<AuthId>,
}

impl SaslUsers {
    /// The DIGEST-MD5 users of `section` of a parsed JAAS file, as
    /// ZooKeeper's `SaslServerCallbackHandler` reads them: every
    /// `user_<name>` option of every login module there. `None` when the
    /// file has no such section.
    pub fn from_config(config: &JaasConfig, section: &str) -> Option<Self> {
        let section = config.section(section)?;
        let passwords = section
            .modules
            .iter()
            .flat_map(|m| m.options.iter())
            .filter_map(|(k, v)| k.strip_prefix(USER_PREFIX).map(|user| (user.to_string(), v.clone())))
            .collect();
        Some(SaslUsers { passwords, super_password: None })
    }

    /// Sets ZooKeeper's `SASLAuthenticationProvider.superPassword`. As its
    /// callback handler, it is the password of `super` only when the
    /// section lists a `user_super` (an unlisted name is unknown whatever
    /// its password).
    pub fn set_super_password(&mut self, password: Option<String>) {
        self.super_password = password;
    }

    /// The password `user` must prove.
    fn password(&self, user: &str) -> Option<String> {
        let listed = self.passwords.get(user)?;
        match (&self.super_password, user) {
            (Some(p), "super") => Some(p.clone()),
            _ => Some(listed.clone()),
        }
    }

    /// How many users are known.
    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    /// True if the section named no user.
    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

impl Kerberos {
    /// The Kerberos login of `section`, when a login module there is a
    /// `Krb5LoginModule` (the JDK's, IBM's or any vendor's): its `principal`
    /// and `keyTab` (default keytab when absent) are checked by acquiring
    /// the credential now.
    pub fn from_config(config: &JaasConfig, section: &str, naming: &KerberosNaming) -> Result<Option<Self>, KerberosError> {
        let Some(module) = config.section(section).and_then(|s| s.modules.iter().find(|m| m.class.ends_with("Krb5LoginModule"))) else {
            return Ok(None);
        };
        let option = |name: &str| module.options.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let principal = option("principal").ok_or_else(|| KerberosError::NoPrincipal(section.to_string()))?.to_string();
        let cred = gss::Cred::acquire(&principal, option("keyTab"))
            .map_err(|source| KerberosError::Gss { principal: principal.clone(), source })?;
        let mapper = PrincipalMapper::new(
            naming.auth_to_local.as_deref().unwrap_or("DEFAULT"),
            &naming.default_realm,
            naming.remove_host,
            naming.remove_realm,
        )?;
        Ok(Some(Kerberos { principal, cred, mapper }))
    }
}

impl Sasl {
    /// Reads `section` of the JAAS file at `path`. `Ok(None)` when the file
    /// has no such section (ZooKeeper then runs without SASL too); an
    /// unreadable or malformed file, or a Kerberos login that fails, is an error.
    pub fn load(path: &Path, section: &str, super_users: &[String], naming: &KerberosNaming) -> Result<Option<Self>, LoadError> {
        let config = JaasConfig::load(path)?;
        let Some(users) = SaslUsers::from_config(&config, section) else { return Ok(None) };
        let kerberos = Kerberos::from_config(&config, section, naming)?;
        let users = (kerberos.is_none() || !users.is_empty()).then_some(users);
        Ok(Some(Sasl { users, kerberos, super_users: super_users.to_vec() }))
    }

    /// The identities a client authenticated as `user` holds.
    pub fn ids_for(&self, user: &str) -> Vec<AuthId> {
        let mut ids = vec![AuthId { scheme: "sasl".into(), id: user.to_string() }];
        if self.super_users.iter().any(|s| s == user) {
            ids.push(AuthId { scheme: "super".into(), id: String::new() });
        }
        ids
    }
}

/// Why the SASL set-up could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The JAAS file.
    #[error(transparent)]
    Jaas(#[from] JaasError),
    /// The Kerberos login.
    #[error(transparent)]
    Kerberos(#[from] KerberosError),
}

/// Runs one sasl request of a connection; `state` is the connection's
/// exchange (started by its first sasl request, whose token picks the
/// mechanism).
pub fn step(sasl: Option<&Sasl>, state: &mut Option<Exchange>, token: &[u8]) -> Result<SaslReply, SaslError> {
    let sasl = sasl.ok_or(SaslError::NotConfigured)?;
    if state.is_none() {
        *state = Some(if token.is_empty() {
            sasl.users.as_ref().ok_or(SaslError::Mechanism("DIGEST-MD5"))?;
            Exchange::Digest(DigestMd5Server::for_zookeeper())
        } else if sasl.kerberos.is_some() {
            Exchange::Gssapi(Box::default())
        } else {
            // A DIGEST-MD5 client with an initial response, or a GSSAPI one
            // here: the DIGEST-MD5 server refuses it as ZooKeeper's does.
            Exchange::Digest(DigestMd5Server::for_zookeeper())
        });
    }
    match state {
        Some(Exchange::Digest(exchange)) => {
            let users = sasl.users.as_ref().ok_or(SaslError::Mechanism("DIGEST-MD5"))?;
            match exchange.step(token, |user| users.password(user))? {
                digest_md5::Step::Challenge(token) => Ok(SaslReply { token: Some(token), ids: Vec::new() }),
                digest_md5::Step::Complete { token, user } => Ok(SaslReply { token: Some(token), ids: sasl.ids_for(&user) }),
            }
        }
        Some(Exchange::Gssapi(exchange)) => {
            let kerberos = sasl.kerberos.as_ref().ok_or(SaslError::Mechanism("GSSAPI"))?;
            match exchange.step(&kerberos.cred, token)? {
                gssapi::Step::Continue(token) => Ok(SaslReply { token: Some(token), ids: Vec::new() }),
                gssapi::Step::Complete(principal) => {
                    let id = kerberos.mapper.authorized_id(&principal);
                    tracing::debug!(%principal, %id, "Kerberos client authenticated");
                    Ok(SaslReply { token: None, ids: sasl.ids_for(&id) })
                }
            }
        }
        None => Err(SaslError::NotConfigured),
    }
}

/// The default realm of a krb5.conf (`default_realm` in `[libdefaults]`);
/// empty when the file or the setting is missing, as ZooKeeper's
/// KerberosName takes it then.
pub fn default_realm(krb5_conf: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(krb5_conf) else { return String::new() };
    let mut in_libdefaults = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line.trim_start_matches('[').trim_end_matches(']').trim() == "libdefaults";
        } else if let (true, Some((key, value))) = (in_libdefaults, line.split_once('=')) {
            if key.trim() == "default_realm" {
                return value.trim().to_string();
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Sasl {
        let text = "Server { org.apache.zookeeper.server.auth.DigestLoginModule required \
                    user_bob=\"bobsecret\" user_admin=\"x\" debug=true; };";
        let users = SaslUsers::from_config(&JaasConfig::parse(text, "t").unwrap(), "Server");
        Sasl { users, kerberos: None, super_users: vec!["admin".to_string()] }
    }

    #[test]
    fn users_come_from_user_options_of_the_section() {
        let u = users();
        let users = u.users.as_ref().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.passwords.get("bob").map(String::as_str), Some("bobsecret"));
        assert_eq!(u.ids_for("bob"), vec![AuthId { scheme: "sasl".into(), id: "bob".into() }]);
        assert!(u.ids_for("admin").iter().any(|i| i.scheme == "super"));
        let other = JaasConfig::parse("Client { a.B required username=\"bob\"; };", "t").unwrap();
        assert!(SaslUsers::from_config(&other, "Server").is_none());
    }

    #[test]
    fn a_kerberos_token_to_a_digest_only_server_gets_a_digest_challenge() {
        // As ZooKeeper's DIGEST-MD5-only server: the JDK's server ignores the
        // first token, and the GSSAPI client fails on the challenge.
        let u = users();
        let mut state = None;
        let reply = step(Some(&u), &mut state, b"\x60\x82\x02\x00").unwrap();
        assert!(reply.token.unwrap().starts_with(b"realm="));
        assert!(matches!(state, Some(Exchange::Digest(_))));
        let kerberos_only = Sasl::default();
        assert!(matches!(step(Some(&kerberos_only), &mut None, b""), Err(SaslError::Mechanism("DIGEST-MD5"))));
    }

    #[test]
    fn the_default_realm_comes_from_libdefaults() {
        let dir = std::env::temp_dir().join(format!("paddock-krb5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("krb5.conf");
        let text = "[realms]\n default_realm = NOT.THIS\n[libdefaults]\n  dns_lookup_kdc = false\n  default_realm = EXAMPLE.COM\n";
        std::fs::write(&path, text).unwrap();
        assert_eq!(default_realm(&path), "EXAMPLE.COM");
        assert_eq!(default_realm(&dir.join("missing")), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_super_password_replaces_a_listed_super_s_only() {
        let text = "Server { a.DigestLoginModule required user_super=\"in-file\" user_bob=\"b\"; };";
        let mut users = SaslUsers::from_config(&JaasConfig::parse(text, "t").unwrap(), "Server").unwrap();
        users.set_super_password(Some("from-cfg".into()));
        assert_eq!(users.password("super").as_deref(), Some("from-cfg"));
        assert_eq!(users.password("bob").as_deref(), Some("b"));
        let text = "Server { a.DigestLoginModule required user_bob=\"b\"; };";
        let mut users = SaslUsers::from_config(&JaasConfig::parse(text, "t").unwrap(), "Server").unwrap();
        users.set_super_password(Some("from-cfg".into()));
        assert_eq!(users.password("super"), None);
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
        let text = String::from_utf8(challenge.token.unwrap()).unwrap();
        let nonce = text.split("nonce=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
        // Compute the client's answer the way RFC 2831 says.
        let md5 = |b: &[u8]| -> Vec<u8> {
            use md5::Digest;
            md5::Md5::digest(b).to_vec()
        };
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
        assert!(done.token.unwrap().starts_with(b"rspauth="));
        assert_eq!(done.ids, vec![AuthId { scheme: "sasl".into(), id: "bob".into() }]);
        assert!(step(Some(&u), &mut state, b"").is_err(), "a finished exchange takes no more tokens");
    }
}
