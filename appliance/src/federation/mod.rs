//! Discovery of partner domains (DESIGN.md §5): when mail goes to a domain that could be
//! domain-encrypted, the relay asks here (the [`Discovery`] port) before the recipient's
//! treatment is decided. A domain seen recently is answered from the cache in microseconds;
//! otherwise, within `federation.lookup_timeout`, the validating resolver is asked for the
//! domain key's OPENPGPKEY and SMIMEA records and the `_mailenc` policy (DNSSEC:
//! authoritative), then the Web
//! Key Directory (HTTPS). What they say goes into the key store's pin for the domain
//! (`postern_crypto::federation::pin`), which is replicated; the pin's rules, not this
//! module, decide what is trusted. Concurrent lookups of one domain wait for the first.

pub mod dns;
pub mod wkd;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use hickory_proto::rr::RecordType;
use postern_crypto::federation::pin::{Evidence, Note, Source};
use postern_crypto::federation::{self as fed, DOMAIN_KEY_LOCAL, DomainPolicy, domain_key_address};
use postern_crypto::keys::{KeyStore, MemoryKeyStore};
use postern_crypto::pgp::{self, PgpCert};
use tokio::sync::Mutex as AsyncMutex;

use crate::config::FederationConfig;
use crate::relay::discovery::{BoxFuture, Discovery};

/// Counters for the metrics.
#[derive(Debug, Default)]
pub struct FederationStats {
    /// Lookups that went to the network (not answered from the cache).
    pub lookups: AtomicU64,
    /// Keys pinned for the first time or replaced by a rollover.
    pub discovered: AtomicU64,
    /// Answers that DNSSEC validated.
    pub verified: AtomicU64,
    /// Different keys refused (the pin stayed).
    pub refused: AtomicU64,
    /// Lookups that failed (resolver, HTTPS, timeout).
    pub failed: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    found: bool,
}

/// The discovery service.
#[derive(Debug)]
pub struct Federation {
    keys: Arc<MemoryKeyStore>,
    config: FederationConfig,
    resolver: Option<SocketAddr>,
    tls: Arc<rustls::ClientConfig>,
    cache: std::sync::Mutex<HashMap<String, Entry>>,
    inflight: AsyncMutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    pub stats: FederationStats,
}

impl Federation {
    /// The service for `config`; the resolver is the configured one or resolv.conf's first.
    pub fn new(
        keys: Arc<MemoryKeyStore>,
        config: &FederationConfig,
    ) -> Result<Federation, wkd::RootsError> {
        let resolver = config.resolver.or_else(|| {
            std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .and_then(|t| dns::resolv_conf_nameserver(&t))
        });
        Ok(Federation {
            keys,
            tls: wkd::client_config(config.wkd_roots.as_deref())?,
            config: config.clone(),
            resolver,
            cache: std::sync::Mutex::default(),
            inflight: AsyncMutex::default(),
            stats: FederationStats::default(),
        })
    }

