//! Federation for the admin: our domains' keys (list, rollover, revocation, the DNS
//! records to publish) and the partner domains pinned (list, import by hand, look up now,
//! forget). Changes go through the key store and so through the cluster.

use std::sync::Arc;
use std::time::SystemTime;

use postern_api::views;
use postern_crypto::federation::{self as fed, DOMAIN_KEY_LOCAL, domain_key_address};
use postern_crypto::keys::store::PartnerDomainSummary;
use postern_crypto::keys::{KeyStore as _, KeyStoreError};
use postern_crypto::pgp;
use postern_crypto::policy::SharedPolicy;

use crate::federation::Federation;
use crate::member::MemberError;
use crate::services::keys::{Keys, KeysError};

#[derive(Debug, thiserror::Error)]
pub enum DomainsError {
    #[error("{0} is not one of this gateway's internal domains")]
    NotOurs(String),
    #[error("{0} has no domain key yet (it is made within seconds of the domain being set)")]
    NoKey(String),
    #[error("{0:?} is not a domain name")]
    BadDomain(String),
    #[error("nothing is pinned for {0}")]
    NotPinned(String),
    #[error("this node does not look partner domains up (federation.discover = false)")]
    NoDiscovery,
    #[error(
        "looking {0} up took longer than {1:?} (federation.lookup_timeout): its resolver or web server does not answer; what is pinned stays"
    )]
    TimedOut(String, std::time::Duration),
    #[error(transparent)]
    Keys(#[from] KeysError),
}

impl From<KeyStoreError> for DomainsError {
    fn from(e: KeyStoreError) -> DomainsError {
        DomainsError::Keys(KeysError::Store(e))
    }
}

impl From<MemberError> for DomainsError {
    fn from(e: MemberError) -> DomainsError {
        DomainsError::Keys(KeysError::Member(e))
    }
}

/// The domains service.
#[derive(Debug, Clone)]
pub struct Domains {
    pub keys: Keys,
    pub policy: Arc<SharedPolicy>,
    pub federation: Option<Arc<Federation>>,
}

fn partner_view(p: PartnerDomainSummary) -> views::PartnerDomain {
    views::PartnerDomain {
        domain: p.domain,
        keys: p
            .keys
            .into_iter()
            .map(|k| views::PinnedKey {
                fingerprint: k.fingerprint,
                trust: k.trust,
                sources: k.sources,
                first_seen: k.first_seen,
                last_seen: k.last_seen,
                revoked: k.revoked,
            })
            .collect(),
        certs: p
            .certs
            .into_iter()
            .map(|c| views::PinnedCert {
                fingerprint: c.fingerprint,
                subject: c.subject,
                issuer: c.issuer,
                not_after: c.not_after,
                trust: c.trust,
                sources: c.sources,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
            })
            .collect(),
        mode: p.mode,
        max_age: p.max_age,
        policy_seen: p.policy_seen,
        policy_source: p.policy_source,
        enforced: p.enforced,
    }
}

impl Domains {
    fn ours(&self, domain: &str) -> Result<String, DomainsError> {
        let d = domain.trim().to_ascii_lowercase();
        if !self.policy.get().is_internal(&format!("x@{d}")) {
            return Err(DomainsError::NotOurs(d));
        }
        Ok(d)
    }

    fn domain_view(&self, domain: &str) -> views::Domain {
        let now = SystemTime::now();
        let store = &self.keys.store;
        let address = domain_key_address(domain);
        let policy = self.policy.get().domain_policy;
        views::Domain {
            keys: store
                .domain_key_details(domain, now)
                .into_iter()
                .map(|k| views::DomainKey {
                    fingerprint: k.fingerprint,
                    created: k.created,
                    expires: k.expires,
                    revoked: k.revoked,
                    current: k.current,
                })
                .collect(),
            smime: store
                .domain_cert_details(domain, now)
                .into_iter()
                .map(|c| views::DomainCert {
                    serial: c.serial,
                    fingerprint: c.fingerprint,
                    not_before: c.not_before,
                    not_after: c.not_after,
                    revoked: c.revoked,
                    current: c.current,
                })
                .collect(),
            mode: policy.map(|p| p.mode.as_str().to_owned()),
            max_age: policy.map(|p| p.max_age),
            address,
            domain: domain.to_owned(),
        }
    }

