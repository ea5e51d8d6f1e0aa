//! Just enough DER to walk certificates and key stores: one element at a
//! time, every length checked against the bytes there (key stores and
//! certificates come from disk or the network, never trusted).

/// `SEQUENCE`.
pub const SEQUENCE: u8 = 0x30;
/// `SET`.
pub const SET: u8 = 0x31;
/// `OBJECT IDENTIFIER`.
pub const OID: u8 = 0x06;
/// `OCTET STRING`.
pub const OCTET_STRING: u8 = 0x04;
/// `INTEGER`.
pub const INTEGER: u8 = 0x02;
/// `[0]`, constructed (an explicit tag).
pub const CONTEXT_0: u8 = 0xa0;
/// `[0]`, primitive (an implicit OCTET STRING).
pub const CONTEXT_0_PRIMITIVE: u8 = 0x80;

/// One DER element: (tag, contents, the bytes after it); None if `der`
/// does not start with a whole element of a single-byte tag.
pub fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags occur in none of what is read here
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (first as usize, rest),
        0x81..=0x84 => {
            let n = (first & 0x7f) as usize;
            let bytes = rest.get(..n)?;
            (bytes.iter().fold(0usize, |len, b| (len << 8) | *b as usize), &rest[n..])
        }
        _ => return None,
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, &rest[len..]))
}

/// The contents of an element that must have tag `tag`, and what follows.
pub fn expect(tag: u8, der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = element(der)?;
    (t == tag).then_some((contents, rest))
}

/// The elements of a SEQUENCE's or SET's contents, in order.
pub fn items(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = element(contents)?;
        out.push((tag, value));
        contents = rest;
    }
    Some(out)
}

/// A non-negative INTEGER's contents as a number (None if it does not fit).
pub fn small_uint(contents: &[u8]) -> Option<u64> {
    let digits = match contents {
        [0, rest @ ..] => rest,
        [first, ..] if first & 0x80 != 0 => return None,
        all => all,
    };
    (digits.len() <= 8).then(|| digits.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
}

/// An OBJECT IDENTIFIER's contents as dotted decimal.
pub fn dotted_oid(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if arcs.is_empty() || oid.last().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    Some(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_refuses_what_runs_short() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff, 0x00];
        let (tag, contents, rest) = element(&der).expect("sequence");
        assert_eq!((tag, rest), (SEQUENCE, &[0u8][..]));
        let inner = items(contents).expect("items");
        assert_eq!(inner, vec![(INTEGER, &[5u8][..]), (OCTET_STRING, &[0xffu8][..])]);
        assert_eq!(small_uint(&[0x00, 0x80]), Some(128));
        assert_eq!(small_uint(&[0x80]), None);
        assert!(element(&[0x30, 0x05, 0x01]).is_none());
        assert!(element(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
        assert!(element(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert_eq!(dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]).as_deref(), Some("1.2.840.113549.1.7.1"));
    }
}
