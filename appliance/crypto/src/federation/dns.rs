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
