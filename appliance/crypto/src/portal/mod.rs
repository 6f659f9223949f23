//! The recipient portal's envelope (DESIGN.md §7, issue 17), sans-IO: a message for a
//! recipient without keys travels encrypted in the notification mail; the recipient's
//! browser opens it with a secret of the recipient's *and* a share the cluster releases
//! only after checking the envelope — so neither the mail alone (no offline guessing of the
//! password: the share is missing) nor the cluster alone (no password) opens it, and the
//! server never holds ciphertext, content key or plaintext.
//!
//! The format (all integers big-endian; `H` = SHA-256 of the header bytes):
//!
//! ```text
//! envelope = "PPE1" | u32 header length | header | mac (32) | wrap nonce (12)
//!            | wrapped content key (32 + 16 tag) | chunk ...
//! header   = JSON {"v":1,"id","to","from","exp","kdf":{"alg":"pbkdf2-sha256","iter","salt"},
//!                  "chunk","size","np"}            (binary fields base64)
//! mac      = HMAC-SHA256(mac key, "PPE1" | u32 header length | header)
//! share    = HMAC-SHA256(share key, "postern portal share v1" | 0 | id | 0 | to | 0 | exp)
//! secret   = PBKDF2-HMAC-SHA256(password, kdf.salt, kdf.iter, 32)
//! kek      = HKDF-SHA256(salt = id, ikm = secret | share, info = "postern portal kek v1")
//! wrapped  = AES-256-GCM(kek, wrap nonce, content key, aad = H)
//! chunk i  = AES-256-GCM(content key, np (8) | u32 i, plaintext[i*chunk..], aad = H | u32 i | final)
//! ```
//!
//! The mac and the share keys are derived from the cluster's portal secret
//! ([`PortalKeys`]). The server checks an envelope's header (its own mac, the version, the
//! expiry) before it releases the share ([`PortalKeys::release`]); the browser sends it the
//! header and the mac only. Every chunk is bound to the header and to its position, and the
//! last one says it is the last: an altered, reordered or cut envelope does not open, and
//! [`open`] returns nothing of it rather than a part. WebCrypto has every primitive
//! (PBKDF2, HKDF, AES-GCM, SHA-256), so the browser needs no cryptographic code of ours.

mod envelope;

pub use envelope::{Header, Parsed, Sealing, open, parse, seal};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// The envelope's magic and version.
pub const MAGIC: &[u8; 4] = b"PPE1";
/// PBKDF2 iterations at least (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const MIN_ITERATIONS: u32 = 600_000;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// The largest header read.
pub const MAX_HEADER: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("not a portal envelope: {0}")]
    Malformed(String),
    #[error("envelope version {0} is not understood (this gateway reads version 1)")]
    Version(u32),
    #[error("the envelope's header was altered or was not made by this cluster")]
    BadMac,
    #[error("the envelope expired at {0} (seconds since the epoch)")]
    Expired(u64),
    #[error("the envelope is for {envelope}, not for {asked}")]
    WrongRecipient { envelope: String, asked: String },
    #[error("{0} PBKDF2 iterations are too few (at least {MIN_ITERATIONS})")]
    WeakKdf(u32),
    /// Wrong password, wrong share, or an altered envelope: AES-GCM cannot tell which.
    #[error("the envelope does not open: wrong password, or altered")]
    Decrypt,
    #[error("the envelope is cut short or has bytes after its end")]
    Length,
    #[error("OpenSSL: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// The two keys the cluster derives from its portal secret: one authenticates the headers
/// it makes, the other derives each envelope's share.
#[derive(Clone)]
pub struct PortalKeys {
    mac: [u8; 32],
    share: [u8; 32],
}

impl std::fmt::Debug for PortalKeys {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortalKeys(..)")
    }
}

impl PortalKeys {
    /// The keys of the cluster's 32-byte portal secret.
    pub fn new(secret: &[u8; 32]) -> Result<PortalKeys, PortalError> {
        Ok(PortalKeys {
            mac: hkdf(b"postern portal", secret, b"postern portal mac v1")?,
            share: hkdf(b"postern portal", secret, b"postern portal share key v1")?,
        })
    }

    fn mac(&self, header: &[u8]) -> Result<[u8; 32], PortalError> {
        let len = u32::try_from(header.len())
            .map_err(|_| PortalError::Malformed("header too long".into()))?;
        hmac(&self.mac, &[MAGIC, &len.to_be_bytes(), header])
    }

    /// The share of the envelope `header` describes (no checks: see [`PortalKeys::release`]).
    fn share(&self, h: &Header) -> Result<[u8; 32], PortalError> {
        hmac(
            &self.share,
            &[
                b"postern portal share v1\0",
                &h.id,
                b"\0",
                h.to.as_bytes(),
                b"\0",
                &h.exp.to_be_bytes(),
            ],
        )
    }

    /// The share for the envelope whose `header` and `mac` the browser sent, after the
    /// checks: made by this cluster and unaltered, understood, not expired at `now`
    /// (seconds), and for `recipient` (the address the asker proved). What is revoked is
    /// the caller's to check, by the header's id.
    pub fn release(
        &self,
        header: &[u8],
        mac: &[u8],
        recipient: &str,
        now: u64,
    ) -> Result<(Header, [u8; 32]), PortalError> {
        let expected = self.mac(header)?;
        if mac.len() != expected.len() || !openssl::memcmp::eq(&expected, mac) {
            return Err(PortalError::BadMac);
        }
        let h = Header::from_json(header)?;
        if now >= h.exp {
            return Err(PortalError::Expired(h.exp));
        }
        if !h.to.eq_ignore_ascii_case(recipient) {
            return Err(PortalError::WrongRecipient {
                envelope: h.to.clone(),
                asked: recipient.to_owned(),
            });
        }
        let share = self.share(&h)?;
        Ok((h, share))
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], PortalError> {
    let key = PKey::hmac(key)?;
    let mut s = Signer::new(MessageDigest::sha256(), &key)?;
    for p in parts {
        s.update(p)?;
    }
    let mut out = [0u8; 32];
    s.sign(&mut out)?;
    Ok(out)
}

/// HKDF-SHA256 (extract and expand) to 32 bytes.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<[u8; 32], PortalError> {
    use openssl::pkey::Id;
    use openssl::pkey_ctx::PkeyCtx;
    let mut ctx = PkeyCtx::new_id(Id::HKDF)?;
    ctx.derive_init()?;
    ctx.set_hkdf_md(openssl::md::Md::sha256())?;
    ctx.set_hkdf_salt(salt)?;
    ctx.set_hkdf_key(ikm)?;
    ctx.add_hkdf_info(info)?;
    let mut out = [0u8; 32];
    ctx.derive(Some(&mut out))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
