//! The server side of SASL DIGEST-MD5 (RFC 2831), as the JDK's `DigestMD5Server`
//! runs it for ZooKeeper: authentication only (`qop=auth`, no integrity or
//! confidentiality layer), one realm, and a digest-uri of `zookeeper/zk-sasl-md5`
//! (`zookeeper-quorum/zk-quorum-sasl-md5` between members); and the client
//! side, which members use to authenticate to each other.
//!
//! The exchange is two round trips:
//!
//! 1. the client sends a token (empty: DIGEST-MD5 has no initial response;
//!    the JDK ignores whatever it holds, and so do we); the server answers a
//!    challenge, worded as ZooKeeper 3.8's: `realm`, `nonce`, `charset`,
//!    `algorithm` (no `qop`: `auth`, the default, is all it offers);
//! 2. the client sends its digest-response; the server checks it against the
//!    user's password and answers `rspauth=...`, proving it knows the password
//!    too. Authentication is then complete.
//!
//! Anything else — a token after completion, a malformed or duplicated
//! directive, another nonce, an unknown user, a wrong digest — is an error;
//! nothing here panics on client input.

use md5::{Digest, Md5};
use rand::RngCore;

/// The service (digest-uri's protocol) ZooKeeper's SASL server runs as.
pub const ZK_SERVICE: &str = "zookeeper";
/// The server name (and realm) ZooKeeper's DIGEST-MD5 server uses whatever its host.
pub const ZK_SERVER_NAME: &str = "zk-sasl-md5";

/// The service of quorum SASL (member to member), as ZooKeeper names it.
pub const QUORUM_SERVICE: &str = "zookeeper-quorum";
/// The server name (and realm) of quorum SASL's DIGEST-MD5 server.
pub const QUORUM_SERVER_NAME: &str = "zk-quorum-sasl-md5";

/// Longest client token accepted; real digest-responses are a few hundred bytes.
const MAX_RESPONSE: usize = 4096;

/// Why a DIGEST-MD5 exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The exchange is already over.
    #[error("DIGEST-MD5 authentication already complete")]
    AlreadyComplete,
    /// The digest-response does not follow RFC 2831's syntax.
    #[error("malformed digest-response: {0}")]
    Malformed(String),
    /// A directive has a value this server did not offer or cannot accept.
    #[error("digest-response: unacceptable {directive}: {value:?}")]
    Unacceptable {
        /// The directive.
        directive: &'static str,
        /// What the client sent.
        value: String,
    },
    /// No such user in the server's credentials.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The client's digest does not match the password.
    #[error("wrong digest for user {0:?}")]
    WrongDigest(String),
}

/// What one step of the exchange produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the exchange continues.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `token` (the rspauth) as the last reply.
    Complete {
        /// The final server token.
        token: Vec<u8>,
        /// The authenticated user name (the authentication id).
        user: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    Challenged,
    Done,
}

/// One connection's DIGEST-MD5 exchange, server side.
#[derive(Debug, Clone)]
pub struct DigestMd5Server {
    service: String,
    server_name: String,
    realm: String,
    nonce: String,
    state: State,
}

impl DigestMd5Server {
    /// A server as ZooKeeper's: service `zookeeper`, server name and realm
    /// `zk-sasl-md5`, a fresh random nonce.
    pub fn for_zookeeper() -> Self {
        Self::new(ZK_SERVICE, ZK_SERVER_NAME, ZK_SERVER_NAME, &random_nonce())
    }

    /// A server for members authenticating to each other (quorum SASL),
    /// named as ZooKeeper's quorum DIGEST-MD5 server.
    pub fn for_quorum() -> Self {
        Self::new(QUORUM_SERVICE, QUORUM_SERVER_NAME, QUORUM_SERVER_NAME, &random_nonce())
    }

    /// A server with explicit parameters (tests use RFC 2831's example).
    /// The nonce must not contain `"` or `\`.
    pub fn new(service: &str, server_name: &str, realm: &str, nonce: &str) -> Self {
        DigestMd5Server {
            service: service.into(),
            server_name: server_name.into(),
            realm: realm.into(),
            nonce: nonce.into(),
            state: State::Start,
        }
    }

