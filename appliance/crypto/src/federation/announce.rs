//! The in-band announcement: a header on every outbound message of a domain with a domain
//! key, in the spirit of Autocrypt's, but for the gateway: the domain, its policy, its
//! current (and during a rollover, next) OpenPGP domain keys, and a detached signature by
//! the current key over all of it, so a relay cannot alter the policy or swap the key
//! without breaking the signature. Seen from a partner it is trust on first use: it never
//! overrides what DNSSEC or WKD said ([`super::pin`]).
//!
//! ```text
//! Mailenc-Domain-Key: v=1; d=corp.example; m=enforce; a=604800; t=1764860000;
//!  k=<base64 binary key>[,<base64 binary key>]; s=<base64 detached signature>
//! ```
//! Whitespace inside `k` and `s` is folding and removed before decoding. The signature
//! covers `v=1; d=…; m=…; a=…; t=…; k=<SHA-256 hex of each key, comma separated>`.

use std::time::{Duration, SystemTime};

use super::{DomainPolicy, Mode, domain_key_address};
use crate::pgp::{self, PgpCert, PgpError};

/// The header's name.
pub const HEADER: &str = "Mailenc-Domain-Key";
/// The largest header value read (a few keys fit in well under this).
pub const MAX_VALUE: usize = 16 * 1024;
/// At most this many keys (current, next, and one spare).
pub const MAX_KEYS: usize = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnounceError {
    #[error("the announcement is larger than {MAX_VALUE} bytes")]
    TooLarge,
    #[error("the announcement is malformed: {0}")]
    Malformed(String),
    #[error("announcement version {0:?} is not 1")]
    Version(String),
    #[error("an announced key is unusable: {0}")]
    Key(String),
    #[error("the announced key is not {0}'s domain key")]
    NotTheDomainKey(String),
    #[error("the announcement's signature does not verify: {0}")]
    Signature(String),
    #[error("the announcement is dated in the future")]
    FromTheFuture,
}

/// A verified announcement.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub domain: String,
    pub policy: Option<DomainPolicy>,
    /// When the sender made it (seconds since the epoch).
    pub time: u64,
    /// The domain's keys, public only; the first signed the announcement.
    pub keys: Vec<PgpCert>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn canonical(domain: &str, policy: Option<&DomainPolicy>, time: u64, keys: &[Vec<u8>]) -> String {
    let (mode, age) = match policy {
        Some(p) => (p.mode.as_str(), p.max_age.to_string()),
        None => ("none", "0".to_owned()),
    };
    let digests: Vec<String> = keys
        .iter()
        .map(|k| {
            openssl::sha::sha256(k)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    format!(
        "v=1; d={domain}; m={mode}; a={age}; t={time}; k={}",
        digests.join(",")
    )
}

/// The header value announcing `domain`'s `keys` (public; the first is `signer`'s) and
/// `policy`, signed by `signer` (the current key, with its secret), folded for a header.
pub fn build(
    domain: &str,
    policy: Option<&DomainPolicy>,
    keys: &[PgpCert],
    signer: &PgpCert,
    now: SystemTime,
) -> Result<String, PgpError> {
    let domain = domain.to_ascii_lowercase();
    let bytes: Vec<Vec<u8>> = keys.iter().map(pgp::public_bytes).collect();
    let time = secs(now);
    let signed = canonical(&domain, policy, time, &bytes);
    let sig = pgp::sign_detached(signed.as_bytes(), signer, now)?;
    let (mode, age) = match policy {
        Some(p) => (p.mode.as_str(), p.max_age),
        None => ("none", 0),
    };
    let encoded: Vec<String> = bytes
        .iter()
        .map(|k| openssl::base64::encode_block(k))
        .collect();
    let value = format!(
        "v=1; d={domain}; m={mode}; a={age}; t={time}; k={}; s={}",
        encoded.join(","),
        openssl::base64::encode_block(&sig)
    );
    Ok(fold(&value))
}

/// Folds a long value into lines of at most 76 characters (continuation lines start with a
/// space; the reader removes all whitespace inside the base64 fields).
fn fold(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 70 * 3);
    let mut col = HEADER.len() + 2;
    for c in value.chars() {
        if col >= 76 && c != ' ' {
            out.push_str("\r\n ");
            col = 1;
        }
        out.push(c);
        col += 1;
    }
    out
}

/// Reads and verifies an announcement header's value (raw, possibly folded).
pub fn parse(value: &[u8], now: SystemTime) -> Result<Announcement, AnnounceError> {
    if value.len() > MAX_VALUE {
        return Err(AnnounceError::TooLarge);
    }
    let text =
        std::str::from_utf8(value).map_err(|_| AnnounceError::Malformed("not UTF-8".into()))?;
    let mut fields = std::collections::BTreeMap::new();
    for field in text.split(';') {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| AnnounceError::Malformed(format!("field {field:.20?} has no value")))?;
        let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        if fields.insert(k.trim().to_owned(), v).is_some() {
            return Err(AnnounceError::Malformed(format!("field {k} twice")));
        }
    }
    let get = |k: &str| {
        fields
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| AnnounceError::Malformed(format!("no {k}=")))
    };
    if get("v")? != "1" {
        return Err(AnnounceError::Version(get("v")?.to_owned()));
    }
    let domain = get("d")?.to_ascii_lowercase();
    if !super::valid_domain(&domain) {
        return Err(AnnounceError::Malformed("d= is not a domain".into()));
    }
    let policy = match get("m")? {
        "none" => None,
        m => Some(
            DomainPolicy::parse(m, get("a")?)
                .ok_or_else(|| AnnounceError::Malformed("m= or a= out of range".into()))?,
        ),
    };
    let time: u64 = get("t")?
        .parse()
        .map_err(|_| AnnounceError::Malformed("t= is not a time".into()))?;
    if time > secs(now + Duration::from_secs(86_400)) {
        return Err(AnnounceError::FromTheFuture);
    }
    let mut bytes = Vec::new();
    for k in get("k")?.split(',') {
        let b = openssl::base64::decode_block(k)
            .map_err(|_| AnnounceError::Malformed("k= is not base64".into()))?;
        bytes.push(b);
    }
    if bytes.is_empty() || bytes.len() > MAX_KEYS {
        return Err(AnnounceError::Malformed(format!(
            "{} keys (1 to {MAX_KEYS})",
            bytes.len()
        )));
    }
    let address = domain_key_address(&domain);
    let mut keys = Vec::new();
    for b in &bytes {
        let cert = pgp::parse_cert(b).map_err(|e| AnnounceError::Key(e.to_string()))?;
        if cert.is_tsk() {
            return Err(AnnounceError::Key("it carries secret key material".into()));
        }
        if !pgp::cert_emails(&cert, now).contains(&address) {
            return Err(AnnounceError::NotTheDomainKey(domain.clone()));
        }
        keys.push(cert);
    }
    let sig = openssl::base64::decode_block(get("s")?)
        .map_err(|_| AnnounceError::Malformed("s= is not base64".into()))?;
    let signed = canonical(&domain, policy.as_ref(), time, &bytes);
    let (verdicts, good) = pgp::verify_detached(signed.as_bytes(), &sig, &keys[..1], now);
    if good.is_empty() {
        return Err(AnnounceError::Signature(format!("{verdicts:?}")));
    }
    Ok(Announcement {
        domain,
        policy,
        time,
        keys,
    })
}

/// Whether a policy announced in-band asks for enforcement (used in the trace).
pub fn enforces(a: &Announcement) -> bool {
    a.policy.is_some_and(|p| p.mode == Mode::Enforce)
}
