//! Quorum SASL: members authenticating each other before they talk, as
//! ZooKeeper's `quorum.auth.*` settings ask, with the JAAS sections
//! `QuorumServer` (how a member checks those that dial it) and
//! `QuorumLearner` (how it logs in as it dials):
//!
//! - DIGEST-MD5: `user_<name>` entries in QuorumServer, `username` and
//!   `password` in QuorumLearner;
//! - Kerberos (GSSAPI): a Krb5LoginModule in each, QuorumServer's with the
//!   member's service principal (`quorum.auth.kerberos.servicePrincipal`,
//!   default `zkquorum/localhost`, `_HOST` standing for the member's host),
//!   QuorumLearner's with the principal it logs in as. As ZooKeeper's
//!   SaslQuorumServerCallbackHandler, a dialling `name/host@REALM` must name
//!   the host of one of the `server.N` lines.
//!
//! The dialling member runs the client side first, on the framed peer
//! stream: each of its frames is [`MAGIC`] and a SASL token, each answer a
//! status byte and a token. The magic does not begin a peer request (a
//! request's first eight bytes are its id, counted up from 0: no member
//! reaches 0x4c5341534b4450ff), so a
//! member also tells an unauthenticated dialler's first request apart and,
//! unless `quorum.auth.serverRequireSasl`, serves it: that, and a member
//! without quorum SASL answering [`OFF`], is what lets a running ensemble
//! turn it on one member at a time, as ZooKeeper's documented steps do
//! (enableSasl, then learnerRequireSasl, then serverRequireSasl).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};

use super::wire::PeerStream;
use crate::config::Config;
use crate::sasl::digest_md5::{DigestMd5Client, DigestMd5Server, Step, QUORUM_SERVER_NAME, QUORUM_SERVICE};
use crate::sasl::gss::Cred;
use crate::sasl::gssapi::{self, GssapiClient, GssapiServer};
use crate::sasl::jaas::LoginModule;
use crate::sasl::JaasConfig;

/// Starts every frame of the dialler's side of the exchange.
pub const MAGIC: &[u8] = b"\xffPDKSASL";
/// The answering member's statuses, first byte of its frames.
const CONTINUE: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;
/// "This member does not run quorum SASL."
pub const OFF: u8 = 3;
/// How long either side waits for the other's next SASL frame.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// Why quorum SASL could not be set up; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum QuorumAuthError {
    /// The JAAS file is missing or unreadable.
    #[error(transparent)]
    Jaas(#[from] crate::sasl::JaasError),
    /// A setting or section needed is missing or unsupported.
    #[error("quorum SASL: {0}")]
    Config(String),
}

/// This member's quorum SASL settings.
#[derive(Clone, Default)]
pub struct QuorumAuth {
    /// `quorum.auth.enableSasl`: authenticate when dialling, and check dialling members.
    enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: refuse to talk to a member that does not authenticate.
    learner_requires: bool,
    /// `quorum.auth.serverRequireSasl`: refuse members that dial without authenticating.
    server_requires: bool,
    /// How this member logs in (QuorumLearner).
    login: Option<Login>,
    /// How it checks members that dial it (QuorumServer).
    check: Option<Check>,
}

/// A member's login as it dials.
#[derive(Clone)]
enum Login {
    /// DIGEST-MD5 user name and password.
    Digest(String, String),
    /// Kerberos: its initiating credential, and the service principal
    /// pattern of the members it dials (`_HOST` for their host).
    Kerberos(Arc<Cred>, String),
}

/// How dialling members are checked.
#[derive(Clone)]
enum Check {
    /// DIGEST-MD5 users and passwords.
    Digest(HashMap<String, String>),
    /// Kerberos: this member's accepting credential, and the hosts a
    /// dialling host principal may name.
    Kerberos(Arc<Cred>, Vec<String>),
}

impl std::fmt::Debug for QuorumAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumAuth")
            .field("enabled", &self.enabled)
            .field("learner_requires", &self.learner_requires)
            .field("server_requires", &self.server_requires)
            .finish_non_exhaustive()
    }
}

