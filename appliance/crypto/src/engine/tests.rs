use std::time::{Duration, SystemTime};

use super::*;
use crate::keys::MemoryKeyStore;
use crate::keys::seal::Sealer;
use crate::policy::Method;

const DAY: Duration = Duration::from_secs(86_400);

fn gateway(domain: &str, users: &[&str]) -> (Engine, Arc<MemoryKeyStore>) {
    let store = Arc::new(MemoryKeyStore::new(Sealer::new(
        Sealer::generate().unwrap(),
    )));
    let now = SystemTime::now();
    store.ensure_ca(&format!("{domain} CA"), now).unwrap();
    for u in users {
        store.enrol(u, now, 365 * DAY).unwrap();
    }
    let config = PolicyConfig {
        internal_domains: vec![domain.into()],
        ..PolicyConfig::default()
    };
    (Engine::new(config, store.clone()), store)
}

fn send(e: &Engine, from: &str, to: &str, msg: &str) -> Result<Processed, ProcessError> {
    let now = SystemTime::now();
    let d = e.decide(from, to, now);
    e.process(&d.class, from, &[to.to_owned()], msg.as_bytes(), now)
}

fn header(m: &[u8], name: &str) -> Option<String> {
    Header::parse(crate::mime::split(m).header).get(name)
}

const MSG: &str = "From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: Offer\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße, Alice\r\n";

#[test]
fn signed_then_harvested_then_reply_encrypted() {
    let (ours, our_keys) = gateway("example.com", &["alice@example.com"]);
    let (theirs, their_keys) = gateway("partner.example", &["bob@partner.example"]);
    their_keys
        .add_trust_anchors(our_keys.ca_pem().unwrap().as_bytes())
        .unwrap();
    our_keys
        .add_trust_anchors(their_keys.ca_pem().unwrap().as_bytes())
        .unwrap();
    // No key for bob yet: signed only.
    assert_eq!(
        ours.decide(
            "alice@example.com",
            "bob@partner.example",
            SystemTime::now()
        )
        .class,
        Class::Outbound(Method::SignedOnly)
    );
    let out = send(&ours, "alice@example.com", "bob@partner.example", MSG).unwrap();
    assert!(
        out.explanation.starts_with("S/MIME signed"),
        "{}",
        out.explanation
    );
    assert!(header(&out.message, "x-postern-policy").is_some());
    // Bob's gateway verifies and harvests alice's certificate.
    let inbound = send(
        &theirs,
        "alice@example.com",
        "bob@partner.example",
        &String::from_utf8(out.message).unwrap(),
    )
    .unwrap();
    assert_eq!(
        header(&inbound.message, "subject").as_deref(),
        Some("[signed] Offer")
    );
    assert!(
        header(&inbound.message, "x-postern-signature")
            .unwrap()
            .starts_with("valid (S/MIME")
    );
    // Bob's reply is now encrypted to alice automatically, and alice's gateway opens it.
    let reply =
        "From: bob@partner.example\r\nTo: alice@example.com\r\nSubject: Re: Offer\r\n\r\nyes\r\n";
    assert_eq!(
        theirs
            .decide(
                "bob@partner.example",
                "alice@example.com",
                SystemTime::now()
            )
            .class,
        Class::Outbound(Method::Smime)
    );
    let enc = send(&theirs, "bob@partner.example", "alice@example.com", reply).unwrap();
    assert!(!String::from_utf8_lossy(&enc.message).contains("yes\r\n"));
    let opened = send(
        &ours,
        "bob@partner.example",
        "alice@example.com",
        &String::from_utf8(enc.message).unwrap(),
    )
    .unwrap();
    assert_eq!(
        header(&opened.message, "subject").as_deref(),
        Some("[encrypted] [signed] Re: Offer")
    );
    assert!(String::from_utf8_lossy(&opened.message).contains("yes\r\n"));
}

#[test]
fn openpgp_round_trip_between_gateways() {
    let (ours, our_keys) = gateway("example.com", &["alice@example.com"]);
    let (theirs, their_keys) = gateway("partner.example", &["bob@partner.example"]);
    our_keys
        .import_public(
            their_keys
                .export_user_pgp("bob@partner.example")
                .unwrap()
                .as_bytes(),
            SystemTime::now(),
        )
        .unwrap();
    their_keys
        .import_public(
            our_keys
                .export_user_pgp("alice@example.com")
                .unwrap()
                .as_bytes(),
            SystemTime::now(),
        )
        .unwrap();
    let out = send(&ours, "alice@example.com", "bob@partner.example", MSG).unwrap();
    assert!(
        out.explanation.starts_with("OpenPGP signed and encrypted"),
        "{}",
        out.explanation
    );
    let inbound = send(
        &theirs,
        "alice@example.com",
        "bob@partner.example",
        &String::from_utf8(out.message).unwrap(),
    )
    .unwrap();
    let text = String::from_utf8(inbound.message.clone()).unwrap();
    assert!(text.contains("Grüße, Alice"), "{text}");
    assert_eq!(
        header(&inbound.message, "x-postern-encrypted").as_deref(),
        Some("decrypted (OpenPGP)")
    );
    assert!(
        header(&inbound.message, "x-postern-signature")
            .unwrap()
            .starts_with("valid (OpenPGP")
    );
}

