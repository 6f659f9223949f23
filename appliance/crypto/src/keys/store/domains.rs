//! Domains in the key store. An internal domain's own key is an enrolled identity at
//! `domainkey@DOMAIN` (S/MIME certificate from the built-in CA, OpenPGP key), so it is
//! sealed, replicated, rolled over and served like any user's — except that the next key
//! is certified by the current one, so partners accept the change. A partner domain is a
//! pin ([`pin::PartnerDomain`]), kept in its serialisable form ([`PartnerDomainRecord`]).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{KeyStoreError, MemoryKeyStore, Urgency, normalize_address};
use openssl::x509::X509;

use crate::federation::pin::{
    self, Evidence, Note, PartnerDomain, PinnedCert, PinnedKey, PinnedPolicy, Source,
};
use crate::federation::{DOMAIN_KEY_LOCAL, DomainPolicy, Mode, domain_key_address};
use crate::keys::ca;
use crate::pgp::{self, PgpCert};
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

/// One of our domain keys as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainKeyDetail {
    pub fingerprint: String,
    pub created: u64,
    pub expires: Option<u64>,
    pub revoked: bool,
    pub current: bool,
}

/// One of our S/MIME domain certificates as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainCertDetail {
    pub serial: String,
    pub fingerprint: String,
    pub not_before: u64,
    pub not_after: u64,
    pub revoked: bool,
    pub current: bool,
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

