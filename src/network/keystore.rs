//! Opening the TLS stores zoo.cfg names, in the formats ZooKeeper's
//! X509Util reads: PEM, PKCS#12 and JKS, the type from `ssl.*.type` or the
//! file's extension, the password from `ssl.*.password` or `.passwordPath`.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::tls::TlsError;
use super::{jks, pkcs12};
use crate::config::{StoreKind, StoreSecrets};

/// A key and its certificate chain, leaf first.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A store that cannot be used, and why.
pub(super) fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.display().to_string(), reason: reason.to_string() }
}

/// The store's bytes and password.
fn open(path: &Path, secrets: &StoreSecrets) -> Result<(Vec<u8>, Option<String>), TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let password = secrets.password().map_err(|e| file_error(path, format!("its passwordPath: {e}")))?;
    Ok((bytes, password))
}

/// Every certificate in a PEM file, in order.
fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    Ok(certs)
}

/// The private key of a PEM key store: plain, or encrypted as PKCS#8
/// (`ENCRYPTED PRIVATE KEY`, as `openssl pkcs8 -topk8` writes) and opened
/// with the store's password, as ZooKeeper's PEM reader does.
fn pem_key(path: &Path, secrets: &StoreSecrets) -> Result<PrivateKeyDer<'static>, TlsError> {
    if let Ok(key) = PrivateKeyDer::from_pem_file(path) {
        return Ok(key);
    }
    let (bytes, password) = open(path, secrets)?;
    let text = String::from_utf8_lossy(&bytes);
    let Some(encrypted) = pem_section(&text, "ENCRYPTED PRIVATE KEY") else {
        return Err(file_error(path, "no private key in it (PEM: PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)"));
    };
    let encrypted = encrypted.map_err(|e| file_error(path, format!("its ENCRYPTED PRIVATE KEY: {e}")))?;
    let Some(password) = password else {
        return Err(file_error(path, "its private key is encrypted: give the store's password (ssl.keyStore.password or .passwordPath)"));
    };
    let key = pkcs12::decrypt_private_key(&encrypted, &password).map_err(|e| file_error(path, e))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
}

/// The DER bytes of the first PEM section labelled `label`, if there is one.
fn pem_section(text: &str, label: &str) -> Option<Result<Vec<u8>, base64::DecodeError>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let start = text.find(&begin)? + begin.len();
    let end = text[start..].find(&format!("-----END {label}-----"))?;
    let body: String = text[start..start + end].chars().filter(|c| !c.is_whitespace()).collect();
    Some(base64::engine::general_purpose::STANDARD.decode(body))
}

