//! Inbound: Postern opens what openssl and gpg produce, verifies, harvests only from verified
//! signatures, answers harvested partners encrypted, and removes forged verdicts.

use postern_tests::crlf;
use postern_tests::peers::Peer;
use postern_tests::pki::{Gpg, OpensslCa, must, run_in};
use postern_tests::posternd::Posternd;

use super::{body_of, gateway, have_tools, mail, pgp_block, relay};

fn with_header(header: &[&str], entity: &[u8]) -> String {
    let mut m = mail(header).into_bytes();
    m.extend_from_slice(&crlf(entity));
    String::from_utf8(m).expect("ASCII message")
}

fn enrol_alice(p: &Posternd) -> std::path::PathBuf {
    p.ctl(&["user", "enrol", "alice@example.com"]);
    let cert = p.dir.join("alice.pem");
    std::fs::write(&cert, p.ctl(&["user", "cert", "alice@example.com"])).expect("test setup");
    cert
}

#[test]
fn crypto_openssl_signed_and_encrypted_mail_is_opened_harvested_and_answered_encrypted() {
    if !have_tools("crypto_inbound_smime") {
        return;
    }
    let partner_ca = OpensslCa::new("Partner CA");
    let carol = partner_ca.issue("carol@partner.example");
    let (p, sink) = gateway("");
    let alice_cert = enrol_alice(&p);
    p.ctl(&[
        "trust",
        "add",
        partner_ca.cert.to_str().expect("test setup"),
    ]);
    let dir = p.dir.join("");
    std::fs::write(
        dir.join("entity.txt"),
        "Content-Type: text/plain\r\n\r\nHello Alice, the contract.\r\n",
    )
    .expect("test setup");
    let signed = must(
        &dir,
        Peer::Openssl,
        &[
            "cms",
            "-sign",
            "-signer",
            carol.cert.to_str().expect("test setup"),
            "-inkey",
            carol.key.to_str().expect("test setup"),
            "-in",
            "entity.txt",
        ],
        b"",
    );
    std::fs::write(dir.join("signed.eml"), crlf(&signed)).expect("test setup");
    let enc = must(
        &dir,
        Peer::Openssl,
        &[
            "cms",
            "-encrypt",
            "-aes256",
            "-in",
            "signed.eml",
            alice_cert.to_str().expect("test setup"),
        ],
        b"",
    );
    let msg = with_header(
        &[
            "From: Carol <carol@partner.example>",
            "To: alice@example.com",
            "Subject: Contract",
            "Message-ID: <i1@test>",
        ],
        &enc,
    );
    let m = relay(
        &p,
        &sink,
        "carol@partner.example",
        &["alice@example.com"],
        &msg,
    );
    assert_eq!(
        m.header("x-postern-encrypted").as_deref(),
        Some("decrypted (S/MIME)")
    );
    let sig = m.header("x-postern-signature").expect("test setup");
    assert!(
        sig.starts_with("valid (S/MIME: signer carol@partner.example)"),
        "{sig}"
    );
    assert_eq!(
        m.header("subject").as_deref(),
        Some("[encrypted] [signed] Contract")
    );
    assert!(m.text().contains("Hello Alice, the contract."));
    // Carol's certificate was harvested; Alice's answer is encrypted to it.
    let partners = p.ctl(&["partner", "list"]);
    assert!(partners.contains("carol@partner.example"), "{partners}");
    let reply = mail(&[
        "From: alice@example.com",
        "To: carol@partner.example",
        "Subject: Re: Contract",
        "Message-ID: <i2@test>",
        "",
        "Signed.",
    ]);
    let r = relay(
        &p,
        &sink,
        "alice@example.com",
        &["carol@partner.example"],
        &reply,
    );
    let policy = r.header("x-postern-policy").expect("test setup");
    assert!(policy.contains("S/MIME encrypted"), "{policy}");
    let inner = carol.decrypt(&dir, &r.wire());
    assert!(String::from_utf8_lossy(&inner).contains("Signed."));
}