/// Whether `address` is a domain key's (`domainkey@…`).
pub fn is_domain_key(address: &str) -> bool {
    address
        .split_once('@')
        .is_some_and(|(l, _)| l.eq_ignore_ascii_case(DOMAIN_KEY_LOCAL))
}

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
    /// Makes sure `domain` has a domain key (S/MIME and OpenPGP, valid for `validity`):
    /// enrols `domainkey@DOMAIN` unless it is. Returns whether keys were made.
    pub fn ensure_domain_key(
        &self,
        domain: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<bool, KeyStoreError> {
        let address = normalize_address(&domain_key_address(domain))?;
        if self.is_enrolled_address(&address) {
            return Ok(false);
        }
        let epoch = self.epoch();
        let ca = self.ca()?;
        let id = ca.issue(&address, now - Duration::from_secs(60), now + validity)?;
        let key = pgp::generate(&address, now - Duration::from_secs(60), validity)?;
        // Made elsewhere meanwhile (another leader, a cluster joined): that one stays.
        self.update_since(epoch, |s, _, sealer| {
            if s.users.contains_key(&address) {
                return Ok(false);
            }
            let user = s.users.entry(address.clone()).or_default();
            user.smime.push(super::seal_identity(&id, sealer, "")?);
            user.pgp.push(super::seal_pgp(&key, sealer)?);
            Ok(true)
        })
    }

    fn is_enrolled_address(&self, address: &str) -> bool {
        self.read().0.users.contains_key(address)
    }

    /// The internal domains that have a domain key.
    pub fn own_domains(&self) -> Vec<String> {
        self.read()
            .0
            .users
            .keys()
            .filter(|a| is_domain_key(a))
            .filter_map(|a| a.split_once('@').map(|(_, d)| d.to_owned()))
            .collect()
    }

    /// `domain`'s public domain keys that are valid at `now` (newest first): what the
    /// announcement, WKD and DNS publish.
    pub fn domain_public_keys(&self, domain: &str, now: SystemTime) -> Vec<PgpCert> {
        self.domain_keys_where(domain, |k| {
            pgp::can_encrypt(k, now) && !pgp::is_revoked(k, now)
        })
    }

    /// The public halves of `domain`'s keys that pass `keep`.
    fn domain_keys_where(&self, domain: &str, keep: impl Fn(&PgpCert) -> bool) -> Vec<PgpCert> {
        let address = domain_key_address(domain);
        let g = self.read();
        g.1.pgp
            .get(&address)
            .map(|keys| {
                keys.iter()
                    .filter(|k| keep(k))
                    .map(|k| k.clone().strip_secret_key_material())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A new domain key for `domain` now (S/MIME certificate and OpenPGP key, the latter
    /// certified by the current key): an admin's rollover, ahead of the automatic one.
    pub fn roll_domain_key(
        &self,
        domain: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<(), KeyStoreError> {
        let address = normalize_address(&domain_key_address(domain))?;
        if !self.is_enrolled_address(&address) {
            return Err(KeyStoreError::NotEnrolled(address));
        }
        let epoch = self.epoch();
        let ca = self.ca()?;
        let id = ca.issue(&address, now - Duration::from_secs(60), now + validity)?;
        let new = pgp::generate(&address, now - Duration::from_secs(60), validity)?;
        let key = match super::KeyStore::pgp_signer(self, &address, now) {
            Some(old) => pgp::certify(&old, &new, now)?,
            None => new,
        };
        self.update_since(epoch, |s, _, sealer| {
            let user = s
                .users
                .get_mut(&address)
                .ok_or_else(|| KeyStoreError::NotEnrolled(address.clone()))?;
            user.smime.insert(0, super::seal_identity(&id, sealer, "")?);
            user.pgp.insert(0, super::seal_pgp(&key, sealer)?);
            Ok(())
        })
    }

    /// `domain`'s OpenPGP domain keys (newest first): fingerprint, creation and expiry
    /// (seconds), revoked, and whether it is the one that signs now.
    pub fn domain_key_details(&self, domain: &str, now: SystemTime) -> Vec<DomainKeyDetail> {
        let address = domain_key_address(domain);
        let signer = super::KeyStore::pgp_signer(self, &address, now).map(|k| pgp::fingerprint(&k));
        let g = self.read();
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        };
        g.1.pgp
            .get(&address)
            .map(|keys| {
                keys.iter()
                    .map(|k| {
                        let fingerprint = pgp::fingerprint(k);
                        DomainKeyDetail {
                            current: signer.as_deref() == Some(fingerprint.as_str()),
                            created: secs(k.primary_key().key().creation_time()),
                            expires: pgp::expires(k, now).map(secs),
                            revoked: pgp::is_revoked(k, now),
                            fingerprint,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `domain`'s S/MIME domain certificates (newest first), and which signs now.
    pub fn domain_cert_details(&self, domain: &str, now: SystemTime) -> Vec<DomainCertDetail> {
        let address = domain_key_address(domain);
        let current = super::KeyStore::signing_identity(self, &address, now)
            .map(|i| smime::fingerprint(&i.cert));
        let g = self.read();
        let secs = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or_default()
        };
        g.0.users
            .get(&address)
            .map(|u| {
                u.smime
                    .iter()
                    .filter_map(|s| Some((super::parse_pem(&s.cert).ok()?, s.revoked)))
                    .map(|(c, revoked)| {
                        let fingerprint = smime::fingerprint(&c);
                        DomainCertDetail {
                            serial: smime::serial_hex(&c),
                            current: current.as_deref() == Some(fingerprint.as_str()),
                            not_before: secs(ca::not_before(&c)),
                            not_after: secs(ca::not_after(&c)),
                            revoked,
                            fingerprint,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `domain`'s S/MIME domain certificates to publish (SMIMEA): valid now, not revoked.
    pub fn domain_published_certs(&self, domain: &str, now: SystemTime) -> Vec<X509> {
        let address = domain_key_address(domain);
        let g = self.read();
        g.0.users
            .get(&address)
            .map(|u| {
                u.smime
                    .iter()
                    .filter(|s| !s.revoked)
                    .filter_map(|s| super::parse_pem(&s.cert).ok())
                    .filter(|c| ca::valid_at(c, now))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the Web Key Directory serves for `domain`'s hashed local part `hash`: the
    /// public OpenPGP keys (binary, concatenated) of the enrolled address or domain key
    /// whose local part hashes to it that have not expired — revoked ones included, so
    /// partners learn of the revocation; None when there is none.
    pub fn wkd_keys(&self, domain: &str, hash: &str, now: SystemTime) -> Option<Vec<u8>> {
        let domain = domain.to_ascii_lowercase();
        let g = self.read();
        let (address, keys) = g.1.pgp.iter().find(|(address, _)| {
            address.rsplit_once('@').is_some_and(|(l, d)| {
                d == domain && crate::federation::wkd::hashed_local(l) == hash
            })
        })?;
        let mut out = Vec::new();
        for k in keys.iter().filter(|k| published(k, now)) {
            out.extend(pgp::public_bytes(k));
        }
        tracing::debug!(%address, bytes = out.len(), "WKD key served");
        (!out.is_empty()).then_some(out)
    }

    /// `domain`'s published keys: not expired, revoked ones included (their revocation is
    /// news for partners). The DNS OPENPGPKEY record carries these.
    pub fn domain_published_keys(&self, domain: &str, now: SystemTime) -> Vec<PgpCert> {
        self.domain_keys_where(domain, |k| published(k, now))
    }

    /// Revokes `domain`'s key `fingerprint`: an OpenPGP key gets a revocation signature
    /// merged into it (kept for decryption, published so partners stop using it); an S/MIME
    /// domain certificate (its SHA-256) is marked revoked (kept for decryption, no longer
    /// signing nor published as SMIMEA, so partners drop it at their next lookup).
    pub fn revoke_domain_key(
        &self,
        domain: &str,
        fingerprint: &str,
        now: SystemTime,
    ) -> Result<(), KeyStoreError> {
        let address = domain_key_address(domain);
        let is_cert = |s: &super::SealedIdentity| {
            super::parse_pem(&s.cert)
                .is_ok_and(|c| smime::fingerprint(&c).eq_ignore_ascii_case(fingerprint))
        };
        let cert = self
            .read()
            .0
            .users
            .get(&address)
            .is_some_and(|u| u.smime.iter().any(is_cert));
        if cert {
            return self.update(|s, _, _| {
                let user = s
                    .users
                    .get_mut(&address)
                    .ok_or_else(|| KeyStoreError::NotEnrolled(address.clone()))?;
                for id in user.smime.iter_mut().filter(|id| is_cert(id)) {
                    id.revoked = true;
                }
                Ok(())
            });
        }
        let key = {
            let g = self.read();
            g.1.pgp
                .get(&address)
                .and_then(|keys| {
                    keys.iter()
                        .find(|k| pgp::fingerprint(k).eq_ignore_ascii_case(fingerprint))
                })
                .cloned()
                .ok_or_else(|| KeyStoreError::NotEnrolled(format!("{address} key {fingerprint}")))?
        };
        let revoked = pgp::revoke(&key, now)?;
        self.update(|s, _, sealer| {
            let user = s
                .users
                .get_mut(&address)
                .ok_or_else(|| KeyStoreError::NotEnrolled(address.clone()))?;
            for k in user.pgp.iter_mut() {
                let public = pgp::parse_cert(k.public.as_bytes())?;
                if pgp::fingerprint(&public).eq_ignore_ascii_case(fingerprint) {
                    *k = super::seal_pgp(&revoked, sealer)?;
                }
            }
            Ok(())
        })
    }

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

/// Whether a key is still published: it has not expired (revoked or not).
fn published(k: &PgpCert, now: SystemTime) -> bool {
    pgp::expires(k, now).is_none_or(|t| t > now)
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
