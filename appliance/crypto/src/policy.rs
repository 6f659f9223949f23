//! Who gets which treatment (DESIGN.md §4), decided per recipient at `RCPT` time from the
//! envelope and the key store, with a one-line explanation an admin can read.
//!
//! Outbound (internal sender → external recipient), first match wins: the recipient's S/MIME
//! certificate, the recipient's OpenPGP key, the portal when policy requires encryption,
//! signed only when the sender is enrolled, else plain. Inbound (→ internal recipient):
//! decrypt for that enrolled user, verify, mark. The subject tags and the content checks
//! (calendar, TNEF) are applied at end of data by [`crate::engine`].

use std::time::{Duration, SystemTime};

use crate::federation::pin::{self, Choice};
use crate::federation::{DomainPolicy, Mode, domain_of};
use crate::keys::KeyStore;
use crate::smime;

/// The `max_age` a gateway publishes unless configured otherwise: a week.
pub const DEFAULT_MAX_AGE: u64 = 7 * 86_400;

/// How outbound mail to one recipient is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Smime,
    OpenPgp,
    /// Encrypted to the recipient domain's OpenPGP key (federation).
    DomainKey,
    /// Encrypted to the recipient domain's S/MIME certificate (federation with a gateway
    /// that publishes SMIMEA, or whose certificate the admin imported).
    DomainSmime,
    /// The recipient's domain enforces encryption and none of its domain keys can be used:
    /// refused for now (451), never sent in the clear.
    DomainUnavailable,
    /// Encryption is required but no key is known: the recipient portal.
    Portal,
    SignedOnly,
    Plain,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Smime => "S/MIME",
            Method::OpenPgp => "OpenPGP",
            Method::DomainKey => "domain key",
            Method::DomainSmime => "domain certificate",
            Method::DomainUnavailable => "domain key unavailable",
            Method::Portal => "portal",
            Method::SignedOnly => "signed only",
            Method::Plain => "plain",
        }
    }
}

/// The treatment class: recipients of one transaction must share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Class {
    /// Internal sender, external recipient.
    Outbound(Method),
    /// External sender, internal recipient; `user` when that recipient is enrolled (their
    /// keys decrypt, so each enrolled recipient gets a transaction of their own).
    Inbound { user: Option<String> },
    /// Neither direction (internal to internal, or crypto not configured): relayed as is.
    Pass,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub class: Class,
    pub explanation: String,
}

/// Policy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Domains whose mail this gateway protects (`example.com` or `.example.com` for subdomains).
    pub internal_domains: Vec<String>,
    /// Encrypt every outbound message (recipients without keys: portal).
    pub always_encrypt: bool,
    /// Add `X-Postern-Policy` with the explanation to each message.
    pub policy_header: bool,
    /// Prefix inbound subjects with `[signed]`, `[signed INVALID]`, `[encrypted]`.
    pub subject_markers: bool,
    /// The policy this gateway's domains publish to partners (federation); None: their
    /// domain keys are not announced on outbound mail.
    pub domain_policy: Option<DomainPolicy>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            internal_domains: Vec::new(),
            always_encrypt: false,
            policy_header: true,
            subject_markers: true,
            domain_policy: Some(DomainPolicy {
                mode: Mode::Testing,
                max_age: DEFAULT_MAX_AGE,
            }),
        }
    }
}

/// The policy in force, shared by everything that decides; replaced as a whole (when the
/// cluster's settings change) so a decision never sees half of an update.
#[derive(Debug, Default)]
pub struct SharedPolicy(std::sync::RwLock<std::sync::Arc<PolicyConfig>>);

impl SharedPolicy {
    pub fn new(config: PolicyConfig) -> SharedPolicy {
        SharedPolicy(std::sync::RwLock::new(std::sync::Arc::new(config)))
    }

    pub fn get(&self) -> std::sync::Arc<PolicyConfig> {
        std::sync::Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn set(&self, config: PolicyConfig) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(config);
    }
}

impl PolicyConfig {
    /// How long before a domain key ends the next one is made: half the `max_age` we
    /// publish (partners keep our policy that long after they last saw it).
    pub fn domain_rollover_lead(&self) -> Duration {
        Duration::from_secs(self.domain_policy.map_or(0, |p| p.max_age / 2))
    }