impl QuorumAuth {
    /// Reads the `quorum.auth.*` settings and, when enabled, the two JAAS
    /// sections they name (zoo.cfg's `jaasLoginConfig`).
    pub fn from_config(config: &Config) -> Result<QuorumAuth, QuorumAuthError> {
        let q = &config.quorum_auth;
        if !q.enable_sasl {
            return Ok(QuorumAuth::default());
        }
        let path = config
            .jaas_login_config
            .as_ref()
            .ok_or_else(|| QuorumAuthError::Config("quorum.auth.enableSasl=true needs jaasLoginConfig".into()))?;
        let jaas = JaasConfig::load(path)?;
        let module = |name: &str| -> Result<&LoginModule, QuorumAuthError> {
            let s = jaas.section(name).ok_or_else(|| QuorumAuthError::Config(format!("no section {name} in {}", path.display())))?;
            s.modules.first().ok_or_else(|| QuorumAuthError::Config(format!("section {name} has no login module")))
        };
        let option = |m: &LoginModule, key: &str| m.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let kerberos = |m: &LoginModule| m.class.ends_with("Krb5LoginModule");
        // A Krb5LoginModule's principal, and its credential from its keytab.
        type Acquire = fn(&str, Option<&str>) -> Result<Cred, crate::sasl::gss::GssError>;
        let kerberos_login = |m: &LoginModule, section: &str, acquire: Acquire| -> Result<Arc<Cred>, QuorumAuthError> {
            let principal =
                option(m, "principal").ok_or_else(|| QuorumAuthError::Config(format!("section {section} needs a principal")))?;
            let cred = acquire(&principal, option(m, "keyTab").as_deref())
                .map_err(|e| QuorumAuthError::Config(format!("Kerberos login as {principal}: {e}")))?;
            Ok(Arc::new(cred))
        };

        let server = module(&q.server_context)?;
        let check = if kerberos(server) {
            let hosts = config.peers.values().map(|p| p.host.to_ascii_lowercase()).collect();
            Check::Kerberos(kerberos_login(server, &q.server_context, Cred::acquire)?, hosts)
        } else {
            let users = server.options.iter().filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v.clone())));
            Check::Digest(users.collect())
        };
        let learner = module(&q.learner_context)?;
        let login = if kerberos(learner) {
            let cred = kerberos_login(learner, &q.learner_context, Cred::initiator)?;
            Login::Kerberos(cred, q.kerberos_service_principal.clone())
        } else {
            match (option(learner, "username"), option(learner, "password")) {
                (Some(u), Some(p)) => Login::Digest(u, p),
                _ => return Err(QuorumAuthError::Config(format!("section {} needs username and password", q.learner_context))),
            }
        };
        Ok(QuorumAuth {
            enabled: true,
            learner_requires: q.learner_require_sasl,
            server_requires: q.server_require_sasl,
            login: Some(login),
            check: Some(check),
        })
    }

    /// The dialling side, on a new connection to `peer` (`host:port`):
    /// authenticates, or learns that `peer` runs no quorum SASL (an error if
    /// this member requires it). Nothing is sent when quorum SASL is off here.
    pub async fn dial(&self, conn: &mut PeerStream, peer: &str) -> io::Result<()> {
        let Some(login) = self.login.as_ref().filter(|_| self.enabled) else { return Ok(()) };
        let fail = |e: &dyn std::fmt::Display| denied(peer, &e.to_string());
        match login {
            Login::Digest(user, password) => {
                let mut client = DigestMd5Client::new(user, password, QUORUM_SERVICE, QUORUM_SERVER_NAME);
                let mut token = Vec::new();
                loop {
                    match self.exchange(conn, peer, &token).await? {
                        Answered::Continue(body) => token = client.respond(&body).map_err(|e| fail(&e))?,
                        Answered::Done(body) => return client.verify(&body).map_err(|e| fail(&format!("the member's proof: {e}"))),
                        Answered::Off => return Ok(()),
                    }
                }
            }
            Login::Kerberos(cred, service) => {
                // Ticket requests go to the KDC: off the async workers.
                let mut client = GssapiClient::new(&service_principal(service, peer));
                let mut input: Option<Vec<u8>> = None;
                loop {
                    let cred = cred.clone();
                    let (back, token) = tokio::task::spawn_blocking(move || {
                        let token = match &input {
                            None => client.start(&cred),
                            Some(body) => client.respond(&cred, body),
                        };
                        (client, token)
                    })
                    .await
                    .map_err(|e| fail(&e))?;
                    client = back;
                    match self.exchange(conn, peer, &token.map_err(|e| fail(&e))?).await? {
                        Answered::Continue(body) => input = Some(body),
                        Answered::Done(_) if client.is_done() => return Ok(()),
                        Answered::Done(_) => return Err(fail(&"done before the security layer was chosen")),
                        Answered::Off => return Ok(()),
                    }
                }
            }
        }
    }

    /// Sends the dialler's next token and reads the answer.
    async fn exchange(&self, conn: &mut PeerStream, peer: &str, token: &[u8]) -> io::Result<Answered> {
        conn.send(Bytes::from([MAGIC, token].concat())).await?;
        let answer = next_frame(conn, peer).await?;
        let (status, body) = answer.split_first().ok_or_else(|| denied(peer, "empty SASL answer"))?;
        match *status {
            CONTINUE => Ok(Answered::Continue(body.to_vec())),
            DONE => Ok(Answered::Done(body.to_vec())),
            OFF if self.learner_requires => Err(denied(peer, "it does not run quorum SASL (quorum.auth.learnerRequireSasl=true here)")),
            OFF => Ok(Answered::Off),
            _ => Err(denied(peer, "it refused this member's QuorumLearner login")),
        }
    }

    /// The answering side, on a connection a member dialled whose `first`
    /// frame has arrived: runs the exchange if the dialler starts one, and
    /// returns that first request when it did not (refused if this member
    /// requires SASL).
    pub async fn answer(&self, conn: &mut PeerStream, peer: &str, first: BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(mut token) = first.strip_prefix(MAGIC).map(<[u8]>::to_vec) else {
            if self.enabled && self.server_requires {
                return Err(denied(peer, "it did not authenticate (quorum.auth.serverRequireSasl=true here)"));
            }
            return Ok(Some(first));
        };
        let Some(check) = self.check.as_ref().filter(|_| self.enabled) else {
            conn.send(Bytes::from_static(&[OFF])).await?;
            return Ok(None);
        };
        let mut digest = DigestMd5Server::for_quorum();
        let mut gss = GssapiServer::new();
        loop {
            let step = match check {
                Check::Digest(users) => match digest.step(&token, |u| users.get(u).cloned()) {
                    Ok(Step::Challenge(challenge)) => Ok(Answer::Continue(challenge)),
                    Ok(Step::Complete { token, user }) => Ok(Answer::Done(token, user)),
                    Err(e) => Err(e.to_string()),
                },
                Check::Kerberos(cred, hosts) => match gss.step(cred, &token) {
                    Ok(gssapi::Step::Continue(t)) => Ok(Answer::Continue(t)),
                    Ok(gssapi::Step::Complete(principal)) => {
                        authorized_host(&principal, hosts).map(|()| Answer::Done(Vec::new(), principal))
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            match step {
                Ok(Answer::Continue(t)) => conn.send(Bytes::from([&[CONTINUE], t.as_slice()].concat())).await?,
                Ok(Answer::Done(t, user)) => {
                    conn.send(Bytes::from([&[DONE], t.as_slice()].concat())).await?;
                    tracing::debug!(%peer, %user, "member authenticated (quorum SASL)");
                    return Ok(None);
                }
                Err(why) => {
                    let _ = conn.send(Bytes::from_static(&[FAILED])).await;
                    return Err(denied(peer, &why));
                }
            }
            let frame = next_frame(conn, peer).await?;
            token = frame.strip_prefix(MAGIC).ok_or_else(|| denied(peer, "a request in the middle of SASL"))?.to_vec();
        }
    }
}

/// What the answering member said to a token.
enum Answered {
    /// Its next token.
    Continue(Vec<u8>),
    /// Authenticated; its last token.
    Done(Vec<u8>),
    /// It runs no quorum SASL (and this member does not require it).
    Off,
}

/// One step of the answering side.
enum Answer {
    /// A token for the dialler; more follow.
    Continue(Vec<u8>),
    /// Authenticated: the last token, and who.
    Done(Vec<u8>, String),
}

/// The service principal a member at `peer` (`host:port`) runs as: the
/// pattern with `_HOST` standing for that host, lower-cased (ZooKeeper's
/// SecurityUtils.getServerPrincipal).
fn service_principal(pattern: &str, peer: &str) -> String {
    let host = super::link::host_of(peer);
    match pattern.split_once('/') {
        Some((service, rest)) if rest == "_HOST" || rest.starts_with("_HOST@") => {
            format!("{service}/{}{}", host.to_ascii_lowercase(), &rest["_HOST".len()..])
        }
        _ => pattern.to_string(),
    }
}

/// As ZooKeeper's quorum authorization: a `name/host@REALM` principal must
/// name the host of one of the members.
fn authorized_host(principal: &str, hosts: &[String]) -> Result<(), String> {
    let parts: Vec<&str> = principal.split(['/', '@']).collect();
    if parts.len() == 3 && !hosts.iter().any(|h| h.eq_ignore_ascii_case(parts[1])) {
        return Err(format!("{principal} names host {} of no server.N line", parts[1]));
    }
    Ok(())
}

/// The next frame, within [`STEP_LIMIT`].
async fn next_frame(conn: &mut PeerStream, peer: &str) -> io::Result<BytesMut> {
    match tokio::time::timeout(STEP_LIMIT, conn.next()).await {
        Ok(Some(frame)) => frame,
        Ok(None) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{peer}: closed during quorum SASL"))),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("{peer}: quorum SASL timed out"))),
    }
}

fn denied(peer: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("{peer}: quorum SASL: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_principal_names_the_dialled_host() {
        assert_eq!(service_principal("zkquorum/_HOST@EXAMPLE.COM", "ZK1.example.com:2888"), "zkquorum/zk1.example.com@EXAMPLE.COM");
        assert_eq!(service_principal("zkquorum/_HOST", "10.0.0.1:2888"), "zkquorum/10.0.0.1");
        assert_eq!(service_principal("zkquorum/localhost", "zk1:2888"), "zkquorum/localhost");
    }

    #[test]
    fn host_principals_must_name_a_member_s_host() {
        let hosts = vec!["127.0.0.1".to_string(), "zk2.example.com".to_string()];
        assert!(authorized_host("zkquorum/zk2.example.com@EXAMPLE.COM", &hosts).is_ok());
        assert!(authorized_host("zkquorum/evil.example.com@EXAMPLE.COM", &hosts).is_err());
        assert!(authorized_host("learner@EXAMPLE.COM", &hosts).is_ok());
    }
}