    /// Whether `domain` was looked up recently enough.
    fn fresh(&self, domain: &str) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(domain).is_some_and(|e| {
            let ttl = if e.found {
                self.config.refresh
            } else {
                self.config.negative_ttl
            };
            e.at.elapsed() < ttl
        })
    }

    fn remember(&self, domain: &str, found: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(
            domain.to_owned(),
            Entry {
                at: Instant::now(),
                found,
            },
        );
    }

    /// Looks `domain` up now (bounded by the caller) and pins what was learned.
    pub async fn lookup(&self, domain: &str) -> bool {
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        let mut found = false;
        for ev in [self.dns(domain).await, self.wkd(domain).await]
            .into_iter()
            .flatten()
        {
            found |= !ev.keys.is_empty() || !ev.certs.is_empty() || ev.policy.is_some();
            let notes = self.keys.learn_domain(domain, &ev, SystemTime::now());
            self.count(domain, ev.source, &notes);
        }
        found
    }

    /// [`Federation::lookup`] within `federation.lookup_timeout`, remembered in the
    /// cache; None when it timed out (what is pinned stays as it was).
    pub async fn bounded(&self, domain: &str) -> Option<bool> {
        match tokio::time::timeout(self.config.lookup_timeout, self.lookup(domain)).await {
            Ok(found) => {
                self.remember(domain, found);
                Some(found)
            }
            Err(_) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%domain, timeout = ?self.config.lookup_timeout, "partner domain lookup timed out; deciding with what is pinned");
                self.remember(domain, false);
                None
            }
        }
    }

    /// The counters (`enforced` is the relay's to fill in).
    pub fn counters(&self) -> postern_api::views::FederationCounters {
        let s = &self.stats;
        postern_api::views::FederationCounters {
            lookups: s.lookups.load(Ordering::Relaxed),
            discovered: s.discovered.load(Ordering::Relaxed),
            verified: s.verified.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            enforced: 0,
        }
    }

    /// The longest a lookup may take.
    pub fn lookup_timeout(&self) -> std::time::Duration {
        self.config.lookup_timeout
    }

    fn count(&self, domain: &str, source: Source, notes: &[Note]) {
        for n in notes {
            match n {
                Note::Pinned(f) | Note::Replaced { new: f, .. } => {
                    self.stats.discovered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%domain, key = %f, source = source.as_str(), "partner domain key pinned");
                }
                Note::Refused { offered, reason } => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%domain, %offered, %reason, source = source.as_str(), "a different partner domain key was refused; the pin stays");
                }
                Note::Revoked(f) => {
                    tracing::info!(%domain, key = %f, "partner domain key revoked")
                }
                Note::PolicyIgnored(m) => {
                    tracing::info!(%domain, mode = m.as_str(), source = source.as_str(), "a weaker source's policy was ignored")
                }
                Note::Confirmed(_) | Note::PolicyPinned(_) => {}
            }
        }
    }

    /// The domain's OPENPGPKEY and policy record, when the resolver validated them.
    async fn dns(&self, domain: &str) -> Option<Evidence> {
        let resolver = self.resolver?;
        let key_name = fed::dns::openpgpkey_name(DOMAIN_KEY_LOCAL, domain);
        let cert_name = fed::dns::smimea_name(DOMAIN_KEY_LOCAL, domain);
        let policy_name = fed::dns::policy_name(domain);
        let (keys, certs, policy) = tokio::join!(
            dns::query(resolver, &key_name, RecordType::OPENPGPKEY),
            dns::query(
                resolver,
                &cert_name,
                RecordType::from(fed::dns::SMIMEA_TYPE)
            ),
            dns::query(resolver, &policy_name, RecordType::TXT),
        );
        let mut out = Evidence {
            source: Source::Dnssec,
            keys: Vec::new(),
            certs: Vec::new(),
            policy: None,
        };
        for (what, answer) in [
            ("OPENPGPKEY", &keys),
            ("SMIMEA", &certs),
            ("policy", &policy),
        ] {
            match answer {
                Err(e) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%domain, error = %e, "{what} lookup failed");
                }
                Ok(a) if !a.authentic && !a.records.is_empty() => {
                    tracing::info!(%domain, "{what} answer not validated by DNSSEC: ignored");
                }
                Ok(_) => {}
            }
        }
        if let Ok(a) = keys.as_ref()
            && a.authentic
        {
            let certs = a
                .records
                .iter()
                .filter_map(|k| match pgp::parse_cert(k) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(%domain, error = %e, "an OPENPGPKEY record holds no usable OpenPGP key: ignored");
                        None
                    }
                })
                .collect();
            out.keys = domain_keys(certs, domain, Source::Dnssec);
        }
        if let Ok(a) = certs.as_ref()
            && a.authentic
        {
            out.certs = domain_certs(&a.records, domain);
        }
        if let Ok(a) = policy.as_ref()
            && a.authentic
        {
            out.policy = a.records.iter().find_map(|t| {
                let text = String::from_utf8_lossy(t);
                fed::dns::parse_policy_text(&text).map(|(p, _)| p)
            });
        }
        if out.keys.is_empty() && out.certs.is_empty() && out.policy.is_none() {
            return None;
        }
        self.stats.verified.fetch_add(1, Ordering::Relaxed);
        Some(out)
    }

    /// The domain's WKD policy file and domain key.
    async fn wkd(&self, domain: &str) -> Option<Evidence> {
        let mut policy: Option<DomainPolicy> = None;
        for url in fed::wkd::policy_urls(domain) {
            match wkd::get(&self.tls, self.resolver, &url).await {
                Ok(Some(body)) => {
                    policy = fed::wkd::parse_policy(&String::from_utf8_lossy(&body)).0;
                    break;
                }
                Ok(None) => break,
                Err(e) => wkd_failed(domain, &e),
            }
        }
        let mut keys = Vec::new();
        for url in fed::wkd::key_urls(DOMAIN_KEY_LOCAL, domain) {
            match wkd::get(&self.tls, self.resolver, &url).await {
                Ok(Some(body)) => {
                    keys = match pgp::parse_keyring(&body) {
                        Ok(certs) => domain_keys(certs, domain, Source::Wkd),
                        Err(e) => {
                            tracing::warn!(%domain, %url, error = %e, "WKD answered with something that is not an OpenPGP key: ignored");
                            Vec::new()
                        }
                    };
                    break;
                }
                Ok(None) => {}
                Err(e) => wkd_failed(domain, &e),
            }
        }
        if keys.is_empty() && policy.is_none() {
            return None;
        }
        Some(Evidence {
            source: Source::Wkd,
            keys,
            certs: Vec::new(),
            policy,
        })
    }
}

