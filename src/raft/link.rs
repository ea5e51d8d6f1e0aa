//! How one ensemble member reaches another: plain TCP, or TLS with both
//! members' certificates when zoo.cfg says `sslQuorum=true` (and either,
//! answered, with `portUnification=true`). Every peer
//! connection (Raft's RPCs, forwarded writes and session liveness, reconfig,
//! the start-up question whether an ensemble exists) is dialled and answered
//! here, so none of them can go around the quorum's TLS, or its SASL
//! authentication (`quorum.auth.enableSasl`, see [`super::quorum_auth`]).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_util::either::Either;

use bytes::BytesMut;
use futures::StreamExt;

use super::quorum_auth::{QuorumAuth, QuorumAuthError};
use super::wire::{self, PeerIo, PeerStream};
use crate::config::Config;
use crate::network::reload::Reloading;
use crate::network::reverse_dns;
use crate::network::tls::{self, QuorumTls, TlsError};

/// How long a member may take over its TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The first byte of a TLS handshake record. A plain peer frame starts
/// with its length's high byte, which is 0x16 only for frames of 352 MiB
/// and more, over [`wire::MAX_FRAME`].
const TLS_HANDSHAKE: u8 = 0x16;

/// Why the quorum links could not be set up; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The quorum's TLS stores.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Quorum SASL's settings or JAAS sections.
    #[error(transparent)]
    Auth(#[from] QuorumAuthError),
}

/// Dials and answers member-to-member connections.
#[derive(Clone)]
pub struct Links {
    /// How long an answered connection may stay silent before its first
    /// request: syncLimit x tickTime, ZooKeeper's default quorumCnxnTimeoutMs
    /// (at least a second: a Kerberos dialler first asks its KDC).
    first_frame: Duration,
    /// The quorum's certificates, if TLS is dialled or answered.
    tls: Option<Reloading<QuorumTls>>,
    /// Dial over TLS (`sslQuorum=true`).
    dial_tls: bool,
    /// Answer both plain and TLS, told apart by the first byte
    /// (`portUnification=true`); else only what is dialled.
    unified: bool,
    /// Quorum SASL (`quorum.auth.*`): members authenticating each other.
    auth: QuorumAuth,
}

impl Default for Links {
    /// Plain links with ZooKeeper's default timing (tickTime=2000, syncLimit=5).
    fn default() -> Self {
        Links { first_frame: Duration::from_secs(10), tls: None, dial_tls: false, unified: false, auth: QuorumAuth::default() }
    }
}

impl Links {
    /// Plain links, or TLS ones if zoo.cfg sets `sslQuorum=true`; with
    /// `portUnification=true` both are answered, for moving a running
    /// ensemble to TLS one member at a time.
    pub fn from_config(config: &Config) -> Result<Links, LinkError> {
        let tls = tls::quorum(config)?;
        let auth = QuorumAuth::from_config(config)?;
        Ok(Links {
            first_frame: Duration::from_millis(config.tick_time_ms.saturating_mul(config.sync_limit).max(1_000)),
            dial_tls: config.ssl_quorum && tls.is_some(),
            unified: config.quorum_port_unification,
            tls,
            auth,
        })
    }

    /// Dials the member at `addr` (`host:port`); over TLS its certificate
    /// must chain to the quorum trust store and (unless
    /// `ssl.quorum.hostnameVerification=false`) name `host`.
    pub async fn connect(&self, addr: &str) -> io::Result<PeerStream> {
        let mut conn = wire::framed(self.connect_io(addr).await?);
        if let Err(e) = self.auth.dial(&mut conn, addr).await {
            if e.kind() == io::ErrorKind::PermissionDenied {
                warn_rarely(&format!("could not talk to member {e}"));
            }
            return Err(e);
        }
        Ok(conn)
    }