    /// The internal domains named exactly (not `.parent` patterns): the domains that get
    /// a domain key of their own.
    pub fn exact_internal_domains(&self) -> Vec<String> {
        self.internal_domains
            .iter()
            .filter(|d| !d.starts_with('.'))
            .cloned()
            .collect()
    }

    pub fn is_internal(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = domain.to_ascii_lowercase();
        self.internal_domains
            .iter()
            .any(|p| match p.strip_prefix('.') {
                Some(parent) => domain.len() > parent.len() + 1 && domain.ends_with(p.as_str()),
                None => domain == *p,
            })
    }
}

/// Decides the class of one recipient.
pub fn decide(
    cfg: &PolicyConfig,
    keys: &dyn KeyStore,
    sender: &str,
    recipient: &str,
    now: SystemTime,
) -> Decision {
    let sender_internal = cfg.is_internal(sender);
    let recipient_internal = cfg.is_internal(recipient);
    let d = |class, explanation: String| Decision { class, explanation };
    if cfg.internal_domains.is_empty() {
        return d(
            Class::Pass,
            "no internal domains configured: relayed unchanged".into(),
        );
    }
    if recipient_internal {
        if sender_internal {
            return d(
                Class::Pass,
                "internal to internal: relayed unchanged".into(),
            );
        }
        return if keys.is_enrolled(recipient) {
            d(
                Class::Inbound {
                    user: Some(recipient.to_ascii_lowercase()),
                },
                format!("inbound to enrolled {recipient}: decrypt, verify, mark"),
            )
        } else {
            d(
                Class::Inbound { user: None },
                format!("inbound to {recipient} (not enrolled): verify and mark"),
            )
        };
    }
    if !sender_internal {
        return d(
            Class::Pass,
            "external to external: relayed unchanged".into(),
        );
    }
    let signs = keys.signing_identity(sender, now).is_some();
    let sign_note = if signs {
        "signed by the sender's certificate"
    } else {
        "sender not enrolled: not signed"
    };
    if let Some((cert, caps)) = keys.smime_recipient(recipient, now) {
        let cipher = if caps.aes256_gcm {
            "AES-256-GCM"
        } else {
            "AES-256-CBC"
        };
        return d(
            Class::Outbound(Method::Smime),
            format!(
                "S/MIME: {recipient} has certificate {} ({cipher}); {sign_note}",
                smime::serial_hex(&cert)
            ),
        );
    }
    if let Some(cert) = keys.pgp_recipient(recipient, now) {
        return d(
            Class::Outbound(Method::OpenPgp),
            format!(
                "OpenPGP: {recipient} has key {}; {sign_note}",
                cert.fingerprint().to_hex()
            ),
        );
    }
    if let Some(domain) = domain_of(recipient)
        && let Some(pinned) = keys.partner_domain(&domain)
    {
        match pin::choose(&pinned, now) {
            Choice::Use { key, trust } => {
                let sources: Vec<&str> = key.sources.iter().map(|s| s.as_str()).collect();
                return d(
                    Class::Outbound(Method::DomainKey),
                    format!(
                        "domain key: {domain} has domain key {} ({}, from {})",
                        key.fingerprint(),
                        trust.as_str(),
                        sources.join(", ")
                    ),
                );
            }
            Choice::UseCert { cert } => {
                let sources: Vec<&str> = cert.sources.iter().map(|s| s.as_str()).collect();
                return d(
                    Class::Outbound(Method::DomainSmime),
                    format!(
                        "domain key: {domain} has S/MIME domain certificate {} ({}, from {})",
                        cert.fingerprint(),
                        cert.trust().as_str(),
                        sources.join(", ")
                    ),
                );
            }
            Choice::Unusable { reason } => {
                return d(
                    Class::Outbound(Method::DomainUnavailable),
                    format!("{domain}: {reason}; refused for now"),
                );
            }
            Choice::Nothing => {}
        }
    }
    if cfg.always_encrypt {
        return d(
            Class::Outbound(Method::Portal),
            format!("portal: encryption required by policy and no key known for {recipient}"),
        );
    }
    if signs {
        return d(
            Class::Outbound(Method::SignedOnly),
            format!("signed only: no key known for {recipient}; {sign_note}"),
        );
    }
    d(
        Class::Outbound(Method::Plain),
        format!("plain: no key known for {recipient} and {sender} is not enrolled"),
    )
}