    /// Our internal domains with their keys (a domain whose key is not made yet is listed
    /// without keys).
    pub async fn list(&self) -> Result<Vec<views::Domain>, DomainsError> {
        self.keys.member.read_barrier().await?;
        let mut domains = self.policy.get().exact_internal_domains();
        for d in self.keys.store.own_domains() {
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        domains.sort();
        Ok(domains.iter().map(|d| self.domain_view(d)).collect())
    }

    pub async fn rollover(&self, domain: String) -> Result<views::Domain, DomainsError> {
        let d = self.ours(&domain)?;
        let (store, member, validity) = (
            Arc::clone(&self.keys.store),
            Arc::clone(&self.keys.member),
            self.keys.validity,
        );
        member.read_barrier().await?;
        let dd = d.clone();
        tokio::task::spawn_blocking(move || {
            store.roll_domain_key(&dd, SystemTime::now(), validity)
        })
        .await
        .map_err(|e| KeysError::Task(e.to_string()))??;
        Ok(self.domain_view(&d))
    }

    pub async fn revoke(&self, domain: String, fingerprint: String) -> Result<(), DomainsError> {
        let d = self.ours(&domain)?;
        self.keys.member.read_barrier().await?;
        let store = Arc::clone(&self.keys.store);
        tokio::task::spawn_blocking(move || {
            store.revoke_domain_key(&d, &fingerprint, SystemTime::now())
        })
        .await
        .map_err(|e| KeysError::Task(e.to_string()))??;
        Ok(())
    }

    /// The zone-file lines the admin publishes in the domain's DNSSEC-signed zone.
    pub async fn dns_records(&self, domain: String) -> Result<views::DnsRecords, DomainsError> {
        let d = self.ours(&domain)?;
        self.keys.member.read_barrier().await?;
        let now = SystemTime::now();
        let store = &self.keys.store;
        let signer = store
            .pgp_signer(&domain_key_address(&d), now)
            .ok_or_else(|| DomainsError::NoKey(d.clone()))?;
        let mut records = Vec::new();
        let mut keyring = Vec::new();
        for k in store.domain_published_keys(&d, now) {
            keyring.extend(pgp::public_bytes(&k));
        }
        records.push(fed::dns::openpgpkey_record(DOMAIN_KEY_LOCAL, &d, &keyring));
        // Every certificate valid now and not revoked: the current one and, after a
        // rollover, the next.
        for cert in store.domain_published_certs(&d, now) {
            if let Ok(der) = cert.to_der() {
                records.push(fed::dns::smimea_record(DOMAIN_KEY_LOCAL, &d, &der));
            }
        }
        if let Some(p) = self.policy.get().domain_policy {
            records.push(fed::dns::policy_record(&d, &p, &pgp::fingerprint(&signer)));
        }
        Ok(views::DnsRecords { domain: d, records })
    }

    pub async fn partners(&self) -> Result<Vec<views::PartnerDomain>, DomainsError> {
        self.keys.member.read_barrier().await?;
        Ok(self
            .keys
            .store
            .partner_domains(SystemTime::now())
            .into_iter()
            .map(partner_view)
            .collect())
    }

    fn partner(&self, domain: &str) -> Result<views::PartnerDomain, DomainsError> {
        self.keys
            .store
            .partner_domains(SystemTime::now())
            .into_iter()
            .find(|p| p.domain == domain)
            .map(partner_view)
            .ok_or_else(|| DomainsError::NotPinned(domain.to_owned()))
    }

    fn partner_domain(domain: &str) -> Result<String, DomainsError> {
        let d = domain.trim().to_ascii_lowercase();
        if fed::valid_domain(&d) {
            Ok(d)
        } else {
            Err(DomainsError::BadDomain(domain.to_owned()))
        }
    }

    pub async fn import(
        &self,
        domain: String,
        data: String,
    ) -> Result<views::PartnerDomain, DomainsError> {
        let d = Self::partner_domain(&domain)?;
        let bytes = postern_crypto::mime::base64_decode(data.as_bytes()).map_err(|e| {
            KeysError::Base64 {
                what: "the key data",
                reason: e.to_string(),
            }
        })?;
        self.keys.member.read_barrier().await?;
        let store = Arc::clone(&self.keys.store);
        let dd = d.clone();
        tokio::task::spawn_blocking(move || {
            store.import_partner_domain(&dd, &bytes, SystemTime::now())
        })
        .await
        .map_err(|e| KeysError::Task(e.to_string()))??;
        self.partner(&d)
    }

    pub async fn refresh(&self, domain: String) -> Result<views::PartnerDomain, DomainsError> {
        let d = Self::partner_domain(&domain)?;
        let f = self.federation.as_ref().ok_or(DomainsError::NoDiscovery)?;
        if f.bounded(&d).await.is_none() {
            return Err(DomainsError::TimedOut(d, f.lookup_timeout()));
        }
        self.partner(&d)
    }

    pub async fn forget(&self, domain: String) -> Result<(), DomainsError> {
        let d = Self::partner_domain(&domain)?;
        self.keys.member.read_barrier().await?;
        let store = Arc::clone(&self.keys.store);
        let dd = d.clone();
        tokio::task::spawn_blocking(move || store.forget_partner_domain(&dd))
            .await
            .map_err(|e| KeysError::Task(e.to_string()))?
            .map_err(|e| match e {
                KeyStoreError::NotEnrolled(_) => DomainsError::NotPinned(d),
                other => other.into(),
            })
    }
}