/// The keys from the network that are `domain`'s domain key (public, the right user ID);
/// any other is refused with a logged reason (a key for another domain is never pinned).
fn domain_keys(certs: Vec<PgpCert>, domain: &str, source: Source) -> Vec<PgpCert> {
    let address = domain_key_address(domain);
    certs
        .into_iter()
        .map(|c| c.strip_secret_key_material())
        .filter(|c| {
            let names = pgp::cert_emails(c, SystemTime::now());
            let ours = names.contains(&address);
            if !ours {
                tracing::warn!(%domain, key = %pgp::fingerprint(c), names = ?names, source = source.as_str(), "a key that is not {address}'s was offered: ignored");
            }
            ours
        })
        .collect()
}

/// The certificates of validated SMIMEA records that are `domain`'s, valid now; any other
/// is refused with a logged reason.
fn domain_certs(records: &[Vec<u8>], domain: &str) -> Vec<openssl::x509::X509> {
    let now = SystemTime::now();
    records
        .iter()
        .filter_map(|r| match fed::dns::parse_smimea(r) {
            Ok(c) if !postern_crypto::smime::names_domain(&c, domain) => {
                tracing::warn!(%domain, names = ?postern_crypto::smime::cert_emails(&c), "an SMIMEA certificate that is not issued for the domain: ignored");
                None
            }
            Ok(c) if !postern_crypto::keys::ca::valid_at(&c, now) => {
                tracing::warn!(%domain, fingerprint = %postern_crypto::smime::fingerprint(&c), "an SMIMEA certificate that is expired or not valid yet: ignored");
                None
            }
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(%domain, error = %e, "an SMIMEA record ignored");
                None
            }
        })
        .collect()
}

/// A failed WKD fetch: most domains have no WKD host at all (not worth more than a debug
/// line); anything else — TLS, HTTP status, an oversized answer — is worth a warning.
fn wkd_failed(domain: &str, e: &wkd::WkdError) {
    match e {
        wkd::WkdError::Connect { .. } => tracing::debug!(%domain, error = %e, "no WKD"),
        _ => tracing::warn!(%domain, error = %e, "WKD fetch refused"),
    }
}

impl Discovery for Federation {
    fn discover<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.config.discover || self.fresh(domain) {
                return;
            }
            // One lookup per domain at a time: the others wait for its result.
            let gate = {
                let mut inflight = self.inflight.lock().await;
                Arc::clone(inflight.entry(domain.to_owned()).or_default())
            };
            let _one = gate.lock().await;
            if self.fresh(domain) {
                return;
            }
            self.bounded(domain).await;
            self.inflight.lock().await.remove(domain);
        })
    }
}
