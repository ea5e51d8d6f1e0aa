//! TLS for the secure client port (ZooKeeper's `secureClientPort`): the
//! server's certificate chain and key, and the CA certificates that client
//! certificates must chain to, read from the stores zoo.cfg names (PEM,
//! PKCS#12 or JKS: see `keystore`); and
//! for the links between ensemble members (`sslQuorum`), from the
//! `ssl.quorum.*` stores.
//!
//! Once the handshake is done the connection is served exactly as a plain
//! one (`connection::serve_tls`): the protocol does not change under TLS.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::keystore;
use super::reload::Reloading;
use crate::config::{ClientAuth, Config, StoreSecrets};

/// Why the secure port could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A store that cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificates and key do not make a TLS configuration.
    #[error("TLS: {0}")]
    Setup(String),
}

/// The CA certificates of a trust store, for verifying the other side.
fn roots(trust_store: &Path, secrets: &StoreSecrets) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in keystore::trusted(trust_store, secrets)? {
        roots.add(cert).map_err(|e| keystore::file_error(trust_store, e))?;
    }
    Ok(Arc::new(roots))
}

/// The cryptography: ring rather than aws-lc (a long C/cmake build here).
/// rustls deprecates its ring provider for lacking post-quantum key
/// exchange, which the Java, C and Python ZooKeeper clients do not offer
/// either.
fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A store zoo.cfg names: its file and its type and password.
type Store<'a> = (&'a Path, &'a StoreSecrets);

/// A server's TLS set-up: its identity, and whether (and against which CAs)
/// the other side must present a certificate.
fn server_config(key_store: Store<'_>, trust_store: Option<Store<'_>>, auth: ClientAuth) -> Result<ServerConfig, TlsError> {
    let (chain, key) = keystore::identity(key_store.0, key_store.1)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = match (auth, trust_store) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::Setup("client certificates need a trust store".into())),
        (auth, Some((trust_store, secrets))) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(trust_store, secrets)?, provider);
            let verifier = if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Setup(e.to_string()))?)
        }
    };
    builder.with_single_cert(chain, key).map_err(|e| TlsError::Setup(e.to_string()))
}

/// The TLS acceptor for the secure client port (or the unified plain one),
/// if zoo.cfg asks for TLS; with `client.certReload=true` it follows
/// changes to the store files.
pub fn acceptor(config: &Config) -> Result<Option<Reloading<TlsAcceptor>>, TlsError> {
    if !config.tls_wanted() {
        return Ok(None);
    }
    let stores = [&config.ssl_key_store, &config.ssl_trust_store];
    reloading(config, "client TLS", config.client_cert_reload, stores, client_acceptor).map(Some)
}

/// A set-up built by `build` from `config`; with `reload`, built again
/// whenever one of the store files changes.
fn reloading<T: Clone + Send + Sync + 'static>(
    config: &Config,
    what: &'static str,
    reload: bool,
    stores: [&Option<std::path::PathBuf>; 2],
    build: fn(&Config) -> Result<T, TlsError>,
) -> Result<Reloading<T>, TlsError> {
    let tls = Reloading::new(build(config)?);
    if reload {
        let files = stores.into_iter().flatten().cloned().collect();
        let config = config.clone();
        tls.watch(what, files, move || build(&config));
    }
    Ok(tls)
}

