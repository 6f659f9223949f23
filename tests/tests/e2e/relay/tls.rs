//! STARTTLS upstream (generated or configured certificate, pipelining injection) and
//! downstream (`none` / `opportunistic` / `required`) against smtp-sink and Postfix.

use postern_tests::peers::Peer;
use std::time::Duration;

use postern_tests::client::Client;
use postern_tests::posternd::{HOSTNAME, Posternd};
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::sink::Sink;
use postern_tests::{Scratch, peers_available, root_available};

use super::{have_sink, message};

#[test]
fn relay_starttls_with_the_generated_certificate() {
    if !have_sink("relay_starttls") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let c = Client::ready(p.addr);
    let mut c = c.starttls(&p.certificate_pem(), HOSTNAME);
    // the session starts over after the upgrade: EHLO again, STARTTLS no longer offered
    c.cmd("MAIL FROM:<a@corp.example>", 503);
    let ehlo = c.cmd("EHLO client.test", 250);
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo}");
    let r = c.send_mail("a@corp.example", &["b@else.example"], &message("tls"));
    assert_eq!(r.code, 250, "{r}");
    let m = sink.wait_for_messages(1, Duration::from_secs(5));
    assert!(m[0].text().contains("with ESMTPS id"), "{}", m[0].text());
}

#[test]
fn relay_plaintext_pipelined_after_starttls_is_discarded() {
    if !have_sink("relay_starttls_injection") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    // CVE-2011-0411 class: commands sent in the clear with STARTTLS must not be run
    // inside the TLS session.
    c.raw(b"STARTTLS\r\nMAIL FROM:<injected@attacker.example>\r\n");
    c.expect(220);
    let mut c = c.upgrade(&p.certificate_pem(), HOSTNAME);
    let ehlo = c.cmd("EHLO client.test", 250);
    assert_eq!(
        ehlo.lines[0], HOSTNAME,
        "first reply in TLS must answer EHLO: {ehlo}"
    );
    // had the injected MAIL survived, this would be a nested MAIL (503)
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    c.cmd("QUIT", 221);
}

#[test]
fn relay_configured_certificate_is_used_and_bad_ones_are_refused() {
    if !have_sink("relay_configured_cert") {
        return;
    }
    let dir = Scratch::new("cert");
    let cert =
        rcgen::generate_simple_self_signed(vec!["mx.customer.example".to_owned()]).expect("cert");
    std::fs::write(dir.join("c.pem"), cert.cert.pem()).expect("write");
    std::fs::write(dir.join("k.pem"), cert.signing_key.serialize_pem()).expect("write");
    let sink = Sink::start(&[]);
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("c.pem").display(),
        dir.join("k.pem").display()
    );
    let p = Posternd::start(&sink.addr(), "", &tls);
    let c = Client::ready(p.addr);
    let mut c = c.starttls(cert.cert.pem().as_bytes(), "mx.customer.example");
    c.cmd("EHLO client.test", 250);
}

/// A Postfix downstream with a certificate from a test CA.
fn tls_postfix(dir: &Scratch, next: u16) -> (Postfix, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    std::fs::write(dir.join("pf.crt"), cert.cert.pem()).expect("write");
    std::fs::write(dir.join("pf.key"), cert.signing_key.serialize_pem()).expect("write");
    let mut opts = PostfixOptions::relay_to(next);
    opts.server_tls = Some((dir.join("pf.crt"), dir.join("pf.key")));
    (
        Postfix::start("downstream", &opts),
        dir.join("pf.crt").display().to_string(),
    )
}

#[test]
fn relay_downstream_tls_required_is_verified_and_used() {
    if !peers_available("relay_downstream_tls", &[Peer::Postfix, Peer::SmtpSink])
        || !root_available("relay_downstream_tls")
    {
        return;
    }
    let dir = Scratch::new("dstls");
    let sink = Sink::start(&[]);
    let (pf, ca) = tls_postfix(&dir, sink.port);
    let cfg =
        format!("[downstream]\ntls = \"required\"\nca_file = \"{ca}\"\ntls_name = \"localhost\"\n");
    let p = Posternd::start(&pf.addr().to_string(), "", &cfg);
    let mut c = Client::ready(p.addr);
    let r = c.send_mail("a@corp.example", &["b@else.example"], &message("tls-down"));
    assert_eq!(r.code, 250, "{r}");
    let m = sink.wait_for_messages(1, Duration::from_secs(15));
    assert_eq!(m.len(), 1, "{}", pf.log());
    // Postfix records the TLS session in its Received header
    assert!(
        m[0].text().contains("(Postfix) with ESMTPS"),
        "{}",
        m[0].text()
    );

    // the wrong trust anchor: refused with 451, never sent in the clear
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    std::fs::write(dir.join("other.crt"), other.cert.pem()).expect("write");
    let cfg = format!(
        "[downstream]\ntls = \"required\"\nca_file = \"{}\"\ntls_name = \"localhost\"\n",
        dir.join("other.crt").display()
    );
    let p2 = Posternd::start(&pf.addr().to_string(), "", &cfg);
    let mut c = Client::ready(p2.addr);
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 451);
    assert!(r.text().starts_with("4.7.5 "), "{r}");
}

#[test]
fn relay_downstream_tls_modes_against_a_plaintext_sink() {
    if !have_sink("relay_downstream_tls_modes") {
        return;
    }
    let sink = Sink::start(&[]);
    // required but not offered: 451 4.7.4
    let p = Posternd::start(&sink.addr(), "", "[downstream]\ntls = \"required\"\n");
    let mut c = Client::ready(p.addr);
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 451);
    assert!(r.text().starts_with("4.7.4 "), "{r}");
    drop((c, p));
    // opportunistic and none: delivered in the clear
    for mode in ["opportunistic", "none"] {
        let p = Posternd::start(
            &sink.addr(),
            "",
            &format!("[downstream]\ntls = \"{mode}\"\n"),
        );
        let mut c = Client::ready(p.addr);
        let r = c.send_mail("a@corp.example", &["b@else.example"], &message(mode));
        assert_eq!(r.code, 250, "{mode}: {r}");
    }
    assert_eq!(sink.wait_for_messages(2, Duration::from_secs(5)).len(), 2);
}
