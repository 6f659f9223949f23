//! The key store: the interface the mail path reads ([`KeyStore`]) and its in-memory
//! implementation ([`MemoryKeyStore`]). Its state ([`StoreState`]) is the sealed form:
//! private keys appear in it only sealed ([`super::seal`]); unsealed copies live in memory.
//!
//! Every change is computed on a copy and handed over as a list of [`Change`]s: without
//! [`Replication`] the store installs them itself; with it (the cluster) they are proposed,
//! and arrive back through [`MemoryKeyStore::install`] once the cluster applied them, on
//! every node alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use serde::{Deserialize, Serialize};

use super::ca::{self, Ca};
use super::seal::{SealError, Sealer};
use crate::federation::pin::{Evidence, Note, PartnerDomain};
use crate::pgp::{self, PgpCert};
use crate::smime::{self, Capabilities, Identity};

mod domains;
mod partner_domains;
pub use domains::{DomainCertDetail, DomainKeyDetail, is_domain_key};
pub use partner_domains::{
    PartnerDomainRecord, PartnerDomainSummary, PinnedCertRecord, PinnedCertSummary,
    PinnedKeyRecord, PinnedKeySummary, PinnedPolicyRecord, Refusal,
};

/// How long a harvested key may wait for another change of the store to finish.
const HARVEST_WAIT: Duration = Duration::from_millis(300);

/// Rollover starts this long before a signing key expires (DESIGN.md §4).
pub const ROLLOVER_BEFORE: Duration = Duration::from_secs(7 * 86_400);

/// What the mail path needs from a key store. All reads are local and cheap.
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Whether `address` is an enrolled (internal, key-holding) user.
    fn is_enrolled(&self, address: &str) -> bool;
    /// The S/MIME identity that signs for `address` now: the newest one already valid.
    fn signing_identity(&self, address: &str, now: SystemTime) -> Option<Identity>;
    /// Every S/MIME identity of `address`, newest first (old ones keep decrypting).
    fn smime_identities(&self, address: &str) -> Vec<Identity>;
    /// The OpenPGP key that signs for `address` now.
    fn pgp_signer(&self, address: &str, now: SystemTime) -> Option<PgpCert>;
    /// Every OpenPGP secret key of `address`, newest first.
    fn pgp_secrets(&self, address: &str) -> Vec<PgpCert>;
    /// A partner's S/MIME certificate usable for encryption now, with its capabilities.
    fn smime_recipient(&self, address: &str, now: SystemTime) -> Option<(X509, Capabilities)>;
    /// A partner's OpenPGP certificate usable for encryption now.
    fn pgp_recipient(&self, address: &str, now: SystemTime) -> Option<PgpCert>;
    /// Every OpenPGP public certificate known (to check signatures).
    fn pgp_known(&self) -> Vec<PgpCert>;
    /// The S/MIME trust anchors: configured CAs, Postern's own CA and the partner domains'
    /// pinned S/MIME domain certificates.
    fn trust_anchors(&self) -> Result<X509Store, openssl::error::ErrorStack>;
    /// Remembers a partner's S/MIME certificate (only call after a verified signature).
    fn harvest_smime(
        &self,
        cert: &X509,
        capabilities: &Capabilities,
        now: SystemTime,
    ) -> Vec<String>;
    /// Remembers a partner's OpenPGP certificate (only after a verified signature).
    fn harvest_pgp(&self, cert: &PgpCert, now: SystemTime) -> Vec<String>;
    /// The internal domains that have a domain key.
    fn own_domains(&self) -> Vec<String>;
    /// An own domain's public domain keys valid now (current and next), newest first.
    fn domain_keys(&self, domain: &str, now: SystemTime) -> Vec<PgpCert>;
    /// What is pinned for a partner domain.
    fn partner_domain(&self, domain: &str) -> Option<PartnerDomain>;
    /// Merges evidence about a partner domain into its pin (a harvest: kept only when the
    /// cluster commits it quickly); what changed.
    fn learn_domain(&self, domain: &str, evidence: &Evidence, now: SystemTime) -> Vec<Note>;
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("the key store data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    #[error(transparent)]
    Pgp(#[from] pgp::PgpError),
    #[error("OpenSSL: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("not a valid email address: {0:?}")]
    BadAddress(String),
    #[error("{0} is not enrolled")]
    NotEnrolled(String),
    #[error("PKCS#12 file does not open (wrong password or damaged file)")]
    Pkcs12,
    #[error("the certificate names no email address")]
    NoAddress,
    #[error("the OpenPGP key holds no secret key material")]
    NoSecret,
    #[error("no OpenPGP key in the data")]
    NoKey,
    #[error("neither an OpenPGP key nor an X.509 certificate (PEM or DER) in the data")]
    NoDomainKey,
    #[error("the certificate is not issued for {domain} (it names {names:?})")]
    WrongDomain { domain: String, names: String },
    #[error("the certificate {0} is expired or not valid yet")]
    Expired(String),
    /// The cluster could not commit the change (no quorum, timeout): try again.
    #[error("the change was not stored: {0}")]
    Replication(String),
    /// The cluster's state refuses the change.
    #[error("the change was refused: {0}")]
    Refused(String),
}

/// The whole key store in its sealed form: what is replicated and what `to_bytes` writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreState {
    pub ca: Option<SealedIdentity>,
    pub anchors: Vec<String>,
    pub users: BTreeMap<String, UserRecord>,
    pub partners: BTreeMap<String, PartnerRecord>,
    #[serde(default)]
    pub partner_domains: BTreeMap<String, PartnerDomainRecord>,
}

