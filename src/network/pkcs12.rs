//! PKCS#12 stores (`ssl.*.type=PKCS12`, `.p12`/`.pfx`): Java's default
//! key store type since Java 9, and what `openssl pkcs12 -export` writes.
//!
//! Read as Java 17's keytool and OpenSSL 3 write them (RFC 7292): the
//! integrity MAC (HMAC-SHA-256 or -SHA-1, keyed by the PKCS#12 key
//! derivation from the password), and PBES2 encryption (PBKDF2 with
//! HMAC-SHA-256 or -SHA-1, AES-128/256-CBC) of the key and certificate
//! bags. The 3DES and RC2 encryption of older keytools is refused with
//! how to re-create the store.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use ring::{digest, hmac, pbkdf2};

use super::der::{dotted_oid, element, expect, items, small_uint, CONTEXT_0, CONTEXT_0_PRIMITIVE, OCTET_STRING, OID, SEQUENCE, SET};

const DATA: &str = "1.2.840.113549.1.7.1";
const ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const KEY_BAG: &str = "1.2.840.113549.1.12.10.1.1";
const SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const X509_CERTIFICATE: &str = "1.2.840.113549.1.9.22.1";
const LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";
const PBES2: &str = "1.2.840.113549.1.5.13";
const PBKDF2: &str = "1.2.840.113549.1.5.12";
const LEGACY_PBE: &str = "1.2.840.113549.1.12.1.";
const HMAC_SHA1: &str = "1.2.840.113549.2.7";
const HMAC_SHA256: &str = "1.2.840.113549.2.9";
const AES128_CBC: &str = "2.16.840.1.101.3.4.1.2";
const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// What a store holds: private keys (PKCS#8) and certificates (DER), each
/// with its `localKeyId`, which pairs a key with its certificate.
#[derive(Debug, Default)]
pub struct Contents {
    /// Private keys, decrypted.
    pub keys: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Certificates.
    pub certs: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

type Result<T> = std::result::Result<T, String>;

fn malformed(what: &str) -> String {
    format!("not a PKCS#12 store ({what} unreadable)")
}

/// The contents of a DER element that must be `tag`.
fn need<'a>(tag: u8, der: &'a [u8], what: &str) -> Result<&'a [u8]> {
    expect(tag, der).map(|(c, _)| c).ok_or_else(|| malformed(what))
}

/// The elements of a SEQUENCE (or SET) element that must be `tag`.
fn fields<'a>(tag: u8, der: &'a [u8], what: &str) -> Result<Vec<(u8, &'a [u8])>> {
    items(need(tag, der, what)?).ok_or_else(|| malformed(what))
}

fn oid(tag: u8, contents: &[u8], what: &str) -> Result<String> {
    if tag != OID {
        return Err(malformed(what));
    }
    dotted_oid(contents).ok_or_else(|| malformed(what))
}

/// Reads a PKCS#12 store with `password` (the MAC is checked when present).
pub fn read(der: &[u8], password: &str) -> Result<Contents> {
    let pfx = fields(SEQUENCE, der, "PFX")?;
    let [(_, _version), (SEQUENCE, auth_safe), rest @ ..] = pfx.as_slice() else { return Err(malformed("PFX")) };
    let auth_safe = items(auth_safe).ok_or_else(|| malformed("authSafe"))?;
    let [(t, content_type), (CONTEXT_0, content)] = auth_safe.as_slice() else { return Err(malformed("authSafe")) };
    if oid(*t, content_type, "authSafe")? != DATA {
        return Err("signed (public-key integrity) PKCS#12 stores are not read".into());
    }
    let safes = need(OCTET_STRING, content, "authSafe data")?;
    match rest {
        [(SEQUENCE, mac_data)] => verify_mac(mac_data, safes, password)?,
        [] => {}
        _ => return Err(malformed("macData")),
    }
    let mut out = Contents::default();
    for (tag, info) in items(need(SEQUENCE, safes, "AuthenticatedSafe")?).ok_or_else(|| malformed("AuthenticatedSafe"))? {
        if tag != SEQUENCE {
            return Err(malformed("ContentInfo"));
        }
        let info = items(info).ok_or_else(|| malformed("ContentInfo"))?;
        let [(t, kind), (CONTEXT_0, content)] = info.as_slice() else { return Err(malformed("ContentInfo")) };
        let bags = match oid(*t, kind, "ContentInfo")?.as_str() {
            DATA => need(OCTET_STRING, content, "data")?.to_vec(),
            ENCRYPTED_DATA => decrypt_data(content, password)?,
            other => return Err(format!("PKCS#12 content {other} is not read")),
        };
        read_bags(&bags, password, &mut out)?;
    }
    Ok(out)
}