    /// True once a client has authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Runs one step on the client's `token`; `password` looks a user's
    /// password up. Any error ends the exchange.
    pub fn step(&mut self, token: &[u8], password: impl Fn(&str) -> Option<String>) -> Result<Step, DigestError> {
        match self.state {
            // The first token is ignored, as the JDK's server does.
            State::Start => {
                self.state = State::Challenged;
                Ok(Step::Challenge(self.challenge()))
            }
            State::Challenged => {
                // Whatever happens, this exchange is over.
                self.state = State::Done;
                let (user, token) = self.verify(token, password)?;
                Ok(Step::Complete { token, user })
            }
            State::Done => Err(DigestError::AlreadyComplete),
        }
    }

    fn challenge(&self) -> Vec<u8> {
        format!("realm=\"{}\",nonce=\"{}\",charset=utf-8,algorithm=md5-sess", quote(&self.realm), self.nonce).into_bytes()
    }

    /// Checks a digest-response; gives the user and the rspauth token.
    fn verify(&self, token: &[u8], password: impl Fn(&str) -> Option<String>) -> Result<(String, Vec<u8>), DigestError> {
        if token.len() > MAX_RESPONSE {
            return Err(DigestError::Malformed(format!("{} bytes", token.len())));
        }
        let d = Directives::parse(token)?;
        let utf8 = match d.get("charset")? {
            None => false,
            Some(v) if v.eq_ignore_ascii_case(b"utf-8") => true,
            Some(v) => return Err(unacceptable("charset", v)),
        };
        // Without charset=utf-8 the strings are ISO 8859-1 (RFC 2831 2.1.2).
        let text = |v: &[u8]| -> Result<String, DigestError> {
            if utf8 {
                String::from_utf8(v.to_vec()).map_err(|_| DigestError::Malformed("invalid UTF-8".into()))
            } else {
                Ok(v.iter().map(|&b| b as char).collect())
            }
        };
        let user = text(d.require("username")?)?;
        let realm = match d.get("realm")? {
            Some(r) => text(r)?,
            None => String::new(),
        };
        if !realm.is_empty() && realm != self.realm {
            return Err(unacceptable("realm", realm.as_bytes()));
        }
        let nonce = d.require("nonce")?;
        if nonce != self.nonce.as_bytes() {
            return Err(unacceptable("nonce", nonce));
        }
        let cnonce = d.require("cnonce")?;
        let nc = d.require("nc")?;
        if std::str::from_utf8(nc).ok().and_then(|s| u32::from_str_radix(s, 16).ok()) != Some(1) {
            return Err(unacceptable("nc", nc));
        }
        match d.get("qop")? {
            None => {}
            Some(q) if q.eq_ignore_ascii_case(b"auth") => {}
            Some(q) => return Err(unacceptable("qop", q)),
        }
        if let Some(c) = d.get("cipher")? {
            return Err(unacceptable("cipher", c));
        }
        let uri = d.require("digest-uri")?;
        if !self.uri_matches(uri) {
            return Err(unacceptable("digest-uri", uri));
        }
        let response = d.require("response")?;
        let authzid = d.get("authzid")?;

        let pass = password(&user).ok_or_else(|| DigestError::UnknownUser(user.clone()))?;
        let digests = Digests::of(&Exchanged { user: &user, realm: &realm, password: &pass, nonce, cnonce, nc, authzid, uri });
        if !constant_time_eq(digests.response.as_bytes(), &response.to_ascii_lowercase()) {
            return Err(DigestError::WrongDigest(user));
        }
        Ok((user, format!("rspauth={}", digests.rspauth).into_bytes()))
    }

    /// `service/host[/serv-name]` with this server's service and name (host
    /// compared without case, as the JDK does).
    fn uri_matches(&self, uri: &[u8]) -> bool {
        let Ok(uri) = std::str::from_utf8(uri) else { return false };
        let mut parts = uri.splitn(3, '/');
        let service = parts.next().unwrap_or_default();
        let host = parts.next().unwrap_or_default();
        service == self.service && host.eq_ignore_ascii_case(&self.server_name)
    }
}

