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
        s.rollover(now, 365 * DAY, Duration::ZERO).unwrap(),
        vec!["bob@example.com".to_owned()]
    );
    let u = s.user("bob@example.com").unwrap();
    assert_eq!((u.smime.len(), u.pgp.len()), (2, 2));
    let signing = s.signing_identity("bob@example.com", now).unwrap();
    assert_eq!(smime::serial_hex(&signing.cert), u.smime[0].serial);
    assert_eq!(s.smime_identities("bob@example.com").len(), 2);
    // Nothing due any more.
    assert!(
        s.rollover(now, 365 * DAY, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
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

#[test]
fn domain_keys_roll_over_vouched_and_revoke() {
    use crate::federation::domain_key_address;
    let s = store();
    let now = SystemTime::now();
    assert!(s.ensure_domain_key("Corp.Example", now, 10 * DAY).unwrap());
    assert!(!s.ensure_domain_key("corp.example", now, 10 * DAY).unwrap());
    assert_eq!(s.own_domains(), ["corp.example"]);
    assert!(s.users().is_empty(), "domain keys are not users");
    let address = domain_key_address("corp.example");
    let first = s.pgp_signer(&address, now).unwrap();
    // Rollover a week before expiry: the next key is certified by the current one.
    let later = now + 4 * DAY;
    assert_eq!(
        s.rollover(later, 10 * DAY, Duration::ZERO).unwrap(),
        std::slice::from_ref(&address)
    );
    let next = s.pgp_signer(&address, later).unwrap();
    assert_ne!(pgp::fingerprint(&next), pgp::fingerprint(&first));
    assert!(pgp::certified_by(&next, &first));
    assert_eq!(s.domain_public_keys("corp.example", later).len(), 2);
    // Revoked: no longer published, no longer signing.
    s.revoke_domain_key("corp.example", &pgp::fingerprint(&next), later)
        .unwrap();
    let keys = s.domain_public_keys("corp.example", later);
    assert_eq!(keys.len(), 1);
    assert_eq!(pgp::fingerprint(&keys[0]), pgp::fingerprint(&first));
    assert_eq!(
        s.pgp_signer(&address, later).map(|k| pgp::fingerprint(&k)),
        Some(pgp::fingerprint(&first))
    );
    // The S/MIME domain certificate that signs, revoked by its SHA-256: the other one signs,
    // only that one is published, both still decrypt, and the mark survives a restore.
    let cert = s.signing_identity(&address, later).unwrap().cert;
    let fpr = crate::smime::fingerprint(&cert);
    assert_eq!(s.domain_published_certs("corp.example", later).len(), 2);
    s.revoke_domain_key("corp.example", &fpr.to_ascii_lowercase(), later)
        .unwrap();
    let signer = s.signing_identity(&address, later).unwrap().cert;
    assert_ne!(crate::smime::fingerprint(&signer), fpr);
    let published = s.domain_published_certs("corp.example", later);
    assert_eq!(published.len(), 1);
    assert_ne!(crate::smime::fingerprint(&published[0]), fpr);
    assert_eq!(s.smime_identities(&address).len(), 2);
    let details = s.domain_cert_details("corp.example", later);
    assert!(
        details
            .iter()
            .any(|d| d.fingerprint == fpr && d.revoked && !d.current)
    );
    let restored = MemoryKeyStore::from_bytes(&s.to_bytes(), Sealer::new([1; 32])).unwrap();
    let published = restored.domain_published_certs("corp.example", later);
    assert_eq!(published.len(), 1);
    assert_ne!(crate::smime::fingerprint(&published[0]), fpr);
}

#[test]
fn domain_keys_roll_over_half_a_max_age_ahead_users_a_week_ahead() {
    use crate::federation::domain_key_address;
    let s = store();
    let now = SystemTime::now();
    s.enrol("user@corp.example", now, 40 * DAY).unwrap();
    s.ensure_domain_key("corp.example", now, 40 * DAY).unwrap();
    // 25 days left: nothing is due with a week's lead.
    let later = now + 15 * DAY;
    assert!(
        s.rollover(later, 40 * DAY, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    // We publish max_age = 60 days: the domain key rolls over 30 days ahead, the user not.
    let address = domain_key_address("corp.example");
    let first = s.pgp_signer(&address, later).unwrap();
    let first_cert = s.signing_identity(&address, later).unwrap().cert;
    s.set_domain_lead(10 * DAY);
    let rolled = s.rollover(later, 40 * DAY, 30 * DAY).unwrap();
    assert_eq!(rolled, std::slice::from_ref(&address));
    assert_eq!(s.domain_public_keys("corp.example", later).len(), 2);
    // The next key is published at once but signs only after the lead: partners that keep
    // our policy have seen it by then.
    let fpr = |t| s.pgp_signer(&address, t).map(|k| pgp::fingerprint(&k));
    let serial = |t| {
        s.signing_identity(&address, t)
            .map(|i| crate::smime::serial_hex(&i.cert))
    };
    for t in [later, later + 9 * DAY] {
        assert_eq!(fpr(t), Some(pgp::fingerprint(&first)));
        assert_eq!(serial(t), Some(crate::smime::serial_hex(&first_cert)));
    }
    let after = later + 10 * DAY + Duration::from_secs(120);
    assert_ne!(fpr(after), Some(pgp::fingerprint(&first)));
    assert_ne!(serial(after), Some(crate::smime::serial_hex(&first_cert)));
    // Without a lead (nothing published), the newest key signs at once.
    s.set_domain_lead(Duration::ZERO);
    assert_ne!(fpr(later), Some(pgp::fingerprint(&first)));
}

#[test]
fn partner_domains_are_pinned_and_survive_a_restore() {
    use crate::federation::pin::{Evidence, Note, Source};
    use crate::federation::{DomainPolicy, Mode, domain_key_address};
    let s = store();
    let now = SystemTime::now();
    let k = pgp::generate(&domain_key_address("partner.example"), now, 30 * DAY).unwrap();
    let ev = Evidence {
        source: Source::Wkd,
        keys: vec![k.clone().strip_secret_key_material()],
        certs: Vec::new(),
        policy: Some(DomainPolicy {
            mode: Mode::Enforce,
            max_age: 3600,
        }),
    };
    let notes = s.learn_domain("Partner.Example", &ev, now);
    assert!(matches!(&notes[0], Note::Pinned(_)), "{notes:?}");
    let listed = s.partner_domains(now);
    assert_eq!(listed[0].domain, "partner.example");
    assert_eq!(listed[0].keys[0].trust, "tofu");
    assert_eq!(listed[0].mode.as_deref(), Some("enforce"));
    assert!(!listed[0].enforced, "a TOFU policy does not enforce");
    let generation = s.generation();
    // The same again: nothing written.
    s.learn_domain("partner.example", &ev, now);
    assert_eq!(s.generation(), generation);
    let back = MemoryKeyStore::from_bytes(&s.to_bytes(), Sealer::new([1; 32])).unwrap();
    assert_eq!(back.partner_domains(now), s.partner_domains(now));
    s.forget_partner_domain("partner.example").unwrap();
    assert!(s.partner_domain("partner.example").is_none());
}

#[test]
fn keys_made_before_the_store_was_replaced_are_not_committed() {
    // A node joining a cluster: its domain-key task made keys from its old CA while the
    // store was cleared for the cluster joined; committing them would overwrite the
    // cluster's domain key with a certificate of a CA nobody trusts.
    let s = store();
    let before = s.epoch();
    s.clear();
    s.ensure_ca("The joined cluster's CA", SystemTime::now())
        .unwrap();
    let late = s.update_since(before, |st, _, _| {
        st.anchors.push("late".into());
        Ok(())
    });
    assert!(
        matches!(late, Err(KeyStoreError::Replication(ref why)) if why.contains("replaced")),
        "{late:?}"
    );
    assert!(s.to_bytes().windows(4).all(|w| w != b"late"));
    // Made from the current state: committed.
    let now = s.epoch();
    s.update_since(now, |_, _, _| Ok(())).unwrap();
    assert!(
        s.ensure_domain_key("corp.example", SystemTime::now(), 10 * DAY)
            .unwrap()
    );
}
