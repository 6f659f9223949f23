use super::*;

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn encrypt_sign_decrypt_round_trip() {
    let now = SystemTime::now();
    let alice = generate("alice@example.com", now, 365 * DAY).unwrap();
    let bob = generate("bob@partner.example", now, 365 * DAY).unwrap();
    assert!(can_encrypt(&bob, now) && can_sign(&alice, now));
    assert_eq!(
        cert_emails(&bob, now),
        vec!["bob@partner.example".to_owned()]
    );
    let entity = b"Content-Type: text/plain\r\n\r\nhello bob\r\n";
    let out = encrypt(
        entity,
        &[bob.clone().strip_secret_key_material()],
        Some(&alice),
        now,
    )
    .unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.starts_with(
            "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\""
        )
    );
    let parts = mime::split(&out);
    let ct = mime::ContentType::parse(
        &mime::Header::parse(parts.header)
            .get("content-type")
            .unwrap(),
    );
    let body = mime::multipart_parts(parts.body, ct.param("boundary").unwrap()).unwrap();
    let armored = mime::split(body[1]).body;
    let public_alice = alice.clone().strip_secret_key_material();
    let d = decrypt(armored, std::slice::from_ref(&bob), &[public_alice], now).unwrap();
    assert_eq!(d.content, entity);
    assert_eq!(
        d.signatures,
        vec![SigVerdict::Valid {
            fingerprint: alice.fingerprint().to_hex()
        }]
    );
    // Without alice's key the signature is reported as unknown, not as good.
    let d = decrypt(armored, std::slice::from_ref(&bob), &[], now).unwrap();
    assert!(matches!(d.signatures[0], SigVerdict::UnknownKey { .. }));
    // Someone else's key cannot decrypt.
    assert!(decrypt(armored, std::slice::from_ref(&alice), &[], now).is_err());
    // Garbage is an error, not a panic.
    assert!(
        decrypt(
            b"-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n",
            &[bob],
            &[],
            now
        )
        .is_err()
    );
}

#[test]
fn expired_keys_still_decrypt_but_are_not_encrypted_to() {
    let then = SystemTime::now() - 30 * DAY;
    let old = generate("old@example.com", then, 10 * DAY).unwrap();
    let now = SystemTime::now();
    assert!(!can_encrypt(&old, now));
    let out = encrypt(b"x\r\n", std::slice::from_ref(&old), None, then + DAY).unwrap();
    let parts = mime::split(&out);
    let ct = mime::ContentType::parse(
        &mime::Header::parse(parts.header)
            .get("content-type")
            .unwrap(),
    );
    let body = mime::multipart_parts(parts.body, ct.param("boundary").unwrap()).unwrap();
    let d = decrypt(mime::split(body[1]).body, &[old], &[], now).unwrap();
    assert_eq!(d.content, b"x\r\n");
}
