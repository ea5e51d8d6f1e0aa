//! The secure client port: ZooKeeper's protocol over TLS, with the client
//! certificates ZooKeeper asks for by default (`ssl.clientAuth=need`).
//! Real clients (kazoo, the Java client) are driven by compat/tls.sh. And
//! TLS between ensemble members (`sslQuorum`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{rt, Ensemble, Paddock};
use jute::{Acl, ConnectResponse, CreateRequest, GetDataRequest, Id, OpCode, Record, ReplyHeader, RequestHeader};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls").join(name)
}

fn start(dir: &Path) -> Paddock {
    start_with(dir, "")
}

fn start_with(dir: &Path, extra_cfg: &str) -> Paddock {
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "ssl.keyStore.location={}\nssl.keyStore.type=PEM\nssl.trustStore.location={}\nssl.trustStore.type=PEM\n{extra_cfg}",
        fixture("server.pem").display(),
        fixture("ca.pem").display()
    );
    std::fs::write(&cfg, text).unwrap();
    Paddock::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap(), "--secure-port", "0"])
}

/// A TLS client trusting the test CA, with the test client certificate or without one.
fn connector(with_certificate: bool) -> TlsConnector {
    connector_trusting(&["ca.pem"], with_certificate)
}

/// A TLS client trusting the CAs in these fixtures.
fn connector_trusting(cas: &[&str], with_certificate: bool) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_file_iter(fixture(ca)).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
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
async fn exchange(addr: &str, with_certificate: bool, request: &[u8]) -> std::io::Result<Vec<u8>> {
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
        if got == 0 {
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
        assert_eq!(exchange(&secure, true, b"ruok").await.unwrap(), b"imok");
        // A session: the connect request gets its response, as on the plain port.
        let s = TlsSession::open(&secure).await;
        assert!(s.session.session_id != 0 && s.session.timeout == 10_000, "{:?}", s.session);
        s.session.session_id
    });
    // The session lives on the server like any other (until it times out).
    let dump = server.four_letter("dump");
    assert!(dump.contains(&format!("\t0x{session:x}\n")), "{dump}");
}

/// The certificate the server at `addr` presents to a client that trusts
/// both test CAs.
async fn presented_certificate(addr: &str) -> std::io::Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector_trusting(&["ca.pem", "rotated/ca.pem"], true).connect(name, tcp).await?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
    // A request over the new handshake is answered.
    tls.write_all(b"ruok").await?;
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), tls.read_to_end(&mut answer)).await??;
    assert_eq!(answer, b"imok");
    Ok(leaf)
}

