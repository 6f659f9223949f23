//! Partner domains in the key store: what is pinned for each (`pin::PartnerDomain`), kept
//! in its serialisable form ([`PartnerDomainRecord`]) — OpenPGP keys and S/MIME domain
//! certificates with where each came from, and the policy — merged from lookups, messages
//! and the admin's imports, with the refused offers queued for the admin's alert.

use std::collections::BTreeSet;
use std::time::SystemTime;

use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use super::{KeyStoreError, MemoryKeyStore, Urgency};
use crate::federation::pin::{
    self, Evidence, Note, PartnerDomain, PinnedCert, PinnedKey, PinnedPolicy, Source,
};
use crate::federation::{DomainPolicy, Mode};
use crate::keys::ca;
use crate::pgp;
use crate::smime;

/// A partner domain's pin in the store's sealed-state form (public keys, armored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerDomainRecord {
    /// Newest first.
    pub keys: Vec<PinnedKeyRecord>,
    /// S/MIME domain certificates, newest first (absent in records written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<PinnedCertRecord>,
    pub policy: Option<PinnedPolicyRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedCertRecord {
    /// PEM.
    pub cert: String,
    pub sources: Vec<String>,
    pub first_seen: u64,
    pub last_seen: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedKeyRecord {
    pub cert: String,
    pub sources: Vec<String>,
    pub first_seen: u64,
    pub last_seen: u64,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedPolicyRecord {
    pub mode: String,
    pub max_age: u64,
    pub seen: u64,
    pub source: String,
    pub verified: bool,
}

/// A partner domain as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerDomainSummary {
    pub domain: String,
    /// Fingerprint, trust (`tofu`/`verified`), sources, first and last seen, revoked.
    pub keys: Vec<PinnedKeySummary>,
    /// S/MIME domain certificates.
    pub certs: Vec<PinnedCertSummary>,
    pub mode: Option<String>,
    pub max_age: Option<u64>,
    pub policy_seen: Option<u64>,
    pub policy_source: Option<String>,
    /// Whether the partner's policy forbids sending in the clear now.
    pub enforced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedKeySummary {
    pub fingerprint: String,
    pub trust: String,
    pub sources: Vec<String>,
    pub first_seen: u64,
    pub last_seen: u64,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedCertSummary {
    /// SHA-256 of the certificate.
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub not_after: u64,
    pub trust: String,
    pub sources: Vec<String>,
    pub first_seen: u64,
    pub last_seen: u64,
}

/// A different key offered for a pinned partner domain and refused (the pin stayed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub domain: String,
    pub offered: String,
    pub reason: String,
    /// `dnssec`, `wkd`, `in-band`.
    pub source: &'static str,
    pub time: SystemTime,
}

/// How many refusals wait for the alert task at most (the oldest go first).
pub const MAX_REFUSALS: usize = 100;

impl PartnerDomainRecord {
    pub fn from_pin(p: &PartnerDomain) -> PartnerDomainRecord {
        PartnerDomainRecord {
            keys: p
                .keys
                .iter()
                .map(|k| PinnedKeyRecord {
                    cert: String::from_utf8_lossy(&pgp::armored_public(&k.cert)).into_owned(),
                    sources: k.sources.iter().map(|s| s.as_str().to_owned()).collect(),
                    first_seen: k.first_seen,
                    last_seen: k.last_seen,
                    revoked: k.revoked,
                })
                .collect(),
            certs: p
                .certs
                .iter()
                .map(|c| PinnedCertRecord {
                    cert: String::from_utf8_lossy(&c.cert.to_pem().unwrap_or_default())
                        .into_owned(),
                    sources: c.sources.iter().map(|s| s.as_str().to_owned()).collect(),
                    first_seen: c.first_seen,
                    last_seen: c.last_seen,
                })
                .collect(),
            policy: p.policy.map(|pp| PinnedPolicyRecord {
                mode: pp.policy.mode.as_str().to_owned(),
                max_age: pp.policy.max_age,
                seen: pp.seen,
                source: pp.source.as_str().to_owned(),
                verified: pp.verified,
            }),
        }
    }

    /// The pin; a key or policy that does not read back is an error (the record came
    /// through the cluster and was written by this code).
    pub fn to_pin(&self) -> Result<PartnerDomain, KeyStoreError> {
        let corrupt = |what: &str| KeyStoreError::Corrupt(format!("partner domain record: {what}"));
        let mut keys = Vec::new();
        for k in &self.keys {
            let sources: BTreeSet<Source> = k
                .sources
                .iter()
                .map(|s| Source::parse(s).ok_or_else(|| corrupt("source")))
                .collect::<Result<_, _>>()?;
            keys.push(PinnedKey {
                cert: pgp::parse_cert(k.cert.as_bytes())?,
                sources,
                first_seen: k.first_seen,
                last_seen: k.last_seen,
                revoked: k.revoked,
            });
        }
        let mut certs = Vec::new();
        for c in &self.certs {
            certs.push(PinnedCert {
                cert: X509::from_pem(c.cert.as_bytes()).map_err(|_| corrupt("certificate"))?,
                sources: c
                    .sources
                    .iter()
                    .map(|s| Source::parse(s).ok_or_else(|| corrupt("source")))
                    .collect::<Result<_, _>>()?,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
            });
        }
        let policy = match &self.policy {
            Some(p) => Some(PinnedPolicy {
                policy: DomainPolicy {
                    mode: Mode::parse(&p.mode).ok_or_else(|| corrupt("mode"))?,
                    max_age: p.max_age,
                },
                seen: p.seen,
                source: Source::parse(&p.source).ok_or_else(|| corrupt("source"))?,
                verified: p.verified,
            }),
            None => None,
        };
        Ok(PartnerDomain {
            keys,
            certs,
            policy,
        })
    }
}

fn summary(domain: &str, p: &PartnerDomain, now: SystemTime) -> PartnerDomainSummary {
    PartnerDomainSummary {
        domain: domain.to_owned(),
        keys: p
            .keys
            .iter()
            .map(|k| PinnedKeySummary {
                fingerprint: k.fingerprint(),
                trust: k.trust().as_str().to_owned(),
                sources: k.sources.iter().map(|s| s.as_str().to_owned()).collect(),
                first_seen: k.first_seen,
                last_seen: k.last_seen,
                revoked: k.revoked || pgp::is_revoked(&k.cert, now),
            })
            .collect(),
        certs: p
            .certs
            .iter()
            .map(|c| PinnedCertSummary {
                fingerprint: c.fingerprint(),
                subject: name_text(c.cert.subject_name()),
                issuer: name_text(c.cert.issuer_name()),
                not_after: ca::not_after(&c.cert)
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or_default(),
                trust: c.trust().as_str().to_owned(),
                sources: c.sources.iter().map(|s| s.as_str().to_owned()).collect(),
                first_seen: c.first_seen,
                last_seen: c.last_seen,
            })
            .collect(),
        mode: p.policy.map(|x| x.policy.mode.as_str().to_owned()),
        max_age: p.policy.map(|x| x.policy.max_age),
        policy_seen: p.policy.map(|x| x.seen),
        policy_source: p.policy.map(|x| x.source.as_str().to_owned()),
        enforced: pin::enforced(p, now),
    }
}

/// A distinguished name as `CN=…, O=…` (the entries in their order).
fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl MemoryKeyStore {
    /// A partner domain's pin.
    pub fn partner_domain(&self, domain: &str) -> Option<PartnerDomain> {
        self.read()
            .1
            .partner_domains
            .get(&domain.to_ascii_lowercase())
            .cloned()
    }

    /// Every partner domain as listed.
    pub fn partner_domains(&self, now: SystemTime) -> Vec<PartnerDomainSummary> {
        let g = self.read();
        let mut out: Vec<PartnerDomainSummary> =
            g.1.partner_domains
                .iter()
                .map(|(d, p)| summary(d, p, now))
                .collect();
        out.sort_by(|a, b| a.domain.cmp(&b.domain));
        out
    }

    /// Merges what a lookup or a message said about `domain` into its pin and commits the
    /// result (unchanged pins are not written). Returns what changed.
    pub fn remember_domain(
        &self,
        domain: &str,
        evidence: &Evidence,
        now: SystemTime,
        urgency: Urgency,
    ) -> Result<Vec<Note>, KeyStoreError> {
        let domain = domain.to_ascii_lowercase();
        let notes = self.update_as(urgency, None, |s, cache, _| {
            let (next, notes) = pin::merge(cache.partner_domains.get(&domain), evidence, now);
            let record = PartnerDomainRecord::from_pin(&next);
            // Only what a pin says counts: a refresh that changed nothing but the time is
            // not worth a cluster write (the time moves on at the next real change).
            let changed = s
                .partner_domains
                .get(&domain)
                .is_none_or(|old| !same_but_times(old, &record));
            if changed {
                s.partner_domains.insert(domain.clone(), record);
            }
            Ok(notes)
        })?;
        for n in &notes {
            if let Note::Refused { offered, reason } = n {
                self.refused(Refusal {
                    domain: domain.clone(),
                    offered: offered.clone(),
                    reason: reason.clone(),
                    source: evidence.source.as_str(),
                    time: now,
                });
            }
        }
        Ok(notes)
    }

    fn refused(&self, r: Refusal) {
        let mut q = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_REFUSALS {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// The refusals since the last call, oldest first (at most [`MAX_REFUSALS`]): what the
    /// admin must hear of.
    pub fn take_refusals(&self) -> Vec<Refusal> {
        let mut q = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        q.drain(..).collect()
    }

    /// Imports an OpenPGP domain key for a partner domain by hand (another vendor's gateway,
    /// or a key read out over the phone): pinned as verified.
    pub fn import_partner_domain(
        &self,
        domain: &str,
        data: &[u8],
        now: SystemTime,
    ) -> Result<Vec<Note>, KeyStoreError> {
        let certs = certificates(data);
        let keys = if certs.is_empty() {
            pgp::parse_keyring(data)
                .map_err(|_| KeyStoreError::NoDomainKey)?
                .into_iter()
                .map(|c| c.strip_secret_key_material())
                .collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        if keys.is_empty() && certs.is_empty() {
            return Err(KeyStoreError::NoDomainKey);
        }
        for c in &certs {
            if !smime::names_domain(c, domain) {
                return Err(KeyStoreError::WrongDomain {
                    domain: domain.to_ascii_lowercase(),
                    names: smime::cert_emails(c).join(", "),
                });
            }
            if !ca::valid_at(c, now) {
                return Err(KeyStoreError::Expired(smime::fingerprint(c)));
            }
        }
        let evidence = Evidence {
            source: Source::Imported,
            keys,
            certs,
            policy: None,
        };
        self.remember_domain(domain, &evidence, now, Urgency::Admin)
    }

    /// Forgets everything pinned for a partner domain.
    pub fn forget_partner_domain(&self, domain: &str) -> Result<(), KeyStoreError> {
        let domain = domain.to_ascii_lowercase();
        self.update(|s, _, _| {
            s.partner_domains
                .remove(&domain)
                .map(|_| ())
                .ok_or(KeyStoreError::NotEnrolled(domain.clone()))
        })
    }
}

/// The X.509 certificates in `data` (PEM, one or more, or one DER); empty when it holds
/// none (an OpenPGP key, then).
fn certificates(data: &[u8]) -> Vec<X509> {
    if data
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return X509::stack_from_pem(data).unwrap_or_default();
    }
    X509::from_der(data).map(|c| vec![c]).unwrap_or_default()
}

/// Whether two records differ only in when keys and policies were last seen, by less than
/// an hour (so a busy partner's every message does not become a cluster write).
fn same_but_times(a: &PartnerDomainRecord, b: &PartnerDomainRecord) -> bool {
    const SLACK: u64 = 3600;
    let close = |x: u64, y: u64| x.abs_diff(y) < SLACK;
    a.keys.len() == b.keys.len()
        && a.keys.iter().zip(&b.keys).all(|(x, y)| {
            x.cert == y.cert
                && x.sources == y.sources
                && x.revoked == y.revoked
                && x.first_seen == y.first_seen
                && close(x.last_seen, y.last_seen)
        })
        && a.certs.len() == b.certs.len()
        && a.certs.iter().zip(&b.certs).all(|(x, y)| {
            x.cert == y.cert
                && x.sources == y.sources
                && x.first_seen == y.first_seen
                && close(x.last_seen, y.last_seen)
        })
        && match (&a.policy, &b.policy) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.mode == y.mode
                    && x.max_age == y.max_age
                    && x.source == y.source
                    && x.verified == y.verified
                    && close(x.seen, y.seen)
            }
            _ => false,
        }
}