    /// The byte stream of [`connect`](Self::connect): TCP, TLS over it when dialled so.
    async fn connect_io(&self, addr: &str) -> io::Result<PeerIo> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = self.tls.as_ref().filter(|_| self.dial_tls).map(Reloading::current) else {
            return Ok(Either::Left(stream));
        };
        let host = host_of(addr);
        let name =
            ServerName::try_from(host.to_string()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
        let stream = tokio::time::timeout(HANDSHAKE_LIMIT, tls.connector.connect(name, stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{addr}: TLS handshake timed out")))??;
        Ok(Either::Right(stream.into()))
    }

    /// Answers a member that dialled this one; over TLS it must present a
    /// certificate that chains to the quorum trust store and (unless
    /// `ssl.quorum.hostnameVerification=false`) names the address it dialled
    /// from, or the name that address resolves back to.
    ///
    /// With quorum SASL the dialler then authenticates; a dialler that did
    /// not (where that is allowed) has its first request returned with the stream.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<(PeerStream, Option<BytesMut>)> {
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut conn = wire::framed(self.accept_io(stream, &peer).await?);
        // Every dialler sends at once; one that sends nothing is not a
        // member and is not kept (ZooKeeper's quorumCnxnTimeoutMs).
        let first = match tokio::time::timeout(self.first_frame, conn.next()).await {
            Ok(Some(frame)) => frame?,
            Ok(None) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{peer}: closed before a request"))),
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{peer}: sent no request in {:?}", self.first_frame))),
        };
        match self.auth.answer(&mut conn, &peer, first).await {
            Ok(first) => Ok((conn, first)),
            Err(e) => {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    warn_rarely(&format!("refused a peer connection from {e}"));
                }
                Err(e)
            }
        }
    }

    /// The byte stream of [`accept`](Self::accept): TCP, or TLS over it.
    async fn accept_io(&self, stream: TcpStream, peer: &str) -> io::Result<PeerIo> {
        let _ = stream.set_nodelay(true);
        let Some(tls) = self.tls.as_ref().map(Reloading::current) else { return Ok(Either::Left(stream)) };
        if self.unified {
            let mut first = [0u8; 1];
            match tokio::time::timeout(HANDSHAKE_LIMIT, stream.peek(&mut first)).await {
                Ok(Ok(1..)) if first[0] == TLS_HANDSHAKE => {}
                Ok(Ok(1..)) => return Ok(Either::Left(stream)),
                Ok(Ok(_)) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{peer}: closed before a byte"))),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{peer}: sent nothing"))),
            }
        }
        let handshake = tokio::time::timeout(HANDSHAKE_LIMIT, tls.acceptor.accept(stream)).await;
        match handshake {
            Ok(Ok(stream)) => {
                if tls.checks_peer_names() {
                    let ip = stream.get_ref().0.peer_addr()?.ip();
                    let certs = stream.get_ref().1.peer_certificates().unwrap_or_default();
                    // The name is looked up only if the address alone does not pass.
                    let mut checked = tls.check_peer_name(certs, ip, None);
                    if checked.is_err() {
                        let host = tokio::task::spawn_blocking(move || reverse_dns::confirmed_name(ip)).await.ok().flatten();
                        checked = tls.check_peer_name(certs, ip, host.as_deref());
                    }
                    if let Err(why) = checked {
                        warn_rarely(&format!("refused a peer connection from {peer}: {why}"));
                        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{peer}: {why}")));
                    }
                }
                Ok(Either::Right(stream.into()))
            }
            Ok(Err(e)) => {
                warn_rarely(&format!("refused a peer connection from {peer}: TLS: {e}"));
                Err(e)
            }
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("{peer}: TLS handshake timed out"))),
        }
    }
}