/// Checks the store's MAC: a wrong password (or damage) stops here.
fn verify_mac(mac_data: &[u8], safes: &[u8], password: &str) -> Result<()> {
    let mac = items(mac_data).ok_or_else(|| malformed("macData"))?;
    let (digest_info, salt, iterations) = match mac.as_slice() {
        [(SEQUENCE, d), (OCTET_STRING, s)] => (*d, *s, 1),
        [(SEQUENCE, d), (OCTET_STRING, s), (_, i)] => (*d, *s, small_uint(i).ok_or_else(|| malformed("MAC iterations"))?),
        _ => return Err(malformed("macData")),
    };
    let digest_info = items(digest_info).ok_or_else(|| malformed("DigestInfo"))?;
    let [(SEQUENCE, alg), (OCTET_STRING, expected)] = digest_info.as_slice() else { return Err(malformed("DigestInfo")) };
    let (t, hash, _) = element(alg).ok_or_else(|| malformed("MAC algorithm"))?;
    let (hash, mac_alg) = match oid(t, hash, "MAC algorithm")?.as_str() {
        SHA256 => (&digest::SHA256, hmac::HMAC_SHA256),
        SHA1 => (&digest::SHA1_FOR_LEGACY_USE_ONLY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        other => return Err(format!("PKCS#12 MAC digest {other} is not read")),
    };
    let iterations = u32::try_from(iterations).map_err(|_| malformed("MAC iterations"))?;
    let key = pkcs12_kdf(hash, &bmp_password(password), salt, 3, iterations, hash.output_len());
    hmac::verify(&hmac::Key::new(mac_alg, &key), safes, expected)
        .map_err(|_| "wrong password, or a damaged store (its MAC does not match)".to_string())
}

/// A password as PKCS#12 keys its MAC with: UTF-16 big-endian, two zero bytes after.
fn bmp_password(password: &str) -> Vec<u8> {
    password.encode_utf16().chain([0]).flat_map(u16::to_be_bytes).collect()
}

/// RFC 7292's key derivation (appendix B.2), `id` 3 for MAC keys.
fn pkcs12_kdf(hash: &'static digest::Algorithm, password: &[u8], salt: &[u8], id: u8, iterations: u32, n: usize) -> Vec<u8> {
    let v = hash.block_len();
    let fill = |s: &[u8]| -> Vec<u8> {
        if s.is_empty() {
            return Vec::new();
        }
        s.iter().cycle().take(v * s.len().div_ceil(v)).copied().collect()
    };
    let mut i: Vec<u8> = fill(salt);
    i.extend(fill(password));
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut ctx = digest::Context::new(hash);
        ctx.update(&vec![id; v]);
        ctx.update(&i);
        let mut a = ctx.finish().as_ref().to_vec();
        for _ in 1..iterations {
            a = digest::digest(hash, &a).as_ref().to_vec();
        }
        out.extend_from_slice(&a);
        let b: Vec<u8> = a.iter().cycle().take(v).copied().collect();
        // Each v-byte block of I becomes I_j + B + 1 (mod 2^(8v)).
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

/// The decrypted SafeContents of an EncryptedData.
fn decrypt_data(content: &[u8], password: &str) -> Result<Vec<u8>> {
    let data = fields(SEQUENCE, content, "EncryptedData")?;
    let [_, (SEQUENCE, info)] = data.as_slice() else { return Err(malformed("EncryptedData")) };
    let info = items(info).ok_or_else(|| malformed("EncryptedContentInfo"))?;
    let [_, (SEQUENCE, alg), (tag, encrypted)] = info.as_slice() else { return Err(malformed("EncryptedContentInfo")) };
    let encrypted = match *tag {
        CONTEXT_0_PRIMITIVE => encrypted.to_vec(),
        // BER writers may split it into OCTET STRING pieces.
        CONTEXT_0 => {
            let pieces = items(encrypted).ok_or_else(|| malformed("encryptedContent"))?;
            pieces.iter().flat_map(|(_, p)| p.iter().copied()).collect()
        }
        _ => return Err(malformed("encryptedContent")),
    };
    decrypt(alg, &encrypted, password)
}

/// Decrypts with the algorithm an AlgorithmIdentifier's contents name.
fn decrypt(alg: &[u8], encrypted: &[u8], password: &str) -> Result<Vec<u8>> {
    let alg = items(alg).ok_or_else(|| malformed("encryption algorithm"))?;
    let [(t, name), (SEQUENCE, params)] = alg.as_slice() else { return Err(malformed("encryption algorithm")) };
    let name = oid(*t, name, "encryption algorithm")?;
    if name.starts_with(LEGACY_PBE) {
        return Err("encrypted with 3DES or RC2 (a Java 8 keytool, or openssl -legacy): re-create it with Java 11+ keytool \
                    (keytool -importkeystore) or OpenSSL 3's openssl pkcs12 -export, or use PEM"
            .into());
    }
    if name != PBES2 {
        return Err(format!("PKCS#12 encryption {name} is not read"));
    }
    let params = items(params).ok_or_else(|| malformed("PBES2 parameters"))?;
    let [(SEQUENCE, kdf), (SEQUENCE, scheme)] = params.as_slice() else { return Err(malformed("PBES2 parameters")) };
    let kdf = items(kdf).ok_or_else(|| malformed("key derivation"))?;
    let [(t, kdf_name), (SEQUENCE, kdf_params)] = kdf.as_slice() else { return Err(malformed("key derivation")) };
    if oid(*t, kdf_name, "key derivation")? != PBKDF2 {
        return Err("PBES2 without PBKDF2 is not read".into());
    }
    let kdf_params = items(kdf_params).ok_or_else(|| malformed("PBKDF2 parameters"))?;
    let [(OCTET_STRING, salt), (_, iterations), more @ ..] = kdf_params.as_slice() else {
        return Err(malformed("PBKDF2 parameters"));
    };
    let iterations = small_uint(iterations).and_then(|i| std::num::NonZeroU32::new(u32::try_from(i).ok()?));
    let iterations = iterations.ok_or_else(|| malformed("PBKDF2 iterations"))?;
    // The PRF comes last when given; HMAC-SHA-1 when not.
    let prf = match more.iter().find(|(tag, _)| *tag == SEQUENCE) {
        None => pbkdf2::PBKDF2_HMAC_SHA1,
        Some((_, prf)) => {
            let (t, prf, _) = element(prf).ok_or_else(|| malformed("PBKDF2 PRF"))?;
            match oid(t, prf, "PBKDF2 PRF")?.as_str() {
                HMAC_SHA256 => pbkdf2::PBKDF2_HMAC_SHA256,
                HMAC_SHA1 => pbkdf2::PBKDF2_HMAC_SHA1,
                other => return Err(format!("PBKDF2 with {other} is not read")),
            }
        }
    };
    let scheme = items(scheme).ok_or_else(|| malformed("cipher"))?;
    let [(t, cipher), (OCTET_STRING, iv)] = scheme.as_slice() else { return Err(malformed("cipher")) };
    let key_len = match oid(*t, cipher, "cipher")?.as_str() {
        AES256_CBC => 32,
        AES128_CBC => 16,
        other => return Err(format!("cipher {other} is not read (AES-CBC is)")),
    };
    let mut key = vec![0u8; key_len];
    pbkdf2::derive(prf, iterations, salt, password.as_bytes(), &mut key);
    let wrong = |_| "wrong password, or a damaged store (it does not decrypt)".to_string();
    let mut buf = encrypted.to_vec();
    let plain = if key_len == 32 {
        cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv)
            .map_err(|_| malformed("AES parameters"))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(wrong)?
            .len()
    } else {
        cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, iv)
            .map_err(|_| malformed("AES parameters"))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(wrong)?
            .len()
    };
    buf.truncate(plain);
    Ok(buf)
}

