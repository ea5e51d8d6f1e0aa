//! The secure client port: ZooKeeper's protocol over TLS, with the client
//! certificates ZooKeeper asks for by default (`ssl.clientAuth=need`).
//! Real clients (kazoo, the Java client) are driven by compat/tls.sh.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{rt, Paddock};
use jute::{ConnectRequest, ConnectResponse, Record};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls").join(name)
}

fn start(dir: &Path) -> Paddock {
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "ssl.keyStore.location={}\nssl.keyStore.type=PEM\nssl.trustStore.location={}\nssl.trustStore.type=PEM\n",
        fixture("server.pem").display(),
        fixture("ca.pem").display()
    );
    std::fs::write(&cfg, text).unwrap();
    Paddock::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap(), "--secure-port", "0"])
}

/// A TLS client trusting the test CA, with the test client certificate or without one.
fn connector(with_certificate: bool) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots);
    let config = if with_certificate {
        let chain: Vec<_> = CertificateDer::pem_file_iter(fixture("client.pem")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(fixture("client.pem")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    TlsConnector::from(Arc::new(config))
}

/// Sends `request` over TLS and reads until the server closes or 64 KiB came.
async fn exchange(addr: &str, with_certificate: bool, request: &[u8], read_some: bool) -> std::io::Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector(with_certificate).connect(name, tcp).await?;
    tls.write_all(request).await?;
    tls.flush().await?;
    let mut out = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut out[n..])).await??;
        n += got;
        if got == 0 || (read_some && n >= 4) {
            break;
        }
    }
    out.truncate(n);
    Ok(out)
}

#[test]
fn sessions_and_four_letter_words_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let secure = server.secure.clone().expect("a secure port");
    let session = rt().block_on(async {
        assert_eq!(exchange(&secure, true, b"ruok", false).await.unwrap(), b"imok");
        // A session: the connect request gets its response, as on the plain port.
        let mut req = Vec::new();
        let connect = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, timeout: 10_000, session_id: 0, passwd: vec![0; 16], read_only: Some(false) };
        let mut body = bytes::BytesMut::new();
        connect.write(&mut body);
        req.extend_from_slice(&(body.len() as u32).to_be_bytes());
        req.extend_from_slice(&body);
        let reply = exchange(&secure, true, &req, true).await.unwrap();
        let len = u32::from_be_bytes(reply[..4].try_into().unwrap()) as usize;
        assert!(reply.len() >= 4 + len, "short connect response: {reply:?}");
        let resp = ConnectResponse::from_bytes(&reply[4..4 + len]).unwrap();
        assert!(resp.session_id != 0 && resp.timeout == 10_000, "{resp:?}");
        resp.session_id
    });
    // The session lives on the server like any other (until it times out).
    let dump = server.four_letter("dump");
    assert!(dump.contains(&format!("\t0x{session:x}\n")), "{dump}");
}

#[test]
fn clients_without_a_trusted_certificate_or_tls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let secure = server.secure.clone().expect("a secure port");
    rt().block_on(async {
        // No client certificate: the server ends the handshake, nothing is answered.
        let answer = exchange(&secure, false, b"ruok", false).await;
        assert!(!matches!(&answer, Ok(a) if a == b"imok"), "{answer:?}");
        // Plain TCP on the TLS port: not a handshake, closed unanswered.
        let mut plain = tokio::net::TcpStream::connect(&secure).await.unwrap();
        plain.write_all(b"ruok").await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), plain.read_to_end(&mut out)).await;
        assert!(!out.starts_with(b"imok"), "{out:?}");
    });
    // Both cost only their own connection.
    assert!(server.four_letter("ruok").contains("imok"));
}

#[test]
fn key_stores_that_are_not_pem_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "secureClientPort=0\nssl.keyStore.location=/etc/keystore.jks\nssl.trustStore.location=/etc/ca.pem\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["--config", cfg.to_str().unwrap(), "--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only PEM key stores"), "{}", String::from_utf8_lossy(&out.stderr));
}
