use std::time::{Duration, SystemTime};

use openssl::x509::store::X509StoreBuilder;

use super::*;
use crate::keys::ca::Ca;
use crate::mime;

const DAY: Duration = Duration::from_secs(86_400);

fn setup() -> (Ca, Identity, openssl::x509::store::X509Store) {
    let now = SystemTime::now();
    let ca = Ca::generate("Test CA", now, 365 * DAY).unwrap();
    let id = ca
        .issue("alice@example.com", now - DAY, now + 30 * DAY)
        .unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca.identity.cert.clone()).unwrap();
    (ca, id, store.build())
}

fn signed_parts(signed: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let p = mime::split(signed);
    let h = mime::Header::parse(p.header);
    let Kind::DetachedSigned { boundary } = kind(&h) else {
        panic!("not signed")
    };
    let parts = mime::multipart_parts(p.body, &boundary).unwrap();
    let sig = mime::base64_decode(mime::split(parts[1]).body).unwrap();
    (parts[0].to_vec(), sig)
}

#[test]
fn sign_and_verify_detached() {
    let (_ca, id, store) = setup();
    let entity = b"Content-Type: text/plain\r\n\r\nhello\r\n";
    let signed = sign(entity, &id).unwrap();
    let (content, sig) = signed_parts(&signed);
    assert_eq!(content, entity);
    let check = verify_detached(&content, &sig, &store);
    assert_eq!(check.verdict, Verdict::Valid);
    assert_eq!(
        cert_emails(&check.signers[0]),
        vec!["alice@example.com".to_owned()]
    );
    assert!(check.capabilities.announced && check.capabilities.aes256_gcm);
    // One changed byte: invalid.
    let mut bad = content.clone();
    bad[30] ^= 1;
    assert!(matches!(
        verify_detached(&bad, &sig, &store).verdict,
        Verdict::Invalid(_)
    ));
    // Unknown CA: intact but untrusted.
    let empty = X509StoreBuilder::new().unwrap().build();
    assert!(matches!(
        verify_detached(&content, &sig, &empty).verdict,
        Verdict::Untrusted(_)
    ));
    // Garbage signature.
    assert!(matches!(
        verify_detached(&content, b"\x30\x03abc", &store).verdict,
        Verdict::Invalid(_)
    ));
}

#[test]
fn encrypt_decrypt_cbc_and_gcm() {
    let (ca, alice, _) = setup();
    let now = SystemTime::now();
    let bob = ca.issue("bob@example.com", now - DAY, now + DAY).unwrap();
    let entity = b"Content-Type: text/plain\r\n\r\nsecret\r\n";
    for cipher in [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm] {
        let enc = encrypt(entity, std::slice::from_ref(&alice.cert), cipher).unwrap();
        let p = mime::split(&enc);
        assert_eq!(kind(&mime::Header::parse(p.header)), Kind::Enveloped);
        let der = mime::base64_decode(p.body).unwrap();
        let expected = if cipher == ContentCipher::Aes256Gcm {
            CmsType::AuthEnveloped
        } else {
            CmsType::Enveloped
        };
        assert_eq!(content_type(&der), expected);
        assert_eq!(
            decrypt(&der, &[bob.clone(), alice.clone()]).unwrap(),
            entity
        );
        assert!(matches!(
            decrypt(&der, std::slice::from_ref(&bob)),
            Err(SmimeError::NotForUs)
        ));
    }
    assert!(matches!(
        decrypt(b"garbage", &[bob]),
        Err(SmimeError::Malformed(_))
    ));
    assert!(matches!(
        encrypt(entity, &[], ContentCipher::Aes256Cbc),
        Err(SmimeError::NoRecipients)
    ));
}

#[test]
fn cipher_follows_capabilities() {
    let gcm = Capabilities {
        announced: true,
        aes256_gcm: true,
    };
    let cbc = Capabilities {
        announced: true,
        aes256_gcm: false,
    };
    assert_eq!(
        ContentCipher::for_recipients([&gcm]),
        ContentCipher::Aes256Gcm
    );
    assert_eq!(
        ContentCipher::for_recipients([&gcm, &cbc]),
        ContentCipher::Aes256Cbc
    );
    assert_eq!(ContentCipher::for_recipients([]), ContentCipher::Aes256Cbc);
}

#[test]
fn a_signature_without_a_known_digest_is_refused_before_openssl_sees_it() {
    let (_ca, id, store) = setup();
    let entity = b"Content-Type: text/plain\r\n\r\nhello\r\n";
    let (content, sig) = signed_parts(&sign(entity, &id).unwrap());
    // digestAlgorithms names SHA-256 (2.16.840.1.101.3.4.2.1).
    let digests = der::digest_algorithms(&sig).expect("a SignedData");
    assert_eq!(digests.len(), 1);
    assert_eq!(
        der::oid_text(digests[0]).as_deref(),
        Some("2.16.840.1.101.3.4.2.1")
    );
    assert_eq!(der::oid_text(&[0x2A, 0x86]), None, "cut inside an arc");
    // The same signature naming 2.16.840.1.101.3.4.2.127, which no one knows: OpenSSL 3.0
    // would leak its copy of the content on it (openssl/openssl#30471); refused before.
    let sha256 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let at = sig
        .windows(sha256.len())
        .position(|w| w == sha256)
        .expect("the OID");
    let mut unknown = sig.clone();
    unknown[at + sha256.len() - 1] = 0x7F;
    let check = verify_detached(&content, &unknown, &store);
    assert!(
        matches!(&check.verdict, Verdict::Invalid(why) if why.contains("digest algorithm")),
        "{:?}",
        check.verdict
    );
    // The original still verifies.
    assert_eq!(
        verify_detached(&content, &sig, &store).verdict,
        Verdict::Valid
    );
}
