//! Domains in the key store. An internal domain's own key is an enrolled identity at
//! `domainkey@DOMAIN` (S/MIME certificate from the built-in CA, OpenPGP key), so it is
//! sealed, replicated, rolled over and served like any user's — except that the next key
//! is certified by the current one, so partners accept the change. Partner domains are in
//! `partner_domains.rs`.

use std::time::{Duration, SystemTime};

use openssl::x509::X509;

use super::{KeyStoreError, MemoryKeyStore, normalize_address};
use crate::federation::{DOMAIN_KEY_LOCAL, domain_key_address};
use crate::keys::ca;
use crate::pgp::{self, PgpCert};
use crate::smime;

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

/// Whether `address` is a domain key's (`domainkey@…`).
pub fn is_domain_key(address: &str) -> bool {
    address
        .split_once('@')
        .is_some_and(|(l, _)| l.eq_ignore_ascii_case(DOMAIN_KEY_LOCAL))
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
}

/// Whether a key is still published: it has not expired (revoked or not).
fn published(k: &PgpCert, now: SystemTime) -> bool {
    pgp::expires(k, now).is_none_or(|t| t > now)
}
