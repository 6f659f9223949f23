//! A CMS SignedData (RFC 5652 §5) for a detached S/MIME signature, encoded here instead of
//! by `CMS_sign`: the one RSA/ECDSA operation is OpenSSL's, the structure around it is a few
//! hundred bytes of DER we write directly. That keeps the cost of a signature close to the
//! bare private-key operation (OpenSSL 3's CMS layer added ~20 % per message), and lets the
//! SMIMECapabilities attribute announce AES-256-GCM, which OpenSSL's default list does not.
//! `openssl cms -verify` checks every structure this writes (unit and interop tests).

use std::time::SystemTime;

use openssl::error::ErrorStack;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::Id;
use openssl::sign::Signer;

use super::Identity;

// Object identifiers (content octets).
const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
const MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
const SIGNING_TIME: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05];
const SMIME_CAPABILITIES: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x0F];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const ECDSA_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
const AES256_GCM: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2E];
const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A];
const AES128_GCM: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06];
const AES128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];

/// One DER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(o: &[u8]) -> Vec<u8> {
    tlv(0x06, o)
}

/// AlgorithmIdentifier without parameters (or with NULL for rsaEncryption).
fn alg(o: &[u8], null: bool) -> Vec<u8> {
    if null {
        seq(&[&oid(o), &[0x05, 0x00]])
    } else {
        seq(&[&oid(o)])
    }
}

/// A positive INTEGER from big-endian magnitude bytes.
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match magnitude.iter().position(|b| *b != 0) {
        Some(i) => &magnitude[i..],
        None => &[0],
    };
    if trimmed[0] & 0x80 != 0 {
        tlv(0x02, &[&[0u8][..], trimmed].concat())
    } else {
        tlv(0x02, trimmed)
    }
}

/// UTCTime (RFC 5280 §4.1.2.5.1) for dates before 2050, GeneralizedTime after.
fn time(t: SystemTime) -> Vec<u8> {
    let u = crate::mime::date::Utc::from(t);
    let (y, m, d, hh, mm, ss) = (u.year, u.month, u.day, u.hour, u.minute, u.second);
    if (1950..2050).contains(&y) {
        tlv(
            0x17,
            format!("{:02}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z", y % 100).as_bytes(),
        )
    } else {
        tlv(
            0x18,
            format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z").as_bytes(),
        )
    }
}

fn attribute(kind: &[u8], value: &[u8]) -> Vec<u8> {
    seq(&[&oid(kind), &tlv(0x31, value)])
}

/// The DER of a detached SignedData over `content`, signed by `id`, at `now`.
pub fn sign_detached(
    content: &[u8],
    id: &Identity,
    now: SystemTime,
) -> Result<Vec<u8>, ErrorStack> {
    let digest = hash(MessageDigest::sha256(), content)?;
    let capabilities = seq(&[
        &alg(AES256_GCM, false),
        &alg(AES256_CBC, false),
        &alg(AES128_GCM, false),
        &alg(AES128_CBC, false),
    ]);
    let mut attrs = [
        attribute(CONTENT_TYPE, &oid(DATA)),
        attribute(SIGNING_TIME, &time(now)),
        attribute(MESSAGE_DIGEST, &tlv(0x04, &digest)),
        attribute(SMIME_CAPABILITIES, &capabilities),
    ];
    // DER: the elements of a SET OF in ascending order of their encodings (X.690 §11.6).
    attrs.sort();
    let attrs = attrs.concat();
    // The signature covers the attributes encoded as a SET (RFC 5652 §5.4).
    let (sig_alg, null) = match id.key.id() {
        Id::EC => (ECDSA_SHA256, false),
        _ => (RSA_ENCRYPTION, true),
    };
    let mut signer = Signer::new(MessageDigest::sha256(), &id.key)?;
    signer.update(&tlv(0x31, &attrs))?;
    let signature = signer.sign_to_vec()?;
    let serial = id.cert.serial_number().to_bn()?.to_vec();
    let signer_info = seq(&[
        &integer(&[1]),
        &seq(&[&id.cert.issuer_name().to_der()?, &integer(&serial)]),
        &alg(SHA256, false),
        &tlv(0xA0, &attrs),
        &alg(sig_alg, null),
        &tlv(0x04, &signature),
    ]);
    let mut certs = id.cert.to_der()?;
    for c in &id.chain {
        certs.extend_from_slice(&c.to_der()?);
    }
    let signed_data = seq(&[
        &integer(&[1]),
        &tlv(0x31, &alg(SHA256, false)),
        &seq(&[&oid(DATA)]),
        &tlv(0xA0, &certs),
        &tlv(0x31, &signer_info),
    ]);
    Ok(seq(&[&oid(SIGNED_DATA), &tlv(0xA0, &signed_data)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(integer(&[0x00, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[0x00, 0x00, 0x7F]), vec![0x02, 0x01, 0x7F]);
        assert_eq!(integer(&[]), vec![0x02, 0x01, 0x00]);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_392_000); // 2026-11-23
        assert_eq!(time(t), tlv(0x17, b"261123000000Z"));
        let far = std::time::UNIX_EPOCH + std::time::Duration::from_secs(2_556_144_000); // 2051
        assert_eq!(time(far)[0], 0x18);
    }
}
