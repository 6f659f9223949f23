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
