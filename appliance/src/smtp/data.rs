//! The DATA phase: finds the end of the message, undoes dot-stuffing, and enforces the size
//! and line limits while the bytes arrive.
//!
//! Only `CRLF . CRLF` ends the data (RFC 5321 §4.1.1.4). A line that ends in a bare LF, holds
//! a bare CR or a NUL, marks the message as rejected; such a line can never be followed by
//! an end-of-data, so none of the published smuggling sequences (`LF.LF`, `CR.CR`, `LF.CRLF`,
//! `CRLF.CRCRLF`, `CRLF NUL.CRLF`, …) ends the data. The sender's real `CRLF.CRLF` ends it,
//! and the whole message — with whatever was smuggled inside — is refused. So Postern never
//! forwards a bare CR, bare LF or NUL.
//!
//! Memory is bounded: the body grows to at most the size limit and is dropped at the first
//! violation; a line is never held beyond the line limit.

use super::reply::{self, Reply};

/// Why a message is refused at end-of-data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    TooBig,
    BareLineEnding,
    Nul,
    LineTooLong,
}

impl Violation {
    pub fn reply(self) -> Reply {
        match self {
            Violation::TooBig => reply::MESSAGE_TOO_BIG,
            Violation::BareLineEnding => reply::BARE_LINE_ENDING,
            Violation::Nul => reply::NUL_IN_MESSAGE,
            Violation::LineTooLong => reply::MESSAGE_LINE_TOO_LONG,
        }
    }
}

/// The end of the DATA phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEnd {
    /// The message with dot-stuffing undone; every line ends in CRLF.
    Message(Vec<u8>),
    Rejected(Violation),
}

/// Receives the data of one message.
#[derive(Debug)]
pub struct DataReceiver {
    body: Vec<u8>,
    size: usize,
    max_size: usize,
    max_line: usize,
    /// The previous line ended in CRLF: a `.CRLF` line now ends the data.
    after_crlf: bool,
    /// Inside a line longer than `max_line` whose beginning was already consumed.
    in_long_line: bool,
    /// The last byte consumed inside a long line was CR.
    long_line_cr: bool,
    violation: Option<Violation>,
}

impl DataReceiver {
    /// `max_size` counts message bytes after un-stuffing; `max_line` counts a line with its
    /// CRLF (RFC 5321 §4.5.3.1.6: 1000).
    pub fn new(max_size: usize, max_line: usize) -> Self {
        DataReceiver {
            body: Vec::new(),
            size: 0,
            max_size,
            max_line,
            after_crlf: true,
            in_long_line: false,
            long_line_cr: false,
            violation: None,
        }
    }

