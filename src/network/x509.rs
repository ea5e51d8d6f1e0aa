//! The identity a TLS client certificate gives its session: `x509:` and the
//! certificate's subject as ZooKeeper's X509AuthenticationProvider names it,
//! the distinguished name in RFC 2253 form (Java's `X500Principal.getName()`:
//! last RDN first, `CN=client,O=example`). ACLs of the `x509` scheme, and
//! `auth` ACLs set over TLS, match it.
//!
//! The certificate has already been verified by the TLS handshake; this only
//! reads its subject, with every length checked (it still came from the network).

use super::der::{dotted_oid, element, OID, SEQUENCE, SET};

/// The subject of a DER certificate in RFC 2253 form; None if it cannot be read.
pub fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, cert, _) = element(cert)? else { return None };
    let (SEQUENCE, tbs, _) = element(cert)? else { return None };
    let mut fields = tbs;
    // [0] version (optional), serialNumber, signature, issuer, validity, subject
    if fields.first() == Some(&0xa0) {
        fields = element(fields)?.2;
    }
    for _ in 0..4 {
        fields = element(fields)?.2;
    }
    let (SEQUENCE, mut rdns, _) = element(fields)? else { return None };
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (SET, mut set, rest) = element(rdns)? else { return None };
        rdns = rest;
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (SEQUENCE, ava, rest) = element(set)? else { return None };
            set = rest;
            let (OID, oid, value) = element(ava)? else { return None };
            avas.push(attribute(oid, value)?);
        }
        parts.push(avas.join("+"));
    }
    parts.reverse();
    Some(parts.join(","))
}

/// `TYPE=value`: a keyword and the escaped string, or the dotted OID and
/// `#` with the value's DER in hex, as Java writes RFC 2253 names.
fn attribute(oid: &[u8], value_der: &[u8]) -> Option<String> {
    let dotted = dotted_oid(oid)?;
    let keyword = match dotted.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.9" => Some("STREET"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    let (tag, contents, _) = element(value_der)?;
    match (keyword, text(tag, contents)) {
        (Some(keyword), Some(text)) => Some(format!("{keyword}={}", escape(&text))),
        _ => {
            let whole = &value_der[..value_der.len() - element(value_der)?.2.len()];
            let hex: String = whole.iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("{}=#{hex}", keyword.map_or(dotted, str::to_string)))
        }
    }
}

/// The text of a DER string type; None for anything else.
fn text(tag: u8, contents: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        0x0c | 0x13 | 0x16 | 0x1a => String::from_utf8(contents.to_vec()).ok(),
        // TeletexString, read as Latin-1
        0x14 => Some(contents.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16 big-endian
        0x1e if contents.len().is_multiple_of(2) => {
            let units: Vec<u16> = contents.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping: the special characters anywhere, `#` first, spaces at either end.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special =
            matches!(c, ',' | '=' | '+' | '<' | '>' | ';' | '"' | '\\') || (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate skeleton with this subject (RDNs as (OID bytes, value TLV)).
    fn cert_with_subject(rdns: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
        let mut name = Vec::new();
        for (oid, value) in rdns {
            let ava = [tlv(OID, oid), value.clone()].concat();
            name.extend(tlv(SET, &tlv(SEQUENCE, &ava)));
        }
        let tbs = [
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &name),
        ]
        .concat();
        tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
    }

    #[test]
    fn names_the_test_client_as_java_does() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/tls/client.crt");
        let cert = CertificateDer::from_pem_file(path).unwrap();
        // As ZooKeeper 3.8's whoami shows it over TLS with this certificate.
        assert_eq!(subject_rfc2253(&cert).as_deref(), Some("CN=paddock-test-client,O=paddock"));
    }

    #[test]
    fn escapes_and_unknown_attributes() {
        const CN: &[u8] = &[0x55, 0x04, 0x03];
        const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
        let cert = cert_with_subject(&[(EMAIL, tlv(0x16, b"a@b")), (CN, tlv(0x0c, b"#Smith, J+r "))]);
        assert_eq!(subject_rfc2253(&cert).as_deref(), Some("CN=\\#Smith\\, J\\+r\\ ,1.2.840.113549.1.9.1=#1603614062"));
        let bmp = cert_with_subject(&[(CN, tlv(0x1e, &[0, b'h', 0, b'i']))]);
        assert_eq!(subject_rfc2253(&bmp).as_deref(), Some("CN=hi"));
    }

    #[test]
    fn truncated_or_garbage_is_none() {
        let cert = cert_with_subject(&[(&[0x55, 0x04, 0x03], tlv(0x0c, b"x"))]);
        for cut in 0..cert.len() {
            let _ = subject_rfc2253(&cert[..cut]);
        }
        assert_eq!(subject_rfc2253(&cert[..cert.len() - 1]), None);
        assert_eq!(subject_rfc2253(&[0xff, 0xff, 0xff]), None);
        assert_eq!(subject_rfc2253(&[]), None);
    }
}