/// An S/MIME identity: certificate and chain (PEM), private key sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedIdentity {
    pub cert: String,
    pub chain: Vec<String>,
    /// Sealed PKCS#8 DER, base64.
    pub key: String,
    /// Revoked by the admin (domain certificates): kept to decrypt, never signs, never
    /// encrypted to, no longer published.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

/// An enrolled user's keys, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub smime: Vec<SealedIdentity>,
    pub pgp: Vec<SealedPgp>,
}

/// An OpenPGP key: public part armored, transferable secret key sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedPgp {
    pub public: String,
    /// Sealed transferable secret key, base64.
    pub secret: String,
}

/// A partner's harvested or imported public keys, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerRecord {
    pub smime: Vec<HarvestedCert>,
    pub pgp: Vec<HarvestedPgp>,
}

/// A partner's S/MIME certificate (PEM) with what its signature announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarvestedCert {
    pub cert: String,
    pub capabilities: Capabilities,
    pub seen: u64,
}

/// A partner's OpenPGP certificate (armored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarvestedPgp {
    pub cert: String,
    pub seen: u64,
}

/// One change of the store: the new value of one entity (`None`: removed).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Ca(SealedIdentity),
    Anchors(Vec<String>),
    User(String, Option<UserRecord>),
    Partner(String, Option<PartnerRecord>),
    PartnerDomain(String, Option<PartnerDomainRecord>),
}

/// Why a change is made: an admin waits for it to be durable; a key harvested from mail
/// must never hold the message up for long (without quorum it is simply not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Admin,
    Harvest,
}

/// Where changes go when the store is replicated. `commit` returns once the changes were
/// agreed and handed back through [`MemoryKeyStore::install`] on this node, or fails.
pub trait Replication: Send + Sync + std::fmt::Debug {
    fn commit(&self, changes: Vec<Change>, urgency: Urgency) -> Result<(), KeyStoreError>;
}

/// Unsealed, parsed form of the state.
#[derive(Default)]
struct Cache {
    ca: Option<Ca>,
    anchors: Vec<X509>,
    smime: HashMap<String, Vec<Identity>>,
    pgp: HashMap<String, Vec<PgpCert>>,
    partner_smime: HashMap<String, Vec<(X509, Capabilities)>>,
    partner_pgp: HashMap<String, Vec<PgpCert>>,
    partner_domains: HashMap<String, PartnerDomain>,
    /// Per address, the SHA-256 fingerprints of its revoked certificates.
    revoked_smime: HashMap<String, std::collections::HashSet<String>>,
}

/// A user as listed by `posternctl user list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserSummary {
    pub address: String,
    pub smime: Vec<CertSummary>,
    pub pgp: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertSummary {
    pub serial: String,
    pub not_before: u64,
    pub not_after: u64,
}

/// A harvested or imported partner key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartnerSummary {
    pub address: String,
    pub smime: Vec<CertSummary>,
    pub smime_gcm: bool,
    pub pgp: Vec<String>,
}

/// The in-memory key store.
pub struct MemoryKeyStore {
    sealer: RwLock<Sealer>,
    state: RwLock<(StoreState, Cache)>,
    replication: RwLock<Option<Arc<dyn Replication>>>,
    /// One change at a time on this node, each computed from the previous one's result.
    updating: Mutex<()>,
    generation: AtomicU64,
    /// Partner domain keys refused on this node, not yet taken by the alert task.
    refusals: Mutex<std::collections::VecDeque<Refusal>>,
    /// Bumped whenever the whole state is replaced (a snapshot, a cluster joined, a node
    /// leaving its cluster): keys made from the state before must not be committed after.
    epoch: AtomicU64,
    /// How long (seconds) a domain's next key is published before it signs: half the
    /// `max_age` we publish (see [`MemoryKeyStore::set_domain_lead`]).
    domain_lead: AtomicU64,
}

impl std::fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn b64(data: &[u8]) -> String {
    openssl::base64::encode_block(data)
}

fn unb64(s: &str) -> Result<Vec<u8>, KeyStoreError> {
    crate::mime::base64_decode(s.as_bytes()).map_err(|e| KeyStoreError::Corrupt(e.to_string()))
}

fn pem(cert: &X509) -> Result<String, KeyStoreError> {
    Ok(String::from_utf8_lossy(&cert.to_pem()?).into_owned())
}

fn parse_pem(s: &str) -> Result<X509, KeyStoreError> {
    X509::from_pem(s.as_bytes()).map_err(|e| KeyStoreError::Corrupt(e.to_string()))
}

/// A plausible mailbox: one `@`, non-empty local part and domain, no spaces or controls.
pub fn normalize_address(address: &str) -> Result<String, KeyStoreError> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = a.split('@').count() == 2
        && a.split('@').all(|p| !p.is_empty())
        && !a.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(a.to_ascii_lowercase())
    } else {
        Err(KeyStoreError::BadAddress(address.to_owned()))
    }
}

fn smime_purpose(cert: &X509) -> String {
    format!("smime-key:{}", smime::serial_hex(cert))
}

fn pgp_purpose(fpr: &str) -> String {
    format!("pgp-key:{fpr}")
}

fn summary(cert: &X509) -> CertSummary {
    CertSummary {
        serial: smime::serial_hex(cert),
        not_before: ca::not_before(cert).map(secs).unwrap_or_default(),
        not_after: ca::not_after(cert).map(secs).unwrap_or_default(),
    }
}

use ca::valid_at;

