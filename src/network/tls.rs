//! TLS for the secure client port (ZooKeeper's `secureClientPort`): the
//! server's certificate chain and key, and the CA certificates that client
//! certificates must chain to, read from the PEM files zoo.cfg names.
//!
//! Once the handshake is done the connection is served exactly as a plain
//! one (`connection::serve_tls`): the protocol does not change under TLS.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientAuth, Config};

/// Why the secure port could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
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

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.display().to_string(), reason: reason.to_string() }
}

/// Every certificate in a PEM file, in order.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in it"));
    }
    Ok(certs)
}

/// The TLS acceptor for the secure client port (or the unified plain one),
/// if zoo.cfg asks for TLS.
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, TlsError> {
    if !config.tls_wanted() {
        return Ok(None);
    }
    let Some(key_store) = &config.ssl_key_store else {
        return Err(TlsError::Setup("TLS needs ssl.keyStore.location".into()));
    };
    let chain = certificates(key_store)?;
    let key = PrivateKeyDer::from_pem_file(key_store)
        .map_err(|e| file_error(key_store, format!("no unencrypted private key: {e}")))?;
    // ring rather than aws-lc (a long C/cmake build here). rustls deprecates
    // its ring provider for lacking post-quantum key exchange, which the
    // Java, C and Python ZooKeeper clients do not offer either.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = match (config.ssl_client_auth, &config.ssl_trust_store) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::Setup("ssl.clientAuth=need or want needs ssl.trustStore.location".into())),
        (auth, Some(trust_store)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(trust_store)? {
                roots.add(cert).map_err(|e| file_error(trust_store, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Setup(e.to_string()))?)
        }
    };
    let tls = builder.with_single_cert(chain, key).map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
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
}
