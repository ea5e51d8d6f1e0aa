//! Quorum SASL: members authenticating each other before they talk, as
//! ZooKeeper's `quorum.auth.*` settings ask (DIGEST-MD5 with the JAAS
//! sections `QuorumServer`, whose `user_<name>` entries a member accepts, and
//! `QuorumLearner`, whose `username`/`password` it logs in with).
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
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};

use super::wire::PeerStream;
use crate::config::Config;
use crate::sasl::digest_md5::{DigestMd5Client, DigestMd5Server, Step, QUORUM_SERVER_NAME, QUORUM_SERVICE};
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
    /// The QuorumLearner login: user name and password.
    login: Option<(String, String)>,
    /// The QuorumServer section's users and passwords.
    users: HashMap<String, String>,
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
        let section = |name: &str| {
            jaas.section(name).ok_or_else(|| QuorumAuthError::Config(format!("no section {name} in {}", path.display())))
        };
        let options = |name: &str| -> Result<Vec<(String, String)>, QuorumAuthError> {
            let s = section(name)?;
            if s.modules.iter().any(|m| m.class.ends_with("Krb5LoginModule")) {
                return Err(QuorumAuthError::Config(format!(
                    "section {name}: Kerberos between members is not supported (DIGEST-MD5 is)"
                )));
            }
            Ok(s.modules.iter().flat_map(|m| m.options.iter().cloned()).collect())
        };
        let server = options(&q.server_context)?;
        let users = server.iter().filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v.clone()))).collect();
        let learner = options(&q.learner_context)?;
        let get = |key: &str| learner.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let login = match (get("username"), get("password")) {
            (Some(u), Some(p)) => (u, p),
            _ => return Err(QuorumAuthError::Config(format!("section {} needs username and password", q.learner_context))),
        };
        Ok(QuorumAuth {
            enabled: true,
            learner_requires: q.learner_require_sasl,
            server_requires: q.server_require_sasl,
            login: Some(login),
            users,
        })
    }

    /// True when this member authenticates as it dials.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The dialling side, on a new connection to `peer`: authenticates, or
    /// learns that `peer` runs no quorum SASL (an error if this member
    /// requires it). Nothing is sent when quorum SASL is off here.
    pub async fn dial(&self, conn: &mut PeerStream, peer: &str) -> io::Result<()> {
        let Some((user, password)) = self.login.as_ref().filter(|_| self.enabled) else { return Ok(()) };
        let mut client = DigestMd5Client::new(user, password, QUORUM_SERVICE, QUORUM_SERVER_NAME);
        let mut token = Vec::new();
        loop {
            conn.send(Bytes::from([MAGIC, &token].concat())).await?;
            let answer = next_frame(conn, peer).await?;
            let (status, body) = answer.split_first().ok_or_else(|| denied(peer, "empty SASL answer"))?;
            match *status {
                CONTINUE => token = client.respond(body).map_err(|e| denied(peer, &e.to_string()))?,
                DONE => return client.verify(body).map_err(|e| denied(peer, &format!("the member's proof: {e}"))),
                OFF if self.learner_requires => {
                    return Err(denied(peer, "it does not run quorum SASL (quorum.auth.learnerRequireSasl=true here)"))
                }
                OFF => return Ok(()),
                _ => return Err(denied(peer, "it refused this member's QuorumLearner credentials")),
            }
        }
    }

    /// The answering side, on a connection a member dialled: runs the
    /// exchange if the dialler starts one, and returns the dialler's first
    /// request when it did not (refused if this member requires SASL).
    pub async fn answer(&self, conn: &mut PeerStream, peer: &str) -> io::Result<Option<BytesMut>> {
        let first = if self.enabled && self.server_requires {
            next_frame(conn, peer).await?
        } else {
            // Without a requirement an idle dialler is waited for, as any
            // peer connection is.
            match conn.next().await {
                Some(frame) => frame?,
                None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{peer}: closed"))),
            }
        };
        let Some(mut token) = first.strip_prefix(MAGIC).map(<[u8]>::to_vec) else {
            if self.enabled && self.server_requires {
                return Err(denied(peer, "it did not authenticate (quorum.auth.serverRequireSasl=true here)"));
            }
            return Ok(Some(first));
        };
        if !self.enabled {
            conn.send(Bytes::from_static(&[OFF])).await?;
            return Ok(None);
        }
        let mut server = DigestMd5Server::for_quorum();
        loop {
            match server.step(&token, |u| self.users.get(u).cloned()) {
                Ok(Step::Challenge(challenge)) => conn.send(Bytes::from([&[CONTINUE], challenge.as_slice()].concat())).await?,
                Ok(Step::Complete { token, user }) => {
                    conn.send(Bytes::from([&[DONE], token.as_slice()].concat())).await?;
                    tracing::debug!(%peer, %user, "member authenticated (quorum SASL)");
                    return Ok(None);
                }
                Err(e) => {
                    let _ = conn.send(Bytes::from_static(&[FAILED])).await;
                    return Err(denied(peer, &e.to_string()));
                }
            }
            let frame = next_frame(conn, peer).await?;
            token = frame.strip_prefix(MAGIC).ok_or_else(|| denied(peer, "a request in the middle of SASL"))?.to_vec();
        }
    }
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
