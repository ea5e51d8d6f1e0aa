//! SASL DIGEST-MD5 over the sasl request (op 102), users from a JAAS file,
//! and the `sasl` ACL scheme, as ZooKeeper 3.8's server does them; and the
//! Kerberos login's start-up checks (compat/kerberos.sh runs GSSAPI itself
//! against a real KDC with the Java client).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{rt, Paddock};
use jute::{
    perms, Acl, AuthPacket, CreateRequest, ErrorCode, GetDataRequest, GetSaslRequest, Id, OpCode, Record, SetSaslResponse, WhoAmIResponse,
};
use md5::{Digest, Md5};
use paddock::client::{Client, ClientError};

const JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
"#;

/// Starts paddock with the JAAS file above configured through zoo.cfg.
fn start_with_jaas(dir: &Path) -> Paddock {
    start_with_jaas_and(dir, "")
}

/// As `start_with_jaas`, with more zoo.cfg lines.
fn start_with_jaas_and(dir: &Path, more: &str) -> Paddock {
    std::fs::write(dir.join("jaas.conf"), JAAS).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, format!("jaasLoginConfig={}\n{more}", dir.join("jaas.conf").display())).unwrap();
    Paddock::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

fn hex_md5(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// One sasl request; the reply's header error, zxid and token.
async fn sasl(c: &Client, token: &[u8]) -> Result<(i32, i64, Vec<u8>), ClientError> {
    let rx = c.send(OpCode::Sasl, Some(&GetSaslRequest { token: token.to_vec() })).await?;
    let (header, body) = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|_| ClientError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "closed")))??;
    let token = if header.err == 0 { SetSaslResponse::from_bytes(&body)?.token.unwrap_or_default() } else { Vec::new() };
    Ok((header.err, header.zxid, token))
}

/// Runs the client side of DIGEST-MD5 (RFC 2831) as pure-sasl does; returns
/// the final reply's error code, having checked a success's `rspauth`.
async fn authenticate(c: &Client, user: &str, password: &str) -> i32 {
    let (err, token, rspauth) = digest_exchange(c, user, password).await;
    if err == 0 {
        assert_eq!(String::from_utf8(token).unwrap(), rspauth);
    }
    err
}

/// The DIGEST-MD5 exchange: the final reply's error code and token, and the
/// `rspauth` a server that knows the password answers.
async fn digest_exchange(c: &Client, user: &str, password: &str) -> (i32, Vec<u8>, String) {
    let (err, zxid, challenge) = sasl(c, b"").await.unwrap();
    assert_eq!((err, zxid), (0, 0), "the challenge comes with zxid 0, as on ZooKeeper");
    let challenge = String::from_utf8(challenge).unwrap();
    assert!(challenge.starts_with("realm=\"zk-sasl-md5\",nonce=\""), "{challenge}");
    assert!(challenge.ends_with("\",charset=utf-8,algorithm=md5-sess"), "{challenge}");
    let nonce = challenge.split("nonce=\"").nth(1).and_then(|s| s.split('"').next()).unwrap();
    let (cnonce, uri) = ("Y2xpZW50bm9uY2U", "zookeeper/zk-sasl-md5");
    let mut a1 = Md5::digest(format!("{user}:zk-sasl-md5:{password}").as_bytes()).to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex_md5(&a1);
    let kd = |a2: &str| hex_md5(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{}", hex_md5(a2.as_bytes())).as_bytes());
    let response = format!(
        "qop=auth,realm=\"zk-sasl-md5\",username=\"{user}\",nonce=\"{nonce}\",cnonce=\"{cnonce}\",nc=00000001,\
         digest-uri=\"{uri}\",response={}",
        kd(&format!("AUTHENTICATE:{uri}"))
    );
    let (err, zxid, token) = sasl(c, response.as_bytes()).await.unwrap();
    assert_eq!(zxid, 0);
    (err, token, format!("rspauth={}", kd(&format!(":{uri}"))))
}

fn sasl_acl(user: &str) -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id { scheme: "sasl".into(), id: user.into() } }]
}

async fn who_am_i(c: &Client) -> Vec<(String, String)> {
    let body = c.call::<GetSaslRequest>(OpCode::WhoAmI, None).await.unwrap();
    WhoAmIResponse::from_bytes(&body).unwrap().client_info.into_iter().map(|i| (i.auth_scheme, i.user)).collect()
}

