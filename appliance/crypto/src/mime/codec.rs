//! Transfer encodings: base64 (RFC 2045 §6.8) and quoted-printable (§6.7, RFC 2047 "Q").

/// Base64 in lines of 76 characters, each ending in CRLF.
pub fn base64_wrapped(data: &[u8]) -> Vec<u8> {
    let encoded = openssl::base64::encode_block(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64")]
pub struct Base64Error;

/// Decodes base64, ignoring line breaks and other whitespace.
pub fn base64_decode(data: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let clean: String = data
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| char::from(*b))
        .collect();
    if clean.is_empty() {
        return Ok(Vec::new());
    }
    if !clean.is_ascii() || !clean.len().is_multiple_of(4) {
        return Err(Base64Error);
    }
    openssl::base64::decode_block(&clean).map_err(|_| Base64Error)
}

/// Decodes quoted-printable; malformed escapes are kept literally (RFC 2045 §6.7 note).
pub fn qp_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'=' {
            if data[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) = (
                data.get(i + 1).and_then(|c| hex(*c)),
                data.get(i + 2).and_then(|c| hex(*c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        // Trailing whitespace before a line break was added in transport (§6.7 rule 3).
        if (b == b' ' || b == b'\t') && {
            let rest = &data[i..];
            let ws = rest
                .iter()
                .take_while(|c| **c == b' ' || **c == b'\t')
                .count();
            rest[ws..].starts_with(b"\r\n") || ws == rest.len()
        } {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// RFC 2047 "Q" encoding: like quoted-printable, `_` is a space.
pub(super) fn q_decode(data: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = data
        .iter()
        .map(|b| if *b == b'_' { b' ' } else { *b })
        .collect();
    qp_decode(&spaced)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Converts bare LF and bare CR line ends to CRLF (canonical form, RFC 5751 §3.1.1).
pub fn canonicalize(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}