/// Decrypts a PKCS#8 EncryptedPrivateKeyInfo (a shrouded key bag's value,
/// or a PEM file's `ENCRYPTED PRIVATE KEY`) to the private key inside.
pub fn decrypt_private_key(der: &[u8], password: &str) -> Result<Vec<u8>> {
    let info = fields(SEQUENCE, der, "encrypted private key")?;
    let [(SEQUENCE, alg), (OCTET_STRING, encrypted)] = info.as_slice() else {
        return Err(malformed("encrypted private key"));
    };
    let key = decrypt(alg, encrypted, password)?;
    // A wrong password can still end in valid padding (1 in 256): what it
    // gives is not one DER element.
    match element(&key) {
        Some((SEQUENCE, _, [])) => Ok(key),
        _ => Err("wrong password, or a damaged key (it does not decrypt)".into()),
    }
}

/// Collects the keys and certificates of one SafeContents.
fn read_bags(der: &[u8], password: &str, out: &mut Contents) -> Result<()> {
    for (tag, bag) in fields(SEQUENCE, der, "SafeContents")? {
        if tag != SEQUENCE {
            return Err(malformed("SafeBag"));
        }
        let bag = items(bag).ok_or_else(|| malformed("SafeBag"))?;
        let [(t, kind), (CONTEXT_0, value), attributes @ ..] = bag.as_slice() else { return Err(malformed("SafeBag")) };
        let local_id = match attributes {
            [(SET, attrs)] => local_key_id(attrs)?,
            _ => None,
        };
        match oid(*t, kind, "SafeBag")?.as_str() {
            KEY_BAG => {
                let (_, _, after) = element(value).ok_or_else(|| malformed("key bag"))?;
                out.keys.push((value[..value.len() - after.len()].to_vec(), local_id));
            }
            SHROUDED_KEY_BAG => out.keys.push((decrypt_private_key(value, password)?, local_id)),
            CERT_BAG => {
                let cert = fields(SEQUENCE, value, "certificate bag")?;
                let [(t, cert_kind), (CONTEXT_0, cert)] = cert.as_slice() else { return Err(malformed("certificate bag")) };
                if oid(*t, cert_kind, "certificate bag")? == X509_CERTIFICATE {
                    out.certs.push((need(OCTET_STRING, cert, "certificate")?.to_vec(), local_id));
                }
            }
            // Secret and CRL bags, nested SafeContents: nothing TLS uses.
            _ => {}
        }
    }
    Ok(())
}

