//! MIME reading and rewriting on arbitrary messages: no panic, and the 7-bit rewrite of an
//! ASCII entity is the identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_crypto::mime::{self, ContentType, Envelope, Header};

fuzz_target!(|data: &[u8]| {
    let env = Envelope::split(data);
    let _ = Envelope::join(&env.outer, &env.content);
    let parts = mime::split(data);
    let header = Header::parse(parts.header);
    if let Some(v) = header.get("content-type") {
        let ct = ContentType::parse(&v);
        if let Some(b) = ct.param("boundary") {
            let _ = mime::multipart_parts(parts.body, b);
        }
    }
    if let Some(s) = header.get("subject") {
        let _ = mime::decode_words(&s);
    }
    let _ = mime::contains_calendar_or_tnef(data);
    let seven = mime::to_seven_bit(data);
    if data.is_ascii() {
        assert_eq!(seven, data);
    }
    let _ = mime::qp_decode(data);
    let _ = mime::base64_decode(data);
});