/// The private key and certificate chain of a key store.
pub fn identity(path: &Path, secrets: &StoreSecrets) -> Result<Identity, TlsError> {
    let (chain, key) = match StoreKind::of(path, secrets) {
        StoreKind::Pem => {
            let chain = pem_certificates(path)?;
            (chain, pem_key(path, secrets)?)
        }
        StoreKind::Pkcs12 => {
            let (bytes, password) = open(path, secrets)?;
            let mut contents = pkcs12::read(&bytes, password.as_deref().unwrap_or("")).map_err(|e| file_error(path, e))?;
            if contents.keys.len() > 1 {
                tracing::warn!("{}: {} private keys; using the first", path.display(), contents.keys.len());
            }
            let Some((key, id)) = contents.keys.into_iter().next() else { return Err(file_error(path, "no private key in it")) };
            // The key's own certificate (same localKeyId) leads; the rest follow.
            contents.certs.sort_by_key(|(_, cert_id)| id.is_none() || *cert_id != id);
            let chain = contents.certs.into_iter().map(|(der, _)| CertificateDer::from(der)).collect();
            (chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        }
        StoreKind::Jks => {
            let (bytes, password) = open(path, secrets)?;
            let contents = jks::read(&bytes, Some(password.as_deref().unwrap_or(""))).map_err(|e| file_error(path, e))?;
            let Some((key, chain)) = contents.keys.into_iter().next() else { return Err(file_error(path, "no private key in it")) };
            (chain.into_iter().map(CertificateDer::from).collect(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        }
    };
    if chain.is_empty() {
        return Err(file_error(path, "no certificate in it"));
    }
    Ok((chain, key))
}

/// The CA certificates of a trust store.
pub fn trusted(path: &Path, secrets: &StoreSecrets) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = match StoreKind::of(path, secrets) {
        StoreKind::Pem => pem_certificates(path)?,
        StoreKind::Pkcs12 => {
            let (bytes, password) = open(path, secrets)?;
            let contents = pkcs12::read(&bytes, password.as_deref().unwrap_or("")).map_err(|e| file_error(path, e))?;
            contents.certs.into_iter().map(|(der, _)| CertificateDer::from(der)).collect()
        }
        StoreKind::Jks => {
            // Java reads a trust store without its password (unchecked).
            let (bytes, password) = open(path, secrets)?;
            let contents = jks::read(&bytes, password.as_deref()).map_err(|e| file_error(path, e))?;
            contents.trusted.into_iter().map(CertificateDer::from).collect()
        }
    };
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in it"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls").join(name)
    }

    fn with_password(password: &str) -> StoreSecrets {
        StoreSecrets { password: Some(password.into()), ..StoreSecrets::default() }
    }

    #[test]
    fn pkcs12_and_jks_stores_hold_what_the_pem_files_do() {
        let pem = identity(&fixture("server.pem"), &StoreSecrets::default()).expect("pem");
        let pem_chain: Vec<CertificateDer> = pem_certificates(&fixture("server.crt")).expect("crt");
        for store in ["server.p12", "server-java.p12", "server.jks"] {
            let (chain, key) = identity(&fixture(store), &with_password("paddock-test")).expect(store);
            assert_eq!(chain[0], pem_chain[0], "{store}: the key's own certificate first");
            assert_eq!(key.secret_der(), pem.1.secret_der(), "{store}: the same key");
        }
        let ca = pem_certificates(&fixture("ca.pem")).expect("ca");
        for store in ["ca.p12", "ca.jks"] {
            assert_eq!(trusted(&fixture(store), &with_password("paddock-test")).expect(store), ca, "{store}");
        }
        // JKS trust stores open without the password, as in Java.
        assert_eq!(trusted(&fixture("ca.jks"), &StoreSecrets::default()).expect("ca.jks"), ca);
    }

    #[test]
    fn encrypted_pem_keys_open_with_the_store_password() {
        let plain = identity(&fixture("server.pem"), &StoreSecrets::default()).expect("pem");
        let (chain, key) = identity(&fixture("server-encrypted.pem"), &with_password("paddock-test")).expect("encrypted pem");
        assert_eq!(chain, plain.0);
        assert_eq!(key.secret_der(), plain.1.secret_der(), "the same key");
        let err = identity(&fixture("server-encrypted.pem"), &StoreSecrets::default()).expect_err("no password").to_string();
        assert!(err.contains("encrypted: give the store's password"), "{err}");
        let err = identity(&fixture("server-encrypted.pem"), &with_password("wrong")).expect_err("wrong password").to_string();
        assert!(err.contains("wrong password"), "{err}");
        let err = identity(&fixture("server.crt"), &with_password("x")).expect_err("no key").to_string();
        assert!(err.contains("no private key"), "{err}");
    }

    #[test]
    fn wrong_passwords_and_legacy_encryption_say_so() {
        for store in ["server.p12", "server-java.p12", "server.jks"] {
            let err = identity(&fixture(store), &with_password("wrong")).expect_err(store).to_string();
            assert!(err.contains("wrong password"), "{store}: {err}");
        }
        let err = identity(&fixture("server-legacy.p12"), &with_password("paddock-test")).expect_err("legacy").to_string();
        assert!(err.contains("3DES or RC2"), "{err}");
        // A PEM file read as PKCS#12 (a wrong ssl.keyStore.type) is an error, not a panic.
        let as_p12 = StoreSecrets { kind: Some(StoreKind::Pkcs12), ..with_password("x") };
        assert!(identity(&fixture("server.pem"), &as_p12).is_err());
        let as_jks = StoreSecrets { kind: Some(StoreKind::Jks), ..with_password("x") };
        assert!(trusted(&fixture("ca.pem"), &as_jks).is_err());
    }
}