/// The client port's acceptor, from the stores as they are now.
fn client_acceptor(config: &Config) -> Result<TlsAcceptor, TlsError> {
    let Some(key_store) = &config.ssl_key_store else {
        return Err(TlsError::Setup("TLS needs ssl.keyStore.location".into()));
    };
    let key_store = (key_store.as_path(), &config.ssl_key_store_secrets);
    let trust_store = config.ssl_trust_store.as_deref().map(|p| (p, &config.ssl_trust_store_secrets));
    let tls = server_config(key_store, trust_store, config.ssl_client_auth)?;
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

/// Both ends of TLS between ensemble members (`sslQuorum=true`): every
/// member presents its certificate when it dials and when it is dialled,
/// and accepts only peers whose certificates chain to the quorum trust store.
#[derive(Clone)]
pub struct QuorumTls {
    /// Dials a peer.
    pub connector: TlsConnector,
    /// Answers a peer.
    pub acceptor: TlsAcceptor,
    /// With `ssl.quorum.hostnameVerification` (the default): checks that a
    /// member that dialled in presents a certificate naming where it dialled
    /// from (see [`QuorumTls::check_peer_name`]).
    names: Option<Arc<WebPkiServerVerifier>>,
}

impl QuorumTls {
    /// Whether accepted members' certificates must name their addresses.
    pub fn checks_peer_names(&self) -> bool {
        self.names.is_some()
    }

    /// Checks, as ZooKeeper's quorum trust manager does with hostname
    /// verification on, that the certificate chain a member presented
    /// (`certs`, leaf first) names the address it dialled from (`ip`) or
    /// the name that address resolves back to (`host`, if it has one).
    pub fn check_peer_name(&self, certs: &[CertificateDer<'_>], ip: std::net::IpAddr, host: Option<&str>) -> Result<(), String> {
        let Some(verifier) = &self.names else { return Ok(()) };
        let Some((leaf, intermediates)) = certs.split_first() else { return Err("it presented no certificate".into()) };
        let names = std::iter::once(ServerName::IpAddress(ip.into())).chain(host.and_then(|h| ServerName::try_from(h.to_string()).ok()));
        for name in names {
            match verifier.verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now()) {
                Ok(_) => return Ok(()),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                )) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(match host {
            Some(host) => format!("its certificate names neither {ip} nor {host}"),
            None => format!("its certificate does not name {ip} (which resolves to no name)"),
        })
    }
}

/// The quorum's TLS set-up, if zoo.cfg asks for it (`sslQuorum=true`, or
/// `portUnification=true`, which answers TLS while dialling plain); with
/// `sslQuorumReloadCertFiles=true` it follows changes to the store files.
pub fn quorum(config: &Config) -> Result<Option<Reloading<QuorumTls>>, TlsError> {
    if !config.ssl_quorum && !config.quorum_port_unification {
        return Ok(None);
    }
    let stores = [&config.ssl_quorum_key_store, &config.ssl_quorum_trust_store];
    reloading(config, "quorum TLS", config.ssl_quorum_reload, stores, quorum_now).map(Some)
}

/// The quorum's set-up, from the stores as they are now.
fn quorum_now(config: &Config) -> Result<QuorumTls, TlsError> {
    let (Some(key_store), Some(trust_store)) = (&config.ssl_quorum_key_store, &config.ssl_quorum_trust_store) else {
        return Err(TlsError::Setup(
            "sslQuorum and portUnification need ssl.quorum.keyStore.location and ssl.quorum.trustStore.location".into(),
        ));
    };
    let key_store = (key_store.as_path(), &config.ssl_quorum_key_store_secrets);
    let trust_store = (trust_store.as_path(), &config.ssl_quorum_trust_store_secrets);
    let acceptor = TlsAcceptor::from(Arc::new(server_config(key_store, Some(trust_store), ClientAuth::Need)?));
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(trust_store.0, trust_store.1)?, provider.clone())
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder =
        ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().map_err(|e| TlsError::Setup(e.to_string()))?;
    let names = config.ssl_quorum_hostname_verification.then(|| verifier.clone());
    let builder = match config.ssl_quorum_hostname_verification {
        true => builder.with_webpki_verifier(verifier),
        false => builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(verifier))),
    };
    let (chain, key) = keystore::identity(key_store.0, key_store.1)?;
    let client = builder.with_client_auth_cert(chain, key).map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok(QuorumTls { connector: TlsConnector::from(Arc::new(client)), acceptor, names })
}

/// Checks a peer's certificate chain but not that it names the address
/// dialled (`ssl.quorum.hostnameVerification=false`, as ZooKeeper allows,
/// for certificates issued without the members' addresses).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls").join(name)
    }

    #[test]
    fn builds_from_the_test_stores_and_refuses_bad_ones() {
        let mut c = Config { secure_client_port: Some(0), ssl_key_store: Some(fixture("server.pem")), ..Config::default() };
        c.ssl_trust_store = Some(fixture("ca.pem"));
        assert!(acceptor(&c).unwrap().is_some());
        // a certificate without its key
        c.ssl_key_store = Some(fixture("server.crt"));
        assert!(matches!(acceptor(&c), Err(TlsError::File { .. })));
        c.ssl_key_store = Some(fixture("missing.pem"));
        assert!(matches!(acceptor(&c), Err(TlsError::File { .. })));
        c.secure_client_port = None;
        assert!(acceptor(&c).unwrap().is_none());
    }

    #[test]
    fn builds_quorum_tls_with_or_without_hostname_verification() {
        let mut c = Config::default();
        assert!(quorum(&c).unwrap().is_none());
        c.ssl_quorum = true;
        assert!(matches!(quorum(&c), Err(TlsError::Setup(_))), "stores are needed");
        c.ssl_quorum_key_store = Some(fixture("server.pem"));
        c.ssl_quorum_trust_store = Some(fixture("ca.pem"));
        assert!(quorum(&c).unwrap().is_some());
        c.ssl_quorum_hostname_verification = false;
        assert!(quorum(&c).unwrap().is_some());
        c.ssl_quorum_trust_store = Some(fixture("missing.pem"));
        assert!(matches!(quorum(&c), Err(TlsError::File { .. })));
    }
}
