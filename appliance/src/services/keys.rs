//! Users, partners, trust anchors, the built-in CA and key rollover: the key store, whose
//! changes the cluster commits (a change returns once a majority has it on disk). Every
//! call waits for a read barrier first (it sees every acknowledged write, whichever node
//! took it) and runs on the blocking pool (RSA keys, PKCS#12, sequoia are CPU work).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_api::views;
use postern_crypto::keys::store::{CertSummary, PartnerSummary, UserSummary};
use postern_crypto::keys::{KeyStoreError, MemoryKeyStore};

use crate::member::{Member, MemberError};

/// Why a key store command failed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] KeyStoreError),
    #[error("{what} is not valid base64: {reason}")]
    Base64 { what: &'static str, reason: String },
    #[error("{0} is not enrolled")]
    NotEnrolled(String),
    #[error("{0} has no OpenPGP key")]
    NoPgp(String),
    #[error("the built-in CA does not exist yet (the member is starting)")]
    NoCa,
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error("the key store task failed: {0}")]
    Task(String),
}

/// The key store service.
#[derive(Debug, Clone)]
pub struct Keys {
    pub store: Arc<MemoryKeyStore>,
    pub member: Arc<Member>,
    /// How long new keys are valid.
    pub validity: Duration,
}

fn cert(c: CertSummary) -> views::Cert {
    views::Cert {
        serial: c.serial,
        not_before: c.not_before,
        not_after: c.not_after,
    }
}

fn user(u: UserSummary) -> views::User {
    views::User {
        address: u.address,
        smime: u.smime.into_iter().map(cert).collect(),
        pgp: u.pgp,
    }
}

fn partner(p: PartnerSummary) -> views::Partner {
    views::Partner {
        address: p.address,
        smime: p.smime.into_iter().map(cert).collect(),
        smime_gcm: p.smime_gcm,
        pgp: p.pgp,
    }
}

fn base64(what: &'static str, data: &str) -> Result<Vec<u8>, KeysError> {
    postern_crypto::mime::base64_decode(data.as_bytes()).map_err(|e| KeysError::Base64 {
        what,
        reason: e.to_string(),
    })
}

impl Keys {
    /// Runs `f` on the key store after a read barrier, on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&MemoryKeyStore, SystemTime, Duration) -> Result<T, KeysError> + Send + 'static,
    ) -> Result<T, KeysError> {
        self.member.read_barrier().await?;
        let store = Arc::clone(&self.store);
        let validity = self.validity;
        tokio::task::spawn_blocking(move || f(&store, SystemTime::now(), validity))
            .await
            .map_err(|e| KeysError::Task(e.to_string()))?
    }

    pub async fn enrol(&self, address: String) -> Result<views::User, KeysError> {
        self.run(move |k, now, validity| Ok(user(k.enrol(&address, now, validity)?)))
            .await
    }

    pub async fn users(&self) -> Result<Vec<views::User>, KeysError> {
        self.run(|k, _, _| Ok(k.users().into_iter().map(user).collect()))
            .await
    }

    pub async fn remove(&self, address: String) -> Result<(), KeysError> {
        self.run(move |k, _, _| Ok(k.remove_user(&address)?)).await
    }

    /// The user's certificates (PEM).
    pub async fn certificates(&self, address: String) -> Result<String, KeysError> {
        self.run(move |k, _, _| {
            k.export_user_certs(&address)
                .ok_or(KeysError::NotEnrolled(address))
        })
        .await
    }

    /// The user's OpenPGP public keys (armored).
    pub async fn openpgp(&self, address: String) -> Result<String, KeysError> {
        self.run(move |k, _, _| {
            k.export_user_pgp(&address)
                .filter(|s| !s.is_empty())
                .ok_or(KeysError::NoPgp(address))
        })
        .await
    }

    /// The user's current S/MIME identity as PKCS#12 under `password` (base64).
    pub async fn pkcs12(&self, address: String, password: String) -> Result<String, KeysError> {
        self.run(move |k, _, _| {
            let der = k.export_pkcs12(&address, &password)?;
            Ok(openssl::base64::encode_block(&der))
        })
        .await
    }

    pub async fn import_pkcs12(
        &self,
        data: String,
        password: String,
    ) -> Result<views::User, KeysError> {
        self.run(move |k, _, _| {
            let der = base64("the PKCS#12 data", &data)?;
            Ok(user(k.import_pkcs12(&der, &password)?))
        })
        .await
    }

    pub async fn import_pgp_secret(&self, data: String) -> Result<views::User, KeysError> {
        self.run(move |k, now, _| {
            let key = base64("the OpenPGP key", &data)?;
            Ok(user(k.import_pgp_secret(&key, now)?))
        })
        .await
    }

    /// Partner certificates or OpenPGP keys; the addresses that received one.
    pub async fn import_public(&self, data: String) -> Result<Vec<String>, KeysError> {
        self.run(move |k, now, _| {
            let bytes = base64("the key data", &data)?;
            Ok(k.import_public(&bytes, now)?)
        })
        .await
    }

    pub async fn partners(&self) -> Result<Vec<views::Partner>, KeysError> {
        self.run(|k, _, _| Ok(k.partners().into_iter().map(partner).collect()))
            .await
    }

    /// S/MIME trust anchors (PEM); how many certificates the data held.
    pub async fn trust_add(&self, data: String) -> Result<usize, KeysError> {
        self.run(move |k, _, _| {
            let pem = base64("the PEM data", &data)?;
            Ok(k.add_trust_anchors(&pem)?)
        })
        .await
    }

    pub async fn ca_certificate(&self) -> Result<String, KeysError> {
        self.run(|k, _, _| k.ca_pem().ok_or(KeysError::NoCa)).await
    }

    /// Makes sure `domain` has a domain key; whether one was made.
    pub async fn ensure_domain_key(&self, domain: String) -> Result<bool, KeysError> {
        self.run(move |k, now, validity| Ok(k.ensure_domain_key(&domain, now, validity)?))
            .await
    }

    /// New keys for every user whose newest expire within a week; the users that got one.
    /// Rolls over what is due; domain keys `domain_lead` ahead of their end at least.
    pub async fn rollover(&self, domain_lead: Duration) -> Result<Vec<String>, KeysError> {
        self.run(move |k, now, validity| Ok(k.rollover(now, validity, domain_lead)?))
            .await
    }
}
