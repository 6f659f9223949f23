//! The policy of the mail path: which treatment a recipient needs, and the message after it.
//! It implements the port the SMTP session calls ([`crate::smtp::session::port::Policy`]).
//!
//! A *treatment* is everything that must be the same for all recipients of one downstream
//! transaction: the route (which downstream MTA receives the mail) and the crypto class
//! (outbound S/MIME, OpenPGP, portal, signed only, plain; inbound for one enrolled user; pass).
//! The SMTP session gives `452 4.5.3` to a recipient whose treatment differs from the first
//! accepted recipient's, so one upstream transaction always maps to exactly one downstream one.
//! At end of data the whole message goes through [`Policy::process`] before the downstream
//! sees it.
//!
//! Pure code: no I/O, decisions only.

use std::time::SystemTime;

use postern_crypto::engine::{Engine, ProcessError};
use postern_crypto::policy::{Class, Method};

use crate::smtp::envelope::{MailFrom, RcptTo};
use crate::smtp::reply::{self, Reply};
use crate::smtp::session::port::{Policy, Processed, RouteId, Treatment};

/// Routing by recipient domain: the first rule that lists the domain (or a parent domain
/// written as `.example.com`) decides the route; otherwise the default downstream.
#[derive(Debug, Clone, Default)]
pub struct DomainRouter {
    /// `(route id, domain patterns)`, in configuration order.
    rules: Vec<(RouteId, Vec<String>)>,
}

impl DomainRouter {
    pub fn new(rules: Vec<(RouteId, Vec<String>)>) -> Self {
        let rules = rules
            .into_iter()
            .map(|(id, domains)| {
                (
                    id,
                    domains
                        .into_iter()
                        .map(|d| d.to_ascii_lowercase())
                        .collect(),
                )
            })
            .collect();
        DomainRouter { rules }
    }
}

/// `pattern` is a domain (`example.com`: that domain only) or `.example.com` (any subdomain).
pub fn domain_matches(pattern: &str, domain: &str) -> bool {
    match pattern.strip_prefix('.') {
        Some(parent) => domain.len() > parent.len() + 1 && domain.ends_with(pattern),
        None => domain == pattern,
    }
}

impl Policy for DomainRouter {
    fn treatment(&self, _sender: &MailFrom, recipient: &RcptTo) -> Treatment {
        let domain = recipient.domain();
        for (route, patterns) in &self.rules {
            if let Some(p) = patterns.iter().find(|p| domain_matches(p, &domain)) {
                return Treatment {
                    route: *route,
                    class: Class::Pass,
                    explanation: format!("route {route}: recipient domain matches {p}"),
                    refusal: None,
                };
            }
        }
        Treatment {
            route: 0,
            class: Class::Pass,
            explanation: "default downstream".to_owned(),
            refusal: None,
        }
    }
}

/// Routing plus the secure-mail engine: the policy `posternd` runs.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub router: DomainRouter,
    pub engine: Engine,
}

impl Policy for Gateway {
    fn treatment(&self, sender: &MailFrom, recipient: &RcptTo) -> Treatment {
        let route = self.router.treatment(sender, recipient);
        let d = self
            .engine
            .decide(&sender.address, &recipient.address, SystemTime::now());
        let refusal = (d.class == Class::Outbound(Method::DomainUnavailable))
            .then_some(reply::DOMAIN_KEY_UNAVAILABLE);
        Treatment {
            route: route.route,
            class: d.class,
            explanation: format!("{}; {}", d.explanation, route.explanation),
            refusal,
        }
    }

    /// A recipient that could be domain-encrypted: an internal sender, an external
    /// recipient without a personal key.
    fn lookup(&self, sender: &MailFrom, recipient: &RcptTo) -> Option<String> {
        let config = self.engine.config();
        if config.internal_domains.is_empty()
            || !config.is_internal(&sender.address)
            || config.is_internal(&recipient.address)
        {
            return None;
        }
        let keys = &self.engine.keys;
        let now = SystemTime::now();
        if keys.smime_recipient(&recipient.address, now).is_some()
            || keys.pgp_recipient(&recipient.address, now).is_some()
        {
            return None;
        }
        postern_crypto::federation::domain_of(&recipient.address)
    }

    fn process(
        &self,
        treatment: &Treatment,
        sender: &MailFrom,
        recipients: &[RcptTo],
        message: Vec<u8>,
    ) -> Result<Processed, Reply> {
        if treatment.class == Class::Pass {
            return Ok(Processed {
                message,
                explanation: treatment.explanation.clone(),
            });
        }
        let rcpts: Vec<String> = recipients.iter().map(|r| r.address.clone()).collect();
        match self.engine.process(
            &treatment.class,
            &sender.address,
            &rcpts,
            &message,
            SystemTime::now(),
        ) {
            Ok(p) => Ok(Processed {
                message: p.message,
                explanation: p.explanation,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "message refused by the crypto policy");
                Err(match e {
                    ProcessError::EncryptionImpossible(_) => reply::ENCRYPTION_IMPOSSIBLE,
                    ProcessError::KeyUnavailable(_) => reply::KEY_UNAVAILABLE,
                    ProcessError::Crypto(_) => reply::CRYPTO_FAILED,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(a: &str) -> RcptTo {
        RcptTo {
            address: a.into(),
            notify: None,
            orcpt: None,
        }
    }

    #[test]
    fn routes_by_domain_and_subdomain() {
        let r = DomainRouter::new(vec![
            (1, vec!["Partner.example".into()]),
            (2, vec![".corp.example".into()]),
        ]);
        let m = MailFrom::default();
        assert_eq!(r.treatment(&m, &rcpt("a@partner.EXAMPLE")).route, 1);
        assert_eq!(r.treatment(&m, &rcpt("a@x.corp.example")).route, 2);
        assert_eq!(r.treatment(&m, &rcpt("a@corp.example")).route, 0);
        assert_eq!(r.treatment(&m, &rcpt("a@evilcorp.example")).route, 0);
        assert_eq!(r.treatment(&m, &rcpt("postmaster")).route, 0);
    }
}
