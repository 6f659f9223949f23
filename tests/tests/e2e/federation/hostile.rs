//! Hostile input to federation (issue 16, point 8): forged, malformed and oversized
//! announcement headers; WKD answers that are huge, slow, or carry the wrong key — from a
//! server with a valid certificate; DNS answers that do not validate; keys and SMIMEA
//! certificates for another domain, SMIMEA records that name no certificate. Each is refused with a logged reason, every message is still delivered, no
//! session waits longer than the lookup timeout, and the pin A holds for B never changes.

use std::time::{Duration, Instant};

use postern_tests::Scratch;
use postern_tests::client::Client;
use postern_tests::peers::Peer;
use postern_tests::pki::{self, Gpg};
use postern_tests::posternd::Posternd;
use postern_tests::postfix::Postfix;
use postern_tests::sink::Sink;

use super::world::{DNS, Web, World, arrives, ip};
use super::{WITHIN, key_fingerprints, refresh};

/// The `Mailenc-Domain-Key` header as a rogue gateway that claims b.test writes it: well
/// formed and signed — by a key that is not b.test's. Folded lines, CRLF, no name.
fn rogue_announcement() -> String {
    let sink = Sink::start(&[]);
    let rogue = Posternd::start(
        &sink.addr(),
        "",
        "[crypto]\ninternal_domains = [\"b.test\"]\n",
    );
    let keyed = postern_tests::wait_for(Duration::from_secs(30), || {
        let l = rogue.ctl_json(&["domain", "list"]).ok()?;
        (l[0]["keys"].as_array()?.len() == 1).then_some(())
    });
    assert!(keyed.is_some(), "the rogue gateway made no domain key");
    let mut c = Client::ready(rogue.addr);
    let reply = c.send_mail(
        "bob@b.test",
        &["someone@else.test"],
        "From: <bob@b.test>\r\nSubject: x\r\n\r\nx\r\n",
    );
    assert_eq!(reply.code, 250, "{}", reply.text());
    let m = sink.wait_for_messages(1, WITHIN);
    let text = m.first().expect("the rogue's message").text();
    folded_header(&text, "Mailenc-Domain-Key").expect("the rogue announces")
}

/// The value of header `name` in `text` with its folding kept (lines joined by CRLF).
fn folded_header(text: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut lines = text.lines().take_while(|l| !l.is_empty());
    let first = lines.find(|l| l.to_ascii_lowercase().starts_with(&prefix))?;
    let mut value = first[prefix.len()..].trim_start().to_owned();
    for l in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push_str("\r\n");
        value.push_str(l);
    }
    Some(value)
}

/// `value` folded into lines of at most 70 characters.
fn fold(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars
        .chunks(70)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\r\n ")
}

