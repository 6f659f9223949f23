//! Federation (issue 16): partner domains find each other's domain keys by themselves —
//! in-band announcements, DNSSEC-validated DNS, WKD — and encrypt gateway to gateway, with
//! pins that no unauthenticated source can replace and an `enforce` policy that is never
//! downgraded to plaintext. Every part is real and independent: knot signs the zone, unbound
//! validates, Postfix queues and retries, gpg-wks-server publishes the WKD-only domain and
//! gpg opens what Postern sent it. See world.rs for the layout.

mod hostile;
mod world;

use std::time::Duration;

use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE, HEXUPPER};
use postern_tests::netns;
use postern_tests::peers::Peer;
use postern_tests::peers_available;
use postern_tests::pki::{self, OpensslCa};
use postern_tests::sink::SunkMessage;
use postern_tests::wait_for;

use world::{A0, B, Site, World, arrives};

/// Every program the federation tests run.
pub const PEERS: &[Peer] = &[
    Peer::Knotd,
    Peer::Knotc,
    Peer::Keymgr,
    Peer::Unbound,
    Peer::GpgWksServer,
    Peer::Python3,
    Peer::Gpg,
    Peer::Gpgconf,
    Peer::Openssl,
    Peer::Postfix,
    Peer::Sendmail,
    Peer::Postqueue,
    Peer::SmtpSink,
];

const WITHIN: Duration = Duration::from_secs(60);

/// Whether the federation tests can run here (else skipped with the reason, or failed under
/// REQUIRE_NETNS / REQUIRE_PEERS).
pub fn can_run(test: &str) -> bool {
    netns::available(test) && peers_available(test, PEERS)
}

/// The secret text of message `id`: it must never be on the wire between sites.
fn secret(id: &str) -> String {
    format!("the secret of {id} is {}", std::process::id())
}

/// The copy `tap` took off the wire: PGP/MIME, and the secret nowhere in it.
fn encrypted_on_the_wire(wire: &SunkMessage, id: &str) -> String {
    let ct = wire.header("content-type").unwrap_or_default();
    assert!(
        ct.to_ascii_lowercase().starts_with("multipart/encrypted"),
        "{id} was not encrypted on the wire ({ct}):\n{}",
        wire.text()
    );
    assert!(
        !wire.text().contains(&secret(id)),
        "{id}: the secret is on the wire"
    );
    // Which key the sending gateway encrypted to, as its X-Postern-Policy says.
    wire.header("x-postern-policy").unwrap_or_default()
}

/// The copy delivered to the recipient's mailbox: decrypted with the domain key, the
/// secret back.
fn decrypted_by_the_domain_key(delivered: &SunkMessage, id: &str) {
    let mark = delivered.header("x-postern-encrypted").unwrap_or_default();
    assert!(
        mark.contains("domain key"),
        "{id} not marked as decrypted with the domain key: {mark:?}\n{}",
        delivered.text()
    );
    assert!(
        delivered.text().contains(&secret(id)),
        "{id}: the secret is not in the delivered message:\n{}",
        delivered.text()
    );
}

/// Sends `id` from `from_site` to `to` at `to_site` and checks it crossed encrypted and was
/// opened with the domain key; returns the sending gateway's explanation.
fn crosses_encrypted(w: &World, from: (&Site, &str), to: (&Site, &str), id: &str) -> String {
    from.0.send(from.1, &[to.1], id, &secret(id));
    let q = w.queues();
    let wire = arrives(&to.0.tap, id, &q, WITHIN)
        .unwrap_or_else(|| panic!("{id} did not reach {}", to.0.domain));
    let how = encrypted_on_the_wire(&wire, id);
    let delivered = arrives(&to.0.mailbox, id, &q, WITHIN)
        .unwrap_or_else(|| panic!("{id} not delivered at {}", to.0.domain));
    decrypted_by_the_domain_key(&delivered, id);
    how
}

