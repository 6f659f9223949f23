//! Subject tags set by senders (`[nosign]`, `[secure]`, `[encrypt]`: removed before delivery)
//! and verdict markers set by Postern (`[signed]`, `[signed INVALID]`, `[encrypted]`:
//! removed when a sender forged them). Encoded words (RFC 2047) are looked into.

use crate::mime::{Header, decode_words};

pub const NOSIGN: &str = "[nosign]";
pub const SECURE: &str = "[secure]";
pub const ENCRYPT: &str = "[encrypt]";
pub const SIGNED: &str = "[signed]";
pub const SIGNED_INVALID: &str = "[signed INVALID]";
pub const ENCRYPTED: &str = "[encrypted]";

/// Removes each of `tags` (case-insensitive) from the subject; returns those found.
pub fn remove_tags(header: &mut Header, tags: &[&str]) -> Vec<String> {
    let Some(raw) = header.get("subject") else {
        return Vec::new();
    };
    let decoded = decode_words(&raw);
    let mut text = decoded.clone();
    let mut found = Vec::new();
    for tag in tags {
        loop {
            let lower = text.to_lowercase();
            let Some(i) = lower.find(&tag.to_lowercase()) else {
                break;
            };
            // Lower-casing can change byte lengths only outside ASCII; tags are ASCII.
            if !text.is_char_boundary(i) || !text.is_char_boundary(i + tag.len()) {
                break;
            }
            text.replace_range(i..i + tag.len(), "");
            if !found.iter().any(|f: &String| f.eq_ignore_ascii_case(tag)) {
                found.push((*tag).to_owned());
            }
        }
    }
    if !found.is_empty() {
        let cleaned = text.split_whitespace().collect::<Vec<_>>().join(" ");
        header.set("Subject", &encode(&cleaned));
    }
    found
}

/// Puts `marker` in front of the subject (adds a subject if there is none).
pub fn add_marker(header: &mut Header, marker: &str) {
    let raw = header.get("subject").unwrap_or_default();
    header.set("Subject", format!("{marker} {raw}").trim_end());
}

/// A subject value: as is when printable ASCII, else one UTF-8 "B" encoded word per chunk.
fn encode(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                openssl::base64::encode_block(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(h: &Header) -> String {
        decode_words(&h.get("subject").unwrap())
    }

    #[test]
    fn tags_are_removed_also_inside_encoded_words() {
        let mut h = Header::parse(b"Subject: [SECURE] Offer [nosign]\r\n");
        let found = remove_tags(&mut h, &[NOSIGN, SECURE, ENCRYPT]);
        assert_eq!(found, vec!["[nosign]".to_owned(), "[secure]".to_owned()]);
        assert_eq!(subject(&h), "Offer");
        let mut h = Header::parse(b"Subject: =?UTF-8?B?W3NlY3VyZV0gR3LDvMOfZQ==?=\r\n");
        assert_eq!(remove_tags(&mut h, &[SECURE]), vec!["[secure]".to_owned()]);
        assert_eq!(subject(&h), "Grüße");
        let mut h = Header::parse(b"Subject: nothing\r\n");
        assert!(remove_tags(&mut h, &[SECURE]).is_empty());
        assert_eq!(h.to_bytes(), b"Subject: nothing\r\n");
    }

    #[test]
    fn markers() {
        let mut h = Header::parse(b"From: x\r\n");
        add_marker(&mut h, SIGNED);
        assert_eq!(h.get("subject").as_deref(), Some("[signed]"));
        let mut h = Header::parse(b"Subject: [signed INVALID] [signed] pay now\r\n");
        remove_tags(&mut h, &[SIGNED_INVALID, SIGNED, ENCRYPTED]);
        assert_eq!(subject(&h), "pay now");
    }
}
