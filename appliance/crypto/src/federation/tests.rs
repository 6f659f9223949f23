use std::time::{Duration, SystemTime};

use super::announce::{self, AnnounceError};
use super::pin::{self, Choice, Evidence, Note, Source, Trust};
use super::{DomainPolicy, Mode, dns, domain_key_address, wkd};
use crate::pgp;

const DAY: Duration = Duration::from_secs(86_400);

fn key(domain: &str, now: SystemTime) -> pgp::PgpCert {
    pgp::generate(&domain_key_address(domain), now, DAY * 365).expect("key")
}

fn public(c: &pgp::PgpCert) -> pgp::PgpCert {
    c.clone().strip_secret_key_material()
}

#[test]
fn wkd_and_dns_names_match_the_specifications() {
    // draft-koch-openpgp-webkey-service, section 3.1.
    assert_eq!(
        wkd::hashed_local("Joe.Doe"),
        "iy9q119eutrkn8s1mk4r39qejnbu3n5q"
    );
    let [advanced, direct] = wkd::key_urls("Joe.Doe", "Example.ORG");
    assert_eq!(
        advanced,
        "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
    );
    assert_eq!(
        direct,
        "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
    );
    assert_eq!(
        wkd::parse_path("/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q"),
        Some(wkd::Request::Key {
            domain: Some("example.org".into()),
            hash: "iy9q119eutrkn8s1mk4r39qejnbu3n5q".into()
        })
    );
    assert_eq!(
        wkd::parse_path("/.well-known/openpgpkey/policy"),
        Some(wkd::Request::Policy { domain: None })
    );
    for bad in [
        "/.well-known/openpgpkey/hu/short",
        "/.well-known/openpgpkey/../hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q",
        "/.well-known/openpgpkey/a b/policy",
        "/other",
    ] {
        assert_eq!(wkd::parse_path(bad), None, "{bad}");
    }
    // RFC 7929, section 3.
    assert_eq!(
        dns::owner_hash("hugh"),
        "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6"
    );
    let p = DomainPolicy {
        mode: Mode::Enforce,
        max_age: 604_800,
    };
    let fpr = "0123456789ABCDEF0123456789ABCDEF01234567";
    let text = dns::policy_text(&p, fpr);
    assert_eq!(dns::parse_policy_text(&text), Some((p, Some(fpr.into()))));
    assert_eq!(dns::parse_policy_text("v=spf1 -all"), None);
    assert_eq!(
        dns::parse_policy_text("v=mailenc1; mode=enforce; max_age=99999999999"),
        None
    );
    assert_eq!(
        wkd::parse_policy(&wkd::render_policy(Some(&p), Some(fpr))),
        (Some(p), Some(fpr.into()))
    );
    assert_eq!(wkd::parse_policy("protocol-version: 5\n"), (None, None));
}

#[test]
fn an_announcement_round_trips_and_resists_tampering() {
    let now = SystemTime::now();
    let k = key("corp.example", now);
    let p = DomainPolicy {
        mode: Mode::Enforce,
        max_age: 86_400,
    };
    let value = announce::build("corp.example", Some(&p), &[public(&k)], &k, now).expect("build");
    assert!(value.lines().all(|l| l.len() <= 78), "{value}");
    let a = announce::parse(value.as_bytes(), now).expect("parse");
    assert_eq!(a.domain, "corp.example");
    assert_eq!(a.policy, Some(p));
    assert_eq!(pgp::fingerprint(&a.keys[0]), pgp::fingerprint(&k));
    assert!(announce::enforces(&a));

    // The policy changed on the way: the signature no longer covers it.
    let tampered = value.replace("m=enforce", "m=testing");
    assert!(matches!(
        announce::parse(tampered.as_bytes(), now),
        Err(AnnounceError::Signature(_))
    ));
    // Another domain's key under this domain's name.
    let other = key("other.example", now);
    let v = announce::build("corp.example", None, &[public(&other)], &other, now).expect("build");
    assert_eq!(
        announce::parse(v.as_bytes(), now).err(),
        Some(AnnounceError::NotTheDomainKey("corp.example".into()))
    );
    // Built from a key with its secret, only the public part travels …
    let v =
        announce::build("corp.example", None, std::slice::from_ref(&k), &k, now).expect("build");
    let a = announce::parse(v.as_bytes(), now).expect("public part");
    assert!(!a.keys[0].is_tsk());
    // … and secret key material put in by hand is refused.
    let secret = openssl::base64::encode_block(&pgp::secret_bytes(&k));
    let v = format!("v=1; d=corp.example; m=none; a=0; t=1; k={secret}; s=AAAA");
    assert!(matches!(
        announce::parse(v.as_bytes(), now),
        Err(AnnounceError::Key(_))
    ));
    for (bad, why) in [
        (vec![b'a'; announce::MAX_VALUE + 1], "too large"),
        (b"v=2; d=x".to_vec(), "version"),
        (b"garbage".to_vec(), "malformed"),
        (
            b"v=1; d=a b; m=none; a=0; t=1; k=AA; s=AA".to_vec(),
            "domain",
        ),
        (b"v=1; v=1".to_vec(), "twice"),
    ] {
        assert!(announce::parse(&bad, now).is_err(), "{why}");
    }
}