#[test]
fn a_replaced_key_store_is_presented_from_the_next_handshake_with_cert_reload() {
    let dir = tempfile::tempdir().unwrap();
    let key_store = dir.path().join("server.pem");
    std::fs::copy(fixture("server.pem"), &key_store).unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let text = format!(
        "ssl.keyStore.location={}\nssl.trustStore.location={}\nclient.certReload=true\n",
        key_store.display(),
        fixture("ca.pem").display()
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Paddock::start_with(&dir.path().join("data"), &["--config", cfg.to_str().unwrap(), "--secure-port", "0"]);
    let secure = server.secure.clone().expect("a secure port");
    let der = |name: &str| CertificateDer::pem_file_iter(fixture(name)).unwrap().next().unwrap().unwrap().to_vec();
    let (old, new) =
        (der("server.crt"), CertificateDer::pem_file_iter(fixture("rotated/server.pem")).unwrap().next().unwrap().unwrap().to_vec());
    rt().block_on(async {
        assert_eq!(presented_certificate(&secure).await.unwrap(), old);
        // A store that does not read yet (copied half way) changes nothing.
        std::fs::write(&key_store, &std::fs::read(fixture("rotated/server.pem")).unwrap()[..100]).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(presented_certificate(&secure).await.unwrap(), old, "a broken store replaced the good one");
        std::fs::copy(fixture("rotated/server.pem"), &key_store).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if presented_certificate(&secure).await.unwrap() == new {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the new key store was not taken up");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn clients_without_a_trusted_certificate_or_tls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let secure = server.secure.clone().expect("a secure port");
    rt().block_on(async {
        // No client certificate: the server ends the handshake, nothing is answered.
        let answer = exchange(&secure, false, b"ruok").await;
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
fn pkcs12_and_jks_stores_serve_and_a_wrong_password_stops_the_start() {
    // As a Java deployment keeps them: the server's key in PKCS#12, the CA
    // in a JKS trust store (types from the file names), passwords in zoo.cfg.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let stores = |password: &str| {
        format!(
            "ssl.keyStore.location={}\nssl.keyStore.password={password}\nssl.trustStore.location={}\nssl.trustStore.password={password}\n",
            fixture("server-java.p12").display(),
            fixture("ca.jks").display()
        )
    };
    std::fs::write(&cfg, stores("paddock-test")).unwrap();
    let server = Paddock::start_with(&dir.path().join("data"), &["--config", cfg.to_str().unwrap(), "--secure-port", "0"]);
    let secure = server.secure.clone().expect("a secure port");
    rt().block_on(async {
        assert_eq!(exchange(&secure, true, b"ruok").await.unwrap(), b"imok");
        let s = TlsSession::open(&secure).await;
        assert!(s.session.session_id != 0, "{:?}", s.session);
    });
    drop(server);

    std::fs::write(&cfg, format!("secureClientPort=0\n{}", stores("not-it"))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["--config", cfg.to_str().unwrap(), "--bind", "127.0.0.1", "--port", "0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("server-java.p12") && stderr.contains("wrong password"), "{stderr}");
}

/// A session over TLS, speaking the protocol one request at a time.
struct TlsSession {
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    xid: i32,
    session: ConnectResponse,
}

impl TlsSession {
    async fn open(addr: &str) -> TlsSession {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = connector(true).connect(name, tcp).await.unwrap();
        let session = ConnectResponse { protocol_version: 0, timeout: 0, session_id: 0, passwd: Vec::new(), read_only: None };
        let mut s = TlsSession { tls, xid: 0, session };
        let connect = common::new_session(10_000);
        s.send(&connect, None).await;
        s.session = ConnectResponse::from_bytes(&s.frame().await).unwrap();
        s
    }

    async fn send<T: Record>(&mut self, record: &T, header: Option<RequestHeader>) {
        let mut body = bytes::BytesMut::new();
        if let Some(h) = header {
            h.write(&mut body);
        }
        record.write(&mut body);
        self.tls.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
        self.tls.write_all(&body).await.unwrap();
        self.tls.flush().await.unwrap();
    }

    async fn frame(&mut self) -> Vec<u8> {
        let mut len = [0u8; 4];
        self.tls.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.tls.read_exact(&mut body).await.unwrap();
        body
    }

    /// Sends one request and returns its reply's error code.
    async fn call<T: Record>(&mut self, op: OpCode, record: &T) -> i32 {
        self.xid += 1;
        self.send(record, Some(RequestHeader { xid: self.xid, op: op as i32 })).await;
        let reply = self.frame().await;
        ReplyHeader::from_bytes(&reply[..16]).unwrap().err
    }
}

#[test]
fn the_x509_super_user_passes_every_acl() {
    let someone_else = vec![Acl { perms: 31, id: Id { scheme: "x509".into(), id: "CN=someone-else".into() } }];
    let create = CreateRequest { path: "/locked".into(), data: Some(b"x".to_vec()), acl: someone_else, flags: 0 };
    let get = GetDataRequest { path: "/locked".into(), watch: false };
    for (super_user, expected) in [("CN=paddock-test-client,O=paddock", 0), ("CN=another-admin", -102)] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_with(dir.path(), &format!("X509AuthenticationProvider.superUser={super_user}\n"));
        let secure = server.secure.clone().expect("a secure port");
        rt().block_on(async {
            let mut s = TlsSession::open(&secure).await;
            assert_eq!(s.call(OpCode::Create, &create).await, 0);
            // Readable only by CN=someone-else, or a super user.
            assert_eq!(s.call(OpCode::GetData, &get).await, expected, "super user {super_user}");
            let plain = paddock::client::Client::connect(&server.addr, 10_000).await.unwrap();
            assert!(plain.get_data("/locked", false).await.is_err());
        });
    }
}

#[test]
fn a_unified_client_port_takes_plain_and_tls_clients() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let text = format!(
        "client.portUnification=true\nssl.keyStore.location={}\nssl.trustStore.location={}\n",
        fixture("server.pem").display(),
        fixture("ca.pem").display()
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Paddock::start_with(&dir.path().join("data"), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(server.secure, None);
    rt().block_on(async {
        // TLS on the plain port: a session and its writes, as on a secure port.
        let mut s = TlsSession::open(&server.addr).await;
        let create = CreateRequest {
            path: "/both".into(),
            data: Some(b"x".to_vec()),
            acl: vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }],
            flags: 0,
        };
        assert_eq!(s.call(OpCode::Create, &create).await, 0);
        assert_eq!(exchange(&server.addr, true, b"ruok").await.unwrap(), b"imok");
        // and plain clients on the same port, seeing the same tree
        let plain = paddock::client::Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(plain.get_data("/both", false).await.unwrap().0, b"x");
    });
    assert!(server.four_letter("ruok").contains("imok"));
}

/// The zoo.cfg lines of the test quorum stores.
fn quorum_stores() -> String {
    format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
        fixture("server.pem").display(),
        fixture("ca.pem").display()
    )
}

/// Links that dial a member as another member would: over TLS with the
/// test member certificate, and in plain TCP.
fn probe_links() -> (paddock::raft::link::Links, paddock::raft::link::Links) {
    let mut cfg = paddock::config::Config::default();
    cfg.apply_zoo_cfg(&format!("sslQuorum=true\n{}", quorum_stores()), "zoo.cfg").unwrap();
    (paddock::raft::link::Links::from_config(&cfg).unwrap(), paddock::raft::link::Links::default())
}

#[test]
fn members_talk_over_quorum_tls_and_refuse_plain_peers() {
    let dir = tempfile::tempdir().unwrap();
    let ens = Ensemble::start_cfg(dir.path(), 3, &format!("sslQuorum=true\n{}", quorum_stores()));
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    rt().block_on(async {
        // Forwarded to the leader, replicated, and applied back on the follower: all over TLS.
        let f = paddock::client::Client::connect(&ens.addr(follower), 10_000).await.unwrap();
        f.create("/over-tls", b"x", jute::CreateMode::Persistent).await.unwrap();
        let l = paddock::client::Client::connect(&ens.addr(leader), 10_000).await.unwrap();
        assert_eq!(l.get_data("/over-tls", false).await.unwrap().0, b"x");
    });
    assert_peer_port_wants_tls(&ens, leader);
}

/// Asserts that member `id` answers the peer protocol's first question
/// asked over TLS with a member's certificate, and not asked in plain TCP
/// (as by a member without sslQuorum).
fn assert_peer_port_wants_tls(ens: &Ensemble, id: usize) {
    let (tls, plain) = probe_links();
    let peer = ens.peer_addr(id);
    rt().block_on(async {
        use paddock::raft::peer_server::peer_initialized;
        assert!(peer_initialized(&tls, &peer).await, "no answer over TLS");
        assert!(!peer_initialized(&plain, &peer).await, "answered a plain peer connection");
    });
}

#[test]
fn a_running_ensemble_moves_to_quorum_tls_one_member_at_a_time() {
    // ZooKeeper's procedure: portUnification=true (answer both, dial plain),
    // then sslQuorum=true (dial TLS), then portUnification off (TLS only),
    // each a rolling restart with writes going on between.
    let dir = tempfile::tempdir().unwrap();
    let mut ens = Ensemble::start_cfg(dir.path(), 3, &format!("portUnification=true\n{}", quorum_stores()));
    let (tls, plain) = probe_links();
    use paddock::raft::peer_server::peer_initialized;
    rt().block_on(async {
        let peer = ens.peer_addr(1);
        assert!(peer_initialized(&plain, &peer).await, "a unified peer port answers plain");
        assert!(peer_initialized(&tls, &peer).await, "a unified peer port answers TLS");
    });
    let mut written = 0;
    let mut rolling_restart = |ens: &mut Ensemble, step: &str| {
        for id in 1..=3 {
            ens.nodes[id - 1].take().expect("running").stop();
            ens.restart(id);
            // A write through another member reaches the one just restarted.
            let other = if id == 1 { 2 } else { 1 };
            written += 1;
            let path = format!("/{step}-{written}");
            rt().block_on(async {
                // Just after a restart a member may still be finding its
                // leader, or call an election that moves the leadership:
                // connections close and clients try again, as here.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                let mut created = false;
                loop {
                    let attempt = async {
                        if !created {
                            let c = common::connect_retrying(&ens.addr(other), 10_000).await;
                            match c.create(&path, b"x", jute::CreateMode::Persistent).await {
                                Ok(_) | Err(paddock::client::ClientError::Server(jute::ErrorCode::NodeExists)) => created = true,
                                Err(e) => return Err(e),
                            }
                        }
                        let r = common::connect_retrying(&ens.addr(id), 10_000).await;
                        r.sync(&path).await?;
                        r.exists(&path, false).await
                    };
                    match attempt.await {
                        Ok(found) => {
                            assert!(found.is_some(), "{path} on member {id}");
                            break;
                        }
                        Err(e) if std::time::Instant::now() < deadline => {
                            eprintln!("{path} through member {id}: {e}; trying again");
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                        Err(e) => panic!("{path} through member {id}: {e}"),
                    }
                }
            });
        }
    };
    ens.edit_cfg(|cfg| cfg.push_str("sslQuorum=true\n"));
    rolling_restart(&mut ens, "tls-dialled");
    ens.edit_cfg(|cfg| *cfg = cfg.replace("portUnification=true\n", ""));
    rolling_restart(&mut ens, "tls-only");
    // Now a plain peer connection is refused, as without portUnification.
    assert_peer_port_wants_tls(&ens, ens.leader().expect("a leader"));
}