fn key_fingerprints(pin: &serde_json::Value) -> Vec<String> {
    pin["keys"]
        .as_array()
        .map(|k| {
            k.iter()
                .filter_map(|k| k["fingerprint"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn refresh(site: &Site, domain: &str) -> serde_json::Value {
    site.nodes[0]
        .ctl_json(&["domain", "refresh", domain])
        .unwrap_or_else(|e| panic!("refresh {domain}: {e}"))
}

/// The whole life of a federation between two Postern sites and a WKD-only domain, in the
/// order a real one lives it: first contact in-band (TOFU), DNS records published (verified,
/// enforce), a WKD-only partner, a split delivery, an enforcing partner whose key record is
/// bogus, a rollover under load, a revocation, records that vanish, and the loss of a node.
#[test]
fn federation_two_clusters_and_a_wkd_domain_exchange_encrypted_mail_with_no_key_imported() {
    if !can_run("federation_lifecycle") {
        return;
    }
    let mut w = World::new(&["_openpgpkey.d.test."]);
    let (a, b) = (&w.a, &w.b);

    // 1. Nothing published: B's first message to A goes plain, but carries B's signed
    //    announcement; A pins B's key (trust on first use) and encrypts its answer to it.
    b.send("bob@b.test", &["alice@a.test"], "first-contact", "hello");
    arrives(&a.mailbox, "first-contact", &w.queues(), WITHIN).expect("B's first message");
    let pin = a
        .pinned(0, "b.test")
        .expect("A pinned B from the announcement");
    assert_eq!(pin["keys"][0]["trust"], "tofu", "{pin}");
    assert_eq!(
        pin["keys"][0]["sources"],
        serde_json::json!(["in-band"]),
        "{pin}"
    );
    assert_eq!(pin["enforced"], false, "{pin}");
    let b_key = b.domain_key().expect("B's key");
    assert_eq!(key_fingerprints(&pin), vec![b_key.clone()]);
    let how = crosses_encrypted(&w, (a, "alice@a.test"), (b, "bob@b.test"), "in-band-reply");
    assert!(how.contains(&b_key), "encrypted to B's key: {how}");

    // 2. B enforces encryption and both publish their records in the signed zone (what an
    //    admin pastes from `posternctl domain dns-records`): the keys are verified by DNSSEC,
    //    B's policy pinned, mail goes encrypted both ways.
    b.nodes[0].ctl(&["setting", "set", "federation.mode", "enforce"]);
    b.nodes[0].ctl(&["setting", "set", "federation.max_age", "600"]);
    let published = |w: &World, with_b: bool| {
        let mut r = World::site_records(&w.a, A0);
        if with_b {
            r.extend(World::site_records(&w.b, B));
        }
        r.extend(bogus_d_records(w));
        w.zone(&r);
    };
    published(&w, true);
    let pin = refresh(a, "b.test");
    assert_eq!(pin["keys"][0]["trust"], "verified", "{pin}");
    assert!(
        pin["keys"][0]["sources"].to_string().contains("dnssec"),
        "{pin}"
    );
    assert_eq!(pin["mode"], "enforce", "{pin}");
    assert_eq!(pin["enforced"], true, "{pin}");
    let pin_a = refresh(b, "a.test");
    assert_eq!(pin_a["keys"][0]["trust"], "verified", "{pin_a}");
    crosses_encrypted(&w, (a, "alice@a.test"), (b, "bob@b.test"), "dnssec-a-to-b");
    crosses_encrypted(&w, (b, "bob@b.test"), (a, "alice@a.test"), "dnssec-b-to-a");

    // 3. C publishes only by WKD: A finds C's key there and gpg opens the result at C.
    wkd_only_partner(&w);

    // 3b. Another vendor's S/MIME gateway publishes only an SMIMEA record (and enforce):
    //     A encrypts to that certificate and openssl opens it; what the vendor encrypts to
    //     A's SMIMEA certificate, A decrypts and trusts by the pin.
    smime_only_partner(&w);

    // 4. One message to B and to an unfederated domain: split by class (452 4.5.3 to the
    //    second), B's copy encrypted, the other plain — both delivered.
    split_delivery(&w);

    // 5. An enforcing partner whose key record does not validate: 451, never plaintext.
    bogus_answer_for_an_enforcing_partner(&w);

    // 6. B rolls its key over while A sends continuously: nothing lost, nothing that B
    //    cannot open, and A moves to the new key.
    let new_key = rollover_under_load(&w, &b_key, &published);

    // 7. B revokes its old key: after the next refresh, A never uses it again.
    b.nodes[0].ctl(&["domain", "revoke", "b.test", &b_key]);
    published(&w, true);
    let pin = refresh(a, "b.test");
    let old = pin["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["fingerprint"] == b_key.as_str()))
        .cloned()
        .expect("the old key is still listed");
    assert_eq!(old["revoked"], true, "{pin}");
    let how = crosses_encrypted(&w, (a, "alice@a.test"), (b, "bob@b.test"), "after-revoke");
    assert!(
        how.contains(&new_key) && !how.contains(&b_key),
        "after the revocation A must use only {new_key}: {how}"
    );

    // 8. B's records vanish (an attacker strips them, or B's admin errs): A's pin holds and
    //    B's enforce policy stays in force until max_age after A last saw it.
    published(&w, false);
    let pin = refresh(a, "b.test");
    assert_eq!(pin["enforced"], true, "{pin}");
    assert_eq!(key_fingerprints(&pin).first(), Some(&new_key), "{pin}");
    crosses_encrypted(&w, (a, "alice@a.test"), (b, "bob@b.test"), "records-gone");

    // 9. A's leader dies: the other node carries on with the same pins, and the pins are
    //    there when the node comes back.
    leader_loss(&mut w, &new_key);
}

/// d.test enforces (its policy validates) but its key record lives in a child zone whose DS
/// in `test.` does not match: unbound says SERVFAIL for it, like for a forged answer.
fn bogus_d_records(w: &World) -> Vec<String> {
    let real = w.dns.ds("_openpgpkey.d.test.");
    assert!(!real.is_empty(), "the child zone is signed");
    vec![
        "_mailenc.d.test. TXT \"v=mailenc1; mode=enforce; max_age=86400\"".to_owned(),
        "_openpgpkey.d.test. NS ns.test.".to_owned(),
        // A DS for a key that does not exist: the chain of trust breaks.
        "_openpgpkey.d.test. DS 4711 13 2 0000000000000000000000000000000000000000000000000000000000000000".to_owned(),
    ]
}

fn wkd_only_partner(w: &World) {
    let id = "wkd-a-to-c";
    w.a.send("alice@a.test", &["carol@c.test"], id, &secret(id));
    let got = arrives(&w.c.mailbox, id, &w.queues(), WITHIN).expect("A's message at C");
    let text = got.text();
    assert!(!text.contains(&secret(id)), "plaintext to C:\n{text}");
    let start = text.find("-----BEGIN PGP MESSAGE-----").expect("PGP/MIME");
    let end = text.find("-----END PGP MESSAGE-----").expect("armor end") + 25;
    // gpg exits 2 as it cannot check A's domain signature (C holds no key of A's): what
    // counts is that it decrypted with C's domain key.
    let out = w.c.gpg.run(&["--decrypt"], &text.as_bytes()[start..end]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&secret(id))
            && said.contains("<domainkey@c.test>"),
        "gpg at C did not open it with the domain key: {said}"
    );
    let pin = w.a.pinned(0, "c.test").expect("C pinned");
    assert_eq!(
        pin["keys"][0]["sources"],
        serde_json::json!(["wkd"]),
        "{pin}"
    );
    assert_eq!(pin["keys"][0]["trust"], "tofu", "{pin}");
}

/// `s.test` is a gateway of another vendor: S/MIME only, its own CA (which A does not
/// trust), its domain certificate published by SMIMEA in the signed zone.
fn smime_only_partner(w: &World) {
    let vendor = OpensslCa::new("S vendor mail CA");
    let s = vendor.issue("domainkey@s.test");
    let dir = vendor.dir.join("");
    let der = pki::must(
        &dir,
        Peer::Openssl,
        &[
            "x509",
            "-in",
            s.cert.to_str().expect("path"),
            "-outform",
            "DER",
        ],
        b"",
    );
    // RFC 8162: SHA2-256 of the local part, truncated to 28 octets.
    let owner = HEXLOWER.encode(&openssl::sha::sha256(b"domainkey")[..28]);
    let mut zone = World::site_records(&w.a, A0);
    zone.extend(World::site_records(&w.b, B));
    zone.extend(bogus_d_records(w));
    zone.push(format!(
        "{owner}._smimecert.s.test. SMIMEA 3 0 0 {}",
        HEXUPPER.encode(&der)
    ));
    zone.push("_mailenc.s.test. TXT \"v=mailenc1; mode=enforce; max_age=600\"".to_owned());
    w.zone(&zone);

    // A → S: S/MIME to the vendor's certificate, signed with A's domain certificate.
    let id = "smime-a-to-s";
    w.a.send("alice@a.test", &["sam@s.test"], id, &secret(id));
    let got = arrives(&w.c.mailbox, id, &w.queues(), WITHIN).expect("A's message at S");
    let text = got.text();
    assert!(!text.contains(&secret(id)), "plaintext to S:\n{text}");
    assert!(
        got.header("content-type")
            .unwrap_or_default()
            .contains("application/pkcs7-mime"),
        "not S/MIME:\n{text}"
    );
    let how = got.header("x-postern-policy").unwrap_or_default();
    let pin = w.a.pinned(0, "s.test").expect("S pinned");
    assert_eq!(
        pin["certs"][0]["sources"],
        serde_json::json!(["dnssec"]),
        "{pin}"
    );
    assert_eq!(pin["enforced"], true, "{pin}");
    let fpr = pin["certs"][0]["fingerprint"]
        .as_str()
        .expect("fingerprint");
    assert!(how.contains(fpr), "encrypted to S's certificate: {how}");
    let signed = s.decrypt(&dir, text.as_bytes());
    let a_ca = w.a.nodes[0].ctl(&["ca", "cert"]);
    let content = pki::cms_verify(&dir, a_ca.as_bytes(), &signed)
        .unwrap_or_else(|e| panic!("openssl does not verify A's domain signature: {e}"));
    assert!(
        String::from_utf8_lossy(&content).contains(&secret(id)),
        "the secret is not inside"
    );

    // S → A: the vendor signs with its certificate and encrypts to A's, as published in
    // A's zone.
    let a_cert =
        w.a.dns_records()
            .into_iter()
            .find_map(|r| {
                let hex = r.split(" SMIMEA 3 0 0 ").nth(1)?.to_owned();
                HEXLOWER_PERMISSIVE.decode(hex.trim().as_bytes()).ok()
            })
            .expect("A publishes an SMIMEA record");
    std::fs::write(dir.join("a-domain.der"), &a_cert).expect("write");
    let id = "smime-s-to-a";
    std::fs::write(
        dir.join("body.txt"),
        format!("Content-Type: text/plain\r\n\r\n{}\r\n", secret(id)),
    )
    .expect("write");
    let step = |args: &[&str]| pki::must(&dir, Peer::Openssl, args, b"");
    step(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        "a-domain.der",
        "-out",
        "a-domain.pem",
    ]);
    let (cert, key) = (
        s.cert.to_str().expect("path"),
        s.key.to_str().expect("path"),
    );
    step(&[
        "cms",
        "-sign",
        "-signer",
        cert,
        "-inkey",
        key,
        "-in",
        "body.txt",
        "-out",
        "signed.eml",
    ]);
    let encrypted = step(&[
        "cms",
        "-encrypt",
        "-aes256",
        "-in",
        "signed.eml",
        "a-domain.pem",
    ]);
    let message = format!(
        "From: <sam@s.test>\r\nTo: <alice@a.test>\r\nSubject: {id}\r\nMessage-ID: <{id}@s.test>\r\n{}",
        String::from_utf8_lossy(&encrypted)
    );
    postern_tests::postfix::Postfix::submit_to(
        &w.c.postfix.submitter(),
        "sam@s.test",
        &["alice@a.test"],
        &message,
    );
    let got = arrives(&w.a.mailbox, id, &w.queues(), WITHIN).expect("S's message at A");
    assert!(
        got.text().contains(&secret(id)),
        "not decrypted:\n{}",
        got.text()
    );
    assert_eq!(
        got.header("x-postern-encrypted").as_deref(),
        Some("decrypted (S/MIME, domain key)"),
        "{}",
        got.text()
    );
    let sig = got.header("x-postern-signature").unwrap_or_default();
    assert!(
        sig.starts_with("valid (S/MIME") && sig.contains("domainkey@s.test"),
        "the vendor's signature is trusted by the pin: {sig}"
    );
}

fn split_delivery(w: &World) {
    let id = "split";
    w.a.send(
        "alice@a.test",
        &["bob@b.test", "eve@else.test"],
        id,
        &secret(id),
    );
    let q = w.queues();
    let wire = arrives(&w.b.tap, id, &q, WITHIN).expect("B's copy");
    encrypted_on_the_wire(&wire, id);
    decrypted_by_the_domain_key(
        &arrives(&w.b.mailbox, id, &q, WITHIN).expect("delivered at B"),
        id,
    );
    let other = arrives(&w.c.mailbox, id, &q, WITHIN).expect("else.test's copy");
    assert_eq!(other.rcpt_to, vec!["eve@else.test".to_owned()]);
    assert!(
        other.text().contains(&secret(id)),
        "else.test gets it plain"
    );
    assert!(
        w.a.postfix.log().contains("452 4.5.3"),
        "Postern deferred the second recipient class: {}",
        w.a.postfix.log()
    );
}

fn bogus_answer_for_an_enforcing_partner(w: &World) {
    let id = "to-bogus";
    w.a.send("alice@a.test", &["dave@d.test"], id, &secret(id));
    let refused = wait_for(WITHIN, || {
        w.a.postfix.flush();
        w.a.postfix.log().contains("451 4.7.5").then_some(())
    });
    assert!(
        refused.is_some(),
        "no 451 4.7.5 for the enforcing partner: {}",
        w.a.postfix.log()
    );
    assert!(
        w.dns.log().contains("validation failure"),
        "unbound did not find the answer bogus"
    );
    // Postfix holds it and retries; nothing reached d.test's MX, in any form.
    std::thread::sleep(Duration::from_secs(3));
    assert!(w.a.postfix.queued() >= 1, "the upstream must still hold it");
    assert!(
        world::with_id(&w.c.mailbox.messages(), id).is_none(),
        "mail to an enforcing partner without a verified key was sent"
    );
    let pin = w.a.pinned(0, "d.test").expect("d.test's policy pinned");
    assert_eq!(pin["enforced"], true, "{pin}");
    assert_eq!(pin["keys"], serde_json::json!([]), "{pin}");
    // The node's counters (also on /metrics) say so.
    let stats = w.a.nodes[0].ctl_json(&["stats"]).expect("stats");
    let f = &stats["federation"];
    for (counter, at_least) in [
        ("enforced", 1),
        ("verified", 1),
        ("discovered", 1),
        ("lookups", 3),
    ] {
        assert!(
            f[counter].as_u64().unwrap_or(0) >= at_least,
            "federation counter {counter}: {stats}"
        );
    }
}

type Publish<'a> = dyn Fn(&World, bool) + 'a;

fn rollover_under_load(w: &World, old_key: &str, published: &Publish<'_>) -> String {
    const MESSAGES: usize = 30;
    let submitter = w.a.postfix.submitter();
    let sender = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            let id = format!("roll-{i}");
            let message = format!(
                "From: <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: {id}\r\nMessage-ID: <{id}@a.test>\r\n\r\n{}\r\n",
                secret(&id)
            );
            postern_tests::postfix::Postfix::submit_to(
                &submitter,
                "alice@a.test",
                &["bob@b.test"],
                &message,
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let rolled = w.b.nodes[0].ctl_json(&["domain", "rollover", "b.test"]);
    assert!(rolled.is_ok(), "rollover: {rolled:?}");
    let new_key = w.b.newest_domain_key().expect("B's new key");
    assert_ne!(new_key, old_key);
    // Published at once, but B signs with it only half its max_age (600 s) later.
    assert_eq!(
        w.b.domain_key().as_deref(),
        Some(old_key),
        "B switched at once"
    );
    published(w, true);
    sender.join().expect("sender");

    let q = w.queues();
    let all = wait_for(Duration::from_secs(120), || {
        for p in q {
            p.flush();
        }
        let got = w.b.mailbox.messages();
        let ids: Vec<usize> = (0..MESSAGES)
            .filter(|i| world::with_id(&got, &format!("roll-{i}")).is_some())
            .collect();
        (ids.len() == MESSAGES).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "lost during the rollover: {} of {MESSAGES} arrived",
            w.b.mailbox.messages().len()
        )
    });
    for i in 0..MESSAGES {
        let id = format!("roll-{i}");
        decrypted_by_the_domain_key(world::with_id(&all, &id).expect("arrived"), &id);
    }
    let wire = w.b.tap.messages();
    let last = world::with_id(&wire, &format!("roll-{}", MESSAGES - 1)).expect("on the wire");
    let how = encrypted_on_the_wire(last, &format!("roll-{}", MESSAGES - 1));
    assert!(
        how.contains(&new_key),
        "A did not switch to {new_key}: {how}"
    );
    let pin = w.a.pinned(0, "b.test").expect("pin");
    assert_eq!(key_fingerprints(&pin).first(), Some(&new_key), "{pin}");
    new_key
}

fn leader_loss(w: &mut World, key: &str) {
    let status = w.a.nodes[0]
        .ctl_json(&["cluster", "status"])
        .expect("status");
    let leader = status["leader"].as_u64().expect("a leader");
    let victim = if status["node_id"].as_u64() == Some(leader) {
        0
    } else {
        1
    };
    w.a.nodes[victim].kill();
    // The survivor alone has no quorum, but its copy of the pins is its own: mail to B
    // still goes encrypted to B's key (Postfix falls back to the surviving node).
    let r: &World = w;
    let how = crosses_encrypted(
        r,
        (&r.a, "alice@a.test"),
        (&r.b, "bob@b.test"),
        "after-leader-loss",
    );
    assert!(how.contains(key), "{how}");
    w.a.nodes[victim].restart();
    for node in [0, 1] {
        let pin = wait_for(Duration::from_secs(30), || w.a.pinned(node, "b.test"))
            .unwrap_or_else(|| panic!("node {node} of A lists no pin for b.test"));
        assert_eq!(
            key_fingerprints(&pin).first().map(String::as_str),
            Some(key),
            "{pin}"
        );
    }
}
