use super::*;

const DAY: Duration = Duration::from_secs(86_400);

fn store() -> MemoryKeyStore {
    let s = MemoryKeyStore::new(Sealer::new([1; 32]));
    s.ensure_ca("Test CA", SystemTime::now()).unwrap();
    s
}

#[test]
fn enrol_persist_restore() {
    let s = store();
    let now = SystemTime::now();
    let u = s.enrol("Alice@Example.com", now, 365 * DAY).unwrap();
    assert_eq!(u.address, "alice@example.com");
    assert_eq!((u.smime.len(), u.pgp.len()), (1, 1));
    assert!(s.is_enrolled("alice@example.com"));
    assert!(s.signing_identity("alice@example.com", now).is_some());
    assert!(s.pgp_signer("alice@example.com", now).is_some());
    let bytes = s.to_bytes();
    // No private key in the clear: the PKCS#8 and OpenPGP secret markers never appear.
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("PRIVATE KEY") && !text.contains("PRIVATE KEY BLOCK"));
    let back = MemoryKeyStore::from_bytes(&bytes, Sealer::new([1; 32])).unwrap();
    assert_eq!(back.users(), s.users());
    assert!(matches!(
        MemoryKeyStore::from_bytes(&bytes, Sealer::new([2; 32])),
        Err(KeyStoreError::Seal(SealError::Open))
    ));
    assert!(matches!(
        s.enrol("not an address", now, DAY),
        Err(KeyStoreError::BadAddress(_))
    ));
}

#[test]
fn rollover_keeps_old_keys_for_decryption() {
    let s = store();
    let now = SystemTime::now();
    s.enrol("bob@example.com", now, 5 * DAY).unwrap();
    assert_eq!(
        s.rollover(now, 365 * DAY).unwrap(),
        vec!["bob@example.com".to_owned()]
    );
    let u = s.user("bob@example.com").unwrap();
    assert_eq!((u.smime.len(), u.pgp.len()), (2, 2));
    let signing = s.signing_identity("bob@example.com", now).unwrap();
    assert_eq!(smime::serial_hex(&signing.cert), u.smime[0].serial);
    assert_eq!(s.smime_identities("bob@example.com").len(), 2);
    // Nothing due any more.
    assert!(s.rollover(now, 365 * DAY).unwrap().is_empty());
}

#[test]
fn harvest_never_touches_own_users() {
    let s = store();
    let other = MemoryKeyStore::new(Sealer::new([3; 32]));
    let now = SystemTime::now();
    other.ensure_ca("Other", now).unwrap();
    other.enrol("carol@partner.example", now, DAY * 30).unwrap();
    other.enrol("alice@example.com", now, DAY * 30).unwrap();
    s.enrol("alice@example.com", now, DAY * 30).unwrap();
    let carol = other
        .signing_identity("carol@partner.example", now)
        .unwrap();
    let caps = Capabilities {
        announced: true,
        aes256_gcm: true,
    };
    assert_eq!(
        s.harvest_smime(&carol.cert, &caps, now),
        vec!["carol@partner.example".to_owned()]
    );
    let (cert, c) = s.smime_recipient("carol@partner.example", now).unwrap();
    assert_eq!(cert.to_der().unwrap(), carol.cert.to_der().unwrap());
    assert!(c.aes256_gcm);
    let fake = other.signing_identity("alice@example.com", now).unwrap();
    assert!(s.harvest_smime(&fake.cert, &caps, now).is_empty());
    let pgp = other.pgp_signer("carol@partner.example", now).unwrap();
    assert_eq!(
        s.harvest_pgp(&pgp, now),
        vec!["carol@partner.example".to_owned()]
    );
    assert!(s.pgp_recipient("carol@partner.example", now).is_some());
    assert_eq!(s.partners().len(), 1);
}
