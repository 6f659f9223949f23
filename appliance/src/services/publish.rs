//! What this gateway publishes for its domains over HTTPS (the web listener's
//! `/.well-known/openpgpkey/`): the Web Key Directory's keys — the domain key and every
//! enrolled user's OpenPGP key — and its policy file with the domain's encryption policy.
//! Answers only for this gateway's internal domains; reads the local key store.

use std::sync::Arc;
use std::time::SystemTime;

use postern_crypto::federation::domain_key_address;
use postern_crypto::federation::wkd::{self, Request};
use postern_crypto::keys::{KeyStore as _, MemoryKeyStore};
use postern_crypto::pgp;
use postern_crypto::policy::SharedPolicy;

/// An answer of the well-known service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// The publisher.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub keys: Arc<MemoryKeyStore>,
    pub policy: Arc<SharedPolicy>,
}

impl Publisher {
    /// The answer for a request to `host` for `path` (under `/.well-known/openpgpkey/`).
    pub fn well_known(&self, host: &str, path: &str) -> Option<Published> {
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let request = wkd::parse_path(path)?;
        // The advanced method names the domain in the path (host openpgpkey.DOMAIN); the
        // direct method is asked at the domain itself.
        let domain = match &request {
            Request::Key { domain, .. } | Request::Policy { domain } => domain
                .clone()
                .unwrap_or_else(|| host.strip_prefix("openpgpkey.").unwrap_or(&host).to_owned()),
        };
        let config = self.policy.get();
        if !config.is_internal(&format!("x@{domain}")) {
            return None;
        }
        let now = SystemTime::now();
        match request {
            Request::Key { hash, .. } => {
                self.keys
                    .wkd_keys(&domain, &hash, now)
                    .map(|body| Published {
                        content_type: "application/octet-stream",
                        body,
                    })
            }
            Request::Policy { .. } => {
                let fingerprint = self
                    .keys
                    .pgp_signer(&domain_key_address(&domain), now)
                    .map(|k| pgp::fingerprint(&k));
                let text =
                    wkd::render_policy(config.domain_policy.as_ref(), fingerprint.as_deref());
                Some(Published {
                    content_type: "text/plain; charset=utf-8",
                    body: text.into_bytes(),
                })
            }
        }
    }
}