#[test]
fn federation_hostile_announcements_wkd_and_dns_answers_are_refused_and_replace_no_pin() {
    if !super::can_run("federation_hostile") {
        return;
    }
    let w = World::new(&["_openpgpkey.b.test."]);
    let q = w.queues();
    // A pins B from B's own announcement: trust on first use, the weakest pin there is.
    w.b.send("bob@b.test", &["alice@a.test"], "genuine", "hello");
    arrives(&w.a.mailbox, "genuine", &q, WITHIN).expect("B's first message");
    let b_key = w.b.domain_key().expect("B's key");
    let pin_of_b = || key_fingerprints(&w.a.pinned(0, "b.test").expect("A's pin for b.test"));
    assert_eq!(pin_of_b(), vec![b_key.clone()]);

    // 1. Announcements, each on a message to A. Every message is delivered, with the reason
    //    in its X-Postern-Policy.
    let rogue = rogue_announcement();
    // The same announcement with its policy raised: the signature no longer covers it.
    assert!(rogue.contains("m=testing"), "{rogue}");
    let tampered = rogue.replacen("m=testing", "m=enforce", 1);
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "rogue-key",
            "bob@b.test",
            rogue.clone(),
            "refused: a different key than the pinned",
        ),
        (
            "other-domain",
            "mallory@else.test",
            rogue.clone(),
            "for b.test on mail from else.test ignored",
        ),
        (
            "bad-signature",
            "bob@b.test",
            tampered,
            "signature does not verify",
        ),
        (
            "oversized",
            "bob@b.test",
            fold(&format!("v=1; d=b.test; k={}", "A".repeat(40_000))),
            "larger than",
        ),
        (
            "malformed",
            "bob@b.test",
            "v=1; d=b.test; garbage".to_owned(),
            "malformed",
        ),
    ];
    for (id, from, value, _) in &cases {
        let message = format!(
            "From: <{from}>\r\nTo: <alice@a.test>\r\nSubject: {id}\r\nMessage-ID: <{id}@hostile>\r\nMailenc-Domain-Key: {value}\r\n\r\nbody of {id}\r\n"
        );
        Postfix::submit_to(&w.a.postfix.submitter(), from, &["alice@a.test"], &message);
    }
    for (id, _, _, why) in &cases {
        let m = arrives(&w.a.mailbox, id, &q, WITHIN)
            .unwrap_or_else(|| panic!("the message with a hostile announcement ({id}) was lost"));
        let policy = m.header("x-postern-policy").unwrap_or_default();
        assert!(policy.contains(why), "{id}: expected {why:?} in {policy:?}");
        assert!(m.text().contains(&format!("body of {id}")), "{id} altered");
    }
    assert_eq!(
        pin_of_b(),
        vec![b_key.clone()],
        "an announcement replaced the pin"
    );
    assert!(
        w.a.pinned(0, "else.test").is_none(),
        "a key was pinned for the wrong domain"
    );

    // 2. The network lies: a rogue b.test key from a WKD server with a valid certificate for
    //    openpgpkey.b.test, and in b.test's OPENPGPKEY record behind a broken chain of trust.
    let gpg = Gpg::new();
    gpg.generate("domainkey@b.test");
    let rogue_key = gpg.must(&["--export", "domainkey@b.test"], b"");
    w.c.serve_wkd_key("b.test", &rogue_key);
    let owner = w.b.dns_records()[0]
        .split_whitespace()
        .next()
        .expect("owner")
        .to_owned();
    let b64 = data_encoding::BASE64.encode(&rogue_key);
    w.dns.set(
        "_openpgpkey.b.test.",
        &[format!("{owner} OPENPGPKEY {b64}")],
    );

    // Partners whose WKD answers are hostile, and one whose validated DNS holds C's key.
    let c_key = w.c.gpg.must(&["--export", "domainkey@c.test"], b"");
    w.c.serve_wkd_key("huge.test", &vec![0x99; 1 << 20]);
    w.c.serve_wkd_key("wrong.test", &c_key);
    let slow = Web::start(
        &w.lab.nodes[DNS],
        ip(DNS),
        &w.ca.issue_server(&["openpgpkey.slow.test", "slow.test"]),
        Scratch::new("wkd-slow"),
        30.0,
    );
    let e_owner = owner.replace("b.test.", "e.test.");
    // SMIMEA: e.test's validated record holds a certificate for c.test; wrong.test's only
    // a hash of one (matching type 1), which names no key to encrypt to.
    let hash = owner.split('.').next().expect("hash").to_owned();
    let other = w.ca.issue("domainkey@c.test");
    let other_der = pki::must(
        &w.ca.dir.join(""),
        Peer::Openssl,
        &[
            "x509",
            "-in",
            other.cert.to_str().expect("path"),
            "-outform",
            "DER",
        ],
        b"",
    );
    let mut zone = vec![
        format!("openpgpkey.b.test. A {}", ip(super::world::C)),
        format!("openpgpkey.huge.test. A {}", ip(super::world::C)),
        format!("openpgpkey.wrong.test. A {}", ip(super::world::C)),
        format!("openpgpkey.slow.test. A {}", ip(DNS)),
        "_openpgpkey.b.test. NS ns.test.".to_owned(),
        "_openpgpkey.b.test. DS 4711 13 2 0000000000000000000000000000000000000000000000000000000000000000".to_owned(),
        format!("{e_owner} OPENPGPKEY {}", data_encoding::BASE64.encode(&c_key)),
        format!(
            "{hash}._smimecert.e.test. SMIMEA 3 0 0 {}",
            data_encoding::HEXUPPER.encode(&other_der)
        ),
        format!(
            "{hash}._smimecert.wrong.test. SMIMEA 3 0 1 {}",
            data_encoding::HEXUPPER.encode(&openssl::sha::sha256(&other_der))
        ),
    ];
    zone.sort();
    w.zone(&zone);

    // B's pin survives a refresh that meets both lies.
    let pin = refresh(&w.a, "b.test");
    assert_eq!(key_fingerprints(&pin), vec![b_key.clone()], "{pin}");
    let stats = w.a.nodes[0].ctl_json(&["stats"]).expect("stats");
    assert!(
        stats["federation"]["refused"].as_u64().unwrap_or(0) >= 1,
        "the refused key is not counted: {stats}"
    );
    assert!(
        w.dns.log().contains("validation failure <"),
        "unbound did not see the bogus chain"
    );
    let log = w.a.nodes[0].log();
    assert!(
        log.contains("a different partner domain key was refused; the pin stays"),
        "no logged refusal of the WKD key"
    );

    // Mail to the hostile partners: delivered (no policy asks otherwise), none waits longer
    // than the lookup timeout (3 s) plus the way through Postfix, nothing pinned.
    for d in ["huge.test", "wrong.test", "e.test", "slow.test"] {
        let id = format!("to-{}", d.replace('.', "-"));
        let sent = Instant::now();
        w.a.send("alice@a.test", &[&format!("user@{d}")], &id, "hello");
        arrives(&w.c.mailbox, &id, &q, WITHIN)
            .unwrap_or_else(|| panic!("mail to {d} was not delivered"));
        let took = sent.elapsed();
        assert!(took < Duration::from_secs(20), "mail to {d} took {took:?}");
        assert!(w.a.pinned(0, d).is_none(), "something was pinned for {d}");
        eprintln!("federation_hostile: mail to {d} delivered after {took:?}");
    }
    let log = w.a.nodes[0].log();
    for (what, needle) in [
        ("huge WKD answer", "at most 262144 bytes"),
        (
            "another domain's key by WKD",
            "is not domainkey@wrong.test's",
        ),
        ("another domain's key by DNS", "is not domainkey@e.test's"),
        (
            "another domain's certificate by SMIMEA",
            "an SMIMEA certificate that is not issued for the domain: ignored",
        ),
        ("an SMIMEA record holding a hash", "matching type 1"),
        ("slow WKD server", "partner domain lookup timed out"),
    ] {
        assert!(
            log.contains(needle),
            "no logged reason for the {what} ({needle:?})"
        );
    }
    assert!(slow.log().contains("GET"), "the slow server was asked");
    assert_eq!(pin_of_b(), vec![b_key], "the pin for b.test changed");

    // The admin heard of the refused keys for b.test: one alert mail (the later refusals
    // wait an hour), naming a refused key and where it came from.
    let alert = postern_tests::wait_for(WITHIN, || {
        w.a.postfix.flush();
        w.a.mailbox.messages().into_iter().find(|m| {
            m.rcpt_to == ["postmaster@a.test"]
                && m.header("subject")
                    .is_some_and(|s| s.contains("Partner domain key refused for b.test"))
        })
    })
    .expect("no alert mail about the refused b.test keys");
    let text = alert.text();
    assert!(
        text.contains("from in-band") && text.contains("the pinned"),
        "the alert does not say what was refused:\n{text}"
    );
    assert_eq!(
        alert.header("auto-submitted").as_deref(),
        Some("auto-generated")
    );
}
