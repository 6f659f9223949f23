//! OpenPGP with sequoia: key generation that GnuPG 2.2 can use, PGP/MIME (RFC 3156)
//! sign+encrypt, decryption of PGP/MIME and inline PGP, and signature checks.
//!
//! EFAIL: sequoia refuses ciphertext without integrity protection (SED packets, no MDC), and
//! the decryptor releases plaintext only after the whole message — including the MDC and
//! signatures — was processed; anything that fails that is reported, never half-used.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationError, VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::{Serialize as _, SerializeInto as _};
use openpgp::types::{Features, HashAlgorithm, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle};

use crate::mime;

pub use openpgp::Cert as PgpCert;

/// Largest decrypted message held for checking before release (the SMTP size limit is
/// smaller by default; this only bounds the library's buffer).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    #[error("OpenPGP key generation failed: {0}")]
    Generate(String),
    #[error("OpenPGP key is unreadable: {0}")]
    BadKey(String),
    #[error("recipient key {0} has no usable encryption subkey")]
    NoEncryptionKey(String),
    #[error("the sender's OpenPGP key has no usable signing key")]
    NoSigningKey,
    #[error("OpenPGP encryption failed: {0}")]
    Encrypt(String),
    #[error("OpenPGP data is malformed or not for us: {0}")]
    Decrypt(String),
}

fn policy() -> StandardPolicy<'static> {
    StandardPolicy::new()
}

/// A new key for `email`: Ed25519 primary and signing subkey, Cv25519 encryption subkey,
/// v4 format, and the SEIPDv1 feature only (TESTBED.md: GnuPG 2.2 cannot read SEIPDv2).
pub fn generate(email: &str, now: SystemTime, validity: Duration) -> Result<Cert, PgpError> {
    let err = |e: anyhow_like::Error| PgpError::Generate(e.to_string());
    let (cert, _revocation) = CertBuilder::new()
        .set_profile(openpgp::Profile::RFC4880)
        .map_err(err)?
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_features(Features::empty().set_seipdv1())
        .map_err(err)?
        .set_creation_time(now)
        .set_validity_period(validity)
        .add_userid(format!("<{email}>"))
        .add_signing_subkey()
        .add_transport_encryption_subkey()
        .generate()
        .map_err(err)?;
    Ok(cert)
}

/// sequoia's error type, named once.
mod anyhow_like {
    pub type Error = sequoia_openpgp::anyhow::Error;
}

/// Reads one certificate (armored or binary, public or secret).
pub fn parse_cert(data: &[u8]) -> Result<Cert, PgpError> {
    Cert::from_bytes(data).map_err(|e| PgpError::BadKey(e.to_string()))
}

/// Reads every certificate in a keyring (armored or binary).
pub fn parse_keyring(data: &[u8]) -> Result<Vec<Cert>, PgpError> {
    let parser = CertParser::from_bytes(data).map_err(|e| PgpError::BadKey(e.to_string()))?;
    let mut out = Vec::new();
    for c in parser {
        out.push(c.map_err(|e| PgpError::BadKey(e.to_string()))?);
    }
    Ok(out)
}

pub fn armored_public(cert: &Cert) -> Vec<u8> {
    cert.armored().to_vec().unwrap_or_default()
}

/// The secret key material, binary (to be sealed by the key store, never stored as is).
pub fn secret_bytes(cert: &Cert) -> Vec<u8> {
    cert.as_tsk().to_vec().unwrap_or_default()
}

/// The addresses of a certificate's valid user IDs, lower-cased.
pub fn cert_emails(cert: &Cert, now: SystemTime) -> Vec<String> {
    let p = policy();
    let Ok(valid) = cert.with_policy(&p, now) else {
        return Vec::new();
    };
    valid
        .userids()
        .filter_map(|u| {
            u.userid()
                .email()
                .ok()
                .flatten()
                .map(|e| e.to_ascii_lowercase())
        })
        .collect()
}

/// Whether the certificate can be encrypted to at `now`.
pub fn can_encrypt(cert: &Cert, now: SystemTime) -> bool {
    let p = policy();
    cert.keys()
        .with_policy(&p, now)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .next()
        .is_some()
}

/// Whether this certificate holds a signing key usable at `now` (public check).
pub fn can_sign(cert: &Cert, now: SystemTime) -> bool {
    let p = policy();
    cert.keys()
        .with_policy(&p, now)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .unencrypted_secret()
        .next()
        .is_some()
}

