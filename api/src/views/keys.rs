//! Users, partners and their keys.

use serde::{Deserialize, Serialize};

/// An S/MIME certificate as listed: serial (hex) and validity (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cert {
    pub serial: String,
    pub not_before: u64,
    pub not_after: u64,
}

/// An internal user and their keys (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub address: String,
    pub smime: Vec<Cert>,
    /// OpenPGP fingerprints (hex).
    pub pgp: Vec<String>,
}

/// A partner with harvested or imported keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub address: String,
    pub smime: Vec<Cert>,
    /// Every certificate announced AES-GCM in its S/MIME capabilities.
    pub smime_gcm: bool,
    pub pgp: Vec<String>,
}

/// One of our domain's OpenPGP domain keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainKey {
    pub fingerprint: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// None: does not expire.
    pub expires: Option<u64>,
    pub revoked: bool,
    /// The key that signs our announcements now.
    pub current: bool,
}

/// One of our S/MIME domain certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCert {
    pub serial: String,
    /// SHA-256 of the certificate, hex (what `domain revoke` takes).
    pub fingerprint: String,
    pub not_before: u64,
    pub not_after: u64,
    pub revoked: bool,
    /// The certificate that signs our domain-encrypted S/MIME mail now.
    pub current: bool,
}

/// One of our internal domains with its domain key (`domainkey@DOMAIN`) and what it
/// publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub domain: String,
    pub address: String,
    /// Newest first.
    pub keys: Vec<DomainKey>,
    /// The S/MIME domain certificates (from the built-in CA), newest first.
    pub smime: Vec<DomainCert>,
    /// What we publish: `testing` or `enforce`; None: nothing (federation.mode = off).
    pub mode: Option<String>,
    pub max_age: Option<u64>,
}

/// The records an admin puts into the domain's DNSSEC-signed zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecords {
    pub domain: String,
    /// Zone-file lines: OPENPGPKEY and SMIMEA for `domainkey@DOMAIN`, the `_mailenc` TXT.
    pub records: Vec<String>,
}

/// A partner domain's pinned key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedKey {
    pub fingerprint: String,
    /// `tofu` or `verified`.
    pub trust: String,
    /// `dnssec`, `wkd`, `in-band`, `imported`.
    pub sources: Vec<String>,
    pub first_seen: u64,
    pub last_seen: u64,
    pub revoked: bool,
}

/// A partner domain's pinned S/MIME domain certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedCert {
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    /// Seconds since the epoch.
    pub not_after: u64,
    /// `verified` (a certificate is pinned only from DNSSEC or by the admin).
    pub trust: String,
    /// `dnssec`, `imported`.
    pub sources: Vec<String>,
    pub first_seen: u64,
    pub last_seen: u64,
}

/// What is pinned for a partner domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerDomain {
    pub domain: String,
    /// OpenPGP domain keys, newest first.
    pub keys: Vec<PinnedKey>,
    /// S/MIME domain certificates, newest first.
    #[serde(default)]
    pub certs: Vec<PinnedCert>,
    pub mode: Option<String>,
    pub max_age: Option<u64>,
    pub policy_seen: Option<u64>,
    pub policy_source: Option<String>,
    /// The partner's policy forbids sending in the clear now.
    pub enforced: bool,
}