async fn get(c: &Client, path: &str) -> Result<bytes::Bytes, ClientError> {
    c.call(OpCode::GetData, Some(&GetDataRequest { path: path.into(), watch: false })).await
}

#[test]
fn digest_md5_gives_the_sasl_identity_and_acl() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_jaas(dir.path());
    rt().block_on(async {
        let bob = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&bob, "jaasuser", "jaas_password").await, 0);
        assert!(who_am_i(&bob).await.contains(&("sasl".to_string(), "jaasuser".to_string())));
        let create = CreateRequest { path: "/s".into(), data: Some(b"x".to_vec()), acl: sasl_acl("jaasuser"), flags: 0 };
        bob.call(OpCode::Create, Some(&create)).await.unwrap();
        assert!(get(&bob, "/s").await.is_ok());

        let anon = Client::connect(&server.addr, 10_000).await.unwrap();
        assert!(matches!(get(&anon, "/s").await, Err(ClientError::Server(ErrorCode::NoAuth))));
        // The SASL user named "super" passes every sasl ACL (SASLAuthenticationProvider.matches).
        let sup = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&sup, "super", "super_secret").await, 0);
        assert!(get(&sup, "/s").await.is_ok());
        // The `auth` scheme expands to the sasl identity.
        let auth = CreateRequest {
            path: "/t".into(),
            data: None,
            acl: vec![Acl { perms: perms::ALL, id: Id { scheme: "auth".into(), id: "".into() } }],
            flags: 0,
        };
        bob.call(OpCode::Create, Some(&auth)).await.unwrap();
        assert!(matches!(get(&anon, "/t").await, Err(ClientError::Server(ErrorCode::NoAuth))));
        assert!(get(&bob, "/t").await.is_ok());
        anon.close().await.unwrap();
        sup.close().await.unwrap();
        bob.close().await.unwrap();
    });
}

#[test]
fn a_super_user_s_whoami_lists_super() {
    // ZooKeeper's whoAmI lists every identity, `super` with an empty name.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_jaas_and(dir.path(), "superUser=jaasuser\n");
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&c, "jaasuser", "jaas_password").await, 0);
        let ids = who_am_i(&c).await;
        assert!(ids.contains(&("super".to_string(), String::new())), "{ids:?}");
        assert!(ids.contains(&("sasl".to_string(), "jaasuser".to_string())), "{ids:?}");
        c.close().await.unwrap();
    });
}

#[test]
fn wrong_password_or_garbage_fails_and_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_jaas(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&c, "jaasuser", "wrong").await, ErrorCode::AuthFailed.code());
        // ZooKeeper closes the connection after the AuthFailed reply.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(c.exists("/", false).await.is_err());

        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&c, "nobody", "x").await, ErrorCode::AuthFailed.code());

        // A first token is ignored, as on ZooKeeper; garbage in the second
        // step is AuthFailed, and no panic.
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(sasl(&c, b"\x60\x82\x01garbage").await.unwrap().0, 0);
        assert_eq!(sasl(&c, b"username=\"x\",,,\"\\").await.unwrap().0, ErrorCode::AuthFailed.code());

        // The server is unharmed.
        let ok = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&ok, "jaasuser", "jaas_password").await, 0);
        ok.close().await.unwrap();
    });
}

#[test]
fn without_a_jaas_file_sasl_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(sasl(&c, b"").await.unwrap().0, ErrorCode::AuthFailed.code());
    });
}

