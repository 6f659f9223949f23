use super::*;

const TO: &str = "carol@partner.example";
const NOW: u64 = 1_800_000_000;

fn keys(seed: u8) -> PortalKeys {
    PortalKeys::new(&[seed; 32]).expect("keys")
}

fn sealing(password: &str) -> Sealing<'_> {
    Sealing {
        to: TO,
        from: "alice@example.com",
        exp: NOW + 3600,
        password,
        iterations: MIN_ITERATIONS,
    }
}

fn message(len: usize) -> Vec<u8> {
    let mut m = vec![0u8; len];
    openssl::rand::rand_bytes(&mut m).expect("random");
    m
}

/// What the browser does: read the envelope, ask the server for the share with the header
/// and the mac, open it with the password.
fn browser_opens(k: &PortalKeys, env: &[u8], password: &str) -> Result<Vec<u8>, PortalError> {
    let p = parse(env)?;
    let (_, share) = k.release(p.header_bytes, p.mac, TO, NOW)?;
    open(env, password, &share)
}

#[test]
fn the_recipient_opens_what_the_cluster_sealed_whole_and_in_chunks() {
    let k = keys(1);
    // Empty, one byte short of a chunk, exactly two chunks, and a ragged three.
    for len in [0, CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 17] {
        let m = message(len);
        let env = seal(&k, &sealing("correct horse"), &m).expect("seal");
        let chunks = len.div_ceil(CHUNK).max(1);
        assert_eq!(
            env.len(),
            parse(&env).expect("parse").header_bytes.len()
                + 4
                + 4
                + 32
                + 12
                + 48
                + len
                + 16 * chunks
        );
        assert_eq!(
            browser_opens(&k, &env, "correct horse").expect("open"),
            m,
            "{len} bytes"
        );
    }
}

#[test]
fn neither_the_mail_with_the_password_nor_the_cluster_without_it_opens_the_envelope() {
    let k = keys(2);
    let m = message(1000);
    let env = seal(&k, &sealing("correct horse"), &m).expect("seal");
    // The mail and the right password, but no share from this cluster: a guessed share,
    // or another cluster's, does not open it (so a password cannot be guessed offline).
    for share in [[0u8; 32], [7u8; 32]] {
        assert!(matches!(
            open(&env, "correct horse", &share),
            Err(PortalError::Decrypt)
        ));
    }
    // Another cluster's keys do not even release a share for it.
    let p = parse(&env).unwrap();
    assert!(matches!(
        keys(3).release(p.header_bytes, p.mac, TO, NOW),
        Err(PortalError::BadMac)
    ));
    // The cluster's whole state (its portal secret: the right share) without the password.
    let (_, share) = k.release(p.header_bytes, p.mac, TO, NOW).unwrap();
    for guess in ["", "correct horse ", "Correct horse", "password"] {
        assert!(
            matches!(open(&env, guess, &share), Err(PortalError::Decrypt)),
            "{guess:?}"
        );
    }
    assert_eq!(open(&env, "correct horse", &share).unwrap(), m);
}

#[test]
fn the_share_is_released_only_for_an_unaltered_current_envelope_and_its_recipient() {
    let k = keys(4);
    let env = seal(&k, &sealing("pw"), b"hello").expect("seal");
    let p = parse(&env).unwrap();
    assert!(
        matches!(k.release(p.header_bytes, p.mac, TO, NOW + 3600), Err(PortalError::Expired(e)) if e == NOW + 3600)
    );
    assert!(matches!(
        k.release(p.header_bytes, p.mac, "eve@else.example", NOW),
        Err(PortalError::WrongRecipient { .. })
    ));
    assert!(
        k.release(p.header_bytes, p.mac, "Carol@Partner.Example", NOW)
            .is_ok()
    );
    // A header edited to live longer (or to name another recipient) loses its mac.
    let text = String::from_utf8(p.header_bytes.to_vec()).unwrap();
    let later = text.replace(
        &format!("\"exp\":{}", NOW + 3600),
        &format!("\"exp\":{}", NOW + 999_999),
    );
    assert_ne!(later, text);
    assert!(matches!(
        k.release(later.as_bytes(), p.mac, TO, NOW),
        Err(PortalError::BadMac)
    ));
    assert!(matches!(
        k.release(p.header_bytes, &p.mac[..31], TO, NOW),
        Err(PortalError::BadMac)
    ));
    assert!(matches!(
        k.release(p.header_bytes, &[0; 32], TO, NOW),
        Err(PortalError::BadMac)
    ));
}