/// The changes that turn `old` into `new`.
fn diff(old: &StoreState, new: &StoreState) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(ca) = &new.ca
        && old.ca.as_ref() != Some(ca)
    {
        out.push(Change::Ca(ca.clone()));
    }
    if old.anchors != new.anchors {
        out.push(Change::Anchors(new.anchors.clone()));
    }
    for (a, u) in &new.users {
        if old.users.get(a) != Some(u) {
            out.push(Change::User(a.clone(), Some(u.clone())));
        }
    }
    for a in old.users.keys().filter(|a| !new.users.contains_key(*a)) {
        out.push(Change::User(a.clone(), None));
    }
    for (a, p) in &new.partners {
        if old.partners.get(a) != Some(p) {
            out.push(Change::Partner(a.clone(), Some(p.clone())));
        }
    }
    for a in old
        .partners
        .keys()
        .filter(|a| !new.partners.contains_key(*a))
    {
        out.push(Change::Partner(a.clone(), None));
    }
    for (d, p) in &new.partner_domains {
        if old.partner_domains.get(d) != Some(p) {
            out.push(Change::PartnerDomain(d.clone(), Some(p.clone())));
        }
    }
    for d in old
        .partner_domains
        .keys()
        .filter(|d| !new.partner_domains.contains_key(*d))
    {
        out.push(Change::PartnerDomain(d.clone(), None));
    }
    out
}

