//! Domains in the key store. An internal domain's own key is an enrolled identity at
//! `domainkey@DOMAIN` (S/MIME certificate from the built-in CA, OpenPGP key), so it is
//! sealed, replicated, rolled over and served like any user's — except that the next key
//! is certified by the current one, so partners accept the change. A partner domain is a
//! pin ([`pin::PartnerDomain`]), kept in its serialisable form ([`PartnerDomainRecord`]).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{KeyStoreError, MemoryKeyStore, Urgency, normalize_address};
use crate::federation::pin::{
    self, Evidence, Note, PartnerDomain, PinnedKey, PinnedPolicy, Source,
};
use crate::federation::{DOMAIN_KEY_LOCAL, DomainPolicy, Mode, domain_key_address};
use crate::pgp::{self, PgpCert};

/// A partner domain's pin in the store's sealed-state form (public keys, armored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerDomainRecord {
    /// Newest first.
    pub keys: Vec<PinnedKeyRecord>,
    pub policy: Option<PinnedPolicyRecord>,
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

/// One of our domain keys as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainKeyDetail {
    pub fingerprint: String,
    pub created: u64,
    pub expires: Option<u64>,
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
        Ok(PartnerDomain { keys, policy })
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
        mode: p.policy.map(|x| x.policy.mode.as_str().to_owned()),
        max_age: p.policy.map(|x| x.policy.max_age),
        policy_seen: p.policy.map(|x| x.seen),
        policy_source: p.policy.map(|x| x.source.as_str().to_owned()),
        enforced: pin::enforced(p, now),
    }
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
        self.enrol(&address, now, validity)?;
        Ok(true)
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
        let ca = self.ca()?;
        let id = ca.issue(&address, now - Duration::from_secs(60), now + validity)?;
        let new = pgp::generate(&address, now - Duration::from_secs(60), validity)?;
        let key = match super::KeyStore::pgp_signer(self, &address, now) {
            Some(old) => pgp::certify(&old, &new, now)?,
            None => new,
        };
        self.update(|s, _, sealer| {
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

    /// Revokes `domain`'s key `fingerprint` (a revocation signature merged into it, kept
    /// for decryption and published so partners stop using it).
    pub fn revoke_domain_key(
        &self,
        domain: &str,
        fingerprint: &str,
        now: SystemTime,
    ) -> Result<(), KeyStoreError> {
        let address = domain_key_address(domain);
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
        let notes = self.update_as(urgency, |s, cache, _| {
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
        let keys = pgp::parse_keyring(data)?
            .into_iter()
            .map(|c| c.strip_secret_key_material())
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Err(KeyStoreError::NoKey);
        }
        let evidence = Evidence {
            source: Source::Imported,
            keys,
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
