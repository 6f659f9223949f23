//! S/MIME 4.0 (RFC 8551) with OpenSSL's CMS: detached `multipart/signed` signatures,
//! `application/pkcs7-mime` enveloped data, decryption and verification against configured
//! trust anchors. OpenSSL returns DER; the MIME wrapping (RFC 8551 §3) is done here.

mod der;
mod signed;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use openssl::x509::store::X509StoreRef;

use crate::mime::{self, ContentType, Header};

pub use der::{Capabilities, CmsType, content_type};

/// A certificate with its private key and the chain to present with signatures.
#[derive(Clone)]
pub struct Identity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub chain: Vec<X509>,
}

impl std::fmt::Debug for Identity {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.cert.subject_name())
            .field("serial", &serial_hex(&self.cert))
            .finish_non_exhaustive()
    }
}

/// Content encryption algorithm of enveloped data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// AES-256-CBC in EnvelopedData: readable by every S/MIME client.
    Aes256Cbc,
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083/5084), when the recipient says it can.
    Aes256Gcm,
}

impl ContentCipher {
    /// The strongest cipher all `recipients` announced (GCM only if every one did).
    pub fn for_recipients<'a>(caps: impl IntoIterator<Item = &'a Capabilities>) -> Self {
        let mut any = false;
        for c in caps {
            any = true;
            if !c.aes256_gcm {
                return ContentCipher::Aes256Cbc;
            }
        }
        if any {
            ContentCipher::Aes256Gcm
        } else {
            ContentCipher::Aes256Cbc
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    #[error("CMS signing failed: {0}")]
    Sign(openssl::error::ErrorStack),
    #[error("CMS encryption failed: {0}")]
    Encrypt(openssl::error::ErrorStack),
    #[error("no recipient certificate to encrypt to")]
    NoRecipients,
    #[error("the CMS structure is malformed: {0}")]
    Malformed(String),
    #[error("none of our keys can decrypt this message")]
    NotForUs,
}

/// Signs `entity` (a canonical MIME entity: header, empty line, body) and returns the
/// `multipart/signed` entity that replaces it.
pub fn sign(entity: &[u8], id: &Identity) -> Result<Vec<u8>, SmimeError> {
    // RSA (every certificate Postern issues) through the direct encoder; other key types
    // through OpenSSL's CMS layer.
    let der = if id.key.id() == openssl::pkey::Id::RSA {
        signed::sign_detached(entity, id, std::time::SystemTime::now())
    } else {
        cms_sign(entity, id)
    }
    .map_err(SmimeError::Sign)?;
    let boundary = mime::new_boundary();
    let mut out = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\
         \tmicalg=sha-256; boundary=\"{boundary}\"\r\n\r\n\
         This is a cryptographically signed message in MIME format.\r\n\r\n\
         --{boundary}\r\n"
    )
    .into_bytes();
    out.reserve(entity.len() + der.len() * 4 / 3 + 400);
    out.extend_from_slice(entity);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\n\
             Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\
             Content-Description: S/MIME Cryptographic Signature\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&mime::base64_wrapped(&der));
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

fn cms_sign(entity: &[u8], id: &Identity) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut chain = Stack::new()?;
    for c in &id.chain {
        chain.push(c.clone())?;
    }
    CmsContentInfo::sign(
        Some(&id.cert),
        Some(&id.key),
        Some(&chain),
        Some(entity),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )?
    .to_der()
}

