//! Postern's built-in certificate authority: issues users' S/MIME certificates
//! (RFC 8550: emailProtection EKU, the address as rfc822Name SAN).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};

use crate::smime::Identity;

/// RSA-2048: what every S/MIME client reads, and the speed TESTBED.md measured.
const RSA_BITS: u32 = 2048;

#[derive(Debug, thiserror::Error)]
#[error("certificate authority: {0}")]
pub struct CaError(#[from] ErrorStack);

/// A CA: certificate and key.
#[derive(Debug, Clone)]
pub struct Ca {
    pub identity: Identity,
}

fn asn1_time(t: SystemTime) -> Result<Asn1Time, ErrorStack> {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Asn1Time::from_unix(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn serial() -> Result<openssl::asn1::Asn1Integer, ErrorStack> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    bn.to_asn1_integer()
}

fn rsa_key() -> Result<PKey<Private>, ErrorStack> {
    PKey::from_rsa(Rsa::generate(RSA_BITS)?)
}

impl Ca {
    /// A new self-signed CA valid from `now` for `validity`.
    pub fn generate(name: &str, now: SystemTime, validity: Duration) -> Result<Ca, CaError> {
        let key = rsa_key()?;
        let mut subject = X509NameBuilder::new()?;
        subject.append_entry_by_text("O", "Postern")?;
        subject.append_entry_by_text("CN", name)?;
        let subject = subject.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&subject)?;
        b.set_issuer_name(&subject)?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(now - Duration::from_secs(3600))?)?;
        b.set_not_after(&*asn1_time(now + validity)?)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Ca {
            identity: Identity {
                cert: b.build(),
                key,
                chain: Vec::new(),
            },
        })
    }

    /// Issues an S/MIME certificate for `email`, valid from `not_before` to `not_after`.
    pub fn issue(
        &self,
        email: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Identity, CaError> {
        let key = rsa_key()?;
        let mut subject = X509NameBuilder::new()?;
        subject.append_entry_by_text("CN", email)?;
        subject.append_entry_by_text("emailAddress", email)?;
        let subject = subject.build();
        let ca = &self.identity.cert;
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&subject)?;
        b.set_issuer_name(ca.subject_name())?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(not_before)?)?;
        b.set_not_after(&*asn1_time(not_after)?)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().email_protection().build()?)?;
        let san = SubjectAlternativeName::new()
            .email(email)
            .build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(san)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(aki)?;
        b.sign(&self.identity.key, MessageDigest::sha256())?;
        Ok(Identity {
            cert: b.build(),
            key,
            chain: vec![ca.clone()],
        })
    }
}

/// `notAfter` of a certificate as a `SystemTime` (`None` if unreadable).
pub fn not_after(cert: &X509) -> Option<SystemTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(cert.not_after()).ok()?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Whether `cert` is within its validity period at `now`.
pub fn valid_at(cert: &X509, now: SystemTime) -> bool {
    not_before(cert).is_some_and(|t| t <= now) && not_after(cert).is_some_and(|t| t > now)
}

pub fn not_before(cert: &X509) -> Option<SystemTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(cert.not_before()).ok()?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}
