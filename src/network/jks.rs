//! JKS stores (`ssl.*.type=JKS`, `.jks`): Java's own key store format,
//! the default before Java 9 and still what many ZooKeeper set-ups use.
//!
//! The format (Sun's `JavaKeyStore`): magic `FEEDFEED`, a version (1 or 2),
//! the entries (a private key with its certificate chain, or a trusted
//! certificate), then a SHA-1 over the password, "Mighty Aphrodite" and
//! everything before it. A private key is a PKCS#8 key XORed with a SHA-1
//! key stream from the password and a salt, with a SHA-1 check after it.

use ring::digest::{self, SHA1_FOR_LEGACY_USE_ONLY as SHA1};

use super::der::{dotted_oid, element, items, OCTET_STRING, OID, SEQUENCE};

const MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const PRIVATE_KEY: u32 = 1;
const TRUSTED_CERT: u32 = 2;
/// Sun's key protector, the only key encryption JKS has.
const KEY_PROTECTOR: &str = "1.3.6.1.4.1.42.2.17.1.1";
const DIGEST_LEN: usize = 20;

/// What a store holds: private keys (PKCS#8) with their chains (DER, leaf
/// first), and trusted certificates.
#[derive(Debug, Default)]
pub struct Contents {
    /// Each private key and its certificate chain.
    pub keys: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// Trusted certificates.
    pub trusted: Vec<Vec<u8>>,
}

type Result<T> = std::result::Result<T, String>;

/// Reads big-endian fields, every length checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            return Err("not a JKS store (it ends early)".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A certificate: its type name (version 2) and its DER.
    fn certificate(&mut self, version: u32) -> Result<Vec<u8>> {
        if version == 2 {
            let n = self.u16()? as usize;
            if self.take(n)? != b"X.509" {
                return Err("JKS certificate that is not X.509".into());
            }
        }
        Ok(self.bytes()?.to_vec())
    }
}

/// A password as JKS hashes it: UTF-16 big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Reads a JKS store; with a password, its integrity digest is checked
/// (Java reads a trust store without one too) and its keys decrypted.
pub fn read(bytes: &[u8], password: Option<&str>) -> Result<Contents> {
    let mut c = Cursor(bytes);
    match c.u32()? {
        MAGIC => {}
        JCEKS_MAGIC => return Err("JCEKS stores are not read: keytool -importkeystore -deststoretype PKCS12 converts it".into()),
        _ => return Err("not a JKS store".into()),
    }
    let version = c.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("JKS version {version} is not read"));
    }
    let count = c.u32()?;
    let mut out = Contents::default();
    for _ in 0..count {
        let tag = c.u32()?;
        let alias = c.u16()? as usize;
        c.take(alias + 8)?; // the alias and the date
        match tag {
            PRIVATE_KEY => {
                let protected = c.bytes()?;
                let chain = (0..c.u32()?).map(|_| c.certificate(version)).collect::<Result<Vec<_>>>()?;
                let key = match password {
                    Some(p) => unprotect(protected, p)?,
                    None => return Err("a JKS private key needs the store's password (ssl.keyStore.password)".into()),
                };
                out.keys.push((key, chain));
            }
            TRUSTED_CERT => out.trusted.push(c.certificate(version)?),
            other => return Err(format!("JKS entry type {other} is not read")),
        }
    }
    let signed = bytes.len() - c.0.len();
    let expected = c.take(DIGEST_LEN)?;
    if let Some(p) = password {
        let mut ctx = digest::Context::new(&SHA1);
        ctx.update(&password_bytes(p));
        ctx.update(b"Mighty Aphrodite");
        ctx.update(&bytes[..signed]);
        if ctx.finish().as_ref() != expected {
            return Err("wrong password, or a damaged store (its digest does not match)".into());
        }
    }
    Ok(out)
}

/// Decrypts a private key protected by Sun's key protector.
fn unprotect(der: &[u8], password: &str) -> Result<Vec<u8>> {
    let bad = || "not a JKS private key".to_string();
    let (SEQUENCE, info, _) = element(der).ok_or_else(bad)? else { return Err(bad()) };
    let info = items(info).ok_or_else(bad)?;
    let [(SEQUENCE, alg), (OCTET_STRING, data)] = info.as_slice() else { return Err(bad()) };
    let (OID, name, _) = element(alg).ok_or_else(bad)? else { return Err(bad()) };
    if dotted_oid(name).as_deref() != Some(KEY_PROTECTOR) {
        return Err("JKS key encryption other than Sun's key protector is not read".into());
    }
    if data.len() < 2 * DIGEST_LEN {
        return Err(bad());
    }
    let (salt, rest) = data.split_at(DIGEST_LEN);
    let (encrypted, check) = rest.split_at(rest.len() - DIGEST_LEN);
    let pw = password_bytes(password);
    let mut stream = salt.to_vec();
    let mut plain = Vec::with_capacity(encrypted.len());
    for block in encrypted.chunks(DIGEST_LEN) {
        let mut ctx = digest::Context::new(&SHA1);
        ctx.update(&pw);
        ctx.update(&stream);
        stream = ctx.finish().as_ref().to_vec();
        plain.extend(block.iter().zip(&stream).map(|(a, b)| a ^ b));
    }
    let mut ctx = digest::Context::new(&SHA1);
    ctx.update(&pw);
    ctx.update(&plain);
    if ctx.finish().as_ref() != check {
        return Err("wrong password for the JKS private key".into());
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_cut_stores_are_errors_not_panics() {
        let mut store = MAGIC.to_be_bytes().to_vec();
        store.extend(2u32.to_be_bytes());
        store.extend(u32::MAX.to_be_bytes()); // claims 4 billion entries
        assert!(read(&store, Some("x")).is_err());
        assert!(read(b"\xCE\xCE\xCE\xCE", None).unwrap_err().contains("JCEKS"));
        assert!(read(b"", None).is_err());
        assert!(unprotect(b"\x30\x00", "x").is_err());
    }
}
