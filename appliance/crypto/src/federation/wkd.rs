//! The OpenPGP Web Key Directory (draft-koch-openpgp-webkey-service): where a key is
//! looked up (advanced method at `openpgpkey.DOMAIN`, then the direct method at `DOMAIN`),
//! the hashed local part, and the policy file, which carries the domain's encryption
//! policy in keys of our own (`mailenc-mode`, `mailenc-max-age`; the draft tells clients to
//! ignore keys they do not know).

use super::DomainPolicy;

/// RFC 6189's z-base-32 alphabet, which WKD uses.
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// z-base-32 of `data` (no padding).
pub fn zbase32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ZBASE32[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ZBASE32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The hashed local part of a WKD URL: z-base-32 of the SHA-1 of the lower-cased local part.
pub fn hashed_local(local: &str) -> String {
    zbase32(&openssl::sha::sha1(local.to_ascii_lowercase().as_bytes()))
}

/// Percent-encodes the local part for the `l=` parameter.
fn query_value(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a key of `local@domain` is looked up: the advanced method's URL, then the direct
/// method's.
pub fn key_urls(local: &str, domain: &str) -> [String; 2] {
    let d = domain.to_ascii_lowercase();
    let (h, l) = (hashed_local(local), query_value(local));
    [
        format!("https://openpgpkey.{d}/.well-known/openpgpkey/{d}/hu/{h}?l={l}"),
        format!("https://{d}/.well-known/openpgpkey/hu/{h}?l={l}"),
    ]
}

/// Where the policy file of `domain` is: advanced, then direct.
pub fn policy_urls(domain: &str) -> [String; 2] {
    let d = domain.to_ascii_lowercase();
    [
        format!("https://openpgpkey.{d}/.well-known/openpgpkey/{d}/policy"),
        format!("https://{d}/.well-known/openpgpkey/policy"),
    ]
}

/// What a request to a WKD server asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A key by hashed local part; `domain` is named by the advanced method's path (the
    /// direct method names it by the host).
    Key {
        domain: Option<String>,
        hash: String,
    },
    Policy {
        domain: Option<String>,
    },
}

/// Reads the path of a request under `/.well-known/openpgpkey/` (without the query).
pub fn parse_path(path: &str) -> Option<Request> {
    let rest = path.strip_prefix("/.well-known/openpgpkey/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let valid_hash = |h: &str| h.len() == 32 && h.bytes().all(|c| ZBASE32.contains(&c));
    let valid_domain = |d: &str| super::valid_domain(d);
    match parts.as_slice() {
        ["hu", h] if valid_hash(h) => Some(Request::Key {
            domain: None,
            hash: (*h).to_owned(),
        }),
        ["policy"] => Some(Request::Policy { domain: None }),
        [d, "hu", h] if valid_domain(d) && valid_hash(h) => Some(Request::Key {
            domain: Some(d.to_ascii_lowercase()),
            hash: (*h).to_owned(),
        }),
        [d, "policy"] if valid_domain(d) => Some(Request::Policy {
            domain: Some(d.to_ascii_lowercase()),
        }),
        _ => None,
    }
}

/// The policy file: `protocol-version` and, when the domain publishes one, its encryption
/// policy and domain key fingerprint.
pub fn render_policy(policy: Option<&DomainPolicy>, fingerprint: Option<&str>) -> String {
    let mut out =
        String::from("# OpenPGP Web Key Directory policy (Postern)\nprotocol-version: 5\n");
    if let Some(p) = policy {
        out.push_str(&format!(
            "mailenc-mode: {}\nmailenc-max-age: {}\n",
            p.mode.as_str(),
            p.max_age
        ));
    }
    if let Some(f) = fingerprint {
        out.push_str(&format!("mailenc-domain-key: {f}\n"));
    }
    out
}

/// The encryption policy and domain key fingerprint a policy file carries, if any.
pub fn parse_policy(text: &str) -> (Option<DomainPolicy>, Option<String>) {
    let (mut mode, mut max_age, mut fpr) = (None, None, None);
    for line in text.lines().take(200) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "mailenc-mode" => mode = Some(v.trim().to_owned()),
            "mailenc-max-age" => max_age = Some(v.trim().to_owned()),
            "mailenc-domain-key" => {
                let f = v.trim().to_ascii_uppercase();
                if f.len() == 40 && f.bytes().all(|c| c.is_ascii_hexdigit()) {
                    fpr = Some(f);
                }
            }
            _ => {}
        }
    }
    let policy = match (mode, max_age) {
        (Some(m), Some(a)) => DomainPolicy::parse(&m, &a),
        _ => None,
    };
    (policy, fpr)
}
