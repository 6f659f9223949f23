//! Domain encryption between gateways (DESIGN.md §5), sans-IO: a domain's key pair is
//! published three ways — a signed announcement header on outgoing mail ([`announce`]), the
//! OpenPGP Web Key Directory ([`wkd`]), DNS records for a DNSSEC-signed zone ([`dns`]) — and
//! a partner's keys and policy, learned from any of them, are pinned ([`pin`]): who is
//! trusted how far, which key to use, and whether a partner's `enforce` policy forbids
//! sending in the clear. The I/O (fetching WKD, asking the resolver) is the daemon's.

pub mod announce;
pub mod dns;
pub mod pin;
pub mod wkd;

/// The local part of the address a domain key is published under (`domainkey@DOMAIN`): the
/// user ID of the OpenPGP domain key, the email SAN of the S/MIME domain certificate, the
/// WKD and OPENPGPKEY lookup name.
pub const DOMAIN_KEY_LOCAL: &str = "domainkey";

/// The address of `domain`'s domain key.
pub fn domain_key_address(domain: &str) -> String {
    format!("{DOMAIN_KEY_LOCAL}@{}", domain.to_ascii_lowercase())
}

/// The longest `max_age` a policy may ask for (a year, as MTA-STS).
pub const MAX_MAX_AGE: u64 = 31_557_600;

/// What a domain asks of its senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Encrypt when a key can be used; send anyway when not (and report).
    Testing,
    /// Never in the clear: when the key cannot be used, refuse temporarily (451).
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Testing => "testing",
            Mode::Enforce => "enforce",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "testing" => Some(Mode::Testing),
            "enforce" => Some(Mode::Enforce),
            _ => None,
        }
    }
}

/// A domain's published policy: its mode, and how long a sender keeps it after last seeing
/// it (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DomainPolicy {
    pub mode: Mode,
    pub max_age: u64,
}

impl DomainPolicy {
    /// A policy from its two fields as published (`mode`, `max_age` in seconds); None when
    /// either is not what the format allows.
    pub fn parse(mode: &str, max_age: &str) -> Option<DomainPolicy> {
        let mode = Mode::parse(mode)?;
        let max_age: u64 = max_age.trim().parse().ok()?;
        (max_age <= MAX_MAX_AGE).then_some(DomainPolicy { mode, max_age })
    }
}

/// Whether `d` is a domain name: dot-separated labels of letters, digits and hyphens, none
/// empty, at most 253 characters.
pub fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// The domain part of an address, lower-cased (None without one).
pub fn domain_of(address: &str) -> Option<String> {
    let (_, d) = address.rsplit_once('@')?;
    let d = d.trim_end_matches('>').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

#[cfg(test)]
mod tests;