/// What both sides of an exchange hash (RFC 2831 2.1.2.1, md5-sess, qop=auth).
struct Exchanged<'a> {
    user: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a [u8],
    cnonce: &'a [u8],
    nc: &'a [u8],
    authzid: Option<&'a [u8]>,
    uri: &'a [u8],
}

/// The client's `response` and the server's `rspauth`, lower-case hex.
struct Digests {
    response: String,
    rspauth: String,
}

impl Digests {
    fn of(e: &Exchanged) -> Digests {
        let mut secret = Md5::new();
        secret.update(latin1_or_utf8(e.user));
        secret.update(b":");
        secret.update(latin1_or_utf8(e.realm));
        secret.update(b":");
        secret.update(latin1_or_utf8(e.password));
        let mut a1 = secret.finalize().to_vec();
        a1.extend_from_slice(b":");
        a1.extend_from_slice(e.nonce);
        a1.extend_from_slice(b":");
        a1.extend_from_slice(e.cnonce);
        if let Some(z) = e.authzid {
            a1.extend_from_slice(b":");
            a1.extend_from_slice(z);
        }
        let ha1 = hex_md5(&a1);
        let kd = |a2: &[u8]| {
            let mut s = ha1.clone().into_bytes();
            for part in [e.nonce, e.nc, e.cnonce, b"auth".as_slice()] {
                s.extend_from_slice(b":");
                s.extend_from_slice(part);
            }
            s.extend_from_slice(b":");
            s.extend_from_slice(hex_md5(a2).as_bytes());
            hex_md5(&s)
        };
        Digests { response: kd(&[b"AUTHENTICATE:".as_slice(), e.uri].concat()), rspauth: kd(&[b":".as_slice(), e.uri].concat()) }
    }
}

/// The client side of the same exchange, as the JDK's `DigestMD5Client`
/// runs it with `qop=auth`: used by a member authenticating to another
/// (quorum SASL), where both ends are paddock.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    user: String,
    password: String,
    uri: String,
    cnonce: String,
    /// The `rspauth` the server must answer, once a response was sent.
    rspauth: Option<String>,
}

impl DigestMd5Client {
    /// A client logging in as `user` to `service/server_name`.
    pub fn new(user: &str, password: &str, service: &str, server_name: &str) -> Self {
        DigestMd5Client {
            user: user.into(),
            password: password.into(),
            uri: format!("{service}/{server_name}"),
            cnonce: random_nonce(),
            rspauth: None,
        }
    }

    /// The digest-response to the server's challenge.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, DigestError> {
        if self.rspauth.is_some() {
            return Err(DigestError::AlreadyComplete);
        }
        let d = Directives::parse(challenge)?;
        let realm = String::from_utf8_lossy(d.get("realm")?.unwrap_or_default()).into_owned();
        let nonce = d.require("nonce")?;
        match d.get("algorithm")? {
            Some(a) if a.eq_ignore_ascii_case(b"md5-sess") => {}
            other => return Err(unacceptable("algorithm", other.unwrap_or_default())),
        }
        if let Some(q) = d.get("qop")? {
            if !q.split(|b| *b == b',').any(|q| q.trim_ascii().eq_ignore_ascii_case(b"auth")) {
                return Err(unacceptable("qop", q));
            }
        }
        let nc = b"00000001";
        let digests = Digests::of(&Exchanged {
            user: &self.user,
            realm: &realm,
            password: &self.password,
            nonce,
            cnonce: self.cnonce.as_bytes(),
            nc,
            authzid: None,
            uri: self.uri.as_bytes(),
        });
        self.rspauth = Some(digests.rspauth);
        let token = format!(
            "charset=utf-8,username=\"{}\",realm=\"{}\",nonce=\"{}\",nc=00000001,cnonce=\"{}\",digest-uri=\"{}\",maxbuf=65536,response={},qop=auth",
            quote(&self.user),
            quote(&realm),
            quote(&String::from_utf8_lossy(nonce)),
            self.cnonce,
            quote(&self.uri),
            digests.response
        );
        Ok(token.into_bytes())
    }

    /// Checks the server's final token proves it knows the password too.
    pub fn verify(&self, token: &[u8]) -> Result<(), DigestError> {
        let expected = self.rspauth.as_deref().ok_or_else(|| DigestError::Malformed("rspauth before a response".into()))?;
        let got = Directives::parse(token)?.require("rspauth")?.to_ascii_lowercase();
        if constant_time_eq(expected.as_bytes(), &got) {
            Ok(())
        } else {
            Err(DigestError::WrongDigest(self.user.clone()))
        }
    }
}