/// Encrypts `entity` to `recipients` and returns the `application/pkcs7-mime` entity.
pub fn encrypt(
    entity: &[u8],
    recipients: &[X509],
    cipher: ContentCipher,
) -> Result<Vec<u8>, SmimeError> {
    if recipients.is_empty() {
        return Err(SmimeError::NoRecipients);
    }
    let mut certs = Stack::new().map_err(SmimeError::Encrypt)?;
    for c in recipients {
        certs.push(c.clone()).map_err(SmimeError::Encrypt)?;
    }
    let (c, smime_type) = match cipher {
        ContentCipher::Aes256Cbc => (Cipher::aes_256_cbc(), "enveloped-data"),
        ContentCipher::Aes256Gcm => (Cipher::aes_256_gcm(), "authEnveloped-data"),
    };
    let cms = CmsContentInfo::encrypt(&certs, entity, c, CMSOptions::BINARY)
        .map_err(SmimeError::Encrypt)?;
    let der = cms.to_der().map_err(SmimeError::Encrypt)?;
    let mut out = format!(
        "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\
         Content-Description: S/MIME Encrypted Message\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&mime::base64_wrapped(&der));
    Ok(out)
}

/// Decrypts enveloped or auth-enveloped data with the first identity it is addressed to.
/// The result is canonicalised to CRLF (some clients encrypt LF-only text).
pub fn decrypt(der: &[u8], ids: &[Identity]) -> Result<Vec<u8>, SmimeError> {
    let cms = CmsContentInfo::from_der(der).map_err(|e| SmimeError::Malformed(first_reason(&e)))?;
    for id in ids {
        if let Ok(plain) = cms.decrypt(&id.key, &id.cert) {
            return Ok(mime::canonicalize(&plain));
        }
    }
    Err(SmimeError::NotForUs)
}

/// Outcome of checking one signature.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    pub verdict: Verdict,
    /// The signer's certificate(s) as carried in the message.
    pub signers: Vec<X509>,
    /// What the signer said it can decrypt (signed attribute, RFC 8551 §2.5.2).
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signature intact and the signer chains to a trust anchor.
    Valid,
    /// Signature intact, but the signer does not chain to a trust anchor.
    Untrusted(String),
    /// Signature broken, content altered, or structure unreadable.
    Invalid(String),
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }
}

/// Checks a detached signature (`application/pkcs7-signature`) over `content`.
pub fn verify_detached(content: &[u8], signature: &[u8], anchors: &X509StoreRef) -> SignatureCheck {
    check(signature, Some(content), anchors).0
}

/// Checks opaque signed data (`smime-type=signed-data`); returns the signed content too.
pub fn verify_opaque(der: &[u8], anchors: &X509StoreRef) -> (SignatureCheck, Option<Vec<u8>>) {
    check(der, None, anchors)
}

fn check(
    der: &[u8],
    detached: Option<&[u8]>,
    anchors: &X509StoreRef,
) -> (SignatureCheck, Option<Vec<u8>>) {
    let mut result = SignatureCheck {
        verdict: Verdict::Invalid(String::new()),
        signers: Vec::new(),
        capabilities: Capabilities::default(),
    };
    let mut cms = match CmsContentInfo::from_der(der) {
        Ok(c) => c,
        Err(e) => {
            result.verdict =
                Verdict::Invalid(format!("unreadable signature: {}", first_reason(&e)));
            return (result, None);
        }
    };
    result.signers = signers(der);
    result.capabilities = der::capabilities(der);
    // OpenSSL 3.0's CMS_verify leaks its copy of detached content when the signature names
    // no digest it can compute (openssl/openssl#30471): such a signature cannot verify
    // anyway, so it is refused here, before OpenSSL sees it.
    if detached.is_some() && !digests_known(der) {
        result.verdict = Verdict::Invalid(
            "the signature names no digest algorithm, or one this gateway does not know".into(),
        );
        return (result, None);
    }
    let mut out = Vec::new();
    let trusted = cms.verify(
        None,
        Some(anchors),
        detached,
        Some(&mut out),
        CMSOptions::BINARY,
    );
    result.verdict = match trusted {
        Ok(()) => Verdict::Valid,
        Err(e) => {
            let reason = first_reason(&e);
            // Same check without the chain: tells a broken signature from an unknown signer.
            let mut plain = Vec::new();
            match cms.verify(
                None,
                Some(anchors),
                detached,
                Some(&mut plain),
                CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
            ) {
                Ok(()) => {
                    out = plain;
                    Verdict::Untrusted(reason)
                }
                Err(_) => Verdict::Invalid(reason),
            }
        }
    };
    let content = (detached.is_none() && !out.is_empty()).then(|| mime::canonicalize(&out));
    (result, content)
}