#[test]
fn a_kerberos_login_without_its_key_stops_the_start() {
    // A Krb5LoginModule whose keytab lacks the principal: ZooKeeper fails
    // its login at start; so does paddock, naming the principal and why.
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    let keytab = dir.path().join("missing.keytab");
    let text = format!(
        "Server {{ com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
         keyTab=\"{}\" principal=\"zookeeper/localhost@PADDOCK.TEST\"; }};",
        keytab.display()
    );
    std::fs::write(&jaas, text).unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, format!("jaasLoginConfig={}\n", jaas.display())).unwrap();
    let data = dir.path().join("data");
    let stderr = Paddock::refused(&["--config", cfg.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(stderr.contains("Kerberos login as zookeeper/localhost@PADDOCK.TEST"), "{stderr}");

    // Without a principal the section cannot be used either.
    std::fs::write(&jaas, "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };").unwrap();
    let stderr = Paddock::refused(&["--config", cfg.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(stderr.contains("has no principal"), "{stderr}");
}

#[test]
fn enforce_auth_answers_unauthenticated_requests_and_closes_the_connection() {
    // ZooKeeper 3.8's enforce.auth: before the connection holds an identity
    // of a listed scheme, every request but auth and sasl is answered
    // SessionClosedRequireSasl and the connection is closed.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_jaas_and(dir.path(), "enforce.auth.enabled=true\nenforce.auth.schemes=sasl,digest\n");
    rt().block_on(async {
        let anon = Client::connect(&server.addr, 10_000).await.unwrap();
        assert!(matches!(get(&anon, "/").await, Err(ClientError::Server(ErrorCode::SessionClosedRequireSasl))));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(anon.exists("/", false).await.is_err(), "the connection is closed");

        let sasl_user = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&sasl_user, "jaasuser", "jaas_password").await, 0);
        assert!(get(&sasl_user, "/").await.is_ok());
        // A listed scheme other than sasl does as well.
        let digest_user = Client::connect(&server.addr, 10_000).await.unwrap();
        let auth = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"alice:secret".to_vec()) };
        digest_user.call(OpCode::Auth, Some(&auth)).await.unwrap();
        assert!(get(&digest_user, "/").await.is_ok());
        // A failed SASL exchange, with sasl required, is answered so too.
        let wrong = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&wrong, "jaasuser", "wrong").await, ErrorCode::SessionClosedRequireSasl.code());
        sasl_user.close().await.unwrap();
        digest_user.close().await.unwrap();
    });
}

#[test]
fn allow_sasl_failed_clients_keeps_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_jaas_and(dir.path(), "allowSaslFailedClients=true\n");
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        // Answered OK with a null token (ZooKeeper's reply when it lets the failure pass).
        assert_eq!(digest_exchange(&c, "jaasuser", "wrong").await.0, 0);
        assert!(get(&c, "/").await.is_ok(), "the connection goes on");
        assert!(!who_am_i(&c).await.iter().any(|(scheme, _)| scheme == "sasl"));
        c.close().await.unwrap();
    });
    // With SASL required the failure still closes the connection.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_jaas_and(dir.path(), "allowSaslFailedClients=true\nsessionRequireClientSASLAuth=true\n");
    rt().block_on(async {
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&c, "jaasuser", "wrong").await, ErrorCode::SessionClosedRequireSasl.code());
        let c = Client::connect(&server.addr, 10_000).await.unwrap();
        assert!(matches!(get(&c, "/").await, Err(ClientError::Server(ErrorCode::SessionClosedRequireSasl))));
    });
}

#[test]
fn enforce_auth_without_known_schemes_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let data = dir.path().join("data");
    let args = ["--config", cfg.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    std::fs::write(&cfg, "enforce.auth.enabled=true\n").unwrap();
    assert!(Paddock::refused(&args).contains("enforce.auth.schemes must be configured"));
    std::fs::write(&cfg, "enforce.auth.enabled=true\nenforce.auth.schemes=sasl,kerberos\n").unwrap();
    assert!(Paddock::refused(&args).contains("authentication scheme kerberos is not available"));
}

#[test]
fn let_any_sasl_user_do_x_and_the_super_password() {
    // zookeeper.letAnySaslUserDoX: a sasl entry with that id is held by
    // every SASL user; SASLAuthenticationProvider.superPassword replaces
    // the password of the listed user `super`.
    let dir = tempfile::tempdir().unwrap();
    let more = "letAnySaslUserDoX=any-sasl-user\nzookeeper.SASLAuthenticationProvider.superPassword=from-cfg\n";
    let server = start_with_jaas_and(dir.path(), more);
    rt().block_on(async {
        let user = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&user, "jaasuser", "jaas_password").await, 0);
        let create = CreateRequest { path: "/any".into(), data: Some(b"x".to_vec()), acl: sasl_acl("any-sasl-user"), flags: 0 };
        user.call(OpCode::Create, Some(&create)).await.unwrap();
        assert!(get(&user, "/any").await.is_ok());
        let anon = Client::connect(&server.addr, 10_000).await.unwrap();
        assert!(matches!(get(&anon, "/any").await, Err(ClientError::Server(ErrorCode::NoAuth))));

        let old = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&old, "super", "super_secret").await, ErrorCode::AuthFailed.code());
        let sup = Client::connect(&server.addr, 10_000).await.unwrap();
        assert_eq!(authenticate(&sup, "super", "from-cfg").await, 0);
        assert!(get(&sup, "/any").await.is_ok());
        user.close().await.unwrap();
        sup.close().await.unwrap();
    });
}
