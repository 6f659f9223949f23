//! Administrators, API tokens, first-boot setup, the audit log.

use serde::{Deserialize, Serialize};

use super::debug_without;
use crate::Role;

/// Whether this node's cluster has been set up (it has an administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupStatus {
    pub setup_done: bool,
}

/// A new administrator: the TOTP secret for their authenticator app, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminCreated {
    pub admin: String,
    pub role: Role,
    /// Base32, as authenticator apps take it.
    pub totp_secret: String,
    /// `otpauth://` URI with the same secret.
    pub totp_uri: String,
}
debug_without!(AdminCreated, admin, role);

/// An administrator as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub name: String,
    pub role: Role,
    /// Seconds since the epoch.
    pub created: u64,
}

/// An API token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub created: u64,
}

/// A new API token, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub name: String,
    pub role: Role,
    pub token: String,
}
debug_without!(TokenCreated, name, role);

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// An administrator, `token:NAME`, or `local` (the control socket).
    pub actor: String,
    /// `gui`, `api` or `cli`.
    pub via: String,
    pub action: String,
    /// The object acted on, never a secret.
    pub detail: String,
    /// `ok` or the error.
    pub result: String,
    /// The node that took the command.
    pub node: u64,
}
