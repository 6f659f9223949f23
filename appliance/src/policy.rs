//! The policy hook of the mail path: which treatment a recipient needs.
//!
//! A *treatment* is everything that must be the same for all recipients of one downstream
//! transaction. Today that is the route (which downstream MTA receives the mail); the crypto
//! work adds the method (S/MIME, OpenPGP, domain key, portal, signed only, plain). The SMTP
//! session gives `452 4.5.3` to a recipient whose treatment differs from the first accepted
//! recipient's, so one upstream transaction always maps to exactly one downstream one.
//!
//! Pure code: no I/O, decisions only.

use crate::smtp::envelope::{MailFrom, RcptTo};

/// Index of a route in the configuration; 0 is the default downstream.
pub type RouteId = usize;

/// What must be equal for all recipients of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treatment {
    pub route: RouteId,
    /// One line for the log and the message trace: why this treatment.
    pub explanation: String,
}

impl Treatment {
    /// Whether two recipients can share one downstream transaction.
    pub fn compatible(&self, other: &Treatment) -> bool {
        self.route == other.route
    }
}

/// Decides the treatment of each recipient.
pub trait Policy: Send + Sync + std::fmt::Debug {
    fn treatment(&self, sender: &MailFrom, recipient: &RcptTo) -> Treatment;
}

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
                    explanation: format!("route {route}: recipient domain matches {p}"),
                };
            }
        }
        Treatment {
            route: 0,
            explanation: "default downstream".to_owned(),
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