impl MemoryKeyStore {
    pub fn new(sealer: Sealer) -> MemoryKeyStore {
        MemoryKeyStore {
            sealer: RwLock::new(sealer),
            state: RwLock::new((StoreState::default(), Cache::default())),
            replication: RwLock::new(None),
            updating: Mutex::new(()),
            generation: AtomicU64::new(0),
            refusals: Mutex::default(),
            domain_lead: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// Restores a store from [`MemoryKeyStore::to_bytes`] output; every sealed key must open.
    pub fn from_bytes(bytes: &[u8], sealer: Sealer) -> Result<MemoryKeyStore, KeyStoreError> {
        let state: StoreState =
            serde_json::from_slice(bytes).map_err(|e| KeyStoreError::Corrupt(e.to_string()))?;
        let (cache, errors) = build_cache(&state, &sealer);
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let store = MemoryKeyStore::new(sealer);
        *store.state.write().unwrap_or_else(|p| p.into_inner()) = (state, cache);
        Ok(store)
    }

    /// The state with every private key sealed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let guard = self.read();
        serde_json::to_vec_pretty(&guard.0).unwrap_or_default()
    }

    /// Increases with every change.
    /// How often the whole state was replaced (see [`MemoryKeyStore::clear`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// From now on changes go through `replication` (and come back through `install`).
    pub fn set_replication(&self, replication: Arc<dyn Replication>) {
        *self.replication.write().unwrap_or_else(|p| p.into_inner()) = Some(replication);
    }

    /// Replaces the whole state (and, when given, the key it is sealed under): at start
    /// and when the cluster restored a snapshot. Entities whose keys do not open are left
    /// out and reported; the rest is usable.
    pub fn replace(&self, state: StoreState, sealer: Option<Sealer>) -> Vec<KeyStoreError> {
        let mut sealer_guard = self.sealer.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sealer {
            *sealer_guard = s;
        }
        let (cache, errors) = build_cache(&state, &sealer_guard);
        let mut g = self.state.write().unwrap_or_else(|p| p.into_inner());
        *g = (state, cache);
        // Under the lock: a change that reads the new state sees the new epoch.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        drop(g);
        self.generation.fetch_add(1, Ordering::AcqRel);
        errors
    }

    /// Forgets everything: this node left its cluster (joining another), so nothing it
    /// knew may be committed into the next one; the cluster joined fills it again.
    pub fn clear(&self) {
        self.replace(StoreState::default(), None);
    }

    /// Installs changes the cluster applied (or this store made, without replication).
    /// An entity whose keys do not open keeps its sealed form but stays out of use; the
    /// errors are returned for the log.
    pub fn install(&self, changes: &[Change]) -> Vec<KeyStoreError> {
        let sealer = self.sealer.read().unwrap_or_else(|p| p.into_inner());
        let mut g = self.state.write().unwrap_or_else(|p| p.into_inner());
        let (state, cache) = &mut *g;
        let mut errors = Vec::new();
        for change in changes {
            if let Err(e) = install_one(state, cache, change, &sealer) {
                errors.push(e);
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        errors
    }

    /// The built-in CA (a copy: issuing with it takes no lock).
    fn ca(&self) -> Result<Ca, KeyStoreError> {
        self.read()
            .1
            .ca
            .clone()
            .ok_or_else(|| KeyStoreError::Corrupt("no CA".into()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (StoreState, Cache)> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut StoreState, &Cache, &Sealer) -> Result<T, KeyStoreError>,
    ) -> Result<T, KeyStoreError> {
        self.update_as(Urgency::Admin, None, change)
    }

    /// [`update`](Self::update) of keys made from the state of `epoch`: refused when the
    /// whole state was replaced meanwhile (the CA they came from may not be this cluster's).
    fn update_since<T>(
        &self,
        epoch: u64,
        change: impl FnOnce(&mut StoreState, &Cache, &Sealer) -> Result<T, KeyStoreError>,
    ) -> Result<T, KeyStoreError> {
        self.update_as(Urgency::Admin, Some(epoch), change)
    }

    fn updating_within(
        &self,
        wait: Duration,
    ) -> Result<std::sync::MutexGuard<'_, ()>, KeyStoreError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match self.updating.try_lock() {
                Ok(g) => return Ok(g),
                Err(std::sync::TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(KeyStoreError::Replication(
                        "another key store change is in progress".into(),
                    ));
                }
            }
        }
    }

    /// Applies `change` to a copy of the state and commits the difference: installed here
    /// directly, or through replication. A change that fails, or whose result does not
    /// open, leaves the store as it was.
    fn update_as<T>(
        &self,
        urgency: Urgency,
        epoch: Option<u64>,
        change: impl FnOnce(&mut StoreState, &Cache, &Sealer) -> Result<T, KeyStoreError>,
    ) -> Result<T, KeyStoreError> {
        let _one = match urgency {
            Urgency::Admin => self.updating.lock().unwrap_or_else(|p| p.into_inner()),
            // A harvest never waits long behind an admin change: mail is waiting.
            Urgency::Harvest => self.updating_within(HARVEST_WAIT)?,
        };
        let (out, changes) = {
            let sealer = self.sealer.read().unwrap_or_else(|p| p.into_inner());
            let g = self.read();
            if epoch.is_some_and(|e| e != self.epoch.load(Ordering::Acquire)) {
                return Err(KeyStoreError::Replication(
                    "the key store was replaced while the keys were made (this node joined a cluster or restored a snapshot); try again".into(),
                ));
            }
            let mut next = g.0.clone();
            let out = change(&mut next, &g.1, &sealer)?;
            let changes = diff(&g.0, &next);
            // Everything that will be installed must open.
            let mut scratch = (StoreState::default(), Cache::default());
            for c in &changes {
                install_one(&mut scratch.0, &mut scratch.1, c, &sealer)?;
            }
            (out, changes)
        };
        if changes.is_empty() {
            return Ok(out);
        }
        let replication = self
            .replication
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match replication {
            Some(r) => r.commit(changes, urgency)?,
            None => {
                if let Some(e) = self.install(&changes).into_iter().next() {
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Creates the built-in CA unless there is one. Returns whether it was created.
    pub fn ensure_ca(&self, name: &str, now: SystemTime) -> Result<bool, KeyStoreError> {
        if self.read().0.ca.is_some() {
            return Ok(false);
        }
        self.update(|s, _, sealer| {
            if s.ca.is_some() {
                return Ok(false);
            }
            let ca = Ca::generate(name, now, Duration::from_secs(10 * 365 * 86_400))?;
            s.ca = Some(seal_identity(&ca.identity, sealer, "ca-key")?);
            Ok(true)
        })
    }

    pub fn ca_pem(&self) -> Option<String> {
        self.read()
            .1
            .ca
            .as_ref()
            .and_then(|c| pem(&c.identity.cert).ok())
    }

    /// Enrols `address`: a new S/MIME certificate from the built-in CA and a new OpenPGP key,
    /// both valid for `validity` (an enrolled user who has keys gets fresh ones in addition).
    pub fn enrol(
        &self,
        address: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<UserSummary, KeyStoreError> {
        let address = normalize_address(address)?;
        // Keys are made before any lock is taken: generation takes a while, and the mail
        // path and the cluster's updates must not wait for it.
        let epoch = self.epoch.load(Ordering::Acquire);
        let ca = self.ca()?;
        let id = ca.issue(&address, now - Duration::from_secs(60), now + validity)?;
        let pgp = pgp::generate(&address, now - Duration::from_secs(60), validity)?;
        self.update_since(epoch, |s, _, sealer| {
            let user = s.users.entry(address.clone()).or_default();
            user.smime.insert(0, seal_identity(&id, sealer, "")?);
            user.pgp.insert(0, seal_pgp(&pgp, sealer)?);
            Ok(())
        })?;
        self.user(&address)
            .ok_or(KeyStoreError::NotEnrolled(address))
    }

    /// Removes a user and all their keys.
    pub fn remove_user(&self, address: &str) -> Result<(), KeyStoreError> {
        let address = normalize_address(address)?;
        self.update(|s, _, _| {
            s.users
                .remove(&address)
                .map(|_| ())
                .ok_or(KeyStoreError::NotEnrolled(address.clone()))
        })
    }

    /// Imports a PKCS#12 bundle as a user's S/MIME identity (address from the certificate).
    pub fn import_pkcs12(&self, der: &[u8], password: &str) -> Result<UserSummary, KeyStoreError> {
        let parse = || Pkcs12::from_der(der).and_then(|p| p.parse2(password));
        let parsed = match parse() {
            Ok(p) => p,
            // Bundles from older tools (RC2/3DES, as NSS and Windows write them) need
            // OpenSSL 3's legacy provider; load it once, next to the default one.
            Err(_) if legacy_provider() => parse().map_err(|_| KeyStoreError::Pkcs12)?,
            Err(_) => return Err(KeyStoreError::Pkcs12),
        };
        let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
            return Err(KeyStoreError::Pkcs12);
        };
        let chain = parsed
            .ca
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        let address = smime::cert_emails(&cert)
            .into_iter()
            .next()
            .ok_or(KeyStoreError::NoAddress)?;
        let id = Identity { cert, key, chain };
        self.update(|s, _, sealer| {
            let user = s.users.entry(address.clone()).or_default();
            user.smime.insert(0, seal_identity(&id, sealer, "")?);
            Ok(())
        })?;
        self.user(&address)
            .ok_or(KeyStoreError::NotEnrolled(address))
    }

    /// Imports an OpenPGP secret key as a user's key (address from its user IDs).
    pub fn import_pgp_secret(
        &self,
        data: &[u8],
        now: SystemTime,
    ) -> Result<UserSummary, KeyStoreError> {
        let cert = pgp::parse_cert(data)?;
        if !cert.is_tsk() {
            return Err(KeyStoreError::NoSecret);
        }
        let address = pgp::cert_emails(&cert, now)
            .into_iter()
            .next()
            .ok_or(KeyStoreError::NoAddress)?;
        self.update(|s, _, sealer| {
            let user = s.users.entry(address.clone()).or_default();
            user.pgp.insert(0, seal_pgp(&cert, sealer)?);
            Ok(())
        })?;
        self.user(&address)
            .ok_or(KeyStoreError::NotEnrolled(address))
    }

    /// Imports partner public keys: PEM certificates or OpenPGP keys (armored or binary).
    /// Returns the addresses that received a key.
    pub fn import_public(
        &self,
        data: &[u8],
        now: SystemTime,
    ) -> Result<Vec<String>, KeyStoreError> {
        if data
            .windows(27)
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            let certs = X509::stack_from_pem(data)?;
            let mut out = Vec::new();
            for c in &certs {
                out.extend(self.remember_smime(
                    c,
                    &Capabilities::default(),
                    now,
                    Urgency::Admin,
                )?);
            }
            return Ok(out);
        }
        let mut out = Vec::new();
        for c in pgp::parse_keyring(data)? {
            out.extend(self.remember_pgp(&c.strip_secret_key_material(), now, Urgency::Admin)?);
        }
        Ok(out)
    }

    /// Adds S/MIME trust anchors (PEM, one or more certificates).
    pub fn add_trust_anchors(&self, data: &[u8]) -> Result<usize, KeyStoreError> {
        let certs = X509::stack_from_pem(data)?;
        let n = certs.len();
        self.update(|s, _, _| {
            for c in &certs {
                let p = pem(c)?;
                if !s.anchors.contains(&p) {
                    s.anchors.push(p);
                }
            }
            Ok(n)
        })
    }

    /// Sets how long a domain's next key is published before it is used (half the
    /// `max_age` we publish; zero: at once). The daemon keeps it current with the policy.
    pub fn set_domain_lead(&self, lead: Duration) {
        self.domain_lead.store(lead.as_secs(), Ordering::Relaxed);
    }

    /// Of `usable` keys (newest first) of `address`, the one that signs now: the newest —
    /// except for a domain key, where it is the newest that has been published for the
    /// domain lead (so every partner that keeps our policy has seen it before it is used),
    /// and when none has, the one published longest.
    fn current<'a, T>(
        &self,
        address: &str,
        mut usable: impl Iterator<Item = &'a T> + Clone,
        created: impl Fn(&T) -> Option<SystemTime>,
        now: SystemTime,
    ) -> Option<&'a T> {
        let lead = Duration::from_secs(self.domain_lead.load(Ordering::Relaxed));
        if lead.is_zero() || !is_domain_key(address) {
            return usable.next();
        }
        let aged = usable
            .clone()
            .find(|k| created(k).is_some_and(|t| t + lead <= now));
        aged.or_else(|| usable.last())
    }

    /// Automatic rollover: every user whose newest S/MIME certificate or OpenPGP key expires
    /// within a week gets a new one (valid for `validity`); the old keys stay for decryption.
    /// Returns the users that rolled over.
    ///
    /// A user's keys roll over [`ROLLOVER_BEFORE`] their end; a domain key at least
    /// `domain_lead` before (half our published `max_age`: a partner that last saw our
    /// policy just before the rollover learns the next key — certified by the current one —
    /// at its next look, before the current key stops working).
    pub fn rollover(
        &self,
        now: SystemTime,
        validity: Duration,
        domain_lead: Duration,
    ) -> Result<Vec<String>, KeyStoreError> {
        let due = {
            let g = self.read();
            let mut due = Vec::new();
            for (address, ids) in &g.1.smime {
                let before = if is_domain_key(address) {
                    ROLLOVER_BEFORE.max(domain_lead)
                } else {
                    ROLLOVER_BEFORE
                };
                let newest_end = ids.iter().filter_map(|i| ca::not_after(&i.cert)).max();
                let smime_due = newest_end.is_some_and(|t| t <= now + before);
                let pgp_due = g.1.pgp.get(address).is_some_and(|keys| {
                    keys.iter()
                        .filter_map(|k| pgp::expires(k, now))
                        .max()
                        .is_some_and(|t| t <= now + before)
                        || keys.iter().all(|k| !pgp::can_sign(k, now))
                });
                if smime_due || pgp_due {
                    due.push((address.clone(), smime_due, pgp_due));
                }
            }
            due
        };
        if due.is_empty() || self.read().1.ca.is_none() {
            return Ok(Vec::new());
        }
        // New keys first, with no lock held (see `enrol`).
        let epoch = self.epoch.load(Ordering::Acquire);
        let ca = self.ca()?;
        let mut fresh = Vec::new();
        for (address, smime_due, pgp_due) in &due {
            let id = if *smime_due {
                Some(ca.issue(address, now - Duration::from_secs(60), now + validity)?)
            } else {
                None
            };
            let key = if *pgp_due {
                let new = pgp::generate(address, now - Duration::from_secs(60), validity)?;
                // A domain's next key is vouched for by its current one, so partners that
                // pinned the current key accept it (DESIGN.md §5).
                let current = is_domain_key(address)
                    .then(|| self.pgp_signer(address, now))
                    .flatten();
                Some(match current {
                    Some(old) => pgp::certify(&old, &new, now)?,
                    None => new,
                })
            } else {
                None
            };
            fresh.push((address.clone(), id, key));
        }
        self.update_since(epoch, |s, _, sealer| {
            let mut rolled = Vec::new();
            for (address, id, key) in &fresh {
                // A user removed meanwhile stays removed.
                let Some(user) = s.users.get_mut(address) else {
                    continue;
                };
                if let Some(id) = id {
                    user.smime.insert(0, seal_identity(id, sealer, "")?);
                }
                if let Some(k) = key {
                    user.pgp.insert(0, seal_pgp(k, sealer)?);
                }
                rolled.push(address.clone());
            }
            Ok(rolled)
        })
    }

    pub fn user(&self, address: &str) -> Option<UserSummary> {
        let address = normalize_address(address).ok()?;
        let g = self.read();
        g.0.users.get(&address)?;
        Some(UserSummary {
            smime: g
                .1
                .smime
                .get(&address)
                .map(|v| v.iter().map(|i| summary(&i.cert)).collect())
                .unwrap_or_default(),
            pgp: g
                .1
                .pgp
                .get(&address)
                .map(|v| v.iter().map(pgp::fingerprint).collect())
                .unwrap_or_default(),
            address,
        })
    }

    /// Every enrolled user (domain keys are listed with the domains).
    pub fn users(&self) -> Vec<UserSummary> {
        let names: Vec<String> = self
            .read()
            .0
            .users
            .keys()
            .filter(|a| !is_domain_key(a))
            .cloned()
            .collect();
        names.iter().filter_map(|a| self.user(a)).collect()
    }

    pub fn partners(&self) -> Vec<PartnerSummary> {
        let g = self.read();
        let mut names: Vec<&String> =
            g.1.partner_smime
                .keys()
                .chain(g.1.partner_pgp.keys())
                .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|a| {
                let smime = g.1.partner_smime.get(a);
                PartnerSummary {
                    address: a.clone(),
                    smime: smime
                        .map(|v| v.iter().map(|(c, _)| summary(c)).collect())
                        .unwrap_or_default(),
                    smime_gcm: smime.is_some_and(|v| v.first().is_some_and(|(_, c)| c.aes256_gcm)),
                    pgp: g
                        .1
                        .partner_pgp
                        .get(a)
                        .map(|v| v.iter().map(pgp::fingerprint).collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The public S/MIME certificates of a user (PEM, newest first).
    pub fn export_user_certs(&self, address: &str) -> Option<String> {
        let address = normalize_address(address).ok()?;
        let g = self.read();
        let ids = g.1.smime.get(&address)?;
        Some(ids.iter().filter_map(|i| pem(&i.cert).ok()).collect())
    }

    /// The public OpenPGP keys of a user, armored.
    pub fn export_user_pgp(&self, address: &str) -> Option<String> {
        let address = normalize_address(address).ok()?;
        let g = self.read();
        let keys = g.1.pgp.get(&address)?;
        Some(
            keys.iter()
                .map(|k| String::from_utf8_lossy(&pgp::armored_public(k)).into_owned())
                .collect(),
        )
    }

    /// The user's current S/MIME identity as PKCS#12 protected by `password`.
    pub fn export_pkcs12(&self, address: &str, password: &str) -> Result<Vec<u8>, KeyStoreError> {
        let address = normalize_address(address)?;
        let g = self.read();
        let id =
            g.1.smime
                .get(&address)
                .and_then(|v| v.first())
                .ok_or(KeyStoreError::NotEnrolled(address.clone()))?;
        let mut chain = openssl::stack::Stack::new()?;
        for c in &id.chain {
            chain.push(c.clone())?;
        }
        let p12 = Pkcs12::builder()
            .name(&address)
            .pkey(&id.key)
            .cert(&id.cert)
            .ca(chain)
            .build2(password)?;
        Ok(p12.to_der()?)
    }

    /// Keeps a partner's S/MIME certificate (our own users' addresses are never touched).
    fn remember_smime(
        &self,
        cert: &X509,
        capabilities: &Capabilities,
        now: SystemTime,
        urgency: Urgency,
    ) -> Result<Vec<String>, KeyStoreError> {
        let addresses = smime::cert_emails(cert);
        let p = pem(cert)?;
        self.update_as(urgency, None, |s, _, _| {
            let mut changed = Vec::new();
            for a in &addresses {
                if s.users.contains_key(a) {
                    continue; // never let mail replace our own users' keys
                }
                let rec = s.partners.entry(a.clone()).or_default();
                match rec.smime.iter_mut().find(|h| h.cert == p) {
                    Some(h) => {
                        if capabilities.announced {
                            h.capabilities = capabilities.clone();
                        }
                        h.seen = secs(now);
                    }
                    None => rec.smime.insert(
                        0,
                        HarvestedCert {
                            cert: p.clone(),
                            capabilities: capabilities.clone(),
                            seen: secs(now),
                        },
                    ),
                }
                changed.push(a.clone());
            }
            Ok(changed)
        })
    }

    /// Keeps a partner's OpenPGP certificate, merged with what is known of it.
    fn remember_pgp(
        &self,
        cert: &PgpCert,
        now: SystemTime,
        urgency: Urgency,
    ) -> Result<Vec<String>, KeyStoreError> {
        let public = cert.clone().strip_secret_key_material();
        let addresses = pgp::cert_emails(&public, now);
        let fpr = public.fingerprint();
        self.update_as(urgency, None, |s, cache, _| {
            let mut changed = Vec::new();
            for a in &addresses {
                if s.users.contains_key(a) {
                    continue;
                }
                let merged = cache
                    .partner_pgp
                    .get(a)
                    .and_then(|v| v.iter().find(|k| k.fingerprint() == fpr))
                    .map_or_else(
                        || public.clone(),
                        |old| pgp::merge(old.clone(), public.clone()),
                    );
                let armored = String::from_utf8_lossy(&pgp::armored_public(&merged)).into_owned();
                let rec = s.partners.entry(a.clone()).or_default();
                rec.pgp.retain(|h| {
                    pgp::parse_cert(h.cert.as_bytes())
                        .map(|c| c.fingerprint() != fpr)
                        .unwrap_or(false)
                });
                rec.pgp.insert(
                    0,
                    HarvestedPgp {
                        cert: armored,
                        seen: secs(now),
                    },
                );
                changed.push(a.clone());
            }
            Ok(changed)
        })
    }
}

/// Loads OpenSSL's legacy provider (keeping the default one); whether it is available.
fn legacy_provider() -> bool {
    static LEGACY: std::sync::OnceLock<Option<openssl::provider::Provider>> =
        std::sync::OnceLock::new();
    LEGACY
        .get_or_init(|| openssl::provider::Provider::try_load(None, "legacy", true).ok())
        .is_some()
}

fn seal_identity(
    id: &Identity,
    sealer: &Sealer,
    purpose: &str,
) -> Result<SealedIdentity, KeyStoreError> {
    let purpose = if purpose.is_empty() {
        smime_purpose(&id.cert)
    } else {
        format!("{purpose}:{}", smime::serial_hex(&id.cert))
    };
    let key = id.key.private_key_to_pkcs8()?;
    Ok(SealedIdentity {
        cert: pem(&id.cert)?,
        chain: id.chain.iter().map(pem).collect::<Result<_, _>>()?,
        key: b64(&sealer.seal(&purpose, &key)?),
        revoked: false,
    })
}

fn open_identity(
    s: &SealedIdentity,
    sealer: &Sealer,
    purpose: &str,
) -> Result<Identity, KeyStoreError> {
    let cert = parse_pem(&s.cert)?;
    let purpose = if purpose.is_empty() {
        smime_purpose(&cert)
    } else {
        format!("{purpose}:{}", smime::serial_hex(&cert))
    };
    let der = sealer.open(&purpose, &unb64(&s.key)?)?;
    let key = PKey::private_key_from_pkcs8(&der)?;
    let chain = s
        .chain
        .iter()
        .map(|c| parse_pem(c))
        .collect::<Result<_, _>>()?;
    Ok(Identity { cert, key, chain })
}

fn seal_pgp(cert: &PgpCert, sealer: &Sealer) -> Result<SealedPgp, KeyStoreError> {
    let fpr = pgp::fingerprint(cert);
    Ok(SealedPgp {
        public: String::from_utf8_lossy(&pgp::armored_public(cert)).into_owned(),
        secret: b64(&sealer.seal(&pgp_purpose(&fpr), &pgp::secret_bytes(cert))?),
    })
}

fn open_pgp(s: &SealedPgp, sealer: &Sealer) -> Result<PgpCert, KeyStoreError> {
    let public = pgp::parse_cert(s.public.as_bytes())?;
    let secret = sealer.open(&pgp_purpose(&pgp::fingerprint(&public)), &unb64(&s.secret)?)?;
    let cert = pgp::parse_cert(&secret)?;
    if cert.fingerprint() != public.fingerprint() {
        return Err(KeyStoreError::Corrupt(
            "OpenPGP secret does not match its public key".into(),
        ));
    }
    Ok(cert)
}

fn open_user(
    user: &UserRecord,
    sealer: &Sealer,
) -> Result<(Vec<Identity>, Vec<PgpCert>), KeyStoreError> {
    let ids = user
        .smime
        .iter()
        .map(|s| open_identity(s, sealer, ""))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = user
        .pgp
        .iter()
        .map(|s| open_pgp(s, sealer))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ids, keys))
}

type PartnerKeys = (Vec<(X509, Capabilities)>, Vec<PgpCert>);

fn open_partner(p: &PartnerRecord) -> Result<PartnerKeys, KeyStoreError> {
    let certs = p
        .smime
        .iter()
        .map(|h| Ok((parse_pem(&h.cert)?, h.capabilities.clone())))
        .collect::<Result<Vec<_>, KeyStoreError>>()?;
    let keys = p
        .pgp
        .iter()
        .map(|h| pgp::parse_cert(h.cert.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((certs, keys))
}

/// Sets one entity in the sealed state and in the cache. On error the sealed form is kept
/// (it is what the cluster agreed on) and the cache holds nothing for the entity.
fn install_one(
    state: &mut StoreState,
    cache: &mut Cache,
    change: &Change,
    sealer: &Sealer,
) -> Result<(), KeyStoreError> {
    match change {
        Change::Ca(ca) => {
            state.ca = Some(ca.clone());
            cache.ca = None;
            let identity = open_identity(ca, sealer, "ca-key")?;
            cache.ca = Some(Ca { identity });
        }
        Change::Anchors(pems) => {
            state.anchors = pems.clone();
            cache.anchors = pems.iter().filter_map(|p| parse_pem(p).ok()).collect();
            if cache.anchors.len() != pems.len() {
                return Err(KeyStoreError::Corrupt(
                    "a trust anchor does not parse".into(),
                ));
            }
        }
        Change::User(address, user) => {
            cache.smime.remove(address);
            cache.pgp.remove(address);
            cache.revoked_smime.remove(address);
            match user {
                None => {
                    state.users.remove(address);
                }
                Some(u) => {
                    state.users.insert(address.clone(), u.clone());
                    let revoked: std::collections::HashSet<String> = u
                        .smime
                        .iter()
                        .filter(|s| s.revoked)
                        .filter_map(|s| parse_pem(&s.cert).ok())
                        .map(|c| smime::fingerprint(&c))
                        .collect();
                    if !revoked.is_empty() {
                        cache.revoked_smime.insert(address.clone(), revoked);
                    }
                    let (ids, keys) = open_user(u, sealer)?;
                    cache.smime.insert(address.clone(), ids);
                    cache.pgp.insert(address.clone(), keys);
                }
            }
        }
        Change::Partner(address, partner) => {
            cache.partner_smime.remove(address);
            cache.partner_pgp.remove(address);
            match partner {
                None => {
                    state.partners.remove(address);
                }
                Some(p) => {
                    state.partners.insert(address.clone(), p.clone());
                    let (certs, keys) = open_partner(p)?;
                    if !certs.is_empty() {
                        cache.partner_smime.insert(address.clone(), certs);
                    }
                    if !keys.is_empty() {
                        cache.partner_pgp.insert(address.clone(), keys);
                    }
                }
            }
        }
        Change::PartnerDomain(domain, record) => {
            cache.partner_domains.remove(domain);
            match record {
                None => {
                    state.partner_domains.remove(domain);
                }
                Some(r) => {
                    state.partner_domains.insert(domain.clone(), r.clone());
                    cache.partner_domains.insert(domain.clone(), r.to_pin()?);
                }
            }
        }
    }
    Ok(())
}

/// The cache for a whole state, and the entities that did not open.
fn build_cache(state: &StoreState, sealer: &Sealer) -> (Cache, Vec<KeyStoreError>) {
    let mut scratch = StoreState::default();
    let mut cache = Cache::default();
    let mut errors = Vec::new();
    let changes = diff(&StoreState::default(), state);
    for c in &changes {
        if let Err(e) = install_one(&mut scratch, &mut cache, c, sealer) {
            errors.push(e);
        }
    }
    (cache, errors)
}

impl KeyStore for MemoryKeyStore {
    fn is_enrolled(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        self.read().0.users.contains_key(&a)
    }

    fn signing_identity(&self, address: &str, now: SystemTime) -> Option<Identity> {
        let a = address.to_ascii_lowercase();
        let g = self.read();
        // Newest first: the newest certificate that is already valid signs (a domain's:
        // once it has been published long enough).
        let revoked = g.1.revoked_smime.get(&a);
        let valid = g.1.smime.get(&a)?.iter().filter(|i| {
            valid_at(&i.cert, now)
                && revoked.is_none_or(|r| !r.contains(&smime::fingerprint(&i.cert)))
        });
        self.current(&a, valid, |i| ca::not_before(&i.cert), now)
            .cloned()
    }

    fn smime_identities(&self, address: &str) -> Vec<Identity> {
        self.read()
            .1
            .smime
            .get(&address.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    fn pgp_signer(&self, address: &str, now: SystemTime) -> Option<PgpCert> {
        let g = self.read();
        g.1.pgp.get(&address.to_ascii_lowercase()).map(|keys| {
            let usable = keys
                .iter()
                .filter(|k| pgp::can_sign(k, now) && !pgp::is_revoked(k, now));
            let created = |k: &PgpCert| Some(k.primary_key().key().creation_time());
            self.current(address, usable, created, now).cloned()
        })?
    }

    fn pgp_secrets(&self, address: &str) -> Vec<PgpCert> {
        self.read()
            .1
            .pgp
            .get(&address.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    fn smime_recipient(&self, address: &str, now: SystemTime) -> Option<(X509, Capabilities)> {
        let a = address.to_ascii_lowercase();
        let g = self.read();
        if let Some(ids) = g.1.smime.get(&a) {
            let revoked = g.1.revoked_smime.get(&a);
            return ids
                .iter()
                .find(|i| {
                    valid_at(&i.cert, now)
                        && revoked.is_none_or(|r| !r.contains(&smime::fingerprint(&i.cert)))
                })
                .map(|i| (i.cert.clone(), Capabilities::default()));
        }
        g.1.partner_smime
            .get(&a)?
            .iter()
            .find(|(c, _)| valid_at(c, now))
            .cloned()
    }

    fn pgp_recipient(&self, address: &str, now: SystemTime) -> Option<PgpCert> {
        let a = address.to_ascii_lowercase();
        let g = self.read();
        g.1.partner_pgp
            .get(&a)?
            .iter()
            .find(|k| pgp::can_encrypt(k, now))
            .cloned()
    }

    fn pgp_known(&self) -> Vec<PgpCert> {
        let g = self.read();
        g.1.partner_pgp
            .values()
            .flatten()
            .cloned()
            .chain(
                g.1.partner_domains
                    .values()
                    .flat_map(|p| p.keys.iter().map(|k| k.cert.clone())),
            )
            .chain(
                g.1.pgp
                    .values()
                    .flatten()
                    .map(|k| k.clone().strip_secret_key_material()),
            )
            .collect()
    }

    fn trust_anchors(&self) -> Result<X509Store, openssl::error::ErrorStack> {
        let g = self.read();
        let mut b = X509StoreBuilder::new()?;
        // A partner's pinned S/MIME domain certificate vouches for itself (DNSSEC or the
        // admin pinned it), whoever issued it: every certificate in the store is an anchor.
        b.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)?;
        for c in
            g.1.anchors
                .iter()
                .chain(g.1.ca.iter().map(|c| &c.identity.cert))
                .chain(
                    g.1.partner_domains
                        .values()
                        .flat_map(|p| p.certs.iter().map(|c| &c.cert)),
                )
        {
            b.add_cert(c.clone())?;
        }
        Ok(b.build())
    }

    fn harvest_smime(
        &self,
        cert: &X509,
        capabilities: &Capabilities,
        now: SystemTime,
    ) -> Vec<String> {
        self.remember_smime(cert, capabilities, now, Urgency::Harvest)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "harvested S/MIME certificate not kept");
                Vec::new()
            })
    }

    fn harvest_pgp(&self, cert: &PgpCert, now: SystemTime) -> Vec<String> {
        self.remember_pgp(cert, now, Urgency::Harvest)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "harvested OpenPGP key not kept");
                Vec::new()
            })
    }

    fn own_domains(&self) -> Vec<String> {
        MemoryKeyStore::own_domains(self)
    }

    fn domain_keys(&self, domain: &str, now: SystemTime) -> Vec<PgpCert> {
        self.domain_public_keys(domain, now)
    }

    fn partner_domain(&self, domain: &str) -> Option<PartnerDomain> {
        MemoryKeyStore::partner_domain(self, domain)
    }

    fn learn_domain(&self, domain: &str, evidence: &Evidence, now: SystemTime) -> Vec<Note> {
        self.remember_domain(domain, evidence, now, Urgency::Harvest)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, %domain, "what was learned of a partner domain is not kept");
                Vec::new()
            })
    }
}

#[cfg(test)]
mod tests;