#[test]
fn tags_calendar_and_required_encryption() {
    let (ours, _) = gateway("example.com", &["alice@example.com"]);
    let secure = MSG.replace("Subject: Offer", "Subject: [secure] Offer");
    match send(&ours, "alice@example.com", "bob@partner.example", &secure) {
        Err(e @ ProcessError::EncryptionImpossible(_)) => assert!(e.is_permanent()),
        other => panic!("{other:?}"),
    }
    let nosign = MSG.replace("Subject: Offer", "Subject: Offer [nosign]");
    let out = send(&ours, "alice@example.com", "bob@partner.example", &nosign).unwrap();
    assert_eq!(header(&out.message, "subject").as_deref(), Some("Offer"));
    assert!(out.explanation.contains("not signed ([nosign])"));
    assert!(String::from_utf8_lossy(&out.message).contains("Grüße"));
    // A calendar invitation with [secure] is signed, never encrypted.
    let cal = "From: alice@example.com\r\nSubject: [secure] Meeting\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n";
    let out = send(&ours, "alice@example.com", "bob@partner.example", cal).unwrap();
    assert!(
        out.explanation.contains("never encrypted"),
        "{}",
        out.explanation
    );
}

#[test]
fn forged_markers_are_removed() {
    let (ours, _) = gateway("example.com", &["alice@example.com"]);
    let forged = "From: mallory@evil.example\r\nSubject: [signed] Pay invoice\r\nX-Postern-Signature: valid (S/MIME: signer ceo@example.com)\r\n\r\npay\r\n";
    let out = send(&ours, "mallory@evil.example", "alice@example.com", forged).unwrap();
    assert_eq!(
        header(&out.message, "subject").as_deref(),
        Some("Pay invoice")
    );
    assert!(header(&out.message, "x-postern-signature").is_none());
    assert!(out.explanation.contains("forged subject marker"));
    // Garbage in an S/MIME wrapper: delivered unchanged apart from the verdict header.
    let garbage = "From: x@evil.example\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
    let out = send(&ours, "x@evil.example", "alice@example.com", garbage).unwrap();
    assert!(
        header(&out.message, "x-postern-encrypted")
            .unwrap()
            .starts_with("not decrypted")
    );
    assert!(String::from_utf8_lossy(&out.message).ends_with("\r\n\r\nAAAA\r\n"));
}

#[test]
fn smime_domain_encryption_between_gateways_with_imported_certificates() {
    let now = SystemTime::now();
    let (ours, our_keys) = gateway("example.com", &["alice@example.com"]);
    let (theirs, their_keys) = gateway("partner.example", &[]);
    our_keys
        .ensure_domain_key("example.com", now, 365 * DAY)
        .unwrap();
    their_keys
        .ensure_domain_key("partner.example", now, 365 * DAY)
        .unwrap();
    // Each admin imports the other's S/MIME domain certificate (another vendor's gateway:
    // no OpenPGP key, no CA exchanged — the pin alone is trusted).
    let their_cert = their_keys
        .export_user_certs("domainkey@partner.example")
        .unwrap();
    let our_cert = our_keys.export_user_certs("domainkey@example.com").unwrap();
    // A certificate for another domain is refused.
    assert!(matches!(
        our_keys.import_partner_domain("other.example", their_cert.as_bytes(), now),
        Err(crate::keys::KeyStoreError::WrongDomain { .. })
    ));
    our_keys
        .import_partner_domain("partner.example", their_cert.as_bytes(), now)
        .unwrap();
    their_keys
        .import_partner_domain("example.com", our_cert.as_bytes(), now)
        .unwrap();
    let d = ours.decide("alice@example.com", "bob@partner.example", now);
    assert_eq!(
        d.class,
        Class::Outbound(Method::DomainSmime),
        "{}",
        d.explanation
    );
    let out = send(&ours, "alice@example.com", "bob@partner.example", MSG).unwrap();
    assert!(
        out.explanation
            .starts_with("domain encrypted (S/MIME, Aes256Cbc) to certificate")
            && out.explanation.contains("signed by domain certificate"),
        "{}",
        out.explanation
    );
    let wire = String::from_utf8(out.message.clone()).unwrap();
    assert!(
        wire.contains("application/pkcs7-mime") && !wire.contains("Grüße"),
        "{wire}"
    );
    let inbound = send(&theirs, "alice@example.com", "bob@partner.example", &wire).unwrap();
    let text = String::from_utf8(inbound.message.clone()).unwrap();
    // The signed entity went 7-bit: "Grüße, Alice\r\n" in base64.
    assert!(text.contains("R3LDvMOfZSwgQWxpY2UNCg=="), "{text}");
    assert_eq!(
        header(&inbound.message, "x-postern-encrypted").as_deref(),
        Some("decrypted (S/MIME, domain key)")
    );
    let sig = header(&inbound.message, "x-postern-signature").unwrap();
    assert!(sig.starts_with("valid (S/MIME"), "{sig}");

    // Without the pin, the same signature is only intact, not trusted.
    their_keys.forget_partner_domain("example.com").unwrap();
    let again = send(&ours, "alice@example.com", "bob@partner.example", MSG).unwrap();
    let inbound = send(
        &theirs,
        "alice@example.com",
        "bob@partner.example",
        &String::from_utf8(again.message).unwrap(),
    )
    .unwrap();
    let sig = header(&inbound.message, "x-postern-signature").unwrap();
    assert!(sig.starts_with("invalid (S/MIME"), "{sig}");
}