/// Whether a SignedData names at least one digest algorithm and OpenSSL knows each.
fn digests_known(der: &[u8]) -> bool {
    let known = |oid: &[u8]| {
        der::oid_text(oid)
            .and_then(|t| openssl::asn1::Asn1Object::from_str(&t).ok())
            .is_some_and(|o| MessageDigest::from_nid(o.nid()).is_some())
    };
    der::digest_algorithms(der).is_some_and(|d| !d.is_empty() && d.iter().all(|o| known(o)))
}

/// The certificates that signed, as far as they are carried in the structure.
fn signers(der: &[u8]) -> Vec<X509> {
    let Ok(p7) = Pkcs7::from_der(der) else {
        return Vec::new();
    };
    let Ok(empty) = Stack::new() else {
        return Vec::new();
    };
    match p7.signers(&empty, Pkcs7Flags::empty()) {
        Ok(s) => s.iter().map(|c| c.to_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The email addresses a certificate is issued for (SAN rfc822Name, else subject emailAddress).
pub fn cert_emails(cert: &X509) -> Vec<String> {
    let mut out: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(|e| e.to_ascii_lowercase()))
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty() {
        for e in cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::PKCS9_EMAILADDRESS)
        {
            out.push(String::from_utf8_lossy(e.data().as_slice()).to_ascii_lowercase());
        }
    }
    out
}

/// The SHA-256 fingerprint of a certificate's DER encoding, upper-case hex (what `openssl
/// x509 -fingerprint -sha256` prints, without the colons).
pub fn fingerprint(cert: &X509) -> String {
    let der = cert.to_der().unwrap_or_default();
    openssl::sha::sha256(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Whether a certificate is issued for `domain`: one of its email addresses is at the
/// domain, or (a gateway's domain certificate without one) its subject's common name is
/// the domain.
pub fn names_domain(cert: &X509, domain: &str) -> bool {
    let domain = domain.to_ascii_lowercase();
    let by_email = cert_emails(cert)
        .iter()
        .any(|e| e.rsplit_once('@').is_some_and(|(_, d)| d == domain));
    by_email
        || cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .any(|e| {
                e.data()
                    .to_string()
                    .is_ok_and(|cn| cn.eq_ignore_ascii_case(&domain))
            })
}

pub fn serial_hex(cert: &X509) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .iter()
        .rev()
        .find_map(|e| e.reason().map(str::to_owned))
        .unwrap_or_else(|| "unknown OpenSSL error".to_owned())
}

/// What an S/MIME entity is, from its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `multipart/signed` with a PKCS#7 signature.
    DetachedSigned { boundary: String },
    /// `application/pkcs7-mime` with enveloped or auth-enveloped data.
    Enveloped,
    /// `application/pkcs7-mime` with signed data.
    OpaqueSigned,
    /// Not S/MIME.
    None,
}

pub fn kind(header: &Header) -> Kind {
    let ct = ContentType::of(header);
    let pkcs7_mime =
        ct.type_ == "application" && (ct.subtype == "pkcs7-mime" || ct.subtype == "x-pkcs7-mime");
    if ct.is("multipart", "signed") {
        let proto = ct
            .param("protocol")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if (proto == "application/pkcs7-signature" || proto == "application/x-pkcs7-signature")
            && let Some(b) = ct.param("boundary")
        {
            return Kind::DetachedSigned {
                boundary: b.to_owned(),
            };
        }
        return Kind::None;
    }
    if pkcs7_mime {
        let t = ct
            .param("smime-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        return match t.as_str() {
            "signed-data" => Kind::OpaqueSigned,
            "enveloped-data" | "authenveloped-data" => Kind::Enveloped,
            // Old clients omit smime-type: enveloped is what they meant most of the time;
            // a signed-data structure is recognised when decrypting fails.
            _ => Kind::Enveloped,
        };
    }
    Kind::None
}

#[cfg(test)]
mod tests;