fn ev(source: Source, keys: &[&pgp::PgpCert], policy: Option<DomainPolicy>) -> Evidence {
    Evidence {
        source,
        keys: keys.iter().map(|k| public(k)).collect(),
        certs: Vec::new(),
        policy,
    }
}

#[test]
fn pins_follow_the_rules() {
    let now = SystemTime::now();
    let enforce = Some(DomainPolicy {
        mode: Mode::Enforce,
        max_age: 3600,
    });
    let k1 = key("partner.example", now - DAY);
    // First use: pinned, trust on first use.
    let (p, notes) = pin::merge(None, &ev(Source::InBand, &[&k1], enforce), now);
    assert!(matches!(&notes[0], Note::Pinned(_)));
    assert_eq!(p.keys[0].trust(), Trust::Tofu);
    // A TOFU policy does not enforce.
    assert!(!pin::enforced(&p, now));
    assert!(matches!(
        pin::choose(&p, now),
        Choice::Use {
            trust: Trust::Tofu,
            ..
        }
    ));
    // A second, independent source agrees: verified, and its policy enforces.
    let (p, _) = pin::merge(Some(&p), &ev(Source::Wkd, &[&k1], enforce), now);
    assert_eq!(p.keys[0].trust(), Trust::Verified);
    assert!(pin::enforced(&p, now));
    // … until max_age after it was last seen.
    assert!(!pin::enforced(&p, now + Duration::from_secs(3601)));

    // A different key from the in-band header: refused, the pin stays.
    let rogue = key("partner.example", now);
    let (p2, notes) = pin::merge(Some(&p), &ev(Source::InBand, &[&rogue], None), now);
    assert!(matches!(&notes[0], Note::Refused { .. }), "{notes:?}");
    assert_eq!(p2.keys.len(), 1);
    // A TOFU policy does not weaken a verified one.
    let testing = Some(DomainPolicy {
        mode: Mode::Testing,
        max_age: 60,
    });
    let (p3, notes) = pin::merge(Some(&p), &ev(Source::InBand, &[&k1], testing), now);
    assert!(
        notes.contains(&Note::PolicyIgnored(Mode::Testing)),
        "{notes:?}"
    );
    assert!(pin::enforced(&p3, now));

    // A rollover: the next key certified by the pinned one is accepted and preferred.
    let k2 = pgp::certify(&k1, &key("partner.example", now), now).expect("certify");
    let (p, notes) = pin::merge(Some(&p), &ev(Source::InBand, &[&k2], None), now);
    assert!(matches!(&notes[0], Note::Replaced { .. }), "{notes:?}");
    let Choice::Use { key: used, trust } = pin::choose(&p, now) else {
        panic!("a key to use")
    };
    assert_eq!(used.fingerprint(), pgp::fingerprint(&k2));
    assert_eq!(trust, Trust::Verified, "vouched for by a verified key");
    // DNSSEC may replace a key outright.
    let k3 = key("partner.example", now - Duration::from_secs(10));
    let (p, notes) = pin::merge(Some(&p), &ev(Source::Dnssec, &[&k3], None), now);
    assert!(matches!(&notes[0], Note::Replaced { .. }), "{notes:?}");

    // Revoked keys are never used; with enforce and nothing left: unusable.
    let mut p = p;
    for k in [&k1, &k2, &k3] {
        let revoked = pgp::revoke(k, now).expect("revoke");
        p = pin::merge(Some(&p), &ev(Source::Wkd, &[&revoked], None), now).0;
    }
    assert!(p.keys.iter().all(|k| k.revoked));
    assert!(matches!(pin::choose(&p, now), Choice::Unusable { .. }));
    // Without an enforced policy: nothing, the ordinary policy decides.
    p.policy = None;
    assert!(matches!(pin::choose(&p, now), Choice::Nothing));
}

#[test]
fn an_enforcing_partner_gets_only_a_verified_key() {
    let now = SystemTime::now();
    let enforce = Some(DomainPolicy {
        mode: Mode::Enforce,
        max_age: 3600,
    });
    // DNSSEC vouches for the policy, but the key record did not validate.
    let (p, _) = pin::merge(None, &ev(Source::Dnssec, &[], enforce), now);
    assert!(pin::enforced(&p, now));
    assert!(matches!(pin::choose(&p, now), Choice::Unusable { .. }));
    // WKD alone offers a key: trust on first use, not enough for enforce.
    let k = key("partner.example", now - DAY);
    let (p, _) = pin::merge(Some(&p), &ev(Source::Wkd, &[&k], None), now);
    assert_eq!(p.keys[0].trust(), Trust::Tofu);
    let Choice::Unusable { reason } = pin::choose(&p, now) else {
        panic!("a TOFU key used for an enforcing partner")
    };
    assert!(reason.contains("not verified"), "{reason}");
    // The in-band announcement agrees: two sources, verified, used.
    let (p, _) = pin::merge(Some(&p), &ev(Source::InBand, &[&k], None), now);
    assert!(matches!(
        pin::choose(&p, now),
        Choice::Use {
            trust: Trust::Verified,
            ..
        }
    ));
}

