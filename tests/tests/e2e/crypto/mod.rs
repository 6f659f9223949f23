//! Secure mail end to end (DESIGN.md §4): what `posternd` signs and encrypts must be accepted
//! by `openssl cms` and `gpg`, what they produce must be opened by Postern, and the inbound
//! verdicts must match theirs on the Thunderbird peer corpora.

mod corpus;
mod inbound;
mod lifecycle;
mod outbound;

use postern_tests::peers::Peer;
use std::time::Duration;

use postern_tests::client::Client;
use postern_tests::peers_available;
use postern_tests::posternd::Posternd;
use postern_tests::sink::{Sink, SunkMessage};

/// The internal domain of every test gateway.
const DOMAIN: &str = "example.com";

fn have_tools(test: &str) -> bool {
    peers_available(test, &[Peer::SmtpSink, Peer::Openssl, Peer::Gpg])
}

/// A gateway for `example.com` relaying to a fresh smtp-sink.
fn gateway(extra: &str) -> (Posternd, Sink) {
    gateway_for(DOMAIN, extra)
}

/// A gateway protecting `domain`.
fn gateway_for(domain: &str, extra: &str) -> (Posternd, Sink) {
    let sink = Sink::start(&[]);
    let p = Posternd::start(
        &sink.addr(),
        "",
        &format!("[crypto]\ninternal_domains = [\"{domain}\"]\n{extra}"),
    );
    (p, sink)
}

/// Sends one message and returns what the downstream received.
fn relay(p: &Posternd, sink: &Sink, from: &str, to: &[&str], message: &str) -> SunkMessage {
    let before = sink.messages().len();
    let mut c = Client::ready(p.addr);
    let r = c.send_mail(from, to, message);
    assert_eq!(r.code, 250, "{r}\n{}", p.log());
    let all = sink.wait_for_messages(before + 1, Duration::from_secs(10));
    assert_eq!(all.len(), before + 1, "exactly one new message downstream");
    let subject_of = |m: &SunkMessage| m.header("message-id");
    let wanted = message
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .map(|l| l[11..].trim().to_owned());
    all.into_iter()
        .rev()
        .find(|m| wanted.is_none() || subject_of(m) == wanted)
        .expect("the message")
}

/// A message with CRLF line ends from lines.
fn mail(lines: &[&str]) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// The armored OpenPGP block inside a message.
fn pgp_block(text: &str, kind: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let s = text.find(&begin).expect("begin armor");
    let e = text[s..].find(&end).expect("end armor") + s + end.len();
    format!("{}\n", &text[s..e]).into_bytes()
}

/// The bytes after the header of a message.
fn body_of(content: &[u8]) -> &[u8] {
    let i = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    &content[i + 4..]
}
