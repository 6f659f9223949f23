use super::*;

#[test]
fn split_header_and_body() {
    let p = split(b"A: 1\r\nB: 2\r\n\r\nbody\r\n");
    assert_eq!(p.header, b"A: 1\r\nB: 2\r\n");
    assert_eq!(p.body, b"body\r\n");
    assert_eq!(split(b"\r\nbody").header, b"");
    assert_eq!(split(b"A: 1\r\n").body, b"");
}

#[test]
fn folded_fields_and_values() {
    let h = Header::parse(b"Subject: one\r\n two\r\nX:\r\n");
    assert_eq!(h.fields().len(), 2);
    assert_eq!(h.get("subject").as_deref(), Some("one two"));
    assert_eq!(h.to_bytes(), b"Subject: one\r\n two\r\nX:\r\n");
}

#[test]
fn content_type_parameters() {
    let ct = ContentType::parse(
        "Multipart/Signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n boundary=\"a\\\"b;c\"",
    );
    assert!(ct.is("multipart", "signed"));
    assert_eq!(ct.param("protocol"), Some("application/pkcs7-signature"));
    assert_eq!(ct.param("micalg"), Some("sha-256"));
    assert_eq!(ct.param("boundary"), Some("a\"b;c"));
    assert_eq!(ContentType::parse("garbage"), ContentType::default());
}

#[test]
fn multipart_split_keeps_part_bytes() {
    let body = b"preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b \r\n\r\ntwo\r\n\r\n--b--\r\nepilogue";
    let parts = multipart_parts(body, "b").unwrap();
    assert_eq!(parts, vec![&b"A: 1\r\n\r\none"[..], &b"\r\ntwo\r\n"[..]]);
    assert!(multipart_parts(b"no delimiters", "b").is_none());
    // An unclosed multipart ends at the end of the body.
    assert_eq!(multipart_parts(b"--b\r\nx", "b").unwrap(), vec![&b"x"[..]]);
    // Lines that only start like the boundary are content.
    assert_eq!(
        multipart_parts(b"--b\r\n--bb\r\n--b--", "b").unwrap(),
        vec![&b"--bb"[..]]
    );
}

#[test]
fn envelope_moves_content_fields() {
    let m =
        b"From: a@x\r\nContent-Type: text/html\r\nSubject: s\r\nMIME-Version: 1.0\r\n\r\n<p>\r\n";
    let e = Envelope::split(m);
    assert_eq!(e.outer.to_bytes(), b"From: a@x\r\nSubject: s\r\n");
    assert_eq!(e.content, b"Content-Type: text/html\r\n\r\n<p>\r\n");
    let joined = Envelope::join(&e.outer, &e.content);
    assert_eq!(
        joined,
        b"From: a@x\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>\r\n"
    );
    let bare = Envelope::split(b"Subject: s\r\n\r\nhi\r\n");
    assert_eq!(
        bare.content,
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nhi\r\n"
    );
}

#[test]
fn base64_round_trip_and_errors() {
    let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
    let enc = base64_wrapped(&data);
    assert!(enc.split(|b| *b == b'\n').all(|l| l.len() <= 77));
    assert_eq!(base64_decode(&enc).unwrap(), data);
    assert!(base64_decode(b"abc").is_err());
    assert!(base64_decode(b"****").is_err());
}

#[test]
fn quoted_printable_and_words() {
    assert_eq!(qp_decode(b"a=3Db=\r\nc  \r\nd=ZZ"), b"a=bc\r\nd=ZZ");
    assert_eq!(
        decode_words("=?utf-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?B?IFtzZWN1cmVd?="),
        "Grüße [secure]"
    );
    assert_eq!(decode_words("plain =?x?y"), "plain =?x?y");
    assert_eq!(decode_words("=?iso-8859-1?q?caf=E9?= ok"), "café ok");
}

#[test]
fn canonical_line_ends() {
    assert_eq!(canonicalize(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd");
}

#[test]
fn calendar_and_tnef_found_in_parts() {
    let cal = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n--x--\r\n";
    assert!(contains_calendar_or_tnef(cal));
    let tnef = b"Content-Type: application/octet-stream; name=\"winmail.dat\"\r\n\r\nxx";
    assert!(contains_calendar_or_tnef(tnef));
    assert!(!contains_calendar_or_tnef(
        b"Content-Type: text/plain\r\n\r\nhi"
    ));
}

#[test]
fn eight_bit_leaves_become_base64() {
    let e = "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n--x\r\nContent-Type: text/plain\r\n\r\nascii\r\n--x--\r\n";
    let out = to_seven_bit(e.as_bytes());
    assert!(out.is_ascii());
    let body = split(&out).body;
    let parts = multipart_parts(body, "x").unwrap();
    assert_eq!(parts.len(), 2);
    let first = split(parts[0]);
    assert_eq!(base64_decode(first.body).unwrap(), "Grüße".as_bytes());
    assert_eq!(parts[1], b"Content-Type: text/plain\r\n\r\nascii");
    let ascii = b"Content-Type: text/plain\r\n\r\nx";
    assert_eq!(to_seven_bit(ascii), ascii);
}

#[test]
fn boundaries_are_fresh() {
    assert_ne!(new_boundary(), new_boundary());
}
