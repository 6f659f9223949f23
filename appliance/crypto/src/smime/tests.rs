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