#[test]
fn crypto_gpg_pgp_mime_with_autocrypt_is_decrypted_verified_and_harvested() {
    if !have_tools("crypto_inbound_pgp") {
        return;
    }
    let (p, sink) = gateway("");
    enrol_alice(&p);
    let gpg = Gpg::new();
    gpg.generate("erin@partner.example");
    gpg.import(p.ctl(&["user", "pgp", "alice@example.com"]).as_bytes());
    let entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\nHallo Alice\r\n";
    let armored = gpg.must(
        &[
            "--armor",
            "--sign",
            "--encrypt",
            "-u",
            "<erin@partner.example>",
            "-r",
            "<alice@example.com>",
        ],
        entity,
    );
    let keydata = gpg.must(&["--export", "<erin@partner.example>"], b"");
    let b64 = base64(&keydata);
    let mut lines = vec![
        "From: Erin <erin@partner.example>".to_owned(),
        "To: alice@example.com".into(),
        "Subject: Hallo".into(),
        "Message-ID: <g1@test>".into(),
        "MIME-Version: 1.0".into(),
        format!("Autocrypt: addr=erin@partner.example; keydata={}", b64.chars().collect::<Vec<_>>().chunks(70).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("\r\n ")),
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b1\"".into(),
        "".into(),
        "--b1".into(),
        "Content-Type: application/pgp-encrypted".into(),
        "".into(),
        "Version: 1".into(),
        "".into(),
        "--b1".into(),
        "Content-Type: application/octet-stream".into(),
        "".into(),
    ];
    lines.push(
        String::from_utf8(crlf(&armored))
            .expect("test setup")
            .trim_end()
            .to_owned(),
    );
    lines.push("--b1--".into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let m = relay(
        &p,
        &sink,
        "erin@partner.example",
        &["alice@example.com"],
        &mail(&refs),
    );
    assert_eq!(
        m.header("x-postern-encrypted").as_deref(),
        Some("decrypted (OpenPGP)"),
        "{}",
        m.text()
    );
    assert!(
        m.header("x-postern-signature")
            .expect("test setup")
            .starts_with("valid (OpenPGP"),
        "{}",
        m.text()
    );
    assert_eq!(body_of(&m.wire()), b"Hallo Alice\r\n");
    let partners = p.ctl(&["partner", "list"]);
    assert!(
        partners.contains("erin@partner.example"),
        "Autocrypt key not harvested: {partners}"
    );
    // Alice's answer goes out OpenPGP-encrypted, and Erin's gpg opens it.
    let reply = mail(&[
        "From: alice@example.com",
        "To: erin@partner.example",
        "Subject: Re: Hallo",
        "Message-ID: <g2@test>",
        "",
        "Danke.",
    ]);
    let r = relay(
        &p,
        &sink,
        "alice@example.com",
        &["erin@partner.example"],
        &reply,
    );
    let out = gpg.run(&["--decrypt"], &pgp_block(&r.text(), "MESSAGE"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Danke."));
}

#[test]
fn crypto_inline_pgp_is_decrypted_but_unprotected_ciphertext_never() {
    if !have_tools("crypto_inline_pgp") {
        return;
    }
    let (p, sink) = gateway("");
    enrol_alice(&p);
    let gpg = Gpg::new();
    gpg.import(p.ctl(&["user", "pgp", "alice@example.com"]).as_bytes());
    let inline = gpg.must(
        &["--armor", "--encrypt", "-r", "<alice@example.com>"],
        b"inline secret\n",
    );
    let msg = with_header(
        &[
            "From: x@outside.example",
            "To: alice@example.com",
            "Subject: inline",
            "Message-ID: <n1@test>",
            "",
        ],
        &inline,
    );
    let m = relay(&p, &sink, "x@outside.example", &["alice@example.com"], &msg);
    assert_eq!(
        m.header("x-postern-encrypted").as_deref(),
        Some("decrypted (OpenPGP inline)")
    );
    assert!(m.text().contains("inline secret"));
    // EFAIL: ciphertext without integrity protection (gpg --rfc2440) is not decrypted —
    // gpg itself refuses it too.
    let sed = gpg.must(
        &[
            "--armor",
            "--rfc2440",
            "--cipher-algo",
            "CAST5",
            "--encrypt",
            "-r",
            "<alice@example.com>",
        ],
        b"malleable\n",
    );
    let msg = with_header(
        &[
            "From: x@outside.example",
            "To: alice@example.com",
            "Subject: old",
            "Message-ID: <n2@test>",
            "",
        ],
        &sed,
    );
    let m = relay(&p, &sink, "x@outside.example", &["alice@example.com"], &msg);
    let verdict = m.header("x-postern-encrypted").expect("test setup");
    assert!(verdict.starts_with("not decrypted"), "{verdict}");
    assert!(!m.text().contains("malleable"));
    // Inline ciphertext mixed into other text is left alone (no mixing of protected and
    // unprotected content).
    let mixed = [b"Click here: http://evil.example/?\n".as_slice(), &inline].concat();
    let msg = with_header(
        &[
            "From: x@outside.example",
            "To: alice@example.com",
            "Subject: mixed",
            "Message-ID: <n3@test>",
            "",
        ],
        &mixed,
    );
    let m = relay(&p, &sink, "x@outside.example", &["alice@example.com"], &msg);
    assert!(!m.text().contains("inline secret"));
    assert!(
        m.header("x-postern-policy")
            .expect("test setup")
            .contains("not decrypted")
    );
    let _ = run_in;
}

#[test]
fn crypto_forged_markers_are_removed_and_plain_mail_is_untouched() {
    if !have_tools("crypto_forged") {
        return;
    }
    let (p, sink) = gateway("");
    enrol_alice(&p);
    let forged = mail(&[
        "From: ceo@example.com",
        "To: alice@example.com",
        "Subject: [signed] Transfer 50k today",
        "X-Postern-Signature: valid (S/MIME: signer ceo@example.com)",
        "Message-ID: <f1@test>",
        "",
        "Do it.",
    ]);
    // The envelope sender is outside: this is inbound, whatever From says.
    let m = relay(
        &p,
        &sink,
        "mallory@evil.example",
        &["alice@example.com"],
        &forged,
    );
    assert_eq!(m.header("subject").as_deref(), Some("Transfer 50k today"));
    assert_eq!(m.header("x-postern-signature"), None);
    assert!(
        m.header("x-postern-policy")
            .expect("test setup")
            .contains("forged subject marker [signed] removed")
    );
    assert!(m.wire().ends_with(b"\r\n\r\nDo it.\r\n"));
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