    /// Consumes bytes from `input`; returns how many were consumed and, once the end of data
    /// was seen, the outcome. Bytes after the end of data are not consumed.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<DataEnd>) {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                if self.in_long_line || rest.len() >= self.max_line {
                    self.consume_long_fragment(rest);
                    pos = input.len();
                }
                break;
            };
            let line = &rest[..=lf];
            pos += lf + 1;
            if self.in_long_line {
                let crlf = if lf > 0 {
                    rest[lf - 1] == b'\r'
                } else {
                    self.long_line_cr
                };
                self.in_long_line = false;
                self.after_crlf = crlf;
                continue;
            }
            if self.after_crlf && line == b".\r\n" {
                return (pos, Some(self.finish()));
            }
            self.take_line(line);
        }
        (pos, None)
    }

    fn take_line(&mut self, line: &[u8]) {
        let crlf = line.len() >= 2 && line[line.len() - 2] == b'\r';
        let content = &line[..line.len() - if crlf { 2 } else { 1 }];
        if !crlf {
            self.violate(Violation::BareLineEnding);
        }
        // One vectorised scan for both forbidden bytes; the rare hit is classified after.
        if let Some(i) = memchr::memchr2(b'\r', 0, content) {
            if content[i] == b'\r' || content[i..].contains(&b'\r') {
                self.violate(Violation::BareLineEnding);
            }
            if content[i..].contains(&0) {
                self.violate(Violation::Nul);
            }
        }
        if line.len() > self.max_line {
            self.violate(Violation::LineTooLong);
        }
        self.after_crlf = crlf;
        let unstuffed = line.strip_prefix(b".").unwrap_or(line);
        self.append(unstuffed);
    }

    fn consume_long_fragment(&mut self, fragment: &[u8]) {
        self.violate(Violation::LineTooLong);
        self.in_long_line = true;
        self.long_line_cr = fragment.last() == Some(&b'\r');
        self.size = self.size.saturating_add(fragment.len());
    }

    fn append(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len());
        if self.size > self.max_size {
            self.violate(Violation::TooBig);
        }
        if self.violation.is_none() {
            self.body.extend_from_slice(bytes);
        }
    }

    fn violate(&mut self, violation: Violation) {
        if self.violation.is_none() {
            self.violation = Some(violation);
            self.body = Vec::new();
        }
    }

    fn finish(&mut self) -> DataEnd {
        match self.violation {
            Some(v) => DataEnd::Rejected(v),
            None => DataEnd::Message(std::mem::take(&mut self.body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Option<DataEnd>, Vec<u8>) {
        let mut rx = DataReceiver::new(1 << 20, 1000);
        let mut pending = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let (used, end) = rx.feed(&pending);
            pending.drain(..used);
            if end.is_some() {
                return (end, pending);
            }
        }
        (None, pending)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_unstuffs() {
        let (end, rest) = run(&[b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n"]);
        assert_eq!(
            end,
            Some(DataEnd::Message(
                b"Subject: x\r\n\r\n.dot\r\nbody\r\n".to_vec()
            ))
        );
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn empty_message_and_split_terminator() {
        assert_eq!(run(&[b".\r\n"]).0, Some(DataEnd::Message(Vec::new())));
        let (end, _) = run(&[b"a\r", b"\n.", b"\r", b"\n"]);
        assert_eq!(end, Some(DataEnd::Message(b"a\r\n".to_vec())));
    }

    /// The eleven published end-of-data smuggling variants: none of them ends the data, and
    /// the message they are in is refused at the real end.
    #[test]
    fn smuggling_variants_never_end_the_data() {
        let variants: [&[u8]; 11] = [
            b"\n.\n",
            b"\n.\r",
            b"\r.\n",
            b"\r.\r",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r\n.\r\r\n",
            b"\r\r\n.\r\r\n",
            b"\r\n\x00.\r\n",
        ];
        for v in variants {
            let mut msg = b"Subject: a\r\n\r\nfirst".to_vec();
            msg.extend_from_slice(v);
            msg.extend_from_slice(
                b"MAIL FROM:<e@vil>\r\nRCPT TO:<v@ictim>\r\nDATA\r\nsmuggled\r\n.\r\n",
            );
            // in one segment
            let (end, rest) = run(&[&msg]);
            assert!(
                matches!(end, Some(DataEnd::Rejected(_))),
                "variant {v:?}: {end:?}"
            );
            assert!(rest.is_empty());
            // byte by byte
            let bytes: Vec<&[u8]> = msg.chunks(1).collect();
            let (end, _) = run(&bytes);
            assert!(
                matches!(end, Some(DataEnd::Rejected(_))),
                "variant {v:?} split"
            );
        }
    }

    #[test]
    fn size_and_line_limits() {
        let mut rx = DataReceiver::new(10, 1000);
        let (_, end) = rx.feed(b"0123456789abc\r\n.\r\n");
        assert_eq!(end, Some(DataEnd::Rejected(Violation::TooBig)));

        let mut rx = DataReceiver::new(1 << 20, 1000);
        let long = vec![b'x'; 5000];
        let (used, end) = rx.feed(&long);
        assert_eq!((used, end), (5000, None));
        let (_, end) = rx.feed(b"\r\n.\r\n");
        assert_eq!(end, Some(DataEnd::Rejected(Violation::LineTooLong)));
        assert!(
            rx.body.capacity() < 2000,
            "no memory held for a refused message"
        );
    }

    #[test]
    fn long_line_ending_in_bare_lf_does_not_allow_a_terminator() {
        let mut rx = DataReceiver::new(1 << 20, 10);
        let (_, end) = rx.feed(b"xxxxxxxxxxxxxxxx");
        assert_eq!(end, None);
        let (_, end) = rx.feed(b"\n.\r\nmore\r\n");
        assert_eq!(end, None);
        let (_, end) = rx.feed(b".\r\n");
        assert_eq!(end, Some(DataEnd::Rejected(Violation::LineTooLong)));
    }
}