pub fn expires(cert: &Cert, now: SystemTime) -> Option<SystemTime> {
    let p = policy();
    cert.with_policy(&p, now)
        .ok()
        .and_then(|v| v.primary_key().key_expiration_time())
}

/// Encrypts `entity` to `recipients` (signed by `signer` when given) and returns the
/// PGP/MIME `multipart/encrypted` entity (RFC 3156 §4, combined form §6.2).
pub fn encrypt(
    entity: &[u8],
    recipients: &[Cert],
    signer: Option<&Cert>,
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    let p = policy();
    let mut keys = Vec::new();
    for cert in recipients {
        let before = keys.len();
        keys.extend(
            cert.keys()
                .with_policy(&p, now)
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption(),
        );
        if keys.len() == before {
            return Err(PgpError::NoEncryptionKey(cert.fingerprint().to_hex()));
        }
    }
    let signing = signer.map(|cert| signing_keypair(cert, now)).transpose()?;
    let err = |e: anyhow_like::Error| PgpError::Encrypt(e.to_string());
    let mut armored = Vec::with_capacity(entity.len() * 4 / 3 + 1024);
    {
        let message = Message::new(&mut armored);
        let message = Armorer::new(message).build().map_err(err)?;
        let message = Encryptor::for_recipients(message, keys)
            .symmetric_algo(SymmetricAlgorithm::AES256)
            .build()
            .map_err(err)?;
        let message = match signing {
            Some(kp) => Signer::new(message, kp)
                .map_err(err)?
                .hash_algo(HashAlgorithm::SHA256)
                .map_err(err)?
                .build()
                .map_err(err)?,
            None => message,
        };
        let mut w = LiteralWriter::new(message).build().map_err(err)?;
        w.write_all(entity)
            .map_err(|e| PgpError::Encrypt(e.to_string()))?;
        w.finalize().map_err(err)?;
    }
    let boundary = mime::new_boundary();
    let mut out = format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n\
         \tboundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n\
         --{boundary}\r\n\
         Content-Type: application/pgp-encrypted\r\n\
         Content-Description: PGP/MIME version identification\r\n\r\n\
         Version: 1\r\n\r\n\
         --{boundary}\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
         Content-Description: OpenPGP encrypted message\r\n\
         Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&mime::canonicalize(&armored));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// The verdict on one OpenPGP signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigVerdict {
    /// Good signature by `fingerprint`.
    Valid { fingerprint: String },
    /// The key that made it is not known to us.
    UnknownKey { issuer: String },
    /// Bad signature, or a key that was not valid for signing at that time.
    Invalid { reason: String },
}

/// What decryption produced.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The plaintext, line ends canonicalised to CRLF.
    pub content: Vec<u8>,
    /// Signatures inside the encrypted message.
    pub signatures: Vec<SigVerdict>,
    /// The certificates whose signatures were good (for harvesting).
    pub good_signers: Vec<Cert>,
}

struct Helper<'a> {
    secrets: &'a [Cert],
    known: &'a [Cert],
    signatures: Vec<SigVerdict>,
    good_signers: Vec<Cert>,
    encrypted: bool,
}

