//! Outbound: what Postern signs and encrypts is accepted by openssl and gpg, byte for byte.

use postern_tests::pki::{Gpg, OpensslCa, cms_verify};

use super::{gateway, have_tools, mail, pgp_block, relay};

const ENTITY: &str = "Content-Type: text/plain; charset=us-ascii\r\n\r\nThe numbers for Q3.\r\n.a line with a leading dot\r\n";

fn message(id: &str, subject: &str) -> String {
    format!(
        "From: Alice <alice@example.com>\r\nTo: partner@partner.example\r\nSubject: {subject}\r\nMessage-ID: <{id}@test>\r\nMIME-Version: 1.0\r\n{ENTITY}"
    )
}

#[test]
fn crypto_signed_mail_verifies_with_openssl_cms() {
    if !have_tools("crypto_signed") {
        return;
    }
    let (p, sink) = gateway("");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    let ca = p.ctl(&["ca", "cert"]);
    let m = relay(
        &p,
        &sink,
        "alice@example.com",
        &["bob@partner.example"],
        &message("s1", "Q3"),
    );
    let policy = m.header("x-postern-policy").expect("policy header");
    assert!(policy.starts_with("S/MIME signed"), "{policy}");
    let dir = p.dir.join("");
    let content =
        cms_verify(&dir, ca.as_bytes(), &m.wire()).expect("openssl accepts the signature");
    assert_eq!(
        String::from_utf8_lossy(&content),
        ENTITY,
        "signed content byte for byte"
    );
    // The signature does not survive a changed byte.
    let tampered = m.text().replacen("The numbers", "The Numbers", 1);
    let out = cms_verify(&dir, ca.as_bytes(), tampered.as_bytes());
    assert!(out.is_err(), "openssl accepted a tampered message");
}

#[test]
fn crypto_encrypted_to_partner_certificate_decrypts_with_openssl_cms() {
    if !have_tools("crypto_smime_encrypt") {
        return;
    }
    let partner_ca = OpensslCa::new("Partner CA");
    let bob = partner_ca.issue("bob@partner.example");
    let (p, sink) = gateway("");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    let out = p.ctl(&["partner", "import", bob.cert.to_str().expect("test setup")]);
    assert!(out.contains("bob@partner.example"), "{out}");
    let m = relay(
        &p,
        &sink,
        "alice@example.com",
        &["bob@partner.example"],
        &message("e1", "Q3"),
    );
    assert!(
        !m.text().contains("The numbers"),
        "plaintext leaked:\n{}",
        m.text()
    );
    assert!(
        m.header("content-type")
            .expect("test setup")
            .starts_with("application/pkcs7-mime; smime-type=enveloped-data")
    );
    let dir = p.dir.join("");
    let inner = bob.decrypt(&dir, &m.wire());
    // Inside: Alice's signature over the original entity.
    let ca = p.ctl(&["ca", "cert"]);
    let content = cms_verify(&dir, ca.as_bytes(), &inner).expect("openssl accepts the signature");
    assert_eq!(String::from_utf8_lossy(&content), ENTITY);
}

#[test]
fn crypto_encrypted_to_partner_openpgp_key_decrypts_with_gpg() {
    if !have_tools("crypto_pgp_encrypt") {
        return;
    }
    let gpg = Gpg::new();
    gpg.generate("dave@partner.example");
    let (p, sink) = gateway("");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    let key = p.dir.join("dave.asc");
    std::fs::write(&key, gpg.export("dave@partner.example")).expect("test setup");
    p.ctl(&["partner", "import", key.to_str().expect("test setup")]);
    // Dave knows Alice's key, so he can check her signature inside.
    gpg.import(p.ctl(&["user", "pgp", "alice@example.com"]).as_bytes());
    let m = relay(
        &p,
        &sink,
        "alice@example.com",
        &["dave@partner.example"],
        &message("p1", "Q3"),
    );
    let policy = m.header("x-postern-policy").expect("test setup");
    assert!(
        policy.starts_with("OpenPGP signed and encrypted"),
        "{policy}"
    );
    assert!(
        m.header("content-type")
            .expect("test setup")
            .starts_with("multipart/encrypted; protocol=\"application/pgp-encrypted\"")
    );
    let out = gpg.run(&["--decrypt"], &pgp_block(&m.text(), "MESSAGE"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gpg --decrypt failed: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        ENTITY,
        "decrypted entity byte for byte"
    );
    assert!(
        stderr.contains("Good signature from \"<alice@example.com>\""),
        "{stderr}"
    );
}

#[test]
fn crypto_subject_tags_and_required_encryption() {
    if !have_tools("crypto_tags") {
        return;
    }
    let (p, sink) = gateway("");
    p.ctl(&["user", "enrol", "alice@example.com"]);
    // [nosign]: plain, tag removed.
    let m = relay(
        &p,
        &sink,
        "alice@example.com",
        &["x@else.example"],
        &message("t1", "[nosign] Lunch"),
    );
    assert_eq!(m.header("subject").as_deref(), Some("Lunch"));
    assert!(
        m.header("content-type")
            .expect("test setup")
            .starts_with("text/plain")
    );
    // [secure] to someone without a key and without a portal: refused, permanently.
    let mut c = postern_tests::client::Client::ready(p.addr);
    let r = c.send_mail(
        "alice@example.com",
        &["x@else.example"],
        &message("t2", "[secure] Salaries"),
    );
    assert_eq!(r.code, 554, "{r}");
    assert!(r.text().starts_with("5.7.1 Encryption is required"), "{r}");
    // Recipients that need different methods are split with 452 4.5.3.
    let partner_ca = OpensslCa::new("Partner CA");
    let bob = partner_ca.issue("bob@partner.example");
    p.ctl(&["partner", "import", bob.cert.to_str().expect("test setup")]);
    c.cmd("MAIL FROM:<alice@example.com>", 250);
    c.cmd("RCPT TO:<bob@partner.example>", 250);
    let r = c.cmd("RCPT TO:<x@else.example>", 452);
    assert!(r.text().starts_with("4.5.3"), "{r}");
    c.cmd("RSET", 250);
    let _ = mail;
}