fn cert(domain: &str, not_before: SystemTime) -> openssl::x509::X509 {
    let ca = crate::keys::ca::Ca::generate("Vendor CA", not_before, DAY * 3650).expect("ca");
    ca.issue(
        &domain_key_address(domain),
        not_before,
        not_before + DAY * 365,
    )
    .expect("issue")
    .cert
}

fn ev_certs(source: Source, certs: &[&openssl::x509::X509]) -> Evidence {
    Evidence {
        source,
        keys: Vec::new(),
        certs: certs.iter().map(|c| (*c).clone()).collect(),
        policy: None,
    }
}

#[test]
fn smime_domain_certificates_come_only_from_dnssec_or_the_admin() {
    let now = SystemTime::now();
    let c1 = cert("partner.example", now - DAY);
    // From the in-band header or WKD: refused (neither authenticates an X.509 certificate).
    let (p, notes) = pin::merge(None, &ev_certs(Source::InBand, &[&c1]), now);
    assert!(matches!(&notes[0], Note::Refused { .. }), "{notes:?}");
    assert!(p.certs.is_empty());
    // From DNSSEC: pinned, verified, used.
    let (p, notes) = pin::merge(None, &ev_certs(Source::Dnssec, &[&c1]), now);
    assert!(matches!(&notes[0], Note::Pinned(_)), "{notes:?}");
    assert_eq!(p.certs[0].trust(), Trust::Verified);
    let Choice::UseCert { cert: used } = pin::choose(&p, now) else {
        panic!("the certificate is used")
    };
    assert_eq!(used.fingerprint(), crate::smime::fingerprint(&c1));
    // A TOFU OpenPGP key does not win over a verified certificate …
    let k = key("partner.example", now - DAY);
    let (p, _) = pin::merge(Some(&p), &ev(Source::InBand, &[&k], None), now);
    assert!(matches!(pin::choose(&p, now), Choice::UseCert { .. }));
    // … a verified one does (Postern to Postern: OpenPGP).
    let (p, _) = pin::merge(Some(&p), &ev(Source::Wkd, &[&k], None), now);
    assert!(matches!(
        pin::choose(&p, now),
        Choice::Use {
            trust: Trust::Verified,
            ..
        }
    ));
    // DNSSEC publishes a new certificate: it replaces the old one, which DNSSEC no longer
    // vouches for and so is dropped; an imported one stays until the admin forgets it.
    let c2 = cert("partner.example", now - DAY / 2);
    let imported = cert("partner.example", now - DAY * 2);
    let (p, _) = pin::merge(None, &ev_certs(Source::Imported, &[&imported]), now);
    let (p, _) = pin::merge(Some(&p), &ev_certs(Source::Dnssec, &[&c1]), now);
    let (p, notes) = pin::merge(Some(&p), &ev_certs(Source::Dnssec, &[&c2]), now);
    assert!(
        notes.iter().any(|n| matches!(n, Note::Replaced { .. })),
        "{notes:?}"
    );
    assert!(
        notes.contains(&Note::Revoked(crate::smime::fingerprint(&c1))),
        "{notes:?}"
    );
    let fprs: Vec<String> = p.certs.iter().map(|c| c.fingerprint()).collect();
    assert_eq!(
        fprs,
        [
            crate::smime::fingerprint(&c2),
            crate::smime::fingerprint(&imported)
        ],
        "newest first"
    );
    // An expired certificate is never used; with enforce and nothing else: unusable.
    let later = now + DAY * 400;
    let mut p = p;
    p.policy = Some(pin::PinnedPolicy {
        policy: DomainPolicy {
            mode: Mode::Enforce,
            max_age: 86_400 * 500,
        },
        seen: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        source: Source::Dnssec,
        verified: true,
    });
    assert!(matches!(pin::choose(&p, later), Choice::Unusable { .. }));
}

#[test]
fn smimea_records_carry_whole_certificates_only() {
    let now = SystemTime::now();
    let c = cert("partner.example", now);
    let der = c.to_der().unwrap();
    let mut rdata = vec![3, 0, 0];
    rdata.extend_from_slice(&der);
    assert_eq!(
        crate::smime::fingerprint(&dns::parse_smimea(&rdata).unwrap()),
        crate::smime::fingerprint(&c)
    );
    // What `posternctl domain dns-records` prints reads back.
    let line = dns::smimea_record("domainkey", "partner.example", &der);
    assert!(
        line.contains("._smimecert.partner.example. 3600 IN SMIMEA 3 0 0 "),
        "{line}"
    );
    for bad in [
        vec![3, 0],
        vec![3, 1, 0, 1, 2],
        vec![3, 0, 1, 1, 2],
        vec![2, 0, 0, 1, 2],
        vec![3, 0, 0, 0x30, 0x03, 0x01],
    ] {
        assert!(dns::parse_smimea(&bad).is_err(), "{bad:?}");
    }
}