impl<'a> Helper<'a> {
    fn new(secrets: &'a [Cert], known: &'a [Cert]) -> Self {
        Helper {
            secrets,
            known,
            signatures: Vec::new(),
            good_signers: Vec::new(),
            encrypted: false,
        }
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .known
            .iter()
            .chain(self.secrets.iter())
            .filter(|c| {
                ids.iter()
                    .any(|id| c.keys().any(|k| k.key().key_handle().aliases(id)))
            })
            .map(|c| c.clone().strip_secret_key_material())
            .collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure {
            match layer {
                MessageLayer::Encryption { .. } => self.encrypted = true,
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    for r in results {
                        self.signatures.push(match r {
                            Ok(good) => {
                                self.good_signers.push(good.ka.cert().clone());
                                SigVerdict::Valid {
                                    fingerprint: good.ka.cert().fingerprint().to_hex(),
                                }
                            }
                            Err(VerificationError::MissingKey { sig }) => SigVerdict::UnknownKey {
                                issuer: sig
                                    .get_issuers()
                                    .first()
                                    .map(|h| h.to_hex())
                                    .unwrap_or_default(),
                            },
                            Err(e) => SigVerdict::Invalid {
                                reason: e.to_string(),
                            },
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for pkesk in pkesks {
            let wanted = pkesk.recipient();
            for cert in self.secrets {
                // Old (rolled-over or expired) keys keep decrypting: no validity filter here.
                for ka in cert.keys().unencrypted_secret() {
                    let matches = match &wanted {
                        Some(h) => ka.key().key_handle().aliases(h),
                        None => true, // hidden recipient: try each key
                    };
                    if !matches {
                        continue;
                    }
                    let Ok(mut pair) = ka.key().clone().into_keypair() else {
                        continue;
                    };
                    if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo)
                        && decrypt(algo, &sk)
                    {
                        return Ok(Some(cert.clone()));
                    }
                }
            }
        }
        Err(sequoia_openpgp::anyhow::anyhow!(
            "no key of ours can decrypt this message"
        ))
    }
}

/// Decrypts an OpenPGP message (armored or binary) with `secrets`; signatures inside are
/// checked against `known` and `secrets`.
pub fn decrypt(
    data: &[u8],
    secrets: &[Cert],
    known: &[Cert],
    now: SystemTime,
) -> Result<Decrypted, PgpError> {
    let p = policy();
    let helper = Helper::new(secrets, known);
    let err = |e: anyhow_like::Error| PgpError::Decrypt(e.to_string());
    let mut d = DecryptorBuilder::from_bytes(data)
        .map_err(err)?
        .buffer_size(MAX_MESSAGE)
        .with_policy(&p, Some(now), helper)
        .map_err(err)?;
    let mut content = Vec::new();
    std::io::copy(&mut d, &mut content).map_err(|e| PgpError::Decrypt(e.to_string()))?;
    if !d.message_processed() {
        return Err(PgpError::Decrypt("message not completely processed".into()));
    }
    let helper = d.into_helper();
    if !helper.encrypted {
        return Err(PgpError::Decrypt("the message is not encrypted".into()));
    }
    Ok(Decrypted {
        content: mime::canonicalize(&content),
        signatures: helper.signatures,
        good_signers: helper.good_signers,
    })
}

/// Checks a detached signature over `content` against `known` certificates.
pub fn verify_detached(
    content: &[u8],
    signature: &[u8],
    known: &[Cert],
    now: SystemTime,
) -> (Vec<SigVerdict>, Vec<Cert>) {
    let p = policy();
    let helper = Helper::new(&[], known);
    let run = || -> openpgp::Result<(Vec<SigVerdict>, Vec<Cert>)> {
        let mut v =
            DetachedVerifierBuilder::from_bytes(signature)?.with_policy(&p, Some(now), helper)?;
        v.verify_bytes(content)?;
        let h = v.into_helper();
        Ok((h.signatures, h.good_signers))
    };
    match run() {
        Ok(r) => r,
        Err(e) => (
            vec![SigVerdict::Invalid {
                reason: e.to_string(),
            }],
            Vec::new(),
        ),
    }
}

/// Checks an inline-signed (cleartext or one-pass) message; returns verdicts, good signers
/// and the signed text.
pub fn verify_inline(
    data: &[u8],
    known: &[Cert],
    now: SystemTime,
) -> (Vec<SigVerdict>, Vec<Cert>, Option<Vec<u8>>) {
    use openpgp::parse::stream::VerifierBuilder;
    let p = policy();
    let helper = Helper::new(&[], known);
    let run = || -> openpgp::Result<(Vec<SigVerdict>, Vec<Cert>, Vec<u8>)> {
        let mut v = VerifierBuilder::from_bytes(data)?
            .buffer_size(MAX_MESSAGE)
            .with_policy(&p, Some(now), helper)?;
        let mut out = Vec::new();
        std::io::copy(&mut v, &mut out)?;
        let h = v.into_helper();
        Ok((h.signatures, h.good_signers, out))
    };
    match run() {
        Ok((s, g, out)) => (s, g, Some(out)),
        Err(e) => (
            vec![SigVerdict::Invalid {
                reason: e.to_string(),
            }],
            Vec::new(),
            None,
        ),
    }
}

/// The key that signs for `cert` now (its secret unencrypted), as a keypair.
fn signing_keypair(cert: &Cert, now: SystemTime) -> Result<openpgp::crypto::KeyPair, PgpError> {
    let p = policy();
    cert.keys()
        .with_policy(&p, now)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .unencrypted_secret()
        .next()
        .ok_or(PgpError::NoSigningKey)?
        .key()
        .clone()
        .into_keypair()
        .map_err(|e| PgpError::Encrypt(e.to_string()))
}

/// A binary detached signature by `signer` over `data`.
pub fn sign_detached(data: &[u8], signer: &Cert, now: SystemTime) -> Result<Vec<u8>, PgpError> {
    let kp = signing_keypair(signer, now)?;
    let err = |e: anyhow_like::Error| PgpError::Encrypt(e.to_string());
    let mut out = Vec::new();
    {
        let message = Message::new(&mut out);
        let mut s = Signer::new(message, kp)
            .map_err(err)?
            .hash_algo(HashAlgorithm::SHA256)
            .map_err(err)?
            .detached()
            .build()
            .map_err(err)?;
        s.write_all(data)
            .map_err(|e| PgpError::Encrypt(e.to_string()))?;
        s.finalize().map_err(err)?;
    }
    Ok(out)
}

/// `new` with its user IDs certified by `by` (whose primary key must hold its secret): how
/// a domain's current key vouches for the next one.
pub fn certify(by: &Cert, new: &Cert, now: SystemTime) -> Result<Cert, PgpError> {
    use openpgp::packet::Packet;
    use openpgp::types::SignatureType;
    let err = |e: anyhow_like::Error| PgpError::Generate(e.to_string());
    let mut signer = by
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .map_err(err)?
        .into_keypair()
        .map_err(err)?;
    let mut packets: Vec<Packet> = Vec::new();
    for ua in new.userids() {
        let sig =
            openpgp::packet::signature::SignatureBuilder::new(SignatureType::GenericCertification)
                .set_signature_creation_time(now)
                .map_err(err)?
                .sign_userid_binding(&mut signer, new.primary_key().key(), ua.userid())
                .map_err(err)?;
        packets.push(ua.userid().clone().into());
        packets.push(sig.into());
    }
    let (cert, _) = new.clone().insert_packets(packets).map_err(err)?;
    Ok(cert)
}

/// Whether one of `new`'s user IDs carries a valid certification by `by`'s primary key.
pub fn certified_by(new: &Cert, by: &Cert) -> bool {
    let signer = by.primary_key().key();
    new.userids().any(|ua| {
        ua.certifications().any(|sig| {
            sig.clone()
                .verify_userid_binding(signer, new.primary_key().key(), ua.userid())
                .is_ok()
        })
    })
}

/// Whether the certificate is revoked (by its own revocation signature) at `now`.
pub fn is_revoked(cert: &Cert, now: SystemTime) -> bool {
    let p = policy();
    matches!(
        cert.revocation_status(&p, now),
        openpgp::types::RevocationStatus::Revoked(_)
    )
}

/// A revocation of `cert` by itself (its primary key must hold its secret): the certificate
/// with the revocation signature merged in.
pub fn revoke(cert: &Cert, now: SystemTime) -> Result<Cert, PgpError> {
    use openpgp::types::ReasonForRevocation;
    let err = |e: anyhow_like::Error| PgpError::Generate(e.to_string());
    let mut signer = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .map_err(err)?
        .into_keypair()
        .map_err(err)?;
    let sig = openpgp::cert::CertRevocationBuilder::new()
        .set_signature_creation_time(now)
        .map_err(err)?
        .set_reason_for_revocation(ReasonForRevocation::KeyRetired, b"retired by Postern")
        .map_err(err)?
        .build(&mut signer, cert, None)
        .map_err(err)?;
    let (cert, _) = cert.clone().insert_packets(sig).map_err(err)?;
    Ok(cert)
}

pub fn fingerprint(cert: &Cert) -> String {
    cert.fingerprint().to_hex()
}

/// Merges a newly seen certificate into a known one (same fingerprint), keeping both sets
/// of signatures and subkeys.
pub fn merge(old: Cert, new: Cert) -> Cert {
    old.clone().merge_public(new).unwrap_or(old)
}

pub fn same_key(a: &Cert, b: &Fingerprint) -> bool {
    &a.fingerprint() == b
}

/// Writes a certificate's public part in binary form (for Autocrypt `keydata`).
pub fn public_bytes(cert: &Cert) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cert.serialize(&mut v);
    v
}

#[cfg(test)]
mod tests;