#[test]
fn an_altered_reordered_or_cut_envelope_never_opens_even_in_part() {
    let k = keys(5);
    let m = message(3 * CHUNK + 5);
    let env = seal(&k, &sealing("pw"), &m).expect("seal");
    let p = parse(&env).unwrap();
    let (_, share) = k.release(p.header_bytes, p.mac, TO, NOW).unwrap();
    let start = env.len() - p.header.size as usize - 16 * 4;
    // One flipped byte: in the wrapped key, in each chunk, in the last tag.
    for at in [
        start - 20,
        start + 3,
        start + CHUNK + 16 + 9,
        start + 2 * (CHUNK + 16),
        env.len() - 1,
    ] {
        let mut bad = env.clone();
        bad[at] ^= 1;
        assert!(
            matches!(open(&bad, "pw", &share), Err(PortalError::Decrypt)),
            "byte {at}"
        );
    }
    // Two chunks swapped.
    let step = CHUNK + 16;
    let mut swapped = env.clone();
    let (a, b) = swapped[start..].split_at_mut(step);
    a.swap_with_slice(&mut b[..step]);
    assert!(matches!(
        open(&swapped, "pw", &share),
        Err(PortalError::Decrypt)
    ));
    // Cut short, or with bytes after its end; the last chunk dropped and the size edited
    // to match would need a new mac (and the old last chunk is not marked last).
    assert!(matches!(
        open(&env[..env.len() - 1], "pw", &share),
        Err(PortalError::Length)
    ));
    let mut longer = env.clone();
    longer.push(0);
    assert!(matches!(
        open(&longer, "pw", &share),
        Err(PortalError::Length)
    ));
    // Every prefix of a small envelope is refused, none panics.
    let small = seal(&k, &sealing("pw"), b"x").expect("seal");
    for cut in 0..small.len() {
        assert!(parse(&small[..cut]).is_err(), "prefix of {cut} bytes");
    }
}

#[test]
fn malformed_headers_are_refused_with_their_reason() {
    let k = keys(6);
    assert!(matches!(
        seal(
            &k,
            &Sealing {
                iterations: 1000,
                ..sealing("pw")
            },
            b"x"
        ),
        Err(PortalError::WeakKdf(1000))
    ));
    let env = seal(&k, &sealing("pw"), b"x").expect("seal");
    let p = parse(&env).unwrap();
    let text = String::from_utf8(p.header_bytes.to_vec()).unwrap();
    for (edit, want) in [
        (text.replace("{\"v\":1", "{\"v\":2"), "version"),
        (text.replace("pbkdf2-sha256", "md5"), "key derivation"),
        (
            text.replace(&format!("\"iter\":{MIN_ITERATIONS}"), "\"iter\":10"),
            "iterations",
        ),
        (
            text.replace(&format!("\"chunk\":{CHUNK}"), "\"chunk\":0"),
            "chunk size",
        ),
        ("{\"v\":1}".to_owned(), "header:"),
        ("not json".to_owned(), "header:"),
    ] {
        let e = Header::from_json(edit.as_bytes()).expect_err(&edit);
        assert!(e.to_string().contains(want), "{edit}: {e}");
    }
    assert!(matches!(
        parse(b"GIF89a...."),
        Err(PortalError::Malformed(_))
    ));
    let mut huge = MAGIC.to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(parse(&huge), Err(PortalError::Malformed(_))));
}
