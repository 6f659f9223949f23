//! Keys over time and through real MTAs: a Postfix upstream's mail comes out signed, rollover
//! switches the signing key while old keys keep decrypting, keys survive restarts, PKCS#12
//! export opens in openssl.

use postern_tests::peers::Peer;
use std::time::Duration;

use postern_tests::client::Client;
use postern_tests::pki::{Gpg, OpensslCa, cms_verify, must};
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::root_available;

use super::{gateway, have_tools, mail, pgp_block, relay};

#[test]
fn crypto_postfix_upstream_mail_comes_out_signed_and_encrypted() {
    if !have_tools("crypto_postfix") || !root_available("crypto_postfix") {
        return;
    }
    let partner_ca = OpensslCa::new("Partner CA");
    let bob = partner_ca.issue("bob@partner.example");
    let (p, sink) = gateway("");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    p.ctl(&["partner", "import", bob.cert.to_str().expect("path")]);
    let upstream = Postfix::start("crypto-up", &PostfixOptions::relay_to(p.addr.port()));
    let mut c = Client::ready(upstream.addr());
    let msg = mail(&[
        "From: alice@example.com",
        "To: bob@partner.example",
        "Subject: via Postfix",
        "Message-ID: <pf1@test>",
        "",
        "Through a real MTA.",
    ]);
    let r = c.send_mail("alice@example.com", &["bob@partner.example"], &msg);
    assert_eq!(r.code, 250, "{r}");
    upstream.flush();
    let m = sink.wait_for_messages(1, Duration::from_secs(30));
    assert_eq!(
        m.len(),
        1,
        "Postfix delivered through posternd:\n{}",
        p.log()
    );
    let dir = p.dir.join("");
    let inner = bob.decrypt(&dir, &m[0].wire());
    let ca = p.ctl(&["ca", "cert"]);
    let content = cms_verify(&dir, ca.as_bytes(), &inner).expect("openssl accepts the signature");
    assert!(String::from_utf8_lossy(&content).contains("Through a real MTA."));
    // And OpenPGP, for gpg.
    let gpg = Gpg::new();
    gpg.generate("dave@partner.example");
    gpg.import(p.ctl(&["user", "pgp", "alice@example.com"]).as_bytes());
    let key = p.dir.join("dave.asc");
    std::fs::write(&key, gpg.export("dave@partner.example")).expect("write");
    p.ctl(&["partner", "import", key.to_str().expect("path")]);
    let msg = mail(&[
        "From: alice@example.com",
        "To: dave@partner.example",
        "Subject: via Postfix, OpenPGP",
        "Message-ID: <pf2@test>",
        "",
        "Through a real MTA, for gpg.",
    ]);
    let r = c.send_mail("alice@example.com", &["dave@partner.example"], &msg);
    assert_eq!(r.code, 250, "{r}");
    upstream.flush();
    let m = sink.wait_for_messages(2, Duration::from_secs(30));
    let pgp = m
        .iter()
        .find(|m| m.header("message-id").as_deref() == Some("<pf2@test>"))
        .expect("OpenPGP message delivered");
    let out = gpg.run(&["--decrypt"], &pgp_block(&pgp.text(), "MESSAGE"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gpg: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Through a real MTA, for gpg."));
    assert!(stderr.contains("Good signature"), "{stderr}");
    assert_eq!(upstream.queued(), 0, "nothing left in Postfix's queue");
}

#[test]
fn crypto_rollover_switches_signing_and_old_keys_keep_decrypting() {
    if !have_tools("crypto_rollover") {
        return;
    }
    // Keys valid for 5 days are inside the one-week rollover window from the start.
    let (mut p, sink) = gateway("key_validity = \"5d\"\nrollover_interval = \"1h\"\n");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    let first = p.ctl(&["user", "cert", "alice@example.com"]);
    let rolled = p.ctl(&["--json", "keys", "rollover"]);
    assert!(rolled.contains("alice@example.com"), "{rolled}");
    let certs = p.ctl(&["user", "cert", "alice@example.com"]);
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 2, "{certs}");
    assert!(
        certs.ends_with(&first),
        "the old certificate is kept, after the new one"
    );
    let dir = p.dir.join("");
    std::fs::write(dir.join("old.pem"), &first).expect("write");
    std::fs::write(dir.join("new.pem"), &certs[..certs.len() - first.len()]).expect("write");
    // Mail is signed with the new certificate.
    let m = relay(
        &p,
        &sink,
        "alice@example.com",
        &["x@else.example"],
        &mail(&[
            "From: alice@example.com",
            "Subject: after rollover",
            "Message-ID: <r1@test>",
            "",
            "hi",
        ]),
    );
    std::fs::write(dir.join("signed.eml"), m.wire()).expect("write");
    std::fs::write(dir.join("ca.pem"), p.ctl(&["ca", "cert"])).expect("write");
    must(
        &dir,
        Peer::Openssl,
        &[
            "cms",
            "-verify",
            "-CAfile",
            "ca.pem",
            "-in",
            "signed.eml",
            "-signer",
            "signer.pem",
            "-out",
            "/dev/null",
        ],
        b"",
    );
    let signer = std::fs::read_to_string(dir.join("signer.pem")).expect("signer");
    let new = std::fs::read_to_string(dir.join("new.pem")).expect("new");
    assert_eq!(signer.trim(), new.trim(), "signed with the new certificate");
    // Mail encrypted to the old certificate still opens, also after a restart.
    std::fs::write(
        dir.join("entity.txt"),
        "Content-Type: text/plain\r\n\r\nold key still works\r\n",
    )
    .expect("write");
    let enc = must(
        &dir,
        Peer::Openssl,
        &["cms", "-encrypt", "-aes256", "-in", "entity.txt", "old.pem"],
        b"",
    );
    p.restart();
    let mut msg = mail(&[
        "From: x@outside.example",
        "To: alice@example.com",
        "Subject: to the old key",
        "Message-ID: <r2@test>",
    ])
    .into_bytes();
    for line in String::from_utf8_lossy(&enc).lines() {
        msg.extend_from_slice(line.as_bytes());
        msg.extend_from_slice(b"\r\n");
    }
    let m = relay(
        &p,
        &sink,
        "x@outside.example",
        &["alice@example.com"],
        &String::from_utf8(msg).expect("ascii"),
    );
    assert_eq!(
        m.header("x-postern-encrypted").as_deref(),
        Some("decrypted (S/MIME)")
    );
    assert!(m.text().contains("old key still works"));
}

#[test]
fn crypto_keys_survive_restart_and_export_as_pkcs12() {
    if !have_tools("crypto_persist") {
        return;
    }
    let partner_ca = OpensslCa::new("Partner CA");
    let bob = partner_ca.issue("bob@partner.example");
    let (mut p, _sink) = gateway("");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    p.ctl(&["partner", "import", bob.cert.to_str().expect("path")]);
    let users = p.ctl(&["user", "list"]);
    p.restart();
    assert_eq!(p.ctl(&["user", "list"]), users);
    assert!(p.ctl(&["partner", "list"]).contains("bob@partner.example"));
    // Nothing private in the clear on disk: the Raft log and state (RocksDB's write-ahead
    // log holds the entries uncompressed: alice's address is there, her key is not).
    let mut on_disk = Vec::new();
    for f in std::fs::read_dir(p.dir.join("data/cluster/raft")).expect("raft store") {
        on_disk.extend(std::fs::read(f.expect("entry").path()).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&on_disk);
    assert!(
        text.contains("alice@example.com"),
        "the scan sees the entries"
    );
    assert!(
        !text.contains("PRIVATE KEY"),
        "a private key is stored in the clear"
    );
    let dir = p.dir.join("");
    std::fs::write(dir.join("pw"), "s3cret\n").expect("write");
    let pw = dir.join("pw");
    let pw = pw.to_str().expect("path");
    let p12 = dir.join("alice.p12");
    p.ctl(&[
        "user",
        "pkcs12",
        "alice@example.com",
        "--password-file",
        pw,
        "-o",
        p12.to_str().expect("path"),
    ]);
    let out = must(
        &dir,
        Peer::Openssl,
        &[
            "pkcs12",
            "-in",
            "alice.p12",
            "-passin",
            "pass:s3cret",
            "-nodes",
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("PRIVATE KEY") && text.contains("alice@example.com"));
    // Wrong input is refused with a message, not a crash.
    let bad = p.ctl_output(&["user", "enrol", "not an address"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid email address"));
    std::fs::write(dir.join("junk.p12"), b"junk").expect("write");
    let bad = p.ctl_output(&[
        "user",
        "import-pkcs12",
        dir.join("junk.p12").to_str().expect("path"),
        "--password-file",
        pw,
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PKCS#12 file does not open"));
}
