//! Runs one message through the policy at end of data, in memory: outbound mail is signed
//! and/or encrypted, inbound mail decrypted, verified and marked. Bytes in, bytes out.

mod inbound;
mod outbound;
pub mod subject;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::federation::{self, domain_of};
use crate::keys::KeyStore;
use crate::mime::{Envelope, Header};
use crate::pgp;
use crate::policy::{self, Class, Decision, PolicyConfig, SharedPolicy};

/// Header fields Postern owns: removed from every incoming message (a sender must not be able
/// to forge a verdict) and written only by Postern.
pub const OWN_FIELDS: [&str; 3] = [
    "x-postern-policy",
    "x-postern-signature",
    "x-postern-encrypted",
];

/// The result of processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub message: Vec<u8>,
    /// What was done, one line (logged; also in `X-Postern-Policy` when configured).
    pub explanation: String,
}

/// Why a message cannot be delivered as the policy demands. Each maps to one SMTP reply.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Encryption is required (tag or policy) but no key is known and the portal is not
    /// available: permanent (5.7.1) — retrying will not help.
    #[error(
        "encryption is required but no certificate or key is known for {0}, and the recipient portal is not available"
    )]
    EncryptionImpossible(String),
    /// A key the decision relied on is gone (expired or removed since RCPT): temporary.
    #[error("the key for {0} is no longer usable")]
    KeyUnavailable(String),
    /// Our side failed (keys, OpenSSL, sequoia): temporary, an admin must look.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl ProcessError {
    /// Permanent failures give 5xx, all others 4xx.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ProcessError::EncryptionImpossible(_))
    }
}

/// Policy and keys together: what the relay calls.
#[derive(Debug, Clone)]
pub struct Engine {
    pub policy: Arc<SharedPolicy>,
    pub keys: Arc<dyn KeyStore>,
    /// Each own domain's announcement header, rebuilt when its keys or policy change or it
    /// is an hour old (signing one per message would cost a signature each).
    announcements: Arc<std::sync::Mutex<HashMap<String, Announced>>>,
}

#[derive(Debug, Clone)]
struct Announced {
    value: String,
    /// The key fingerprints and policy it was built for.
    basis: String,
    built: SystemTime,
}

/// How long an announcement header is reused.
const ANNOUNCEMENT_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

impl Engine {
    pub fn new(config: PolicyConfig, keys: Arc<dyn KeyStore>) -> Engine {
        Engine {
            policy: Arc::new(SharedPolicy::new(config)),
            keys,
            announcements: Arc::default(),
        }
    }

    /// The announcement header for mail from `sender`: its domain's keys and policy,
    /// signed by its current domain key (None: not an own domain with a key, or this
    /// gateway announces nothing).
    fn announcement(&self, sender: &str, now: SystemTime) -> Option<String> {
        let policy = self.config().domain_policy?;
        let domain = domain_of(sender)?;
        let keys = self.keys.domain_keys(&domain, now);
        let signer = self
            .keys
            .pgp_signer(&federation::domain_key_address(&domain), now)?;
        let basis = format!(
            "{}|{}|{}",
            pgp::fingerprint(&signer),
            keys.iter()
                .map(pgp::fingerprint)
                .collect::<Vec<_>>()
                .join(","),
            serde_json::to_string(&policy).unwrap_or_default()
        );
        let mut cache = self.announcements.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = cache.get(&domain)
            && a.basis == basis
            && now
                .duration_since(a.built)
                .is_ok_and(|age| age < ANNOUNCEMENT_FOR)
        {
            return Some(a.value.clone());
        }
        let value = match federation::announce::build(&domain, Some(&policy), &keys, &signer, now) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, %domain, "domain key announcement not built");
                return None;
            }
        };
        cache.insert(
            domain,
            Announced {
                value: value.clone(),
                basis,
                built: now,
            },
        );
        Some(value)
    }

    /// The policy in force now.
    pub fn config(&self) -> Arc<PolicyConfig> {
        self.policy.get()
    }

    /// The class of one recipient (at `RCPT`).
    pub fn decide(&self, sender: &str, recipient: &str, now: SystemTime) -> Decision {
        policy::decide(&self.config(), self.keys.as_ref(), sender, recipient, now)
    }

    /// Processes a whole message (at end of data) for recipients that share `class`.
    pub fn process(
        &self,
        class: &Class,
        sender: &str,
        recipients: &[String],
        message: &[u8],
        now: SystemTime,
    ) -> Result<Processed, ProcessError> {
        let env = Envelope::split(message);
        let mut outer = strip_own_fields(&env.outer);
        let (entity, explanation) = match class {
            Class::Pass => {
                let processed = Processed {
                    message: message.to_vec(),
                    explanation: "relayed unchanged".into(),
                };
                return Ok(processed);
            }
            Class::Outbound(method) => outbound::run(
                self,
                *method,
                sender,
                recipients,
                &mut outer,
                &env.content,
                now,
            )?,
            Class::Inbound { user } => {
                inbound::run(self, user.as_deref(), &mut outer, &env.content, now)
            }
        };
        if self.config().policy_header {
            outer.prepend("X-Postern-Policy", &header_safe(&explanation));
        }
        if let Class::Outbound(_) = class {
            // Only the gateway announces its domain's keys: a sender's own header goes.
            outer = outer.filter(|f| !f.name_eq(federation::announce::HEADER));
            if let Some(value) = self.announcement(sender, now) {
                outer.prepend(federation::announce::HEADER, &value);
            }
        }
        Ok(Processed {
            message: Envelope::join(&outer, &entity),
            explanation,
        })
    }
}

fn strip_own_fields(outer: &Header) -> Header {
    outer.filter(|f| !OWN_FIELDS.iter().any(|n| f.name_eq(n)))
}

/// A header value on one line, printable ASCII only, of bounded length.
pub(crate) fn header_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.len() > 900 {
        out.truncate(900);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests;
