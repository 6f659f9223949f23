//! The DNS records a domain publishes in its DNSSEC-signed zone: OPENPGPKEY (RFC 7929) and
//! SMIMEA (RFC 8162) for the domain key's address, and a policy TXT record at
//! `_mailenc.DOMAIN` (`v=mailenc1; mode=…; max_age=…; fpr=…`), which Postern prints for the
//! admin (`posternctl domain dns-records`) and reads back when it discovers a partner.

use super::DomainPolicy;

/// The label of the policy record.
pub const POLICY_LABEL: &str = "_mailenc";
/// The version tag the policy record starts with.
pub const POLICY_VERSION: &str = "v=mailenc1";

/// The owner-name hash of RFC 7929 and RFC 8162: the SHA2-256 of the local part truncated
/// to 28 octets, hex (lower-case).
pub fn owner_hash(local: &str) -> String {
    hex_lower(&openssl::sha::sha256(local.as_bytes())[..28])
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The owner name of `local@domain`'s OPENPGPKEY record.
pub fn openpgpkey_name(local: &str, domain: &str) -> String {
    format!(
        "{}._openpgpkey.{}.",
        owner_hash(local),
        domain.to_ascii_lowercase()
    )
}

/// The owner name of `local@domain`'s SMIMEA record.
pub fn smimea_name(local: &str, domain: &str) -> String {
    format!(
        "{}._smimecert.{}.",
        owner_hash(local),
        domain.to_ascii_lowercase()
    )
}

/// The owner name of `domain`'s policy record.
pub fn policy_name(domain: &str) -> String {
    format!("{POLICY_LABEL}.{}.", domain.to_ascii_lowercase())
}

/// The OPENPGPKEY record (zone-file form) for `local@domain` with the binary public key.
pub fn openpgpkey_record(local: &str, domain: &str, key: &[u8]) -> String {
    format!(
        "{} 3600 IN OPENPGPKEY {}",
        openpgpkey_name(local, domain),
        openssl::base64::encode_block(key)
    )
}

/// The SMIMEA record (usage 3: the certificate itself, selector 0, matching type 0: full
/// DER) for `local@domain`.
pub fn smimea_record(local: &str, domain: &str, cert_der: &[u8]) -> String {
    format!(
        "{} 3600 IN SMIMEA 3 0 0 {}",
        smimea_name(local, domain),
        hex_lower(cert_der)
    )
}

/// The DNS type code of SMIMEA (RFC 8162).
pub const SMIMEA_TYPE: u16 = 53;

/// Why an SMIMEA record was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmimeaError {
    #[error("the record is shorter than its three fields")]
    Short,
    #[error(
        "usage {0}, selector {1}, matching type {2}: only the full certificate (usage 1 or 3, selector 0, matching type 0) names a key to encrypt to"
    )]
    Unsupported(u8, u8, u8),
    #[error("the certificate does not parse: {0}")]
    Certificate(String),
}

/// The certificate an SMIMEA record's data carries: usage 3 (the end entity's own
/// certificate, DANE-EE) or 1 (PKIX-EE), selector 0 (the whole certificate), matching type
/// 0 (the certificate itself, not a hash — a hash names no key to encrypt to).
pub fn parse_smimea(rdata: &[u8]) -> Result<openssl::x509::X509, SmimeaError> {
    let [usage, selector, matching, data @ ..] = rdata else {
        return Err(SmimeaError::Short);
    };
    if !matches!(usage, 1 | 3) || *selector != 0 || *matching != 0 {
        return Err(SmimeaError::Unsupported(*usage, *selector, *matching));
    }
    openssl::x509::X509::from_der(data).map_err(|e| {
        SmimeaError::Certificate(
            e.errors()
                .first()
                .and_then(|x| x.reason())
                .unwrap_or("not DER")
                .to_owned(),
        )
    })
}

/// The policy TXT record's text.
pub fn policy_text(policy: &DomainPolicy, fingerprint: &str) -> String {
    format!(
        "{POLICY_VERSION}; mode={}; max_age={}; fpr={fingerprint}",
        policy.mode.as_str(),
        policy.max_age
    )
}

/// The policy TXT record (zone-file form).
pub fn policy_record(domain: &str, policy: &DomainPolicy, fingerprint: &str) -> String {
    format!(
        "{} 3600 IN TXT \"{}\"",
        policy_name(domain),
        policy_text(policy, fingerprint)
    )
}

/// Reads a policy record's text: the policy and the domain key's fingerprint.
pub fn parse_policy_text(text: &str) -> Option<(DomainPolicy, Option<String>)> {
    if text.len() > 1024 {
        return None;
    }
    let mut fields = text.split(';').map(str::trim);
    if fields.next()? != POLICY_VERSION {
        return None;
    }
    let (mut mode, mut max_age, mut fpr) = (None, None, None);
    for f in fields {
        match f.split_once('=') {
            Some(("mode", v)) => mode = Some(v),
            Some(("max_age", v)) => max_age = Some(v),
            Some(("fpr", v)) => {
                let v = v.to_ascii_uppercase();
                if v.len() == 40 && v.bytes().all(|c| c.is_ascii_hexdigit()) {
                    fpr = Some(v);
                }
            }
            _ => {}
        }
    }
    Some((DomainPolicy::parse(mode?, max_age?)?, fpr))
}