/// A fresh 40-character nonce (30 random bytes, base64), like the JDK's.
fn random_nonce() -> String {
    let mut raw = [0u8; 30];
    rand::thread_rng().fill_bytes(&mut raw);
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn unacceptable(directive: &'static str, value: &[u8]) -> DigestError {
    DigestError::Unacceptable { directive, value: String::from_utf8_lossy(value).into_owned() }
}

/// The JDK's rule for hashing user, realm and password: ISO 8859-1 when every
/// character fits, UTF-8 otherwise.
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 0x100) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex_md5(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The directives of a digest-response, unquoted.
struct Directives(Vec<(String, Vec<u8>)>);

impl Directives {
    /// Parses `name=value` / `name="quoted"` pairs separated by commas
    /// (RFC 2831's `#rule`: empty elements and whitespace around them allowed).
    fn parse(token: &[u8]) -> Result<Self, DigestError> {
        let malformed = |what: &str| DigestError::Malformed(what.to_string());
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < token.len() && matches!(token[*i], b' ' | b'\t' | b'\r' | b'\n') {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i == token.len() {
                break;
            }
            if token[i] == b',' {
                i += 1;
                continue;
            }
            let start = i;
            while i < token.len() && (token[i].is_ascii_alphanumeric() || token[i] == b'-' || token[i] == b'_') {
                i += 1;
            }
            if i == start {
                return Err(malformed("expected a directive name"));
            }
            let name = String::from_utf8_lossy(&token[start..i]).to_ascii_lowercase();
            skip_ws(&mut i);
            if i == token.len() || token[i] != b'=' {
                return Err(malformed("expected '=' after a directive name"));
            }
            i += 1;
            skip_ws(&mut i);
            let mut value = Vec::new();
            if i < token.len() && token[i] == b'"' {
                i += 1;
                loop {
                    match token.get(i) {
                        None => return Err(malformed("unterminated quoted string")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let c = *token.get(i + 1).ok_or_else(|| malformed("unterminated quoted string"))?;
                            value.push(c);
                            i += 2;
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
            } else {
                while i < token.len() && token[i] != b',' && !matches!(token[i], b' ' | b'\t' | b'\r' | b'\n') {
                    value.push(token[i]);
                    i += 1;
                }
            }
            skip_ws(&mut i);
            if i < token.len() && token[i] != b',' {
                return Err(malformed("expected ',' between directives"));
            }
            out.push((name, value));
        }
        Ok(Directives(out))
    }

    /// The value of a directive that may appear at most once.
    fn get(&self, name: &'static str) -> Result<Option<&[u8]>, DigestError> {
        let mut found = self.0.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.as_slice());
        if found.next().is_some() {
            return Err(DigestError::Malformed(format!("{name} given more than once")));
        }
        Ok(first)
    }

    /// The value of a directive that must appear exactly once.
    fn require(&self, name: &'static str) -> Result<&[u8], DigestError> {
        self.get(name)?.ok_or_else(|| DigestError::Malformed(format!("{name} missing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(name: &str) -> Option<String> {
        match name {
            "chris" => Some("secret".into()),
            "jaasuser" => Some("jaas_password".into()),
            _ => None,
        }
    }

    /// RFC 2831 section 4, the IMAP example.
    const RFC_RESPONSE: &str = "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
        nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
        digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,qop=auth";

    fn rfc_server() -> DigestMd5Server {
        DigestMd5Server::new("imap", "elwood.innosoft.com", "elwood.innosoft.com", "OA6MG9tEQGm2hh")
    }

    #[test]
    fn rfc_2831_example() {
        let mut s = rfc_server();
        let Step::Challenge(c) = s.step(b"", users).unwrap() else { panic!("expected a challenge") };
        let c = String::from_utf8(c).unwrap();
        assert!(c.contains("nonce=\"OA6MG9tEQGm2hh\""), "{c}");
        assert!(c.contains("realm=\"elwood.innosoft.com\""), "{c}");
        assert!(c.contains("algorithm=md5-sess"), "{c}");
        let done = s.step(RFC_RESPONSE.as_bytes(), users).unwrap();
        assert_eq!(done, Step::Complete { token: b"rspauth=ea40f60335c427b5527b84dbabcdfffd".to_vec(), user: "chris".into() });
        assert!(s.is_complete());
        assert_eq!(s.step(b"", users), Err(DigestError::AlreadyComplete));
    }

    /// A response computed by pure-sasl 0.6.2 (kazoo's SASL library) for
    /// jaasuser / jaas_password against a ZooKeeper-style challenge.
    #[test]
    fn pure_sasl_response() {
        let mut s = DigestMd5Server::new(ZK_SERVICE, ZK_SERVER_NAME, ZK_SERVER_NAME, "bm9uY2Vub25jZQ==");
        s.step(b"", users).unwrap();
        let resp = "qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"bm9uY2Vub25jZQ==\",\
            cnonce=\"847194152071231\",nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",\
            response=5fbfeceb9a65a7e93a5f7ee9edd57162";
        let step = s.step(resp.as_bytes(), users).unwrap();
        let token = b"rspauth=d6b67caf043ed2af3b7ed9ab05903053".to_vec();
        assert_eq!(step, Step::Complete { token, user: "jaasuser".into() });
    }

    /// The JDK client (ZooKeeper's Java client) sends an authzid, which
    /// enters A1; the authenticated id stays the user name.
    #[test]
    fn authzid_enters_a1() {
        let mut s = DigestMd5Server::new(ZK_SERVICE, ZK_SERVER_NAME, ZK_SERVER_NAME, "bm9uY2Vub25jZQ==");
        s.step(b"", users).unwrap();
        let resp = "charset=utf-8,username=\"jaasuser\",realm=\"zk-sasl-md5\",nonce=\"bm9uY2Vub25jZQ==\",\
            nc=00000001,cnonce=\"Y25vbmNl\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
            response=e8377bd8ba2fb193ffa2ac511fe83638,qop=auth,authzid=\"jaasuser\"";
        let step = s.step(resp.as_bytes(), users).unwrap();
        let token = b"rspauth=f4133fb4d2f3ce1386eb88caa45e5dc6".to_vec();
        assert_eq!(step, Step::Complete { token, user: "jaasuser".into() });
    }

    #[test]
    fn wrong_password_unknown_user_and_bad_syntax_fail() {
        let fails = |resp: &str| {
            let mut s = rfc_server();
            s.step(b"", users).unwrap();
            let r = s.step(resp.as_bytes(), users);
            assert!(s.is_complete(), "any answer to the challenge ends the exchange");
            r.unwrap_err()
        };
        let wrong = RFC_RESPONSE.replace("d388dad90d4bbd760a152321f2143af7", "d388dad90d4bbd760a152321f2143af8");
        assert_eq!(fails(&wrong), DigestError::WrongDigest("chris".into()));
        assert_eq!(fails(&RFC_RESPONSE.replace("\"chris\"", "\"bob\"")), DigestError::UnknownUser("bob".into()));
        assert!(matches!(fails(&RFC_RESPONSE.replace("OA6MG9tEQGm2hh", "other")), DigestError::Unacceptable { directive: "nonce", .. }));
        assert!(matches!(fails(&RFC_RESPONSE.replace("nc=00000001", "nc=00000002")), DigestError::Unacceptable { directive: "nc", .. }));
        assert!(matches!(fails(&RFC_RESPONSE.replace("qop=auth", "qop=auth-conf")), DigestError::Unacceptable { directive: "qop", .. }));
        assert!(matches!(fails(&RFC_RESPONSE.replace("imap/", "ldap/")), DigestError::Unacceptable { directive: "digest-uri", .. }));
        assert!(matches!(fails(&format!("{RFC_RESPONSE},nc=00000001")), DigestError::Malformed(_)));
        assert!(matches!(fails(&RFC_RESPONSE.replace(",response=d388dad90d4bbd760a152321f2143af7", "")), DigestError::Malformed(_)));
        for junk in ["", "=", "username", "username=\"open", "a=b c=d", "\u{0}\u{ff}", ",,,", "username=\"\\"] {
            assert!(matches!(fails(junk), DigestError::Malformed(_)), "{junk:?}");
        }
    }

    #[test]
    fn challenge_is_worded_as_zookeeper_s() {
        // ZooKeeper 3.8 answers even a non-empty first token with the challenge.
        let mut s = DigestMd5Server::for_zookeeper();
        let Step::Challenge(c) = s.step(b"username=x", users).unwrap() else { panic!("expected a challenge") };
        let c = String::from_utf8(c).unwrap();
        let nonce = c.strip_prefix("realm=\"zk-sasl-md5\",nonce=\"").and_then(|r| r.strip_suffix("\",charset=utf-8,algorithm=md5-sess"));
        assert_eq!(nonce.map(str::len), Some(40), "{c}");
        assert!(!s.is_complete());
    }

    #[test]
    fn parser_handles_whitespace_escapes_and_case() {
        let d = Directives::parse(b" UserName = \"a\\\"b\" ,, realm=\"\", nc=1 ").unwrap();
        assert_eq!(d.get("username").unwrap(), Some(b"a\"b".as_slice()));
        assert_eq!(d.get("realm").unwrap(), Some(b"".as_slice()));
        assert_eq!(d.require("nc").unwrap(), b"1");
        assert!(d.require("nonce").is_err());
    }

    #[test]
    fn random_tokens_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"abcnor=\",\\ -_0123456789\xff";
        for _ in 0..5000 {
            let mut s = rfc_server();
            s.step(b"", users).unwrap();
            let len = rng.gen_range(0..80);
            let token: Vec<u8> = (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
            let _ = s.step(&token, users);
            let mutated: Vec<u8> =
                RFC_RESPONSE.bytes().map(|b| if rng.gen_ratio(1, 20) { alphabet[rng.gen_range(0..alphabet.len())] } else { b }).collect();
            let mut s = rfc_server();
            s.step(b"", users).unwrap();
            let _ = s.step(&mutated, users);
        }
    }

    #[test]
    fn our_client_authenticates_to_our_server_both_ways() {
        let users = |u: &str| (u == "member").then(|| "quorum-secret".to_string());
        let mut server = DigestMd5Server::for_quorum();
        let mut client = DigestMd5Client::new("member", "quorum-secret", QUORUM_SERVICE, QUORUM_SERVER_NAME);
        let Step::Challenge(challenge) = server.step(b"", users).unwrap() else { panic!("no challenge") };
        let response = client.respond(&challenge).unwrap();
        let Step::Complete { token, user } = server.step(&response, users).unwrap() else { panic!("not complete") };
        assert_eq!(user, "member");
        client.verify(&token).unwrap();
        // A server that does not know the password cannot prove it does.
        assert!(client.verify(b"rspauth=00000000000000000000000000000000").is_err());

        // A wrong password is refused by the server.
        let mut server = DigestMd5Server::for_quorum();
        let mut wrong = DigestMd5Client::new("member", "guess", QUORUM_SERVICE, QUORUM_SERVER_NAME);
        let Step::Challenge(challenge) = server.step(b"", users).unwrap() else { panic!("no challenge") };
        let response = wrong.respond(&challenge).unwrap();
        assert!(matches!(server.step(&response, users), Err(DigestError::WrongDigest(_))));
        // Another service's digest-uri is refused as well.
        let mut server = DigestMd5Server::for_zookeeper();
        let mut other = DigestMd5Client::new("member", "quorum-secret", QUORUM_SERVICE, QUORUM_SERVER_NAME);
        let Step::Challenge(challenge) = server.step(b"", users).unwrap() else { panic!("no challenge") };
        let response = other.respond(&challenge).unwrap();
        assert!(server.step(&response, users).is_err());
    }
}
