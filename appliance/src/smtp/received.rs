//! The `Received:` trace header (RFC 5321 §4.4) and the hop count used for loop detection.

use std::net::IpAddr;
use std::time::SystemTime;

/// What the trace header records about a transaction.
#[derive(Debug)]
pub struct Trace<'a> {
    pub helo: &'a str,
    pub peer: IpAddr,
    pub hostname: &'a str,
    pub esmtp: bool,
    pub tls: bool,
    pub smtputf8: bool,
    pub id: &'a str,
    pub single_recipient: Option<&'a str>,
}

impl Trace<'_> {
    /// The header, folded, ending in CRLF.
    pub fn header(&self, now: SystemTime) -> String {
        // RFC 3848 protocol names; RFC 6531 for SMTPUTF8.
        let protocol = match (self.smtputf8, self.esmtp, self.tls) {
            (true, _, false) => "UTF8SMTP",
            (true, _, true) => "UTF8SMTPS",
            (false, true, true) => "ESMTPS",
            (false, true, false) => "ESMTP",
            (false, false, true) => "SMTPS",
            (false, false, false) => "SMTP",
        };
        let helo: String = self
            .helo
            .chars()
            .take(100)
            .map(|c| {
                if c.is_ascii_graphic() && !"()[];".contains(c) {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let mut h = format!(
            "Received: from {helo} ([{}])\r\n\tby {} (Postern) with {protocol} id {}",
            self.peer, self.hostname, self.id
        );
        if let Some(rcpt) = self.single_recipient
            && rcpt.len() <= 200
        {
            h.push_str(&format!("\r\n\tfor <{rcpt}>"));
        }
        h.push_str(&format!(";\r\n\t{}\r\n", rfc5322_date(now)));
        h
    }
}

/// Counts `Received:` fields in the header section of a message.
pub fn count_received(message: &[u8]) -> usize {
    message
        .split(|&b| b == b'\n')
        .take_while(|line| !(line.is_empty() || *line == b"\r"))
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// `Mon, 23 Nov 2026 09:40:00 +0000`.
pub fn rfc5322_date(t: SystemTime) -> String {
    postern_crypto::mime::date::Utc::from(t).rfc5322()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_426_800);
        assert_eq!(rfc5322_date(t), "Mon, 23 Nov 2026 09:40:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn counts_received_in_headers_only() {
        let m = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: body\r\n";
        assert_eq!(count_received(m), 2);
    }

    #[test]
    fn header_is_folded_and_sanitized() {
        let t = Trace {
            helo: "evil\u{7f}(x)",
            peer: "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
            hostname: "gw.example",
            esmtp: true,
            tls: true,
            smtputf8: false,
            id: "s1.1",
            single_recipient: Some("a@b.example"),
        };
        let h = t.header(UNIX_EPOCH);
        assert!(h.starts_with("Received: from evil??x? ([127.0.0.1])\r\n\tby gw.example (Postern) with ESMTPS id s1.1\r\n\tfor <a@b.example>;\r\n\t"));
        assert!(h.ends_with("+0000\r\n"));
    }
}