/// The host of `host:port` (without an IPv6 address's brackets).
pub(super) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Logs a warning at most every ten seconds: a misconfigured member redials
/// at every heartbeat, and one line says as much as a hundred.
fn warn_rarely(message: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 10 && LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        tracing::warn!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dials `addr` and sends a first request, as every member does (the
    /// answering side reads it before it hands the connection on).
    async fn dial(links: &Links, addr: &str) -> Option<PeerStream> {
        let mut conn = links.connect(addr).await.ok()?;
        wire::send(&mut conn, 1, &super::super::wire::PeerRequest::Status).await.ok()?;
        Some(conn)
    }

    #[tokio::test]
    async fn accepted_members_must_be_named_for_their_address() {
        let fixture = |name: &str| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls").join(name);
        let links = |key: &str, verify: bool| {
            let config = Config {
                ssl_quorum: true,
                ssl_quorum_key_store: Some(fixture(key)),
                ssl_quorum_trust_store: Some(fixture("ca.pem")),
                ssl_quorum_hostname_verification: verify,
                ..Config::default()
            };
            Links::from_config(&config).expect("quorum TLS from the test stores")
        };
        // server.pem names 127.0.0.1; client.pem (same CA) names no host.
        for (verify, dialler, accepted) in [(true, "server.pem", true), (true, "client.pem", false), (false, "client.pem", true)] {
            let answering = links("server.pem", verify);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let answer = tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                answering.accept(stream).await.map(|_| ())
            });
            let _dialled = dial(&links(dialler, false), &addr).await;
            let answered = answer.await.unwrap();
            assert_eq!(answered.is_ok(), accepted, "hostname verification {verify}, member with {dialler}: {answered:?}");
        }
    }

    #[tokio::test]
    async fn a_replaced_quorum_trust_store_is_used_with_reload_on() {
        // Rotating to a new CA, ZooKeeper's way: every member trusts it
        // first (sslQuorumReloadCertFiles=true: no restart), then members
        // present certificates from it.
        let fixture = |name: &str| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls").join(name);
        let dir = tempfile::tempdir().unwrap();
        let old_ca = std::fs::read_to_string(fixture("ca.pem")).unwrap();
        let both = old_ca.clone() + &std::fs::read_to_string(fixture("rotated/ca.pem")).unwrap();
        let (trust, trust_both) = (dir.path().join("trust.pem"), dir.path().join("both.pem"));
        std::fs::write(&trust, &old_ca).unwrap();
        std::fs::write(&trust_both, &both).unwrap();
        let answering = Links::from_config(&Config {
            ssl_quorum: true,
            ssl_quorum_reload: true,
            ssl_quorum_key_store: Some(fixture("server.pem")),
            ssl_quorum_trust_store: Some(trust.clone()),
            ..Config::default()
        })
        .unwrap();
        let rotated = Links::from_config(&Config {
            ssl_quorum: true,
            ssl_quorum_key_store: Some(fixture("rotated/server.pem")),
            ssl_quorum_trust_store: Some(trust_both.clone()),
            ..Config::default()
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let answer = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let ok = answering.accept(stream).await.is_ok();
                outcomes.push(ok);
                if ok {
                    return outcomes;
                }
            }
        });
        let _refused = dial(&rotated, &addr).await;
        // Written elsewhere and moved in, as a store should be replaced.
        let staged = dir.path().join("staged.pem");
        std::fs::write(&staged, &both).unwrap();
        std::fs::rename(&staged, &trust).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !answer.is_finished() {
            assert!(std::time::Instant::now() < deadline, "the new trust store was not taken up");
            // Held open while the answering side looks at who dialled.
            let _dialled = dial(&rotated, &addr).await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let outcomes = answer.await.unwrap();
        assert!(!outcomes[0], "a member from the new CA was let in before its CA was trusted");
        assert_eq!(outcomes.last(), Some(&true));
    }

    #[test]
    fn finds_the_host_to_verify() {
        assert_eq!(host_of("127.0.0.1:2888"), "127.0.0.1");
        assert_eq!(host_of("zk1.example.com:2888"), "zk1.example.com");
        assert_eq!(host_of("[::1]:2888"), "::1");
    }
}