/// The `localKeyId` among a bag's attributes.
fn local_key_id(attrs: &[u8]) -> Result<Option<Vec<u8>>> {
    for (tag, attr) in items(attrs).ok_or_else(|| malformed("bag attributes"))? {
        let attr = items(attr).ok_or_else(|| malformed("bag attribute"))?;
        if let (SEQUENCE, [(t, name), (SET, values)]) = (tag, attr.as_slice()) {
            if oid(*t, name, "bag attribute")? == LOCAL_KEY_ID {
                return Ok(element(values).filter(|(t, _, _)| *t == OCTET_STRING).map(|(_, id, _)| id.to_vec()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_key_derivation_matches_rfc_7292_test_vectors() {
        // The "smeg" vector of BouncyCastle's PKCS#12 tests (SHA-1, an encryption key).
        let salt = [0x0A, 0x58, 0xCF, 0x64, 0x53, 0x0D, 0x82, 0x3F];
        let key = pkcs12_kdf(&digest::SHA1_FOR_LEGACY_USE_ONLY, &bmp_password("smeg"), &salt, 1, 1, 24);
        let hex: String = key.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3");
        // SHA-256, 1,000 iterations, a MAC key (id 3): from `openssl kdf PKCS12KDF`.
        let key = pkcs12_kdf(&digest::SHA256, &bmp_password("smeg"), &salt, 3, 1000, 32);
        let hex: String = key.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "35AC16A454D608FB10C8D7C6338CA85818587AED0FF771FD265957E412C2C03C");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\x30\x03\x02\x01\x03", b"\x30\x80", &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]] {
            assert!(read(bytes, "x").is_err());
        }
    }
}
